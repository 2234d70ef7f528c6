"""Per-account contact counts over the 7 local days D-6..D (the rules' memory)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collsim.history import History
from collsim.vocab import IS_TELEPHONE, N_CHANNELS

WINDOW_DAYS = 7
"""Length of the window: local days D-6..D; index 6 is day D."""

_SATURATE = np.iinfo(np.uint8).max


def _saturating_add(counts: np.ndarray, flat_index: np.ndarray) -> None:
    """Add 1 at each flat index of ``counts`` (repeats accumulate), saturating at 255."""
    if flat_index.size == 0:
        return
    cells, increments = np.unique(flat_index, return_counts=True)
    flat = counts.reshape(-1)
    flat[cells] = np.minimum(flat[cells].astype(np.int64) + increments, _SATURATE).astype(np.uint8)


@dataclass
class ContactWindow:
    """Per-account contact counts on local days D-6..D (index 6 = day D).

    Counts are ``uint8`` and saturate at 255.  Day numbers are local calendar days
    (days since 1970-01-01 in each account's own zone), so every day-counting rule
    counts local days.

    Attributes:
        day: D, the local day number the window ends on.
        attempts: uint8 [N, 7, C]: attempts per channel per local day (any outcome).
        conversations: uint8 [N, 7]: telephone conversations per local day.
    """

    day: int
    attempts: np.ndarray
    conversations: np.ndarray

    @property
    def n(self) -> int:
        """Number of accounts."""
        return int(self.attempts.shape[0])

    @classmethod
    def empty(cls, n: int, day: int) -> ContactWindow:
        """Return the window of ``n`` accounts with no contact, ending on local ``day``."""
        return cls(
            day=int(day),
            attempts=np.zeros((n, WINDOW_DAYS, N_CHANNELS), dtype=np.uint8),
            conversations=np.zeros((n, WINDOW_DAYS), dtype=np.uint8),
        )

    @classmethod
    def from_history(cls, history: History, n: int, day: int) -> ContactWindow:
        """Count the history rows of local days ``day-6..day`` per account.

        Rows outside the window are ignored.  A conversation counts only on a
        telephone channel (``agent_call``, ``voice_bot``).  Vectorised: one sort-based
        count over the rows of the window, no per-row Python loop.

        Args:
            history: contact attempts with local day numbers (see :class:`History`).
            n: number of accounts in the portfolio.
            day: D, the local day number.

        Raises:
            ValueError: an account index or channel code is out of range.
        """
        window = cls.empty(n, day)
        offset = np.asarray(history.local_day, dtype=np.int64) - (int(day) - WINDOW_DAYS + 1)
        rows = np.flatnonzero((offset >= 0) & (offset < WINDOW_DAYS))
        if rows.size == 0:
            return window
        account = np.asarray(history.account, dtype=np.int64)[rows]
        channel = np.asarray(history.channel, dtype=np.int64)[rows]
        _check_indices(account, channel, n)
        slot = offset[rows]
        _saturating_add(window.attempts, (account * WINDOW_DAYS + slot) * N_CHANNELS + channel)
        talk = np.asarray(history.conversation, dtype=bool)[rows] & IS_TELEPHONE[channel]
        _saturating_add(window.conversations, account[talk] * WINDOW_DAYS + slot[talk])
        return window

    def advance(self, day: int) -> None:
        """Move the window forward to local ``day`` in place (shift, zero the new days).

        Raises:
            ValueError: ``day`` is before the window's day.
        """
        shift = int(day) - self.day
        if shift < 0:
            raise ValueError(f"cannot move the contact window back from day {self.day} to {day}")
        if shift >= WINDOW_DAYS:
            self.attempts[:] = 0
            self.conversations[:] = 0
        elif shift > 0:
            self.attempts[:, : WINDOW_DAYS - shift] = self.attempts[:, shift:].copy()
            self.attempts[:, WINDOW_DAYS - shift :] = 0
            self.conversations[:, : WINDOW_DAYS - shift] = self.conversations[:, shift:].copy()
            self.conversations[:, WINDOW_DAYS - shift :] = 0
        self.day = int(day)

    def totals_before_today(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (int16 [N, C] attempts, int16 [N] conversations) on the days before D."""
        return _sum_days(self.attempts[:, :-1]), _sum_days(self.conversations[:, :-1])

    def record(self, account: np.ndarray, channel: np.ndarray, conversation: np.ndarray) -> None:
        """Add attempts made today (day D); repeated accounts accumulate.

        Used by the simulator within the day, so that the in-day gate
        (:meth:`RuleSet.first_violation`) sees earlier attempts of the same day.

        Args:
            account: int [M] account row indices.
            channel: int [M] channel codes.
            conversation: bool [M]; counted only for telephone channels.
        """
        account = np.asarray(account, dtype=np.int64).reshape(-1)
        channel = np.asarray(channel, dtype=np.int64).reshape(-1)
        talk = np.broadcast_to(np.asarray(conversation, dtype=bool), account.shape)
        _check_indices(account, channel, self.n)
        today = WINDOW_DAYS - 1
        _saturating_add(self.attempts, (account * WINDOW_DAYS + today) * N_CHANNELS + channel)
        talk = talk & IS_TELEPHONE[channel]
        _saturating_add(self.conversations, account[talk] * WINDOW_DAYS + today)


def _sum_days(counts: np.ndarray) -> np.ndarray:
    """int16: ``counts`` [N, D, ...] summed over days (one add per day: faster than sum)."""
    total = counts[:, 0].astype(np.int16)
    for d in range(1, counts.shape[1]):
        total += counts[:, d]
    return total


def _check_indices(account: np.ndarray, channel: np.ndarray, n: int) -> None:
    if account.size and (account.min() < 0 or account.max() >= n):
        raise ValueError(f"account index out of range 0..{n - 1}")
    if channel.size and (channel.min() < 0 or channel.max() >= N_CHANNELS):
        raise ValueError(f"channel code out of range 0..{N_CHANNELS - 1}")
