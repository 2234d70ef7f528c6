"""Ledger records shared by the contact stages: attempts (with cost) and overflow."""

from __future__ import annotations

import numpy as np

from collsim.sim.state import SimState
from collsim.vocab import bucket_of

_MINUTE = 60.0


def attempt_cost(s: SimState, channel: np.ndarray, duration_s: np.ndarray) -> np.ndarray:
    """float [M]: cost of each attempt (per attempt plus per minute of handle time)."""
    return s.cost_per_attempt[channel] + s.cost_per_minute[channel] * duration_s / _MINUTE


def record_attempts(
    s: SimState,
    idx: np.ndarray,
    channel: np.ndarray,
    hour: np.ndarray,
    outcome: np.ndarray,
    conversation: np.ndarray,
    duration_s: np.ndarray | None = None,
) -> None:
    """Ledger attempts and update the contact window, summary and counters."""
    duration = np.zeros(idx.size) if duration_s is None else duration_s
    treatment = (
        {}
        if s.offer is None or s.variant is None
        else {"offer": s.offer[idx], "variant": s.variant[idx]}
    )
    s.ledger.append(
        "attempt",
        s.day,
        idx,
        channel=channel,
        hour=hour,
        outcome=outcome,
        cost=attempt_cost(s, channel, duration),
        duration_s=duration,
        bucket=bucket_of(s.portfolio.dpd[idx]),
        **treatment,
    )
    s.window.record(idx, channel, conversation)
    s.attempts += int(idx.size)
    s.contact.last_contact_day[idx] = s.day
    s.contact.last_rpc_day[idx[conversation]] = s.day


def record_overflow(
    s: SimState, idx: np.ndarray, channel: int, hour: np.ndarray, resource: str
) -> None:
    """Ledger planned contacts that did not fit their resource."""
    if idx.size:
        s.ledger.append(
            "overflow",
            s.day,
            idx,
            channel=channel,
            hour=hour,
            rule=s.ledger.rule_code(resource),
        )


__all__ = ["attempt_cost", "record_attempts", "record_overflow"]
