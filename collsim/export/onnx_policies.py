"""The runners of the ONNX artifact kinds are the simulation's own policies.

* ``rl_onnx`` → :class:`collsim.policies.rl.RLPolicy` over
  :class:`~collsim.policies.rl.OnnxLogits` of the graph: the masked argmax, then
  capacity by the log-odds of the action over no contact (the graph's ``logits``, or
  its ``score`` without them; with neither, by ``balance × (1 + dpd / 30)``), with
  the manifest's ``policy.fallbacks``;
* ``value_model`` → :class:`collsim.policies.optimised.OptimisedAllocation` over
  :class:`~collsim.policies.models.value.OnnxValueModel` of the graph: the exact
  allocation under capacity (and the money budget), with the redial headroom.

The signatures are in :mod:`collsim.policies.onnx`.  A plan made from an artifact and
the day's files is the plan the simulator's policy makes from the same state
(``tests/test_sim_plan_parity.py``).
"""

from __future__ import annotations

from collsim.features import FEATURE_NAMES
from collsim.plan import OptionSpace, Policy
from collsim.policies.models.value import OnnxValueModel
from collsim.policies.onnx import SIGNATURES, OnnxSignatureError, check_model
from collsim.policies.optimised import OptimisedAllocation
from collsim.policies.rl import OnnxLogits, RLPolicy

__all__ = ["make_onnx_policy"]


def make_onnx_policy(
    kind: str, data: bytes, options: OptionSpace, source: str, fallbacks: int = 0
) -> Policy:
    """Check a model against its kind and the option space; return its runner.

    Args:
        kind: ``rl_onnx`` or ``value_model``.
        data: the ONNX model bytes.
        options: the option space the model must match.
        source: the model file (for messages).
        fallbacks: ``rl_onnx`` only: next-best options an account whose resource is
            full tries (``RLPolicy(fallbacks=...)``; the graph must output ``logits``).

    Raises:
        OnnxSignatureError: the model does not match the signature, or fallbacks
            without a ``logits`` output.
    """
    if kind not in SIGNATURES:
        raise OnnxSignatureError(f"kind {kind!r} is not an ONNX kind; expected {list(SIGNATURES)}")
    check_model(data, kind, len(FEATURE_NAMES), options.n_options, source)
    if kind == "value_model":
        model = OnnxValueModel(data, threads=2, slot_hours=options.slot_hours)
        return OptimisedAllocation(model, policy_id="value_model")
    logits = OnnxLogits(data, source)
    if fallbacks > 0 and not logits.has_logits:
        raise OnnxSignatureError(f"{source}: fallbacks need a 'logits' output")
    priority = "log_odds" if logits.has_logits or logits.has_score else "exposure"
    return RLPolicy(logits, policy_id="rl_onnx", fallbacks=fallbacks, priority=priority)
