"""Policy artifacts: a directory a production system loads to decide a day's plan.

Layout (format ``collsim.policy_artifact``, version 1)::

    ARTIFACT_DIR/
      manifest.json        what the artifact is, and the sha256 of every other file
    manifest.json.sha256 the manifest's own sha256 (``sha256sum -c`` format)
      tree.json, tree.yaml           kind "champion": the strategy tree (JSON is loaded,
                                     YAML is the same tree for people to read)
      model.onnx                     kinds "rl_onnx" and "value_model"
      distilled_tree.yaml            optional: a strategy tree distilled from the policy

``manifest.json`` fields: ``format``, ``format_version``, ``artifact_id`` (kind, name
and a digest of the content: the same content always gets the same id),
``kind``, ``name``, ``collsim_version``, ``created_utc``, ``scenario`` and
``scenario_hash`` it was exported from, ``ruleset`` (the scenario's) and
``ruleset_sha256`` (its content digest: plans must use the same rules), ``option_space``
(``operating_hours``), ``cost_per_attempt`` by channel, ``legal_min_dpd`` (the
scenario's litigation floor, added to the rule set when planning), ``feature_names`` (model
kinds: :data:`collsim.features.FEATURE_NAMES`), ``policy`` (kind-specific: file
names, ONNX input/output names), ``files`` (file name → sha256) and, if present,
``distilled`` (file, fidelity, days, seed, max_depth).

Kinds:

* ``champion`` — a :class:`~collsim.policies.champion.StrategyTree` run by
  :class:`~collsim.policies.champion.TieredChampion`;
* ``rl_onnx`` — an ONNX graph ``(obs float32 [N, F], mask bool [N, 1 + K]) → action
  int64 [N]`` (masked argmax inside the graph; action 0 = no contact, ``a`` = option
  ``a − 1``), optionally a second output ``score`` float32 [N] that orders accounts
  for capacity; see :mod:`collsim.policies.onnx` and :mod:`collsim.export.onnx_policies`;
* ``value_model`` — an ONNX graph ``features float32 [N, F] → value float32 [N, K]``
  followed by the exact allocation :func:`collsim.policies.allocation.allocate`.

:func:`load_artifact` verifies the manifest, every checksum and the kind's files
before building the policy; it reads JSON, YAML with the safe loader and ONNX —
never pickle.  Adding a kind is adding a loader to :data:`LOADERS`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import ValidationError

from collsim import __version__
from collsim.config import Scenario
from collsim.export.onnx_policies import make_onnx_policy
from collsim.export.publish import fsync_dir, fsync_file
from collsim.export.reader import sha256_of
from collsim.features import FEATURE_NAMES
from collsim.plan import OptionSpace, Plan, Policy, Snapshot
from collsim.policies.champion import StrategyTree, TieredChampion
from collsim.policies.onnx import SIGNATURES, OnnxSignatureError
from collsim.vocab import CHANNELS, IS_TIMED

FORMAT = "collsim.policy_artifact"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_SUM = "manifest.json.sha256"
"""The manifest's own checksum, in ``sha256sum`` format (``<hex>  manifest.json``)."""
_ID_RE = re.compile(r"^(champion|rl_onnx|value_model):[A-Za-z0-9_.\-]{1,80}:[0-9a-f]{12}$")
_NOT_IN_ID = ("format", "format_version", "artifact_id", "kind", "name", "collsim_version",
              "created_utc", "files")  # fmt: skip
KINDS = ("champion", "rl_onnx", "value_model")
MODEL_FILE = "model.onnx"
DISTILLED_FILE = "distilled_tree.yaml"


class ArtifactError(ValueError):
    """An artifact that is missing, altered or malformed (the message names the file)."""


@dataclass
class ArtifactPolicy:
    """A policy loaded from an artifact; a :class:`collsim.plan.Policy`.

    Attributes:
        policy_id: the artifact id (written in every plan row).
        kind: the artifact kind.
        manifest: the artifact's manifest.
        options: the option space the policy was exported with.
        cost_per_attempt: channel → cost of one attempt (for the money budget).
        inner: the policy that decides.
        path: the artifact directory.
    """

    policy_id: str
    kind: str
    manifest: dict[str, Any]
    options: OptionSpace
    cost_per_attempt: dict[str, float]
    inner: Policy
    path: Path

    def decide(self, snapshot: Snapshot) -> Plan:
        """Return the inner policy's plan, labelled with the artifact id."""
        return dataclasses.replace(self.inner.decide(snapshot), policy_id=self.policy_id)

    def preferred_option(self, snapshot: Snapshot) -> np.ndarray | None:
        """int [N]: each account's first choice before rules and capacity, if known."""
        preferred = getattr(self.inner, "preferred_option", None)
        return None if preferred is None else np.asarray(preferred(snapshot))


