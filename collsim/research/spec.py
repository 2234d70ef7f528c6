"""Self-contained policy specs: resolved on the client, built on any worker from content alone.

A policy reference (``champion``, a strategy-tree YAML path, ``greedy``, ``optimised``,
``optimised:PATH``, ``rl:PATH``, ...) is resolved once, on the client, by
:func:`resolve_policy` into a :class:`ResolvedPolicy`: a frozen, picklable object that
holds the policy's *content* (the parsed strategy tree, the bytes of every model file,
the constructor params) rather than a path or a train-on-demand.
:meth:`ResolvedPolicy.build` turns it into the Policy wherever it runs (a local process
or a Dask worker started in another directory): model files are written, once per
content, into a private folder under the system temporary directory and loaded from
there, so nothing is read relative to the worker's cwd and nothing is trained.

``greedy:PATH`` / ``optimised:PATH`` ship a value model fitted beforehand
(``collsim fit-value-model``): the explicit way.  Plain ``greedy`` / ``optimised`` are
a research convenience: trained (or loaded from the ``$COLLSIM_CACHE`` cache) on the
client while resolving, by :func:`~collsim.research.training.load_or_train`, with the
same settings as before, so the numbers are unchanged; the model's files then travel
inside the spec like any other.  ``rl:PATH`` / ``hybrid:PATH`` ship the model file, the
artifact folder's files, or an ensemble ``.json`` with its members.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
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

KINDS = ("builtin", "tree", "files")
"""What a :class:`ResolvedPolicy` carries: nothing, a tree, model files."""


@dataclass(frozen=True)
class ResolvedPolicy:
    """A policy's content, ready to be pickled to a worker.

    Attributes:
        policy_id: the reference it was resolved from (``champion``, ``optimised``, ...).
        kind: one of :data:`KINDS`.
        params: constructor params (already validated by building once on the client).
        tree: the parsed strategy tree (kind ``tree``).
        files: model files by their path inside a fresh folder (kind ``files``).
        model_ref: ``KIND:NAME``, the policy id to build once ``files`` are written
            (NAME relative to their folder; kind ``files``).
    """

    policy_id: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    tree: StrategyTree | None = None
    files: dict[str, bytes] = field(default_factory=dict, repr=False)
    model_ref: str = ""

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
        if self.kind == "files":
            kind, _, name = self.model_ref.partition(":")
            folder = _materialise(self.files)
            return build_policy(f"{kind}:{folder / name}", self.params, scenario)
        return build_policy(self.policy_id, self.params, scenario)


def _materialise(files: dict[str, bytes]) -> Path:
    """Write ``files`` into a folder named by their content (once per process and machine)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    folder = Path(tempfile.gettempdir()) / f"collsim-model-{digest.hexdigest()[:24]}"
    if folder.is_dir():
        return folder
    staging = Path(tempfile.mkdtemp(prefix="collsim-model-"))
    for name, data in files.items():
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    try:
        staging.rename(folder)
    except OSError:  # another process wrote the same content first
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def model_files(path: Path) -> tuple[dict[str, bytes], str]:
    """Read a model reference's files: (files by relative path, the reference's name).

    A file is itself; an artifact folder is its plain files; an ensemble ``.json`` is
    the file, rewritten to name its members ``m<i>/<name>``, and each member's files.
    A value model ``.onnx`` takes its ``.json`` sidecar along.
    """
    if path.is_dir():
        inner = {f"{path.name}/{f.name}": f.read_bytes() for f in sorted(path.iterdir())}
        return inner, path.name
    if path.suffix == ".json" and _is_ensemble(path):
        return _ensemble_files(path), path.name
    files = {path.name: path.read_bytes()}
    sidecar = path.with_suffix(".json")
    if path.suffix == ".onnx" and sidecar.is_file():
        files[sidecar.name] = sidecar.read_bytes()
    return files, path.name


