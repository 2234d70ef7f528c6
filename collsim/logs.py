"""Lender logs: account snapshots, contacts and payments over a window (docs/input_formats.md).

A lender's own logs and collsim's simulated logs (``collsim simulate --logs``) go
through the same three files and the same readers:

* ``accounts``: the portfolio file (:func:`collsim.tables.load_portfolio`) at the
  start of the window;
* ``contacts``: the contact history file (:func:`collsim.tables.load_history`) plus
  the detailed outcome (:data:`LOG_OUTCOMES`), the promise made, the offer and
  variant, and the ``propensity`` and ``holdout`` of the collsim plan behind it;
* ``payments``: money received, with its timestamp, amount and :data:`PAYMENT_CHANNELS`.

Readers validate like the portfolio reader: every problem names the file, the row,
the column and the value (:class:`collsim.tables.InputError`), and nothing is
returned when a file has a problem.  Timestamps carry a zone; each is placed on its
account's local day, which must lie in the :class:`LogWindow`.  Writers are atomic
and refuse to replace an existing file unless told to.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collsim.history import History
from collsim.portfolio import Portfolio, day_number
from collsim.tables import (  # its cell readers: both formats validate alike
    CSV_SUFFIXES,
    HISTORY_COLUMN_RULES,
    HISTORY_COLUMNS,
    PARQUET_SUFFIXES,
    DayCheck,
    HistoryCells,
    InputError,
    Problem,
    Sheet,
    account_rows,
    as_strings,
    code_names,
    date_cells,
    decoded,
    enum_cells,
    history_cells,
    is_text,
    load_portfolio,
    local_days,
    number_cells,
    read_table,
    text_cells,
    timestamp_cells,
    to_numpy,
    write_atomically,
    write_portfolio,
)
from collsim.vocab import CHANNELS, OFFERS, OUTCOMES, VARIANTS, Outcome

LOG_OUTCOMES: tuple[str, ...] = (*OUTCOMES, "read")
"""Detailed outcome codes of a contact: the history outcomes, then ``read``.

