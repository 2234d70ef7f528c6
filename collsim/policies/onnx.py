"""ONNX model signatures and sessions shared by the runners and the artifact loader.

``rl_onnx`` signature (what an RL network must be exported as)::

    inputs   obs     float32 [N, F]      F = len(collsim.features.FEATURE_NAMES)
             mask    bool    [N, 1 + K]  column 0 = no contact (always True),
                                         column 1 + k = option k allowed
    outputs  action  int64   [N]         0 = no contact, a >= 1 = option a - 1;
                                         the masked argmax is computed inside the graph
             score   float32 [N]         optional: log-odds of the action over no contact
             logits  float32 [N, 1 + K]  optional: the masked logits

A graph whose actions carry treatments has ``mask`` and ``logits`` of width A = 1 + the
actions of its layout, whose JSON is the graph's metadata entry :data:`LAYOUT_KEY`
(:class:`collsim.policies.action_layout.ActionLayout`); :func:`check_model` reads the
width from it.

``value_model`` signature::

    inputs   features float32 [N, F]
    outputs  value    float32 [N, K]    net value of option k over no contact

Both kinds are run by the simulation's own policies
(:class:`collsim.policies.rl.RLPolicy`,
:class:`collsim.policies.optimised.OptimisedAllocation`); this module only checks
that a graph has the signature of its kind and opens onnxruntime sessions.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

SIGNATURES: dict[str, dict[str, Any]] = {
    "rl_onnx": {"inputs": ["obs", "mask"], "outputs": ["action"], "optional_outputs": ["score"]},
    "value_model": {"inputs": ["features"], "outputs": ["value"]},
}
"""Input and output names of each ONNX kind (recorded in artifact manifests; an
``rl_onnx`` graph may also output ``logits``)."""

LAYOUT_KEY = "collsim.action_layout"
"""ONNX metadata key of an ``rl_onnx`` graph's action layout (JSON of
:class:`collsim.policies.action_layout.ActionLayout`; absent: ``mask`` is [N, 1 + K])."""

__all__ = [
    "LAYOUT_KEY",
    "SIGNATURES",
    "OnnxSignatureError",
    "artifact_model",
    "check_model",
    "layout_text",
    "output_names",
    "session",
]


class OnnxSignatureError(ValueError):
    """An ONNX model whose inputs or outputs do not match its kind's signature."""


def session(data: bytes, source: str, threads: int | None = 1) -> ort.InferenceSession:
    """Open an onnxruntime CPU session on model bytes.

    Args:
        data: the ONNX model bytes.
        source: the model file (for messages).
        threads: intra-op threads (None: onnxruntime's choice).

    Raises:
        OnnxSignatureError: the bytes are not a loadable ONNX model.
    """
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several unrelated exception types
        raise OnnxSignatureError(f"{source}: not a loadable ONNX model: {exc}") from None


def output_names(model: ort.InferenceSession) -> set[str]:
    """Return the names of a session's outputs."""
    return {o.name for o in model.get_outputs()}


def layout_text(model: ort.InferenceSession) -> str | None:
    """The graph's action layout JSON (metadata :data:`LAYOUT_KEY`), None without one."""
    return model.get_modelmeta().custom_metadata_map.get(LAYOUT_KEY)


def _n_actions(model: ort.InferenceSession, n_options: int) -> int:
    """Width of an rl_onnx graph's mask: 1 + K, or 1 + the layout's actions."""
    text = layout_text(model)
    if text is None:
        return 1 + n_options
    try:
        return 1 + len(json.loads(text)["actions"])
    except (ValueError, KeyError, TypeError):
        raise OnnxSignatureError(f"metadata {LAYOUT_KEY!r} is not a valid layout") from None


