"""Calibration check of the bundled scenarios: ``collsim calibrate`` on each of them.

Run: ``.venv/bin/python benchmarks/calibration.py [--accounts N] [--seeds K]``.  The same
as ``collsim calibrate --scenario default`` and ``--scenario cn_consumer_finance``: the
targets (bands, sources, trust) are data in ``collsim/scenarios/targets/<scenario>.yaml``,
the experiments and measurements are described in docs/calibration.md.  Each scenario's
``calibration.json`` and ``calibration.png`` go to ``calibration_output/<scenario>/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from collsim.config import bundled_scenarios
from collsim.evaluation.calibration_report import CalibrateOptions, calibrate_command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=None, help="default: scenario's")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--days", type=int, default=60, help="days of the one-touch runs")
    parser.add_argument("--champion-days", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("calibration_output"))
    args = parser.parse_args()
    for name in bundled_scenarios():
        options = CalibrateOptions(args.accounts, args.days, args.champion_days, args.seeds)
        calibrate_command(name, args.out / name, options)


if __name__ == "__main__":
    main()
