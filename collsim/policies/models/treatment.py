"""Treatments at decide-time: which (offer, variant) to attach to each option.

The value model (:class:`~collsim.policies.models.value.OnnxValueModel`) values channel ×
slot options.  This module adds the treatment (offer, variant; ``vocab.OFFERS`` ×
``vocab.VARIANTS``, ``T = 12`` pairs, code ``t = offer * len(VARIANTS) + variant``)
as a third axis:

* **Effects** (anything with ``channel_effects(features) -> [N, C, T]``, the
  :class:`TreatmentEffects` protocol): the value a treatment adds to a contact on a
  channel.  The effect model is learned on the research side from exploration runs
  that randomise treatments (:class:`collsim.research.treatment.TreatmentEffectModel`).
* **Pruning** (:func:`prune_treatments`).  A treatment does not change which resource
  an option uses (nor its cost), so for each account and channel only the treatment
  with the highest effect among the *allowed* ones can be in an optimal allocation:
  every other (option, treatment) has the same resource use and a lower value
  (dominated).  The allocation therefore solves over the same ``N × K`` options as
  without treatments, each carrying its best treatment; the optimum is the optimum
  over all ``N × K × T`` options (tested against the unpruned solve).
* **Allowed treatments** (:class:`TreatmentSupport`): the scenario's support (which
  channels carry each offer and variant, minimum DPD of each offer) and the rule
  set's treatment rules, which the policy reads from the Snapshot
  (``Snapshot.treatment_rule``); a forbidden treatment is never planned.

Only observable features are used (never latent segments).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from collsim.config import Scenario
from collsim.features import observable_features
from collsim.plan import Snapshot
from collsim.treatments import TreatmentTables
from collsim.vocab import N_CHANNELS, OFFERS, VARIANTS, Channel

N_TREATMENTS = len(OFFERS) * len(VARIANTS)
"""T: (offer, variant) pairs; code ``t = offer * len(VARIANTS) + variant`` (0 = none)."""

TREATMENT_OFFER = np.repeat(np.arange(len(OFFERS)), len(VARIANTS)).astype(np.int8)
"""int8 [T]: offer code of treatment t."""

TREATMENT_VARIANT = np.tile(np.arange(len(VARIANTS)), len(OFFERS)).astype(np.int8)
"""int8 [T]: variant code of treatment t."""

CHANNEL_GROUP = np.full(N_CHANNELS, -1, dtype=np.int64)
CHANNEL_GROUP[[Channel.AGENT_CALL, Channel.VOICE_BOT, Channel.FIELD_VISIT]] = 0
CHANNEL_GROUP[[Channel.SMS, Channel.EMAIL, Channel.APP_PUSH]] = 1
"""int [C]: treatment group of each channel (0 conversation, 1 message, -1 none)."""

N_GROUPS = 2
"""G: treatment groups of channels (see ``CHANNEL_GROUP``)."""


class TreatmentEffects(Protocol):
    """What :class:`TreatmentChooser` needs from a fitted effect model."""

    def channel_effects(self, features: np.ndarray, complaint_cost: float = 0.0) -> np.ndarray:
        """float [N, C, T]: the value treatment t adds to a contact on channel c."""
        ...


def treatment_code(offer: np.ndarray, variant: np.ndarray) -> np.ndarray:
    """int64: treatment codes of (offer, variant) code arrays."""
    return np.asarray(offer, dtype=np.int64) * len(VARIANTS) + np.asarray(variant, np.int64)


@dataclass(frozen=True)
class TreatmentSupport:
    """Which treatments the scenario supports on each channel (no latent information).

    Attributes:
        tables: the scenario's treatment tables built without segments (only the
            support arrays ``offer_channels``, ``variant_channels`` and ``min_dpd`` are
            used).
    """

    tables: TreatmentTables

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> TreatmentSupport:
        """The support of ``scenario``'s ``treatments`` section (none without one)."""
        return cls(TreatmentTables.from_scenario(scenario, ()))

    def allowed(self, dpd: np.ndarray) -> np.ndarray:
        """bool [N, C, T]: the scenario supports treatment t on channel c at this DPD."""
        t = self.tables
        by_channel = (
            t.offer_channels[TREATMENT_OFFER].T & t.variant_channels[TREATMENT_VARIANT].T
        )  # [C, T]
        dpd_ok = np.asarray(dpd)[:, None] >= t.min_dpd[TREATMENT_OFFER][None, :]  # [N, T]
        return by_channel[None, :, :] & dpd_ok[:, None, :]


def rule_allowed(snapshot: Snapshot, rows: np.ndarray) -> np.ndarray:
    """bool [len(rows), T]: no treatment rule of the day's rule set forbids t.

    All True when the snapshot carries no ``treatment_rule``.
    """
    out = np.ones((rows.size, N_TREATMENTS), dtype=bool)
    if snapshot.treatment_rule is None or rows.size == 0:
        return out
    account = np.repeat(rows, N_TREATMENTS - 1)
    t = np.tile(np.arange(1, N_TREATMENTS), rows.size)
    rule = snapshot.treatment_rule(account, TREATMENT_OFFER[t], TREATMENT_VARIANT[t])
    out[:, 1:] = (np.asarray(rule, dtype=object) == "").reshape(rows.size, N_TREATMENTS - 1)
    return out


