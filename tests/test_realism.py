"""Issue 15: the risk score's discrimination, message hazards and the legal pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from collsim.behaviour import CHARGED_OFF, CLOSED, LEGAL, BorrowerModel, BorrowerState
from collsim.compliance import (
    LEGAL_MIN_DPD_RULE_ID,
    ContactWindow,
    load_ruleset,
    validate_plan,
    with_legal_floor,
)
from collsim.config import Scenario, load_scenario
from collsim.export.commands import _legal_floor, export_policy
from collsim.ledger import EVENT
from collsim.metrics import kpis
from collsim.plan import Plan, Snapshot
from collsim.policies.baselines import NoContact
from collsim.portfolio import generate, risk_score_noise, score_auc
from collsim.sim.engine import Simulation
from collsim.vocab import Channel, Outcome


def _badness(latent) -> np.ndarray:  # type: ignore[no-untyped-def]
    return 1.0 - latent.ability * latent.willingness


@pytest.mark.parametrize("scenario", ["default", "cn_consumer_finance"])
@pytest.mark.parametrize("auc", [0.65, 0.72, 0.80])
def test_risk_score_auc_matches_the_parameter(scenario: str, auc: float) -> None:
    s = load_scenario(scenario).with_overrides(
        {"portfolio.risk_score_auc": auc, "portfolio.n_accounts": 30_000}
    )
    portfolio, latent = generate(s, seed=3)
    assert score_auc(portfolio.risk_score, _badness(latent)) == pytest.approx(auc, abs=0.02)


def test_a_better_score_has_less_noise_and_the_scenarios_target_a_collection_score() -> None:
    s = load_scenario("default")
    assert s.portfolio.risk_score_auc is not None and 0.70 <= s.portfolio.risk_score_auc <= 0.75
    noise = [
        risk_score_noise(s.with_overrides({"portfolio.risk_score_auc": a})) for a in (0.6, 0.7, 0.9)
    ]
    assert noise[0] > noise[1] > noise[2] > 0.0


def test_without_an_auc_the_noise_parameter_is_used() -> None:
    s = load_scenario("default").with_overrides(
        {"portfolio.risk_score_auc": None, "portfolio.risk_score_noise": 0.0}
    )
    portfolio, latent = generate(s, seed=1, n_accounts=5_000)
    np.testing.assert_allclose(portfolio.risk_score, np.round(_badness(latent), 4))
    assert score_auc(portfolio.risk_score, _badness(latent)) > 0.99


# --------------------------------------------------------------------------- messages
class SendAllowed:
    """Plans ``channel`` at ``hour`` for every account whose mask allows it (on given days)."""

    policy_id = "send_allowed"

    def __init__(self, channel: int, hour: int = 18, days: int | None = None) -> None:
        self.channel, self.hour, self.days, self.seen = channel, hour, days, 0
        self.masks: list[np.ndarray] = []

    def decide(self, snapshot: Snapshot) -> Plan:
        self.seen += 1
        slot = int(np.flatnonzero(snapshot.options.slot_hours == self.hour)[0])
        self.masks.append(snapshot.mask[:, self.channel, slot].copy())
        if self.days is not None and self.seen > self.days:
            return Plan.no_contact(snapshot.n, self.policy_id)
        allowed = self.masks[-1]
        option = np.where(allowed, self.channel * snapshot.options.n_slots + slot, -1)
        return Plan.from_options(
            option, snapshot.options, self.policy_id, ["-", "send"], allowed.astype(np.int16)
        )


def _messages_scenario(**messages: object) -> Scenario:
    s = load_scenario("default").with_overrides(
        {f"behaviour.messages.{k}": v for k, v in messages.items()}
    )
    return s.with_overrides({"capacity.channel_budgets.sms": 10**6})


def test_an_sms_opt_out_is_honoured_from_the_next_day_and_ledgered() -> None:
    s = _messages_scenario(opt_out={"sms": 0.3, "email": 0.0, "app_push": 0.0})
    policy = SendAllowed(int(Channel.SMS))
    sim = Simulation(s, seed=5, n_accounts=1_500)
    sim.run(policy, days=2)
    c = sim.ledger.columns()
    day0 = sim.first_day
    opted = c["account"][(c["event"] == EVENT["opt_out"]) & (c["day"] == day0)]
    assert opted.size > 50
    assert np.all(c["channel"][c["event"] == EVENT["opt_out"]] == Channel.SMS)
    assert sim.portfolio.sms_opt_out[opted].all()
    assert policy.masks[0][opted].all() and not policy.masks[1][opted].any()
    sms_day1 = (c["event"] == EVENT["attempt"]) & (c["day"] == day0 + 1)
    assert not np.isin(c["account"][sms_day1], opted).any()
    # only delivered messages opt out, at about the configured rate
    sent = int(((c["event"] == EVENT["attempt"]) & (c["day"] == day0)).sum())
    assert opted.size / sent == pytest.approx(0.3 * 0.95, abs=0.05)


def test_an_app_push_opt_out_removes_the_app() -> None:
    s = _messages_scenario(opt_out={"sms": 0.0, "email": 0.0, "app_push": 0.5})
    s = s.with_overrides({"capacity.channel_budgets.app_push": 10**6})
    sim = Simulation(s, seed=2, n_accounts=1_000)
    had_app = sim.portfolio.has_app.copy()
    sim.run(SendAllowed(int(Channel.APP_PUSH)), days=1)
    c = sim.ledger.columns()
    opted = c["account"][c["event"] == EVENT["opt_out"]]
    assert opted.size > 20 and had_app[opted].all() and not sim.portfolio.has_app[opted].any()


def test_message_complaints_count_in_complaints_per_1000() -> None:
    zero = {"sms": 0.0, "email": 0.0, "app_push": 0.0}
    s = _messages_scenario(opt_out=zero, complaint={**zero, "sms": 0.2})
    sim = Simulation(s, seed=3, n_accounts=1_000)
    ledger = sim.run(SendAllowed(int(Channel.SMS), days=1), days=1)
    c = ledger.columns()
    complaints = int(((c["event"] == EVENT["attempt"]) & (c["outcome"] == Outcome.COMPLAINT)).sum())
    assert complaints > 20
    assert kpis(ledger)["complaints_per_1000"] == pytest.approx(1000.0 * complaints / 1_000)


def test_opt_out_and_complaint_rise_and_open_rate_falls_with_fatigue() -> None:
    s = load_scenario("default")
    portfolio, latent = generate(s, seed=1, n_accounts=20_000)
    model = BorrowerModel(s.behaviour, latent)
    n = portfolio.n
    idx = np.arange(n)
    channel = np.full(n, int(Channel.SMS))
    rng = np.random.default_rng(0)
    u = [rng.random(n) for _ in range(3)]
    results = []
    for fatigue in (0.0, 6.0):
        state = BorrowerState.initial(n)
        state.fatigue[:] = fatigue
        results.append(model.message(idx, channel, np.full(n, 18), u[0], u[1], state, u[2]))
    calm, tired = results
    assert tired.opted_out is not None and calm.opted_out is not None
    assert tired.opted_out.sum() > 2.5 * calm.opted_out.sum() > 0
    complaint = [(r.outcome == Outcome.COMPLAINT).sum() for r in results]
    assert complaint[1] > complaint[0]
    k = s.behaviour.messages.fatigue_open
    assert tired.effective.sum() / calm.effective.sum() == pytest.approx(1 / (1 + 6 * k), rel=0.1)


def test_a_single_plain_sms_changes_30_day_cure_by_0_to_5_points() -> None:
    s = load_scenario("default").with_overrides({"capacity.channel_budgets.sms": 10**6})
    cure = []
    for policy in (NoContact(), SendAllowed(int(Channel.SMS), days=1)):
        sim = Simulation(s, seed=11, n_accounts=4_000)
        c = sim.run(policy, days=30).columns()
        cured = np.unique(c["account"][c["event"] == EVENT["cure"]])
        cure.append(cured.size / sim.n)
    assert -0.005 <= cure[1] - cure[0] <= 0.05


# --------------------------------------------------------------------------- legal
class SueEveryone:
    """Plans legal action for every account on the first day, whatever the mask says."""

    policy_id = "sue_everyone"

    def __init__(self) -> None:
        self.masks: list[np.ndarray] = []

    def decide(self, snapshot: Snapshot) -> Plan:
        self.masks.append(snapshot.mask[:, Channel.LEGAL, 0].copy())
        if len(self.masks) > 1:
            return Plan.no_contact(snapshot.n, self.policy_id)
        option = np.full(snapshot.n, int(Channel.LEGAL) * snapshot.options.n_slots)
        return Plan.from_options(
            option, snapshot.options, self.policy_id, ["sue"], np.zeros(snapshot.n, np.int16)
        )


def _legal_scenario(**legal: object) -> Scenario:
    s = load_scenario("default").with_overrides({f"legal.{k}": v for k, v in legal.items()})
    return s.with_overrides({"capacity.channel_budgets.legal": 10**6})


def test_no_policy_can_sue_below_the_minimum_dpd() -> None:
    s = _legal_scenario(min_dpd=90)
    policy = SueEveryone()
    sim = Simulation(s, seed=4, n_accounts=800)
    dpd = sim.portfolio.dpd.copy()
    sim.run(policy, days=1)
    c = sim.ledger.columns()
    filed = c["account"][c["event"] == EVENT["legal_filed"]]
    assert filed.size > 0 and np.all(dpd[filed] >= 90)
    young = np.flatnonzero(dpd < 90)
    assert not policy.masks[0][young].any()
    blocked = (c["event"] == EVENT["blocked"]) & np.isin(c["account"], young)
    assert np.array_equal(np.sort(c["account"][blocked]), young)
    rules = {sim.ledger.rules[r] for r in c["rule"][blocked]}
    assert LEGAL_MIN_DPD_RULE_ID in rules
    # validate_plan, which the plan and validate-plan commands use, refuses it too
    ruleset = with_legal_floor(load_ruleset("us_reg_f"), 90)
    portfolio, _ = generate(s, seed=4, n_accounts=800)
    plan = Plan.from_options(
        np.full(800, int(Channel.LEGAL) * sim.options.n_slots),
        sim.options,
        "sue",
        ["sue"],
        np.zeros(800, np.int16),
    )
    window = ContactWindow.empty(800, sim.first_day)
    refused = {
        v.account_id
        for v in validate_plan(plan, portfolio, window, ruleset, sim.options)
        if v.rule_id == LEGAL_MIN_DPD_RULE_ID
    }
    assert refused == set(portfolio.account_id[portfolio.dpd < 90])


def test_without_a_floor_legal_is_allowed_at_any_dpd() -> None:
    sim = Simulation(_legal_scenario(min_dpd=0), seed=4, n_accounts=300)
    assert LEGAL_MIN_DPD_RULE_ID not in sim.ruleset.rule_ids
    sim.run(SueEveryone(), days=1)
    c = sim.ledger.columns()
    assert (sim.portfolio.dpd[c["account"][c["event"] == EVENT["legal_filed"]]] < 90).any()


def test_recoveries_come_in_garnishment_instalments_with_court_costs() -> None:
    s = _legal_scenario(
        min_dpd=0,
        duration_days=2,
        success_rate=1.0,
        recovery_fraction=0.6,
        nothing_recovered_share=0.4,
        recovery_instalments=3,
        recovery_interval_days=5,
        cost_per_case=100.0,
        court_cost_per_case=250.0,
    )
    sim = Simulation(s, seed=8, n_accounts=1_000)
    balance = sim.portfolio.balance.copy()
    ledger = sim.run(SueEveryone(), days=20)
    c = ledger.columns()
    closed = c["event"] == EVENT["legal_closed"]
    filed = c["event"] == EVENT["legal_filed"]
    assert closed.sum() == filed.sum() > 100
    assert np.all(c["cost"][closed] == 250.0)
    assert kpis(ledger)["legal_cost"] == pytest.approx(350.0 * filed.sum())
    won = c["account"][closed & (c["outcome"] == Outcome.PAYMENT)]
    # P(won) = ability; of those a share 0.4 recovers nothing
    judged = c["account"][closed]
    expected = (1 - 0.4) * sim.latent.ability[judged].mean()
    assert won.size / judged.size == pytest.approx(expected, abs=0.06)
    pay = (c["event"] == EVENT["payment"]) & (c["channel"] == Channel.LEGAL)
    payer, day = c["account"][pay], c["day"][pay]
    assert set(payer) == set(won)
    counts = np.bincount(payer, minlength=sim.n)[won]
    assert np.all(counts == 3)
    order = np.lexsort((day, payer))
    gaps = np.diff(day[order].reshape(-1, 3), axis=1)
    assert np.all(gaps == 5)
    paid = np.bincount(payer, weights=c["amount"][pay], minlength=sim.n)[won]
    np.testing.assert_allclose(paid, 3 * np.round(0.6 * balance[won] / 3, 2), atol=1e-6)
    assert np.all(sim.state.status[won] == CLOSED)
    lost = np.setdiff1d(judged, won)
    assert np.all(sim.state.status[lost] == CHARGED_OFF)


def test_instalments_stop_at_the_horizon() -> None:
    s = _legal_scenario(
        min_dpd=0, duration_days=1, success_rate=1.0, recovery_instalments=4,
        recovery_interval_days=30,
    )  # fmt: skip
    sim = Simulation(s, seed=8, n_accounts=400)
    c = sim.run(SueEveryone(), days=40).columns()
    won = c["account"][(c["event"] == EVENT["legal_closed"]) & (c["outcome"] == Outcome.PAYMENT)]
    pay = (c["event"] == EVENT["payment"]) & (c["channel"] == Channel.LEGAL)
    assert won.size > 20
    assert np.all(np.bincount(c["account"][pay], minlength=sim.n)[won] == 2)
    assert np.all(sim.state.status[won] == LEGAL)


def test_an_untreated_run_with_opt_outs_writes_them_and_stays_untreated() -> None:
    s = _messages_scenario(opt_out={"sms": 0.3, "email": 0.0, "app_push": 0.0})
    sim = Simulation(s, seed=5, n_accounts=300)
    ledger = sim.run(SendAllowed(int(Channel.SMS)), days=1)
    assert not ledger.treated()
    table = ledger.to_table(sim.portfolio.account_id)
    assert "offer" not in table.column_names
    events = table.column("event").to_pylist()
    assert events.count("opt_out") == int((ledger.columns()["event"] == EVENT["opt_out"]).sum()) > 0


def test_exported_artifacts_and_plan_validation_carry_the_litigation_floor(tmp_path: Path) -> None:
    s = load_scenario("default")
    assert export_policy("champion", tmp_path / "champion", "default") == 0
    manifest = json.loads((tmp_path / "champion" / "manifest.json").read_text())
    assert manifest["legal_min_dpd"] == s.legal.min_dpd == 90
    # a plan without a manifest is validated with the default scenario's floor
    assert _legal_floor(tmp_path / "no_such_plan.parquet") == s.legal.min_dpd
