"""Response models: training logs, value and repayment models, ONNX parity, oracle, cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from collsim.config import Scenario, ValuationConfig, load_scenario
from collsim.features import FEATURE_NAMES, observable_features
from collsim.plan import Snapshot
from collsim.policies.baselines import NoContact
from collsim.policies.champion import TieredChampion
from collsim.policies.models import OnnxRepaymentModel, OnnxValueModel
from collsim.research.exploration import NONE_CHANNEL, ExplorationPolicy, TrainingLog, collect_log
from collsim.research.oracle import OracleExportError, OracleValue
from collsim.research.training import TrainingSettings, load_or_train
from collsim.research.value import RepaymentModel, ValueModel, hour_multipliers
from collsim.sim.engine import Simulation
from collsim.vocab import N_CHANNELS, Channel, Outcome

SMALL_MODEL = {"max_iter": 15, "uplift_max_iter": 8, "min_channel_rows": 300}


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario("default").scaled_to(600)


@pytest.fixture(scope="module")
def log(scenario: Scenario) -> TrainingLog:
    return TrainingLog.concatenate(
        [collect_log(scenario, seed, days=24, horizon=7) for seed in (1, 2)]
    )


@pytest.fixture(scope="module")
def model(log: TrainingLog) -> ValueModel:
    return ValueModel(random_state=3, **SMALL_MODEL).fit(log)


@pytest.fixture(scope="module")
def snapshot(scenario: Scenario) -> Snapshot:
    sim = Simulation(scenario, seed=9)
    sim.run(TieredChampion(scenario.champion), days=5)
    return sim.begin_day()


def test_log_shapes_and_actions(log: TrainingLog) -> None:
    assert log.features.shape == (log.n, len(FEATURE_NAMES))
    assert log.features.dtype == np.float32
    for name in ("channel", "hour", "outcome", "paid", "day", "run"):
        assert getattr(log, name).shape == (log.n,)
    assert set(np.unique(log.run)) == {0, 1}
    assert log.day.max() == 24 - 7
    # Exploration reaches every channel that has a budget, and leaves some rows alone.
    seen = np.bincount(log.channel, minlength=N_CHANNELS + 1)
    assert seen[NONE_CHANNEL] > 0
    assert np.all(seen[:5] > 0)
    # Hours: timed contacts have a slot hour, none has -1.
    assert np.all(log.hour[log.channel == NONE_CHANNEL] == -1)
    assert np.all(log.hour[log.channel == 0] >= 8)
    assert np.array_equal(log.paid, log.paid.astype(bool))


def test_log_outcome_without_contact_is_payments_only(scenario: Scenario) -> None:
    cash_only = scenario.model_copy(update={"valuation": ValuationConfig()})
    log = collect_log(cash_only, 4, days=12, horizon=5, policy=NoContact())
    assert np.all(log.channel == NONE_CHANNEL)
    assert np.all(log.outcome >= 0)
    assert np.array_equal(log.paid, log.outcome > 0)
    # Same seed and policy: the same log.
    again = collect_log(cash_only, 4, days=12, horizon=5, policy=NoContact())
    assert np.array_equal(log.outcome, again.outcome)
    # Valued: a cure is worth more than its payment, an unpaid account that ages loses value.
    valued = collect_log(scenario, 4, days=12, horizon=5, policy=NoContact())
    assert np.array_equal(valued.paid, log.paid)
    assert np.all(valued.outcome[~log.paid] <= 1e-9) and np.any(valued.outcome[~log.paid] < 0)
    assert valued.outcome[log.paid].sum() > log.outcome[log.paid].sum()


def test_log_outcome_matches_ledger_totals(scenario: Scenario) -> None:
    """With H = days, the outcome of day-0 rows is each account's whole value change."""
    from collsim.ledger import EVENT
    from collsim.valuation import account_values

    days = 6
    undiscounted = scenario.valuation.model_copy(update={"npv_rate_annual": 0.0})
    scenario = scenario.model_copy(update={"valuation": undiscounted})
    policy = ExplorationPolicy(scenario, random_share=1.0, contact_rate=0.8)
    log = collect_log(scenario, 5, days=days + 1, horizon=days, policy=policy)
    explorer = ExplorationPolicy(scenario, 1.0, 0.8)
    sim = Simulation(scenario, seed=5)
    snapshot = sim.begin_day()
    start = account_values(sim)
    sim.finish_day(explorer.decide(snapshot))
    sim.run(explorer, days=days - 1)
    sim.begin_day()  # the morning after the last day belongs to the last epoch
    end = account_values(sim)
    # Rows of day 0 cover epochs 0..days-1: every event after the first plan.
    c = sim.ledger.columns()
    pay = c["event"] == EVENT["payment"]
    own = c["account"] >= 0
    said = (c["event"] == EVENT["attempt"]) & (c["outcome"] == Outcome.COMPLAINT)
    net = np.zeros(sim.n)
    np.add.at(net, c["account"][pay], c["amount"][pay])
    np.add.at(net, c["account"][own], -c["cost"][own])
    np.add.at(net, c["account"][said], -scenario.valuation.complaint_cost)
    assert said.any() and scenario.valuation.complaint_cost > 0
    day0 = log.day == 0
    # The day-0 active set is everybody; payments before the first plan are none.
    assert day0.sum() == sim.n
    assert np.allclose(log.outcome[day0], net + end - start, atol=1e-6)