class ChampionRunner(TieredChampion):
    """A TieredChampion that also reports each due account's first-choice option."""

    def preferred_option(self, snapshot: Snapshot) -> np.ndarray:
        """int [N]: the first ladder channel at the first operating slot of the account's
        tier, for accounts due today; -1 otherwise."""
        opts = snapshot.options
        lookup = {int(h): i for i, h in enumerate(opts.slot_hours)}
        first = []
        for spec in self.tree.tiers:
            option = -1
            if spec.ladder:
                c = CHANNELS.index(spec.ladder[0])
                slots = [lookup[h] for h in spec.slots if h in lookup] if IS_TIMED[c] else [0]
                option = c * opts.n_slots + slots[0] if slots else -1
            first.append(option)
        tier = self.tier_of(snapshot)
        cadence = np.array([t.cadence_days for t in self.tree.tiers] + [1])[tier]
        last = snapshot.contact.last_contact_day
        due = (tier >= 0) & ((last < 0) | (snapshot.day - last >= cadence))
        table = np.array([*first, -1], dtype=np.int64)
        return np.where(due, table[tier], -1)


# ----------------------------------------------------------------------------- export
def _scenario_fields(scenario: Scenario) -> dict[str, Any]:
    from collsim.compliance import load_ruleset

    return {
        "scenario": scenario.name,
        "scenario_hash": scenario.config_hash(),
        "ruleset": scenario.ruleset,
        "ruleset_sha256": load_ruleset(scenario.ruleset).content_sha256,
        "option_space": {"operating_hours": list(scenario.sim.operating_hours)},
        "cost_per_attempt": {c: scenario.channels[c].cost_per_attempt for c in CHANNELS},
        "legal_min_dpd": scenario.legal.min_dpd,
    }


def manifest_sum_line(manifest_bytes: bytes) -> str:
    """Return the line of ``manifest.json.sha256`` for the manifest's bytes."""
    return f"{hashlib.sha256(manifest_bytes).hexdigest()}  {MANIFEST}\n"


def _artifact_id(kind: str, name: str, files: dict[str, bytes], fields: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    for file_name in sorted(files):
        digest.update(f"{file_name}:{hashlib.sha256(files[file_name]).hexdigest()}\n".encode())
    digest.update(json.dumps(fields, sort_keys=True).encode())
    return f"{kind}:{name}:{digest.hexdigest()[:12]}"


def _replace_dir(temp: Path, out: Path) -> None:
    """Move a finished temporary directory onto ``out`` (an old artifact is replaced)."""
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file()):
            raise ArtifactError(f"{out}: exists and is not a policy artifact; not overwritten")
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        old.rmdir()
        out.rename(old)
        temp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        temp.rename(out)


def write_artifact(
    out: str | Path, kind: str, name: str, files: dict[str, bytes], fields: dict[str, Any]
) -> dict[str, Any]:
    """Write an artifact directory atomically (temporary directory, then rename).

    Args:
        out: the artifact directory (replaced if it holds an artifact).
        kind: one of :data:`KINDS`.
        name: a short name (tree id, model name).
        files: file name → bytes (the policy's files).
        fields: further manifest fields (scenario fields, ``policy``, ``distilled``...).

    Returns:
        The manifest written.
    """
    out = Path(out)
    core = {k: v for k, v in fields.items() if k not in {"created_utc"}}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "artifact_id": _artifact_id(kind, name, files, core),
        "kind": kind,
        "name": name,
        "collsim_version": __version__,
        "created_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **fields,
        "files": {f: hashlib.sha256(data).hexdigest() for f, data in sorted(files.items())},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        for file_name, data in files.items():
            (temp / file_name).write_bytes(data)
        text = json.dumps(manifest, indent=2) + "\n"
        (temp / MANIFEST).write_text(text, encoding="utf-8")
        (temp / MANIFEST_SUM).write_text(manifest_sum_line(text.encode()), encoding="utf-8")
        temp.chmod(0o755)
        for file in temp.iterdir():
            fsync_file(file)
        fsync_dir(temp)
        _replace_dir(temp, out)
        fsync_dir(out.parent)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return manifest


