"""RL training, export and policies: reproducibility, ONNX parity, masks, capacity, prices."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from collsim.config import load_scenario
from collsim.plan import Snapshot
from collsim.policies.champion import TieredChampion
from collsim.sim.engine import Simulation

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from collsim.rl.logits import TorchLogits  # noqa: E402
from collsim.rl.training import TrainConfig, train_model  # noqa: E402

TINY_RUN = TrainConfig(
    steps=2048,
    n_envs=64,
    horizon=10,
    pool_size=256,
    n_steps=16,
    batch_size=512,
    n_epochs=2,
    eval_envs=64,
    eval_every=1024,
)
"""A training run of a few seconds (2,048 steps)."""


@pytest.fixture(scope="module")
def trained() -> Any:
    """A MaskablePPO trained for 2,048 steps (tiny, but a real model of the scenario)."""
    return train_model(TINY_RUN)


@pytest.fixture(scope="module")
def onnx_file(trained: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from collsim.rl.export import export_onnx

    return export_onnx(trained.model, tmp_path_factory.mktemp("onnx") / "policy.onnx")


def snapshots(n: int = 400, days: int = 6, seed: int = 3) -> list[Snapshot]:
    """Snapshots of a champion run (contact history varies from day to day)."""
    scenario = load_scenario("default").scaled_to(n)
    policy = TieredChampion(scenario.champion)
    sim = Simulation(scenario, seed)
    out = []
    for _ in range(days):
        snap = sim.begin_day()
        out.append(snap)
        sim.finish_day(policy.decide(snap))
    return out


def inputs(snap: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    from collsim.policies.rl import snapshot_inputs

    obs, mask = snapshot_inputs(snap)
    return obs.copy(), mask.copy()


def capacity_ok(snap: Snapshot, option: np.ndarray) -> bool:
    chosen = option >= 0
    res = snap.resources
    used = res.resource_by_zone[snap.accounts.timezone[chosen], option[chosen]]
    counts = np.bincount(used[used >= 0], minlength=len(res.names))
    return bool(np.all(counts <= res.capacity))


# --------------------------------------------------------------------------- reproducibility
def test_same_seed_same_training_bit_for_bit(trained: Any) -> None:
    again = train_model(TINY_RUN)
    assert [e.mean_net for e in again.evaluations] == [e.mean_net for e in trained.evaluations]
    for a, b in zip(
        trained.model.policy.state_dict().values(),
        again.model.policy.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b)
    other = train_model(TrainConfig(**{**TINY_RUN.to_dict(), "seed": 1, "net_arch": (64, 64)}))
    assert [e.mean_net for e in other.evaluations] != [e.mean_net for e in trained.evaluations]


def test_training_restores_torch_settings() -> None:
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    train_model(TrainConfig(**{**TINY_RUN.to_dict(), "steps": 1024, "net_arch": (16,)}))
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic


# --------------------------------------------------------------------------- ONNX
def torch_logits(model: Any, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The masked policy's action logits from torch (float [N, A])."""
    with torch.no_grad():
        obs_t, _ = model.policy.obs_to_tensor(obs)
        dist = model.policy.get_distribution(obs_t, action_masks=mask)
        return dist.distribution.logits.cpu().numpy()


def test_onnx_actions_equal_torch_masked_argmax(trained: Any, onnx_file: Path) -> None:
    from collsim.rl.export import onnx_actions

    rows = 0
    for snap in snapshots():
        obs, mask = inputs(snap)
        expected, _ = trained.model.predict(obs, action_masks=mask, deterministic=True)
        got = onnx_actions(onnx_file, obs, mask)
        assert got.dtype == np.int64
        differ = np.flatnonzero(got != expected)
        if differ.size:  # only float32 near-ties may break differently in the two runtimes
            logits = torch_logits(trained.model, obs[differ], mask[differ])
            rows_ = np.arange(differ.size)
            gap = np.abs(logits[rows_, got[differ]] - logits[rows_, expected[differ]])
            assert np.all(gap < 1e-4), gap
        assert np.all(mask[np.arange(mask.shape[0]), got])
        rows += obs.shape[0]
    assert rows >= 2000


def test_rl_onnx_artifact_loads_and_plans_like_rl_policy(trained: Any, tmp_path: Path) -> None:
    from collsim.export.artifact import load_artifact
    from collsim.policies.rl import RLPolicy
    from collsim.rl.export import export_artifact

    scenario = load_scenario("default")
    manifest = export_artifact(trained.model, tmp_path / "artifact", scenario)
    assert manifest["kind"] == "rl_onnx" and (tmp_path / "policy.onnx").is_file()
    artifact = load_artifact(tmp_path / "artifact")
    torch_policy = RLPolicy(TorchLogits(trained.model))
    onnx_policy = RLPolicy(tmp_path / "artifact")
    for snap in snapshots(days=3):
        a, b, c = artifact.decide(snap), torch_policy.decide(snap), onnx_policy.decide(snap)
        np.testing.assert_array_equal(a.channel, b.channel)
        np.testing.assert_array_equal(a.slot_hour, b.slot_hour)
        np.testing.assert_array_equal(b.channel, c.channel)
        np.testing.assert_array_equal(b.slot_hour, c.slot_hour)


