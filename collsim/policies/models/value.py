"""Value and repayment models at decide-time: their ONNX exports run with onnxruntime.

A value model is fitted on the research side (:class:`collsim.research.value.ValueModel`,
trained by :func:`collsim.research.training.load_or_train` or ``collsim fit-value-model``)
and exported to ONNX; this module runs the export without scikit-learn.

**ONNX** (see :meth:`collsim.research.value.ValueModel.to_onnx`): one graph, input
``features`` float32 ``[N, F]`` (``F = len(FEATURE_NAMES)``, columns in
``collsim.features.FEATURE_NAMES`` order, as from
:func:`collsim.features.observable_features`), outputs ``value`` float32 ``[N, K]``
(``K = C × S`` over the slot hours stored in the model's metadata; option
``k = channel * S + slot_index`` as in :class:`collsim.plan.OptionSpace`; 0 for invalid
options) and ``uplift`` float32 ``[N, C]``.  A JSON sidecar beside the ``.onnx`` file
(same name, ``.json``) holds the metadata (feature names, slot hours, horizon,
multipliers, costs, training settings); the same JSON is stored in the ONNX
``metadata_props`` under ``collsim``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from collsim.features import FEATURE_NAMES, observable_features
from collsim.plan import Snapshot
from collsim.vocab import N_CHANNELS

N_ARMS = N_CHANNELS + 1
"""Channel one-hot width: the channels, then ``none``."""

CHUNK = 1 << 16
"""Rows × arms evaluated per block (bounds the memory of a prediction)."""


def snapshot_values(snapshot: Snapshot, uplift_of: Any, values_of: Any) -> np.ndarray:
    """value [N, K] float32 for the accounts with an allowed option (others 0).

    Args:
        snapshot: the day's snapshot.
        uplift_of: features [M, F] → channel uplifts [M, C] (or option values).
        values_of: (uplifts, slot hours) → option values [M, K].
    """
    rows = np.flatnonzero(snapshot.mask.any(axis=(1, 2)))
    out = np.zeros((snapshot.n, snapshot.options.n_options), dtype=np.float32)
    if rows.size == 0:
        return out
    features = observable_features(snapshot)[rows]
    out[rows] = values_of(uplift_of(features), snapshot.options.slot_hours)
    return out


class OnnxValueModel:
    """An exported value model run with onnxruntime (no scikit-learn needed).

    Args:
        path: the ``.onnx`` file written by
            :meth:`collsim.research.value.ValueModel.to_onnx` (its ``.json``
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
        step = max(CHUNK // N_ARMS, 1)
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
        """float32 [N, K]: option values (as the fitted model's ``predict_value``).

        Raises:
            ValueError: the snapshot's slot hours differ from the exported ones.
        """
        if not np.array_equal(snapshot.options.slot_hours, self.slot_hours):
            raise ValueError(
                f"{self.path}: exported for slots {self.slot_hours.tolist()}, snapshot has "
                f"{snapshot.options.slot_hours.tolist()}"
            )
        return snapshot_values(snapshot, self.predict_features, lambda values, _hours: values)


class OnnxRepaymentModel:
    """An exported :class:`collsim.research.value.RepaymentModel` run with onnxruntime."""

    def __init__(self, path: str | Path) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """float32 [N, 9]: P(payment within H) per arm."""
        features = np.ascontiguousarray(features, dtype=np.float32)
        return np.asarray(self.session.run(["p_paid"], {"features": features})[0])
