"""Learned response models: H-day portfolio-value uplift and repayment propensity.

Both models are S-learners: one gradient-boosted tree ensemble
(:class:`~sklearn.ensemble.HistGradientBoostingRegressor` /
``...Classifier``) on ``[features, channel one-hot]`` where the one-hot has
``C + 1 = 9`` columns (the 8 channels, then ``none``), trained on a
:class:`~collsim.policies.models.exploration.TrainingLog`.

**Value of an option.**  For account n the regressor predicts the H-day change in
portfolio value ``m(x_n, c)`` (cash − the account's costs − complaints × complaint cost
+ change in the account's terminal value; see
:mod:`collsim.policies.models.exploration` and :mod:`collsim.valuation`) for each
channel c and for ``none``; the channel's uplift is
``u[n, c] = m(x_n, c) − m(x_n, none)`` (it already contains the contact's own
cost).  The hour of day is not a model input: it enters through a per-channel
**hour multiplier** ``mult[c, h]`` = response rate of channel c's attempts at local
hour h over their mean rate (right-party conversations for calls and visits,
same-day link payments for messages), estimated from the log and shrunk toward 1
with ``hour_prior`` pseudo-attempts; telephone channels share one profile, message
channels another (their hour effects have the same form in the borrower model and
pooling halves the noise); untimed channels have multiplier 1.  The value of option
``k = (c, hour h)`` is

    value[n, k] = (u[n, c] + cost[c]) × mult[c, h] − cost[c]

i.e. the hour scales the gross benefit, not the cost (``cost[c]`` = mean logged cost
of an attempt, incl. the case cost for ``legal``).  The approximation assumes that
the hour changes only the probability of reaching the borrower, not what happens
once reached, and ignores the interaction between the hour and the account (the
borrower's best hour is latent).  Because the multipliers average to 1 over the
logged attempts, ``u`` is the uplift at the logging policy's hour mix.

**ONNX** (see :meth:`ValueModel.to_onnx`): one graph, input ``features`` float32
``[N, F]`` (``F = len(FEATURE_NAMES)``, columns in ``collsim.features.FEATURE_NAMES``
order, as from :func:`collsim.features.observable_features`), outputs ``value``
float32 ``[N, K]`` (``K = C × S`` over the slot hours stored in the model's
metadata; option ``k = channel * S + slot_index`` as in
:class:`collsim.plan.OptionSpace`; 0 for invalid options) and ``uplift`` float32
``[N, C]``.  Inside, the graph tiles each row 9 times, appends the channel one-hot
(the regressor's own input is ``x`` float32 ``[9N, F + 9]``), runs the tree
ensemble and applies the uplift and hour formulas above.  A JSON sidecar beside the
``.onnx`` file (same name, ``.json``) holds the metadata (feature names, slot
hours, horizon, multipliers, costs, training settings); the same JSON is stored in
the ONNX ``metadata_props`` under ``collsim``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from collsim.features import FEATURE_NAMES, observable_features
from collsim.io import atomic_write, atomic_write_text
from collsim.plan import Snapshot
from collsim.policies.models.exploration import NONE_CHANNEL, TrainingLog
from collsim.vocab import CHANNELS, IS_TELEPHONE, IS_TIMED, MESSAGES, N_CHANNELS, Channel

N_ARMS = N_CHANNELS + 1
"""Channel one-hot width: the channels, then ``none``."""

DEFAULT_SLOT_HOURS = tuple(range(8, 21))
_LOG_BALANCE = FEATURE_NAMES.index("log_balance")
_CHUNK = 1 << 16


def _threads(n: int | None) -> Any:
    """Context limiting OpenMP threads (no-op for None)."""
    from contextlib import nullcontext

    if n is None:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="openmp")


def one_hot_arms(arm: np.ndarray) -> np.ndarray:
    """float32 [M, 9] one-hot of arms (channel codes, ``NONE_CHANNEL`` = none)."""
    out = np.zeros((arm.shape[0], N_ARMS), dtype=np.float32)
    out[np.arange(arm.shape[0]), arm] = 1.0
    return out


def hour_multipliers(log: TrainingLog, prior: float = 200.0) -> np.ndarray:
    """float64 [C, 24]: response rate by local hour over the channel group's mean.

    Groups: telephone channels, message channels, field visits; other channels and
    hours without data get 1.  Each hour's rate is shrunk toward the group mean with
    ``prior`` pseudo-attempts.
    """
    mult = np.ones((N_CHANNELS, 24))
    groups = [np.flatnonzero(IS_TELEPHONE), np.asarray(MESSAGES), np.array([6])]
    for members in groups:
        sel = np.isin(log.attempts_channel, members) & (log.attempts_hour >= 0)
        if not np.any(sel):
            continue
        hour = log.attempts_hour[sel]
        hit = log.attempts_response[sel].astype(float)
        mean = hit.mean()
        if mean <= 0:
            continue
        count = np.bincount(hour, minlength=24)
        success = np.bincount(hour, weights=hit, minlength=24)
        rate = (success + prior * mean) / (count + prior)
        mult[members] = rate / mean
    mult[~IS_TIMED] = 1.0
    return mult


def mean_costs(log: TrainingLog) -> np.ndarray:
    """float64 [C]: mean logged cost of an attempt per channel (0 without data)."""
    count = np.bincount(log.attempts_channel, minlength=N_CHANNELS)
    total = np.bincount(log.attempts_channel, weights=log.attempts_cost, minlength=N_CHANNELS)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def _option_tables(
    slot_hours: np.ndarray, mult: np.ndarray, cost: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per option k: channel [K], multiplier [K], cost [K], valid [K] (float 0/1)."""
    s = slot_hours.shape[0]
    channel = np.repeat(np.arange(N_CHANNELS), s)
    slot = np.tile(np.arange(s), N_CHANNELS)
    timed = IS_TIMED[channel]
    hour = np.where(timed, slot_hours[slot], -1)
    m = np.where(timed, mult[channel, np.maximum(hour, 0)], 1.0)
    valid = timed | (slot == 0)
    return channel, m, cost[channel], valid.astype(np.float64)


