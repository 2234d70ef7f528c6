"""Policy ids resolved on the research side: value models trained on demand, the oracle.

The core registry (:func:`collsim.policies.registry.make_policy`) never trains and does
not know the oracle.  This module is what experiments and the CLI use: for
``greedy`` / ``optimised`` it trains the scenario's value model, or loads it from the
``$COLLSIM_CACHE`` cache (:func:`collsim.research.training.load_or_train`), and hands
it to the core; an ``rl:`` / ``hybrid:`` MaskablePPO ``.zip`` (or an ensemble
``.json`` that may hold them) is loaded with torch (:mod:`collsim.rl.logits`);
``oracle`` is :class:`collsim.research.oracle.OraclePolicy`; every
other id goes to the core unchanged.
"""

from __future__ import annotations

from pathlib import Path

from collsim.config import Scenario
from collsim.plan import Policy
from collsim.policies import registry
from collsim.policies.registry import VALUE_POLICY_IDS
from collsim.research.oracle import OraclePolicy
from collsim.research.training import TrainingSettings, load_or_train
from collsim.rl.logits import load_logit_model

RESEARCH_POLICY_IDS = registry.RESEARCH_ONLY_IDS
"""Ids only this registry builds (``oracle``)."""

TRAINED_POLICY_IDS = VALUE_POLICY_IDS + RESEARCH_POLICY_IDS
"""Ids whose experiment params may carry ``training`` (value-model ids; the oracle
accepts it and ignores it, as before)."""


def make_policy(spec: str, scenario: Scenario, training: TrainingSettings | None = None) -> Policy:
    """Build a policy from its id, training the value model the core needs.

    Args:
        spec: any id of :func:`collsim.policies.registry.make_policy`, or ``oracle``
            (bind it to its Simulation before the first decision).
        scenario: the scenario (selects the champion tree; keys the value model).
        training: how ``greedy`` / ``optimised`` train their value model (default:
            :class:`~collsim.research.training.TrainingSettings`); ignored by the
            other ids.

    Raises:
        ValueError: unknown id (see the core registry).
    """
    if spec in RESEARCH_POLICY_IDS:
        return OraclePolicy()
    if spec in VALUE_POLICY_IDS:
        model = load_or_train(scenario, training or TrainingSettings())
        return registry.make_policy(spec, scenario, value_model=model)
    if spec.startswith(registry.MODEL_PREFIXES) and spec.endswith((".zip", ".json")):
        path = spec.partition(":")[2]
        loaded = load_logit_model(path) if Path(path).exists() else None
        return registry.model_policy(spec, loaded)
    return registry.make_policy(spec, scenario)
