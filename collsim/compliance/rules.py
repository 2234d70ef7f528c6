"""Rule types: each rule answers ``forbids(ctx, channel, hour)`` with numpy broadcasting.

The same ``forbids`` code serves the full mask and the per-contact checks, so the mask,
:meth:`RuleSet.first_violation` and :meth:`RuleSet.explain` can never disagree:

* mask mode: account columns from the context are shaped ``[N, 1, 1]``, ``channel`` is
  ``[1, C, 1]`` and ``hour`` is ``[1, 1, S]``; a rule returns a bool array that
  broadcasts to ``[N, C, S]`` (usually ``[N, C, 1]`` or ``[1, C, S]``, never more than
  it needs);
* triple mode: account columns, ``channel`` and ``hour`` are aligned 1-D arrays ``[M]``.

``hour`` is a local slot start hour 0..23, or -1 for untimed channels (letter, legal);
hour rules never apply to untimed channels.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

import numpy as np

from collsim.compliance.window import WINDOW_DAYS, ContactWindow
from collsim.portfolio import Portfolio, date_of
from collsim.vocab import CHANNELS, IS_TELEPHONE, IS_TIMED, N_CHANNELS

WEEKDAYS: tuple[str, ...] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
N_HOURS = 24


def channel_table(channels: Iterable[int]) -> np.ndarray:
    """Return bool [C] that is True at the given channel codes."""
    table = np.zeros(N_CHANNELS, dtype=bool)
    table[list(channels)] = True
    return table


def channel_list(table: np.ndarray) -> str:
    """Return 'a, b and c' for the channels set in a bool [C] table."""
    names = [CHANNELS[c] for c in np.flatnonzero(table)]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


class Context:
    """What rules read on day D: account columns and window counts, shaped for broadcasting.

    Args:
        portfolio: the accounts.
        window: contact counts ending on day D.
        rows: ``None`` for the full mask (account axis ``[N, 1, 1]``), or int [M] account
            rows for triple mode (account axis ``[M]``).
    """

    def __init__(
        self, portfolio: Portfolio, window: ContactWindow, rows: np.ndarray | None
    ) -> None:
        if window.n != portfolio.n:
            raise ValueError(f"contact window has {window.n} accounts, portfolio has {portfolio.n}")
        self.portfolio = portfolio
        self.window = window
        self.rows = rows
        self.day = window.day
        self.date: dt.date = date_of(window.day)
        self._account_shape = (portfolio.n, 1, 1) if rows is None else (int(rows.shape[0]),)
        self._cache: dict[Any, np.ndarray] = {}

    def column(self, name: str) -> np.ndarray:
        """Return a portfolio column, shaped on the account axis."""
        value = getattr(self.portfolio, name)
        if self.rows is not None:
            value = value[self.rows]
        return np.asarray(value).reshape(self._account_shape)

    def _window_rows(self, array: np.ndarray) -> np.ndarray:
        return array if self.rows is None else array[self.rows]

    def attempts(self, channels: np.ndarray, days: int) -> np.ndarray:
        """Return attempts on the given channels (bool [C]) over the last ``days`` days (to D)."""
        key = ("attempts", channels.tobytes(), days)
        if key not in self._cache:
            codes = np.flatnonzero(channels)
            recent = self._window_rows(self.window.attempts)[:, WINDOW_DAYS - days :, :]
            if codes.size and codes[-1] - codes[0] + 1 == codes.size:
                picked = recent[:, :, codes[0] : codes[-1] + 1]
            else:
                picked = recent[:, :, codes]
            self._cache[key] = picked.sum(axis=(1, 2), dtype=np.int32).reshape(self._account_shape)
        return self._cache[key]

    def conversations(self, days: int) -> np.ndarray:
        """Return telephone conversations over the last ``days`` days (to D)."""
        key = ("conversations", days)
        if key not in self._cache:
            recent = self._window_rows(self.window.conversations)[:, WINDOW_DAYS - days :]
            self._cache[key] = recent.sum(axis=1, dtype=np.int32).reshape(self._account_shape)
        return self._cache[key]

    def per_channel(self, table: np.ndarray, channel: np.ndarray) -> np.ndarray:
        """Pick an account × channel table ([N or M, C]) at ``channel``, shaped for broadcasting."""
        if self.rows is None:
            if table.shape[0] != self.portfolio.n:
                raise ValueError("account × channel table has the wrong number of accounts")
            return table[:, channel.reshape(-1)][:, :, None]
        return table[np.arange(table.shape[0]), channel]


class Rule(ABC):
    """One contact rule with a stable id and a sentence a compliance officer understands."""

    def __init__(self, rule_id: str, sentence: str) -> None:
        self.rule_id = rule_id
        self.sentence = sentence

    @abstractmethod
    def forbids(self, ctx: Context, channel: np.ndarray, hour: np.ndarray) -> np.ndarray:
        """Return bool (True = forbidden), broadcastable with accounts, ``channel``, ``hour``."""

    def allowed_hours(self) -> np.ndarray:
        """Return bool [24]: the local hours this rule allows for a timed channel (default all)."""
        return np.ones(N_HOURS, dtype=bool)


class HoursRule(Rule):
    """Timed contacts only in slots ``min_hour <= h <= max_hour`` (untimed channels exempt)."""

    def __init__(
        self, rule_id: str, sentence: str, min_hour: int, max_hour: int, channels: np.ndarray
    ) -> None:
        super().__init__(rule_id, sentence)
        self.min_hour = min_hour
        self.max_hour = max_hour
        self.applies = channels & IS_TIMED
        # Index 24 (reached by hour -1 or any hour outside 0..23): a timed contact
        # without a valid hour is forbidden.
        self._allowed = np.zeros(N_HOURS + 1, dtype=bool)
        self._allowed[min_hour : max_hour + 1] = True

    def forbids(self, ctx: Context, channel: np.ndarray, hour: np.ndarray) -> np.ndarray:
        index = np.where((hour >= 0) & (hour < N_HOURS), hour, N_HOURS)
        return self.applies[channel] & ~self._allowed[index]

    def allowed_hours(self) -> np.ndarray:
        return self._allowed[:N_HOURS].copy()


class _CountCapRule(Rule):
    """A count over the last ``days`` local days reaching ``limit`` forbids ``channels``."""

    def __init__(
        self, rule_id: str, sentence: str, channels: np.ndarray, days: int, limit: int
    ) -> None:
        super().__init__(rule_id, sentence)
        self.channels = channels
        self.days = days
        self.limit = limit


class AttemptsCapRule(_CountCapRule):
    """Attempts on a channel group over the last ``days`` days >= ``limit`` forbid the group."""

    def forbids(self, ctx: Context, channel: np.ndarray, hour: np.ndarray) -> np.ndarray:
        return (ctx.attempts(self.channels, self.days) >= self.limit) & self.channels[channel]


class ConversationsCapRule(_CountCapRule):
    """Telephone conversations over the last ``days`` days >= ``limit`` forbid ``channels``."""

    def forbids(self, ctx: Context, channel: np.ndarray, hour: np.ndarray) -> np.ndarray:
        return (ctx.conversations(self.days) >= self.limit) & self.channels[channel]


class UnansweredCapRule(_CountCapRule):
    """Telephone attempts without a conversation over the last ``days`` days >= ``limit``."""

    def forbids(self, ctx: Context, channel: np.ndarray, hour: np.ndarray) -> np.ndarray:
        unanswered = ctx.attempts(IS_TELEPHONE, self.days) - ctx.conversations(self.days)
        return (unanswered >= self.limit) & self.channels[channel]


class FlagRule(Rule):
    """An account flag equal to ``value`` forbids the channels set in ``forbidden`` (bool [C])."""

    def __init__(
        self, rule_id: str, sentence: str, flag: str, value: bool, forbidden: np.ndarray
    ) -> None:
        super().__init__(rule_id, sentence)
        self.flag = flag
        self.value = value
        self.forbidden = forbidden

    def forbids(self, ctx: Context, channel: np.ndarray, hour: np.ndarray) -> np.ndarray:
        flag = ctx.column(self.flag)
        hit = flag if self.value else ~flag
        return hit & self.forbidden[channel]


class FlagMapRule(Rule):
    """Several flags, each forbidding its own channels (e.g. opt-outs)."""

    def __init__(
        self, rule_id: str, sentence: str, forbidden_by_flag: dict[str, np.ndarray]
    ) -> None:
        super().__init__(rule_id, sentence)
        self.forbidden_by_flag = forbidden_by_flag

    def forbids(self, ctx: Context, channel: np.ndarray, hour: np.ndarray) -> np.ndarray:
        result: np.ndarray | None = None
        for flag, forbidden in self.forbidden_by_flag.items():
            part = ctx.column(flag) & forbidden[channel]
            result = part if result is None else result | part
        return result if result is not None else np.zeros_like(channel, dtype=bool)


class ReachRule(Rule):
    """A channel needs its reachability flag (:meth:`Portfolio.reachable`)."""

    def forbids(self, ctx: Context, channel: np.ndarray, hour: np.ndarray) -> np.ndarray:
        return ~ctx.per_channel(ctx.portfolio.reachable(ctx.rows), channel)


class MinDpdRule(Rule):
    """No contact on ``channels`` while the account is below ``min_dpd`` days past due.

    The scenario's ``legal.min_dpd`` (no litigation before N DPD) is such a rule,
    added by the simulator to the scenario's rule set (rule id ``legal.min_dpd``).
    """

    def __init__(self, rule_id: str, sentence: str, channels: np.ndarray, min_dpd: int) -> None:
        super().__init__(rule_id, sentence)
        self.channels = channels
        self.min_dpd = min_dpd

    def forbids(self, ctx: Context, channel: np.ndarray, hour: np.ndarray) -> np.ndarray:
        return (ctx.column("dpd") < self.min_dpd) & self.channels[channel]


class QuietDaysRule(Rule):
    """No contact on ``channels`` on given weekdays or dates (the local date of day D)."""

    def __init__(
        self,
        rule_id: str,
        sentence: str,
        weekdays: frozenset[int],
        dates: frozenset[dt.date],
        channels: np.ndarray,
    ) -> None:
        super().__init__(rule_id, sentence)
        self.weekdays = weekdays
        self.dates = dates
        self.channels = channels

    def is_quiet(self, date: dt.date) -> bool:
        """Return whether ``date`` is a quiet day."""
        return date.weekday() in self.weekdays or date in self.dates

    def forbids(self, ctx: Context, channel: np.ndarray, hour: np.ndarray) -> np.ndarray:
        return self.channels[channel] & self.is_quiet(ctx.date)


class NoteRule(Rule):
    """A documented obligation the planner meets by construction; forbids no planned contact."""

    def forbids(self, ctx: Context, channel: np.ndarray, hour: np.ndarray) -> np.ndarray:
        return np.zeros_like(channel, dtype=bool)


class TreatmentRule(Rule):
    """An account flag equal to ``value`` forbids some offers and/or variants.

    A treatment rule never forbids a contact (``forbids`` is all False); it answers
    :meth:`forbids_treatment` for aligned (account, offer, variant) triples.  Offer
    ``none`` and variant ``standard`` are never forbidden.
    """

    def __init__(
        self,
        rule_id: str,
        sentence: str,
        flag: str,
        value: bool,
        offers: np.ndarray,
        variants: np.ndarray,
    ) -> None:
        super().__init__(rule_id, sentence)
        self.flag = flag
        self.value = value
        self.offers = offers
        self.variants = variants

    def forbids(self, ctx: Context, channel: np.ndarray, hour: np.ndarray) -> np.ndarray:
        return np.zeros_like(channel, dtype=bool)

    def forbids_treatment(self, ctx: Context, offer: np.ndarray, variant: np.ndarray) -> np.ndarray:
        """Return bool [M]: the rule forbids offer/variant for the context's rows."""
        flag = ctx.column(self.flag)
        hit = flag if self.value else ~flag
        return hit & (self.offers[offer] | self.variants[variant])
