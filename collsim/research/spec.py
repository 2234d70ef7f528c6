"""Self-contained policy specs: resolved on the client, built on any worker from content alone.

A policy reference (``champion``, a strategy-tree YAML path, ``greedy``, ``optimised``, ...)
is resolved once, on the client, by :func:`resolve_policy` into a :class:`ResolvedPolicy`:
a frozen, picklable object that holds the policy's *content* (the parsed strategy tree,
the value model's ONNX and metadata bytes, the constructor params) rather than a path
or a train-on-demand.  :meth:`ResolvedPolicy.build` turns it into the Policy wherever it
runs (a local process or a Dask worker started in another directory) without reading a
file relative to its cwd and without training.

``greedy:PATH`` / ``optimised:PATH`` ship the bytes of a value model fitted beforehand
(``collsim fit-value-model``): the explicit way.  Plain ``greedy`` / ``optimised`` are
a research convenience: trained (or loaded from the ``$COLLSIM_CACHE`` cache) on the
client while resolving, by
:func:`~collsim.research.training.load_or_train`, with the same settings as before,
so the numbers are unchanged; the model bytes then travel inside the spec.

Not yet content-based: ``rl:PATH`` / ``hybrid:PATH`` still carry their (absolute) path
and are loaded on the worker.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collsim.config import Scenario
from collsim.plan import Policy

if TYPE_CHECKING:
    from collsim.policies.champion import StrategyTree
    from collsim.research.training import TrainingSettings

log = logging.getLogger(__name__)

KINDS = ("builtin", "tree", "value", "path_model")
"""What a :class:`ResolvedPolicy` carries: nothing, a tree, value-model bytes, a path."""


@dataclass(frozen=True)
class ResolvedPolicy:
    """A policy's content, ready to be pickled to a worker.

    Attributes:
        policy_id: the reference it was resolved from (``champion``, ``optimised``, ...).
        kind: one of :data:`KINDS`.
        params: constructor params (already validated by building once on the client).
        tree: the parsed strategy tree (kind ``tree``).
        value_onnx: the value model's ONNX bytes (kind ``value``).
        value_json: the value model's metadata JSON bytes (kind ``value``).
    """

    policy_id: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    tree: StrategyTree | None = None
    value_onnx: bytes | None = field(default=None, repr=False)
    value_json: bytes | None = field(default=None, repr=False)

    def build(self, scenario: Scenario) -> Policy:
        """Build the Policy from this spec's content alone (never reads a relative path).

        Args:
            scenario: the scenario of the cell (used by ``no_contact``/``random``/``oracle``).

        Returns:
            A fresh Policy.
        """
        from collsim.evaluation.spec import build_policy
        from collsim.policies.champion import TieredChampion

        if self.kind == "tree":
            assert self.tree is not None
            return TieredChampion(self.tree)
        if self.kind == "value":
            return self._build_value()
        return build_policy(self.policy_id, self.params, scenario)

    def _build_value(self) -> Policy:
        from collsim.policies import optimised
        from collsim.policies.models.value import OnnxValueModel

        assert self.value_onnx is not None and self.value_json is not None
        folder = Path(tempfile.mkdtemp(prefix="collsim-value-"))
        path = folder / "value.onnx"
        path.write_bytes(self.value_onnx)
        path.with_suffix(".json").write_bytes(self.value_json)
        model = OnnxValueModel(path)
        if self.policy_id.partition(":")[0] == "greedy":
            return optimised.GreedyScore(model)
        return optimised.OptimisedAllocation(model)


def resolve_policy(
    policy_id: str, params: dict[str, Any], scenario: Scenario, base_dir: Path | None = None
) -> ResolvedPolicy:
    """Resolve a policy reference on the client into a self-contained spec.

    Args:
        policy_id: a registry id (see :func:`collsim.research.registry.make_policy`) or a
            strategy-tree YAML path (relative paths are taken against ``base_dir``).
        params: the experiment's constructor params for it.
        scenario: the scenario (selects the champion tree; keys the value model).
        base_dir: the experiment file's folder (default: the current directory).

    Returns:
        The resolved spec.

    Raises:
        ValueError: unknown id, missing file or params the policy does not accept.
    """
    from collsim.evaluation.spec import _training_settings, build_policy
    from collsim.policies.champion import load_tree
    from collsim.policies.registry import MODEL_PREFIXES, VALUE_MODEL_PREFIXES

    base = base_dir or Path.cwd()
    if policy_id in ("greedy", "optimised"):
        kwargs = dict(params)
        settings = _training_settings(kwargs.pop("training")) if "training" in kwargs else None
        if kwargs:
            raise ValueError(f"policy {policy_id!r} does not accept params {sorted(kwargs)}")
        return _resolve_value(policy_id, dict(params), scenario, settings)
    if policy_id.startswith(VALUE_MODEL_PREFIXES):
        return _resolve_value_file(policy_id, dict(params), scenario, base)
    if policy_id == "champion" and set(params) <= {"tree"}:
        tree_ref = params.get("tree", scenario.champion)
        if isinstance(tree_ref, str) and tree_ref.endswith((".yaml", ".yml")):
            tree_ref = _absolute(tree_ref, base)
        return ResolvedPolicy(policy_id, "tree", dict(params), tree=load_tree(tree_ref))
    if policy_id.endswith((".yaml", ".yml")) and not policy_id.startswith(MODEL_PREFIXES):
        path = Path(_absolute(policy_id, base))
        if not path.exists():
            raise ValueError(f"{policy_id}: strategy tree file not found")
        if params:
            raise ValueError(f"tree policy {policy_id!r} takes no params, got {sorted(params)}")
        return ResolvedPolicy(policy_id, "tree", {}, tree=load_tree(path))
    if policy_id.startswith(MODEL_PREFIXES):
        kind, _, target = policy_id.partition(":")
        policy_id = f"{kind}:{_absolute(target, base)}"
        build_policy(policy_id, params, scenario)  # validate once
        return ResolvedPolicy(policy_id, "path_model", dict(params))
    build_policy(policy_id, params, scenario)  # cheap built-ins: validate once
    return ResolvedPolicy(policy_id, "builtin", dict(params))


def _absolute(ref: str, base: Path) -> str:
    path = Path(ref)
    if path.is_absolute():
        return ref
    candidate = base / path
    return str(candidate.resolve()) if candidate.exists() else ref


def _resolve_value(
    policy_id: str,
    params: dict[str, Any],
    scenario: Scenario,
    settings: TrainingSettings | None,
) -> ResolvedPolicy:
    """Train (or load from the cache) the scenario's value model on the client; ship bytes."""
    from collsim.research.training import load_or_train

    log.info("policy %s: training / loading its value model on the client", policy_id)
    model = load_or_train(scenario) if settings is None else load_or_train(scenario, settings)
    path = Path(model.path)
    return ResolvedPolicy(
        policy_id,
        "value",
        params,
        value_onnx=path.read_bytes(),
        value_json=path.with_suffix(".json").read_bytes(),
    )


def _resolve_value_file(
    policy_id: str, params: dict[str, Any], scenario: Scenario, base: Path
) -> ResolvedPolicy:
    """``greedy:PATH`` / ``optimised:PATH``: read the fitted model's bytes on the client."""
    from collsim.policies.registry import make_policy

    kind, _, target = policy_id.partition(":")
    path = Path(_absolute(target, base))
    if params:
        raise ValueError(f"policy {policy_id!r} takes no params, got {sorted(params)}")
    make_policy(f"{kind}:{path}", scenario)  # validates the file once
    return ResolvedPolicy(
        policy_id,
        "value",
        {},
        value_onnx=path.read_bytes(),
        value_json=path.with_suffix(".json").read_bytes(),
    )
