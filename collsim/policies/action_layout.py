"""The action layout of an RL policy: what each flat action index means.

Action 0 is no contact; action ``a >= 1`` is the triple (option, offer, variant) of
row ``a - 1`` of the layout.  Two layouts exist:

* **plain** (:meth:`ActionLayout.plain`): one action per channel × slot option,
  ``a = 1 + option``, no treatment: the ``Discrete(1 + K)`` action of
  ``collsim/AccountBatch-v0`` and of every model trained before treatments were
  actions;
* **treatments** (:meth:`ActionLayout.from_scenario`): one action per valid option
  and each (offer, variant) the scenario supports on its channel, (none, standard)
  first, options in order (``Discrete(1 + Σ_options treatments of its channel)``).

The mask of a treatment action is the option's compliance mask AND the scenario's
treatment support at the account's DPD
(:meth:`~collsim.policies.models.treatment.TreatmentSupport.allowed`, the rule the
engine's treatment gate applies) AND the rule set's treatment rules
(:func:`~collsim.policies.models.treatment.rule_allowed`), so a masked action never
meets a compliance or a treatment block.  The environment and
:class:`~collsim.policies.rl.RLPolicy` build the mask with the same
:meth:`ActionLayout.mask`.

A layout travels with its model as JSON (:meth:`ActionLayout.to_json`; in an ONNX
graph, the metadata entry :data:`collsim.policies.onnx.LAYOUT_KEY`): actions as
(channel, hour, offer, variant) names and the support tables, so a runner decodes the
model's own layout and a scenario with other treatments is refused
(:meth:`ActionLayout.check_scenario`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from collsim.config import Scenario
from collsim.plan import OptionSpace, Snapshot
from collsim.policies.models.treatment import (
    TREATMENT_OFFER,
    TREATMENT_VARIANT,
    TreatmentSupport,
    rule_allowed,
    treatment_code,
)
from collsim.treatments import TreatmentTables
from collsim.vocab import CHANNELS, OFFERS, VARIANTS

__all__ = ["LAYOUT_VERSION", "ActionLayout"]

LAYOUT_VERSION = 1
"""Version of the layout JSON."""

_ALWAYS = np.iinfo(np.int64).max // 2
"""A DPD beyond every offer's minimum (channel support without the DPD rule)."""


