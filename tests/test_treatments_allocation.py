"""The allocation chooses treatments: pruning keeps the optimum, rules hold, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from collsim.config import load_scenario
from collsim.ledger import EVENT
from collsim.plan import Snapshot
from collsim.policies.allocation import allocate
from collsim.policies.champion import TieredChampion
from collsim.policies.models.treatment import (
    CHANNEL_GROUP,
    N_TREATMENTS,
    TREATMENT_OFFER,
    TREATMENT_VARIANT,
    TreatmentChooser,
    TreatmentSupport,
    prune_treatments,
    treatment_code,
)
from collsim.policies.optimised import OptimisedAllocation
from collsim.research.exploration import collect_log
from collsim.sim.engine import Simulation
from collsim.vocab import N_CHANNELS, OFFERS, VARIANTS, Channel, Offer, Variant

SCENARIO = load_scenario("default")


def _objective(value: np.ndarray, choice: np.ndarray) -> float:
    rows = np.flatnonzero(choice >= 0)
    return float(value[rows, choice[rows]].sum())


@pytest.mark.parametrize("seed", range(6))
def test_pruning_keeps_the_optimum(seed: int) -> None:
    """Solving over the best treatment per option = solving over all N × K × T options."""
    rng = np.random.default_rng(seed)
    n, s, r = 40, 3, 5
    k = N_CHANNELS * s
    channel = np.repeat(np.arange(N_CHANNELS), s)
    value = rng.normal(2.0, 4.0, (n, k))
    mask = rng.random((n, k)) < 0.6
    effect = rng.normal(0.0, 3.0, (n, N_CHANNELS, N_TREATMENTS))
    effect[:, CHANNEL_GROUP < 0] = 0.0
    allowed = rng.random((n, N_CHANNELS, N_TREATMENTS)) < 0.5
    allowed[:, :, 0] = True
    resource_of = rng.integers(-1, r, k)
    capacity = rng.integers(1, 8, r)

    pruned, treatment = prune_treatments(value, effect, allowed, channel)
    choice = allocate(pruned, mask & (pruned > 0), resource_of, capacity)

    full = (value[:, :, None] + effect[:, channel, :]).reshape(n, k * N_TREATMENTS)
    full_mask = (mask[:, :, None] & allowed[:, channel, :]).reshape(n, -1) & (full > 0)
    full_choice = allocate(full, full_mask, np.repeat(resource_of, N_TREATMENTS), capacity)

    assert _objective(pruned, choice) == pytest.approx(_objective(full, full_choice), abs=1e-6)
    rows = np.flatnonzero(choice >= 0)
    t = treatment[rows, choice[rows]]
    assert allowed[rows, channel[choice[rows]], t].all()
    # The pruned solve is no larger than the solve without treatments.
    assert pruned.shape == value.shape


def test_prune_picks_the_best_allowed_treatment() -> None:
    value = np.zeros((1, N_CHANNELS))
    effect = np.zeros((1, N_CHANNELS, N_TREATMENTS))
    effect[0, :, 5] = 10.0  # best but forbidden
    effect[0, :, 3] = 4.0
    allowed = np.zeros((1, N_CHANNELS, N_TREATMENTS), dtype=bool)
    allowed[:, :, [0, 3]] = True
    out, treatment = prune_treatments(value, effect, allowed, np.arange(N_CHANNELS))
    assert np.all(treatment == 3) and np.allclose(out, 4.0)
    effect[0, :, 3] = -1.0  # every treatment worse than none
    out, treatment = prune_treatments(value, effect, allowed, np.arange(N_CHANNELS))
    assert np.all(treatment == 0) and np.allclose(out, 0.0)


class _FlatValues:
    """Every allowed option is worth the same (so the treatment decides)."""

    def predict_value(self, snapshot: Snapshot) -> np.ndarray:
        return np.full((snapshot.n, snapshot.options.n_options), 5.0, dtype=np.float32)


class _GreedyEffects:
    """Effects that favour forbidden-prone treatments: settlement firm ≫ the rest."""

    def channel_effects(self, features: np.ndarray) -> np.ndarray:
        out = np.zeros((features.shape[0], N_CHANNELS, N_TREATMENTS))
        out[:, :, treatment_code(Offer.SETTLEMENT, Variant.FIRM)] = 100.0
        out[:, :, treatment_code(Offer.INSTALMENT_PLAN, Variant.FIRM)] = 50.0
        out[:, :, treatment_code(Offer.NONE, Variant.FIRM)] = 20.0
        out[:, :, treatment_code(Offer.NONE, Variant.EMPATHETIC)] = 10.0
        out[:, CHANNEL_GROUP < 0] = 0.0
        return out


def _run(chooser: TreatmentChooser, ruleset: str, days: int = 6, n: int = 1200):
    policy = OptimisedAllocation(_FlatValues(), treatments=chooser)
    sim = Simulation(SCENARIO, seed=5, n_accounts=n, ruleset=ruleset)
    plans = []
    for _ in range(days):
        snapshot = sim.begin_day()
        plan = policy.decide(snapshot)
        rows = np.flatnonzero(plan.treated())
        assert snapshot.treatment_rule is not None
        # The rule set's verdict on the planned treatments, before the day changes state.
        rule = snapshot.treatment_rule(rows, plan.offer[rows], plan.variant[rows])
        dpd = snapshot.accounts.dpd.copy()
        vulnerable = snapshot.accounts.vulnerable.copy()
        plans.append((plan, rows, rule, dpd, vulnerable))
        sim.finish_day(plan)
    return sim, plans


def test_offers_never_given_where_a_rule_forbids_them() -> None:
    chooser = TreatmentChooser(_GreedyEffects(), TreatmentSupport.from_scenario(SCENARIO))
    sim, plans = _run(chooser, "treatments_example")
    settled = firm = 0
    support = TreatmentSupport.from_scenario(SCENARIO)
    for plan, rows, rule, dpd, vulnerable in plans:
        assert rows.size > 0
        assert np.all(rule == ""), set(rule.tolist())
        # Scenario support: the channel carries it and the DPD is high enough.
        t = treatment_code(plan.offer[rows], plan.variant[rows])
        allowed = support.allowed(dpd[rows])
        assert allowed[np.arange(rows.size), plan.channel[rows].astype(np.int64), t].all()
        settled += int((plan.offer == Offer.SETTLEMENT).sum())
        firm += int((plan.variant == Variant.FIRM).sum())
        # Vulnerable customers get the best allowed alternative, never firm.
        assert np.all(plan.variant[rows[vulnerable[rows]]] != Variant.FIRM)
        assert np.any(plan.variant[rows[vulnerable[rows]]] == Variant.EMPATHETIC)
    assert settled > 0 and firm > 0
    c = sim.ledger.columns()
    assert not np.any(c["event"] == EVENT["treatment_blocked"])


def test_restriction_to_no_offer_and_determinism() -> None:
    support = TreatmentSupport.from_scenario(SCENARIO)
    full = TreatmentChooser(_GreedyEffects(), support)
    _, plans_a = _run(full, "us_reg_f", days=3, n=600)
    _, plans_b = _run(TreatmentChooser(_GreedyEffects(), support), "us_reg_f", days=3, n=600)
    for a, b in zip((p[0] for p in plans_a), (p[0] for p in plans_b), strict=True):
        for name in ("channel", "slot_hour", "offer", "variant", "priority"):
            assert np.array_equal(getattr(a, name), getattr(b, name))
    none = TreatmentChooser(_GreedyEffects(), support, offers=("none",))
    _, plans_c = _run(none, "us_reg_f", days=3, n=600)
    assert all(not p[0].offer.any() for p in plans_c)
    assert any((p[0].variant == Variant.FIRM).any() for p in plans_c)
    with pytest.raises(ValueError, match="none"):
        TreatmentChooser(_GreedyEffects(), support, offers=("settlement",))


def test_exploration_log_records_randomised_supported_treatments() -> None:
    small = SCENARIO.scaled_to(800)
    log = collect_log(small, 3, days=30, horizon=7, treatments=True)
    assert log.treatment is not None and log.treatment.shape == log.channel.shape
    assert log.complaint is not None and log.complaint.shape == log.channel.shape
    assert log.complaint.any() and not log.complaint[log.channel == N_CHANNELS].any()
    treated = log.treatment > 0
    assert 0.05 < treated.mean() < 0.6
    # Only channels that carry treatments are treated, and every offer appears.
    assert np.all(CHANNEL_GROUP[np.minimum(log.channel[treated], N_CHANNELS - 1)] >= 0)
    assert np.all(log.channel[treated] < N_CHANNELS)
    offers = set(TREATMENT_OFFER[log.treatment[treated]].tolist())
    variants = set(TREATMENT_VARIANT[log.treatment[treated]].tolist())
    assert offers == set(range(len(OFFERS))) and variants == set(range(len(VARIANTS)))
    # Settlements only from the scenario's minimum DPD (features: dpd / 30).
    settle = treated & (TREATMENT_OFFER[log.treatment] == Offer.SETTLEMENT)
    assert settle.any()
    assert np.all(log.features[settle, 0] * 30 >= SCENARIO.treatments.settlement.min_dpd - 1e-3)
    # Without treatments the log carries none.
    assert collect_log(small, 3, days=10, horizon=3).treatment is None
    assert Channel.LETTER in set(log.channel[~treated].tolist())


class _ZeroValue:
    """A value model predicting 0 for everything (the residual is the outcome)."""

    n_threads = 1

    class _Zero:
        def predict(self, x: np.ndarray) -> np.ndarray:
            return np.zeros(x.shape[0])

    baseline_ = _Zero()

    def predict_uplift(self, x: np.ndarray) -> np.ndarray:
        return np.zeros((x.shape[0], N_CHANNELS))


def _synthetic_log(seed: int, n: int = 80_000):
    """Randomised treatments; settlement on agent calls at DPD >= 151 earns 5% of balance."""
    from collsim.features import FEATURE_NAMES
    from collsim.research.exploration import TrainingLog

    rng = np.random.default_rng(seed)
    f = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32)
    dpd = rng.integers(1, 180, n)
    balance = rng.lognormal(7.5, 0.6, n)
    f[:, FEATURE_NAMES.index("dpd_30")] = dpd / 30.0
    f[:, FEATURE_NAMES.index("log_balance")] = np.log1p(balance)
    channel = rng.choice([Channel.AGENT_CALL, Channel.SMS, Channel.LETTER, N_CHANNELS], n)
    drawn = np.where(rng.random(n) < 0.5, 0, rng.integers(1, N_TREATMENTS, n))  # 50% control
    treatment = np.where(np.isin(channel, [Channel.LETTER, N_CHANNELS]), 0, drawn)
    settle = (
        (channel == Channel.AGENT_CALL)
        & (dpd >= 151)
        & (TREATMENT_OFFER[treatment] == Offer.SETTLEMENT)
    )
    outcome = rng.normal(0.0, 0.1, n) * balance + np.where(settle, 0.05 * balance, 0.0)
    empty = np.zeros(0)
    log = TrainingLog(
        features=f,
        channel=channel.astype(np.int64),
        hour=np.full(n, -1),
        outcome=outcome,
        paid=outcome > 0,
        day=np.zeros(n, dtype=np.int64),
        run=np.zeros(n, dtype=np.int64),
        horizon=14,
        attempts_channel=empty.astype(np.int64),
        attempts_hour=empty.astype(np.int64),
        attempts_response=empty.astype(bool),
        attempts_cost=empty,
        outcome_long=np.full(n, np.nan),
        long_horizon=40,
        treatment=treatment.astype(np.int64),
    )
    return log, f, balance


def test_effect_model_finds_the_effective_treatment_only() -> None:
    from collsim.research.treatment import TreatmentEffectModel

    log, features, balance = _synthetic_log(0)
    model = TreatmentEffectModel(min_rows=100).fit(log, _ZeroValue())
    late = len(model.dpd_edges) - 1  # DPD >= 151
    settle = [treatment_code(Offer.SETTLEMENT, v) for v in range(len(VARIANTS))]
    assert np.all(model.rate_[0, late, settle] > 0.01)
    # Nothing else beats no treatment with confidence (lower bound > 0) except by chance:
    # about 2.3% of the 129 other cells at z = 2.
    others = model.rate_.copy()
    others[0, late, settle] = 0.0
    assert (others > 0).sum() <= 8
    # Effects scale with balance and go to channels of the conversation group.
    effect = model.channel_effects(features[:50])
    t = settle[0]
    rows = np.flatnonzero(features[:50, 0] * 30 >= 151)
    assert rows.size > 0
    assert np.allclose(
        effect[rows, Channel.AGENT_CALL, t], model.rate_[0, late, t] * balance[rows], rtol=1e-4
    )
    assert np.all(effect[:, Channel.LETTER] == 0.0)
    # Without treatments in the log the model refuses to fit.
    log.treatment = None
    with pytest.raises(ValueError, match="treatments"):
        TreatmentEffectModel().fit(log, _ZeroValue())


def test_complaint_cost_trades_complaints_against_cash() -> None:
    from collsim.research.treatment import TreatmentEffectModel

    log, features, _ = _synthetic_log(1)
    rng = np.random.default_rng(7)
    firm = TREATMENT_VARIANT[log.treatment] == Variant.FIRM
    log.complaint = rng.random(log.n) < np.where(firm, 0.05, 0.01)  # firm: 5x the complaints
    model = TreatmentEffectModel(min_rows=100).fit(log, _ZeroValue())
    late = len(model.dpd_edges) - 1
    firm_settle = treatment_code(Offer.SETTLEMENT, Variant.FIRM)
    assert model.complaint_diff_[0, late, firm_settle] > 0.02
    assert abs(model.complaint_diff_[0, late, treatment_code(Offer.SETTLEMENT, 0)]) < 0.02
    cash = model.channel_effects(features)
    priced = model.channel_effects(features, complaint_cost=1000.0)
    diff = cash - priced  # = 1000 × Δcomplaints of the cell
    assert np.all(diff[:, Channel.AGENT_CALL, firm_settle] > 20.0)
    assert np.all(diff[:, Channel.LETTER] == 0.0)


def test_choose_gives_the_best_allowed_treatment_of_the_chosen_channel() -> None:
    """For options chosen elsewhere (RL): best allowed treatment, none where nothing helps."""
    support = TreatmentSupport.from_scenario(SCENARIO)
    chooser = TreatmentChooser(_GreedyEffects(), support)
    sim = Simulation(SCENARIO, seed=5, n_accounts=1500, ruleset="treatments_example")
    sim.run(TieredChampion(), days=3)
    snapshot = sim.begin_day()
    allowed_options = snapshot.option_mask()
    option = np.where(allowed_options.any(axis=1), allowed_options.argmax(axis=1), -1)
    offer, variant = chooser.choose(snapshot, option)
    rows = np.flatnonzero(option >= 0)
    assert rows.size > 100 and np.all(offer[option < 0] == 0) and np.all(variant[option < 0] == 0)
    t = treatment_code(offer[rows], variant[rows])
    channel = snapshot.options.channel[option[rows]]
    allowed = chooser.allowed(snapshot, rows)[np.arange(rows.size), channel]  # [M, T]
    assert allowed[np.arange(rows.size), t].all()
    effect = _GreedyEffects().channel_effects(np.zeros((rows.size, 1)))[
        np.arange(rows.size), channel
    ]
    best = np.where(allowed, effect, -np.inf).max(axis=1)
    np.testing.assert_array_equal(effect[np.arange(rows.size), t], np.maximum(best, 0.0))
    untreatable = CHANNEL_GROUP[channel] < 0
    assert np.all(t[untreatable] == 0) and np.any(offer[rows] == Offer.SETTLEMENT)
