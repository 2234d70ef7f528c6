"""The SimPy side of a run: agents, queues, handle times, the post and the courts.

Only work that queues for a scarce resource becomes SimPy events: agent calls
(pool agents on shifts, a priority queue per pool), field visits (field agents),
letters in the post and legal cases that take weeks.  Per-account arithmetic
stays in numpy in the stages of :mod:`collsim.sim.stages`.

Time is in hours since 00:00 of the first simulated day in the centre's zone.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import simpy


@dataclass
class HourResult:
    """What happened to a batch of calls offered to a pool in one centre hour."""

    started: np.ndarray  # bool [M]: an agent picked the call up before the hour ended
    start_h: np.ndarray  # float64 [M]: start time (hours since run start), NaN if not started


class AgentPool:
    """A pool of agents on shifts serving each hour's queue of calls in order.

    The pool is the discrete-event model of a first-come-first-served queue with
    as many servers as agents on shift: whenever an agent is free (at the hour's
    start, or when their call ends) they take the next call in priority order and
    hold it for its handle time, until the queue is empty or the hour has ended.
    An agent still busy when a new hour starts begins that hour when the call ends
    (calls are never cut off), so overruns eat into the next hour as in a real centre.

    The events (an agent becoming free) are kept in a heap ordered by (time, order
    scheduled) — the order SimPy itself processes events in — so the start times are
    identical, bit for bit, to one SimPy process per agent and one timeout per call
    (:class:`SimPyAgentPool`, the reference kept for the tests), at a tenth of the
    cost: at 1M accounts a day has ~140,000 agent calls.  The SimPy clock still
    advances hour by hour, so the post, field team and courts interleave as before.
    """

    def __init__(self, env: simpy.Environment, name: str, agents_by_hour: dict[int, int]) -> None:
        self.env = env
        self.name = name
        self.agents_by_hour = agents_by_hour
        self.size = max(agents_by_hour.values(), default=0)
        self.free_at_h = [0.0] * self.size  # when each agent seat is next free

    def run_hour(self, start_h: float, centre_hour: int, handle_s: np.ndarray) -> HourResult:
        """Offer calls (in priority order) to the agents on shift in one hour; run it.

        Args:
            start_h: the hour's start time on the run clock.
            centre_hour: the centre-local hour (selects the shift size).
            handle_s: handle time of each call in seconds, in priority order.

        Returns:
            Which calls started before the hour ended, and when.
        """
        if self.env.now < start_h:
            self.env.run(until=start_h)
        start = dispatch(
            self.free_at_h,
            min(self.agents_by_hour.get(centre_hour, 0), self.size),
            start_h,
            (handle_s / 3600.0).tolist(),
        )
        self.env.run(until=start_h + 1.0)
        return HourResult(started=~np.isnan(start), start_h=start)


def dispatch(
    free_at_h: list[float], n_seats: int, start_h: float, handle_h: list[float]
) -> np.ndarray:
    """Start time of each call (NaN: not started in the hour); updates ``free_at_h``.

    Args:
        free_at_h: when each agent seat is next free (hours on the run clock).
        n_seats: agents on shift this hour (seats ``0..n_seats-1``).
        start_h: the hour's start on the run clock.
        handle_h: handle time of each call in hours, in queue order.
    """
    end_h = start_h + 1.0
    n_calls = len(handle_h)
    started_at = [float("nan")] * n_calls
    events: list[tuple[float, int, int]] = []  # (time an agent is free, order, seat)
    call = 0
    for seat in range(n_seats):
        free_h = free_at_h[seat]
        if free_h > start_h:
            events.append((start_h + (free_h - start_h), len(events), seat))
        elif call < n_calls:
            started_at[call] = start_h
            free_at_h[seat] = start_h + handle_h[call]
            events.append((free_at_h[seat], len(events), seat))
            call += 1
    order = len(events)
    heapq.heapify(events)
    replace = heapq.heapreplace
    while events and call < n_calls:
        now_h, _, seat = events[0]
        if now_h >= end_h:
            break
        started_at[call] = now_h
        free_h = now_h + handle_h[call]
        free_at_h[seat] = free_h
        replace(events, (free_h, order, seat))
        order += 1
        call += 1
    return np.asarray(started_at, dtype=np.float64)


class SimPyAgentPool(AgentPool):
    """Reference model of :class:`AgentPool`: one SimPy process per agent, one event per call.

    Kept so the tests can prove the heap dispatch gives the same start times.
    """

    def _agent(
        self,
        seat: int,
        queue: deque[int],
        handle_h: list[float],
        end_h: float,
        start_h: list[float],
    ) -> Generator[simpy.Event, object, None]:
        env = self.env
        if self.free_at_h[seat] > env.now:
            yield env.timeout(self.free_at_h[seat] - env.now)
        while queue and env.now < end_h:
            call = queue.popleft()
            start_h[call] = env.now
            self.free_at_h[seat] = env.now + handle_h[call]
            yield env.timeout(handle_h[call])

    def run_hour(self, start_h: float, centre_hour: int, handle_s: np.ndarray) -> HourResult:
        """As :meth:`AgentPool.run_hour`, with one SimPy timeout per call."""
        env = self.env
        if env.now < start_h:
            env.run(until=start_h)
        m = int(handle_s.shape[0])
        handle_h = (handle_s / 3600.0).tolist()
        started_at = [float("nan")] * m
        queue = deque(range(m))
        for seat in range(min(self.agents_by_hour.get(centre_hour, 0), self.size)):
            env.process(self._agent(seat, queue, handle_h, start_h + 1.0, started_at))
        env.run(until=start_h + 1.0)
        start = np.asarray(started_at, dtype=np.float64)
        return HourResult(started=~np.isnan(start), start_h=start)


class Post:
    """Letters in the post: each day's letters travel together and arrive after the delay.

    One SimPy process per batch posted (not per letter): the letters of a batch
    arrive at the same time and in the order posted, as separate processes would.
    Items carry the row's generation (see ``Simulation.replace_accounts``): an item
    addressed to a row whose account has since been replaced is not delivered.
    """

    def __init__(self, env: simpy.Environment, generation: np.ndarray) -> None:
        self.env = env
        self.generation = generation
        self.arrived: list[np.ndarray] = []

    def _deliver(
        self, accounts: np.ndarray, generations: np.ndarray, delay_h: float
    ) -> Generator[simpy.Event, object, None]:
        yield self.env.timeout(delay_h)
        self.arrived.append(accounts[self.generation[accounts] == generations])

    def send(self, accounts: np.ndarray, delay_h: float) -> None:
        """Post one item to each account."""
        accounts = np.asarray(accounts, dtype=np.int64)
        if accounts.size:
            self.env.process(self._deliver(accounts, self.generation[accounts], delay_h))

    def collect(self) -> np.ndarray:
        """Return (and forget) the accounts whose post has arrived, in arrival order."""
        arrived = np.concatenate([np.zeros(0, dtype=np.int64), *self.arrived])
        self.arrived = []
        return arrived


class Courts:
    """Legal cases: filed, judged after a fixed duration, then garnishment instalments.

    Each case is a SimPy process: a timeout until judgment; a winning case with a
    recovery spread over instalments goes on with one timeout per further instalment
    (:meth:`garnish`).  Like the post, a case of a row whose account was replaced is
    dropped.
    """

    def __init__(self, env: simpy.Environment, duration_h: float, generation: np.ndarray) -> None:
        self.env = env
        self.duration_h = duration_h
        self.generation = generation
        self.judged: list[int] = []
        self.instalments: list[int] = []

    def _garnishment(
        self, account: int, generation: int, count: int, interval_h: float
    ) -> Generator[simpy.Event, object, None]:
        for k in range(count):
            yield self.env.timeout(interval_h - 0.5 if k == 0 else interval_h)
            if self.generation[account] != generation:
                return
            self.instalments.append(account)

    def garnish(self, accounts: np.ndarray, count: int, interval_h: float) -> None:
        """Schedule ``count`` further instalments per account, ``interval_h`` apart.

        Instalments fall due just before the morning ``interval_h`` after the current
        one (so the engine collects them that morning).
        """
        if count <= 0:
            return
        for account, generation in zip(
            accounts.tolist(), self.generation[accounts].tolist(), strict=True
        ):
            self.env.process(self._garnishment(account, generation, count, interval_h))

    def collect_instalments(self) -> np.ndarray:
        """Return (and forget) the accounts with a garnishment instalment due."""
        due = np.array(sorted(self.instalments), dtype=np.int64)
        self.instalments = []
        return due

    def _case(self, account: int, generation: int) -> Generator[simpy.Event, object, None]:
        yield self.env.timeout(self.duration_h)
        if self.generation[account] == generation:
            self.judged.append(account)

    def file(self, accounts: np.ndarray) -> None:
        """File one case per account."""
        for account, generation in zip(
            accounts.tolist(), self.generation[accounts].tolist(), strict=True
        ):
            self.env.process(self._case(account, generation))

    def collect(self) -> np.ndarray:
        """Return (and forget) the accounts whose cases were judged."""
        judged = np.array(sorted(self.judged), dtype=np.int64)
        self.judged = []
        return judged


class FieldTeam:
    """Field agents: each visit takes a fixed time; visits start at their slot or later."""

    def __init__(self, env: simpy.Environment, agents: int, visit_h: float) -> None:
        self.env = env
        self.visit_h = visit_h
        self.resource = simpy.Resource(env, capacity=max(agents, 1))
        self.agents = agents

    def _visit(
        self, i: int, at_h: float, deadline_h: float, started: np.ndarray
    ) -> Generator[simpy.Event, object, None]:
        yield self.env.timeout(max(at_h - self.env.now, 0.0))
        with self.resource.request() as request:
            fired = yield request | self.env.timeout(max(deadline_h - self.env.now, 0.0))
            if request in fired:  # type: ignore[operator]
                started[i] = True
                yield self.env.timeout(self.visit_h)

    def schedule_day(
        self, day_start_h: float, at_centre_hour: np.ndarray, end_centre_hour: float
    ) -> np.ndarray:
        """Schedule the day's visits (in priority order) before the day is run.

        Returns:
            bool [M], filled in as the run clock passes: the visit started in time.
        """
        started = np.zeros(at_centre_hour.shape[0], dtype=bool)
        if self.agents == 0:
            return started
        deadline = day_start_h + end_centre_hour
        for i, hour in enumerate(at_centre_hour.tolist()):
            self.env.process(self._visit(i, day_start_h + hour, deadline, started))
        return started
