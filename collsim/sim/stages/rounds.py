"""Agent calls resolved in rounds, one vectorised pass per attempt (opt-in, for fast envs).

:func:`agent_calls_by_round` is a drop-in for :func:`collsim.sim.stages.calls.agent_calls`
chosen with ``SimState.agent_call_stage`` (the engine's default stays the SimPy pool).
It keeps the borrower model, the keyed draws (account, day, attempt), the in-day gate
and the ledger events of the hourly stage, and the queue order of each centre hour
(calls carried from the previous hour, planned calls by priority, then redials).  What
changes is the order of work: the centre's queue is dispatched hour by hour with the
pool's own dispatch (:func:`collsim.sim.centre.dispatch`, agents taking calls as they
become free, overruns into the next hour) for the planned and carried calls, and the
redials of an hour then take the agent time those left in that hour; a redial's
overrun is not carried into the next hour's planned calls.  Hence the behaviour of
an account is simulated by one vectorised pass for its planned call and one per
redial, not by a Python loop over hours for the whole batch; the hour loop left only
moves indices and start times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collsim.behaviour import ACTIVE, ContactResult
from collsim.sim.centre import dispatch
from collsim.sim.stages import calls, gate, records
from collsim.sim.state import SimState
from collsim.vocab import Channel, Outcome

_AGENT_CALL = int(Channel.AGENT_CALL)
_UNANSWERED = (Outcome.NO_ANSWER, Outcome.VOICEMAIL)


@dataclass
class _Tried:
    """Gate verdicts and drawn results of a batch of agent calls at given hours."""

    idx: np.ndarray  # int [M] accounts
    slot: np.ndarray  # int [M] index of the staffed centre hour
    local: np.ndarray  # int [M] local hour
    first: np.ndarray  # int16 [M] first refusing rule (-1 may go, -2 not in collection)
    row: np.ndarray  # int [M] row of the call in result/duration (-1: refused)
    result: ContactResult | None
    duration_s: np.ndarray


@dataclass
class _Made:
    """Calls started in one round, in queue order (sorted by staffed hour)."""

    idx: np.ndarray
    slot: np.ndarray
    outcome: np.ndarray


def agent_calls_by_round(
    s: SimState, idx: np.ndarray, hour: np.ndarray, priority: np.ndarray, shift: np.ndarray
) -> None:
    """Run the day's agent calls: planned calls in one pass, then one pass per redial.

    Same arguments as :func:`collsim.sim.stages.calls.agent_calls`.
    """
    pool_cfg = s.call_pool
    zone_shift = shift[s.portfolio.timezone]
    centre = hour + zone_shift[idx]
    staffed = calls.staffed_hours(s, idx, hour, centre)
    if pool_cfg is None or not staffed:
        return
    hours = np.asarray(staffed, dtype=np.int64)
    agents = np.array([pool_cfg.agents_by_hour[h] for h in staffed], dtype=np.float64)
    s.ledger.append(
        "agent_capacity",
        s.day,
        np.full(hours.size, -1),
        duration_s=agents * 3600.0,
        cost=agents * pool_cfg.cost_per_staffed_hour,
    )
    seats = _Seats(s.day_index * 24.0 + hours, agents.astype(np.int64))
    order = np.lexsort((idx, priority, centre))
    idx, centre = idx[order], centre[order]
    on = np.isin(centre, hours)
    made = _first_round(s, idx[on], np.searchsorted(hours, centre[on]), hours, zone_shift, seats)
    for attempt in range(1, s.scenario.sim.max_redials + 1):
        made = _redials(s, made, attempt, hours, zone_shift, seats)


class _Seats:
    """The agents' seats of each staffed hour: when each is next free, hour by hour.

    The planned and carried calls are dispatched hour after hour, each hour starting
    from the seats the previous hour left (overruns included); the state after each
    hour is kept so that the redials of that hour, offered later, find the agent time
    the planned calls left.

    Args:
        start_h: float [H] start of each staffed hour on the run clock.
        agents: int [H] agents on shift in each staffed hour.
    """

    def __init__(self, start_h: np.ndarray, agents: np.ndarray) -> None:
        self.start_h = start_h.tolist()
        self.agents = agents.tolist()
        self.free_at_h = [0.0] * int(agents.max())
        self.after: list[list[float]] = []

    def next_hour(self, duration_s: np.ndarray) -> np.ndarray:
        """bool [M]: which of the next hour's queued calls start (hours in order)."""
        j = len(self.after)
        started = self._run(self.free_at_h, j, duration_s)
        self.after.append(self.free_at_h.copy())
        return started

    def later(self, duration_s: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """bool [M]: which calls (sorted by hour) start after the hours' first queues."""
        started = np.zeros(duration_s.size, dtype=bool)
        for j in np.unique(slot).tolist():
            sel = np.flatnonzero(slot == j)
            started[sel] = self._run(self.after[j], j, duration_s[sel])
        return started

    def _run(self, free: list[float], j: int, duration_s: np.ndarray) -> np.ndarray:
        start = dispatch(free, self.agents[j], self.start_h[j], (duration_s / 3600.0).tolist())
        return ~np.isnan(start)


def _try(
    s: SimState,
    idx: np.ndarray,
    slot: np.ndarray,
    hours: np.ndarray,
    zone_shift: np.ndarray,
    attempt: int,
) -> _Tried:
    """Gate calls at their hours (recording nothing) and draw the results of those that may go."""
    local = hours[slot] - zone_shift[idx]
    first = gate.hour_violations(s, idx, local)
    ok = first == -1
    row = np.where(ok, np.cumsum(ok) - 1, -1)
    go = idx[ok]
    if go.size == 0:
        return _Tried(idx, slot, local, first, row, None, np.zeros(0))
    channel = np.full(go.size, _AGENT_CALL, dtype=np.int64)
    result, duration = calls.draw_calls(s, go, channel, local[ok], attempt)
    return _Tried(idx, slot, local, first, row, result, duration)


def _apply(s: SimState, tried: _Tried, pos: np.ndarray) -> None:
    """Apply the calls at positions ``pos`` of ``tried`` (all allowed by the gate)."""
    if pos.size == 0 or tried.result is None:
        return
    row = tried.row[pos]
    channel = np.full(pos.size, _AGENT_CALL, dtype=np.int64)
    calls.apply_calls(
        s, tried.idx[pos], channel, tried.local[pos], tried.result.rows(row), tried.duration_s[row]
    )


def _outcome(tried: _Tried, pos: np.ndarray) -> np.ndarray:
    if tried.result is None:
        return np.zeros(0, dtype=np.int8)
    return tried.result.outcome[tried.row[pos]]


def _first_round(
    s: SimState,
    idx: np.ndarray,
    slot: np.ndarray,
    hours: np.ndarray,
    zone_shift: np.ndarray,
    seats: _Seats,
) -> _Made:
    """Planned calls (sorted by hour, priority): at their hour, or carried once to the next."""
    assert s.call_pool is not None
    pool = f"pool:{s.call_pool.name}"
    now = _try(s, idx, slot, hours, zone_shift, 0)
    later = _try(s, idx, np.minimum(slot + 1, hours.size - 1), hours, zone_shift, 0)
    gate.record_hour_blocks(s, idx, now.local, np.zeros(idx.size, dtype=bool), now.first)
    queue: list[np.ndarray] = []  # positions started, in queue order
    moved: list[np.ndarray] = []  # whether each was carried
    was_carried = np.zeros(idx.size, dtype=bool)
    late = np.zeros(idx.size, dtype=bool)
    carried = np.zeros(0, dtype=np.int64)
    for j in range(hours.size):
        was_carried[carried] = True
        carried = carried[later.row[carried] >= 0]
        planned = np.flatnonzero((slot == j) & (now.row >= 0))
        duration = np.concatenate(
            [later.duration_s[later.row[carried]], now.duration_s[now.row[planned]]]
        )
        go = seats.next_hour(duration)
        late[carried[~go[: carried.size]]] = True
        queue += [carried[go[: carried.size]], planned[go[carried.size :]]]
        moved += [np.ones(int(go[: carried.size].sum()), dtype=bool)]
        moved += [np.zeros(int(go[carried.size :].sum()), dtype=bool)]
        carried = planned[~go[carried.size :]]
    gate.record_hour_blocks(
        s,
        idx[was_carried],
        later.local[was_carried],
        np.zeros(int(was_carried.sum()), dtype=bool),
        later.first[was_carried],
    )
    records.record_overflow(s, idx[late], _AGENT_CALL, later.local[late], pool)
    records.record_overflow(
        s, idx[carried], _AGENT_CALL, hours[-1] + 1 - zone_shift[idx[carried]], pool
    )
    pos, is_moved = np.concatenate(queue), np.concatenate(moved)
    _apply(s, now, pos[~is_moved])
    _apply(s, later, pos[is_moved])
    outcome = np.zeros(pos.size, dtype=np.int8)
    outcome[~is_moved] = _outcome(now, pos[~is_moved])
    outcome[is_moved] = _outcome(later, pos[is_moved])
    return _Made(idx[pos], slot[pos] + is_moved, outcome)


def _redials(
    s: SimState,
    made: _Made,
    attempt: int,
    hours: np.ndarray,
    zone_shift: np.ndarray,
    seats: _Seats,
) -> _Made:
    """Redials (attempt ``attempt``) of last round's unanswered calls, in the next hour."""
    again = (
        np.isin(made.outcome, _UNANSWERED)
        & (s.borrowers.status[made.idx] == ACTIVE)
        & (made.slot + 1 < hours.size)
    )
    idx, slot = made.idx[again], made.slot[again] + 1
    tried = _try(s, idx, slot, hours, zone_shift, attempt)
    gate.record_hour_blocks(s, idx, tried.local, np.ones(idx.size, dtype=bool), tried.first)
    ok = np.flatnonzero(tried.row >= 0)
    started = ok[seats.later(tried.duration_s[tried.row[ok]], slot[ok])]
    _apply(s, tried, started)
    return _Made(idx[started], slot[started], _outcome(tried, started))


__all__ = ["agent_calls_by_round"]
