"""A plan file (Parquet or CSV, any origin) back into a :class:`collsim.plan.Plan`.

Used by ``validate-plan``: the file need not have a manifest.  Rows are matched to
the portfolio by ``account_id``; accounts absent from the file are "no contact".
Every bad cell is reported as a :class:`collsim.tables.Problem` naming the file,
row (1-based, header excluded), column and value; nothing is returned then.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collsim.plan import Plan
from collsim.portfolio import Portfolio
from collsim.tables import InputError, Problem, read_table
from collsim.vocab import CHANNELS, IS_TIMED

REQUIRED = ("plan_date", "account_id", "channel", "slot_start_local")
_SLOT_RE = r"^(?:[01]\d|2[0-3]):00$"
_DATE_RE = r"^\d{4}-\d{2}-\d{2}$"


class _Cells:
    """Collects problems of one plan file."""

    def __init__(self, table: pa.Table, file: str) -> None:
        self.table, self.file = table, file
        self.problems: list[Problem] = []

    def text(self, name: str) -> pa.Array:
        column = self.table.column(name).combine_chunks()
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
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


def _channels(cells: _Cells) -> np.ndarray:
    names = pa.array([*CHANNELS, "none"], type=pa.string())
    code = _np(pc.index_in(cells.text("channel"), value_set=names).fill_null(-2)).astype(np.int64)
    expected = ", ".join([*CHANNELS, "none"])
    cells.report("channel", code == -2, f"is not a channel; expected one of {expected}")
    return np.where(code == len(CHANNELS), -1, code)


def _hours(cells: _Cells, channel: np.ndarray) -> np.ndarray:
    text = cells.text("slot_start_local")
    ok = _np(pc.match_substring_regex(text, _SLOT_RE))
    hour = np.where(
        ok,
        _np(pc.cast(pc.utf8_slice_codeunits(pc.if_else(ok, text, "00:00"), 0, 2), pa.int64())),
        -1,
    )
    timed = (channel >= 0) & IS_TIMED[np.maximum(channel, 0)]
    cells.report("slot_start_local", timed & ~ok, "must be a slot start HH:00 for a timed channel")
    empty = _np(pc.equal(text, ""))
    cells.report(
        "slot_start_local", ~timed & (channel >= -1) & ~empty, "must be empty for this channel"
    )
    return np.where(timed, hour, -1)


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
        return dt.date.fromisoformat(values[0]) if values else None
    except ValueError:
        cells.report("plan_date", ok, "is not a calendar date")
        return None


def read_plan_as_plan(path: str | Path, portfolio: Portfolio) -> tuple[Plan, dt.date]:
    """Read a plan file into a Plan in portfolio order, and its plan date.

    Raises:
        InputError: unreadable file, missing columns, or one problem per bad cell
            (unknown account or channel, duplicate account, bad slot, bad date).
    """
    table = read_table(path)
    cells = _Cells(table, str(path))
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise InputError(
            [Problem(str(path), None, c, None, "required column is missing") for c in missing]
        )
    index = _accounts(cells, portfolio)
    channel = _channels(cells)
    hour = _hours(cells, channel)
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
    return plan, date


__all__ = ["REQUIRED", "read_plan_as_plan"]
