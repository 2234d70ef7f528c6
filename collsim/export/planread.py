"""A plan file (Parquet or CSV, any origin) back into a :class:`collsim.plan.Plan`.

Used by ``validate-plan``: the file need not have a manifest.  Rows are matched to
the portfolio by ``account_id``.  Every field a dialler executes is read: channel,
local slot start and end, time zone, UTC window, agent pool, offer and variant.
Every unreadable cell (unknown account, channel, offer or variant, a malformed slot,
time or date, a duplicate account) is reported as a :class:`collsim.tables.Problem`
naming the file, row (1-based, header excluded), column and value; nothing is
returned then (exit 2).  Readable values that contradict the inputs — an account
without a row, a time zone other than the portfolio's, a slot end or UTC window that
is not the slot's, another agent pool — are violations found by
:func:`field_violations` (exit 1), each under its own rule id.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collsim.compliance import Violation
from collsim.export.reader import unquote_formulas
from collsim.plan import OptionSpace, Plan, Resources
from collsim.portfolio import Portfolio, day_number
from collsim.tables import FIRST_DATE, LAST_DATE, InputError, Problem, read_table
from collsim.timeutil import local_to_utc_s, utc_to_local
from collsim.vocab import CHANNELS, IS_TIMED, OFFERS, VARIANTS, Channel

REQUIRED = (
    "plan_date",
    "account_id",
    "channel",
    "slot_start_local",
    "slot_end_local",
    "timezone",
    "window_start_utc",
    "window_end_utc",
    "agent_pool",
    "offer",
    "variant",
)
"""Columns ``validate-plan`` needs: every field that is executed."""

_SLOT_RE = r"^(?:[01]\d|2[0-3]):00$"
_END_RE = r"^(?:[01]\d|2[0-4]):00$"
_DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
_UTC_RE = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$"
_US_PER_S = 1_000_000

COVERAGE_RULE_ID = "plan.coverage"
TIMEZONE_RULE_ID = "plan.timezone"
SLOT_END_RULE_ID = "plan.slot_end"
WINDOW_RULE_ID = "plan.window_utc"
POOL_RULE_ID = "plan.agent_pool"


@dataclass
class PlanFile:
    """A plan file read back.

    Attributes:
        plan: one row per portfolio account (accounts without a row: no contact).
        date: the plan date.
        present: bool [N], the account has a row in the file.
        timezone: object [N], the file's time zone per account ("" if absent).
        end_hour: int [N], the local slot end hour (-1: empty).
        window_start_us, window_end_us: int [N], the UTC window (-1: null).
        agent_pool: object [N], the file's agent pool per account ("" if null).
    """

    plan: Plan
    date: dt.date
    present: np.ndarray
    timezone: np.ndarray
    end_hour: np.ndarray
    window_start_us: np.ndarray
    window_end_us: np.ndarray
    agent_pool: np.ndarray


class _Cells:
    """Collects problems of one plan file."""

    def __init__(self, table: pa.Table, file: str) -> None:
        self.table, self.file = table, file
        self.problems: list[Problem] = []

    def text(self, name: str) -> pa.Array:
        column = self.table.column(name).combine_chunks()
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if pa.types.is_timestamp(column.type):
            column = pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")
        return pc.cast(column, pa.string()).fill_null("")

    def report(self, name: str, bad: np.ndarray, message: str) -> None:
        rows = np.flatnonzero(bad)
        values = self.text(name).take(pa.array(rows)).to_pylist() if rows.size else []
        for row, value in zip(rows.tolist(), values, strict=True):
            self.problems.append(Problem(self.file, row + 1, name, value, message))


def _np(array: pa.Array) -> np.ndarray:
    return np.asarray(array.to_numpy(zero_copy_only=False))


def _accounts(cells: _Cells, portfolio: Portfolio) -> np.ndarray:
    ids = cells.text("account_id")
    known = pa.array(portfolio.account_id, type=pa.string())
    index = _np(pc.index_in(ids, value_set=known).fill_null(-1)).astype(np.int64)
    cells.report("account_id", index < 0, "is not an account in the portfolio")
    order = np.argsort(index, kind="stable")
    repeated = np.zeros(index.size, dtype=bool)
    same = (np.diff(index[order]) == 0) & (index[order][1:] >= 0)
    repeated[order[1:][same]] = True
    cells.report("account_id", repeated, "appears more than once in the plan")
    return index


def _enum(cells: _Cells, name: str, names: tuple[str, ...], what: str) -> np.ndarray:
    values = pa.array(list(names), type=pa.string())
    code = _np(pc.index_in(cells.text(name), value_set=values).fill_null(-1)).astype(np.int64)
    cells.report(name, code < 0, f"is not {what}; expected one of {', '.join(names)}")
    return code


def _channels(cells: _Cells) -> np.ndarray:
    code = _enum(cells, "channel", (*CHANNELS, "none"), "a channel")
    return np.where(code == len(CHANNELS), -1, np.where(code < 0, -2, code))


def _hour_of(text: pa.Array, ok: np.ndarray) -> np.ndarray:
    digits = pc.utf8_slice_codeunits(pc.if_else(pa.array(ok), text, "00:00"), 0, 2)
    return np.where(ok, _np(pc.cast(digits, pa.int64())), -1)


def _hours(cells: _Cells, name: str, pattern: str, timed: np.ndarray, what: str) -> np.ndarray:
    text = cells.text(name)
    ok = _np(pc.match_substring_regex(text, pattern))
    cells.report(name, timed & ~ok, f"must be {what} for a timed channel")
    empty = _np(pc.equal(text, ""))
    cells.report(name, ~timed & ~empty, "must be empty for this channel")
    return np.where(timed, _hour_of(text, ok), -1)


def _timestamps(cells: _Cells, name: str, timed: np.ndarray) -> np.ndarray:
    """int [rows]: epoch microseconds of a UTC time column (-1: empty/null)."""
    column = cells.table.column(name).combine_chunks()
    if pa.types.is_timestamp(column.type):
        if column.type.tz is None:
            cells.report(name, np.ones(len(column), bool), "must carry a time zone (UTC)")
            return np.full(len(column), -1, dtype=np.int64)
        micros = pc.cast(pc.cast(column, pa.timestamp("us", tz="UTC")), pa.int64())
        values = _np(micros.fill_null(-1)).astype(np.int64)
        cells.report(name, timed & (values < 0), "must be a UTC time for a timed channel")
        cells.report(name, ~timed & (values >= 0), "must be empty for this channel")
        return values
    text = cells.text(name)
    ok = _np(pc.match_substring_regex(text, _UTC_RE))
    empty = _np(pc.equal(text, ""))
    cells.report(name, ~ok & ~empty, "must be a time with a zone, e.g. 2026-03-09T13:00:00Z")
    cells.report(name, timed & empty, "must be a UTC time for a timed channel")
    cells.report(name, ~timed & ok, "must be empty for this channel")
    filled = pc.if_else(pa.array(ok), text, "1970-01-01T00:00:00Z")
    try:
        parsed = pc.cast(pc.cast(filled, pa.timestamp("us", tz="UTC")), pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        cells.problems.append(Problem(cells.file, None, name, None, f"unreadable times: {exc}"))
        return np.full(len(text), -1, dtype=np.int64)
    return np.where(ok, _np(parsed), -1).astype(np.int64)


def _priority(cells: _Cells) -> np.ndarray:
    n = cells.table.num_rows
    if "priority" not in cells.table.column_names:
        return np.ones(n, dtype=np.int64)
    text = pc.utf8_trim_whitespace(cells.text("priority"))
    ok = _np(pc.match_substring_regex(text, r"^\d{1,9}$"))
    cells.report("priority", ~ok, "must be a whole number >= 0")
    return _np(pc.cast(pc.if_else(ok, text, "0"), pa.int64())).astype(np.int64)


def _plan_date(cells: _Cells) -> dt.date | None:
    text = cells.text("plan_date")
    ok = _np(pc.match_substring_regex(text, _DATE_RE))
    cells.report("plan_date", ~ok, "must be a date YYYY-MM-DD")
    values = pc.unique(text.filter(pa.array(ok))).to_pylist()
    if len(values) > 1:
        cells.report("plan_date", _np(pc.not_equal(text, values[0])) & ok, "differs from row 1")
        return None
    try:
        date = dt.date.fromisoformat(values[0]) if values else None
    except ValueError:
        cells.report("plan_date", ok, "is not a calendar date")
        return None
    if date is not None and not FIRST_DATE <= date <= LAST_DATE:
        cells.report("plan_date", ok, f"is outside {FIRST_DATE}..{LAST_DATE}")
        return None
    return date


def _scatter(n: int, index: np.ndarray, values: np.ndarray, fill: object) -> np.ndarray:
    out = np.full(n, fill, dtype=values.dtype if values.dtype != object else object)
    out[index] = values
    return out


def read_plan_file(path: str | Path, portfolio: Portfolio) -> PlanFile:
    """Read every executed field of a plan file, in portfolio order.

    Raises:
        InputError: unreadable file, missing columns, or one problem per bad cell.
    """
    table = read_table(path)
    if str(path).lower().endswith(".csv"):
        table = unquote_formulas(table)
    cells = _Cells(table, str(path))
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise InputError(
            [Problem(str(path), None, c, None, "required column is missing") for c in missing]
        )
    index = _accounts(cells, portfolio)
    channel = _channels(cells)
    timed = (channel >= 0) & IS_TIMED[np.maximum(channel, 0)]
    hour = _hours(cells, "slot_start_local", _SLOT_RE, timed, "a slot start HH:00")
    end = _hours(cells, "slot_end_local", _END_RE, timed, "a slot end HH:00")
    start_us = _timestamps(cells, "window_start_utc", timed)
    end_us = _timestamps(cells, "window_end_utc", timed)
    offer = _enum(cells, "offer", OFFERS, "an offer")
    variant = _enum(cells, "variant", VARIANTS, "a message variant")
    priority = _priority(cells)
    date = _plan_date(cells)
    if cells.problems or date is None:
        if not cells.problems:
            cells.problems.append(
                Problem(str(path), None, "plan_date", None, "the plan has no rows")
            )
        raise InputError(sorted(cells.problems, key=lambda p: p.row or 0))
    n = portfolio.n
    plan = Plan.no_contact(n, "validate-plan", "not in the plan file")
    plan.reasons = ("not in the plan file", "from the plan file")
    plan.channel[index] = channel
    plan.slot_hour[index] = hour
    plan.priority[index] = priority
    plan.reason[index] = 1
    plan.offer[index] = offer
    plan.variant[index] = variant
    present = np.zeros(n, dtype=bool)
    present[index] = True
    pools = _np(cells.text("agent_pool")).astype(object)
    zones = _np(cells.text("timezone")).astype(object)
    return PlanFile(
        plan=plan,
        date=date,
        present=present,
        timezone=_scatter(n, index, zones, ""),
        end_hour=_scatter(n, index, end, -1),
        window_start_us=_scatter(n, index, start_us, -1),
        window_end_us=_scatter(n, index, end_us, -1),
        agent_pool=_scatter(n, index, pools, ""),
    )


def read_plan_as_plan(path: str | Path, portfolio: Portfolio) -> tuple[Plan, dt.date]:
    """Read a plan file into a Plan in portfolio order, and its plan date."""
    read = read_plan_file(path, portfolio)
    return read.plan, read.date


# ----------------------------------------------------------------------------- fields
def _violations(
    portfolio: Portfolio, rows: np.ndarray, rule_id: str, sentences: list[str]
) -> list[Violation]:
    return [
        Violation(str(portfolio.account_id[r]), rule_id, s)
        for r, s in zip(rows.tolist(), sentences, strict=True)
    ]


def _utc_text(micros: int) -> str:
    if micros < 0:
        return "empty"
    stamp = dt.datetime.fromtimestamp(micros / _US_PER_S, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def expected_pools(
    plan: Plan, portfolio: Portfolio, options: OptionSpace, resources: Resources
) -> np.ndarray:
    """object [N]: the agent pool of each planned ``agent_call`` ("" otherwise)."""
    out = np.full(plan.n, "", dtype=object)
    call = np.flatnonzero(
        (plan.channel == int(Channel.AGENT_CALL)) & np.isin(plan.slot_hour, options.slot_hours)
    )
    if call.size and resources.pool_of_resource:
        option = options.encode(plan.channel[call], plan.slot_hour[call])
        resource = resources.resource_by_zone[portfolio.timezone[call], option]
        pools = np.array([*resources.pool_of_resource, None], dtype=object)
        named = pools[np.where(resource >= 0, resource, len(pools) - 1)]
        out[call] = np.where(named == None, "", named)  # noqa: E711 - element-wise
    return out


def executed_hours(read: PlanFile, portfolio: Portfolio) -> list[np.ndarray]:
    """int [N] arrays of the local hours a dialler would execute other than the slot start
    (-1 where the same or none): the hour the UTC window starts in on the plan date, and
    the last hour of a window whose local end is not the slot's."""
    plan, day = read.plan, day_number(read.date)
    timed = read.window_start_us >= 0
    local_day, local_hour = utc_to_local(
        portfolio.timezones, portfolio.timezone, read.window_start_us // _US_PER_S
    )
    from_utc = np.where(timed & (local_day == day) & (local_hour != plan.slot_hour), local_hour, -1)
    last = read.end_hour - 1
    from_end = np.where((read.end_hour > 0) & (last != plan.slot_hour) & (last >= 0), last, -1)
    return [from_utc, from_end]


