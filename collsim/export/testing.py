"""Tiny reference ONNX models of the artifact signatures, built with ``onnx.helper``.

They document the exact graphs the ``rl_onnx`` and ``value_model`` kinds expect and
are used by the tests; an RL network exported into the same signature loads the
same way.  Needs the ``onnx`` package (not needed to *run* an artifact).
"""

from __future__ import annotations

from typing import Any

import numpy as np

OPSET = 17


def _linear(
    name_in: str, n_in: int, n_out: int, seed: int, scale: float
) -> tuple[list[Any], list[Any]]:
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
    weight = (rng.standard_normal((n_in, n_out)) * scale).astype(np.float32)
    bias = (rng.standard_normal(n_out) * scale).astype(np.float32)
    inits = [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "B")]
    nodes = [
        helper.make_node("MatMul", [name_in, "W"], ["xw"]),
        helper.make_node("Add", ["xw", "B"], ["linear"]),
    ]
    return nodes, inits


def tiny_rl_onnx(n_features: int, n_actions: int, seed: int = 0, score: bool = False) -> bytes:
    """Return an ``rl_onnx`` model: random linear logits, masked argmax inside the graph.

    Args:
        n_features: F, the width of ``obs``.
        n_actions: 1 + K, the width of ``mask`` (action 0 = no contact).
        seed: seeds the random weights.
        score: also output ``score`` (the best masked logit) for capacity priority.
    """
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = _linear("obs", n_features, n_actions, seed, 1.0)
    inits.append(numpy_helper.from_array(np.array(-1e8, dtype=np.float32), "NEG"))
    nodes += [
        helper.make_node("Where", ["mask", "linear", "NEG"], ["masked"]),
        helper.make_node("ArgMax", ["masked"], ["action"], axis=1, keepdims=0),
    ]
    outputs = [helper.make_tensor_value_info("action", TensorProto.INT64, ["N"])]
    if score:
        nodes.append(helper.make_node("ReduceMax", ["masked"], ["score"], axes=[1], keepdims=0))
        outputs.append(helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"]))
    graph = helper.make_graph(
        nodes,
        "collsim_rl_onnx_reference",
        [
            helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["N", n_features]),
            helper.make_tensor_value_info("mask", TensorProto.BOOL, ["N", n_actions]),
        ],
        outputs,
        inits,
    )
    return _serialise(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]))


def tiny_value_onnx(n_features: int, n_options: int, seed: int = 0) -> bytes:
    """Return a ``value_model`` model: ``value = features @ W + B`` of shape [N, K]."""
    from onnx import TensorProto, helper

    nodes, inits = _linear("features", n_features, n_options, seed, 0.5)
    nodes.append(helper.make_node("Identity", ["linear"], ["value"]))
    graph = helper.make_graph(
        nodes,
        "collsim_value_model_reference",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info("value", TensorProto.FLOAT, ["N", n_options])],
        inits,
    )
    return _serialise(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]))


def _serialise(model: Any) -> bytes:
    import onnx

    model.ir_version = 8  # readable by onnxruntime >= 1.14
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


__all__ = ["tiny_rl_onnx", "tiny_value_onnx"]
