"""Policy ids on the command line and in experiment specs → Policy objects."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from collsim.config import Scenario
from collsim.plan import Policy
from collsim.policies.baselines import NoContact, RandomPolicy
from collsim.policies.champion import TieredChampion

if TYPE_CHECKING:
    from collsim.policies.models.training import TrainingSettings

POLICY_IDS = ("no_contact", "random", "champion")
"""Built-in policy ids (a strategy-tree YAML path is accepted too)."""

VALUE_POLICY_IDS = ("greedy", "optimised", "oracle")
"""Model-based ids: ``greedy`` / ``optimised`` train (or load from the cache) a value
model for the scenario; ``oracle`` reads the simulator's truth (research only; it must
be bound to its Simulation, see :class:`collsim.policies.optimised.OraclePolicy`)."""

MODEL_PREFIXES = ("rl:", "hybrid:")
"""Prefixes of policy ids that load a trained model: ``rl:PATH``, ``hybrid:PATH``."""


def _model_policy(spec: str) -> Policy:
    """``rl:PATH`` → RLPolicy, ``hybrid:PATH`` → HybridPolicy (torch only for a ``.zip``)."""
    kind, _, target = spec.partition(":")
    path = Path(target)
    if not target or not path.exists():
        raise ValueError(f"{spec}: model {target!r} not found (a .zip, .onnx or artifact dir)")
    model: object = path
    if path.suffix in {".zip", ".json"}:  # a MaskablePPO .zip (or ensemble of them): torch
        from collsim.rl.logits import load_logit_model

        model = load_logit_model(path)
    if kind == "rl":
        from collsim.policies.rl import RLPolicy

        return RLPolicy(model, policy_id=f"rl:{path.name}")
    from collsim.policies.hybrid import HybridPolicy

    return HybridPolicy(model, policy_id=f"hybrid:{path.name}")


def _value_policy(
    spec: str, scenario: Scenario, training: TrainingSettings | None = None
) -> Policy:
    """``greedy`` / ``optimised`` over the scenario's cached value model; ``oracle``."""
    from collsim.policies import optimised

    if spec == "oracle":
        return optimised.OraclePolicy()
    from collsim.policies.models.training import load_or_train

    model = load_or_train(scenario) if training is None else load_or_train(scenario, training)
    if spec == "greedy":
        return optimised.GreedyScore(model)
    return optimised.OptimisedAllocation(model)


def make_policy(spec: str, scenario: Scenario, training: TrainingSettings | None = None) -> Policy:
    """Build a policy from its command-line id.

    Args:
        spec: ``no_contact``, ``random``, ``champion`` (the scenario's tree),
            ``greedy``, ``optimised``, ``oracle`` (see ``VALUE_POLICY_IDS``),
            ``rl:PATH`` / ``hybrid:PATH`` (a trained model: MaskablePPO ``.zip``, its
            ``.onnx`` export or an ``rl_onnx`` artifact directory), or a path to a
            strategy-tree YAML.
        scenario: the scenario (selects the champion tree).
        training: how ``greedy`` / ``optimised`` train their value model (default:
            :class:`~collsim.policies.models.training.TrainingSettings`); ignored by
            the other ids.

    Raises:
        ValueError: unknown id; the message lists the known ones.
    """
    if spec == "no_contact":
        return NoContact()
    if spec == "random":
        return RandomPolicy()
    if spec == "champion":
        return TieredChampion(scenario.champion)
    if spec in VALUE_POLICY_IDS:
        return _value_policy(spec, scenario, training)
    if spec.startswith(MODEL_PREFIXES):
        return _model_policy(spec)
    path = Path(spec)
    if path.suffix in {".yaml", ".yml"}:
        if not path.exists():
            raise ValueError(f"{path}: strategy tree file not found")
        return TieredChampion(path)
    raise ValueError(
        f"unknown policy {spec!r}; expected one of {', '.join(POLICY_IDS + VALUE_POLICY_IDS)}, "
        "rl:PATH, hybrid:PATH or a tree YAML path"
    )
