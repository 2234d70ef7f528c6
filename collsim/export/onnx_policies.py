"""Runners of the ONNX artifact kinds (onnxruntime; no torch, no stable-baselines3).

``rl_onnx`` signature (what an RL network must be exported as)::

    inputs   obs    float32 [N, F]      F = len(collsim.features.FEATURE_NAMES)
             mask   bool    [N, 1 + K]  column 0 = no contact (always True),
                                        column 1 + k = option k allowed
    outputs  action int64   [N]         0 = no contact, a >= 1 = option a - 1;
                                        the masked argmax is computed inside the graph
             score  float32 [N]         optional: higher is served first when a
                                        resource is short (default: balance x (1 + dpd/30))

With SB3: wrap the policy in a module ``forward(obs, mask)`` returning
``torch.where(mask, logits, -1e8).argmax(1)`` and export with ``input_names=["obs",
"mask"]``, ``output_names=["action"]`` and a dynamic batch axis.

``value_model`` signature::

    inputs   features float32 [N, F]
    outputs  value    float32 [N, K]    net value of option k over no contact

The runner then allocates exactly with :func:`collsim.policies.allocation.allocate`
(or ``allocate_with_budget`` under a money budget).

Both runners re-check every chosen option against the snapshot's mask (a graph that
ignores its mask cannot produce a violation: such rows get no contact) and respect
capacity.  Inference runs in chunks of rows to bound memory at 1M accounts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort

from collsim.features import observable_features
from collsim.plan import OptionSpace, Plan, Policy, Snapshot
from collsim.policies.base import allowed_options, fill_capacity
from collsim.policies.rl import candidate_table
from collsim.vocab import CHANNELS

SIGNATURES: dict[str, dict[str, Any]] = {
    "rl_onnx": {"inputs": ["obs", "mask"], "outputs": ["action"], "optional_outputs": ["score"]},
    "value_model": {"inputs": ["features"], "outputs": ["value"]},
}
"""Input and output names of each ONNX kind."""

CHUNK = 65_536
"""Rows per inference call."""


class OnnxSignatureError(ValueError):
    """An ONNX model whose inputs or outputs do not match its kind's signature."""


