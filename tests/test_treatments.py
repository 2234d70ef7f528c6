"""Treatments beyond the channel (issue 11): offers, variants, rules, unchanged defaults."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest

from collsim.behaviour import ACTIVE, BorrowerModel, BorrowerState
from collsim.compliance import ContactWindow, load_ruleset, validate_plan
from collsim.config import load_scenario
from collsim.ledger import EVENT
from collsim.metrics import treatment_kpis
from collsim.plan import Plan
from collsim.policies.champion import TieredChampion
from collsim.portfolio import generate
from collsim.sim.engine import Simulation
from collsim.treatments import TreatmentTables
from collsim.vocab import Channel, Offer, Outcome, Variant
from tests.fixed_policies import OfferEveryone

SCENARIO = load_scenario("default")


def _ledger_sha256(scenario, ruleset: str, tmp_path: Path, name: str) -> str:
    sim = Simulation(scenario, seed=5, n_accounts=400, ruleset=ruleset)
    ledger = sim.run(TieredChampion("champion_us"), days=25)
    path = tmp_path / f"{name}.parquet"
    ledger.write_parquet(path, sim.portfolio.account_id)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("ruleset", ["us_reg_f", "strict_example"])
def test_runs_without_treatments_are_byte_identical(ruleset: str, tmp_path: Path) -> None:
    """A policy that offers nothing gives the same ledger, byte for byte, whether or not
    the scenario configures treatments (the treatment machinery draws nothing, writes
    nothing).  When this was written it also matched the code from before treatments
    existed (commit 13cf39e2)."""
    without = SCENARIO.model_copy(update={"treatments": None})
    assert SCENARIO.treatments is not None
    assert _ledger_sha256(SCENARIO, ruleset, tmp_path, "with") == _ledger_sha256(
        without, ruleset, tmp_path, "without"
    )


# ----------------------------------------------------------------- borrower model, paired
def _model(n: int = 20_000) -> tuple[BorrowerModel, np.ndarray]:
    _, latent = generate(SCENARIO.scaled_to(n), seed=3)
    tables = TreatmentTables.from_scenario(SCENARIO, latent.segments)
    return BorrowerModel(SCENARIO.behaviour, latent, tables), latent.segment


def _by_segment(values: np.ndarray, segment: np.ndarray) -> dict[str, float]:
    names = [s.name for s in SCENARIO.behaviour.segments]
    return {name: float(values[segment == s].mean()) for s, name in enumerate(names)}


def test_offer_take_up_directions_by_segment() -> None:
    model, segment = _model()
    idx = np.arange(segment.size)
    rng = np.random.default_rng(0)
    u = rng.random(idx.size)  # the same draws for every treatment (paired)
    std = np.zeros(idx.size, dtype=np.int64)

    def rate(offer: int, dpd: int) -> dict[str, float]:
        p = model.offer_take_up(idx, np.full(idx.size, offer), std, np.full(idx.size, dpd))
        return _by_segment((u < p).astype(float), segment)

    plan = rate(Offer.INSTALMENT_PLAN, 45)
    for s in ("struggling", "hardship"):  # take instalment plans more than the rest
        assert plan[s] > plan["forgetful"] and plan[s] > plan["strategic"]
    near, far = rate(Offer.SETTLEMENT, 175), rate(Offer.SETTLEMENT, 95)
    assert near["strategic"] > 2 * far["strategic"]  # settlements near charge-off
    assert near["strategic"] == max(near.values())
    assert rate(Offer.NONE, 45) == dict.fromkeys(plan, 0.0)


def test_variant_directions_by_segment() -> None:
    model, segment = _model(5_000)
    idx = np.arange(segment.size)
    state = BorrowerState.initial(idx.size)
    channel = np.full(idx.size, Channel.AGENT_CALL)

    def probs(variant: int) -> np.ndarray:
        scale = model.variant_scale(idx, np.full(idx.size, variant))
        return model.conversation_probabilities(idx, channel, state, scale)

    std, emp, firm = probs(Variant.STANDARD), probs(Variant.EMPATHETIC), probs(Variant.FIRM)
    assert np.array_equal(std, model.conversation_probabilities(idx, channel, state))
    complaint, cease, pay = 5, 6, 0
    strategic = segment == [s.name for s in SCENARIO.behaviour.segments].index("strategic")
    for col in (complaint, cease):
        assert np.all(emp[:, col] < std[:, col])
        assert np.all(firm[~strategic, col] > std[~strategic, col])
        assert np.all(firm[strategic, col] <= std[strategic, col] * (1 + 1e-9))
    assert np.all(firm[strategic, pay] > std[strategic, pay])


def _run(policy: OfferEveryone, days: int = 12, n: int = 1500, ruleset: str | None = None):
    sim = Simulation(SCENARIO, seed=4, n_accounts=n, ruleset=ruleset)
    return sim, sim.run(policy, days=days)


def test_sim_instalment_offer_taken_by_struggling_and_hardship() -> None:
    sim, ledger = _run(OfferEveryone(Offer.INSTALMENT_PLAN))
    c = ledger.columns()
    took = np.unique(c["account"][c["event"] == EVENT["offer_accepted"]])
    talked = np.unique(
        c["account"][(c["event"] == EVENT["attempt"]) & (c["outcome"] >= Outcome.RIGHT_PARTY)]
    )
    share = _by_segment(np.isin(talked, took).astype(float), sim.latent.segment[talked])
    assert share["struggling"] > share["forgetful"]
    assert share["hardship"] > share["strategic"]


def test_sim_empathetic_lowers_complaints_paired() -> None:
    _, standard = _run(OfferEveryone(Offer.NONE, Variant.STANDARD), days=10)
    _, empathetic = _run(OfferEveryone(Offer.NONE, Variant.EMPATHETIC), days=10)
    a = treatment_kpis(standard)["complaints.none.standard"]
    b = treatment_kpis(empathetic)["complaints.none.empathetic"]
    assert b < a


def test_offered_plans_break_and_return_to_collection() -> None:
    policy = OfferEveryone(Offer.INSTALMENT_PLAN)
    sim = Simulation(SCENARIO, seed=4, n_accounts=1200)
    seen = 0
    for _ in range(40):
        snapshot = sim.begin_day()  # the morning: instalments due are paid or broken
        c = sim.ledger.columns()
        today = (c["event"] == EVENT["plan_broken"]) & (c["day"] == sim.day)
        broken = c["account"][today & (c["offer"] == Offer.INSTALMENT_PLAN)]
        seen += broken.size
        # Back in collection: no plan, no hardship flag, active and contactable again.
        assert np.all(sim.state.plan_remaining[broken] == 0)
        assert np.all(sim.state.status[broken] == ACTIVE)
        assert not sim.portfolio.hardship_plan[broken].any()
        assert np.all(snapshot.active[broken])
        sim.finish_day(policy.decide(snapshot))
    assert seen > 0
    kpi = treatment_kpis(sim.ledger)
    assert kpi["offer_take_up.instalment_plan"] > 0 and kpi["offered_plan_completion_rate"] == 0.0


def test_settlement_closes_and_records_discount() -> None:
    scenario = SCENARIO.with_overrides({"treatments.settlement.min_dpd": 1})
    sim = Simulation(scenario, seed=4, n_accounts=1500)
    ledger = sim.run(OfferEveryone(Offer.SETTLEMENT), days=8)
    c = ledger.columns()
    settled = c["event"] == EVENT["settlement"]
    assert settled.any()
    account = c["account"][settled]
    assert np.all(sim.portfolio.balance[account] == 0)
    assert treatment_kpis(ledger)["discount_given"] == pytest.approx(c["amount"][settled].sum())


def test_forbidden_treatments_never_given_in_the_sim() -> None:
    sim, ledger = _run(OfferEveryone(Offer.SETTLEMENT, Variant.FIRM), ruleset="treatments_example")
    c = ledger.columns()
    firm = (c["event"] == EVENT["attempt"]) & (c["variant"] == Variant.FIRM)
    assert firm.any()
    assert not sim.portfolio.vulnerable[c["account"][firm]].any()
    blocked = c["event"] == EVENT["treatment_blocked"]
    names = {ledger.rules[r] for r in np.unique(c["rule"][blocked])}
    assert "treat.vulnerable_no_firm" in names
    assert "treatment.scenario" in names  # settlement below its minimum DPD
    table = ledger.to_table(sim.portfolio.account_id)
    assert {"offer", "variant"} <= set(table.column_names)


def test_validate_plan_flags_forbidden_offers() -> None:
    portfolio, _ = generate(SCENARIO.scaled_to(6), seed=1)
    portfolio.vulnerable[:] = [True, False, False, False, False, False]
    portfolio.hardship_plan[:] = [False, True, False, False, False, False]
    ruleset = load_ruleset("treatments_example")
    sim = Simulation(SCENARIO, seed=1, n_accounts=6)
    n = portfolio.n
    plan = Plan.from_options(
        np.full(n, int(Channel.SMS) * sim.options.n_slots + 4),
        sim.options,
        "hand",
        ["hand-made"],
        np.zeros(n, dtype=np.int16),
        offer=np.array([0, Offer.SETTLEMENT, Offer.SETTLEMENT, 0, 0, 0]),
        variant=np.array([Variant.FIRM, 0, 0, 0, 0, 0]),
    )
    window = ContactWindow.empty(n, sim.day)
    found = {
        (v.account_id, v.rule_id)
        for v in validate_plan(plan, portfolio, window, ruleset, sim.options)
    }
    ids = portfolio.account_id
    assert (ids[0], "treat.vulnerable_no_firm") in found
    assert (ids[1], "treat.hardship_offers") in found
    assert not any(a == ids[2] and r.startswith("treat.") for a, r in found)
    allowed, rule = ruleset.treatment_allowed(
        portfolio, window, np.arange(3), np.array([0, 2, 2]), np.array([2, 0, 0])
    )
    assert allowed.tolist() == [False, False, True]
    assert rule.tolist() == ["treat.vulnerable_no_firm", "treat.hardship_offers", ""]


def test_plan_defaults_are_none_and_standard() -> None:
    plan = Plan.no_contact(4, "p")
    assert plan.variant.tolist() == [0, 0, 0, 0] and plan.offer.tolist() == [0, 0, 0, 0]
    copy = dataclasses.replace(plan, priority=plan.priority.copy())
    assert copy.variant.shape == (4,)