def _check_io(items: list[Any], expected: list[tuple[str, str, int]], source: str) -> None:
    """Check names, element types and the fixed second dimension of inputs or outputs."""
    by_name = {item.name: item for item in items}
    for name, elem, width in expected:
        if name not in by_name:
            raise OnnxSignatureError(f"{source}: has no {name!r} (found {sorted(by_name)})")
        item = by_name[name]
        if item.type != elem:
            raise OnnxSignatureError(f"{source}: {name!r} has type {item.type}, expected {elem}")
        shape = list(item.shape)
        dims = 2 if width > 0 else 1
        if len(shape) != dims:
            raise OnnxSignatureError(f"{source}: {name!r} has shape {shape}, expected rank {dims}")
        if width > 0 and isinstance(shape[1], int) and shape[1] != width:
            raise OnnxSignatureError(f"{source}: {name!r} has {shape[1]} columns, expected {width}")


def check_model(data: bytes, kind: str, n_features: int, n_options: int, source: str) -> None:
    """Check an ONNX model's signature and run it on test rows.

    For ``rl_onnx``, actions on random test rows must respect random masks (and be 0
    when only "no contact" is allowed): the mask is applied inside the graph.

    Raises:
        OnnxSignatureError: unloadable model, wrong names, types or widths.
    """
    model = session(data, source)
    if kind == "rl_onnx":
        n_actions = _n_actions(model, n_options)
        _check_io(
            model.get_inputs(),
            [("obs", "tensor(float)", n_features), ("mask", "tensor(bool)", n_actions)],
            source,
        )
        _check_io(model.get_outputs(), [("action", "tensor(int64)", 0)], source)
        _check_masking(model, n_features, n_actions - 1, source)
    else:
        _check_io(model.get_inputs(), [("features", "tensor(float)", n_features)], source)
        _check_io(model.get_outputs(), [("value", "tensor(float)", n_options)], source)
        model.run(["value"], {"features": np.zeros((2, n_features), np.float32)})


def _check_masking(
    model: ort.InferenceSession, n_features: int, n_options: int, source: str
) -> None:
    """Run an rl_onnx graph on random rows: masked actions must never be chosen."""
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((16, n_features)).astype(np.float32)
    only_none = np.zeros((16, 1 + n_options), dtype=bool)
    only_none[:, 0] = True
    some = rng.random((16, 1 + n_options)) < 0.3
    some[:, 0] = True
    for mask in (only_none, some):
        action = np.asarray(model.run(["action"], {"obs": obs, "mask": mask})[0]).reshape(-1)
        inside = (action >= 0) & (action <= n_options)
        if not np.all(inside) or not np.all(mask[np.arange(16), np.where(inside, action, 0)]):
            raise OnnxSignatureError(
                f"{source}: chose masked actions on test rows; the masked argmax must be "
                "inside the graph (action = argmax(where(mask, logits, -1e8)))"
            )


def artifact_model(path: str | Path) -> tuple[bytes, str]:
    """Return (model bytes, file name) of an ONNX policy artifact directory, verified.

    Checks what a runner needs to trust the model: the manifest against
    ``manifest.json.sha256`` and the model file against the manifest's sha256.  The
    full check of an artifact (fields, identity, signature) is
    :func:`collsim.export.artifact.load_artifact`'s.

    Raises:
        ValueError: not an artifact, a checksum mismatch or a model file not listed.
    """
    path = Path(path)
    manifest_file, sum_file = path / "manifest.json", path / "manifest.json.sha256"
    if not manifest_file.is_file() or not sum_file.is_file():
        raise ValueError(f"{path}: not a policy artifact (manifest.json or its .sha256 missing)")
    data = manifest_file.read_bytes()
    if sum_file.read_text(encoding="utf-8") != f"{_sha256(data)}  manifest.json\n":
        raise ValueError(f"{manifest_file}: checksum mismatch with manifest.json.sha256")
    manifest = json.loads(data.decode("utf-8"))
    name = str(manifest.get("policy", {}).get("model", "model.onnx"))
    model = path / name
    expected = manifest.get("files", {}).get(name)
    if Path(name).name != name or not model.is_file() or model.is_symlink():
        raise ValueError(f"{model}: not a plain model file of the artifact")
    model_bytes = model.read_bytes()
    if expected != _sha256(model_bytes):
        raise ValueError(f"{model}: checksum mismatch with the manifest")
    return model_bytes, str(model)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