def _session(data: bytes, source: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several unrelated exception types
        raise OnnxSignatureError(f"{source}: not a loadable ONNX model: {exc}") from None


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
    """Check an ONNX model's signature and run it on two rows.

    For ``rl_onnx``, actions on random test rows must respect random masks (and be 0
    when only "no contact" is allowed): the mask is applied inside the graph.

    Raises:
        OnnxSignatureError: unloadable model, wrong names, types or widths.
    """
    session = _session(data, source)
    if kind == "rl_onnx":
        _check_io(
            session.get_inputs(),
            [("obs", "tensor(float)", n_features), ("mask", "tensor(bool)", 1 + n_options)],
            source,
        )
        _check_io(session.get_outputs(), [("action", "tensor(int64)", 0)], source)
        _check_masking(session, n_features, n_options, source)
    else:
        _check_io(session.get_inputs(), [("features", "tensor(float)", n_features)], source)
        _check_io(session.get_outputs(), [("value", "tensor(float)", n_options)], source)
        session.run(["value"], {"features": np.zeros((2, n_features), np.float32)})


def _check_masking(
    session: ort.InferenceSession, n_features: int, n_options: int, source: str
) -> None:
    """Run an rl_onnx graph on random rows: masked actions must never be chosen."""
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((16, n_features)).astype(np.float32)
    only_none = np.zeros((16, 1 + n_options), dtype=bool)
    only_none[:, 0] = True
    some = rng.random((16, 1 + n_options)) < 0.3
    some[:, 0] = True
    for mask in (only_none, some):
        action = np.asarray(session.run(["action"], {"obs": obs, "mask": mask})[0]).reshape(-1)
        inside = (action >= 0) & (action <= n_options)
        if not np.all(inside) or not np.all(mask[np.arange(16), np.where(inside, action, 0)]):
            raise OnnxSignatureError(
                f"{source}: chose masked actions on test rows; the masked argmax must be "
                "inside the graph (action = argmax(where(mask, logits, -1e8)))"
            )


def _default_priority(snapshot: Snapshot) -> np.ndarray:
    a = snapshot.accounts
    return np.asarray(a.balance * (1.0 + a.dpd / 30.0), dtype=np.float64)


class RLOnnxPolicy:
    """Runs an ``rl_onnx`` graph: one masked action per account, then capacity.

    Args:
        data: the ONNX model bytes.
        policy_id: the id written in plans.
        source: the model file (for messages).
        fallbacks: with a graph that also outputs ``logits`` [N, 1 + K], an account
            whose resource is full tries up to this many next-best options the model
            prefers to no contact (as :class:`collsim.policies.rl.RLPolicy` with
            ``fallbacks``); 0: the action only.
    """

    def __init__(
        self,
        data: bytes,
        policy_id: str = "rl_onnx",
        source: str = "model.onnx",
        fallbacks: int = 0,
    ) -> None:
        self.session = _session(data, source)
        self.policy_id = policy_id
        outputs = {o.name for o in self.session.get_outputs()}
        self.has_score = "score" in outputs
        if fallbacks > 0 and "logits" not in outputs:
            raise OnnxSignatureError(f"{source}: fallbacks need a 'logits' output")
        self.fallbacks = fallbacks

    def _infer(self, snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """(action [N], score [N] or None, candidate options [N, L]: ``candidate_table``)."""
        features = observable_features(snapshot)
        n = snapshot.n
        action = np.zeros(n, dtype=np.int64)
        score = np.zeros(n, dtype=np.float64) if self.has_score else None
        tables = []
        names = ["action"] + ["score"] * self.has_score + ["logits"] * (self.fallbacks > 0)
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            allowed = snapshot.options.option_mask(snapshot.mask[start:stop])
            mask = np.concatenate([np.ones((stop - start, 1), dtype=bool), allowed], axis=1)
            values = self.session.run(names, {"obs": features[start:stop], "mask": mask})
            out = dict(zip(names, values, strict=True))
            action[start:stop] = np.asarray(out["action"]).reshape(-1)
            if score is not None:
                score[start:stop] = np.asarray(out["score"], dtype=np.float64).reshape(-1)
            logits = np.asarray(out.get("logits", mask))  # (logits unused without fallbacks)
            tables.append(candidate_table(logits, mask, action[start:stop], self.fallbacks))
        table = np.concatenate(tables) if tables else np.full((0, 1), -1, dtype=np.int64)
        return action, score, table

    def decide(self, snapshot: Snapshot) -> Plan:
        """Return the plan: the graph's action where allowed and within capacity."""
        n, k = snapshot.n, snapshot.options.n_options
        action, score, table = self._infer(snapshot)
        option = np.where((action >= 1) & (action <= k), action - 1, -1)
        rows = np.arange(n)
        forbidden = ((option >= 0) & ~allowed_options(snapshot, rows, option)) | (action > k)
        option = np.where(forbidden, -1, option)
        table = np.where(forbidden[:, None] | (table >= k), -1, table)  # fill re-checks the mask
        priority = _default_priority(snapshot) if score is None else score
        chosen, _ = fill_capacity(snapshot, table, np.where(option >= 0, rows, -1), priority)
        reasons = ["model: no contact", "model: capacity full", "model chose a forbidden option"]
        reasons += [f"model: {c}" for c in CHANNELS]
        reason = np.where(forbidden, 2, np.where(option >= 0, 1, 0))
        reason = np.where(chosen >= 0, 3 + chosen // snapshot.options.n_slots, reason)
        return Plan.from_options(
            chosen, snapshot.options, self.policy_id, reasons, reason.astype(np.int16),
            priority_score=priority,
        )  # fmt: skip


class ValueModelPolicy:
    """Runs a ``value_model`` graph, then the exact allocation under capacity (and budget).

    Args:
        data: the ONNX model bytes.
        policy_id: the id written in plans.
        source: the model file (for messages).
    """

    def __init__(
        self, data: bytes, policy_id: str = "value_model", source: str = "model.onnx"
    ) -> None:
        self.session = _session(data, source)
        self.policy_id = policy_id

    def _values(self, snapshot: Snapshot) -> np.ndarray:
        features = observable_features(snapshot)
        parts = [
            np.asarray(self.session.run(["value"], {"features": features[s : s + CHUNK]})[0])
            for s in range(0, snapshot.n, CHUNK)
        ]
        width = snapshot.options.n_options
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, width))

    def decide(self, snapshot: Snapshot) -> Plan:
        """Return the value-maximising plan under capacity (and the money budget)."""
        from collsim.policies.allocation import allocate_day

        opts = snapshot.options
        value = self._values(snapshot)
        mask = snapshot.option_mask()
        value = np.where(mask & np.isfinite(value), value, 0.0)
        mask &= value > 0
        choice, _ = allocate_day(value, mask, snapshot)
        rows = np.arange(snapshot.n)
        expected = np.where(choice >= 0, value[rows, np.maximum(choice, 0)], 0.0)
        reasons = ["value model: no option worth its capacity"]
        reasons += [f"value model: {c}" for c in CHANNELS]
        reason = np.where(choice >= 0, 1 + np.maximum(choice, 0) // opts.n_slots, 0)
        return Plan.from_options(
            choice, opts, self.policy_id, reasons, reason.astype(np.int16), expected_value=expected
        )


def make_onnx_policy(
    kind: str, data: bytes, options: OptionSpace, source: str, fallbacks: int = 0
) -> Policy:
    """Check a model against its kind and the option space; return its runner.

    Args:
        kind: ``rl_onnx`` or ``value_model``.
        data: the ONNX model bytes.
        options: the option space the model must match.
        source: the model file (for messages).
        fallbacks: ``rl_onnx`` only: see :class:`RLOnnxPolicy`.

    Raises:
        OnnxSignatureError: the model does not match the signature.
    """
    from collsim.features import FEATURE_NAMES

    check_model(data, kind, len(FEATURE_NAMES), options.n_options, source)
    if kind == "rl_onnx":
        return RLOnnxPolicy(data, source=source, fallbacks=fallbacks)
    return ValueModelPolicy(data, source=source)


__all__ = [
    "CHUNK",
    "SIGNATURES",
    "OnnxSignatureError",
    "RLOnnxPolicy",
    "ValueModelPolicy",
    "check_model",
    "make_onnx_policy",
]
