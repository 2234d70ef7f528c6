"""Reading and writing the portfolio and contact-history files (docs/input_formats.md).

Files are CSV or Parquet, chosen by extension (``.csv``, ``.parquet``, ``.pq``).
Every cell is validated with vectorised pyarrow/numpy operations; a bad file is
rejected as a whole with an :class:`InputError` that lists one :class:`Problem` per
bad cell or column, each naming the file, the row (1-based, header excluded), the
column and the offending value.  Nothing is loaded when a file has a problem.

CSV files are read with every column as text, so that a bad value is reported
rather than crashing the reader; Parquet files may use native types (numbers,
booleans, dates, timestamps, dictionary-encoded text), which are converted and
checked the same way.  Writers go through :func:`collsim.io.atomic_write`: a
temporary file beside the target, renamed on success, removed on failure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from collsim.history import History
from collsim.io import atomic_write
from collsim.portfolio import FLAG_COLUMNS, Portfolio, day_number
from collsim.timeutil import local_to_utc_s, utc_to_local
from collsim.vocab import CHANNELS, OUTCOMES

FIRST_DATE = dt.date(2000, 1, 1)
LAST_DATE = dt.date(2099, 12, 31)
"""The range of dates accepted: plan dates, history timestamps (local day), promise dates."""

_FLAG_MEANINGS = {
    "has_phone": "the account has a landline or any phone number (reach for calls)",
    "has_mobile": "the account has a mobile number (reach for calls and SMS)",
    "has_email": "the account has an e-mail address",
    "has_app": "the borrower has the lender's app (reach for app push)",
    "has_address": "the account has a postal address (letters, field visits, legal)",
    "consent_autodial": "prior consent to autodialled or prerecorded calls and texts",
    "sms_opt_out": "the borrower opted out of SMS",
    "email_opt_out": "the borrower opted out of e-mail",
    "cease_communication": "the borrower asked to stop all communication",
    "dispute_open": "an unresolved dispute",
    "hardship_plan": "on an agreed hardship or payment plan",
    "vulnerable": "flagged vulnerable customer",
}

PORTFOLIO_COLUMN_RULES: dict[str, tuple[str, str, str]] = {
    "account_id": ("text", "required", "non-empty, unique after trimming surrounding white "
                   "space (Unicode NFC); no control characters; the only personal identifier"),
    "product": ("text", "required", "e.g. `card`, `personal_loan`, `bnpl`"),
    "balance": ("number", "required", "finite, >= 0"),
    "amount_due": ("number", "required", "finite, >= 0"),
    "dpd": ("whole number", "required", ">= 0: days past due"),
    "timezone": ("text", "required", "a valid IANA zone, e.g. `America/Chicago`"),
    **{name: ("boolean", "required", meaning) for name, meaning in _FLAG_MEANINGS.items()},
    "risk_score": ("number", "optional", "in [0, 1]: a propensity the lender already has"),
    "promise_due_date": ("date", "optional", "YYYY-MM-DD in 2000-01-01..2099-12-31: an open "
                         "promise to pay"),
    "promise_amount": ("number", "optional", ">= 0"),
    "segment": ("text", "optional", "the lender's own segment label"),
}  # fmt: skip
"""Portfolio file columns (one row per account): name → (type, required?, rule)."""

HISTORY_COLUMN_RULES: dict[str, tuple[str, str, str]] = {
    "account_id": ("text", "required", "an account of the portfolio (trimmed and normalised "
                   "the same way)"),
    "timestamp_utc": ("timestamp", "required", "ISO 8601 text with `Z` or an offset, or a "
                      "Parquet timestamp with a time zone (naive timestamps are refused); its "
                      "local day lies in 2000-01-01..the plan date"),
    "channel": ("text", "required", "one of " + ", ".join(f"`{c}`" for c in CHANNELS)),
    "outcome": ("text", "required", "one of " + ", ".join(f"`{o}`" for o in OUTCOMES)),
    "conversation": ("boolean", "required", "a telephone conversation with the borrower took "
                     "place"),
}  # fmt: skip
"""Contact history file columns (one row per contact attempt): name → (type, required?, rule)."""

SHOWN_PROBLEMS = 20
"""How many problems ``str(InputError)`` lists before "... and N more"."""

CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")

PORTFOLIO_COLUMNS: tuple[str, ...] = (
    "account_id",
    "product",
    "balance",
    "amount_due",
    "dpd",
    "timezone",
    *FLAG_COLUMNS,
    "risk_score",
    "promise_due_date",
    "promise_amount",
    "segment",
)
"""Columns of the portfolio file, in file order (docs/input_formats.md)."""

PORTFOLIO_OPTIONAL: frozenset[str] = frozenset(
    {"risk_score", "promise_due_date", "promise_amount", "segment"}
)

HISTORY_COLUMNS: tuple[str, ...] = (
    "account_id",
    "timestamp_utc",
    "channel",
    "outcome",
    "conversation",
)
"""Columns of the contact history file, in file order (docs/input_formats.md)."""

_TRUE = ("true", "1")
_FALSE = ("false", "0")
_MAX_SHOWN_VALUE = 80

_NUMBER_RE = r"(?i)^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|nan|inf|infinity)$"
_DATE_RE = r"^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])$"
_TIMESTAMP_RE = (
    r"^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])[T ]"
    r"(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d+)?)?"
    r"(?:Z|[+-](?:[01]\d|2[0-3])(?::?[0-5]\d)?)$"
)
_TIMESTAMP_HELP = "is not an ISO 8601 timestamp with Z or an offset (e.g. 2026-03-08T14:05:00Z)"
_NAIVE_RE = _TIMESTAMP_RE.replace(r"(?:Z|[+-](?:[01]\d|2[0-3])(?::?[0-5]\d)?)$", "$")
_NAIVE_HELP = (
    "has no time zone (naive timestamps are refused): an ISO 8601 timestamp needs Z or an "
    "offset (e.g. 2026-03-08T14:05:00Z)"
)
_FRACTION_RE = r"(:\d\d:\d\d)\.\d+"
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


# --------------------------------------------------------------------------- errors
@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file.

    Attributes:
        file: the file, as given by the caller.
        row: 1-based data row (header excluded), or None for a file or column problem.
        column: the column name, or None for a file problem.
        value: the offending value as text, or None when there is no value (missing).
        message: what is wrong, e.g. ``must be >= 0``.
    """

    file: str
    row: int | None
    column: str | None
    value: str | None
    message: str

    def __str__(self) -> str:
        parts = []
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column is not None:
            parts.append(f"column {self.column}")
        if self.value is not None:
            parts.append(f'value "{_shown(self.value)}"')
        where = ", ".join(parts)
        return f"{self.file}: {where}: {self.message}" if where else f"{self.file}: {self.message}"


