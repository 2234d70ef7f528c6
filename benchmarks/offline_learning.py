"""Benchmark: offline learning from logs, checked in simulation where the truth is known.

For each seed (:func:`collsim.rl.offline.honest_check`): simulate the default scenario
(scaled to ``--accounts``) for ``--days`` days under the champion with ``--epsilon``
exploration and a ``--holdout`` random holdout and write its lender logs; learn a
masked policy from the logs alone (TorchRL discrete CQL, ``--steps`` gradient steps);
estimate its value with ``evaluate-offline`` (DR, SNIPW); then simulate it on the same
seed for its true ``portfolio_value`` and compliance-gate blocks.  Prints one JSON line
per seed, then the summary (:func:`collsim.rl.offline.check_summary`): the paired 95 %
interval over seeds of learned − logging portfolio value per account, the violations,
and the share of seeds whose OPE interval covers the deployed per-account-day value.

    nice -n 10 .venv/bin/python benchmarks/offline_learning.py --accounts 10000 --days 30 \\
        --seeds 0 1 2 3 4 5 6 7 8 9 --out results/offline_learning.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from collsim.config import load_scenario
from collsim.rl.offline import CheckSettings, OfflineConfig, check_summary, honest_check


def main() -> None:
    """Run the check for every seed and print the figures (JSON lines)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epsilon", type=float, default=0.05)
    parser.add_argument("--holdout", type=float, default=0.05)
    parser.add_argument("--horizon-days", type=int, default=7, help="training reward window")
    parser.add_argument("--ope-horizon-days", type=int, default=7)
    parser.add_argument("--gamma", type=float, default=OfflineConfig().gamma)
    parser.add_argument("--steps", type=int, default=OfflineConfig().steps)
    parser.add_argument("--cql-alpha", type=float, default=OfflineConfig().cql_alpha)
    parser.add_argument("--support", type=float, default=OfflineConfig().support,
                        help="SPIBB support threshold (> 1: imitate the champion)")
    parser.add_argument("--no-anchor", action="store_true",
                        help="no champion anchor: the plain argmax of Q (the old policy)")
    parser.add_argument("--bootstrap", type=int, default=100)
    parser.add_argument("--out", type=Path, help="also append each JSON line to this file")
    args = parser.parse_args()
    config = OfflineConfig(horizon_days=args.horizon_days, steps=args.steps,
                           cql_alpha=args.cql_alpha, gamma=args.gamma,
                           support=None if args.no_anchor else args.support)  # fmt: skip
    settings = CheckSettings(args.accounts, args.days, args.epsilon, args.holdout,
                             args.bootstrap, args.ope_horizon_days, config)  # fmt: skip
    scenario = load_scenario("default")
    rows = []
    for seed in args.seeds:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as temp:
            row = honest_check(scenario, seed, settings, Path(temp))
        row["seed_s"] = round(time.perf_counter() - start, 1)
        row["load_avg_1m"] = round(os.getloadavg()[0], 2)
        rows.append(row)
        _emit(row, args.out)
    options = {k: v for k, v in vars(args).items() if k not in ("seeds", "out")}
    summary = check_summary(rows) | options
    summary["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)
    _emit({"summary": summary}, args.out)


def _emit(row: dict, out: Path | None) -> None:
    line = json.dumps(row)
    print(line, flush=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a") as handle:
            handle.write(line + "\n")


if __name__ == "__main__":
    main()
