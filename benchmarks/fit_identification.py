"""Identification benchmark of `collsim fit`: logs from perturbed scenarios, fitted back.

For each seed: perturb every number the fit estimates (random factors in
[e^-0.25, e^0.25]), simulate logs under a random logging policy with a 10% holdout,
fit them against the unperturbed default and count the 95% intervals holding the
truth.  For the first ``--value-seeds`` seeds also compare each policy's mean
``portfolio_value`` over ``--value-reps`` simulation seeds (99, 100, ...; the same
seeds under the true and the fitted scenario and for every policy, so differences are
paired), and whether the fitted scenario ranks the policies as the true one does.
Each pair's gap also gets its model-uncertainty interval (every seed on its own draw
of the fitted numbers, the interval of one more draw): does it hold the true gap, and
when it excludes zero, is the direction right?
One simulation of 5,000 accounts varies by about 2% from seed to seed, as much as the
policies differ, so a single seed cannot say which policy the truth ranks first.

    .venv/bin/python benchmarks/fit_identification.py --seeds 1,2,3,4,5 --value-seeds 5
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from collsim.config import Scenario, load_scenario
from collsim.evaluation.runner import seed_scenario
from collsim.evaluation.stats import Interval, paired_interval
from collsim.metrics import kpis
from collsim.research.fit import DRAWS, MAX_ACCOUNTS, FitOptions
from collsim.research.fitcheck import IdentificationResult, identification_run
from collsim.research.registry import make_policy
from collsim.sim import Simulation


def _values(
    scenario: Scenario, policy: str, size: tuple[int, int], reps: int, drawn: bool = False
) -> np.ndarray:
    """The policy's ``portfolio_value`` on simulation seeds 99, 100, ... (one per rep).

    ``drawn``: each seed runs on its own draw of the fitted numbers, as ``collsim
    compare`` does with ``model_uncertainty: true``.
    """
    accounts, days = size
    values = []
    for seed in range(99, 99 + reps):
        sim = Simulation(seed_scenario(scenario, seed, drawn), seed, n_accounts=accounts)
        sim.run(make_policy(policy, sim.scenario), days)
        values.append(float(kpis(sim.ledger)["portfolio_value"]))
    return np.array(values)


def _standard_error(values: np.ndarray) -> float:
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


@dataclass
class _Tally:
    """Pairs of policies over the seeds: how the model-uncertainty intervals did."""

    pairs: int = 0
    covered: int = 0
    decided: int = 0
    decided_right: int = 0

    def add(self, true_gap: float, interval: Interval) -> str:
        """Count one pair; return its verdict for the printout."""
        self.pairs += 1
        inside = interval.low <= true_gap <= interval.high
        self.covered += inside
        decided = interval.low > 0 or interval.high < 0
        right = decided and (interval.mean > 0) == (true_gap > 0)
        self.decided += decided
        self.decided_right += right
        sign = ("right" if right else "WRONG") if decided else "undecided"
        return f"truth {'inside' if inside else 'OUTSIDE'}, {sign}"


def _value_check(
    result: IdentificationResult,
    policies: list[str],
    size: tuple[int, int],
    reps: int,
    tally: _Tally,
) -> bool:
    """Print each policy's mean true and fitted value; return whether the ranking is kept.

    Also prints each pair's true paired gap with its standard error over the reps, so a
    changed ranking can be told apart from a tie the reps cannot resolve, and the gap's
    model-uncertainty interval (each rep on its own draw of the fitted numbers; the
    interval of one more draw), counted in ``tally``.
    """
    true = {p: _values(result.truth, p, size, reps) for p in policies}
    fitted = {p: _values(result.fitted, p, size, reps) for p in policies}
    drawn = {p: _values(result.fitted, p, size, reps, drawn=True) for p in policies}
    for p in policies:
        print(
            f"  {p:12s} true {true[p].mean():14,.0f} ± {_standard_error(true[p]):9,.0f} "
            f"fitted {fitted[p].mean():14,.0f} ± {_standard_error(fitted[p]):9,.0f} "
            f"error {fitted[p].mean() / true[p].mean() - 1:+.2%}",
            flush=True,
        )
    for i, a in enumerate(policies):
        for b in policies[i + 1 :]:
            gap, fitted_gap = true[a] - true[b], fitted[a] - fitted[b]
            model = paired_interval(drawn[a], drawn[b], predictive=True)
            print(
                f"  {a} - {b}: true {gap.mean():+12,.0f} ± {_standard_error(gap):9,.0f}, "
                f"fitted {fitted_gap.mean():+12,.0f} ± {_standard_error(fitted_gap):9,.0f}; "
                f"with model uncertainty {model.mean:+,.0f} [{model.low:+,.0f}, "
                f"{model.high:+,.0f}]: {tally.add(float(gap.mean()), model)}",
                flush=True,
            )
    mean_true = {p: v.mean() for p, v in true.items()}
    mean_fitted = {p: v.mean() for p, v in fitted.items()}
    same = sorted(policies, key=mean_true.__getitem__) == sorted(
        policies, key=mean_fitted.__getitem__
    )
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
    parser.add_argument("--value-reps", type=int, default=10)
    args = parser.parse_args()
    base = load_scenario("default")
    options = FitOptions(draws=args.draws, max_accounts=args.max_accounts)
    shares, kept = [], []
    tally = _Tally()
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
            print(
                f"portfolio_value, {args.value_accounts} accounts x {args.value_days} days, "
                f"mean of {args.value_reps} simulation seeds"
            )
            size = (args.value_accounts, args.value_days)
            policies = args.policies.split(",")
            kept.append(_value_check(result, policies, size, args.value_reps, tally))
    print(f"mean share inside: {np.mean(shares):.1%} over {len(shares)} seeds")
    if kept:
        print(f"ranking kept on {sum(kept)} of {len(kept)} seeds")
        print(
            f"model-uncertainty intervals of the {tally.pairs} policy gaps: truth inside "
            f"{tally.covered}; {tally.decided} decided (exclude 0), {tally.decided_right} "
            "of them in the true direction"
        )


if __name__ == "__main__":
    main()