def test_exploration_is_deterministic_and_mixes(scenario: Scenario) -> None:
    a = collect_log(scenario, 7, days=10, horizon=3)
    b = collect_log(scenario, 7, days=10, horizon=3)
    assert np.array_equal(a.channel, b.channel)
    assert np.array_equal(a.features, b.features)
    with pytest.raises(ValueError, match="random_share"):
        ExplorationPolicy(scenario, random_share=1.5)
    with pytest.raises(ValueError, match="exceed the horizon"):
        collect_log(scenario, 7, days=3, horizon=3)


def test_value_model_shapes(model: ValueModel, log: TrainingLog, snapshot: Snapshot) -> None:
    uplift = model.predict_uplift(log.features[:500])
    assert uplift.shape == (500, N_CHANNELS)
    assert np.all(np.isfinite(uplift))
    value = model.predict_value(snapshot)
    assert value.shape == (snapshot.n, snapshot.options.n_options)
    assert value.dtype == np.float32
    nothing = ~snapshot.mask.any(axis=(1, 2))
    assert np.all(value[nothing] == 0)
    assert np.all(value[:, ~snapshot.options.valid] == 0)
    with pytest.raises(ValueError, match="features must be"):
        model.predict_uplift(log.features[:, :5])
    with pytest.raises(RuntimeError, match="not fitted"):
        ValueModel().predict_uplift(log.features[:5])


def test_value_model_is_deterministic(model: ValueModel, log: TrainingLog) -> None:
    again = ValueModel(random_state=3, **SMALL_MODEL).fit(log)
    x = log.features[:300]
    assert np.array_equal(model.predict_uplift(x), again.predict_uplift(x))


def test_value_uses_hour_multiplier(model: ValueModel) -> None:
    hours = np.arange(8, 21)
    uplift = np.full((1, N_CHANNELS), 10.0)
    value = model.option_values(uplift, hours).reshape(N_CHANNELS, hours.size)
    gross = 10.0 + model.cost_[0]
    expected = gross * model.hour_mult_[0, hours] - model.cost_[0]
    assert np.allclose(value[0], expected, rtol=1e-6)
    # Untimed channels (letter) use only their first option.
    assert np.all(value[5, 1:] == 0)