def test_rl_onnx_artifact_with_fallbacks_plans_like_rl_policy(trained: Any, tmp_path: Path) -> None:
    """Production (onnxruntime, manifest ``policy.fallbacks``) == RLPolicy(fallbacks=3)."""
    from collsim.export.artifact import load_artifact
    from collsim.policies.rl import RLPolicy
    from collsim.rl.export import export_artifact

    scenario = load_scenario("default")
    manifest = export_artifact(trained.model, tmp_path / "artifact", scenario, fallbacks=3)
    assert manifest["policy"]["fallbacks"] == 3
    artifact = load_artifact(tmp_path / "artifact")
    torch_policy = RLPolicy(TorchLogits(trained.model), fallbacks=3)
    single = RLPolicy(TorchLogits(trained.model))
    more = 0
    for snap in snapshots(n=2000, days=3):
        a, b, c = artifact.decide(snap), torch_policy.decide(snap), single.decide(snap)
        np.testing.assert_array_equal(a.channel, b.channel)
        np.testing.assert_array_equal(a.slot_hour, b.slot_hour)
        more += int(a.contacted().sum() - c.contacted().sum())
    assert more > 0  # fallbacks fill capacity the single action leaves


# --------------------------------------------------------------------------- policies
@pytest.mark.parametrize("fallbacks", [0, 2])
def test_rl_policy_respects_mask_and_capacity(trained: Any, fallbacks: int) -> None:
    from collsim.policies.rl import RLPolicy

    policy = RLPolicy(TorchLogits(trained.model), fallbacks=fallbacks)
    for snap in snapshots(days=3):
        plan = policy.decide(snap)
        option = snap.options.encode(plan.channel, plan.slot_hour)
        rows = np.flatnonzero(option >= 0)
        assert snap.option_mask()[rows, option[rows]].all()
        assert not np.any((option >= 0) & ~snap.active)
        assert capacity_ok(snap, option)
        assert plan.n == snap.n and np.all((plan.propensity > 0) & (plan.propensity <= 1))


def test_rl_policy_fallbacks_fill_more_capacity(trained: Any) -> None:
    from collsim.policies.rl import RLPolicy

    snap = snapshots(n=2000, days=1)[0]
    plain = RLPolicy(TorchLogits(trained.model)).decide(snap).contacted().sum()
    more = RLPolicy(TorchLogits(trained.model), fallbacks=3).decide(snap).contacted().sum()
    assert more >= plain


def test_stochastic_rl_policy_reports_propensities(trained: Any) -> None:
    from collsim.policies.rl import RLPolicy

    snap = snapshots(days=1)[0]
    plan = RLPolicy(TorchLogits(trained.model), deterministic=False).decide(snap)
    assert np.all((plan.propensity > 0) & (plan.propensity <= 1))
    assert np.any(plan.propensity < 1)


def test_hybrid_allocates_exactly_within_capacity_and_prices_move(trained: Any) -> None:
    from collsim.policies.hybrid import HybridPolicy

    scenario = load_scenario("default").scaled_to(1500)
    policy = HybridPolicy(TorchLogits(trained.model), step_size=0.5)
    sim = Simulation(scenario, seed=4)
    for _ in range(5):
        snap = sim.begin_day()
        plan = policy.decide(snap)
        option = snap.options.encode(plan.channel, plan.slot_hour)
        rows = np.flatnonzero(option >= 0)
        assert snap.option_mask()[rows, option[rows]].all()
        assert capacity_ok(snap, option)
        sim.finish_day(plan)
    history = policy.price_history
    assert len(history) == 5 and policy.price_table().shape == (5, len(policy.resource_names))
    assert np.all(policy.price_table() >= 0) and np.all(history[0].price == 0)
    assert all(np.all(d.used <= d.capacity) for d in history)
    over = history[0].demand > history[0].capacity
    over &= history[0].capacity > 0
    assert over.any()  # an untrained policy over-asks some resource...
    assert np.all(history[1].price[over] > 0)  # ...whose price then rises