def _shown(value: str) -> str:
    """Return a value escaped to stay on one line and shortened if long."""
    text = value.replace("\\", "\\\\").replace('"', '\\"')
    text = text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    if len(text) > _MAX_SHOWN_VALUE:
        text = text[: _MAX_SHOWN_VALUE - 3] + "..."
    return text


class InputError(ValueError):
    """An input file that does not validate; ``problems`` lists everything found.

    ``str()`` shows the first 20 problems, one per line, then ``... and N more``.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__(self._text())

    def _text(self) -> str:
        lines = [str(p) for p in self.problems[:SHOWN_PROBLEMS]]
        hidden = len(self.problems) - SHOWN_PROBLEMS
        if hidden > 0:
            lines.append(f"... and {hidden} more")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._text()


def _file_error(path: str | Path, message: str) -> InputError:
    return InputError([Problem(str(path), None, None, None, message)])


# --------------------------------------------------------------------------- reading
def _format_of(path: Path) -> str:
    """Return ``"csv"`` or ``"parquet"`` from the file extension, or raise InputError."""
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    expected = ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES)
    raise _file_error(
        path, f"unknown file extension {suffix or '(none)'!r}; expected one of {expected}"
    )


def read_table(path: str | Path) -> pa.Table:
    """Read a CSV (every column as text) or Parquet file (native types) as a table.

    Args:
        path: a ``.csv``, ``.parquet`` or ``.pq`` file.

    Returns:
        The table, with its columns as stored (CSV: all ``string``).

    Raises:
        InputError: unknown extension, missing or unreadable file, or CSV rows with
            the wrong number of fields (one problem per such row).
    """
    path = Path(path)
    kind = _format_of(path)
    if not path.is_file():
        raise _file_error(path, "file not found" if not path.exists() else "not a regular file")
    try:
        return _read_csv(path) if kind == "csv" else pq.read_table(path)
    except InputError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise _file_error(path, f"cannot read as {kind.upper()}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _read_csv(path: Path) -> pa.Table:
    """Read a CSV file with every column as text; report rows of the wrong width."""
    skip = pacsv.ParseOptions(invalid_row_handler=lambda row: "skip")
    with pacsv.open_csv(path, parse_options=skip) as reader:
        names = reader.schema.names
    convert = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
    bad: list[Problem] = []

    def invalid(row: pacsv.InvalidRow) -> str:
        number = None if row.number is None else row.number - 1
        message = f"expected {row.expected_columns} fields, found {row.actual_columns}"
        bad.append(Problem(str(path), number, None, row.text, message))
        return "skip"

    parse = pacsv.ParseOptions(invalid_row_handler=invalid)
    table = pacsv.read_csv(path, parse_options=parse, convert_options=convert)
    if bad:
        # Row numbers are only known when reading on one thread: read again to name them.
        bad.clear()
        single = pacsv.ReadOptions(use_threads=False)
        pacsv.read_csv(path, read_options=single, parse_options=parse, convert_options=convert)
        raise InputError(bad)
    return table


# --------------------------------------------------------------------------- checking
@dataclass
class Sheet:
    """A table under validation: looks up columns and collects problems."""

    table: pa.Table
    file: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(self.table.num_rows)

    def column(self, name: str, required: bool) -> pa.Array | None:
        """Return a column as one array, or None (reporting it if required or repeated)."""
        found = self.table.column_names.count(name)
        if found > 1:
            self.add_column(name, f"appears {found} times in the header")
            return None
        if found == 0:
            if required:
                self.add_column(name, "required column is missing" + self._hint(name))
            return None
        return self.table.column(name).combine_chunks()

    def _hint(self, name: str) -> str:
        close = [c for c in self.table.column_names if c.strip().lower() == name]
        return f" (found {close[0]!r})" if close else ""

    def add_column(self, name: str, message: str) -> None:
        """Record a problem with a whole column."""
        self.problems.append(Problem(self.file, None, name, None, message))

    def report(self, name: str, mask: np.ndarray, message: str | Callable[[int], str]) -> None:
        """Record one problem per row where ``mask`` holds, quoting the stored value.

        Args:
            name: the column.
            mask: bool [n], the bad rows.
            message: the message, or a function of the row index giving it.
        """
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            return
        raw = self.table.column(name).take(pa.array(rows))
        if not pa.types.is_string(raw.type):
            raw = pc.cast(decoded(raw), pa.string())
        for row, value in zip(rows.tolist(), raw.to_pylist(), strict=True):
            text = message if isinstance(message, str) else message(row)
            self.problems.append(Problem(self.file, row + 1, name, value, text))

    def raise_if_any(self) -> None:
        """Raise InputError listing every problem: whole-column ones first, then by row."""
        if self.problems:
            raise InputError(sorted(self.problems, key=_problem_order))


def _problem_order(problem: Problem) -> tuple[int, int]:
    return (0, 0) if problem.row is None else (1, problem.row)


def decoded(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Return a dictionary-encoded array as plain values; other arrays unchanged."""
    if pa.types.is_dictionary(arr.type):
        return pc.cast(arr, arr.type.value_type)
    return arr