def _is_ensemble(path: Path) -> bool:
    from collsim.policies.rl import ENSEMBLE_KIND

    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(spec, dict) and spec.get("kind") == ENSEMBLE_KIND


def _ensemble_files(path: Path) -> dict[str, bytes]:
    spec = json.loads(path.read_text())
    files: dict[str, bytes] = {}
    members = []
    for i, entry in enumerate(spec.get("members", [])):
        member = path.parent / str(entry["path"] if isinstance(entry, dict) else entry)
        inner, name = model_files(member)
        files.update({f"m{i}/{key}": data for key, data in inner.items()})
        moved = f"m{i}/{name}"
        members.append({**entry, "path": moved} if isinstance(entry, dict) else moved)
    files[path.name] = json.dumps({**spec, "members": members}, indent=1).encode()
    return files


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
    from collsim.evaluation.spec import _training_settings, build_policy, resolve_spec_path
    from collsim.policies.champion import load_tree
    from collsim.policies.registry import MODEL_PREFIXES, VALUE_MODEL_PREFIXES

    base = base_dir or Path.cwd()
    if policy_id in ("greedy", "optimised"):
        kwargs = dict(params)
        settings = _training_settings(kwargs.pop("training")) if "training" in kwargs else None
        if kwargs:
            raise ValueError(f"policy {policy_id!r} does not accept params {sorted(kwargs)}")
        return _resolve_value(policy_id, scenario, settings)
    if policy_id.startswith(VALUE_MODEL_PREFIXES):
        return _resolve_value_file(policy_id, resolve_spec_path(policy_id, base), params, scenario)
    if policy_id == "champion" and set(params) <= {"tree"}:
        tree_ref = params.get("tree", scenario.champion)
        tree = load_tree(resolve_spec_path(tree_ref, base))
        return ResolvedPolicy(policy_id, "tree", dict(params), tree=tree)
    if policy_id.endswith((".yaml", ".yml")) and not policy_id.startswith(MODEL_PREFIXES):
        path = Path(resolve_spec_path(policy_id, base))
        if not path.exists():
            raise ValueError(f"{policy_id}: strategy tree file not found")
        if params:
            raise ValueError(f"tree policy {policy_id!r} takes no params, got {sorted(params)}")
        return ResolvedPolicy(policy_id, "tree", {}, tree=load_tree(path))
    if policy_id.startswith(MODEL_PREFIXES):
        located = resolve_spec_path(policy_id, base)
        build_policy(located, params, scenario)  # validate once
        kind, _, target = located.partition(":")
        return _files_spec(policy_id, kind, Path(target), dict(params))
    build_policy(policy_id, params, scenario)  # cheap built-ins: validate once
    return ResolvedPolicy(policy_id, "builtin", dict(params))


def _files_spec(policy_id: str, kind: str, path: Path, params: dict[str, Any]) -> ResolvedPolicy:
    files, name = model_files(path)
    return ResolvedPolicy(policy_id, "files", params, files=files, model_ref=f"{kind}:{name}")


def _resolve_value(
    policy_id: str, scenario: Scenario, settings: TrainingSettings | None
) -> ResolvedPolicy:
    """Train (or load from the cache) the scenario's value model on the client; ship files."""
    from collsim.research.training import load_or_train

    log.info("policy %s: training / loading its value model on the client", policy_id)
    model = load_or_train(scenario) if settings is None else load_or_train(scenario, settings)
    return _files_spec(policy_id, policy_id, Path(model.path), {})


def _resolve_value_file(
    policy_id: str, located: str, params: dict[str, Any], scenario: Scenario
) -> ResolvedPolicy:
    """``greedy:PATH`` / ``optimised:PATH`` (PATH ``located``): read the model's files."""
    from collsim.policies.registry import make_policy

    if params:
        raise ValueError(f"policy {policy_id!r} takes no params, got {sorted(params)}")
    make_policy(located, scenario)  # validates the file once
    kind, _, target = located.partition(":")
    return _files_spec(policy_id, kind, Path(target), {})