class _ArmModel:
    """Shared machinery: an estimator on [features, arm one-hot], per-arm predictions."""

    estimator_: Any
    metadata_: dict[str, Any]

    def _check_fitted(self) -> None:
        if not hasattr(self, "estimator_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")

    def _design(self, log: TrainingLog) -> np.ndarray:
        if log.features.shape[1] != len(FEATURE_NAMES):
            raise ValueError(
                f"log has {log.features.shape[1]} feature columns, "
                f"expected {len(FEATURE_NAMES)} (FEATURE_NAMES)"
            )
        return np.hstack([log.features.astype(np.float32), one_hot_arms(log.channel)])

    def _raw(self, x: np.ndarray) -> np.ndarray:
        """Estimator output for design rows (regression value or P(positive))."""
        raise NotImplementedError

    n_threads: int | None = 1

    def predict_arms(self, features: np.ndarray) -> np.ndarray:
        """float64 [N, 9]: the estimator's output for each account and arm (none last)."""
        self._check_fitted()
        with _threads(self.n_threads):
            return self._predict_arms(features)

    def _predict_arms(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float32)
        n, f = features.shape
        if f != len(FEATURE_NAMES):
            raise ValueError(f"features must have {len(FEATURE_NAMES)} columns, got {f}")
        out = np.empty((n, N_ARMS))
        eye = np.eye(N_ARMS, dtype=np.float32)
        step = max(_CHUNK // N_ARMS, 1)
        for lo in range(0, n, step):
            block = features[lo : lo + step]
            m = block.shape[0]
            x = np.empty((m, N_ARMS, f + N_ARMS), dtype=np.float32)
            x[:, :, :f] = block[:, None, :]
            x[:, :, f:] = eye[None]
            out[lo : lo + m] = self._raw(x.reshape(m * N_ARMS, -1)).reshape(m, N_ARMS)
        return out


class ValueModel:
    """H-day net-value uplift model (residual T-learner) with per-channel hour multipliers.

    Fitting: a baseline regressor ``m_none(x)`` on the no-contact rows; then, per
    channel c with at least ``min_channel_rows`` rows, a regressor ``tau_c(x)`` of the
    residual ``y − m_none(x) − b_c`` on the rows of channel c, where ``b_c`` is the
    channel's mean residual; channels with fewer rows get the constant ``b_c`` (a
    channel never logged gets ``−cost``, i.e. never chosen).  The uplift is
    ``u[n, c] = b_c + tau_c(x_n)``, i.e. ``pred(n, c) − pred(n, none)`` with
    ``pred(n, c) = m_none(x_n) + u[n, c]``.

    Args:
        max_iter, learning_rate, max_leaf_nodes, min_samples_leaf,
            l2_regularization: the baseline's HistGradientBoostingRegressor.
        uplift_max_iter, uplift_learning_rate, uplift_max_leaf_nodes: the per-channel
            regressors (shallow and strongly shrunk: the residual is mostly noise).
        min_channel_rows: rows a channel needs for its own regressor.
        min_legal_rows: legal rows (with the long outcome) needed for the legal model;
            with fewer, legal gets its constant offset like any rare channel.
        hour_prior: pseudo-attempts of the hour multipliers' shrinkage.
        random_state: seed of the estimators (no global RNG is used).
        n_threads: OpenMP threads for fitting and predicting (default 1: on a shared
            machine scikit-learn's OpenMP threads can be 30x slower under contention;
            None = the library default).

    Attributes (after fit):
        baseline_: the no-contact regressor (training only; not exported).
        uplift_models_: dict channel → regressor of the residual.
        offset_: float [C] constant part ``b_c`` of each channel's uplift.
        hour_mult_: float [C, 24] hour multipliers.
        cost_: float [C] mean attempt cost per channel.
        horizon_: H of the training log.
    """

    def __init__(
        self,
        *,
        max_iter: int = 150,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 200,
        l2_regularization: float = 1.0,
        uplift_max_iter: int = 60,
        uplift_learning_rate: float = 0.05,
        uplift_max_leaf_nodes: int = 8,
        min_channel_rows: int = 2000,
        min_legal_rows: int = 20,
        hour_prior: float = 200.0,
        random_state: int = 0,
        n_threads: int | None = 1,
    ) -> None:
        self.n_threads = n_threads
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.uplift_max_iter = uplift_max_iter
        self.uplift_learning_rate = uplift_learning_rate
        self.uplift_max_leaf_nodes = uplift_max_leaf_nodes
        self.min_channel_rows = min_channel_rows
        self.min_legal_rows = min_legal_rows
        self.hour_prior = hour_prior
        self.random_state = random_state

    _PARAMS = (
        "max_iter",
        "learning_rate",
        "max_leaf_nodes",
        "min_samples_leaf",
        "l2_regularization",
        "uplift_max_iter",
        "uplift_learning_rate",
        "uplift_max_leaf_nodes",
        "min_channel_rows",
        "min_legal_rows",
        "hour_prior",
        "random_state",
        "n_threads",
    )

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters."""
        return {k: getattr(self, k) for k in self._PARAMS}

    def _check_fitted(self) -> None:
        if not hasattr(self, "offset_"):
            raise RuntimeError("ValueModel is not fitted; call fit() first")

    def fit(self, log: TrainingLog) -> ValueModel:
        """Fit the baseline, the per-channel uplift regressors and the hour multipliers."""
        with _threads(self.n_threads):
            return self._fit(log)

    def _fit(self, log: TrainingLog) -> ValueModel:
        from sklearn.ensemble import HistGradientBoostingRegressor

        if log.features.shape[1] != len(FEATURE_NAMES):
            raise ValueError(
                f"log has {log.features.shape[1]} feature columns, "
                f"expected {len(FEATURE_NAMES)} (FEATURE_NAMES)"
            )
        x = log.features.astype(np.float32)
        none = log.channel == NONE_CHANNEL
        if not np.any(none):
            raise ValueError("the log has no no-contact rows: cannot fit the baseline")
        self.baseline_ = HistGradientBoostingRegressor(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=15,
            random_state=self.random_state,
        ).fit(x[none], log.outcome[none])
        self.cost_ = mean_costs(log)
        self.offset_ = -self.cost_.copy()
        self.uplift_models_: dict[int, Any] = {}
        rows_per_channel = np.bincount(log.channel, minlength=N_ARMS)[:N_CHANNELS]
        for c in np.flatnonzero(rows_per_channel > 0):
            sel = log.channel == c
            residual = log.outcome[sel] - self.baseline_.predict(x[sel])
            self.offset_[c] = residual.mean()
            if rows_per_channel[c] < self.min_channel_rows:
                continue
            self.uplift_models_[int(c)] = HistGradientBoostingRegressor(
                max_iter=self.uplift_max_iter,
                learning_rate=self.uplift_learning_rate,
                max_leaf_nodes=self.uplift_max_leaf_nodes,
                min_samples_leaf=max(100, int(rows_per_channel[c]) // 50),
                l2_regularization=self.l2_regularization,
                early_stopping=False,
                random_state=self.random_state + 1 + int(c),
            ).fit(x[sel], residual - self.offset_[c])
        self._fit_legal(log, x, none)
        self.hour_mult_ = hour_multipliers(log, self.hour_prior)
        self.horizon_ = log.horizon
        self.metadata_ = {
            "legal_ratio": self.legal_ratio_,
            "long_horizon_days": int(log.long_horizon),
            "params": self.get_params(),
            "rows": log.n,
            "rows_per_channel": rows_per_channel.tolist(),
        }
        return self

    def _fit_legal(self, log: TrainingLog, x: np.ndarray, none: np.ndarray) -> None:
        """Legal uplift over the long horizon: ``ratio × balance − cost − m_long(x)``."""
        from sklearn.ensemble import HistGradientBoostingRegressor

        self.legal_ratio_: float | None = None
        self.legal_baseline_: Any = None
        legal = (log.channel == Channel.LEGAL) & np.isfinite(log.outcome_long)
        base = none & np.isfinite(log.outcome_long)
        if legal.sum() < self.min_legal_rows or base.sum() < 10 * self.min_legal_rows:
            return
        balance = np.expm1(x[legal, _LOG_BALANCE].astype(np.float64))
        gross = log.outcome_long[legal] + self.cost_[Channel.LEGAL]
        self.legal_ratio_ = float(gross.sum() / max(balance.sum(), 1e-9))
        self.legal_baseline_ = HistGradientBoostingRegressor(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=15,
            random_state=self.random_state + 100,
        ).fit(x[base], log.outcome_long[base])
        self.offset_[Channel.LEGAL] = -self.cost_[Channel.LEGAL]
        self.uplift_models_.pop(int(Channel.LEGAL), None)

    def predict_uplift(self, features: np.ndarray) -> np.ndarray:
        """float64 [N, C]: H-day portfolio-value uplift of each channel over no contact."""
        self._check_fitted()
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"features must be [N, {len(FEATURE_NAMES)}], got {features.shape}")
        out = np.repeat(self.offset_[None, :], features.shape[0], axis=0)
        with _threads(self.n_threads):
            for c, model in self.uplift_models_.items():
                for lo in range(0, features.shape[0], _CHUNK):
                    out[lo : lo + _CHUNK, c] += model.predict(features[lo : lo + _CHUNK])
            if self.legal_baseline_ is not None and self.legal_ratio_ is not None:
                balance = np.expm1(features[:, _LOG_BALANCE].astype(np.float64))
                out[:, Channel.LEGAL] += self.legal_ratio_ * balance
                for lo in range(0, features.shape[0], _CHUNK):
                    block = features[lo : lo + _CHUNK]
                    out[lo : lo + _CHUNK, Channel.LEGAL] -= self.legal_baseline_.predict(block)
        return out

    def option_values(self, uplift: np.ndarray, slot_hours: np.ndarray) -> np.ndarray:
        """float32 [N, K]: option values from channel uplifts (see module doc)."""
        self._check_fitted()
        return _option_values(uplift, np.asarray(slot_hours), self.hour_mult_, self.cost_)

    def predict_value(self, snapshot: Snapshot) -> np.ndarray:
        """float32 [N, K]: value of each option for each account (0 where nothing is allowed).

        Only accounts with at least one allowed option are predicted.
        """
        return _snapshot_values(snapshot, self.predict_uplift, self.option_values)

    def metadata(self, slot_hours: np.ndarray) -> dict[str, Any]:
        """JSON-able description of the fitted model (for the sidecar and the cache)."""
        self._check_fitted()
        return {
            "kind": "collsim.value_model",
            "version": 1,
            "feature_names": list(FEATURE_NAMES),
            "channels": list(CHANNELS),
            "slot_hours": [int(h) for h in slot_hours],
            "horizon_days": int(self.horizon_),
            "hour_mult": self.hour_mult_.tolist(),
            "cost": self.cost_.tolist(),
            "offset": self.offset_.tolist(),
            "channels_with_regressor": sorted(self.uplift_models_),
            "inputs": {"features": ["N", len(FEATURE_NAMES)]},
            "outputs": {"value": ["N", N_CHANNELS * len(slot_hours)], "uplift": ["N", N_CHANNELS]},
            **self.metadata_,
        }

    def to_onnx(self, path: str | Path, slot_hours: np.ndarray | None = None) -> Path:
        """Write the model as ONNX (``path``) plus its JSON sidecar; see the module doc.

        Args:
            path: the ``.onnx`` file to write (the sidecar gets the ``.json`` suffix).
            slot_hours: local slot start hours of the option space (default 8..20).

        Returns:
            The ONNX path.
        """
        self._check_fitted()
        hours = np.asarray(DEFAULT_SLOT_HOURS if slot_hours is None else slot_hours, np.int64)
        meta = self.metadata(hours)
        proto = _build_value_graph(self, hours, meta)
        return _write_onnx(proto, meta, Path(path))


class RepaymentModel(_ArmModel):
    """P(the account pays anything within H days | features, channel today).

    Args:
        max_iter, learning_rate, max_leaf_nodes, min_samples_leaf: passed to
            HistGradientBoostingClassifier.
        random_state: seed of the estimator.
        n_threads: OpenMP threads (see :class:`ValueModel`).
    """

    def __init__(
        self,
        *,
        max_iter: int = 200,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 100,
        random_state: int = 0,
        n_threads: int | None = 1,
    ) -> None:
        self.n_threads = n_threads
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state

    def fit(self, log: TrainingLog) -> RepaymentModel:
        """Fit the classifier on ``log.paid``."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        with _threads(self.n_threads):
            return self._fit(log, HistGradientBoostingClassifier)

    def _fit(self, log: TrainingLog, estimator: Any) -> RepaymentModel:
        self.estimator_ = estimator(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            early_stopping=False,
            random_state=self.random_state,
        ).fit(self._design(log), log.paid.astype(np.int64))
        self.horizon_ = log.horizon
        self.metadata_ = {"rows": log.n, "horizon_days": int(log.horizon)}
        return self

    def _raw(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator_.predict_proba(x)[:, 1], dtype=np.float64)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """float64 [N, 9]: P(payment within H) for each channel today and for none (last)."""
        return self.predict_arms(features)

    def predict_snapshot(self, snapshot: Snapshot) -> np.ndarray:
        """float64 [N, 9]: :meth:`predict_proba` of the snapshot's features."""
        return self.predict_proba(observable_features(snapshot))

    def to_onnx(self, path: str | Path) -> Path:
        """Write ONNX: input ``features`` float32 [N, F] → output ``p_paid`` float32 [N, 9]."""
        self._check_fitted()
        meta = {
            "kind": "collsim.repayment_model",
            "version": 1,
            "feature_names": list(FEATURE_NAMES),
            "arms": [*CHANNELS, "none"],
            **self.metadata_,
        }
        proto = _build_arm_graph(self.estimator_, classifier=True, meta=meta)
        return _write_onnx(proto, meta, Path(path))


# ----------------------------------------------------------------------------- predictions


def _option_values(
    uplift: np.ndarray, slot_hours: np.ndarray, mult: np.ndarray, cost: np.ndarray
) -> np.ndarray:
    channel, m, cost_k, valid = _option_tables(slot_hours, mult, cost)
    gross = uplift + cost[None, :]
    out = (gross[:, channel] * m[None, :] - cost_k[None, :]) * valid[None, :]
    return out.astype(np.float32)


def _snapshot_values(snapshot: Snapshot, uplift_of: Any, values_of: Any) -> np.ndarray:
    """value [N, K] float32 for the accounts with an allowed option (others 0)."""
    rows = np.flatnonzero(snapshot.mask.any(axis=(1, 2)))
    out = np.zeros((snapshot.n, snapshot.options.n_options), dtype=np.float32)
    if rows.size == 0:
        return out
    features = observable_features(snapshot)[rows]
    out[rows] = values_of(uplift_of(features), snapshot.options.slot_hours)
    return out


# ----------------------------------------------------------------------------- ONNX


def _convert(estimator: Any, n_inputs: int, classifier: bool) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    options = {id(estimator): {"zipmap": False}} if classifier else None
    return convert_sklearn(
        estimator,
        initial_types=[("x", FloatTensorType([None, n_inputs]))],
        target_opset={"": 17, "ai.onnx.ml": 3},
        options=options,
    )


def _build_arm_graph(estimator: Any, *, classifier: bool, meta: dict[str, Any]) -> Any:
    """ONNX model: features [N, F] → per-arm output ``arms`` [N, 9]."""
    from onnx import TensorProto, helper, numpy_helper

    f = len(FEATURE_NAMES)
    inner = _convert(estimator, f + N_ARMS, classifier)
    graph = inner.graph
    est_out = graph.output[1].name if classifier else graph.output[0].name

    def const(name: str, value: np.ndarray) -> Any:
        return numpy_helper.from_array(value, name=name)

    inits = [
        const("cs_axes1", np.array([1], np.int64)),
        const("cs_tile", np.array([1, N_ARMS, 1], np.int64)),
        const("cs_eye", np.eye(N_ARMS, dtype=np.float32)[None]),
        const("cs_eye_tail", np.array([N_ARMS, N_ARMS], np.int64)),
        const("cs_zero", np.array([0], np.int64)),
        const("cs_one", np.array([1], np.int64)),
        const("cs_flat", np.array([-1, f + N_ARMS], np.int64)),
        const("cs_arms_shape", np.array([-1, N_ARMS], np.int64)),
    ]
    pre = [
        helper.make_node("Unsqueeze", ["features", "cs_axes1"], ["cs_f3"]),
        helper.make_node("Expand", ["cs_f3", "cs_tile"], ["cs_f_tiled"]),
        helper.make_node("Shape", ["features"], ["cs_shape"]),
        helper.make_node("Slice", ["cs_shape", "cs_zero", "cs_one"], ["cs_n"]),
        helper.make_node("Concat", ["cs_n", "cs_eye_tail"], ["cs_eye_shape"], axis=0),
        helper.make_node("Expand", ["cs_eye", "cs_eye_shape"], ["cs_eye_tiled"]),
        helper.make_node("Concat", ["cs_f_tiled", "cs_eye_tiled"], ["cs_x3"], axis=2),
        helper.make_node("Reshape", ["cs_x3", "cs_flat"], [graph.input[0].name]),
    ]
    if classifier:
        inits.append(const("cs_col1", np.array([1], np.int64)))
        inits.append(const("cs_col2", np.array([2], np.int64)))
        post = [
            helper.make_node("Slice", [est_out, "cs_col1", "cs_col2", "cs_one"], ["cs_raw"]),
            helper.make_node("Reshape", ["cs_raw", "cs_arms_shape"], ["arms"]),
        ]
    else:
        post = [helper.make_node("Reshape", [est_out, "cs_arms_shape"], ["arms"])]
    nodes = [*pre, *graph.node, *post]
    outputs = [helper.make_tensor_value_info("arms", TensorProto.FLOAT, ["N", N_ARMS])]
    if classifier:
        nodes.append(helper.make_node("Identity", ["arms"], ["p_paid"]))
        outputs = [helper.make_tensor_value_info("p_paid", TensorProto.FLOAT, ["N", N_ARMS])]
    new_graph = helper.make_graph(
        nodes,
        "collsim_" + str(meta["kind"]).split(".")[-1],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", f])],
        outputs,
        initializer=[*graph.initializer, *inits],
    )
    model = helper.make_model(new_graph, opset_imports=list(inner.opset_import))
    model.ir_version = inner.ir_version
    model.producer_name = "collsim"
    helper.set_model_props(model, {"collsim": json.dumps(meta, sort_keys=True)})
    return model


def _build_value_graph(model: ValueModel, slot_hours: np.ndarray, meta: dict) -> Any:
    """ONNX: features [N, F] → uplift [N, C] (offsets + per-channel trees) → value [N, K]."""
    from onnx import TensorProto, helper, numpy_helper

    f = len(FEATURE_NAMES)
    nodes: list[Any] = [
        helper.make_node("Shape", ["features"], ["cs_shape"]),
        helper.make_node("Slice", ["cs_shape", "cs_c0", "cs_c1"], ["cs_n"]),
        helper.make_node("Concat", ["cs_n", "cs_c1"], ["cs_col_shape"], axis=0),
    ]
    inits: list[Any] = [
        numpy_helper.from_array(np.array([0], np.int64), "cs_c0"),
        numpy_helper.from_array(np.array([1], np.int64), "cs_c1"),
    ]
    opsets: dict[str, int] = {}
    columns = []

    def add_trees(estimator: Any, prefix: str) -> str:
        inner = _convert(estimator, f, classifier=False)
        for op in inner.opset_import:
            opsets[op.domain] = max(opsets.get(op.domain, 0), op.version)
        rename = _prefixer(prefix, keep={inner.graph.input[0].name: "features"})
        for node in inner.graph.node:
            node.input[:] = [rename(i) for i in node.input]
            node.output[:] = [rename(o) for o in node.output]
            node.name = rename(node.name) if node.name else node.name
            nodes.append(node)
        for init in inner.graph.initializer:
            init.name = rename(init.name)
            inits.append(init)
        return rename(inner.graph.output[0].name)

    for c in range(N_CHANNELS):
        name = f"cs_tau{c}"
        if c == Channel.LEGAL and model.legal_baseline_ is not None:
            base = add_trees(model.legal_baseline_, "legal_")
            inits += [
                numpy_helper.from_array(np.array([_LOG_BALANCE], np.int64), "cs_ilb"),
                numpy_helper.from_array(np.array([1.0], np.float32), "cs_onef"),
                numpy_helper.from_array(
                    np.array([model.legal_ratio_], np.float32), "cs_legal_ratio"
                ),
            ]
            nodes += [
                helper.make_node("Gather", ["features", "cs_ilb"], ["cs_lb"], axis=1),
                helper.make_node("Exp", ["cs_lb"], ["cs_lb_exp"]),
                helper.make_node("Sub", ["cs_lb_exp", "cs_onef"], ["cs_balance"]),
                helper.make_node("Mul", ["cs_balance", "cs_legal_ratio"], ["cs_legal_gross"]),
                helper.make_node("Sub", ["cs_legal_gross", base], [name]),
            ]
        elif c in model.uplift_models_:
            out = add_trees(model.uplift_models_[c], f"e{c}_")
            nodes.append(helper.make_node("Identity", [out], [name]))
        else:
            nodes.append(
                helper.make_node(
                    "ConstantOfShape",
                    ["cs_col_shape"],
                    [name],
                    value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]),
                )
            )
        columns.append(name)
    channel, m, cost_k, valid = _option_tables(slot_hours, model.hour_mult_, model.cost_)
    k = channel.shape[0]
    inits += [
        numpy_helper.from_array(model.offset_.astype(np.float32), "cs_offset"),
        numpy_helper.from_array(model.cost_.astype(np.float32), "cs_cost"),
        numpy_helper.from_array(channel.astype(np.int64), "cs_option_channel"),
        numpy_helper.from_array(m.astype(np.float32), "cs_mult"),
        numpy_helper.from_array(cost_k.astype(np.float32), "cs_cost_k"),
        numpy_helper.from_array(valid.astype(np.float32), "cs_valid"),
    ]
    nodes += [
        helper.make_node("Concat", columns, ["cs_tau"], axis=1),
        helper.make_node("Add", ["cs_tau", "cs_offset"], ["uplift"]),
        helper.make_node("Add", ["uplift", "cs_cost"], ["cs_gross"]),
        helper.make_node("Gather", ["cs_gross", "cs_option_channel"], ["cs_gross_k"], axis=1),
        helper.make_node("Mul", ["cs_gross_k", "cs_mult"], ["cs_scaled"]),
        helper.make_node("Sub", ["cs_scaled", "cs_cost_k"], ["cs_net"]),
        helper.make_node("Mul", ["cs_net", "cs_valid"], ["value"]),
    ]
    opsets[""] = max(opsets.get("", 0), 17)
    graph = helper.make_graph(
        nodes,
        "collsim_value_model",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", f])],
        [
            helper.make_tensor_value_info("value", TensorProto.FLOAT, ["N", k]),
            helper.make_tensor_value_info("uplift", TensorProto.FLOAT, ["N", N_CHANNELS]),
        ],
        initializer=inits,
    )
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())]
    )
    proto.ir_version = 8
    proto.producer_name = "collsim"
    helper.set_model_props(proto, {"collsim": json.dumps(meta, sort_keys=True)})
    return proto


