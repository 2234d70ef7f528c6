"""Learning treatment effects from exploration runs that randomise treatments.

The decide-time side (treatment codes, support, pruning and the chooser) is in
:mod:`collsim.policies.models.treatment`; this module fits what its chooser reads:

* **Effect model** (:class:`TreatmentEffectModel`).  The H-day portfolio-value change ``y`` of a
  logged contact carrying treatment ``t`` on a channel of group ``g`` (conversations:
  agent call, voice bot, field visit; messages: SMS, email, app push) is taken as a
  residual over the value model's prediction for its channel,
  ``r = y − m_none(x) − u[x, c]``, per unit of balance; its mean per (group, DPD band,
  treatment) minus that of (none, standard), less ``z`` standard errors, is the
  effect rate, and ``effect[n, c, t] = rate × balance_n``.  Letters and legal action
  carry no treatment (effect 0).  The log comes from
  :class:`~collsim.research.exploration.ExplorationPolicy` with ``treatments=True``.

Only observable features are used (never latent segments).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from collsim.config import Scenario
from collsim.features import FEATURE_NAMES
from collsim.policies.models.treatment import CHANNEL_GROUP, N_GROUPS, N_TREATMENTS
from collsim.research.exploration import TrainingLog
from collsim.research.training import TrainingSettings, training_log
from collsim.research.value import ValueModel, openmp_threads
from collsim.vocab import N_CHANNELS

_DPD = FEATURE_NAMES.index("dpd_30")
_LOG_BALANCE = FEATURE_NAMES.index("log_balance")


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
            value_model: the fitted :class:`~collsim.research.value.ValueModel`
                whose channel values the effects correct (``baseline_`` and
                ``predict_uplift`` are used).
        """
        if log.treatment is None:
            raise ValueError("the log has no treatments: collect it with treatments=True")
        contacted = log.channel < N_CHANNELS
        group = np.full(log.n, -1, dtype=np.int64)
        group[contacted] = CHANNEL_GROUP[log.channel[contacted]]
        sel = np.flatnonzero(group >= 0)
        if sel.size == 0:
            raise ValueError("the log has no contacts on channels that carry treatments")
        x = log.features[sel].astype(np.float32)
        with openmp_threads(getattr(value_model, "n_threads", 1)):
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


def train_with_treatments(
    scenario: Scenario, settings: Any = None
) -> tuple[Any, TreatmentEffectModel]:
    """Fit a value model and a treatment-effect model on exploration runs with treatments.

    Args:
        scenario: the scenario (must have a ``treatments`` section).
        settings: :class:`~collsim.research.training.TrainingSettings` (default:
            its defaults); the runs randomise treatments on their random contacts.

    Returns:
        (ValueModel, TreatmentEffectModel), both fitted on the same log.
    """
    if scenario.treatments is None:
        raise ValueError("the scenario has no treatments section")
    settings = settings or TrainingSettings()
    log = training_log(scenario, settings, treatments=True)
    value = ValueModel(random_state=settings.random_state, **settings.model_params.kwargs())
    value.fit(log)
    effects = TreatmentEffectModel().fit(log, value)
    return value, effects