def tree_files(tree: StrategyTree, stem: str = "tree") -> dict[str, bytes]:
    """Return ``{stem}.yaml`` and ``{stem}.json`` of a strategy tree."""
    data = tree.model_dump(mode="json")
    return {
        f"{stem}.yaml": yaml.safe_dump(data, sort_keys=False).encode(),
        f"{stem}.json": (json.dumps(data, indent=2) + "\n").encode(),
    }


def export_tree_artifact(
    tree: StrategyTree,
    out: str | Path,
    scenario: Scenario,
    distilled: tuple[StrategyTree, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Export a strategy tree as a ``champion`` artifact.

    Args:
        tree: the strategy tree.
        out: the artifact directory.
        scenario: gives the option space, channel costs and rule set.
        distilled: optionally (tree, info) of a distilled tree, written as
            ``distilled_tree.yaml`` with ``info`` (fidelity...) in the manifest.

    Returns:
        The manifest written.
    """
    files = tree_files(tree)
    fields = _scenario_fields(scenario)
    fields["policy"] = {"tree_json": "tree.json", "tree_yaml": "tree.yaml"}
    if distilled is not None:
        files[DISTILLED_FILE] = tree_files(distilled[0], "distilled_tree")[DISTILLED_FILE]
        fields["distilled"] = {"file": DISTILLED_FILE, **distilled[1]}
    return write_artifact(out, "champion", tree.id, files, fields)


@dataclass(frozen=True)
class OnnxPolicySettings:
    """The ``policy`` section of an ONNX artifact's manifest.

    Attributes:
        name: the artifact's policy name (default: the model file's stem).
        fallbacks: ``rl_onnx`` only: > 0 (the graph must output ``logits``) records
            ``policy.fallbacks``; the runner then gives an account whose resource is
            full its next-best options (``RLPolicy(fallbacks=...)``, see
            :func:`~collsim.export.onnx_policies.make_onnx_policy`).
    """

    name: str | None = None
    fallbacks: int = 0


DEFAULT_ONNX_POLICY = OnnxPolicySettings()
"""Named after the model file, no fallbacks."""


def export_onnx_artifact(
    model_path: str | Path,
    kind: str,
    out: str | Path,
    scenario: Scenario,
    settings: OnnxPolicySettings = DEFAULT_ONNX_POLICY,
    distilled: tuple[StrategyTree, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Export an ONNX model as an ``rl_onnx`` or ``value_model`` artifact.

    The model's signature is checked against the scenario's option space and
    :data:`~collsim.features.FEATURE_NAMES` before anything is written.

    Args:
        model_path: the ONNX model file.
        kind: ``rl_onnx`` or ``value_model``.
        out: the artifact directory.
        scenario: the scenario (option space, costs, rule set).
        settings: the policy's name and runner settings (:class:`OnnxPolicySettings`).
        distilled: a distilled strategy tree and its fidelity record, written beside.

    Raises:
        ArtifactError: unknown kind, unreadable model or wrong signature.
    """
    if kind not in SIGNATURES:
        raise ArtifactError(
            f"kind {kind!r} is not an ONNX kind; expected one of {list(SIGNATURES)}"
        )
    model_path = Path(model_path)
    try:
        data = model_path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{model_path}: cannot read the model: {exc}") from None
    options = OptionSpace(np.asarray(scenario.sim.operating_hours, dtype=np.int64))
    try:
        make_onnx_policy(kind, data, options, str(model_path), settings.fallbacks)
    except OnnxSignatureError as exc:
        raise ArtifactError(str(exc)) from None
    files = {MODEL_FILE: data}
    fields = _scenario_fields(scenario)
    fields["feature_names"] = list(FEATURE_NAMES)
    fields["policy"] = {"model": MODEL_FILE, **SIGNATURES[kind]}
    if settings.fallbacks:
        fields["policy"]["fallbacks"] = int(settings.fallbacks)
    if distilled is not None:
        files[DISTILLED_FILE] = tree_files(distilled[0], "distilled_tree")[DISTILLED_FILE]
        fields["distilled"] = {"file": DISTILLED_FILE, **distilled[1]}
    return write_artifact(out, kind, settings.name or model_path.stem, files, fields)


# ----------------------------------------------------------------------------- load
def _plain_file(path: Path, name: str) -> Path:
    """``path / name`` if it is a regular file of the folder itself (not a symbolic link)."""
    file = path / name
    if file.is_symlink():
        raise ArtifactError(f"{file}: is a symbolic link; artifact files must be plain files")
    if file.exists() and file.resolve().parent != path.resolve():
        raise ArtifactError(f"{file}: lies outside the artifact folder")
    return file


def _read_manifest(path: Path) -> dict[str, Any]:
    file = _plain_file(path, MANIFEST)
    if not file.is_file():
        raise ArtifactError(f"{path}: not a policy artifact ({MANIFEST} is missing)")
    check = _plain_file(path, MANIFEST_SUM)
    if not check.is_file():
        raise ArtifactError(
            f"{check}: missing; the manifest's own checksum is required (re-export the artifact)"
        )
    try:
        data = file.read_bytes()
        expected = check.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{file}: not readable: {exc}") from None
    if expected != manifest_sum_line(data):
        raise ArtifactError(
            f"{file}: checksum mismatch with {MANIFEST_SUM}; the manifest was altered"
        )
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ArtifactError(f"{file}: not readable JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{file}: format is not {FORMAT!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{file}: format_version {manifest.get('format_version')!r} is not supported"
        )
    if manifest.get("kind") not in LOADERS:
        raise ArtifactError(
            f"{file}: kind {manifest.get('kind')!r} is unknown; expected one of {list(LOADERS)}"
        )
    return manifest


def _verify_files(path: Path, manifest: dict[str, Any]) -> None:
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ArtifactError(f"{path / MANIFEST}: 'files' must list the artifact's files")
    for name, expected in files.items():
        if not isinstance(name, str) or Path(name).name != name or name in {"", ".", ".."}:
            raise ArtifactError(f"{path / MANIFEST}: file name {name!r} is not a plain file name")
        file = _plain_file(path, name)
        if not file.is_file():
            raise ArtifactError(f"{file}: listed in the manifest but missing")
        actual = sha256_of(file)
        if actual != expected:
            raise ArtifactError(
                f"{file}: checksum mismatch: sha256 is {actual}, the manifest says {expected}"
            )


def _options(path: Path, manifest: dict[str, Any]) -> OptionSpace:
    try:
        hours = [int(h) for h in manifest["option_space"]["operating_hours"]]
    except (KeyError, TypeError, ValueError):
        raise ArtifactError(f"{path / MANIFEST}: option_space.operating_hours is invalid") from None
    if not hours or sorted(set(hours)) != hours or not all(0 <= h <= 23 for h in hours):
        raise ArtifactError(f"{path / MANIFEST}: option_space.operating_hours {hours} is invalid")
    return OptionSpace(np.asarray(hours, dtype=np.int64))


def _costs(path: Path, manifest: dict[str, Any]) -> dict[str, float]:
    """cost_per_attempt: every channel, a finite number >= 0."""
    costs = manifest.get("cost_per_attempt")
    if not isinstance(costs, dict):
        raise ArtifactError(f"{path / MANIFEST}: cost_per_attempt is missing")
    out = {}
    for channel in CHANNELS:
        value = costs.get(channel)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ArtifactError(f"{path / MANIFEST}: cost_per_attempt.{channel} is missing")
        if not math.isfinite(value) or not 0 <= value <= 1e9:
            raise ArtifactError(
                f"{path / MANIFEST}: cost_per_attempt.{channel} {value!r} is not a finite "
                "number in 0..1e9"
            )
        out[channel] = float(value)
    return out


def _check_identity(path: Path, manifest: dict[str, Any]) -> str:
    """Recompute the artifact id from the files and fields; return it if the manifest's matches."""
    claimed = manifest.get("artifact_id")
    for key in ("artifact_id", "name", "ruleset", "ruleset_sha256"):
        if not isinstance(manifest.get(key), str) or not manifest[key]:
            raise ArtifactError(f"{path / MANIFEST}: {key} is missing")
    if not _ID_RE.match(str(claimed)):
        raise ArtifactError(f"{path / MANIFEST}: artifact_id {str(claimed)[:100]!r} is malformed")
    files = {name: (path / name).read_bytes() for name in manifest["files"]}
    fields = {k: v for k, v in manifest.items() if k not in _NOT_IN_ID}
    actual = _artifact_id(manifest["kind"], manifest["name"], files, fields)
    if actual != claimed:
        raise ArtifactError(
            f"{path / MANIFEST}: artifact_id {claimed} does not match the content ({actual}); "
            "the artifact was altered"
        )
    return actual


def _listed(path: Path, manifest: dict[str, Any], name: str) -> Path:
    if name not in manifest["files"]:
        raise ArtifactError(f"{path / MANIFEST}: {name} is not listed in 'files'")
    return path / name


def _tree_from(data: Any, source: Path) -> StrategyTree:
    try:
        return StrategyTree.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ArtifactError(f"{source}: invalid strategy tree at {where}: {first['msg']}") from None


def _load_champion(path: Path, manifest: dict[str, Any], options: OptionSpace) -> Policy:
    json_file = _listed(path, manifest, "tree.json")
    tree = _tree_from(json.loads(json_file.read_text(encoding="utf-8")), json_file)
    yaml_file = path / "tree.yaml"
    if yaml_file.exists():
        listed = _listed(path, manifest, "tree.yaml")
        if _tree_from(yaml.safe_load(listed.read_text(encoding="utf-8")), listed) != tree:
            raise ArtifactError(f"{listed}: differs from tree.json")
    return ChampionRunner(tree)


def _load_onnx(kind: str) -> Callable[[Path, dict[str, Any], OptionSpace], Policy]:
    def load(path: Path, manifest: dict[str, Any], options: OptionSpace) -> Policy:
        names = manifest.get("feature_names")
        if names != list(FEATURE_NAMES):
            raise ArtifactError(
                f"{path / MANIFEST}: feature_names differ from this collsim's FEATURE_NAMES; "
                "re-export the model"
            )
        policy = manifest.get("policy", {})
        model = _listed(path, manifest, str(policy.get("model", MODEL_FILE)))
        try:
            return make_onnx_policy(
                kind, model.read_bytes(), options, str(model), int(policy.get("fallbacks", 0))
            )
        except OnnxSignatureError as exc:
            raise ArtifactError(str(exc)) from None

    return load


LOADERS: dict[str, Callable[[Path, dict[str, Any], OptionSpace], Policy]] = {
    "champion": _load_champion,
    "rl_onnx": _load_onnx("rl_onnx"),
    "value_model": _load_onnx("value_model"),
}
"""Artifact kind → loader ``(directory, manifest, option space) -> Policy``."""


def load_artifact(path: str | Path, distilled: bool = False) -> ArtifactPolicy:
    """Load a policy artifact after verifying its manifest and every file's sha256.

    Args:
        path: the artifact directory.
        distilled: load the artifact's distilled strategy tree instead of its policy.

    The manifest must match ``manifest.json.sha256``; no file may be a symbolic link;
    every required field (``artifact_id``, ``name``, ``ruleset``, ``ruleset_sha256``,
    operating hours, a finite ``cost_per_attempt`` per channel) must be there; and the
    ``artifact_id`` recomputed from the files and fields must equal the manifest's.

    Raises:
        ArtifactError: missing or malformed manifest, unknown kind, a file missing
            or altered, a symbolic link, a missing field, an id that does not match the
            content, or an invalid policy file.
    """
    path = Path(path)
    manifest = _read_manifest(path)
    _verify_files(path, manifest)
    options = _options(path, manifest)
    costs = _costs(path, manifest)
    if distilled:
        file = _listed(path, manifest, DISTILLED_FILE)
        inner: Policy = ChampionRunner(
            _tree_from(yaml.safe_load(file.read_text(encoding="utf-8")), file)
        )
    else:
        inner = LOADERS[manifest["kind"]](path, manifest, options)
    artifact_id = _check_identity(path, manifest)
    suffix = ":distilled" if distilled else ""
    return ArtifactPolicy(
        policy_id=f"{artifact_id}{suffix}",
        kind=str(manifest["kind"]),
        manifest=manifest,
        options=options,
        cost_per_attempt=costs,
        inner=inner,
        path=path,
    )


__all__ = [
    "FORMAT",
    "KINDS",
    "LOADERS",
    "ArtifactError",
    "ArtifactPolicy",
    "ChampionRunner",
    "export_onnx_artifact",
    "export_tree_artifact",
    "load_artifact",
    "tree_files",
    "write_artifact",
]
