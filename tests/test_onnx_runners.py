"""The ONNX artifact kinds run through the simulation's policies (no torch needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from collsim.config import load_scenario
from collsim.evaluation.spec import build_policy
from collsim.export.artifact import export_onnx_artifact
from collsim.export.onnx_policies import make_onnx_policy
from collsim.export.testing import tiny_rl_onnx, tiny_value_onnx
from collsim.features import FEATURE_NAMES
from collsim.plan import OptionSpace
from collsim.policies.onnx import OnnxSignatureError
from collsim.policies.optimised import OptimisedAllocation
from collsim.policies.rl import MASKED_LOGIT, OnnxLogits, RLPolicy

F = len(FEATURE_NAMES)
HOURS = np.arange(8, 21)
OPTIONS = OptionSpace(HOURS)
A = 1 + OPTIONS.n_options


def _unmasked_argmax_graph(seed: int = 0) -> bytes:
    """An action-only graph that ignores its mask (an artifact check would refuse it)."""
    from onnx import TensorProto, helper, numpy_helper

    from collsim.export.testing import _serialise

    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.standard_normal((F, A)).astype(np.float32), "W")
    nodes = [
        helper.make_node("MatMul", ["obs", "W"], ["linear"]),
        helper.make_node("ArgMax", ["linear"], ["action"], axis=1, keepdims=0),
        helper.make_node("Cast", ["mask"], ["unused"], to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(
        nodes,
        "ignores_mask",
        [
            helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["N", F]),
            helper.make_tensor_value_info("mask", TensorProto.BOOL, ["N", A]),
        ],
        [helper.make_tensor_value_info("action", TensorProto.INT64, ["N"])],
        [weight],
    )
    return _serialise(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def _rows(n: int = 64, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = rng.random((n, A)) < 0.5
    mask[:, 0] = True
    return rng.standard_normal((n, F)).astype(np.float32), mask


def test_action_and_score_become_the_log_odds_of_the_action() -> None:
    data = tiny_rl_onnx(F, A, seed=2, score=True)
    model = OnnxLogits(data)
    assert not model.has_logits and model.has_score
    obs, mask = _rows()
    logits = model.logits(obs, mask)
    import onnxruntime as ort

    action, score = ort.InferenceSession(data).run(["action", "score"], {"obs": obs, "mask": mask})
    np.testing.assert_array_equal(np.argmax(logits, axis=1), action)
    contact = action > 0
    odds = logits[np.arange(len(action)), action] - logits[:, 0]
    # same order as the graph's score among contacts (shifted if some score <= 0)
    order = np.argsort(score[contact], kind="stable")
    assert np.all(np.diff(odds[contact][order]) >= 0) and np.all(odds[contact] > 0)
    assert np.all(logits[~mask] == np.float32(MASKED_LOGIT))


def test_a_forbidden_action_becomes_no_contact() -> None:
    model = OnnxLogits(_unmasked_argmax_graph())
    obs, mask = _rows()
    mask[:, 1:] = False
    logits = model.logits(obs, mask)
    assert np.all(np.argmax(logits, axis=1) == 0)
    with pytest.raises(OnnxSignatureError, match="masked actions"):
        make_onnx_policy("rl_onnx", _unmasked_argmax_graph(), OPTIONS, "m.onnx")


def test_make_onnx_policy_returns_the_simulation_runners() -> None:
    action_only = make_onnx_policy("rl_onnx", tiny_rl_onnx(F, A, 3), OPTIONS, "a.onnx")
    scored = make_onnx_policy("rl_onnx", tiny_rl_onnx(F, A, 3, score=True), OPTIONS, "s.onnx")
    value = make_onnx_policy("value_model", tiny_value_onnx(F, A - 1, 3), OPTIONS, "v.onnx")
    assert isinstance(action_only, RLPolicy) and action_only.priority == "exposure"
    assert isinstance(scored, RLPolicy) and scored.priority == "log_odds"
    assert isinstance(value, OptimisedAllocation)
    with pytest.raises(OnnxSignatureError, match="logits"):
        make_onnx_policy("rl_onnx", tiny_rl_onnx(F, A, 3), OPTIONS, "a.onnx", fallbacks=2)


def test_rl_policy_verifies_an_artifact_and_refuses_a_zip(tmp_path: Path) -> None:
    (tmp_path / "rl.onnx").write_bytes(tiny_rl_onnx(F, A, 5, score=True))
    out = tmp_path / "artifact"
    export_onnx_artifact(tmp_path / "rl.onnx", "rl_onnx", out, load_scenario("default"))
    assert RLPolicy(out).policy_id == "rl:artifact"
    built = build_policy(f"rl:{out}", {"priority": "confidence"}, load_scenario("default"))
    assert isinstance(built, RLPolicy) and built.priority == "confidence"
    assert built.policy_id == "rl:artifact"
    (out / "model.onnx").write_bytes(tiny_rl_onnx(F, A, 6, score=True))
    with pytest.raises(ValueError, match="checksum"):
        RLPolicy(out)
    (tmp_path / "m.zip").write_bytes(b"PK")
    with pytest.raises(ValueError, match="collsim.rl.logits"):
        RLPolicy(tmp_path / "m.zip")
