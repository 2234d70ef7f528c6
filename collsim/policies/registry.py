"""Policy ids on the command line and in experiment specs → Policy objects."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from collsim.config import Scenario
from collsim.plan import Policy
from collsim.policies.baselines import NoContact, RandomPolicy
from collsim.policies.champion import TieredChampion

if TYPE_CHECKING:
    from collsim.policies.optimised import ValueFunction

POLICY_IDS = ("no_contact", "random", "champion")
"""Built-in policy ids (a strategy-tree YAML path is accepted too)."""

VALUE_POLICY_IDS = ("greedy", "optimised")
"""Model-based ids: score-order filling / exact allocation over a given value model.

The core never trains: pass the model (``value_model=``, e.g. an
:class:`~collsim.policies.models.value.OnnxValueModel` of a file written by
``collsim fit-value-model``).  The research side's
:func:`collsim.research.registry.make_policy` trains (or loads from the cache) the
scenario's model for these ids and also knows the research-only ``oracle``."""

VALUE_MODEL_PREFIXES = ("greedy:", "optimised:")
"""``greedy:PATH`` / ``optimised:PATH``: over the value model file PATH (an ``.onnx``
written by ``collsim fit-value-model``, its ``.json`` sidecar beside it)."""

RESEARCH_ONLY_IDS = ("oracle",)
"""Ids resolved only on the research side (:mod:`collsim.research.registry`)."""

MODEL_PREFIXES = ("rl:", "hybrid:")
"""Prefixes of policy ids that load a trained model: ``rl:PATH``, ``hybrid:PATH``."""


def model_policy(spec: str, model: object | None = None) -> Policy:
    """``rl:PATH`` → RLPolicy, ``hybrid:PATH`` → HybridPolicy.

    Args:
        spec: ``rl:PATH`` or ``hybrid:PATH`` (an exported ``.onnx``, an ``rl_onnx``
            artifact directory or an ensemble ``.json`` of them).
        model: the model already loaded from PATH (a LogitModel); the research
            registry passes one for a MaskablePPO ``.zip``, which needs torch.

    Raises:
        ValueError: PATH does not exist, or is a ``.zip`` and no model was given.
    """
    kind, _, target = spec.partition(":")
    path = Path(target)
    if not target or not path.exists():
        raise ValueError(f"{spec}: model {target!r} not found (a .zip, .onnx or artifact dir)")
    loaded: object = path if model is None else model
    if kind == "rl":
        from collsim.policies.rl import RLPolicy

        return RLPolicy(loaded, policy_id=f"rl:{path.name}")
    from collsim.policies.hybrid import HybridPolicy

    return HybridPolicy(loaded, policy_id=f"hybrid:{path.name}")


def _value_policy(spec: str, value_model: ValueFunction | None) -> Policy:
    """``greedy`` / ``optimised`` over the given value model (never trained here)."""
    from collsim.policies import optimised

    if value_model is None:
        raise ValueError(
            f"policy {spec!r} needs a value model: pass value_model= (e.g. "
            "OnnxValueModel('value.onnx') of a file written by `collsim fit-value-model`), "
            "or build it with collsim.research.registry.make_policy, which trains one"
        )
    if spec == "greedy":
        return optimised.GreedyScore(value_model)
    return optimised.OptimisedAllocation(value_model)


def _value_model_file(spec: str) -> tuple[str, ValueFunction]:
    """``greedy:PATH`` / ``optimised:PATH`` → (id, the ONNX value model at PATH)."""
    from collsim.policies.models.value import OnnxValueModel

    kind, _, target = spec.partition(":")
    path = Path(target)
    if path.suffix != ".onnx" or not path.is_file() or not path.with_suffix(".json").is_file():
        raise ValueError(
            f"{spec}: expected a value model .onnx with its .json sidecar beside it "
            "(written by `collsim fit-value-model`)"
        )
    return kind, OnnxValueModel(path)


def make_policy(spec: str, scenario: Scenario, value_model: ValueFunction | None = None) -> Policy:
    """Build a policy from its command-line id (the core never trains a model).

    Args:
        spec: ``no_contact``, ``random``, ``champion`` (the scenario's tree),
            ``greedy``, ``optimised`` (see ``VALUE_POLICY_IDS``; they need
            ``value_model``), ``greedy:PATH`` / ``optimised:PATH`` (over the value
            model file PATH written by ``collsim fit-value-model``), ``rl:PATH`` /
            ``hybrid:PATH`` (a trained model: its ``.onnx`` export, an ``rl_onnx``
            artifact directory or an ensemble ``.json``; a MaskablePPO ``.zip`` only
            through the research registry), or a path to a strategy-tree YAML.
        scenario: the scenario (selects the champion tree).
        value_model: the model ``greedy`` / ``optimised`` allocate over (anything with
            ``predict_value(snapshot)``); ignored by the other ids.

    Raises:
        ValueError: unknown or research-only id, or a value id without a model; the
            message says what to do.
    """
    if spec == "no_contact":
        return NoContact()
    if spec == "random":
        return RandomPolicy()
    if spec == "champion":
        return TieredChampion(scenario.champion)
    if spec in VALUE_POLICY_IDS:
        return _value_policy(spec, value_model)
    if spec.startswith(VALUE_MODEL_PREFIXES):
        return _value_policy(*_value_model_file(spec))
    if spec in RESEARCH_ONLY_IDS:
        raise ValueError(
            f"policy {spec!r} is research-only (it reads the simulator's latent state): "
            "build it with collsim.research.registry.make_policy"
        )
    if spec.startswith(MODEL_PREFIXES):
        return model_policy(spec)
    path = Path(spec)
    if path.suffix in {".yaml", ".yml"}:
        if not path.exists():
            raise ValueError(f"{path}: strategy tree file not found")
        return TieredChampion(path)
    known = POLICY_IDS + VALUE_POLICY_IDS + RESEARCH_ONLY_IDS
    raise ValueError(
        f"unknown policy {spec!r}; expected one of {', '.join(known)}, "
        "rl:PATH, hybrid:PATH or a tree YAML path"
    )