def test_hybrid_without_prices_uses_raw_scores(trained: Any) -> None:
    from collsim.policies.allocation import allocate
    from collsim.policies.hybrid import HybridPolicy

    snap = snapshots(days=1)[0]
    policy = HybridPolicy(TorchLogits(trained.model), use_prices=False)
    plan = policy.decide(snap)
    score, allowed = policy.scores(snap)
    res = snap.resources
    expected = allocate(
        score, allowed & (score > 0), res.resource_by_zone, res.capacity,
        group=np.asarray(snap.accounts.timezone, dtype=np.int64),
    )  # fmt: skip
    np.testing.assert_array_equal(snap.options.encode(plan.channel, plan.slot_hour), expected)


def test_rl_and_hybrid_pass_check_policy_and_simulate(trained: Any) -> None:
    from collsim import check_policy
    from collsim.metrics import kpis
    from collsim.policies.hybrid import HybridPolicy
    from collsim.policies.rl import RLPolicy

    scenario = load_scenario("default").scaled_to(500)
    for make in (
        lambda: RLPolicy(TorchLogits(trained.model)),
        lambda: HybridPolicy(TorchLogits(trained.model)),
    ):
        sim = Simulation(scenario, seed=2)
        policy = make()
        planned = 0
        for _ in range(8):
            snap = sim.begin_day()
            planned += int(check_policy(make(), snap, factory=make).contacted().sum())
            sim.finish_day(policy.decide(snap))
        assert planned > 0 and kpis(sim.ledger)["attempts"] > 0


# --------------------------------------------------------------------------- registry
def test_registry_builds_rl_and_hybrid(trained: Any, tmp_path: Path, onnx_file: Path) -> None:
    from collsim.policies.hybrid import HybridPolicy
    from collsim.policies.rl import RLPolicy
    from collsim.research.registry import make_policy

    scenario = load_scenario("default")
    trained.model.save(str(tmp_path / "m.zip"))
    assert isinstance(make_policy(f"rl:{tmp_path / 'm.zip'}", scenario), RLPolicy)
    assert isinstance(make_policy(f"hybrid:{onnx_file}", scenario), HybridPolicy)
    with pytest.raises(ValueError, match="not found"):
        make_policy(f"rl:{tmp_path / 'missing.zip'}", scenario)