Codes 0..12 are :data:`collsim.vocab.OUTCOMES`; ``read`` (13) is a delivered message
the borrower opened, which the contact history (and the simulator's ledger) records
as ``delivered``.
"""

READ = len(OUTCOMES)
"""The code of ``read`` in :data:`LOG_OUTCOMES`."""

OUTCOME_MEANINGS: dict[str, str] = {
    "no_answer": "call: nobody answered",
    "voicemail": "call: a voicemail or answering machine took the call",
    "not_delivered": "message or letter: bounced / not delivered",
    "delivered": "message, letter or legal filing: delivered (not known to be read)",
    "wrong_party": "call: someone other than the borrower answered",
    "right_party": "call or visit: a conversation with the borrower, nothing agreed",
    "promise_to_pay": "the borrower promised to pay (`promise_date`, `promise_amount`)",
    "payment": "the borrower paid during the contact (the money is in the payments file)",
    "payment_plan": "the borrower agreed an instalment plan",
    "dispute": "the borrower disputed the debt",
    "refusal": "the borrower refused to pay",
    "complaint": "the borrower complained",
    "cease_request": "the borrower asked to stop all communication",
    "read": "message: delivered and opened/read (history outcome `delivered`)",
}
"""What each code of :data:`LOG_OUTCOMES` means."""

PAYMENT_CHANNELS: tuple[str, ...] = (
    "self_service",
    "agent",
    "direct_debit",
    "field",
    "legal",
    "other",
)
"""How money was received; index = payment channel code."""

PAYMENT_CHANNEL_MEANINGS: dict[str, str] = {
    "self_service": "the borrower paid alone: a payment link in an SMS, e-mail, app push or "
    "letter, the app or website, or an automated phone line (voice bot)",
    "agent": "taken by an agent on a call",
    "direct_debit": "collected by direct debit or card on file (e.g. a plan instalment)",
    "field": "taken by a field agent on a visit",
    "legal": "from legal action: garnishment or a court-ordered payment",
    "other": "any other route (bank transfer, cheque, unattributed)",
}
"""What each code of :data:`PAYMENT_CHANNELS` means."""


def _one_of(names: tuple[str, ...]) -> str:
    return "one of " + ", ".join(f"`{name}`" for name in names)


CONTACT_COLUMN_RULES: dict[str, tuple[str, str, str]] = {
    **HISTORY_COLUMN_RULES,
    "timestamp_utc": ("timestamp", "required", "as in the contact history; its local day "
                      "lies in the window"),
    "outcome": ("text", "required", _one_of(LOG_OUTCOMES)),
    "promise_date": ("date", "optional", "YYYY-MM-DD, on or after the contact's local day; "
                     "only on `promise_to_pay` rows (empty = not known)"),
    "promise_amount": ("number", "optional", "finite, > 0, in the portfolio currency; only on "
                       "`promise_to_pay` rows (empty = not known)"),
    "offer": ("text", "optional", _one_of(OFFERS) + " (empty = `none`)"),
    "variant": ("text", "optional", _one_of(VARIANTS) + " (empty = `standard`)"),
    "propensity": ("number", "optional", "in (0, 1]: the probability the collsim plan gave "
                   "this contact; empty when the contact came from no collsim plan"),
    "holdout": ("boolean", "optional", "the account was in the collsim plan's random holdout "
                "(control) that day: a held-out account gets no planned contact, so `true` "
                "marks a contact made despite it; empty when the contact came from no "
                "collsim plan"),
}  # fmt: skip
"""Contacts file columns (one row per contact attempt): name → (type, required?, rule)."""

PAYMENT_COLUMN_RULES: dict[str, tuple[str, str, str]] = {
    "account_id": HISTORY_COLUMN_RULES["account_id"],
    "timestamp_utc": ("timestamp", "required", "ISO 8601 text with `Z` or an offset, or a "
                      "Parquet timestamp with a time zone (naive timestamps are refused); its "
                      "local day lies in the window"),
    "amount": ("number", "required", "finite, > 0, in the portfolio currency"),
    "channel": ("text", "required", _one_of(PAYMENT_CHANNELS)),
}  # fmt: skip
"""Payments file columns (one row per payment received): name → (type, required?, rule)."""

CONTACT_COLUMNS: tuple[str, ...] = tuple(CONTACT_COLUMN_RULES)
"""Columns of the contacts file, in file order: the history columns first."""

PAYMENT_COLUMNS: tuple[str, ...] = tuple(PAYMENT_COLUMN_RULES)
"""Columns of the payments file, in file order."""

LOG_FILES: tuple[str, ...] = ("accounts", "contacts", "payments")
"""The file stems of a logs folder (each ``.parquet``, ``.pq`` or ``.csv``)."""

assert CONTACT_COLUMNS[: len(HISTORY_COLUMNS)] == HISTORY_COLUMNS

_TRUE = ("true", "1")
_FALSE = ("false", "0")


# --------------------------------------------------------------------------- values
@dataclass(frozen=True)
class LogWindow:
    """The local days the logs cover (each row's day in its account's own zone).

    Attributes:
        start: the first day; the account snapshot is taken at its start.
        end: the last day, or None for no upper limit.
    """

    start: dt.date
    end: dt.date | None = None


@dataclass(frozen=True)
class Contacts:
    """Contact attempts, rows sorted by (account row, timestamp), file order within ties.

    Attributes:
        history: the history columns (``read`` becomes ``delivered``).
        timestamp_utc_s: int64 UTC epoch seconds.
        outcome: int8 codes into :data:`LOG_OUTCOMES`.
        promise_day: int32 day number of the promised payment, -1 if none or unknown.
        promise_amount: float64 promised amount, NaN if none or unknown.
        offer: int8 codes into ``vocab.OFFERS`` (0 = none).
        variant: int8 codes into ``vocab.VARIANTS`` (0 = standard).
        propensity: float64 plan probability, NaN when not from a collsim plan.
        holdout: int8 1 held out, 0 not, -1 when not from a collsim plan.
        file_row: int64 1-based data row of each contact in the file it was read from
            (header excluded), for messages naming a row; None when not read from a file.
    """

    history: History
    timestamp_utc_s: np.ndarray
    outcome: np.ndarray
    promise_day: np.ndarray
    promise_amount: np.ndarray
    offer: np.ndarray
    variant: np.ndarray
    propensity: np.ndarray
    holdout: np.ndarray
    file_row: np.ndarray | None = None

    @property
    def m(self) -> int:
        """Number of rows."""
        return self.history.m


@dataclass(frozen=True)
class Payments:
    """Money received, rows sorted by (account row, timestamp), file order within ties.

    Attributes:
        account: int64 row index into the accounts.
        timestamp_utc_s: int64 UTC epoch seconds.
        amount: float64 > 0, in the portfolio currency.
        channel: int8 codes into :data:`PAYMENT_CHANNELS`.
    """

    account: np.ndarray
    timestamp_utc_s: np.ndarray
    amount: np.ndarray
    channel: np.ndarray

    @property
    def m(self) -> int:
        """Number of rows."""
        return int(self.account.shape[0])


@dataclass(frozen=True)
class Logs:
    """The three log files of a window.

    Attributes:
        accounts: the account snapshot at the start of the window.
        contacts: the contact attempts.
        payments: the payments received.
        window: the days covered.
    """

    accounts: Portfolio
    contacts: Contacts
    payments: Payments
    window: LogWindow


# --------------------------------------------------------------------------- reading
def _window_check(sheet: Sheet, name: str, window: LogWindow) -> DayCheck:
    """Return a day check reporting rows outside ``window`` in column ``name``."""

    def check(day: np.ndarray, checkable: np.ndarray) -> None:
        before = checkable & (day < day_number(window.start))
        sheet.report(
            name, before, f"is before the window start {window.start} (account's local day)"
        )
        if window.end is not None:
            after = checkable & (day > day_number(window.end))
            sheet.report(name, after, f"is after the window end {window.end} (account's local day)")

    return check


def _optional_enum(sheet: Sheet, name: str, names: tuple[str, ...]) -> np.ndarray:
    """Read an optional code column (empty = code 0) as int8 codes into ``names``."""
    text = text_cells(sheet, name, False, allow_numbers=False)
    if text is None:
        return np.zeros(sheet.n, dtype=np.int8)
    text = pc.utf8_trim_whitespace(text)
    filled = pc.if_else(pc.equal(text, ""), names[0], text)
    index = pc.index_in(filled, value_set=pa.array(names, type=pa.string()))
    sheet.report(
        name, to_numpy(index.is_null()), f"unknown {name}; expected one of {', '.join(names)}"
    )
    return to_numpy(index.fill_null(0)).astype(np.int8)


def _optional_booleans(sheet: Sheet, name: str) -> np.ndarray:
    """Read an optional nullable boolean column as int8: 1 true, 0 false, -1 empty."""
    arr = sheet.column(name, False)
    out = np.full(sheet.n, -1, dtype=np.int8)
    if arr is None:
        return out
    arr = decoded(arr)
    if is_text(arr.type):
        text = pc.utf8_lower(pc.utf8_trim_whitespace(as_strings(arr)))
        true = to_numpy(pc.is_in(text, pa.array(_TRUE)))
        false = to_numpy(pc.is_in(text, pa.array(_FALSE)))
        empty = to_numpy(pc.equal(text, ""))
        sheet.report(name, ~(true | false | empty), "must be true, false, 1, 0 or empty")
    elif pa.types.is_boolean(arr.type) or pa.types.is_integer(arr.type):
        filled = to_numpy(pc.cast(arr, pa.int64()).fill_null(-1))
        true, false = filled == 1, filled == 0
        sheet.report(
            name, ~to_numpy(arr.is_null()) & ~(true | false), "must be true, false, 1 or 0"
        )
    else:
        sheet.add_column(name, f"has type {arr.type}; expected booleans")
        return out
    out[true] = 1
    out[false] = 0
    return out


def _propensity(sheet: Sheet) -> np.ndarray:
    """Read the optional propensity in (0, 1]; NaN where empty."""
    read = number_cells(sheet, "propensity", False)
    if read is None:
        return np.full(sheet.n, np.nan)
    values, known = read
    inside = (values > 0) & (values <= 1)
    sheet.report("propensity", known & ~inside, "must be in (0, 1]")
    return np.where(known, values, np.nan)


def _positive_amount(sheet: Sheet, name: str, required: bool) -> np.ndarray | None:
    """Read an amount that must be finite and > 0 where given; NaN where empty."""
    read = number_cells(sheet, name, required)
    if read is None:
        return None
    values, known = read
    finite = np.isfinite(values)
    sheet.report(name, known & ~finite, "must be a finite number")
    sheet.report(name, known & finite & (values <= 0), "must be > 0")
    return np.where(known, values, np.nan)


def _promises(sheet: Sheet, cells: HistoryCells | None) -> tuple[np.ndarray, np.ndarray]:
    """Read promise_date and promise_amount; only ``promise_to_pay`` rows may have them."""
    day = date_cells(sheet, "promise_date")
    amount = _positive_amount(sheet, "promise_amount", False)
    day = np.full(sheet.n, -1, dtype=np.int32) if day is None else day
    amount = np.full(sheet.n, np.nan) if amount is None else amount
    if cells is not None:
        other = cells.outcome != Outcome.PROMISE_TO_PAY
        only = "is only allowed when outcome is promise_to_pay"
        sheet.report("promise_date", other & (day >= 0), only)
        sheet.report("promise_amount", other & ~np.isnan(amount), only)
    return day, amount


def _check_promise_days(
    sheet: Sheet, accounts: Portfolio, cells: HistoryCells, promise_day: np.ndarray
) -> None:
    """Report promises dated before the local day of their contact."""
    day, checkable = local_days(sheet, accounts, cells.account, cells.utc_s, "timestamp_utc")
    early = checkable & (promise_day >= 0) & (promise_day < day)
    sheet.report("promise_date", early, "is before the contact's local day")


def load_contacts(path: str | Path, accounts: Portfolio, window: LogWindow) -> Contacts:
    """Load and validate a contacts file against the account snapshot.

    The history columns are validated by the contact history reader
    (:func:`collsim.tables.history_cells`), with :data:`LOG_OUTCOMES` as outcomes.

    Args:
        path: a CSV or Parquet file, one row per contact attempt.
        accounts: the account snapshot; every ``account_id`` must be one of them.
        window: the days covered; a contact on another local day is refused.

    Returns:
        The contacts, rows sorted by (account row, timestamp).

    Raises:
        InputError: listing every problem found; nothing is returned.
    """
    sheet = Sheet(read_table(path), str(path))
    cells = history_cells(
        sheet, accounts, _window_check(sheet, "timestamp_utc", window), LOG_OUTCOMES
    )
    promise_day, promise_amount = _promises(sheet, cells)
    offer = _optional_enum(sheet, "offer", OFFERS)
    variant = _optional_enum(sheet, "variant", VARIANTS)
    propensity = _propensity(sheet)
    holdout = _optional_booleans(sheet, "holdout")
    if cells is not None:
        _check_promise_days(sheet, accounts, cells, promise_day)
    sheet.raise_if_any()
    assert cells is not None
    order = cells.order()
    history_outcome = np.where(cells.outcome == READ, Outcome.DELIVERED, cells.outcome)
    return Contacts(
        history=cells.history(accounts, order, history_outcome.astype(np.int8)),
        timestamp_utc_s=cells.utc_s[order],
        outcome=cells.outcome[order],
        promise_day=promise_day[order],
        promise_amount=promise_amount[order],
        offer=offer[order],
        variant=variant[order],
        propensity=propensity[order],
        holdout=holdout[order],
        file_row=order.astype(np.int64) + 1,
    )


def load_payments(path: str | Path, accounts: Portfolio, window: LogWindow) -> Payments:
    """Load and validate a payments file against the account snapshot.

    Args:
        path: a CSV or Parquet file, one row per payment received.
        accounts: the account snapshot; every ``account_id`` must be one of them.
        window: the days covered; a payment on another local day is refused.

    Returns:
        The payments, rows sorted by (account row, timestamp).

    Raises:
        InputError: listing every problem found; nothing is returned.
    """
    sheet = Sheet(read_table(path), str(path))
    account = account_rows(sheet, accounts)
    utc_s = timestamp_cells(sheet, "timestamp_utc")
    amount = _positive_amount(sheet, "amount", True)
    channel = enum_cells(sheet, "channel", PAYMENT_CHANNELS, "payment channel")
    if account is not None and utc_s is not None:
        check = _window_check(sheet, "timestamp_utc", window)
        check(*local_days(sheet, accounts, account, utc_s, "timestamp_utc"))
    sheet.raise_if_any()
    assert account is not None and utc_s is not None
    assert amount is not None and channel is not None
    order = np.lexsort((utc_s, account))
    return Payments(account[order], utc_s[order], amount[order], channel[order])


def log_file(folder: str | Path, stem: str) -> Path:
    """Return the one file ``stem`` (``.parquet``, ``.pq`` or ``.csv``) in ``folder``.

    Raises:
        InputError: none or several such files.
    """
    found = _stem_files(Path(folder), stem)
    if len(found) == 1:
        return found[0]
    message = "several files: " + ", ".join(p.name for p in found) if found else "not found"
    raise InputError([Problem(str(Path(folder) / f"{stem}.*"), None, None, None, message)])


def _stem_files(folder: Path, stem: str) -> list[Path]:
    """The files ``stem.parquet``, ``stem.pq`` and ``stem.csv`` that exist in ``folder``."""
    paths = [folder / f"{stem}{suffix}" for suffix in PARQUET_SUFFIXES + CSV_SUFFIXES]
    return [p for p in paths if p.exists() or p.is_symlink()]


def existing_log_files(folder: str | Path) -> list[Path]:
    """Return the log files already in ``folder``, in any format (empty if none)."""
    return [p for stem in LOG_FILES for p in _stem_files(Path(folder), stem)]


def load_logs(folder: str | Path, window: LogWindow) -> Logs:
    """Load and validate the three log files of ``folder`` (:data:`LOG_FILES`).

    Args:
        folder: holds ``accounts``, ``contacts`` and ``payments`` (Parquet or CSV).
        window: the days covered.

    Raises:
        InputError: the first file with problems, listing every problem in it.
    """
    accounts, contacts, payments = (log_file(folder, stem) for stem in LOG_FILES)
    return load_log_files(accounts, contacts, payments, window)


def load_log_files(
    accounts_path: str | Path,
    contacts_path: str | Path,
    payments_path: str | Path,
    window: LogWindow,
) -> Logs:
    """Load and validate the three log files from their own paths (see :func:`load_logs`)."""
    accounts = load_portfolio(accounts_path)
    contacts = load_contacts(contacts_path, accounts, window)
    payments = load_payments(payments_path, accounts, window)
    return Logs(accounts, contacts, payments, window)


# --------------------------------------------------------------------------- writing
def _timestamps_column(utc_s: np.ndarray, text: bool) -> pa.Array:
    stamps = pa.array(np.asarray(utc_s, dtype=np.int64), type=pa.int64())
    stamps = stamps.cast(pa.timestamp("s", tz="UTC"))
    return pc.strftime(stamps, "%Y-%m-%dT%H:%M:%SZ") if text else stamps


def contacts_table(
    contacts: Contacts, accounts: Portfolio, text_timestamps: bool = False
) -> pa.Table:
    """Return the contacts as a table with exactly the :data:`CONTACT_COLUMNS`, in order.

    Args:
        contacts: the contact attempts.
        accounts: the accounts ``contacts.history.account`` indexes.
        text_timestamps: write timestamps as ISO 8601 text (``...Z``) instead.
    """
    h = contacts.history
    no_promise = contacts.promise_day < 0
    promise_day = pa.array(contacts.promise_day.astype(np.int32), mask=no_promise)
    unplanned = contacts.holdout < 0
    return pa.table(
        {
            "account_id": pa.array(accounts.account_id[h.account], type=pa.string()),
            "timestamp_utc": _timestamps_column(contacts.timestamp_utc_s, text_timestamps),
            "channel": code_names(h.channel, CHANNELS),
            "outcome": code_names(contacts.outcome, LOG_OUTCOMES),
            "conversation": pa.array(h.conversation, type=pa.bool_()),
            "promise_date": promise_day.cast(pa.date32()),
            "promise_amount": pa.array(
                contacts.promise_amount, mask=np.isnan(contacts.promise_amount)
            ),
            "offer": code_names(contacts.offer, OFFERS),
            "variant": code_names(contacts.variant, VARIANTS),
            "propensity": pa.array(contacts.propensity, mask=np.isnan(contacts.propensity)),
            "holdout": pa.array(contacts.holdout == 1, mask=unplanned, type=pa.bool_()),
        }
    )


def payments_table(
    payments: Payments, accounts: Portfolio, text_timestamps: bool = False
) -> pa.Table:
    """Return the payments as a table with exactly the :data:`PAYMENT_COLUMNS`, in order."""
    return pa.table(
        {
            "account_id": pa.array(accounts.account_id[payments.account], type=pa.string()),
            "timestamp_utc": _timestamps_column(payments.timestamp_utc_s, text_timestamps),
            "amount": pa.array(payments.amount, type=pa.float64()),
            "channel": code_names(payments.channel, PAYMENT_CHANNELS),
        }
    )


def log_paths(folder: str | Path, csv: bool = False) -> tuple[Path, ...]:
    """Return the paths :func:`write_logs` writes, in :data:`LOG_FILES` order."""
    suffix = ".csv" if csv else ".parquet"
    return tuple(Path(folder) / f"{stem}{suffix}" for stem in LOG_FILES)


def write_logs(
    logs: Logs, folder: str | Path, force: bool = False, csv: bool = False
) -> tuple[Path, ...]:
    """Write the three log files into ``folder``, each atomically (temporary file, rename).

    Args:
        logs: the account snapshot, contacts and payments.
        folder: the target folder (created if missing).
        force: replace existing files; without it nothing is written if any exists.
        csv: write CSV files instead of Parquet.

    Returns:
        The paths written.

    Raises:
        FileExistsError: a log file (in any format) is in ``folder`` and ``force`` is
            False; with ``force`` the other format's files are removed too, so that the
            folder holds one set.
    """
    paths = log_paths(folder, csv)
    existing = existing_log_files(folder)
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise FileExistsError(f"{names}: already there; pass --force to replace")
    for stale in set(existing) - set(paths):
        stale.unlink()
    accounts_path, contacts_path, payments_path = paths
    write_portfolio(logs.accounts, accounts_path)
    write_atomically(contacts_table(logs.contacts, logs.accounts, csv), contacts_path)
    write_atomically(payments_table(logs.payments, logs.accounts, csv), payments_path)
    return paths


__all__ = [
    "CONTACT_COLUMNS",
    "CONTACT_COLUMN_RULES",
    "LOG_FILES",
    "LOG_OUTCOMES",
    "OUTCOME_MEANINGS",
    "PAYMENT_CHANNELS",
    "PAYMENT_CHANNEL_MEANINGS",
    "PAYMENT_COLUMNS",
    "PAYMENT_COLUMN_RULES",
    "Contacts",
    "LogWindow",
    "Logs",
    "Payments",
    "contacts_table",
    "existing_log_files",
    "load_contacts",
    "load_logs",
    "load_payments",
    "log_file",
    "log_paths",
    "payments_table",
    "write_logs",
]