def prune_treatments(
    value: np.ndarray,
    effect: np.ndarray,
    allowed: np.ndarray,
    option_channel: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Keep, per account and option, only the best allowed treatment.

    Args:
        value: float [N, K] option values without treatment effects.
        effect: float [N, C, T] value added by treatment t on channel c (0 where a
            channel carries no treatment).
        allowed: bool [N, C, T] treatment t is allowed on channel c (t = 0 must be).
        option_channel: int [K] channel of each option.

    Returns:
        (value [N, K] with the best treatment's effect added, treatment int8 [N, K]).
    """
    eff = np.where(allowed, effect, -np.inf)
    best = eff.argmax(axis=2)  # [N, C]
    gain = np.take_along_axis(eff, best[:, :, None], axis=2)[:, :, 0]
    ok = np.isfinite(gain)  # False only where nothing is allowed (t = 0 should be)
    best, gain = np.where(ok, best, 0), np.where(ok, gain, 0.0)
    out = value + gain[:, option_channel]
    return out.astype(value.dtype, copy=False), best[:, option_channel].astype(np.int8)


class TreatmentChooser:
    """Attach the best allowed treatment to each option of a value matrix (pruning).

    Args:
        effects: a fitted effect model (:class:`TreatmentEffects`, e.g.
            :class:`collsim.research.treatment.TreatmentEffectModel`).
        support: the scenario's :class:`TreatmentSupport`.
        offers: offers the policy may make (default: all); ``("none",)`` restricts the
            policy to no offer.
        variants: variants the policy may use (default: all).
        complaint_cost: value of a complaint avoided, traded against cash in the
            effects (default 0: the logged outcome already charges the scenario's
            ``valuation.complaint_cost``; a further policy preference on top of it).

    Attributes:
        allowed_treatments: bool [T]: the treatments the restriction keeps.
    """

    def __init__(
        self,
        effects: TreatmentEffects,
        support: TreatmentSupport,
        *,
        offers: tuple[str, ...] | None = None,
        variants: tuple[str, ...] | None = None,
        complaint_cost: float = 0.0,
    ) -> None:
        unknown = sorted(set(offers or ()) - set(OFFERS)) + sorted(
            set(variants or ()) - set(VARIANTS)
        )
        if unknown:
            raise ValueError(f"unknown offer(s)/variant(s) {unknown}")
        self.effects = effects
        self.support = support
        self.complaint_cost = complaint_cost
        keep_offer = np.isin(OFFERS, offers) if offers is not None else np.ones(len(OFFERS), bool)
        keep_variant = (
            np.isin(VARIANTS, variants) if variants is not None else np.ones(len(VARIANTS), bool)
        )
        self.allowed_treatments = keep_offer[TREATMENT_OFFER] & keep_variant[TREATMENT_VARIANT]
        if not self.allowed_treatments[0]:
            raise ValueError("the restriction must keep (none, standard)")

    def allowed(self, snapshot: Snapshot, rows: np.ndarray) -> np.ndarray:
        """bool [len(rows), C, T]: scenario support × rule set × restriction (t = 0 always)."""
        out = self.support.allowed(snapshot.accounts.dpd[rows])
        out &= rule_allowed(snapshot, rows)[:, None, :]
        out &= self.allowed_treatments[None, None, :]
        out[:, :, 0] = True
        return out

    def apply(self, snapshot: Snapshot, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(value [N, K] with each option's best treatment, treatment int8 [N, K]).

        Only accounts with an allowed option are evaluated (others keep their values
        and treatment 0).
        """
        rows = np.flatnonzero(snapshot.mask.any(axis=(1, 2)))
        out = np.array(value, copy=True)
        treatment = np.zeros(value.shape, dtype=np.int8)
        if rows.size == 0:
            return out, treatment
        out[rows], treatment[rows] = prune_treatments(
            np.asarray(value)[rows],
            self._effects(snapshot, rows),
            self.allowed(snapshot, rows),
            snapshot.options.channel,
        )
        return out, treatment

    def choose(self, snapshot: Snapshot, option: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(offer, variant) codes [N] for options chosen otherwise (e.g. by an RL policy).

        Each contacted account gets the best allowed treatment on its option's channel,
        or none/standard when no treatment is estimated to add value.
        """
        treatment = np.zeros(snapshot.n, dtype=np.int64)
        rows = np.flatnonzero(option >= 0)
        if rows.size:
            channel = snapshot.options.channel[option[rows]]
            pick = np.arange(rows.size), channel
            effect = np.where(
                self.allowed(snapshot, rows)[pick], self._effects(snapshot, rows)[pick], -np.inf
            )
            treatment[rows] = np.where(effect.max(axis=1) > 0, effect.argmax(axis=1), 0)
        return TREATMENT_OFFER[treatment], TREATMENT_VARIANT[treatment]

    def _effects(self, snapshot: Snapshot, rows: np.ndarray) -> np.ndarray:
        """float [len(rows), C, T]: the effect model's value of each treatment."""
        features = observable_features(snapshot)[rows]
        if self.complaint_cost:
            return np.asarray(self.effects.channel_effects(features, self.complaint_cost))
        return np.asarray(self.effects.channel_effects(features))
