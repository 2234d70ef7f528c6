"""The append-only event ledger of a simulated run.

Every fact a KPI needs is an event row; metrics are computed from the ledger only.
Rows are appended as numpy column batches (one per kind of event and day) and
concatenated once, so appending costs nothing per account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from collsim.config import ValuationConfig
from collsim.io import atomic_write
from collsim.vocab import BUCKETS, CHANNELS, OFFERS, OUTCOMES, VARIANTS

EVENTS: tuple[str, ...] = (
    "start",  # the account's state at day 0 (amount = balance)
    "attempt",  # a contact attempt made (channel, outcome, cost, duration_s)
    "blocked",  # a planned contact refused by the compliance gate (rule)
    "overflow",  # a planned contact that did not fit capacity (rule = resource)
    "payment",  # money received (amount); channel = the contact that triggered it, or none
    "promise_kept",
    "promise_broken",
    "plan_broken",
    "plan_completed",
    "cure",  # the account paid its amount due in full and left delinquency
    "roll",  # the account entered a worse bucket (bucket = new bucket)
    "charge_off",  # amount = balance written off
    "legal_filed",
    "legal_closed",  # judgment: amount = recovery awarded (paid by later legal payment events)
    "agent_capacity",  # agent seconds staffed in a centre hour (duration_s) and their cost
    "redial_blocked",  # the dialler's own same-day redial refused by the in-day gate (rule)
    # Treatments (issue 11); only runs that use a treatment write these.
    "offer_accepted",  # an offer taken (offer, channel of the contact)
    "settlement",  # a settlement: amount = discount given (the payment is its own event)
    "treatment_blocked",  # a planned offer/variant downgraded to none/standard (rule, offer)
    "holiday_ended",  # a payment holiday ended; the account is back in collection
    "redefault",  # a cured account fell delinquent again (amount = the new amount due)
    "opt_out",  # the borrower opted out of a message channel (channel; app push: app removed)
)
EVENT = {name: code for code, name in enumerate(EVENTS)}
_TREATMENT_EVENTS = np.array(
    [EVENT[name] for name in ("offer_accepted", "settlement", "treatment_blocked", "holiday_ended")]
)
"""Events only a run that used a treatment writes."""

COLUMNS: dict[str, type] = {
    "day": np.int32,
    "hour": np.int8,
    "account": np.int64,
    "event": np.int8,
    "channel": np.int8,
    "outcome": np.int8,
    "amount": np.float64,
    "cost": np.float64,
    "duration_s": np.float64,
    "rule": np.int16,
    "bucket": np.int8,
    "offer": np.int8,
    "variant": np.int8,
}
TREATMENT_COLUMNS = ("offer", "variant")
"""Columns written by ``to_table`` only when the run used a treatment.