def field_violations(
    read: PlanFile, portfolio: Portfolio, options: OptionSpace, resources: Resources
) -> list[Violation]:
    """Violations of the executed fields against the inputs (not the rule set).

    ``plan.coverage``: an account of the portfolio has no row.  ``plan.timezone``: the
    row's zone is not the portfolio's.  ``plan.slot_end``: the local end is not one
    hour after the start.  ``plan.window_utc``: the UTC window is not the local slot on
    the plan date.  ``plan.agent_pool``: the pool is not the one the slot's capacity
    belongs to (or a pool is set for another channel).
    """
    plan = read.plan
    found: list[Violation] = []
    absent = np.flatnonzero(~read.present)
    found += _violations(portfolio, absent, COVERAGE_RULE_ID, [
        "The account has no row in the plan; every account must have exactly one."
    ] * absent.size)  # fmt: skip
    zone_names = np.asarray(portfolio.timezones, dtype=object)[portfolio.timezone]
    wrong_zone = np.flatnonzero(read.present & (read.timezone != zone_names))
    found += _violations(portfolio, wrong_zone, TIMEZONE_RULE_ID, [
        f"Time zone {read.timezone[r]!r} is not the account's {zone_names[r]!r}."
        for r in wrong_zone.tolist()
    ])  # fmt: skip
    timed = (plan.channel >= 0) & IS_TIMED[np.maximum(plan.channel, 0)]
    want_end = np.where(timed, plan.slot_hour + 1, -1)
    bad_end = np.flatnonzero(read.present & (read.end_hour != want_end))
    found += _violations(portfolio, bad_end, SLOT_END_RULE_ID, [
        f"Local window ends at {read.end_hour[r]:02d}:00, not one hour after its start "
        f"{plan.slot_hour[r]:02d}:00." for r in bad_end.tolist()
    ])  # fmt: skip
    day = day_number(read.date)
    hour = np.where(timed, plan.slot_hour, 0)
    start = local_to_utc_s(portfolio.timezones, portfolio.timezone, day, hour) * _US_PER_S
    stop = local_to_utc_s(portfolio.timezones, portfolio.timezone, day, hour + 1) * _US_PER_S
    want_start, want_stop = np.where(timed, start, -1), np.where(timed, stop, -1)
    bad_window = np.flatnonzero(
        read.present & ((read.window_start_us != want_start) | (read.window_end_us != want_stop))
    )
    found += _violations(portfolio, bad_window, WINDOW_RULE_ID, [
        f"UTC window {_utc_text(read.window_start_us[r])}..{_utc_text(read.window_end_us[r])} "
        f"is not the local slot on {read.date} "
        f"({_utc_text(want_start[r])}..{_utc_text(want_stop[r])})." for r in bad_window.tolist()
    ])  # fmt: skip
    pools = expected_pools(plan, portfolio, options, resources)
    bad_pool = np.flatnonzero(read.present & (read.agent_pool != pools))
    found += _violations(portfolio, bad_pool, POOL_RULE_ID, [
        f"Agent pool {read.agent_pool[r] or 'empty'!r} is not the slot's pool "
        f"{pools[r] or 'empty'!r}." for r in bad_pool.tolist()
    ])  # fmt: skip
    return found


def at_hours(plan: Plan, hours: np.ndarray) -> Plan:
    """The plan's contacts moved to ``hours`` where ``hours`` >= 0; no contact elsewhere."""
    moved = hours >= 0
    channel = np.where(moved, plan.channel, -1).astype(plan.channel.dtype)
    return dataclasses.replace(
        plan, channel=channel, slot_hour=np.where(moved, hours, -1).astype(plan.slot_hour.dtype)
    )


__all__ = [
    "REQUIRED",
    "PlanFile",
    "at_hours",
    "executed_hours",
    "field_violations",
    "read_plan_as_plan",
    "read_plan_file",
]