def test_hour_multipliers_follow_response_rates(log: TrainingLog) -> None:
    n = 40_000
    rng = np.random.default_rng(0)
    hour = rng.integers(8, 21, n)
    rate = np.where(hour == 18, 0.3, 0.1)
    fake = TrainingLog(
        **{**log.__dict__},
    )
    fake.attempts_channel = np.zeros(n, dtype=np.int64)
    fake.attempts_hour = hour
    fake.attempts_response = rng.random(n) < rate
    fake.attempts_cost = np.zeros(n)
    mult = hour_multipliers(fake, prior=10.0)
    assert mult[0, 18] > 2.0 > 1.0 > mult[0, 9]
    assert np.allclose(mult[0], mult[1])  # telephone channels share one profile
    assert np.all(mult[5] == 1.0) and np.all(mult[7] == 1.0)  # untimed


def test_value_model_file_ids_build_and_ship_the_fitted_model(
    model: ValueModel, snapshot: Snapshot, scenario: Scenario, tmp_path: Path
) -> None:
    from collsim.policies.optimised import GreedyScore, OptimisedAllocation
    from collsim.policies.registry import make_policy
    from collsim.research.spec import resolve_policy

    path = model.to_onnx(tmp_path / "value.onnx", snapshot.options.slot_hours)
    direct = OptimisedAllocation(OnnxValueModel(path)).decide(snapshot)
    built = make_policy(f"optimised:{path}", scenario)
    assert isinstance(built, OptimisedAllocation)
    assert isinstance(make_policy(f"greedy:{path}", scenario), GreedyScore)
    assert np.array_equal(built.decide(snapshot).channel, direct.channel)
    resolved = resolve_policy("optimised:value.onnx", {}, scenario, base_dir=tmp_path)
    assert resolved.kind == "files" and resolved.files["value.onnx"] == path.read_bytes()
    path.with_suffix(".json").unlink()  # the spec carries the content, not the path
    shipped = resolved.build(scenario).decide(snapshot)
    assert np.array_equal(shipped.channel, direct.channel)
    assert np.array_equal(shipped.slot_hour, direct.slot_hour)
    with pytest.raises(ValueError, match="json sidecar"):
        make_policy(f"optimised:{path}", scenario)
    with pytest.raises(ValueError, match="takes no params"):
        resolve_policy(f"greedy:{path}", {"contact_rate": 0.1}, scenario)


def test_value_onnx_parity(model: ValueModel, snapshot: Snapshot, tmp_path: Path) -> None:
    path = model.to_onnx(tmp_path / "value.onnx", snapshot.options.slot_hours)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["feature_names"] == list(FEATURE_NAMES)
    assert meta["slot_hours"] == snapshot.options.slot_hours.tolist()
    onnx_model = OnnxValueModel(path)
    expected = model.predict_value(snapshot)
    got = onnx_model.predict_value(snapshot)
    assert got.shape == expected.shape
    scale = max(float(np.abs(expected).max()), 1.0)
    assert np.abs(got - expected).max() <= 1e-5 * scale
    features = observable_features(snapshot)
    assert np.allclose(
        onnx_model.predict_uplift(features), model.predict_uplift(features), atol=1e-5 * scale
    )
    with pytest.raises(ValueError, match="exported for slots"):
        OnnxValueModel(model.to_onnx(tmp_path / "other.onnx", np.arange(9, 20))).predict_value(
            snapshot
        )


def test_repayment_model_and_onnx(log: TrainingLog, snapshot: Snapshot, tmp_path: Path) -> None:
    model = RepaymentModel(max_iter=15, random_state=1).fit(log)
    p = model.predict_snapshot(snapshot)
    assert p.shape == (snapshot.n, N_CHANNELS + 1)
    assert np.all((p >= 0) & (p <= 1))
    onnx_p = OnnxRepaymentModel(model.to_onnx(tmp_path / "repay.onnx")).predict_proba(
        observable_features(snapshot)
    )
    assert np.abs(onnx_p - p).max() < 1e-5


