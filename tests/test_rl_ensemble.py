"""Ensembles of RL policies and checkpoint selection on validation seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from collsim.config import load_scenario
from collsim.policies.champion import TieredChampion
from collsim.sim.engine import Simulation

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from tests.test_rl import TINY_RUN, snapshots  # noqa: E402

TINY = TINY_RUN.replace(eval_accounts=200, net_arch=(32, 32))
"""Two evaluations (checkpoints) in a few seconds."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two tiny `collsim train` runs (training seeds 0 and 1) with their checkpoints."""
    from collsim.rl.commands import train

    root = tmp_path_factory.mktemp("runs")
    out = []
    for seed in (0, 1):
        run = root / f"s{seed}"
        overrides = {"scenario": "default", "steps": 2048, "seed": seed, "n_envs": 64}
        assert train(run, overrides, config=TINY) == 0
        out.append(run)
    return out


def test_train_keeps_a_checkpoint_per_evaluation(runs: list[Path]) -> None:
    from collsim.rl.select import checkpoints

    found = checkpoints(runs[0])
    evaluations = json.loads((runs[0] / "evaluations.json").read_text())
    assert [step for step, _ in found] == [e["steps"] for e in evaluations]
    assert checkpoints(runs[0], min_step=found[-1][0]) == found[-1:]


def test_one_member_ensemble_decides_like_the_member(runs: list[Path]) -> None:
    from collsim.policies.rl import EnsembleLogits, RLPolicy
    from collsim.rl.logits import load_logit_model

    member = runs[0] / "best_model.zip"
    single, ensemble = (
        RLPolicy(load_logit_model(member), fallbacks=3),
        RLPolicy(EnsembleLogits([load_logit_model(member)]), fallbacks=3),
    )
    for snap in snapshots(n=300, days=4):
        a, b = single.decide(snap), ensemble.decide(snap)
        np.testing.assert_array_equal(a.channel, b.channel)
        np.testing.assert_array_equal(a.slot_hour, b.slot_hour)


def test_ensemble_logits_are_log_mean_masked_probabilities(runs: list[Path]) -> None:
    from collsim.policies.rl import (
        MASKED_LOGIT,
        EnsembleLogits,
        masked_softmax,
        snapshot_inputs,
    )
    from collsim.rl.logits import load_logit_model

    members = [load_logit_model(r / "best_model.zip") for r in runs]
    ensemble = EnsembleLogits(members)
    snap = snapshots(n=300, days=2)[-1]
    obs, mask = snapshot_inputs(snap)
    got = ensemble.logits(obs, mask)
    expected = (masked_softmax(members[0].logits(obs, mask)) + masked_softmax(
        members[1].logits(obs, mask))) / 2  # fmt: skip
    assert np.all(got[~mask] == np.float32(MASKED_LOGIT))
    np.testing.assert_allclose(np.exp(got[mask]), expected[mask], rtol=1e-5, atol=1e-12)
    assert not np.allclose(
        members[0].logits(obs, mask)[mask], members[1].logits(obs, mask)[mask]
    )  # two different members, so the test can tell an average from either


def test_ensemble_file_roundtrip_checksums_and_registry(runs: list[Path], tmp_path: Path) -> None:
    import shutil

    from collsim.evaluation.spec import build_policy
    from collsim.policies.rl import EnsembleLogits, RLPolicy
    from collsim.research.registry import make_policy
    from collsim.rl.logits import load_logit_model

    for r in runs:
        shutil.copytree(r, tmp_path / r.name)
    members = [tmp_path / r.name / "best_model.zip" for r in runs]
    path = EnsembleLogits.write(tmp_path / "ens.json", members, note="test")
    spec = json.loads(path.read_text())
    assert spec["kind"] == "rl_ensemble" and spec["note"] == "test"
    assert [m["path"] for m in spec["members"]] == ["s0/best_model.zip", "s1/best_model.zip"]
    policy = make_policy(f"rl:{path}", load_scenario("default"))
    assert isinstance(policy, RLPolicy) and isinstance(policy.model, EnsembleLogits)
    assert len(policy.model.members) == 2
    snap = snapshots(n=300, days=1)[0]
    plan = policy.decide(snap)
    option = snap.options.encode(plan.channel, plan.slot_hour)
    rows = np.flatnonzero(option >= 0)
    assert snap.option_mask()[rows, option[rows]].all()
    built = build_policy(f"rl:{path}", {"fallbacks": 2}, load_scenario("default"))
    assert isinstance(built, RLPolicy) and isinstance(built.model, EnsembleLogits)
    assert built.fallbacks == 2 and built.policy_id == "rl:ens.json"
    members[1].write_bytes(members[1].read_bytes() + b"x")
    with pytest.raises(ValueError, match="sha256"):
        RLPolicy(load_logit_model(path))
    with pytest.raises(ValueError, match="collsim.rl.logits"):
        RLPolicy(path)  # the core runner does not load a MaskablePPO .zip (torch)
    (tmp_path / "bad.json").write_text('{"kind": "other"}')
    with pytest.raises(ValueError, match="rl_ensemble"):
        RLPolicy(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="at least one"):
        EnsembleLogits([])


