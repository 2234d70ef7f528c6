"""Identification benchmark of `collsim fit`: logs from perturbed scenarios, fitted back.

For each seed: perturb every number the fit estimates (random factors in
[e^-0.25, e^0.25]), simulate logs under a random logging policy with a 10% holdout,
fit them against the unperturbed default and count the 95% intervals holding the
truth.  For the first ``--value-seeds`` seeds also compare each policy's
``portfolio_value`` under the true and the fitted scenario (same portfolio seed),
and whether the fitted scenario ranks the policies as the true one does.

    .venv/bin/python benchmarks/fit_identification.py --seeds 1,2,3,4,5 --value-seeds 5
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from collsim.config import Scenario, load_scenario
from collsim.metrics import kpis
from collsim.research.fit import DRAWS, MAX_ACCOUNTS, FitOptions
from collsim.research.fitcheck import IdentificationResult, identification_run
from collsim.research.registry import make_policy
from collsim.sim import Simulation


def _value(scenario: Scenario, policy: str, accounts: int, days: int) -> float:
    sim = Simulation(scenario, 99, n_accounts=accounts)
    sim.run(make_policy(policy, sim.scenario), days)
    return float(kpis(sim.ledger)["portfolio_value"])


def _value_check(result: IdentificationResult, policies: list[str], size: tuple[int, int]) -> bool:
    """Print each policy's true and fitted value; return whether the ranking is kept."""
    true = {p: _value(result.truth, p, *size) for p in policies}
    fitted = {p: _value(result.fitted, p, *size) for p in policies}
    for p in policies:
        print(
            f"  {p:12s} true {true[p]:14,.0f} fitted {fitted[p]:14,.0f} "
            f"error {fitted[p] / true[p] - 1:+.1%}",
            flush=True,
        )
    same = sorted(policies, key=true.__getitem__) == sorted(policies, key=fitted.__getitem__)
    print(f"  ranking {'kept' if same else 'CHANGED'}", flush=True)
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--accounts", type=int, default=20000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--draws", type=int, default=DRAWS)
    parser.add_argument("--max-accounts", type=int, default=MAX_ACCOUNTS)
    parser.add_argument("--policies", default="champion,greedy,optimised,no_contact")
    parser.add_argument("--value-seeds", type=int, default=1)
    parser.add_argument("--value-accounts", type=int, default=5000)
    parser.add_argument("--value-days", type=int, default=60)
    args = parser.parse_args()
    base = load_scenario("default")
    options = FitOptions(draws=args.draws, max_accounts=args.max_accounts)
    shares, kept = [], []
    for index, seed in enumerate(int(s) for s in args.seeds.split(",")):
        started = time.perf_counter()
        result = identification_run(base, seed, (args.accounts, args.days), options)
        shares.append(result.covered_share)
        misses = ", ".join(
            f"{r.path.removeprefix('behaviour.')} (z {r.z:.1f})"
            for r in result.rows
            if not r.inside()
        )
        print(
            f"seed {seed}: {result.covered_share:.0%} of {len(result.rows)} inside "
            f"({time.perf_counter() - started:.0f} s); outside: {misses or '-'}",
            flush=True,
        )
        if index < args.value_seeds:
            print(f"portfolio_value, {args.value_accounts} accounts x {args.value_days} days")
            size = (args.value_accounts, args.value_days)
            kept.append(_value_check(result, args.policies.split(","), size))
    print(f"mean share inside: {np.mean(shares):.1%} over {len(shares)} seeds")
    if kept:
        print(f"ranking kept on {sum(kept)} of {len(kept)} seeds")


if __name__ == "__main__":
    main()