def _prefixer(prefix: str, keep: dict[str, str]) -> Any:
    def rename(name: str) -> str:
        if name == "":
            return name
        return keep.get(name, prefix + name)

    return rename


def _write_onnx(proto: Any, meta: dict[str, Any], path: Path) -> Path:
    import onnx

    onnx.checker.check_model(proto)
    data = proto.SerializeToString()

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    atomic_write(path, write)
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=1, sort_keys=True))
    return path


class OnnxValueModel:
    """An exported :class:`ValueModel` run with onnxruntime (no scikit-learn needed).

    Args:
        path: the ``.onnx`` file written by :meth:`ValueModel.to_onnx` (its ``.json``
            sidecar must sit beside it), or the bytes of a ``value_model`` graph (e.g.
            from a policy artifact; no sidecar, no ``uplift`` output needed).
        threads: onnxruntime intra-op threads (default 1, no spinning: the machine is
            shared; None = onnxruntime's choice).
        slot_hours: with bytes: the slot hours of the graph's options.
    """

    def __init__(
        self, path: str | Path | bytes, threads: int | None = 1, slot_hours: Any = None
    ) -> None:
        import onnxruntime as ort

        if isinstance(path, bytes):
            self.path = Path("model.onnx")
            source: str | bytes = path
            self.metadata_: dict[str, Any] = {"slot_hours": list(slot_hours), "horizon_days": 0}
        else:
            self.path = Path(path)
            source = str(self.path)
            self.metadata_ = json.loads(self.path.with_suffix(".json").read_text())
            if self.metadata_.get("kind") != "collsim.value_model":
                raise ValueError(f"{self.path}: not a collsim value model")
            if tuple(self.metadata_["feature_names"]) != FEATURE_NAMES:
                raise ValueError(f"{self.path}: feature names differ from collsim.features")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.slot_hours = np.asarray(self.metadata_["slot_hours"], dtype=np.int64)
        self.horizon_ = int(self.metadata_["horizon_days"])
        self._outputs = [o.name for o in self.session.get_outputs() if o.name == "uplift"]

    def _run(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features = np.ascontiguousarray(features, dtype=np.float32)
        value = np.empty((features.shape[0], N_CHANNELS * self.slot_hours.size), np.float32)
        uplift = np.full((features.shape[0], N_CHANNELS), np.nan, np.float32)
        step = max(_CHUNK // N_ARMS, 1)
        for lo in range(0, features.shape[0], step):
            out = self.session.run(
                ["value", *self._outputs], {"features": features[lo : lo + step]}
            )
            value[lo : lo + step] = out[0]
            if self._outputs:
                uplift[lo : lo + step] = out[1]
        return value, uplift

    def predict_uplift(self, features: np.ndarray) -> np.ndarray:
        """float32 [N, C]: channel uplifts."""
        return self._run(features)[1]

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """float32 [N, K]: option values for feature rows (the model's slot hours)."""
        return self._run(features)[0]

    def predict_value(self, snapshot: Snapshot) -> np.ndarray:
        """float32 [N, K]: as :meth:`ValueModel.predict_value`.

        Raises:
            ValueError: the snapshot's slot hours differ from the exported ones.
        """
        if not np.array_equal(snapshot.options.slot_hours, self.slot_hours):
            raise ValueError(
                f"{self.path}: exported for slots {self.slot_hours.tolist()}, snapshot has "
                f"{snapshot.options.slot_hours.tolist()}"
            )
        return _snapshot_values(snapshot, self.predict_features, lambda values, _hours: values)


class OnnxRepaymentModel:
    """An exported :class:`RepaymentModel` run with onnxruntime."""

    def __init__(self, path: str | Path) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """float32 [N, 9]: P(payment within H) per arm."""
        features = np.ascontiguousarray(features, dtype=np.float32)
        return np.asarray(self.session.run(["p_paid"], {"features": features})[0])
