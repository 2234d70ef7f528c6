"""Benchmark: ``collsim evaluate-offline`` and ``collsim monitor`` on simulated lender logs.

Simulates the default scenario (scaled to ``--accounts``) for ``--days`` days under the
champion with a 10 % random holdout, writes its lender logs (accounts, contacts,
payments as Parquet) and the scaled capacity, exports the champion artifact, then
times, in this process:

* ``evaluate-offline`` (:func:`collsim.evaluation.offline.offline_command`): load and
  check the logs, reconstruct and decide every decision day, rewards, IPW / SNIPW /
  DR of three outcomes with ``--bootstrap`` resamples, write the report;
* ``monitor`` (:func:`collsim.evaluation.monitor.monitor_command`): the last 7 days
  against the first 7, HTML report with its plot.

Each command's wall time and CPU time (user + system of this process) are printed with
the 1-minute load average at the start and the end: on a shared machine the CPU time is
the figure that does not depend on the other jobs.

    .venv/bin/python benchmarks/bench_offline.py --accounts 1000000 --days 30

``--logs DIR`` keeps the simulated logs (and their ``capacity.yaml``) in DIR and reuses
them when DIR already holds them (``--accounts``, ``--days`` and ``--seed`` are then
those of the run that wrote them); ``--only offline`` / ``--only monitor`` times one
command.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' log simulator

from collsim.config import load_scenario  # noqa: E402
from collsim.evaluation.monitor import MonitorSettings, monitor_command  # noqa: E402
from collsim.evaluation.offline import OfflineSettings, offline_command  # noqa: E402
from collsim.export.commands import export_policy  # noqa: E402
from tests.offline_logs import champion_with_holdout, simulate_logs  # noqa: E402


def _logs(args: argparse.Namespace, root: Path, figures: dict[str, float | int]) -> Path:
    """The logs folder (holding ``capacity.yaml``): reused from ``--logs`` or simulated."""
    folder = args.logs or root / "logs"
    capacity = folder / "capacity.yaml"
    if capacity.exists():
        return capacity
    scenario = load_scenario("default")
    t = time.perf_counter()
    simulate_logs(folder, champion_with_holdout(scenario, 0.1), scenario, args.accounts,
                  args.days, args.seed)  # fmt: skip
    figures["simulate_and_write_logs_s"] = round(time.perf_counter() - t, 1)
    return capacity


def main() -> None:
    """Run the benchmark and print a JSON line of figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--horizon-days", type=int, default=14)
    parser.add_argument("--bootstrap", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--logs", type=Path, default=None, help="keep / reuse the logs here")
    parser.add_argument("--only", choices=("offline", "monitor"), default=None)
    args = parser.parse_args()
    figures: dict[str, float | int] = {"accounts": args.accounts, "days": args.days}
    figures["load_average_1min_at_start"] = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        capacity = _logs(args, root, figures)
        logs = capacity.parent
        if args.only != "monitor":
            assert export_policy("champion", root / "champion", "default") == 0
            settings = OfflineSettings(
                horizon_days=args.horizon_days, n_boot=args.bootstrap, capacity=capacity,
                seed=args.seed,
            )  # fmt: skip
            t, cpu = time.perf_counter(), time.process_time()
            code = offline_command(logs, root / "champion", (None, None), root / "report",
                                   settings)  # fmt: skip
            figures["evaluate_offline_s"] = round(time.perf_counter() - t, 1)
            figures["evaluate_offline_cpu_s"] = round(time.process_time() - cpu, 1)
            figures["evaluate_offline_exit"] = code
            report = json.loads((root / "report" / "report.json").read_text())
            figures["rows"] = report["diagnostics"]["rows"]
            figures["decision_days"] = report["decision_days"]["count"]
        if args.only != "offline":
            t, cpu = time.perf_counter(), time.process_time()
            code = monitor_command(logs, None, root / "monitor.html", MonitorSettings())
            figures["monitor_s"] = round(time.perf_counter() - t, 1)
            figures["monitor_cpu_s"] = round(time.process_time() - cpu, 1)
            figures["monitor_exit"] = code
    figures["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)
    figures["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