def is_text(kind: pa.DataType) -> bool:
    """Whether an Arrow type holds text."""
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def as_strings(arr: pa.Array) -> pa.Array:
    """Return a text array as ``string`` with nulls as ``""``."""
    return pc.cast(decoded(arr), pa.string()).fill_null("")


def to_numpy(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An Arrow array as numpy (a copy where Arrow cannot share memory)."""
    return np.asarray(arr.to_numpy(zero_copy_only=False))


def _parse(
    text: pa.Array,
    pattern: str,
    target: pa.DataType,
    filler: str,
    real: Callable[[pa.Array], np.ndarray] | None = None,
) -> tuple[pa.Array, np.ndarray]:
    """Cast the strings that match ``pattern`` (and pass ``real``) to ``target``.

    Args:
        text: trimmed, non-null strings.
        pattern: RE2 pattern of acceptable strings.
        target: the arrow type to cast to.
        filler: a string of the right form, cast in place of the others.
        real: optional further check, given the strings with ``filler`` in place of
            those that do not match; returns bool [n].

    Returns:
        (values, bad): ``values`` holds the cast ``filler`` where ``bad``; bad is bool [n].
    """
    bad = ~to_numpy(pc.match_substring_regex(text, pattern))
    if real is not None:
        bad |= ~real(pc.if_else(pa.array(bad), filler, text))
    try:
        return pc.cast(pc.if_else(pa.array(bad), filler, text), target), bad
    except pa.ArrowInvalid:
        # Not expected after the checks above; find the culprits one by one (error path).
        for i in np.flatnonzero(~bad):
            try:
                pc.cast(pa.array([text[i].as_py()]), target)
            except pa.ArrowInvalid:
                bad[i] = True
        return pc.cast(pc.if_else(pa.array(bad), filler, text), target), bad


def number_cells(sheet: Sheet, name: str, required: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """Read a numeric column as float64, reporting unreadable and (if required) missing cells.

    Returns:
        (values, known): ``known`` marks the cells that hold a number (NaN and infinities
        written out included); other cells are NaN.  None if the column is absent or
        unusable.  Unreadable cells are already reported.
    """
    arr = sheet.column(name, required)
    if arr is None:
        return None
    arr = decoded(arr)
    if is_text(arr.type):
        text = pc.utf8_trim_whitespace(as_strings(arr))
        missing = to_numpy(pc.equal(text, ""))
        parsed, bad = _parse(text, _NUMBER_RE, pa.float64(), "0")
        bad &= ~missing
        sheet.report(name, bad, "is not a number")
        values = to_numpy(parsed).astype(np.float64)
        known = ~(bad | missing)
    elif _is_numeric(arr.type):
        missing = to_numpy(arr.is_null())
        values = to_numpy(pc.cast(arr, pa.float64()).fill_null(np.nan)).astype(np.float64)
        known = ~missing
    else:
        sheet.add_column(name, f"has type {arr.type}; expected numbers")
        return None
    if required:
        sheet.report(name, missing, "is missing; a number is required")
    values[~known] = np.nan
    return values, known


def _is_numeric(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


def _check_amount(sheet: Sheet, name: str, values: np.ndarray, known: np.ndarray) -> None:
    """Report non-finite and negative values among the ``known`` cells."""
    finite = np.isfinite(values)
    sheet.report(name, known & ~finite, "must be a finite number")
    sheet.report(name, known & finite & (values < 0), "must be >= 0")


def _booleans(sheet: Sheet, name: str) -> np.ndarray | None:
    """Read a required boolean column (true/false/1/0 in any case, bool or 0/1 ints)."""
    arr = sheet.column(name, True)
    if arr is None:
        return None
    arr = decoded(arr)
    expected = "must be true, false, 1 or 0"
    if is_text(arr.type):
        text = pc.utf8_lower(pc.utf8_trim_whitespace(as_strings(arr)))
        true = to_numpy(pc.is_in(text, pa.array(_TRUE)))
        bad = ~(true | to_numpy(pc.is_in(text, pa.array(_FALSE))))
        sheet.report(name, bad, expected)
        return true
    if pa.types.is_boolean(arr.type) or pa.types.is_integer(arr.type):
        null = to_numpy(arr.is_null())
        filled = to_numpy(pc.cast(arr, pa.int64()).fill_null(0))
        sheet.report(name, null, f"is missing; {expected}")
        sheet.report(name, ~null & (filled != 0) & (filled != 1), expected)
        return filled == 1
    sheet.add_column(name, f"has type {arr.type}; expected booleans")
    return None


def text_cells(
    sheet: Sheet, name: str, required: bool, allow_numbers: bool = True
) -> pa.Array | None:
    """Read a text column as ``string`` (nulls as ``""``); integer ids are accepted as text."""
    arr = sheet.column(name, required)
    if arr is None:
        return None
    arr = decoded(arr)
    if is_text(arr.type) or (allow_numbers and pa.types.is_integer(arr.type)):
        return as_strings(arr)
    sheet.add_column(name, f"has type {arr.type}; expected text")
    return None


def _codes(text: pa.Array) -> tuple[np.ndarray, tuple[str, ...]]:
    """Return (codes into the sorted distinct values, the sorted distinct values)."""
    encoded = pc.dictionary_encode(text)
    names = encoded.dictionary.to_pylist()
    order = np.argsort(np.array(names, dtype=object), kind="stable")
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    index = to_numpy(encoded.indices).astype(np.int64)
    return rank[index], tuple(names[i] for i in order)


def _days_in_month(year: np.ndarray, month: np.ndarray) -> np.ndarray:
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    return _MONTH_DAYS[month - 1] + ((month == 2) & leap)


def _real_dates(text: pa.Array) -> np.ndarray:
    """Return bool [n]: whether each ``YYYY-MM-DD...`` string names a real calendar day."""

    def part(start: int, stop: int) -> np.ndarray:
        return to_numpy(pc.cast(pc.utf8_slice_codeunits(text, start, stop), pa.int64())).astype(
            np.int64
        )

    day = part(8, 10)
    return np.asarray(day <= _days_in_month(part(0, 4), part(5, 7)))


def date_cells(sheet: Sheet, name: str) -> np.ndarray | None:
    """Read an optional date column as int32 day numbers (-1 where missing)."""
    arr = sheet.column(name, False)
    if arr is None:
        return None
    arr = decoded(arr)
    if is_text(arr.type):
        text = pc.utf8_trim_whitespace(as_strings(arr))
        missing = to_numpy(pc.equal(text, ""))
        parsed, bad = _parse(text, _DATE_RE, pa.date32(), "1970-01-01", _real_dates)
        sheet.report(name, bad & ~missing, "is not an ISO date (YYYY-MM-DD)")
    elif pa.types.is_date(arr.type) or pa.types.is_timestamp(arr.type):
        missing = to_numpy(arr.is_null())
        parsed = pc.cast(arr, pa.date32())
    else:
        sheet.add_column(name, f"has type {arr.type}; expected dates")
        return None
    days = to_numpy(pc.cast(parsed, pa.int32()).fill_null(-1)).astype(np.int32)
    days[missing] = -1
    if is_text(arr.type):
        days[bad] = -1  # reported above; not checked again
    return days


def timestamp_cells(sheet: Sheet, name: str) -> np.ndarray | None:
    """Read a required timestamp column as UTC epoch seconds (floored)."""
    arr = sheet.column(name, True)
    if arr is None:
        return None
    arr = decoded(arr)
    if is_text(arr.type):
        text = pc.utf8_trim_whitespace(as_strings(arr))
        whole = pc.replace_substring_regex(text, _FRACTION_RE, r"\1")
        filler = "1970-01-01T00:00:00Z"
        target = pa.timestamp("s", tz="UTC")
        parsed, bad = _parse(whole, _TIMESTAMP_RE, target, filler, _real_dates)
        naive = bad & to_numpy(pc.match_substring_regex(whole, _NAIVE_RE))
        sheet.report(name, naive, _NAIVE_HELP)
        sheet.report(name, bad & ~naive, _TIMESTAMP_HELP)
        return to_numpy(pc.cast(parsed, pa.int64())).astype(np.int64)
    if pa.types.is_timestamp(arr.type):
        if arr.type.tz is None:
            sheet.add_column(
                name, "has timestamps without a time zone; store UTC timestamps (with tz)"
            )
            return None
        null = to_numpy(arr.is_null())
        sheet.report(name, null, "is missing; a timestamp is required")
        per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[arr.type.unit]
        raw = to_numpy(pc.cast(arr, pa.int64()).fill_null(0)).astype(np.int64)
        return np.floor_divide(raw, per_second)
    sheet.add_column(name, f"has type {arr.type}; expected timestamps")
    return None


def enum_cells(sheet: Sheet, name: str, names: tuple[str, ...], what: str) -> np.ndarray | None:
    """Read a required enum column as int8 codes into ``names``."""
    text = text_cells(sheet, name, True, allow_numbers=False)
    if text is None:
        return None
    index = pc.index_in(text, value_set=pa.array(names, type=pa.string()))
    unknown = to_numpy(index.is_null())
    sheet.report(name, unknown, f"unknown {what}; expected one of {', '.join(names)}")
    return to_numpy(index.fill_null(0)).astype(np.int8)


# --------------------------------------------------------------------------- portfolio
_CONTROL_RE = "[\\x00-\\x1f\\x7f-\\x9f]"
"""Control characters, refused in account ids (they break CSV, logs and terminals)."""


def _normalised_ids(sheet: Sheet) -> pa.Array | None:
    """Read account_id as text, trimmed of surrounding white space and in Unicode NFC.

    Ids with control characters are reported.  ``"A1 "`` and ``"A1"`` are the same id.
    """
    ids = text_cells(sheet, "account_id", True)
    if ids is None:
        return None
    ids = pc.utf8_normalize(pc.utf8_trim_whitespace(ids), form="NFC")
    control = to_numpy(pc.match_substring_regex(ids, _CONTROL_RE))
    sheet.report("account_id", control, "contains a control character")
    return ids


def _account_ids(sheet: Sheet) -> pa.Array | None:
    """Read account_id: non-empty and unique; duplicates reported after their first row."""
    ids = _normalised_ids(sheet)
    if ids is None:
        return None
    empty = to_numpy(pc.equal(pc.utf8_trim_whitespace(ids), ""))
    sheet.report("account_id", empty, "must not be empty")
    codes = to_numpy(pc.dictionary_encode(ids).indices).astype(np.int64)
    _, first = np.unique(codes, return_index=True)
    duplicate = np.ones(codes.shape[0], dtype=bool)
    duplicate[first] = False
    duplicate &= ~empty
    first_row = first[codes] + 1

    def message(row: int) -> str:
        return f"duplicate account_id (first on row {first_row[row]})"

    sheet.report("account_id", duplicate, message)
    return ids


def _zones(sheet: Sheet) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """Read the timezone column as codes into the sorted distinct zone names."""
    text = text_cells(sheet, "timezone", True, allow_numbers=False)
    if text is None:
        return None
    codes, names = _codes(text)
    valid = np.array([_is_zone(z) for z in names], dtype=bool)
    sheet.report("timezone", ~valid[codes], "is not a valid IANA time zone (e.g. America/Chicago)")
    return codes.astype(np.int16), names


@lru_cache(maxsize=1024)
def _is_zone(name: str) -> bool:
    """Return whether zoneinfo knows an IANA zone of this name."""
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return False
    return True


def _products(sheet: Sheet) -> tuple[np.ndarray, tuple[str, ...]] | None:
    text = text_cells(sheet, "product", True)
    if text is None:
        return None
    sheet.report("product", to_numpy(pc.equal(text, "")), "must not be empty")
    codes, names = _codes(text)
    return codes.astype(np.int16), names


def _required_amount(sheet: Sheet, name: str) -> np.ndarray | None:
    """Read a required amount: a finite number >= 0."""
    read = number_cells(sheet, name, True)
    if read is None:
        return None
    values, known = read
    _check_amount(sheet, name, values, known)
    return values


def _dpd(sheet: Sheet) -> np.ndarray | None:
    """Read days past due: an integer >= 0 (``12`` or ``12.0``)."""
    read = number_cells(sheet, "dpd", True)
    if read is None:
        return None
    values, known = read
    whole = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2**31)
    sheet.report("dpd", known & ~whole, "must be an integer")
    sheet.report("dpd", known & whole & (values < 0), "must be >= 0")
    return np.where(whole, values, 0).astype(np.int32)


def _risk_score(sheet: Sheet) -> np.ndarray:
    """Read the optional risk score in [0, 1]; NaN where missing (NaN written out too)."""
    read = number_cells(sheet, "risk_score", False)
    if read is None:
        return np.full(sheet.n, np.nan)
    values, known = read
    outside = ~np.isnan(values) & ~((values >= 0) & (values <= 1))
    sheet.report("risk_score", known & outside, "must be in [0, 1]")
    return values


def _promise_amount(sheet: Sheet) -> np.ndarray:
    """Read the optional promise amount: a finite number >= 0; 0 where missing."""
    read = number_cells(sheet, "promise_amount", False)
    if read is None:
        return np.zeros(sheet.n)
    values, known = read
    _check_amount(sheet, "promise_amount", values, known)
    return np.where(known, values, 0.0)


def load_portfolio(path: str | Path) -> Portfolio:
    """Load and validate a portfolio file (docs/input_formats.md).

    Args:
        path: a CSV or Parquet file, one row per account.

    Returns:
        The portfolio in file row order; ``products`` and ``timezones`` are the sorted
        distinct values, ``product`` and ``timezone`` int16 codes into them.

    Raises:
        InputError: listing every problem found; nothing is loaded.
    """
    sheet = Sheet(read_table(path), str(path))
    ids = _account_ids(sheet)
    product = _products(sheet)
    columns: dict[str, Any] = {
        "balance": _required_amount(sheet, "balance"),
        "amount_due": _required_amount(sheet, "amount_due"),
        "dpd": _dpd(sheet),
    }
    zone = _zones(sheet)
    columns.update({name: _booleans(sheet, name) for name in FLAG_COLUMNS})
    columns["risk_score"] = _risk_score(sheet)
    promise_due_day = date_cells(sheet, "promise_due_date")
    if promise_due_day is not None:
        outside = (promise_due_day >= 0) & (
            (promise_due_day < day_number(FIRST_DATE)) | (promise_due_day > day_number(LAST_DATE))
        )
        sheet.report("promise_due_date", outside, f"is outside {FIRST_DATE}..{LAST_DATE}")
    columns["promise_amount"] = _promise_amount(sheet)
    segment = text_cells(sheet, "segment", False)
    sheet.raise_if_any()
    assert ids is not None and product is not None and zone is not None
    n = sheet.n
    no_promise = np.full(n, -1, dtype=np.int32)
    return Portfolio(
        account_id=to_numpy(ids).astype(object),
        product=product[0],
        products=product[1],
        timezone=zone[0],
        timezones=zone[1],
        promise_due_day=no_promise if promise_due_day is None else promise_due_day,
        segment_label=np.full(n, "", dtype=object) if segment is None else to_numpy(segment),
        **columns,
    )


# --------------------------------------------------------------------------- history
@dataclass(frozen=True)
class HistoryCells:
    """The validated history columns of a file, in file row order (shared with collsim.logs).

    Attributes:
        account: int64 row index into the portfolio.
        utc_s: int64 UTC epoch seconds.
        channel: int8 channel codes.
        outcome: int8 codes into the outcome names the file was read with.
        conversation: bool, a telephone conversation took place.
    """

    account: np.ndarray
    utc_s: np.ndarray
    channel: np.ndarray
    outcome: np.ndarray
    conversation: np.ndarray

    def order(self) -> np.ndarray:
        """Row order by (account row, timestamp), file order within ties."""
        return np.lexsort((self.utc_s, self.account))

    def history(self, portfolio: Portfolio, order: np.ndarray, outcome: np.ndarray) -> History:
        """Return the rows at ``order`` as a History with these ``outcome`` codes (file order)."""
        account, utc_s = self.account[order], self.utc_s[order]
        day, hour = utc_to_local(portfolio.timezones, portfolio.timezone[account], utc_s)
        return History(
            account=account,
            local_day=day.astype(np.int64),
            local_hour=hour.astype(np.int8),
            channel=self.channel[order],
            outcome=outcome[order],
            conversation=self.conversation[order],
        )


DayCheck = Callable[[np.ndarray, np.ndarray], None]
"""Reports rows on a wrong local day, given (local day number, checkable) per row."""


def history_cells(
    sheet: Sheet, portfolio: Portfolio, check_days: DayCheck, outcomes: tuple[str, ...] = OUTCOMES
) -> HistoryCells | None:
    """Validate the :data:`HISTORY_COLUMNS` of ``sheet``; None if any is unusable.

    Problems are added to ``sheet``; the caller raises.  Once ``account_id`` and
    ``timestamp_utc`` are usable, ``check_days`` is called with each row's local day in
    its account's zone and whether that row can be checked (no problem in either yet).

    Args:
        sheet: the table under validation.
        portfolio: the accounts; every ``account_id`` must be one of them.
        check_days: reports rows on a local day out of range.
        outcomes: the allowed outcome names (codes index them).
    """
    account = account_rows(sheet, portfolio)
    utc_s = timestamp_cells(sheet, "timestamp_utc")
    channel = enum_cells(sheet, "channel", CHANNELS, "channel")
    outcome = enum_cells(sheet, "outcome", outcomes, "outcome")
    conversation = _booleans(sheet, "conversation")
    if account is not None and utc_s is not None:
        check_days(*local_days(sheet, portfolio, account, utc_s, "timestamp_utc"))
    if account is None or utc_s is None or channel is None:
        return None
    if outcome is None or conversation is None:
        return None
    return HistoryCells(account, utc_s, channel, outcome, conversation)


def local_days(
    sheet: Sheet, portfolio: Portfolio, account: np.ndarray, utc_s: np.ndarray, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Return (local day number, checkable) of each row in its account's zone.

    ``checkable`` is False on rows that already have a problem in ``account_id`` or the
    timestamp column ``name`` (their day means nothing).
    """
    day, _ = utc_to_local(portfolio.timezones, portfolio.timezone[account], utc_s)
    checkable = np.ones(day.shape[0], dtype=bool)
    for problem in sheet.problems:
        if problem.row is not None and problem.column in (name, "account_id"):
            checkable[problem.row - 1] = False
    return day, checkable


def load_history(path: str | Path, portfolio: Portfolio, before: dt.date | None = None) -> History:
    """Load and validate a contact history file against a portfolio.

    Timestamps become the local day and hour in each account's own zone (DST-aware).
    They must carry a zone (naive timestamps are refused, not taken as UTC) and fall on
    a local day in ``FIRST_DATE``..``before`` (the plan date: no history from after it).

    Args:
        path: a CSV or Parquet file, one row per contact attempt.
        portfolio: the accounts; every ``account_id`` must be one of them.
        before: the plan date; a contact on a later local day is refused.

    Returns:
        The history, rows sorted by (account row, timestamp), file order within ties.

    Raises:
        InputError: listing every problem found; nothing is loaded.
    """
    sheet = Sheet(read_table(path), str(path))

    def check_days(day: np.ndarray, checked: np.ndarray) -> None:
        last = before or LAST_DATE
        sheet.report(
            "timestamp_utc", checked & (day < day_number(FIRST_DATE)), f"is before {FIRST_DATE}"
        )
        sheet.report(
            "timestamp_utc",
            checked & (day > day_number(last)),
            f"is after the plan date {last} (account's local day)"
            if before
            else f"is after {LAST_DATE}",
        )

    cells = history_cells(sheet, portfolio, check_days)
    sheet.raise_if_any()
    assert cells is not None
    return cells.history(portfolio, cells.order(), cells.outcome)


def account_rows(sheet: Sheet, portfolio: Portfolio) -> np.ndarray | None:
    """Read account_id as row indices into the portfolio; unknown ids are reported."""
    ids = _normalised_ids(sheet)
    if ids is None:
        return None
    known = pa.array(portfolio.account_id, type=pa.string())
    index = pc.index_in(ids, value_set=known)
    sheet.report("account_id", to_numpy(index.is_null()), "is not an account in the portfolio")
    return to_numpy(index.fill_null(0)).astype(np.int64)


# --------------------------------------------------------------------------- writing
def write_atomically(table: pa.Table, path: str | Path) -> None:
    """Write a table atomically as CSV or Parquet according to the extension of ``path``."""
    kind = _format_of(Path(path))

    def writer(temp: Path) -> None:
        if kind == "csv":
            pacsv.write_csv(table, temp)
        else:
            pq.write_table(table, temp)

    atomic_write(path, writer)


def code_names(codes: np.ndarray, names: tuple[str, ...]) -> pa.Array:
    """Return the names of int codes as a ``string`` array."""
    indices = pa.array(np.asarray(codes, dtype=np.int32))
    dictionary = pa.array(names, type=pa.string())
    return pc.cast(pa.DictionaryArray.from_arrays(indices, dictionary), pa.string())


def portfolio_table(portfolio: Portfolio) -> pa.Table:
    """Return the portfolio as a table with exactly the :data:`PORTFOLIO_COLUMNS`, in order.

    Unknown values are nulls: ``risk_score`` NaN, ``promise_due_date`` for day -1 and an
    empty ``segment``.
    """
    no_promise = portfolio.promise_due_day < 0
    columns: dict[str, pa.Array] = {
        "account_id": pa.array(portfolio.account_id, type=pa.string()),
        "product": code_names(portfolio.product, portfolio.products),
        "balance": pa.array(portfolio.balance, type=pa.float64()),
        "amount_due": pa.array(portfolio.amount_due, type=pa.float64()),
        "dpd": pa.array(portfolio.dpd, type=pa.int32()),
        "timezone": code_names(portfolio.timezone, portfolio.timezones),
    }
    for name in FLAG_COLUMNS:
        columns[name] = pa.array(getattr(portfolio, name), type=pa.bool_())
    risk = np.asarray(portfolio.risk_score, dtype=np.float64)
    columns["risk_score"] = pa.array(risk, mask=np.isnan(risk), type=pa.float64())
    columns["promise_due_date"] = pa.array(
        portfolio.promise_due_day.astype(np.int32), mask=no_promise, type=pa.int32()
    ).cast(pa.date32())
    columns["promise_amount"] = pa.array(portfolio.promise_amount, type=pa.float64())
    segment = portfolio.segment_label.astype(object)
    columns["segment"] = pa.array(segment, mask=segment == "", type=pa.string())
    return pa.table(columns)


def write_portfolio(portfolio: Portfolio, path: str | Path) -> None:
    """Write a portfolio file (Parquet, or CSV for a ``.csv`` path) atomically.

    Args:
        portfolio: the accounts.
        path: the target; its extension chooses the format.
    """
    _format_of(Path(path))
    write_atomically(portfolio_table(portfolio), path)


def history_table(
    history: History, portfolio: Portfolio, text_timestamps: bool = False
) -> pa.Table:
    """Return the history as a table with the :data:`HISTORY_COLUMNS`.

    ``timestamp_utc`` is the start (minute :00) of each attempt's local hour in its
    account's zone; an hour inside a DST gap maps to the instant after the gap and an
    ambiguous hour to its first occurrence.

    Args:
        history: the contact attempts.
        portfolio: the accounts ``history.account`` indexes.
        text_timestamps: write timestamps as ISO 8601 text (``...Z``) instead.
    """
    utc_s = _history_utc_s(history, portfolio)
    stamps = pa.array(utc_s, type=pa.int64()).cast(pa.timestamp("s", tz="UTC"))
    timestamp = pc.strftime(stamps, "%Y-%m-%dT%H:%M:%SZ") if text_timestamps else stamps
    return pa.table(
        {
            "account_id": pa.array(portfolio.account_id[history.account], type=pa.string()),
            "timestamp_utc": timestamp,
            "channel": code_names(history.channel, CHANNELS),
            "outcome": code_names(history.outcome, OUTCOMES),
            "conversation": pa.array(history.conversation, type=pa.bool_()),
        }
    )


def _history_utc_s(history: History, portfolio: Portfolio) -> np.ndarray:
    """Return UTC epoch seconds of each attempt's local day and hour."""
    return local_hour_utc_s(portfolio, history.account, history.local_day, history.local_hour)


def local_hour_utc_s(
    portfolio: Portfolio, account: np.ndarray, local_day: np.ndarray, local_hour: np.ndarray
) -> np.ndarray:
    """Return UTC epoch seconds of the start of each row's local hour (one call per day).

    Args:
        portfolio: the accounts (their zones).
        account: int [M] row indices into ``portfolio``.
        local_day: int [M] local day numbers.
        local_hour: int [M] local hours (0-23).
    """
    out = np.empty(np.shape(account)[0], dtype=np.int64)
    if out.size == 0:
        return out
    zone = portfolio.timezone[account]
    hour = np.asarray(local_hour, dtype=np.int64)
    order = np.argsort(local_day, kind="stable")
    days, starts = np.unique(np.asarray(local_day)[order], return_index=True)
    for day, rows in zip(days.tolist(), np.split(order, starts[1:]), strict=True):
        out[rows] = local_to_utc_s(portfolio.timezones, zone[rows], int(day), hour[rows])
    return out


def write_history(history: History, portfolio: Portfolio, path: str | Path) -> None:
    """Write a contact history file (Parquet, or CSV for a ``.csv`` path) atomically.

    Args:
        history: the contact attempts.
        portfolio: the accounts ``history.account`` indexes (ids and zones).
        path: the target; its extension chooses the format.
    """
    csv = _format_of(Path(path)) == "csv"
    write_atomically(history_table(history, portfolio, text_timestamps=csv), path)


__all__ = [
    "HISTORY_COLUMNS",
    "InputError",
    "PORTFOLIO_COLUMNS",
    "Problem",
    "Sheet",
    "account_rows",
    "as_strings",
    "code_names",
    "date_cells",
    "decoded",
    "enum_cells",
    "history_table",
    "is_text",
    "load_history",
    "load_portfolio",
    "number_cells",
    "portfolio_table",
    "read_table",
    "text_cells",
    "timestamp_cells",
    "to_numpy",
    "write_atomically",
    "write_history",
    "write_portfolio",
]