def test_oracle_values_and_refuses_export(scenario: Scenario) -> None:
    sim = Simulation(scenario, seed=3)
    sim.run(NoContact(), days=2)
    oracle = OracleValue(sim.latent_view)
    assert oracle.research_only
    snap = sim.begin_day()
    value = oracle.predict_value(snap)
    k = snap.options.n_options
    assert value.shape == (snap.n, k) and np.all(np.isfinite(value))
    assert np.all(value[~snap.active] == 0)
    # Calls at the population's best hour (18:00) beat 08:00 on average.
    hours = snap.options.hour
    agent = snap.options.channel == 0
    v18 = value[snap.active][:, agent & (hours == 18)]
    v8 = value[snap.active][:, agent & (hours == 8)]
    assert v18.mean() > v8.mean()
    # Suing an account at <= 30 DPD loses its continued-collection value.
    legal = np.flatnonzero((snap.options.channel == Channel.LEGAL) & snap.options.valid)[0]
    early = snap.active & (sim.portfolio.dpd <= 30) & (value[:, legal] != 0)
    assert early.sum() > 10 and np.all(value[early, legal] < 0)
    with pytest.raises(OracleExportError):
        oracle.to_onnx("x.onnx")
    with pytest.raises(TypeError, match="LatentView"):
        OracleValue(snap)
    sim.finish_day(NoContact().decide(snap))
    with pytest.raises(ValueError, match="today's snapshot"):
        oracle.predict_value(snap)


def test_load_or_train_caches_onnx(scenario: Scenario, tmp_path: Path) -> None:
    settings = TrainingSettings(
        seeds=(1,), n_accounts=300, days=14, horizon=5, model_params=SMALL_MODEL
    )
    first = load_or_train(scenario, settings, directory=tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".onnx")
    assert not any(p.suffix in {".pkl", ".pickle", ".joblib"} for p in tmp_path.iterdir())
    stamp = first.path.stat().st_mtime_ns
    second = load_or_train(scenario, settings, directory=tmp_path)
    assert second.path == first.path and second.path.stat().st_mtime_ns == stamp
    other = TrainingSettings(seeds=(2,), n_accounts=300, days=14, horizon=5)
    assert other.key(scenario) != settings.key(scenario)


def test_legal_long_horizon_model_and_onnx(scenario: Scenario, tmp_path: Path) -> None:
    log = collect_log(scenario, 3, days=56, horizon=5, policy=ExplorationPolicy(scenario, 0.9, 0.9))
    assert log.long_horizon == 5 + scenario.legal.duration_days
    has_long = np.isfinite(log.outcome_long)
    assert has_long.any() and not has_long.all()
    assert np.all(log.day[has_long] <= 56 - log.long_horizon)
    legal_rows = int(((log.channel == 7) & has_long).sum())
    assert legal_rows >= 1
    model = ValueModel(min_legal_rows=1, **SMALL_MODEL).fit(log)
    assert model.legal_baseline_ is not None and model.legal_ratio_ is not None
    features = log.features[:400]
    balance = np.expm1(features[:, FEATURE_NAMES.index("log_balance")].astype(float))
    expected_legal = (
        model.legal_ratio_ * balance - model.cost_[7] - model.legal_baseline_.predict(features)
    )
    uplift = model.predict_uplift(features)
    assert np.allclose(uplift[:, 7], expected_legal)
    onnx_model = OnnxValueModel(model.to_onnx(tmp_path / "legal.onnx"))
    got = onnx_model.predict_uplift(features)
    scale = max(float(np.abs(uplift).max()), 1.0)
    assert np.abs(got - uplift).max() <= 1e-5 * scale


def test_training_objective_cash_or_portfolio_value(scenario: Scenario) -> None:
    from collsim.research.training import training_log

    settings = TrainingSettings(seeds=(1,), n_accounts=300, days=12, horizon=5)
    valued = training_log(scenario, settings)
    cash_settings = TrainingSettings(**{**settings.__dict__, "objective": "cash"})
    cash = training_log(scenario, cash_settings)
    assert np.array_equal(valued.channel, cash.channel)  # the same world and actions
    assert np.array_equal(valued.paid, cash.paid)
    assert not np.allclose(valued.outcome, cash.outcome)
    assert settings.key(scenario) != cash_settings.key(scenario)  # cached apart
    with pytest.raises(ValueError, match="objective"):
        training_log(scenario, TrainingSettings(**{**settings.__dict__, "objective": "npv"}))
