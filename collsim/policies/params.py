"""Typed constructor params of the policies an experiment names (issue 16).

An experiment spec's ``policies[i].params`` (:class:`collsim.evaluation.spec.PolicySpec`)
is validated into the model of its policy kind (:func:`params_model`): unknown keys are
rejected, so a typo is an error naming the policy and the field instead of a silently
ignored setting.  :class:`ValueModelParams` types
``TrainingSettings.model_params`` the same way.

Every model dumps only the fields that were set (:meth:`PolicyParams.kwargs`), so a
spec's hash and its cells' keys are what they were with plain mappings, and the policy
classes keep their own defaults.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from collsim.config import Frozen

__all__ = [
    "AnyPolicyParams",
    "ChampionParams",
    "HybridParams",
    "NoParams",
    "PolicyParams",
    "RLParams",
    "RandomParams",
    "TrainingParams",
    "UnknownPolicyParams",
    "ValueModelParams",
    "ValuePolicyParams",
    "params_model",
]


class SetFieldsOnly(Frozen):
    """Immutable, unknown keys rejected; dumps only the fields that were set."""

    @model_serializer(mode="wrap")
    def _set_fields_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if key in self.model_fields_set}

    def kwargs(self) -> dict[str, Any]:
        """The fields that were set, as keyword arguments (nested models as mappings)."""
        return self.model_dump()


class ValueModelParams(SetFieldsOnly):
    """``ValueModel`` keyword arguments (``TrainingSettings.model_params``); unset: its defaults."""

    max_iter: int = Field(default=150, gt=0, description="boosting rounds of the baseline")
    learning_rate: float = Field(default=0.1, gt=0)
    max_leaf_nodes: int = Field(default=31, gt=1)
    min_samples_leaf: int = Field(default=200, gt=0)
    l2_regularization: float = Field(default=1.0, ge=0)
    uplift_max_iter: int = Field(default=60, gt=0, description="boosting rounds per uplift")
    uplift_learning_rate: float = Field(default=0.05, gt=0)
    uplift_max_leaf_nodes: int = Field(default=8, gt=1)
    min_channel_rows: int = Field(default=2000, ge=0)
    min_legal_rows: int = Field(default=20, ge=0)
    hour_prior: float = Field(default=200.0, ge=0, description="pseudo-attempts")
    n_threads: int | None = Field(default=1, description="OpenMP threads (None: library's)")


class TrainingParams(SetFieldsOnly):
    """How a value model is trained: the fields of ``TrainingSettings`` (unset: its defaults)."""

    seeds: tuple[int, ...] = Field(default=(101, 102, 103), min_length=1)
    n_accounts: int = Field(default=3000, gt=0)
    days: int = Field(default=90, gt=0)
    horizon: int = Field(default=14, gt=0)
    random_share: float = Field(default=0.5, ge=0, le=1)
    contact_rate: float = Field(default=0.5, ge=0, le=1)
    random_state: int = 0
    model_params: ValueModelParams = Field(default_factory=ValueModelParams)
    objective: Literal["portfolio_value", "cash"] = "portfolio_value"


class PolicyParams(SetFieldsOnly):
    """Base of the params of one policy kind."""


class NoParams(PolicyParams):
    """``no_contact``, ``oracle`` and strategy-tree YAML paths take no params."""


class RandomParams(PolicyParams):
    """``random``: :class:`~collsim.policies.baselines.RandomPolicy`."""

    contact_rate: float = Field(default=0.3, ge=0, le=1, description="contact probability")
    chunk: int = Field(default=100_000, gt=0, description="accounts decided at once")


class ChampionParams(PolicyParams):
    """``champion``: :class:`~collsim.policies.champion.TieredChampion`."""

    tree: str = Field(
        default="champion_us",
        min_length=1,
        description="bundled tree name or YAML path (unset: the scenario's champion)",
    )


class ValuePolicyParams(PolicyParams):
    """``greedy`` / ``optimised``: how their value model is trained."""

    training: TrainingParams = Field(default_factory=TrainingParams)


class RLParams(PolicyParams):
    """``rl:PATH``: :class:`~collsim.policies.rl.RLPolicy` (the path comes from the id)."""

    policy_id: str | None = None
    deterministic: bool = True
    fallbacks: int = Field(default=0, ge=0, description="further options tried per account")
    redial_headroom: int | None = None
    priority: Literal["confidence", "log_odds", "value", "exposure"] = "log_odds"


class HybridParams(PolicyParams):
    """``hybrid:PATH``: :class:`~collsim.policies.hybrid.HybridPolicy`."""

    step_size: float = Field(default=0.2, gt=0, description="dual step of the resource prices")
    use_prices: bool = True
    policy_id: str | None = None


class UnknownPolicyParams(PolicyParams):
    """Params of an id no kind matches: kept as given (the id itself is the error)."""

    model_config = ConfigDict(extra="allow")


AnyPolicyParams = (
    NoParams
    | RandomParams
    | ChampionParams
    | ValuePolicyParams
    | RLParams
    | HybridParams
    | UnknownPolicyParams
)
"""The params of any policy kind (the type of ``PolicySpec.params``)."""

_BY_ID: dict[str, type[PolicyParams]] = {
    "no_contact": NoParams,
    "oracle": NoParams,
    "random": RandomParams,
    "champion": ChampionParams,
    "greedy": ValuePolicyParams,
    "optimised": ValuePolicyParams,
}
_BY_PREFIX: dict[str, type[PolicyParams]] = {
    "rl:": RLParams,
    "hybrid:": HybridParams,
    "greedy:": NoParams,
    "optimised:": NoParams,
}


def params_model(policy_id: str) -> type[PolicyParams]:
    """The params model of a policy id (registry id, ``KIND:PATH``, tree YAML)."""
    if policy_id in _BY_ID:
        return _BY_ID[policy_id]
    for prefix, model in _BY_PREFIX.items():
        if policy_id.startswith(prefix):
            return model
    if policy_id.endswith((".yaml", ".yml")):
        return NoParams
    return UnknownPolicyParams
