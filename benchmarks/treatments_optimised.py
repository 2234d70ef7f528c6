"""Optimised allocation with treatments vs the same allocation restricted to none (issue 11).

Run::

    .venv/bin/python benchmarks/treatments_optimised.py [ACCOUNTS DAYS FIRST_SEED SEEDS]

defaults ``5000 90 11 10``.  Trains a value model and a treatment-effect model on
exploration runs that randomise treatments
(:func:`collsim.research.treatment.train_with_treatments`; seeds 101-104,
5,000 accounts, 90 days, H = 14; every contact carries a random allowed treatment,
(none, standard) for half of them), prints the treatments the effect model finds
better than none (lower bound at z = 2 standard errors, per channel group and DPD
band), then simulates, on paired seeds:

* ``treated``: :class:`~collsim.policies.optimised.OptimisedAllocation` whose option set
  is channel × slot × treatment (best allowed treatment per option, then the exact
  allocation);
* ``humane``: the same, with complaints priced at ``COMPLAINT_COST`` = 650 per
  complaint in the treatment effects (a policy preference, not a cash flow; the order of
  the UK Financial Ombudsman's case fee);
* ``none``: the same policy and models restricted to offer ``none`` and variant
  ``standard``;
* ``no_offer``: restricted to offer ``none`` (variants allowed).

Prints the paired differences against ``none`` (95% t-intervals) of the NPV of
recoveries, complaints per 1,000 accounts and the discount given.

With ``--rl MODEL`` (a MaskablePPO ``.zip`` or ensemble ``.json``), the arms are
``RLPolicy(MODEL, fallbacks=8).with_treatments(...)`` instead: RL chooses channel and slot,
the same treatment chooser adds the treatment (``no_offer`` is skipped).
"""

from __future__ import annotations

import sys
import time

import numpy as np
from scipy import stats

from collsim.config import load_scenario
from collsim.metrics import kpis, treatment_kpis
from collsim.plan import Policy
from collsim.policies.models.treatment import (
    TREATMENT_OFFER,
    TREATMENT_VARIANT,
    TreatmentChooser,
    TreatmentSupport,
)
from collsim.policies.optimised import OptimisedAllocation
from collsim.policies.rl import RLPolicy
from collsim.research.training import TrainingSettings
from collsim.research.treatment import train_with_treatments
from collsim.rl.logits import load_logit_model
from collsim.sim.engine import Simulation
from collsim.vocab import OFFERS, VARIANTS

COMPLAINT_COST = 650.0


def main(argv: list[str]) -> None:
    """Train, simulate the arms on paired seeds and print the differences."""
    rl_model = None
    if "--rl" in argv:
        at = argv.index("--rl")
        rl_model, argv = argv[at + 1], argv[:at] + argv[at + 2 :]
    n, days, first, count = (int(a) for a in (argv + ["5000", "90", "11", "10"][len(argv) :]))
    seeds = range(first, first + count)
    scenario = load_scenario("default")
    assert scenario.treatments is not None
    rate = scenario.treatments.npv_discount_rate_annual
    start = time.perf_counter()
    settings = TrainingSettings(seeds=(101, 102, 103, 104), n_accounts=5000)
    value, effects = train_with_treatments(scenario, settings)
    print(f"trained in {time.perf_counter() - start:.0f} s; rows per (group, treatment):")
    print(effects.rows_per_treatment_.tolist())
    for g, b, t in zip(*np.nonzero(effects.rate_ > 0), strict=True):
        print(
            f"  group {('conversation', 'message')[g]}, DPD >= {effects.dpd_edges[b]}: "
            f"{OFFERS[TREATMENT_OFFER[t]]}/{VARIANTS[TREATMENT_VARIANT[t]]} "
            f"rate {effects.rate_[g, b, t]:.4f} x balance ({effects.rows_[g, b, t]} rows)"
        )
    support = TreatmentSupport.from_scenario(scenario)
    print("complaints per contact over none, conversation / message, by DPD band:")
    for g in range(2):
        print(" ", np.round(effects.complaint_diff_[g] * 1000, 2).tolist())
    arms = {
        "treated": TreatmentChooser(effects, support),
        "humane": TreatmentChooser(effects, support, complaint_cost=COMPLAINT_COST),
        "none": TreatmentChooser(effects, support, offers=("none",), variants=("standard",)),
        "no_offer": TreatmentChooser(effects, support, offers=("none",)),
    }
    if rl_model is not None:
        del arms["no_offer"]
    rows: dict[tuple[int, str], dict[str, float]] = {}
    start = time.perf_counter()
    for seed in seeds:
        for arm, chooser in arms.items():
            policy: Policy = OptimisedAllocation(
                value, treatments=chooser, policy_id=f"optimised_{arm}"
            )
            if rl_model is not None:
                policy = RLPolicy(
                    load_logit_model(rl_model), fallbacks=8, policy_id=f"rl_{arm}"
                ).with_treatments(chooser)
            led = Simulation(scenario, seed=seed, n_accounts=n).run(policy, days=days)
            k, tk = kpis(led), treatment_kpis(led, rate)
            rows[(seed, arm)] = {
                "npv": tk["npv_recovered"],
                "complaints_per_1000": k["complaints_per_1000"],
                "discount": tk["discount_given"],
                "net_recovery": k["net_recovery"],
                "settlements": tk["offers_made.settlement"],
                "instalment_offers": tk["offers_made.instalment_plan"],
                "holiday_offers": tk["offers_made.payment_holiday"],
            }
            print(seed, arm, {a: round(b, 3) for a, b in rows[(seed, arm)].items()}, flush=True)
    print(
        f"\n{n} accounts x {days} days, seeds {first}-{first + count - 1}, "
        f"{time.perf_counter() - start:.0f} s"
    )
    for arm in sorted(set(arms) - {"none"}):
        print(f"\n{arm} - none (paired, 95% t-interval):")
        for key in ("npv", "complaints_per_1000", "discount", "net_recovery"):
            d = np.array([rows[(s, arm)][key] - rows[(s, "none")][key] for s in seeds])
            half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
            base = np.mean([rows[(s, "none")][key] for s in seeds])
            print(
                f"  {key}: {d.mean():+,.2f} [{d.mean() - half:+,.2f}, {d.mean() + half:+,.2f}]"
                f"  (none: {base:,.2f})"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