def test_registry_import_does_not_import_torch() -> None:
    code = (
        "import sys, collsim.policies.registry, collsim.policies.rl, collsim.policies.hybrid; "
        "print('torch' in sys.modules, 'stable_baselines3' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_onnx_rl_policy_runs_without_torch(onnx_file: Path) -> None:
    code = (
        "import sys; from collsim.policies.rl import RLPolicy; "
        f"RLPolicy({str(onnx_file)!r}); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]


# --------------------------------------------------------------------------- command
def test_train_command_writes_everything(tmp_path: Path) -> None:
    from collsim.export.artifact import load_artifact
    from collsim.rl.commands import train

    out = tmp_path / "run"
    config = TrainConfig(**{**TINY_RUN.to_dict(), "net_arch": (32, 32)})
    overrides = {"scenario": "default", "steps": 1024, "seed": 7, "n_envs": 64}
    code = train(out, overrides, config=config, progress=False)
    assert code == 0
    for name in ("model.zip", "best_model.zip", "policy.onnx", "training_curve.png",
                 "evaluations.json", "manifest.json"):  # fmt: skip
        assert (out / name).is_file(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 7 and len(manifest["config_hash"]) == 16
    assert manifest["config"]["steps"] == 1024 and "torch" in manifest["versions"]
    assert manifest["evaluation"]["best"]["mean_net"] >= manifest["evaluation"]["final"]["mean_net"]
    assert load_artifact(out / "artifact").kind == "rl_onnx"


def test_train_command_rejects_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from collsim.rl.commands import train

    assert train(tmp_path, {"algo": "dqn", "steps": 100}) == 2
    assert "unknown algorithm" in capsys.readouterr().err
    assert train(tmp_path, {"steps": 0}) == 2
    assert train(tmp_path, {"scenario": "no_such_scenario", "steps": 100}) == 2
    assert train(tmp_path, {"eval_mode": "fast"}) == 2
    assert "config: eval_mode: Input should be 'env' or 'deploy'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- training options
def test_deploy_evaluation_is_the_policy_on_a_portfolio(trained: Any) -> None:
    from collsim.metrics import kpis
    from collsim.policies.rl import RLPolicy
    from collsim.rl.training import evaluate_deployment

    assert TINY_RUN.eval_mode == "deploy"
    cfg = TrainConfig(**{**TINY_RUN.to_dict(), "eval_accounts": 300})
    net = evaluate_deployment(trained.model, cfg)
    assert net.shape == (300,)
    scenario = load_scenario("default").scaled_to(300)
    sim = Simulation(scenario, cfg.eval_seed)
    sim.run(RLPolicy(TorchLogits(trained.model), fallbacks=8), cfg.horizon)
    assert net.sum() == pytest.approx(kpis(sim.ledger)["portfolio_value"], rel=1e-9, abs=1e-6)


def test_linear_schedule_and_bad_options() -> None:
    from collsim.rl.training import _linear, build_model, make_train_env

    assert _linear(3e-4)(1.0) == pytest.approx(3e-4) and _linear(3e-4)(0.0) == 0.0
    with pytest.raises(ValidationError, match="lr_schedule"):
        TINY_RUN.replace(lr_schedule="cosine")
    with pytest.raises(ValidationError, match="eval_mode"):
        TrainConfig(**{**TINY_RUN.to_dict(), "eval_mode": "x"})
    with pytest.raises(ValidationError, match="learning_rat"):
        TrainConfig(learning_rat=0.1)  # type: ignore[call-arg]
    linear = TINY_RUN.replace(lr_schedule="linear")
    venv = make_train_env(linear)
    assert build_model(linear, venv).lr_schedule(0.0) == 0.0
    venv.close()


def test_shadow_prices_reach_the_training_env_only() -> None:
    from collsim.rl.training import _batch_env, make_train_env

    cfg = TrainConfig(**{**TINY_RUN.to_dict(), "shadow_prices": (("pool:", 2.0),)})
    assert cfg.to_dict()["shadow_prices"] == [["pool:", 2.0]]
    venv = make_train_env(cfg)
    assert venv.venv.venv.unwrapped.shadow.prices == {"pool:": 2.0}
    venv.close()
    scenario = load_scenario("default")
    assert _batch_env(cfg, 8, scenario).unwrapped.shadow.prices == {}


def test_redial_headroom_masks_agent_calls(trained: Any) -> None:
    from collsim.policies.rl import RLPolicy
    from collsim.vocab import Channel

    for snap in snapshots(days=3):
        logits, mask = RLPolicy(TorchLogits(trained.model), redial_headroom=0).logits(snap)
        agent = 1 + np.flatnonzero(snap.options.channel == Channel.AGENT_CALL)
        assert not mask[:, agent].any()
        plan = RLPolicy(TorchLogits(trained.model), fallbacks=3, redial_headroom=0).decide(snap)
        assert not np.any(np.asarray(plan.channel) == Channel.AGENT_CALL)


def test_rl_policy_with_treatments_plans_only_allowed_offers(trained: Any) -> None:
    """RL chooses channel and slot; the treatment chooser adds offers the rules allow."""
    from collsim.ledger import EVENT
    from collsim.policies.models.treatment import (
        CHANNEL_GROUP,
        N_TREATMENTS,
        TreatmentChooser,
        TreatmentSupport,
        treatment_code,
    )
    from collsim.policies.rl import RLPolicy
    from collsim.vocab import N_CHANNELS, Offer, Variant

    class SettleFirst:
        def channel_effects(self, features: np.ndarray) -> np.ndarray:
            out = np.zeros((features.shape[0], N_CHANNELS, N_TREATMENTS))
            out[:, :, treatment_code(Offer.SETTLEMENT, Variant.FIRM)] = 100.0
            out[:, :, treatment_code(Offer.NONE, Variant.EMPATHETIC)] = 10.0
            out[:, CHANNEL_GROUP < 0] = 0.0
            return out

    scenario = load_scenario("default")
    chooser = TreatmentChooser(SettleFirst(), TreatmentSupport.from_scenario(scenario))
    plain = RLPolicy(TorchLogits(trained.model), fallbacks=8)
    treated = RLPolicy(TorchLogits(trained.model), fallbacks=8).with_treatments(chooser)
    sim = Simulation(scenario, seed=4, n_accounts=800, ruleset="treatments_example")
    offers = 0
    for _ in range(5):
        snapshot = sim.begin_day()
        plan = treated.decide(snapshot)
        base = plain.decide(snapshot)
        np.testing.assert_array_equal(plan.channel, base.channel)
        np.testing.assert_array_equal(plan.slot_hour, base.slot_hour)
        assert not base.treated().any()
        rows = np.flatnonzero(plan.treated())
        assert snapshot.treatment_rule is not None
        assert np.all(snapshot.treatment_rule(rows, plan.offer[rows], plan.variant[rows]) == "")
        offers += int(plan.treated().sum())
        sim.finish_day(plan)
    assert offers > 0
    assert not np.any(sim.ledger.columns()["event"] == EVENT["treatment_blocked"])


def test_best_model_copy_is_detached_and_predicts_the_same(trained: Any) -> None:
    from collsim.rl.training import _copy_model

    clone = _copy_model(trained.model)
    assert clone.policy is not trained.model.policy
    snap = next(iter(snapshots(days=1)))
    obs, mask = inputs(snap)
    a, _ = trained.model.predict(obs, action_masks=mask, deterministic=True)
    b, _ = clone.predict(obs, action_masks=mask, deterministic=True)
    np.testing.assert_array_equal(a, b)