@dataclass(frozen=True)
class ActionLayout:
    """Actions ``1..A-1`` as (option, offer, variant); action 0 is no contact.

    Attributes:
        options: the option space the layout indexes.
        option: int64 [A - 1]: option index of each action.
        offer: int64 [A - 1]: offer code of each action (``vocab.OFFERS``).
        variant: int64 [A - 1]: variant code of each action (``vocab.VARIANTS``).
        support: the scenario's treatment support (None: a plain layout).
    """

    options: OptionSpace
    option: np.ndarray
    offer: np.ndarray
    variant: np.ndarray
    support: TreatmentSupport | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def plain(cls, options: OptionSpace) -> ActionLayout:
        """One action per option, no treatment (``a = 1 + option``)."""
        k = options.n_options
        zeros = np.zeros(k, dtype=np.int64)
        return cls(options, np.arange(k, dtype=np.int64), zeros, zeros.copy())

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> ActionLayout:
        """Every valid option × each treatment the scenario supports on its channel."""
        options = OptionSpace(np.asarray(scenario.sim.operating_hours, dtype=np.int64))
        return cls.from_support(options, TreatmentSupport.from_scenario(scenario))

    @classmethod
    def from_support(cls, options: OptionSpace, support: TreatmentSupport) -> ActionLayout:
        """The treatment layout of ``options`` under ``support`` (see the module doc)."""
        by_channel = support.allowed(np.array([_ALWAYS]))[0]  # [C, T], t = 0 always
        valid = np.flatnonzero(options.valid)
        option, treatment = np.nonzero(by_channel[options.channel[valid]])
        return cls(
            options,
            valid[option].astype(np.int64),
            TREATMENT_OFFER[treatment].astype(np.int64),
            TREATMENT_VARIANT[treatment].astype(np.int64),
            support,
        )

    # ------------------------------------------------------------------ properties
    @property
    def n_actions(self) -> int:
        """A = 1 + the number of (option, treatment) actions."""
        return 1 + int(self.option.size)

    @property
    def is_plain(self) -> bool:
        """True for the plain layout (actions are options, no treatments)."""
        return self.support is None

    # ------------------------------------------------------------------ decoding
    def option_of(self, act: np.ndarray) -> np.ndarray:
        """int: the option of each ``act`` (``action - 1``; -1 = no contact → -1)."""
        return np.where(act >= 0, self.option[np.maximum(act, 0)], -1)

    def treatment_of(self, act: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(offer, variant) codes of each ``act`` (``action - 1``; -1 → none, standard)."""
        safe = np.maximum(act, 0)
        return np.where(act >= 0, self.offer[safe], 0), np.where(act >= 0, self.variant[safe], 0)

    # ------------------------------------------------------------------ masks
    def mask(self, option_mask: np.ndarray, snapshot: Snapshot, rows: np.ndarray) -> np.ndarray:
        """bool [len(rows), A]: allowed actions of ``rows`` (column 0 always True).

        Args:
            option_mask: bool [len(rows), 1 + K] of those rows (column 0 = no contact),
                e.g. a block of :func:`collsim.policies.rl.snapshot_inputs`.
            snapshot: the day's snapshot (DPD and the treatment rules).
            rows: the accounts (indices into the snapshot).
        """
        if self.is_plain:
            return option_mask
        assert self.support is not None
        out = np.zeros((rows.size, self.n_actions), dtype=bool)
        out[:, 0] = True
        live = np.flatnonzero(option_mask[:, 1:].any(axis=1))
        if live.size == 0:
            return out
        code = treatment_code(self.offer, self.variant)
        channel = self.options.channel[self.option]
        allowed = self.support.allowed(snapshot.accounts.dpd[rows[live]])  # [M, C, T]
        allowed &= rule_allowed(snapshot, rows[live])[:, None, :]
        out[live, 1:] = option_mask[live][:, 1 + self.option] & allowed[:, channel, code]
        return out

    def best_per_option(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each option's best action: (logits [B, 1 + K], action [B, 1 + K]).

        Column 0 is no contact (action 0); an option without an action has the logit
        of its best action or ``-inf`` and action 0.  Used to offer fallbacks by option
        (capacity is per option, so two treatments of one option are one candidate).
        """
        b, k = logits.shape[0], self.options.n_options
        best = np.full((b, 1 + k), -np.inf, dtype=np.float64)
        action = np.zeros((b, 1 + k), dtype=np.int64)
        best[:, 0] = logits[:, 0]
        starts = np.flatnonzero(np.r_[True, np.diff(self.option) != 0])
        which = np.zeros((b, starts.size), dtype=np.int64)
        for i, (lo, hi) in enumerate(zip(starts, np.r_[starts[1:], self.option.size], strict=True)):
            which[:, i] = lo + np.argmax(logits[:, 1 + lo : 1 + hi], axis=1)
        best[:, 1 + self.option[starts]] = np.take_along_axis(logits, 1 + which, axis=1)
        action[:, 1 + self.option[starts]] = 1 + which
        return best.astype(logits.dtype), action

    # ------------------------------------------------------------------ checks and JSON
    def check_scenario(self, scenario: Scenario, source: str = "the model") -> None:
        """Raise ValueError unless ``scenario`` has this layout (same options and treatments)."""
        hours = np.asarray(scenario.sim.operating_hours, dtype=np.int64)
        if self.is_plain:
            if not np.array_equal(hours, self.options.slot_hours):
                raise ValueError(f"{source}: trained on other operating hours than {scenario.name}")
            return
        expected = ActionLayout.from_scenario(scenario)
        if expected.to_json() != self.to_json():
            raise ValueError(
                f"{source}: its action layout ({self.n_actions} actions, channel × slot × "
                f"offer × variant) differs from scenario {scenario.name!r}'s "
                f"({expected.n_actions} actions): trained on a scenario with other "
                "treatments or operating hours; retrain it on this scenario"
            )

    def to_json(self) -> str:
        """The layout of a treatment model as JSON (actions by name, the support tables).

        Raises:
            ValueError: a plain layout (a model without a layout is plain).
        """
        if self.support is None:
            raise ValueError("a plain layout is not written: a model without one is plain")
        t = self.support.tables
        hours = self.options.hour[self.option]
        actions = [
            [CHANNELS[c], int(h), OFFERS[o], VARIANTS[v]]
            for c, h, o, v in zip(
                self.options.channel[self.option], hours, self.offer, self.variant, strict=True
            )
        ]
        spec = {
            "version": LAYOUT_VERSION,
            "operating_hours": [int(h) for h in self.options.slot_hours],
            "actions": actions,
            "offer_channels": t.offer_channels.astype(int).tolist(),
            "variant_channels": t.variant_channels.astype(int).tolist(),
            "min_dpd": t.min_dpd.astype(int).tolist(),
        }
        return json.dumps(spec, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> ActionLayout:
        """Read a layout written by :meth:`to_json`.

        Raises:
            ValueError: malformed JSON, an unknown name or a table of the wrong shape
                (the message names ``source`` and the bad entry).
        """
        try:
            spec = json.loads(text)
            if spec.get("version") != LAYOUT_VERSION:
                raise ValueError(f"version {spec.get('version')!r}, expected {LAYOUT_VERSION}")
            options = OptionSpace(np.asarray(spec["operating_hours"], dtype=np.int64))
            codes = np.array([_decode_action(entry) for entry in spec["actions"]], np.int64)
            channel, hour, offer, variant = codes.T
            option = options.encode(channel, hour)
            support = _support(spec)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{source}: invalid action layout: {exc}") from None
        return cls(options, option.astype(np.int64), offer, variant, support)


def _decode_action(entry: list[object]) -> tuple[int, int, int, int]:
    """(channel, hour, offer, variant) codes of one JSON action."""
    channel, hour, offer, variant = entry
    for name, table in ((channel, CHANNELS), (offer, OFFERS), (variant, VARIANTS)):
        if name not in table:
            raise ValueError(f"unknown name {name!r} in action {entry}")
    if not isinstance(hour, int):
        raise ValueError(f"hour {hour!r} of action {entry} is not an integer")
    codes = CHANNELS.index(str(channel)), OFFERS.index(str(offer)), VARIANTS.index(str(variant))
    return codes[0], hour, codes[1], codes[2]


def _support(spec: dict[str, object]) -> TreatmentSupport:
    """The treatment support recorded in a layout's JSON (support arrays only)."""
    offer_channels = np.asarray(spec["offer_channels"], dtype=bool)
    variant_channels = np.asarray(spec["variant_channels"], dtype=bool)
    min_dpd = np.asarray(spec["min_dpd"], dtype=np.int64)
    if offer_channels.shape != (len(OFFERS), len(CHANNELS)) or variant_channels.shape != (
        len(VARIANTS),
        len(CHANNELS),
    ):
        raise ValueError("offer_channels / variant_channels have the wrong shape")
    o = len(OFFERS)
    tables = TreatmentTables(
        None,
        offer_channels,
        variant_channels,
        min_dpd,
        take_up=np.zeros(o),
        take_up_mult=np.ones((0, o)),
        variant_scale=np.ones((0, len(VARIANTS), 5)),
        plan_keep_mult=np.ones(0),
    )
    return TreatmentSupport(tables)
