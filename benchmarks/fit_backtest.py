"""Back-test benchmark of `collsim fit`: the fitted scenario passes where the base fails.

For each seed: simulate 20,000 accounts × 60 days of logs from a perturbed ``default``
(:func:`collsim.research.fitcheck.perturbed_scenario`, random logging policy with a 10%
holdout), fit them against ``default``, then back-test both the unfitted ``default`` and
the fitted scenario on those logs (5 replications, tolerance 0.10) and print the failing
metric-weeks of each.

    .venv/bin/python benchmarks/fit_backtest.py --seeds 1,2
"""

from __future__ import annotations

import argparse
import time

from collsim.config import Scenario, load_scenario
from collsim.evaluation.backtest import BacktestOptions, backtest, log_period
from collsim.logs import Logs
from collsim.research.fit import FitOptions, fit_logs
from collsim.research.fitcheck import identification_logs


def _failures(scenario: Scenario, logs: Logs, options: BacktestOptions) -> str:
    result = backtest(scenario, logs, log_period(logs), options)
    table = result.table
    judged = table.filter(table["verdict"] != "n/a").height
    failing = result.failures
    metrics = ", ".join(sorted(set(failing["metric"].to_list()))) or "-"
    return f"{failing.height} of {judged} metric-weeks fail ({metrics})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--accounts", type=int, default=20000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--replications", type=int, default=5)
    parser.add_argument("--tolerance", type=float, default=0.10)
    args = parser.parse_args()
    base = load_scenario("default")
    options = BacktestOptions(replications=args.replications, tolerance=args.tolerance)
    for seed in (int(s) for s in args.seeds.split(",")):
        started = time.perf_counter()
        _truth, logs = identification_logs(base, seed, (args.accounts, args.days))
        fitted = fit_logs(logs, base, FitOptions(seed=seed))
        print(f"seed {seed}:", flush=True)
        print(f"  default (not fitted): {_failures(base, logs, options)}", flush=True)
        print(f"  fitted scenario:      {_failures(fitted, logs, options)}", flush=True)
        print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
