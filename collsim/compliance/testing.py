"""Small helpers to build portfolios and histories for compliance tests and benchmarks."""

from __future__ import annotations

import numpy as np

from collsim.history import History
from collsim.portfolio import FLAG_COLUMNS, Portfolio

_REACH = ("has_phone", "has_mobile", "has_email", "has_app", "has_address", "consent_autodial")


def make_portfolio(
    n: int,
    timezones: tuple[str, ...] = ("America/New_York",),
    timezone: np.ndarray | None = None,
    **flags: np.ndarray | bool,
) -> Portfolio:
    """Return a portfolio of ``n`` accounts: fully reachable, consenting, no restrictive flag.

    Args:
        n: number of accounts.
        timezones: IANA zone names.
        timezone: int [n] zone codes (default all 0).
        **flags: overrides for any flag column (bool or bool [n]).

    Raises:
        ValueError: an unknown flag name.
    """
    unknown = set(flags) - set(FLAG_COLUMNS)
    if unknown:
        raise ValueError(f"unknown flag columns: {sorted(unknown)}")
    columns = {name: np.full(n, name in _REACH, dtype=bool) for name in FLAG_COLUMNS}
    for name, value in flags.items():
        columns[name] = np.broadcast_to(np.asarray(value, dtype=bool), (n,)).copy()
    return Portfolio(
        account_id=np.array([f"A{i:08d}" for i in range(n)], dtype=object),
        product=np.zeros(n, dtype=np.int16),
        products=("card",),
        balance=np.full(n, 1000.0),
        amount_due=np.full(n, 100.0),
        dpd=np.full(n, 30, dtype=np.int32),
        timezone=np.zeros(n, dtype=np.int16)
        if timezone is None
        else np.asarray(timezone, dtype=np.int16),
        timezones=timezones,
        risk_score=np.full(n, np.nan),
        promise_due_day=np.full(n, -1, dtype=np.int32),
        promise_amount=np.zeros(n),
        segment_label=np.array([""] * n, dtype=object),
        **columns,
    )


def make_history(
    account: np.ndarray | list[int],
    local_day: np.ndarray | list[int],
    channel: np.ndarray | list[int],
    conversation: np.ndarray | list[bool] | bool = False,
    local_hour: np.ndarray | list[int] | int = 10,
    outcome: np.ndarray | list[int] | int = 0,
) -> History:
    """Return a :class:`History` from columns (scalars broadcast)."""
    account = np.asarray(account, dtype=np.int64)
    shape = account.shape
    return History(
        account=account,
        local_day=np.asarray(local_day, dtype=np.int64),
        local_hour=np.broadcast_to(np.asarray(local_hour, dtype=np.int8), shape).copy(),
        channel=np.asarray(channel, dtype=np.int8),
        outcome=np.broadcast_to(np.asarray(outcome, dtype=np.int8), shape).copy(),
        conversation=np.broadcast_to(np.asarray(conversation, dtype=bool), shape).copy(),
    )


def random_history(
    rng: np.random.Generator, n: int, first_day: int, last_day: int, rows: int
) -> History:
    """Return ``rows`` random contact attempts of ``n`` accounts on local days first..last."""
    channel = rng.integers(0, 8, rows)
    return make_history(
        account=rng.integers(0, n, rows),
        local_day=rng.integers(first_day, last_day + 1, rows),
        channel=channel,
        conversation=(channel < 2) & (rng.random(rows) < 0.15),
        local_hour=rng.integers(8, 21, rows),
        outcome=rng.integers(0, 13, rows),
    )