def test_select_ranks_checkpoints_on_validation_seeds(runs: list[Path], tmp_path: Path) -> None:
    from collsim.metrics import kpis
    from collsim.rl.select import SelectionOptions, checkpoints, select

    lines: list[str] = []
    options = SelectionOptions(accounts=150, days=3, seeds=(11, 12), top=1)
    record = select(runs, tmp_path, options, progress=lines.append)
    n_ckpt = sum(len(checkpoints(r)) for r in runs)
    assert len(lines) == 2 * (n_ckpt + 1)  # champion + every checkpoint, on both seeds
    champion = np.array(record["champion_net"])
    scenario = load_scenario("default").scaled_to(150)
    sim = Simulation(scenario, 11)
    sim.run(TieredChampion(scenario.champion), 3)
    assert champion[0] * 150 == pytest.approx(kpis(sim.ledger)["portfolio_value"], rel=1e-9)
    for run in runs:
        ranked = record["ranked"][run.name]
        deltas = [r["delta_mean"] for r in ranked]
        assert deltas == sorted(deltas, reverse=True)
        best = ranked[0]
        assert best["delta_mean"] == pytest.approx(float((np.array(best["net"]) - champion).mean()))
        assert record["selected"][run.name] == [best["path"]]
        spec = json.loads((tmp_path / f"{run.name}.json").read_text())
        assert len(spec["members"]) == 1 and spec["selection"]["validation_seeds"] == [11, 12]
    assert len(json.loads((tmp_path / "ensemble.json").read_text())["members"]) == 2
    assert (tmp_path / "validation" / "runs.parquet").is_file()  # the evaluation runner's
    again: list[str] = []
    repeated = select(runs, tmp_path, options, progress=again.append)
    assert repeated["selected"] == record["selected"]
    assert again == []  # every run came from the runner's cell cache


def test_rl_compare_benchmark_adds_labelled_policies(runs: list[Path], tmp_path: Path) -> None:
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "rl_compare.py"
    spec = importlib.util.spec_from_file_location("rl_compare", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.main(["--rl", f"ens={runs[0] / 'best_model.zip'}", "--skip", "no_contact",
                        "optimised", "--accounts", "120", "--days", "2", "--seeds", "1", "2",
                        "--workers", "1", "--out", str(tmp_path), "--title", "T"])  # fmt: skip
    text = (tmp_path / "comparison.md").read_text()
    assert code == 0 and text.startswith("# T")
    labels = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")]
    assert labels[1:] == ["champion", "ens"]
    assert (tmp_path / "runs.parquet").is_file()
    with pytest.raises(ValueError, match="baseline"):
        module.policy_specs(None, "log_odds", [], [], ["champion"])


@pytest.mark.parametrize("priority", ["log_odds", "confidence", "value"])
def test_capacity_goes_to_the_highest_priority_accounts(runs: list[Path], priority: str) -> None:
    from collsim.policies.rl import RLPolicy, masked_softmax
    from collsim.rl.logits import load_logit_model

    policy = RLPolicy(
        load_logit_model(runs[0] / "best_model.zip"), priority=priority
    )  # no fallbacks
    snap = snapshots(n=3000, days=1)[0]
    plan = policy.decide(snap)
    logits, _ = policy.logits(snap)
    rows = np.arange(snap.n)
    action = np.argmax(logits, axis=1)
    if priority == "log_odds":
        key = (logits[rows, action] - logits[:, 0]).astype(np.float64)
    elif priority == "confidence":
        key = masked_softmax(logits)[rows, action]
    else:
        from collsim.features import observable_features

        key = policy.model.values(observable_features(snap))  # type: ignore[attr-defined]
    fitted = snap.options.encode(plan.channel, plan.slot_hour)
    wanted = action - 1
    tz = snap.accounts.timezone
    res = np.where(wanted >= 0, snap.resources.resource_by_zone[tz, np.maximum(wanted, 0)], -1)
    denied = (wanted >= 0) & (fitted < 0) & (res >= 0)
    assert denied.any()  # capacity binds, so the order matters
    for r in np.unique(res[denied]):
        served = (res == r) & (fitted == wanted)
        if snap.resources.capacity[r] == 0:  # e.g. an unstaffed hour: nobody is served
            assert not served.any()
            continue
        assert served.any() and key[served].min() >= key[denied & (res == r)].max()


def test_priority_is_validated(runs: list[Path], tmp_path: Path) -> None:
    from collsim.policies.rl import RLPolicy

    with pytest.raises(ValueError, match="unknown priority"):
        RLPolicy(runs[0] / "policy.onnx", priority="balance")
    onnx = runs[0] / "policy.onnx"
    assert onnx.is_file()
    with pytest.raises(ValueError, match="critic"):
        RLPolicy(onnx, priority="value")
