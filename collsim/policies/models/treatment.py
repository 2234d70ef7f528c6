"""Treatment effects for the allocation: which (offer, variant) to attach to each option.

The value model (:class:`~collsim.policies.models.value.ValueModel`) values channel ×
slot options.  This module adds the treatment (offer, variant; ``vocab.OFFERS`` ×
``vocab.VARIANTS``, ``T = 12`` pairs, code ``t = offer * len(VARIANTS) + variant``)
as a third axis, learned from exploration runs that **randomise treatments**
(:class:`~collsim.policies.models.exploration.ExplorationPolicy` with
``treatments=True``):

* **Effect model** (:class:`TreatmentEffectModel`).  The H-day portfolio-value change ``y`` of a
  logged contact carrying treatment ``t`` on a channel of group ``g`` (conversations:
  agent call, voice bot, field visit; messages: SMS, email, app push) is taken as a
  residual over the value model's prediction for its channel,
  ``r = y − m_none(x) − u[x, c]``, per unit of balance; its mean per (group, DPD band,
  treatment) minus that of (none, standard), less ``z`` standard errors, is the
  effect rate, and ``effect[n, c, t] = rate × balance_n``.  Letters and legal action
  carry no treatment (effect 0).
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
from typing import Any

import numpy as np

from collsim.config import Scenario
from collsim.features import FEATURE_NAMES, observable_features
from collsim.plan import Snapshot
from collsim.policies.models.exploration import TrainingLog
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

_DPD = FEATURE_NAMES.index("dpd_30")
_LOG_BALANCE = FEATURE_NAMES.index("log_balance")


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


class TreatmentEffectModel:
    """Treatment effects per channel group, DPD band and treatment, as lower confidence bounds.

    For every logged contact on a channel that carries treatments, the residual over the
    value model's prediction for its channel, ``r = y − m_none(x) − u[x, c]``, is scaled
    by the account's balance (``r / max(balance, balance_floor)``: the money a treatment
    moves -- a settlement of the balance, instalments of the due -- grows with it).  In
    each cell (channel group g, DPD band b, treatment t) the model estimates the mean
    scaled residual; the effect of t is the difference from (none, standard) in the same
    (g, b), minus ``z`` standard errors:

        rate[g, b, t] = mean[g, b, t] − mean[g, b, 0] − z · se,   rate[g, b, 0] = 0,

    and ``effect[n, c, t] = rate[group(c), band(dpd_n), t] × balance_n``
    ``− complaint_cost × Δcomplaint[group(c), band(dpd_n), t]``, where ``Δcomplaint`` is
    the difference in complaints per contact from (none, standard) in the same cell
    (point estimate; 0 when the log has no complaints or ``complaint_cost`` is 0).  A treatment
    is therefore chosen only where the log shows, with some confidence, that it beats
    no treatment (the pessimistic bound avoids picking the luckiest of 12 noisy
    estimates).  Cells with fewer than ``min_rows`` rows get ``-inf`` (never chosen).
    The log must randomise treatments (``ExplorationPolicy(treatments=True)``), so the
    comparison within a cell is a randomised one.

    Args:
        dpd_edges: lower DPD bounds of the bands (the first must be ≤ 1).
        z: standard errors subtracted (0: the point estimate).
        min_rows: rows a cell needs.
        balance_floor: the smallest balance used for scaling.

    Attributes (after fit):
        rate_: float [G, B, T] effect per unit of balance (see above).
        rows_: int [G, B, T] logged contacts per cell.
        rows_per_treatment_: int [G, T] logged contacts per group and treatment.
        complaint_diff_: float [G, B, T] complaints per contact over (none, standard)
            (zeros when the log has none).
    """

    def __init__(
        self,
        *,
        dpd_edges: tuple[int, ...] = (0, 31, 61, 91, 121, 151),
        z: float = 2.0,
        min_rows: int = 200,
        balance_floor: float = 100.0,
    ) -> None:
        self.dpd_edges = dpd_edges
        self.z = z
        self.min_rows = min_rows
        self.balance_floor = balance_floor

    def _band(self, features: np.ndarray) -> np.ndarray:
        dpd = np.rint(features[:, _DPD] * 30.0)
        return np.searchsorted(np.asarray(self.dpd_edges), dpd, side="right") - 1

    def _balance(self, features: np.ndarray) -> np.ndarray:
        return np.maximum(np.expm1(features[:, _LOG_BALANCE].astype(np.float64)), 0.0)

    def fit(self, log: TrainingLog, value_model: Any) -> TreatmentEffectModel:
        """Fit on the treatment-capable contacts of ``log`` (needs ``log.treatment``).

        Args:
            log: a training log with treatments (exploration with ``treatments=True``).
            value_model: the fitted :class:`~collsim.policies.models.value.ValueModel`
                whose channel values the effects correct (``baseline_`` and
                ``predict_uplift`` are used).
        """
        from collsim.policies.models.value import _threads

        if log.treatment is None:
            raise ValueError("the log has no treatments: collect it with treatments=True")
        contacted = log.channel < N_CHANNELS
        group = np.full(log.n, -1, dtype=np.int64)
        group[contacted] = CHANNEL_GROUP[log.channel[contacted]]
        sel = np.flatnonzero(group >= 0)
        if sel.size == 0:
            raise ValueError("the log has no contacts on channels that carry treatments")
        x = log.features[sel].astype(np.float32)
        with _threads(getattr(value_model, "n_threads", 1)):
            uplift = value_model.predict_uplift(x)[np.arange(sel.size), log.channel[sel]]
            predicted = value_model.baseline_.predict(x) + uplift
        scaled = (log.outcome[sel] - predicted) / np.maximum(self._balance(x), self.balance_floor)
        n_bands = len(self.dpd_edges)
        cell = (group[sel] * n_bands + self._band(x)) * N_TREATMENTS + log.treatment[sel]
        size = N_GROUPS * n_bands * N_TREATMENTS
        count = np.bincount(cell, minlength=size).astype(np.float64)
        total = np.bincount(cell, weights=scaled, minlength=size)
        square = np.bincount(cell, weights=scaled**2, minlength=size)
        shape = (N_GROUPS, n_bands, N_TREATMENTS)
        count, total, square = count.reshape(shape), total.reshape(shape), square.reshape(shape)
        mean = total / np.maximum(count, 1.0)
        var = np.maximum(square / np.maximum(count, 1.0) - mean**2, 0.0)
        var *= count / np.maximum(count - 1.0, 1.0)
        se = np.sqrt(var / np.maximum(count, 1.0) + (var / np.maximum(count, 1.0))[:, :, :1])
        rate = mean - mean[:, :, :1] - self.z * se
        enough = (count >= self.min_rows) & (count[:, :, :1] >= self.min_rows)
        rate = np.where(enough, rate, -np.inf)
        rate[:, :, 0] = 0.0
        self.rate_ = rate
        self.complaint_diff_ = np.zeros(shape)
        if log.complaint is not None:
            said = np.bincount(cell, weights=log.complaint[sel].astype(float), minlength=size)
            share = said.reshape(shape) / np.maximum(count, 1.0)
            self.complaint_diff_ = np.where(enough, share - share[:, :, :1], 0.0)
        self.rows_ = count.astype(np.int64)
        self.rows_per_treatment_ = self.rows_.sum(axis=1)
        return self

    def predict(self, features: np.ndarray, complaint_cost: float = 0.0) -> np.ndarray:
        """float64 [N, G, T]: the effect of each treatment on each channel group.

        Args:
            features: observable features [N, F].
            complaint_cost: value of one complaint avoided (currency units; a policy
                preference, not a cash flow).
        """
        if not hasattr(self, "rate_"):
            raise RuntimeError("TreatmentEffectModel is not fitted; call fit() first")
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"features must be [N, {len(FEATURE_NAMES)}], got {features.shape}")
        band = self._band(features)
        rate = self.rate_[:, band, :].transpose(1, 0, 2)  # [N, G, T]
        balance = np.maximum(self._balance(features), self.balance_floor)
        out = rate * balance[:, None, None]
        if complaint_cost:
            out = out - complaint_cost * self.complaint_diff_[:, band, :].transpose(1, 0, 2)
        return out

    def channel_effects(self, features: np.ndarray, complaint_cost: float = 0.0) -> np.ndarray:
        """float64 [N, C, T]: :meth:`predict` spread to channels (0 for letter and legal)."""
        by_group = self.predict(features, complaint_cost)
        out = np.zeros((features.shape[0], N_CHANNELS, N_TREATMENTS))
        carries = np.flatnonzero(CHANNEL_GROUP >= 0)
        out[:, carries] = by_group[:, CHANNEL_GROUP[carries]]
        return out


class TreatmentChooser:
    """Attach the best allowed treatment to each option of a value matrix (pruning).

    Args:
        effects: a fitted :class:`TreatmentEffectModel` (or anything with
            ``channel_effects(features) -> [N, C, T]``).
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
        effects: Any,
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


def train_with_treatments(
    scenario: Scenario, settings: Any = None
) -> tuple[Any, TreatmentEffectModel]:
    """Fit a value model and a treatment-effect model on exploration runs with treatments.

    Args:
        scenario: the scenario (must have a ``treatments`` section).
        settings: :class:`~collsim.policies.models.training.TrainingSettings` (default:
            its defaults); the runs randomise treatments on their random contacts.

    Returns:
        (ValueModel, TreatmentEffectModel), both fitted on the same log.
    """
    from collsim.policies.models.training import TrainingSettings, training_log
    from collsim.policies.models.value import ValueModel

    if scenario.treatments is None:
        raise ValueError("the scenario has no treatments section")
    settings = settings or TrainingSettings()
    log = training_log(scenario, settings, treatments=True)
    value = ValueModel(random_state=settings.random_state, **dict(settings.model_params))
    value.fit(log)
    effects = TreatmentEffectModel().fit(log, value)
    return value, effects
