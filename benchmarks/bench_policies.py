"""Benchmarks of the model-based policies.

Two parts:

* ``--decide``: wall time of ``OptimisedAllocation.decide`` (value-model prediction
  with onnxruntime + exact allocation) on day-0 snapshots of the default scenario at
  100,000 and 1,000,000 accounts (best of ``--repeat``).
* ``--headline``: OptimisedAllocation (learned value model, trained by
  :func:`collsim.research.training.load_or_train` with default settings)
  against the champion on the default scenario, paired seeds (common random
  numbers): mean paired difference in net recovery with a 95 % t-interval, and
  blocked (compliance-gate) events of each policy.

Usage::

    .venv/bin/python benchmarks/bench_policies.py --decide --sizes 100000 1000000
    .venv/bin/python benchmarks/bench_policies.py --headline --accounts 20000 --seeds 1 2 3 4 5
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from collsim.config import load_scenario
from collsim.metrics import kpis
from collsim.policies.champion import TieredChampion
from collsim.policies.optimised import OptimisedAllocation
from collsim.research.training import load_or_train
from collsim.sim.engine import Simulation


def bench_decide(sizes: list[int], repeat: int) -> None:
    """Print decide() timings of OptimisedAllocation at each size."""
    scenario = load_scenario("default")
    model = load_or_train(scenario)
    for n in sizes:
        t0 = time.perf_counter()
        sim = Simulation(scenario, seed=1, n_accounts=n)
        snapshot = sim.begin_day()
        setup = time.perf_counter() - t0
        policy = OptimisedAllocation(model)
        best: dict[str, float] = {}
        for _ in range(repeat):
            t = time.perf_counter()
            plan = policy.decide(snapshot)
            total = time.perf_counter() - t
            if not best or total < best["decide_s"]:
                best = {
                    "decide_s": total,
                    "predict_s": policy.last_report["predict_s"],
                    "allocate_s": policy.last_report["allocate_s"],
                }
        print(
            f"N={n:>9,}  decide {best['decide_s']:6.2f} s  (predict {best['predict_s']:6.2f} s, "
            f"mask+allocate {best['allocate_s']:6.2f} s)  contacts {int(plan.contacted().sum()):,}"
            f"  [setup {setup:.1f} s]",
            flush=True,
        )


def bench_headline(n_accounts: int, days: int, seeds: list[int]) -> None:
    """Print the paired comparison of OptimisedAllocation and the champion."""
    scenario = load_scenario("default")
    t = time.perf_counter()
    model = load_or_train(scenario)
    print(f"value model ready in {time.perf_counter() - t:.1f} s: {model.path}", flush=True)
    diffs = []
    for seed in seeds:
        row = {}
        for name, policy in (
            ("champion", TieredChampion(scenario.champion)),
            ("optimised", OptimisedAllocation(model)),
        ):
            t = time.perf_counter()
            sim = Simulation(scenario, seed=seed, n_accounts=n_accounts)
            figures = kpis(sim.run(policy, days=days))
            row[name] = figures
            print(
                f"seed {seed} {name:9s} net {figures['net_recovery']:14,.0f}  "
                f"recovered {figures['amount_recovered']:14,.0f}  "
                f"cost {figures['total_cost']:10,.0f}"
                f"  attempts {figures['attempts']:9,.0f}  blocked {figures['blocked']:.0f}"
                f"  ({time.perf_counter() - t:.0f} s)",
                flush=True,
            )
        diffs.append(row["optimised"]["net_recovery"] - row["champion"]["net_recovery"])
    d = np.asarray(diffs)
    mean = float(d.mean())
    half = float(stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size))
    print(f"paired differences: {[round(x) for x in d]}")
    print(
        f"mean paired difference (optimised - champion): {mean:,.0f}  "
        f"95% CI [{mean - half:,.0f}, {mean + half:,.0f}]  (n = {d.size} seeds)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decide", action="store_true")
    parser.add_argument("--headline", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    args = parser.parse_args()
    if args.headline:
        bench_headline(args.accounts, args.days, args.seeds)
    if args.decide:
        bench_decide(args.sizes, args.repeat)


if __name__ == "__main__":
    main()
