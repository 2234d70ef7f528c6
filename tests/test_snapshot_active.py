"""The invariant a single ``build_snapshot`` rests on (issue 16, "one build_snapshot").

The engine's Snapshot marks ``active = status == ACTIVE``; the daily plan marks
``active = dpd > 0``.  In simulation every account in collection is past due, and
the accounts past due but not in collection are exactly those a lender's collections
file would not list (with the courts, charged off, closed by settlement, on a payment
holiday).  So "a listed account is in collection iff dpd > 0" gives the engine's
``active`` when the simulator lists only ACTIVE and CURED rows.
"""

from __future__ import annotations

import numpy as np

from collsim.behaviour import ACTIVE, CURED
from collsim.config import load_scenario
from collsim.policies.registry import make_policy
from collsim.sim.engine import Simulation


def test_in_collection_equals_listed_and_past_due() -> None:
    scenario = load_scenario("default")
    policy = make_policy("champion", scenario)
    sim = Simulation(scenario, seed=3, n_accounts=600)
    for _ in range(30):
        snapshot = sim.begin_day()
        status, dpd = sim.state.status, sim.portfolio.dpd
        listed = (status == ACTIVE) | (status == CURED)
        assert np.array_equal(snapshot.active, listed & (dpd > 0))
        sim.finish_day(policy.decide(snapshot))
