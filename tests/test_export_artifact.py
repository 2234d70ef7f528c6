"""Policy artifacts: checksums, kinds, ONNX signatures; money budget; distillation pieces."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from collsim.config import load_scenario
from collsim.export.artifact import ArtifactError, export_onnx_artifact, load_artifact
from collsim.export.commands import Distillation, export_policy, make_plan
from collsim.export.daily import apply_holdout
from collsim.export.testing import tiny_rl_onnx, tiny_value_onnx
from collsim.features import FEATURE_NAMES
from collsim.plan import OptionSpace, Plan
from collsim.vocab import N_CHANNELS

F, K = len(FEATURE_NAMES), N_CHANNELS * 13


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("art") / "champion"
    assert export_policy("champion", out, "default") == 0
    return out


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def _save(path: Path, manifest: dict) -> None:
    """Rewrite the manifest and its checksum, as a hostile operator would."""
    from collsim.export.artifact import manifest_sum_line

    text = json.dumps(manifest)
    (path / "manifest.json").write_text(text)
    (path / "manifest.json.sha256").write_text(manifest_sum_line(text.encode()))


def test_same_content_same_id(champion: Path, tmp_path: Path) -> None:
    assert export_policy("champion", tmp_path / "again", "default") == 0
    assert _manifest(tmp_path / "again")["artifact_id"] == _manifest(champion)["artifact_id"]
    assert export_policy("champion", tmp_path / "cn", "cn_consumer_finance") == 0
    assert _manifest(tmp_path / "cn")["artifact_id"] != _manifest(champion)["artifact_id"]


def test_export_replaces_an_artifact_but_not_other_folders(tmp_path: Path) -> None:
    out = tmp_path / "art"
    assert export_policy("champion", out, "default") == 0
    assert export_policy("no_contact", out, "default") == 0
    assert _manifest(out)["name"] == "no_contact"
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    assert export_policy("champion", other, "default") == 2
    assert [p.name for p in other.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(kind="pickle"), "kind 'pickle' is unknown"),
        (lambda m: m.update(format_version=9), "format_version 9 is not supported"),
        (lambda m: m["files"].update({"../x": "0"}), "is not a plain file name"),
        (
            lambda m: m["files"].update({"extra.bin": "0"}),
            "extra.bin: listed in the manifest but missing",
        ),
        (lambda m: m["option_space"].update(operating_hours=[9, 8]), "operating_hours"),
    ],
)
def test_load_refuses_bad_manifests(
    champion: Path, tmp_path: Path, edit: object, message: str
) -> None:
    copy = _copy(champion, tmp_path)
    manifest = _manifest(copy)
    edit(manifest)  # type: ignore[operator]
    _save(copy, manifest)
    with pytest.raises(ArtifactError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_artifact(copy)


def test_load_refuses_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="manifest.json is missing"):
        load_artifact(tmp_path)


def test_yaml_and_json_must_agree(champion: Path, tmp_path: Path) -> None:
    copy = _copy(champion, tmp_path)
    (copy / "tree.yaml").write_text("id: other\ntiers: []\n")
    manifest = _manifest(copy)
    import hashlib

    manifest["files"]["tree.yaml"] = hashlib.sha256((copy / "tree.yaml").read_bytes()).hexdigest()
    _save(copy, manifest)
    with pytest.raises(ArtifactError, match="differs from tree.json"):
        load_artifact(copy)


def test_rl_model_must_mask_inside_the_graph(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ArgMax", ["obs"], ["action"], axis=1, keepdims=0)],
        "ignores_mask",
        [
            helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["N", F]),
            helper.make_tensor_value_info("mask", TensorProto.BOOL, ["N", 1 + K]),
        ],
        [helper.make_tensor_value_info("action", TensorProto.INT64, ["N"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "bad.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ArtifactError, match="chose masked actions"):
        export_onnx_artifact(path, "rl_onnx", tmp_path / "art", load_scenario("default"))
    assert not (tmp_path / "art").exists()


def test_onnx_signature_is_checked(tmp_path: Path) -> None:
    scenario = load_scenario("default")
    wrong = tmp_path / "wrong.onnx"
    wrong.write_bytes(tiny_rl_onnx(F + 1, 1 + K))
    with pytest.raises(ArtifactError, match=f"'obs' has {F + 1} columns, expected {F}"):
        export_onnx_artifact(wrong, "rl_onnx", tmp_path / "a", scenario)
    value = tmp_path / "value.onnx"
    value.write_bytes(tiny_value_onnx(F, K))
    with pytest.raises(ArtifactError, match="has no 'obs'"):
        export_onnx_artifact(value, "rl_onnx", tmp_path / "a", scenario)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ArtifactError, match="not a loadable ONNX model"):
        export_onnx_artifact(tmp_path / "junk.onnx", "value_model", tmp_path / "a", scenario)


def test_feature_names_must_match(tmp_path: Path) -> None:
    model = tmp_path / "rl.onnx"
    model.write_bytes(tiny_rl_onnx(F, 1 + K))
    export_onnx_artifact(model, "rl_onnx", tmp_path / "art", load_scenario("default"))
    manifest = _manifest(tmp_path / "art")
    manifest["feature_names"] = manifest["feature_names"][::-1]
    _save(tmp_path / "art", manifest)
    with pytest.raises(ArtifactError, match="feature_names differ"):
        load_artifact(tmp_path / "art")


def test_unknown_policy_spec_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert export_policy("greedy", tmp_path / "a", "default") == 2
    assert "cannot export policy 'greedy'" in capsys.readouterr().err
    assert export_policy("optimised", tmp_path / "a", "default") == 2  # the core never trains
    assert "collsim export" in capsys.readouterr().err
    assert export_policy("champion", tmp_path / "a", "default", distill=Distillation(days=3)) == 2
    assert "--distill-days simulates the policy" in capsys.readouterr().err
    assert export_policy("champion", tmp_path / "a", "no_such_scenario") == 2
    assert not (tmp_path / "a").exists()


def test_money_budget_is_respected(champion: Path, tmp_path: Path) -> None:
    from collsim.compliance.testing import make_portfolio
    from collsim.history import History
    from collsim.tables import write_history, write_portfolio

    portfolio = make_portfolio(40)
    portfolio.dpd[:] = 45  # tier mid_agent: agent calls (0.05 each)
    write_portfolio(portfolio, tmp_path / "p.parquet")
    write_history(History.empty(), portfolio, tmp_path / "h.parquet")
    capacity = load_scenario("default").capacity.model_dump(mode="json")
    capacity["money_budget"] = 0.5
    (tmp_path / "c.yaml").write_text(json.dumps(capacity))
    out = tmp_path / "plan.parquet"
    files = {"portfolio": tmp_path / "p.parquet", "history": tmp_path / "h.parquet"}
    code = make_plan(champion, **files, capacity=tmp_path / "c.yaml", date="2026-03-09",
                     ruleset="us_reg_f", out=out)  # fmt: skip
    assert code == 0
    manifest = json.loads((tmp_path / "plan.parquet.manifest.json").read_text())
    money = manifest["capacity"]["money_budget"]
    assert money == {"used": pytest.approx(0.5), "available": 0.5}


def test_holdout_rejects_bad_share() -> None:
    plan = Plan.from_options(np.array([0, -1]), OptionSpace(np.arange(1)), "p", ["r"], np.zeros(2))
    with pytest.raises(ValueError, match="holdout_share"):
        apply_holdout(plan, 1.0, 0, 0)