``offer``/``variant``: codes into ``vocab.OFFERS``/``vocab.VARIANTS`` on attempts of a
day with treatments (0 = none/standard), on treatment events, and on the instalment
plan events of offered plans; -1 elsewhere.
"""
_DEFAULTS = {
    "hour": -1,
    "channel": -1,
    "outcome": -1,
    "amount": 0.0,
    "cost": 0.0,
    "duration_s": 0.0,
    "rule": -1,
    "bucket": -1,
    "offer": -1,
    "variant": -1,
}


@dataclass
class Ledger:
    """Append-only event columns.

    Attributes:
        rules: names of the ``rule`` codes (compliance rule ids and resource names).
        valuation: how the run's scenario values it (``portfolio_value``); None = the
            neutral defaults of :class:`collsim.config.ValuationConfig`.
    """

    rules: list[str] = field(default_factory=list)
    valuation: ValuationConfig | None = None
    _batches: list[dict[str, np.ndarray]] = field(default_factory=list)
    _frozen: dict[str, np.ndarray] | None = None
    _rows: int = 0

    def rule_code(self, name: str) -> int:
        """Return (adding if new) the code of a rule or resource name."""
        if name not in self.rules:
            self.rules.append(name)
        return self.rules.index(name)

    def append(
        self, event: str, day: int, account: np.ndarray, **columns: np.ndarray | float | int
    ) -> None:
        """Append one batch of events of one kind; scalars are broadcast."""
        account = np.asarray(account, dtype=np.int64)
        if account.size == 0:
            return
        batch = {
            "day": np.full(account.shape[0], day, dtype=np.int32),
            "account": account,
            "event": np.full(account.shape[0], EVENT[event], dtype=np.int8),
        }
        size = account.shape[0]
        for name, default in _DEFAULTS.items():
            value = columns.pop(name, default)
            if np.ndim(value) == 0:
                batch[name] = np.full(size, value, dtype=COLUMNS[name])
                continue
            batch[name] = np.array(value, dtype=COLUMNS[name])  # a copy: ledger rows never change
            if batch[name].shape != (size,):
                raise ValueError(f"ledger column {name}: shape {batch[name].shape}, not ({size},)")
        if columns:
            raise TypeError(f"unknown ledger columns {sorted(columns)}")
        self._batches.append(batch)
        self._frozen = None
        self._rows += int(account.shape[0])

    def mark(self) -> int:
        """Return the number of rows so far (a bookmark for :meth:`since`)."""
        return self._rows

    def since(self, mark: int) -> dict[str, np.ndarray]:
        """Return the rows appended after ``mark`` as columns (without touching older rows)."""
        parts, start = [], 0
        for batch in self._batches:
            size = int(batch["day"].shape[0])
            if start + size > mark:
                offset = max(mark - start, 0)
                parts.append({name: col[offset:] for name, col in batch.items()})
            start += size
        if not parts:
            return {name: np.zeros(0, dtype=dtype) for name, dtype in COLUMNS.items()}
        return {name: np.concatenate([p[name] for p in parts]) for name in COLUMNS}

    def clear(self) -> None:
        """Forget all rows (rule names are kept); for long-running environments."""
        self._batches = []
        self._frozen = None
        self._rows = 0

    def columns(self) -> dict[str, np.ndarray]:
        """Return all events as concatenated columns (cached until the next append)."""
        if self._frozen is None:
            if self._batches:
                self._frozen = {
                    name: np.concatenate([b[name] for b in self._batches]) for name in COLUMNS
                }
                self._batches = [self._frozen]
            else:
                self._frozen = {name: np.zeros(0, dtype=dtype) for name, dtype in COLUMNS.items()}
        return self._frozen

    def __len__(self) -> int:
        return int(self.columns()["day"].shape[0])

    def treated(self) -> bool:
        """Whether any row carries a treatment (an offer or variant code above 0)."""
        cols = self.columns()
        return bool(
            np.any(cols["offer"] > 0)
            or np.any(cols["variant"] > 0)
            or bool(np.isin(cols["event"], _TREATMENT_EVENTS).any())
        )

    def to_table(self, account_id: np.ndarray) -> pa.Table:
        """Return the ledger as an Arrow table with names instead of codes.

        A run that used no treatment has no ``offer``/``variant`` columns; a run with
        treatments adds them.  The event dictionary is always the whole of ``EVENTS``.
        """
        cols = self.columns()
        treated = self.treated()
        events = EVENTS
        epoch = np.datetime64("1970-01-01", "D")

        def names(codes: np.ndarray, table: tuple[str, ...] | list[str], none: str) -> pa.Array:
            dictionary = pa.array([*table, none])
            index = np.where(codes < 0, len(table), codes).astype(np.int32)
            return pa.DictionaryArray.from_arrays(pa.array(index), dictionary)

        table = {
            "date": pa.array(epoch + cols["day"].astype("timedelta64[D]")),
            "local_hour": pa.array(cols["hour"]),
            "account_id": pa.array(
                np.asarray(account_id, dtype=object)[cols["account"]], pa.string()
            ),
            "event": names(cols["event"], events, ""),
            "channel": names(cols["channel"], CHANNELS, "none"),
            "outcome": names(cols["outcome"], OUTCOMES, ""),
            "amount": pa.array(cols["amount"]),
            "cost": pa.array(cols["cost"]),
            "duration_s": pa.array(cols["duration_s"]),
            "blocked": pa.array(cols["event"] == EVENT["blocked"]),
            "rule_id": names(cols["rule"], self.rules, ""),
            "bucket": names(cols["bucket"], BUCKETS, ""),
        }
        if treated:
            table["offer"] = names(cols["offer"], OFFERS, "")
            table["variant"] = names(cols["variant"], VARIANTS, "")
        return pa.table(table)

    def write_parquet(self, path: str | Path, account_id: np.ndarray) -> None:
        """Write the ledger as Parquet, atomically."""
        table = self.to_table(account_id)
        atomic_write(path, lambda temp: pq.write_table(table, temp, compression="zstd"))
