"""Treatment fixes and checks.

Dropped and held-out plan rows lose their variant; a payment holiday does not end an
account episode; payment-holiday take-up follows the scenario's segment directions.
"""

from __future__ import annotations

import numpy as np

from collsim.behaviour import ACTIVE, HOLIDAY, BorrowerModel
from collsim.config import load_scenario
from collsim.envs.account import AccountEnv
from collsim.export.daily import _drop, apply_holdout
from collsim.plan import OptionSpace, Plan
from collsim.portfolio import generate
from collsim.treatments import TreatmentTables
from collsim.vocab import OFFERS, VARIANTS, Channel, Offer


def _treated_plan(n: int = 40) -> Plan:
    options = OptionSpace(np.arange(8, 21))
    channel = np.where(np.arange(n) % 2 == 0, Channel.AGENT_CALL, Channel.SMS)
    option = options.encode(channel, np.full(n, 18))
    return Plan.from_options(
        option,
        options,
        "p",
        ["r"],
        np.zeros(n, dtype=np.int16),
        offer=np.full(n, OFFERS.index("settlement"), dtype=np.int8),
        variant=np.full(n, VARIANTS.index("firm"), dtype=np.int8),
    )


def test_dropped_rows_lose_offer_and_variant() -> None:
    plan = _treated_plan()
    rows = np.array([1, 5, 7])
    out = _drop(plan, rows, "money budget exhausted")
    assert np.all(out.channel[rows] == -1)
    assert np.all(out.offer[rows] == 0) and np.all(out.variant[rows] == 0)
    kept = np.setdiff1d(np.arange(plan.n), rows)
    assert np.all(out.variant[kept] == VARIANTS.index("firm"))
    assert np.all(plan.variant == VARIANTS.index("firm"))  # the input is not modified


def test_held_out_rows_lose_offer_and_variant() -> None:
    plan = _treated_plan(400)
    out = apply_holdout(plan, 0.3, seed=3, day=20_000)
    held = out.holdout
    assert 0 < held.sum() < plan.n
    assert np.all(out.offer[held] == 0) and np.all(out.variant[held] == 0)
    assert np.all(out.variant[~held] == VARIANTS.index("firm"))


def test_payment_holiday_does_not_terminate_the_account_episode() -> None:
    env = AccountEnv(seed=0, horizon=30, pool_size=64)
    for seed in range(20):
        env.reset(seed=seed)
        assert env.sim is not None
        if int(env.sim.state.status[0]) == ACTIVE:
            break
    sim = env.sim
    assert sim is not None and int(sim.state.status[0]) == ACTIVE
    # Put the account on a payment holiday ending in two days (as an accepted offer does).
    sim.state.status[0] = HOLIDAY
    sim.state.holiday_until[0] = sim.day + 2
    _, _, terminated, _, _ = env.step(0)
    assert not terminated
    assert int(sim.state.status[0]) == HOLIDAY
    assert not env.action_masks()[1:].any()  # no contact during the holiday
    _, _, terminated, _, _ = env.step(0)
    assert not terminated
    assert int(sim.state.status[0]) == ACTIVE  # back in collection after the holiday


def test_payment_holiday_take_up_direction_by_segment() -> None:
    """The hardship and struggling segments take payment holidays more than the others."""
    scenario = load_scenario("default")
    _, latent = generate(scenario.scaled_to(20_000), seed=3)
    model = BorrowerModel(
        scenario.behaviour, latent, TreatmentTables.from_scenario(scenario, latent.segments)
    )
    idx = np.arange(latent.segment.size)
    u = np.random.default_rng(0).random(idx.size)  # the same draws for every offer (paired)
    zeros = np.zeros(idx.size, dtype=np.int64)
    p = model.offer_take_up(idx, np.full(idx.size, Offer.PAYMENT_HOLIDAY), zeros, zeros + 45)
    names = [g.name for g in scenario.behaviour.segments]
    rate = {name: float((u < p)[latent.segment == g].mean()) for g, name in enumerate(names)}
    for s in ("hardship", "struggling"):
        assert rate[s] > rate["forgetful"] and rate[s] > rate["strategic"]
    assert rate["hardship"] == max(rate.values())
