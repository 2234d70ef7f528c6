"""RL policies: a trained MaskablePPO (or its ONNX export) deciding a whole Snapshot.

Batched forward passes, ``BLOCK`` accounts at a time (a block's logits stay in
cache; no [N, 1 + K] table at 1M accounts): the observation of every account is
:func:`collsim.features.observable_features` (the env's observation), the action
mask is ``[True | snapshot.option_mask()]`` (column 0 = no contact, always
allowed; the same mask the env gave the agent in training).  The network's logits
are masked (``-1e8`` where not allowed, as in sb3-contrib and in the exported
graph) and the action is their argmax, so a forbidden option is never chosen.

**Capacity.**  The agent was trained per account and does not see the day's
capacity.  :class:`RLPolicy` fits the chosen actions to capacity with
:func:`collsim.policies.base.fill_capacity`: accounts compete for each resource
(agent pool-hour, channel budget) in order of the log-odds of its chosen action
over no contact (the accounts the agent most wants to contact are served first;
ties by account index; ``priority`` selects other orders); an account whose
resource is full gets no contact (reason "rl: capacity full").  With
``fallbacks = L > 0`` an account that does not fit tries its next ``L`` options in
order of probability, among those the policy prefers to no contact.
:class:`collsim.policies.hybrid.HybridPolicy` instead allocates exactly.

**Treatments as actions.**  A model trained with treatments (``AccountBatch-v0``
with ``treatments=True``) carries its :class:`~collsim.policies.action_layout.ActionLayout`
as JSON (``action_layout``; in an ONNX graph the metadata
:data:`~collsim.policies.onnx.LAYOUT_KEY`): action ``a >= 1`` is (option, offer,
variant), masked by the option mask, the scenario's treatment support at the account's
DPD and the rule set's treatment rules (the env's mask, the same function).  The
plan's offer and variant are then the chosen action's; fallbacks are the next-best
*options* (each with its best treatment), since capacity is per option.  A model
without a layout has the plain layout (``a = 1 + option``, no treatment).

**Models.**  A model is a :class:`LogitModel`: an ``rl_onnx`` graph (an ``.onnx``
file exported by :func:`collsim.rl.export.export_onnx`, or an ``rl_onnx`` artifact
directory, whose manifest and model checksums are verified first), an ensemble file
(``.json``, :class:`EnsembleLogits`: several models, their masked action
probabilities averaged), or any object with ``logits`` and ``n_actions``.  This
module needs only onnxruntime: a MaskablePPO ``.zip`` (torch, stable-baselines3) is
loaded on the research side by :func:`collsim.rl.logits.load_logit_model`.  The
production runner of an ``rl_onnx`` artifact is this class too
(:func:`collsim.export.onnx_policies.make_onnx_policy`), so a plan made from files
is the plan the simulation's policy makes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from collsim.config import Scenario
from collsim.features import FEATURE_NAMES, observable_features
from collsim.plan import OptionSpace, Plan, Snapshot
from collsim.policies.action_layout import ActionLayout
from collsim.policies.base import fill_capacity, redial_crowded
from collsim.policies.onnx import artifact_model, layout_text, output_names
from collsim.policies.onnx import session as onnx_session
from collsim.vocab import CHANNELS, Channel

MASKED_LOGIT = -1e8
"""Logit of a masked action (as sb3-contrib's MaskableCategorical and the ONNX graph)."""

PRIORITIES = ("confidence", "log_odds", "value", "exposure")
"""How :class:`RLPolicy` orders accounts competing for a resource."""

CHUNK = 65_536
"""Rows per forward pass (bounds memory at 1M accounts)."""

BLOCK = 16_384
"""Rows :meth:`RLPolicy.choose` decides at a time (their logits stay in cache)."""

__all__ = [
    "BLOCK",
    "CHUNK",
    "ENSEMBLE_KIND",
    "MASKED_LOGIT",
    "EnsembleLogits",
    "LogitModel",
    "OnnxLogits",
    "PRIORITIES",
    "RLPolicy",
    "ZipLoader",
    "Choice",
    "candidate_table",
    "chosen_probability",
    "load_logit_model",
    "model_name",
    "masked_softmax",
    "snapshot_inputs",
]


class LogitModel(Protocol):
    """Anything that maps (obs float32 [N, F], mask bool [N, A]) to masked logits [N, A].

    A model whose actions are not the plain ``1 + K`` options also has an
    ``action_layout`` attribute (the layout's JSON, see
    :class:`~collsim.policies.action_layout.ActionLayout`).
    """

    n_actions: int

    def logits(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Return float32 [N, A] logits with ``MASKED_LOGIT`` where ``mask`` is False."""
        ...


ZipLoader = Callable[[Path], LogitModel]
"""Loads a MaskablePPO ``.zip`` (research side: :func:`collsim.rl.logits.load_logit_model`)."""


class OnnxLogits:
    """Masked logits of an ``rl_onnx`` graph (onnxruntime only).

    A graph with a ``logits`` output (as :func:`collsim.rl.export.export_onnx` writes)
    gives its masked logits.  A graph with only ``action`` (and optionally ``score``)
    gives the logits of that decision: 0 for no contact, ``MASKED_LOGIT`` for every
    option but the action, and for the action its log-odds over no contact, which is
    ``score`` (the exporter's definition); if some contacted account's ``score`` is not
    positive, every contacted account's score is shifted by one constant so that the
    smallest is 1 (same order); without ``score`` every contact has log-odds 1.  An
    action the mask forbids (or outside the option range) becomes no contact.

    Args:
        data: the ONNX model bytes.
        source: file name for messages.
        threads: onnxruntime intra-op threads (the same logits with any number).

    Attributes:
        name: the model file name (for policy ids).
        action_layout: the graph's action layout JSON (None: plain).
        has_logits: the graph outputs ``logits``.
        has_score: the graph outputs ``score``.
    """

    def __init__(self, data: bytes, source: str = "model.onnx", threads: int = 1) -> None:
        self.session = onnx_session(data, source, threads)
        outputs = output_names(self.session)
        if "logits" not in outputs and "action" not in outputs:
            raise ValueError(
                f"{source}: the ONNX graph has neither 'logits' nor 'action' outputs "
                f"(found {sorted(outputs)}); export it with collsim.rl.export.export_onnx"
            )
        self.has_logits = "logits" in outputs
        self.has_score = "score" in outputs
        self.name = Path(source).name
        self.action_layout = layout_text(self.session)
        width = self.session.get_inputs()[1].shape[1]
        self.n_actions = int(width) if isinstance(width, int) else -1

    def logits(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Return masked logits [N, A] (see the class doc for graphs without ``logits``)."""
        if not self.has_logits:
            return self._decision_logits(obs, mask)
        out = np.empty(mask.shape, dtype=np.float32)
        for s in range(0, obs.shape[0], CHUNK):
            rows = slice(s, s + CHUNK)
            out[rows] = self.session.run(["logits"], {"obs": obs[rows], "mask": mask[rows]})[0]
        np.copyto(out, np.float32(MASKED_LOGIT), where=~mask)
        return out

    def _decision_logits(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Logits of the graph's ``action`` (and ``score``) output."""
        n = obs.shape[0]
        names = ["action", "score"] if self.has_score else ["action"]
        action = np.zeros(n, dtype=np.int64)
        odds = np.ones(n, dtype=np.float32)
        for s in range(0, n, CHUNK):
            out = self.session.run(names, {"obs": obs[s : s + CHUNK], "mask": mask[s : s + CHUNK]})
            action[s : s + CHUNK] = np.asarray(out[0]).reshape(-1)
            if self.has_score:
                odds[s : s + CHUNK] = np.asarray(out[1], dtype=np.float32).reshape(-1)
        rows = np.arange(n)
        inside = (action >= 1) & (action < mask.shape[1])
        contact = inside & mask[rows, np.where(inside, action, 0)]
        if contact.any() and odds[contact].min() <= 0:
            odds = odds - odds[contact].min() + np.float32(1.0)
        logits = np.full(mask.shape, np.float32(MASKED_LOGIT), dtype=np.float32)
        logits[:, 0] = 0.0
        logits[rows[contact], action[contact]] = odds[contact]
        return logits


ENSEMBLE_KIND = "rl_ensemble"
"""``kind`` of an ensemble file (see :class:`EnsembleLogits`)."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class EnsembleLogits:
    """Several policies as one: the mean of their masked action probabilities.

    ``logits = log(mean_m softmax(masked logits_m))`` where allowed (``MASKED_LOGIT``
    elsewhere), so the argmax is the action the members give the most probability on
    average, and log-odds between actions are those of the averaged distribution.
    Every member decides the whole batch in one forward pass per chunk.

    An ensemble file is JSON::

        {"kind": "rl_ensemble", "combine": "mean_probability",
         "members": [{"path": "s0/checkpoints/step_000360448.zip", "sha256": "..."}, ...]}

    with member paths relative to the file (any model :func:`load_logit_model` loads,
    ``.zip`` or ``.onnx``); each member's sha256, if given, is checked on load.

    Args:
        members: the member models.

    Raises:
        ValueError: no members, or members with different action counts.
    """

    def __init__(self, members: list[LogitModel]) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        widths = {m.n_actions for m in members if m.n_actions >= 0}
        if len(widths) > 1:
            raise ValueError(f"ensemble members disagree on the number of actions: {widths}")
        layouts = {getattr(m, "action_layout", None) for m in members}
        if len(layouts) > 1:
            raise ValueError("ensemble members have different action layouts")
        self.members = members
        self.action_layout = layouts.pop()
        self.n_actions = widths.pop() if widths else -1
        self.name = "model"

    @classmethod
    def from_file(cls, path: str | Path, zip_loader: ZipLoader | None = None) -> EnsembleLogits:
        """Load an ensemble file (checks ``kind`` and every member's sha256).

        Args:
            path: the ``.json`` file.
            zip_loader: loads MaskablePPO ``.zip`` members (see :func:`load_logit_model`).

        Raises:
            ValueError: not an ensemble file, a missing member or a checksum mismatch.
        """
        path = Path(path)
        try:
            spec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a readable ensemble file ({exc})") from exc
        if not isinstance(spec, dict) or spec.get("kind") != ENSEMBLE_KIND:
            raise ValueError(f"{path}: expected kind {ENSEMBLE_KIND!r}")
        if spec.get("combine", "mean_probability") != "mean_probability":
            raise ValueError(f"{path}: unknown combine {spec.get('combine')!r}")
        members: list[LogitModel] = []
        for entry in spec.get("members", []):
            member = path.parent / str(entry["path"] if isinstance(entry, dict) else entry)
            if not member.exists():
                raise ValueError(f"{path}: member {member} not found")
            expected = entry.get("sha256") if isinstance(entry, dict) else None
            if expected and member.is_file() and _sha256(member) != expected:
                raise ValueError(f"{path}: member {member} does not match its sha256")
            members.append(load_logit_model(member, zip_loader))
        ensemble = cls(members)
        ensemble.name = path.name
        return ensemble

    @staticmethod
    def write(path: str | Path, members: Sequence[str | Path], **extra: Any) -> Path:
        """Write an ensemble file listing ``members`` (paths relative to it, with sha256).

        Args:
            path: the ``.json`` to write.
            members: member model files.
            extra: further JSON fields recorded as they are (e.g. how they were selected).
        """
        from collsim.io import atomic_write_text

        path = Path(path)
        base = path.parent.resolve()
        entries = []
        for m in members:
            member = Path(m).resolve()
            relative = os.path.relpath(member, base)  # may climb out with ".."
            entries.append({"path": Path(relative).as_posix(), "sha256": _sha256(member)})
        spec = {"kind": ENSEMBLE_KIND, "combine": "mean_probability", "members": entries, **extra}
        atomic_write_text(path, json.dumps(spec, indent=2) + "\n")
        return path

    def logits(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Return log of the members' mean masked probabilities [N, A] (masked: MASKED_LOGIT)."""
        total = np.zeros(mask.shape, dtype=np.float64)
        for member in self.members:
            total += masked_softmax(member.logits(obs, mask))
        mean = total / len(self.members)
        with np.errstate(divide="ignore"):
            out = np.log(mean)
        # masked or underflowed entries: never chosen, never preferred to no contact
        return np.where(mask & (mean > 0), out, MASKED_LOGIT).astype(np.float32)

    def values(self, obs: np.ndarray) -> np.ndarray:
        """Return the mean over members of their critic values, each standardised over the
        batch (members' value scales differ: rewards were normalised by each run's running
        std).

        Raises:
            ValueError: a member has no critic (e.g. an ONNX export).
        """
        total = np.zeros(obs.shape[0])
        for member in self.members:
            if not hasattr(member, "values"):
                raise ValueError("priority='value' needs every member to be a MaskablePPO .zip")
            v = np.asarray(member.values(obs), dtype=np.float64)
            total += (v - v.mean()) / (v.std() or 1.0)
        return total / len(self.members)


def load_logit_model(
    model_path: str | Path | Any, zip_loader: ZipLoader | None = None
) -> LogitModel:
    """Load an exported ``.onnx``, an ``rl_onnx`` artifact directory or an ensemble ``.json``
    (:class:`EnsembleLogits`); a :class:`LogitModel` is returned as is.

    Args:
        model_path: the model file or directory, or a LogitModel.
        zip_loader: loads a MaskablePPO ``.zip`` (torch); without it a ``.zip`` is
            refused: use :func:`collsim.rl.logits.load_logit_model`.

    Raises:
        ValueError: unknown file kind, missing file, a ``.zip`` without ``zip_loader``
            or an object that is not a LogitModel.
    """
    if not isinstance(model_path, (str, Path)):
        if hasattr(model_path, "logits") and hasattr(model_path, "n_actions"):
            return model_path
        raise ValueError(
            f"{type(model_path).__name__} is not a LogitModel; wrap a MaskablePPO with "
            "collsim.rl.logits.TorchLogits"
        )
    path = Path(model_path)
    if path.is_dir():
        model = OnnxLogits(*artifact_model(path))
        model.name = path.name
        return model
    if not path.is_file():
        raise ValueError(f"{path}: model file not found")
    if path.suffix == ".zip":
        if zip_loader is None:
            raise ValueError(
                f"{path}: a MaskablePPO .zip needs torch; load it with "
                "collsim.rl.logits.load_logit_model"
            )
        return zip_loader(path)
    if path.suffix == ".onnx":
        return OnnxLogits(path.read_bytes(), str(path))
    if path.suffix == ".json":
        return EnsembleLogits.from_file(path, zip_loader)
    raise ValueError(
        f"{path}: expected an .onnx file, an ensemble .json, an artifact directory or "
        "(with collsim.rl.logits) a MaskablePPO .zip"
    )


def model_name(model_path: str | Path | Any) -> str:
    """The name of a model in policy ids: its file name, or the model's ``name``."""
    if isinstance(model_path, (str, Path)):
        return Path(model_path).name
    return str(getattr(model_path, "name", "model"))


def snapshot_inputs(snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """Return (obs float32 [N, F], mask bool [N, 1 + K]) of a snapshot (column 0 = no contact)."""
    obs = observable_features(snapshot)
    mask = np.empty((snapshot.n, 1 + snapshot.options.n_options), dtype=bool)
    mask[:, 0] = True
    mask[:, 1:] = snapshot.option_mask()
    return obs, mask


def masked_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of masked logits (masked entries get probability 0)."""
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def chosen_probability(logits: np.ndarray, action: np.ndarray) -> np.ndarray:
    """float64 [N]: ``masked_softmax(logits)[rows, action]`` without the [N, A] table.

    The same figures bit for bit: per row, ``exp(l_a − max) / Σ exp(l − max)`` in
    float64 with the same row sum.
    """
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    return np.take_along_axis(z, action[:, None], axis=1)[:, 0] / z.sum(axis=1)


@dataclass(frozen=True)
class Choice:
    """What :meth:`RLPolicy.choose` decides, per account (arrays [N]).

    Attributes:
        action: int, the chosen action (0 = no contact, a = option a − 1).
        probability: float64, its probability under the masked softmax.
        log_odds: float64, its logit minus no contact's (float32 difference).
        table: int [N, L], the action then fallback actions, as ``action - 1`` (-1:
            none; :func:`candidate_table`); with the plain layout these are options.
    """

    action: np.ndarray
    probability: np.ndarray
    log_odds: np.ndarray
    table: np.ndarray


def candidate_table(
    logits: np.ndarray, mask: np.ndarray, action: np.ndarray, fallbacks: int
) -> np.ndarray:
    """int [N, L]: each account's action, then up to ``fallbacks`` next-best options.

    Fallbacks are taken from the ``fallbacks + 1`` highest logits: the allowed options
    the policy prefers to no contact (logit above column 0), other than the action,
    in order; -1 elsewhere.  Column 0 is ``action - 1`` (-1 = no contact); L is 1
    without fallbacks, else ``fallbacks + 2``.  Used by :class:`RLPolicy` and by the
    production ``rl_onnx`` runner, so both fit a plan to capacity the same way.
    """
    table = (action - 1)[:, None]
    if fallbacks <= 0:
        return table
    rows = np.arange(logits.shape[0])[:, None]
    order = np.argsort(-logits, axis=1, kind="stable")[:, : 1 + fallbacks]
    ok = (logits[rows, order] > logits[:, :1]) & mask[rows, order] & (order != action[:, None])
    return np.concatenate([table, np.where(ok, order - 1, -1)], axis=1)


class RLPolicy:
    """A trained RL policy deciding one action per account, fitted to capacity.

    Args:
        model_path: a :class:`LogitModel`, an exported ``.onnx``, an ``rl_onnx``
            artifact directory or an ensemble ``.json`` (see :func:`load_logit_model`;
            a MaskablePPO or its ``.zip`` is loaded by
            :func:`collsim.rl.logits.load_logit_model`).
        policy_id: id written in plans (default ``rl:<file name>``, or
            ``rl:<model name>`` for a model object).
        deterministic: masked argmax (True) or a sample from the masked softmax drawn
            with ``snapshot.rng`` (False; the plan's ``propensity`` is then the
            probability of the chosen action, for off-policy evaluation).
        fallbacks: further options (by probability, only those preferred to no
            contact) an account tries when its resource is full.
        redial_headroom: if set, no agent call for an account with at least this many
            telephone attempts (agent calls + voice bot) in ``attempts_7d``: the engine
            redials an unanswered agent call the same day, and under Reg F's 7-in-7
            rule that redial would be refused in-day (a gate block).  The same rule as
            :class:`collsim.policies.optimised.OptimisedAllocation` (which uses 6).
            Applied to the action mask before the model (so never chosen).
        priority: the order in which accounts are served when they compete for a
            resource: ``log_odds`` (the default: log-probability of the chosen action
            over no contact, i.e. how much the agent prefers contacting this account to
            leaving it alone), ``confidence`` (probability of the chosen action;
            measured worse: benchmarks/RL_COMPARISON.md), ``value`` (the critic's value of
            the account's state; needs a MaskablePPO ``.zip`` or an ensemble of them) or
            ``exposure`` (``balance × (1 + dpd / 30)``,
            for a graph that outputs neither ``logits`` nor ``score``).

    Attributes:
        last_probability: float [N], probability of each account's chosen action in
            the last decision (before capacity).
    """

    def __init__(
        self,
        model_path: str | Path | Any,
        policy_id: str | None = None,
        deterministic: bool = True,
        fallbacks: int = 0,
        redial_headroom: int | None = None,
        priority: str = "log_odds",
    ) -> None:
        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}; expected one of {PRIORITIES}")
        self.model = load_logit_model(model_path)
        if priority == "value" and not hasattr(self.model, "values"):
            raise ValueError("priority='value' needs a model with a critic (a MaskablePPO .zip)")
        self.priority = priority
        self.redial_headroom = redial_headroom
        self.policy_id = policy_id or f"rl:{model_name(model_path)}"
        self.deterministic = deterministic
        self.fallbacks = fallbacks
        self.treatments: Any = None
        self.last_probability = np.zeros(0)
        self._layout: ActionLayout | None = None

    @property
    def chooses_treatments(self) -> bool:
        """The model's actions carry treatments (it has a treatment action layout)."""
        return getattr(self.model, "action_layout", None) is not None

    def layout(self, options: OptionSpace) -> ActionLayout:
        """The model's action layout over ``options`` (plain for a model without one).

        Raises:
            ValueError: the model's layout is for other operating hours.
        """
        cached = self._layout
        if cached is not None and np.array_equal(cached.options.slot_hours, options.slot_hours):
            return cached
        text = getattr(self.model, "action_layout", None)
        if text is None:
            layout = ActionLayout.plain(options)
        else:
            layout = ActionLayout.from_json(text, self.policy_id)
            if not np.array_equal(layout.options.slot_hours, options.slot_hours):
                raise ValueError(
                    f"{self.policy_id}: the model's action layout has operating hours "
                    f"{layout.options.slot_hours.tolist()}, the day {options.slot_hours.tolist()}"
                )
            if self.model.n_actions not in (-1, layout.n_actions):
                raise ValueError(
                    f"{self.policy_id}: the model has {self.model.n_actions} actions, its "
                    f"action layout {layout.n_actions}"
                )
        self._layout = layout
        return layout

    def check_scenario(self, scenario: Scenario) -> None:
        """Raise ValueError unless the model's action layout is ``scenario``'s.

        A treatment model on a scenario with other treatments (or a plain model on
        other operating hours) is refused with a message saying so.
        """
        options = OptionSpace(np.asarray(scenario.sim.operating_hours, dtype=np.int64))
        self.layout(options).check_scenario(scenario, self.policy_id)

    def with_treatments(self, chooser: Any) -> RLPolicy:
        """Return a copy whose planned contacts also get a treatment.

        Args:
            chooser: a :class:`~collsim.policies.models.treatment.TreatmentChooser`:
                each contact the RL policy plans gets the best allowed treatment
                (offer, variant) of its channel by the treatment-effect model, or none
                where none adds value.  The RL model chooses channel and slot; it was
                not trained on treatments.

        Raises:
            ValueError: the model chooses treatments itself.
        """
        if self.chooses_treatments:
            raise ValueError(f"{self.policy_id}: the model chooses treatments itself")
        policy = copy.copy(self)
        policy.treatments = chooser
        return policy

    def logits(self, snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray]:
        """Return (masked logits [N, A], mask [N, A]) for a snapshot (A = 1 + K when plain)."""
        obs, option_mask = self.inputs(snapshot)
        layout = self.layout(snapshot.options)
        mask = layout.mask(option_mask, snapshot, np.arange(snapshot.n))
        return self._model_logits(obs, mask), mask

    def inputs(self, snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray]:
        """Return (obs [N, F], option mask [N, 1 + K]) for a snapshot (redial rule applied)."""
        obs, mask = snapshot_inputs(snapshot)
        if self.redial_headroom is not None:
            agent = 1 + np.flatnonzero(snapshot.options.channel == Channel.AGENT_CALL)
            mask[np.ix_(redial_crowded(snapshot, self.redial_headroom), agent)] = False
        if obs.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"{obs.shape[1]} features, expected {len(FEATURE_NAMES)}")
        return obs, mask

    def _model_logits(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The model's masked logits of some rows (checked against the mask's width)."""
        logits = self.model.logits(obs, mask)
        if logits.shape != mask.shape:
            kind = "its action layout" if self.chooses_treatments else "1 + channels × slots"
            raise ValueError(
                f"{self.policy_id}: the model has {logits.shape[1]} actions, the scenario "
                f"{mask.shape[1]} ({kind}); was it trained on another scenario?"
            )
        return logits

    def choose(self, snapshot: Snapshot) -> Choice:
        """Each account's action, its probability, its log-odds and its candidate options.

        Rows are decided in blocks of ``BLOCK`` (the logits of one block at a time),
        so no [N, 1 + K] table is kept; the figures are those of the whole-batch
        computation bit for bit (the masked softmax is per row; the Gumbel noise of a
        stochastic policy is drawn block after block from ``snapshot.rng``, the same
        stream as one draw).
        """
        obs, option_mask = self.inputs(snapshot)
        layout = self.layout(snapshot.options)
        n = obs.shape[0]
        width = 1 if self.fallbacks <= 0 else self.fallbacks + 2
        out = Choice(
            action=np.empty(n, dtype=np.int64),
            probability=np.empty(n),
            log_odds=np.empty(n),
            table=np.empty((n, width), dtype=np.int64),
        )
        for start in range(0, n, BLOCK):
            rows = slice(start, start + BLOCK)
            index = np.arange(start, min(start + BLOCK, n))
            mask = layout.mask(option_mask[rows], snapshot, index)
            logits = self._model_logits(obs[rows], mask)
            if self.deterministic:
                action = np.argmax(logits, axis=1)
            else:
                gumbel = -np.log(-np.log(snapshot.rng.random(logits.shape)))
                action = np.argmax(np.where(mask, logits + gumbel, -np.inf), axis=1)
            out.action[rows] = action
            out.probability[rows] = chosen_probability(logits, action)
            chosen = np.take_along_axis(logits, action[:, None], axis=1)[:, 0]
            # float32 difference, as the exported graph's ``score`` output
            out.log_odds[rows] = chosen - logits[:, 0]
            out.table[rows] = self._candidates(layout, logits, mask, action)
        return out

    def _candidates(
        self, layout: ActionLayout, logits: np.ndarray, mask: np.ndarray, action: np.ndarray
    ) -> np.ndarray:
        """int [B, L]: the action, then the best action of each next-best option (``a - 1``)."""
        if layout.is_plain or self.fallbacks <= 0:
            return candidate_table(logits, mask, action, self.fallbacks)
        best, best_action = layout.best_per_option(logits)
        option_mask = np.take_along_axis(mask, best_action, axis=1)
        option_mask[:, 1:] &= best_action[:, 1:] > 0
        chosen = np.where(action > 0, 1 + layout.option[np.maximum(action - 1, 0)], 0)
        options = candidate_table(best, option_mask, chosen, self.fallbacks)
        rows = np.arange(logits.shape[0])[:, None]
        table = np.where(options >= 0, best_action[rows, 1 + options] - 1, -1)
        table[:, 0] = action - 1
        return table

    def decide(self, snapshot: Snapshot) -> Plan:
        """Return the plan: each account's masked action, fitted to capacity by probability."""
        n = snapshot.n
        choice = self.choose(snapshot)
        layout = self.layout(snapshot.options)
        chosen_p = choice.probability
        self.last_probability = chosen_p
        table = layout.option_of(choice.table)  # the action's option, then fallbacks
        option = table[:, 0]  # -1 = no contact
        if self.priority == "confidence":
            priority = chosen_p
        elif self.priority == "log_odds":
            priority = choice.log_odds
        elif self.priority == "exposure":
            a = snapshot.accounts
            priority = np.asarray(a.balance * (1.0 + a.dpd / 30.0), dtype=np.float64)
        else:
            priority = np.asarray(self.model.values(observable_features(snapshot)))  # type: ignore[attr-defined]
        group = np.where(option >= 0, np.arange(n), -1)
        fitted, column = fill_capacity(snapshot, table, group, priority)
        reasons = ["rl: no contact", "rl: capacity full", *(f"rl: {c}" for c in CHANNELS)]
        reason = np.where(option >= 0, 1, 0)
        reason = np.where(fitted >= 0, 2 + fitted // snapshot.options.n_slots, reason)
        propensity = np.ones(n) if self.deterministic else chosen_p
        propensity = np.where(fitted == option, propensity, 1.0)
        offer, variant = self._treatments(snapshot, layout, choice.table, fitted, column)
        return Plan.from_options(
            fitted,
            snapshot.options,
            self.policy_id,
            reasons,
            reason.astype(np.int16),
            priority_score=chosen_p,
            propensity=propensity,
            offer=offer,
            variant=variant,
        )

    def _treatments(
        self,
        snapshot: Snapshot,
        layout: ActionLayout,
        table: np.ndarray,
        fitted: np.ndarray,
        column: np.ndarray,
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(offer, variant) codes [N] of the plan: the fitted actions', or the chooser's."""
        if not layout.is_plain:
            served = np.flatnonzero(column >= 0)
            action = np.full(snapshot.n, -1, dtype=np.int64)
            action[served] = table[served, column[served]]
            return layout.treatment_of(action)
        if self.treatments is None:
            return None, None
        return self.treatments.choose(snapshot, fitted)
