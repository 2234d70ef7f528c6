"""Calls: the voice bot, agent calls hour by hour through the SimPy pool, field visits.

Outcomes and handle times come from draws keyed by (account, day, attempt)."""

from __future__ import annotations

import numpy as np

from collsim.behaviour import ACTIVE, ContactResult
from collsim.sim.stages import gate, records, responses
from collsim.sim.state import SimState
from collsim.vocab import Channel, Outcome


def voice_bot(s: SimState, idx: np.ndarray, hour: np.ndarray) -> None:
    """Voice-bot calls (no queue: all are made at their planned hour)."""
    if idx.size == 0:
        return
    make_calls(s, idx, np.full(idx.size, Channel.VOICE_BOT, dtype=np.int64), hour, attempt=0)


def make_calls(
    s: SimState, idx: np.ndarray, channel: np.ndarray, hour: np.ndarray, attempt: int
) -> np.ndarray:
    """Draw and apply the outcomes of calls made; return their outcomes."""
    result, duration = draw_calls(s, idx, channel, hour, attempt)
    apply_calls(s, idx, channel, hour, result, duration)
    return result.outcome


def draw_calls(
    s: SimState, idx: np.ndarray, channel: np.ndarray, hour: np.ndarray, attempt: int
) -> tuple[ContactResult, np.ndarray]:
    """Outcomes and handle times of calls, from draws keyed by (account, day, attempt)."""
    day = s.day
    treatment = None
    if s.offer is not None and s.variant is not None:
        treatment = (
            s.offer[idx].astype(np.int64),
            s.variant[idx].astype(np.int64),
            s.portfolio.dpd[idx],
            s.random.uniform("offer_take", day, idx, attempt),
        )
    result = s.model.call(
        idx,
        channel,
        hour,
        s.borrowers,
        s.random.uniform("answer", day, idx, attempt),
        s.random.uniform("party", day, idx, attempt),
        s.random.uniform("result", day, idx, attempt),
        treatment,
    )
    return result, handle_time_s(s, idx, channel, result.outcome, result.conversation, attempt)


def apply_calls(
    s: SimState,
    idx: np.ndarray,
    channel: np.ndarray,
    hour: np.ndarray,
    result: ContactResult,
    duration: np.ndarray,
) -> None:
    """Record calls made and apply their effect on the borrowers."""
    records.record_attempts(s, idx, channel, hour, result.outcome, result.conversation, duration)
    s.model.excite(idx, channel, result.effective, result.reached, s.borrowers, result.jump)
    responses.after_conversation(s, idx, channel, hour, result.outcome, result.accepted)


def handle_time_s(
    s: SimState,
    idx: np.ndarray,
    channel: np.ndarray,
    outcome: np.ndarray,
    conversation: np.ndarray,
    attempt: int,
) -> np.ndarray:
    """float [M]: handle time (s) of each call, by result kind, from a keyed draw."""
    kind = np.where(
        conversation | (outcome >= Outcome.RIGHT_PARTY),
        3,
        np.where(outcome == Outcome.WRONG_PARTY, 2, np.where(outcome == Outcome.VOICEMAIL, 1, 0)),
    )
    u = s.random.uniform("handle", s.day, idx, attempt)
    return s.handle_s[channel, kind] * (0.5 + u)


