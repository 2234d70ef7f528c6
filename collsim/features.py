"""Observable per-account features: the one encoding of a Snapshot used by learned policies.

Environments (observations), response models (inputs) and exported artifacts all
call :func:`observable_features`, so a model trained in simulation sees the same
columns in production.  Only Snapshot fields are read: never latent state.
"""

from __future__ import annotations

import numpy as np

from collsim.plan import Snapshot
from collsim.portfolio import FLAG_COLUMNS
from collsim.vocab import CHANNELS

_FLAGS = FLAG_COLUMNS
_NEVER_DAYS = 99.0

FEATURE_NAMES: tuple[str, ...] = (
    "dpd_30",  # days past due / 30
    "log_balance",
    "log_amount_due",
    "risk_score",
    "risk_known",
    *(f"attempts_7d.{c}" for c in CHANNELS),
    "rpc_7d",
    "days_since_contact_30",
    "days_since_rpc_30",
    "days_since_promise_30",
    "promise_open",
    "broken_promises",
    *_FLAGS,
    "weekday_sin",
    "weekday_cos",
)
"""Names of the columns of :func:`observable_features`, in order."""


def _days_since(day: int, last: np.ndarray) -> np.ndarray:
    return np.where(last < 0, _NEVER_DAYS, np.minimum(day - last, _NEVER_DAYS)) / 30.0


def observable_features(snapshot: Snapshot) -> np.ndarray:
    """Return float32 [N, F] features of every account (columns: ``FEATURE_NAMES``)."""
    a, c = snapshot.accounts, snapshot.contact
    risk = a.risk_score
    weekday = snapshot.date.weekday()
    n = snapshot.n
    columns = [
        a.dpd / 30.0,
        np.log1p(a.balance),
        np.log1p(a.amount_due),
        np.nan_to_num(risk, nan=0.5),
        (~np.isnan(risk)).astype(float),
        *(c.attempts_7d[:, k] for k in range(len(CHANNELS))),
        c.rpc_7d,
        _days_since(snapshot.day, c.last_contact_day),
        _days_since(snapshot.day, c.last_rpc_day),
        _days_since(snapshot.day, c.last_promise_day),
        (a.promise_due_day >= 0).astype(float),
        c.broken_promises,
        *(getattr(a, flag) for flag in _FLAGS),
        np.full(n, np.sin(2 * np.pi * weekday / 7)),
        np.full(n, np.cos(2 * np.pi * weekday / 7)),
    ]
    out = np.empty((n, len(columns)), dtype=np.float32)
    for j, column in enumerate(columns):
        out[:, j] = column
    return out