def agent_calls(
    s: SimState, idx: np.ndarray, hour: np.ndarray, priority: np.ndarray, shift: np.ndarray
) -> None:
    """Run the day's agent calls hour by hour through the pool's SimPy queue.

    Each centre hour offers, in order, the calls carried over from the previous
    hour, the calls planned for this hour (by plan priority) and redials of
    calls unanswered in the previous hour.  Every call passes the in-day
    compliance gate first.  A planned call an agent cannot start within its
    hour is carried once to the next hour, then dropped as overflow.
    """
    pool_cfg = s.call_pool
    agent_call = int(Channel.AGENT_CALL)
    zone_shift = shift[s.portfolio.timezone]
    centre = hour + zone_shift[idx]
    staffed = staffed_hours(s, idx, hour, centre)
    if pool_cfg is None:
        return
    pool = s.pools[pool_cfg.name]
    order = np.lexsort((idx, priority, centre))
    idx, centre = idx[order], centre[order]
    empty = np.zeros(0, dtype=np.int64)
    carried, redial, redial_attempt = empty, empty, empty
    for centre_hour in staffed:
        agents = pool_cfg.agents_by_hour[centre_hour]
        s.ledger.append(
            "agent_capacity",
            s.day,
            np.array([-1]),
            duration_s=agents * 3600.0,
            cost=agents * pool_cfg.cost_per_staffed_hour,
        )
        planned = idx[centre == centre_hour]
        batch = np.concatenate([carried, planned, redial])
        attempt = np.concatenate(
            [np.zeros(carried.size + planned.size, dtype=np.int64), redial_attempt]
        )
        was_carried = np.arange(batch.size) < carried.size
        local = centre_hour - zone_shift[batch]
        keep = gate.hour_gate(s, batch, local, attempt > 0)
        batch, local, attempt, was_carried = (
            batch[keep],
            local[keep],
            attempt[keep],
            was_carried[keep],
        )
        channel = np.full(batch.size, agent_call, dtype=np.int64)
        drawn = [
            draw_calls(s, batch[attempt == k], channel[attempt == k], local[attempt == k], int(k))
            for k in np.unique(attempt)
        ]
        duration = np.zeros(batch.size)
        for k, (_, dur) in zip(np.unique(attempt), drawn, strict=True):
            duration[attempt == k] = dur
        started = pool.run_hour(s.day_index * 24.0 + centre_hour, centre_hour, duration).started
        outcome = np.full(batch.size, -1, dtype=np.int8)
        for k, (result, dur) in zip(np.unique(attempt), drawn, strict=True):
            sel = attempt == k
            go = started[sel]
            apply_calls(
                s, batch[sel][go], channel[sel][go], local[sel][go], result.rows(go), dur[go]
            )
            outcome[np.flatnonzero(sel)[go]] = result.outcome[go]
        late = ~started
        records.record_overflow(
            s,
            batch[late & was_carried],
            agent_call,
            local[late & was_carried],
            f"pool:{pool_cfg.name}",
        )
        carried = batch[late & ~was_carried & (attempt == 0)]
        unanswered = started & np.isin(outcome, (Outcome.NO_ANSWER, Outcome.VOICEMAIL))
        again = (
            unanswered
            & (attempt < s.scenario.sim.max_redials)
            & (s.borrowers.status[batch] == ACTIVE)
        )
        redial, redial_attempt = batch[again], attempt[again] + 1
    if staffed:
        records.record_overflow(
            s, carried, agent_call, staffed[-1] + 1 - zone_shift[carried], f"pool:{pool_cfg.name}"
        )


def staffed_hours(s: SimState, idx: np.ndarray, hour: np.ndarray, centre: np.ndarray) -> list[int]:
    """The call pool's staffed centre hours; ledger calls planned outside them as overflow."""
    pool_cfg = s.call_pool
    staffed = (
        [] if pool_cfg is None else sorted(h for h, a in pool_cfg.agents_by_hour.items() if a > 0)
    )
    unstaffed = ~np.isin(centre, staffed)
    records.record_overflow(
        s, idx[unstaffed], int(Channel.AGENT_CALL), hour[unstaffed], "unstaffed"
    )
    return staffed


def field_outcomes(s: SimState, idx: np.ndarray, hour: np.ndarray) -> None:
    """Outcomes of the field visits that the team started today."""
    if idx.size == 0:
        return
    make_calls(s, idx, np.full(idx.size, Channel.FIELD_VISIT, dtype=np.int64), hour, attempt=0)


__all__ = [
    "agent_calls",
    "staffed_hours",
    "apply_calls",
    "draw_calls",
    "field_outcomes",
    "handle_time_s",
    "make_calls",
    "voice_bot",
]
