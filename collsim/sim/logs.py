"""A simulated run's logs in the lender-log formats of :mod:`collsim.logs`.

The simulator's own logs go through the same door as a lender's: the account
snapshot at the start of the run, the contact attempts and the payments of the
ledger, written as the three files :func:`collsim.logs.load_logs` reads.

The ledger does not hold everything a lender log has, so a :class:`LogRecorder`
watches the run without changing it: it keeps the portfolio at the start, each day's
plan ``propensity`` and ``holdout``, and the promise (date and amount) each
``promise_to_pay`` contact made, read from the account state at the end of its day.

Mapping of the ledger: an ``attempt`` event is a contact (its outcome as is; the
simulator does not log reads, so messages are ``delivered`` or ``not_delivered``),
a ``payment`` event is a payment whose channel follows the contact that triggered
it (:data:`PAYMENT_CHANNEL_OF_CONTACT`).  Events without a local hour (letters, legal
filings, payments from the repayment hazard, promises kept, instalments,
garnishments) are stamped at the start of their account's local day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from collsim.history import History
from collsim.ledger import EVENT
from collsim.logs import (
    PAYMENT_CHANNELS,
    Contacts,
    Logs,
    LogWindow,
    Payments,
    write_logs,
)
from collsim.plan import Plan, Policy, Snapshot
from collsim.portfolio import Portfolio, date_of
from collsim.sim.engine import Simulation, history_from_ledger
from collsim.sim.latent import LatentAware, LatentView
from collsim.tables import local_hour_utc_s
from collsim.vocab import CHANNELS, Outcome

_CONTACT_TO_PAYMENT = {
    "none": "other",
    "agent_call": "agent",
    "voice_bot": "self_service",
    "sms": "self_service",
    "email": "self_service",
    "app_push": "self_service",
    "letter": "self_service",
    "field_visit": "field",
    "legal": "legal",
}
PAYMENT_CHANNEL_OF_CONTACT = np.array(
    [PAYMENT_CHANNELS.index(_CONTACT_TO_PAYMENT[c]) for c in ("none", *CHANNELS)],
    dtype=np.int8,
)
"""Payment channel code of a ledger payment, indexed by its contact channel code + 1.

No triggering contact (``none``: the repayment hazard, promises kept, plan
instalments) is ``other``; a payment link (message or letter) or the voice bot is
``self_service``; an agent call ``agent``; a field visit ``field``; legal ``legal``.
"""


@dataclass
class _Promises:
    """Promises made, one entry per (day, account): due day and amount."""

    day: list[np.ndarray] = field(default_factory=list)
    account: list[np.ndarray] = field(default_factory=list)
    due_day: list[np.ndarray] = field(default_factory=list)
    amount: list[np.ndarray] = field(default_factory=list)

    def keys_and_values(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sorted keys day * n + account, due day, amount) of every promise recorded."""
        if not self.day:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0)
        keys = np.concatenate(self.day) * n + np.concatenate(self.account)
        order = np.argsort(keys, kind="stable")
        due = np.concatenate(self.due_day)[order]
        return keys[order], due.astype(np.int32), np.concatenate(self.amount)[order]


class LogRecorder:
    """Watches a run for what its logs need and the ledger lacks; changes nothing in it.

    Create it before the first day; run the simulation with :meth:`wrap` of the policy
    and call :meth:`end_of_day` after each day (e.g. as ``Simulation.run``'s progress).

    Args:
        sim: the simulation, before its first day.

    Raises:
        ValueError: ``sim`` has already simulated a day.
    """

    def __init__(self, sim: Simulation) -> None:
        if sim.day_index != 0:
            raise ValueError(
                f"LogRecorder needs a simulation before its first day, not day {sim.day_index}"
            )
        self.sim = sim
        self.accounts: Portfolio = sim.portfolio.copy()
        self.first_day = sim.day
        self.propensity: list[np.ndarray] = []
        self.holdout: list[np.ndarray] = []
        self.promises = _Promises()

    def wrap(self, policy: Policy) -> Policy:
        """Return ``policy`` recording each plan (a latent-aware policy stays latent-aware)."""
        if isinstance(policy, LatentAware):
            return _LatentPlanRecorder(policy, self)
        return _PlanRecorder(policy, self)

    def record_plan(self, plan: Plan) -> None:
        """Keep a day's plan propensity and holdout."""
        self.propensity.append(np.array(plan.propensity, dtype=np.float64))
        self.holdout.append(np.array(plan.holdout, dtype=bool))

    def end_of_day(self, *_: object) -> None:
        """Record the promises made today (the day just finished) from the account state."""
        day = self.sim.day - 1
        events = self.sim.day_events()
        made = (events["event"] == EVENT["attempt"]) & (events["outcome"] == Outcome.PROMISE_TO_PAY)
        who = np.unique(events["account"][made])
        who = who[self.sim.contact.last_promise_day[who] == day]
        due = self.sim.portfolio.promise_due_day[who]
        amount = self.sim.portfolio.promise_amount[who]
        known = (due >= 0) & (amount > 0)  # a promise of nothing is logged as unknown
        who, due = who[known], due[known]
        self.promises.day.append(np.full(who.size, day, dtype=np.int64))
        self.promises.account.append(who)
        self.promises.due_day.append(due.astype(np.int32))
        self.promises.amount.append(self.sim.portfolio.promise_amount[who].copy())


class _PlanRecorder:
    """A policy that records each plan of the policy it wraps."""

    def __init__(self, inner: Policy, recorder: LogRecorder) -> None:
        self.inner = inner
        self.recorder = recorder
        self.policy_id = inner.policy_id

    def decide(self, snapshot: Snapshot) -> Plan:
        plan = self.inner.decide(snapshot)
        self.recorder.record_plan(plan)
        return plan


class _LatentPlanRecorder(_PlanRecorder):
    """A recording wrapper of a latent-aware (research) policy."""

    def observe_latent(self, view: LatentView) -> None:
        assert isinstance(self.inner, LatentAware)
        self.inner.observe_latent(view)


def _contacts(recorder: LogRecorder) -> Contacts:
    """The ledger's attempts as contacts, in ledger order."""
    sim, accounts = recorder.sim, recorder.accounts
    columns = sim.ledger.columns()
    attempt = columns["event"] == EVENT["attempt"]
    history = history_from_ledger(sim.ledger)
    day_index = history.local_day - recorder.first_day
    promise_day, promise_amount = _promise_columns(recorder, history)
    if recorder.propensity:
        propensity = np.stack(recorder.propensity)[day_index, history.account]
        holdout = np.stack(recorder.holdout)[day_index, history.account].astype(np.int8)
    else:
        propensity, holdout = np.full(history.m, np.nan), np.full(history.m, -1, np.int8)
    return Contacts(
        history=history,
        timestamp_utc_s=local_hour_utc_s(
            accounts, history.account, history.local_day, history.local_hour
        ),
        outcome=history.outcome.copy(),
        promise_day=promise_day,
        promise_amount=promise_amount,
        offer=np.maximum(columns["offer"][attempt], 0).astype(np.int8),
        variant=np.maximum(columns["variant"][attempt], 0).astype(np.int8),
        propensity=propensity,
        holdout=holdout,
    )


def _promise_columns(recorder: LogRecorder, history: History) -> tuple[np.ndarray, np.ndarray]:
    """(due day, amount) of the promise each ``promise_to_pay`` row made; -1/NaN if unknown.

    An account makes at most one promise a day: if it has several ``promise_to_pay``
    rows that day, the last one gets it.
    """
    out_day = np.full(history.m, -1, dtype=np.int32)
    out_amount = np.full(history.m, np.nan)
    n = recorder.sim.n
    keys, due, amount = recorder.promises.keys_and_values(n)
    rows = np.flatnonzero(history.outcome == Outcome.PROMISE_TO_PAY)
    if keys.size == 0 or rows.size == 0:
        return out_day, out_amount
    row_keys = history.local_day[rows].astype(np.int64) * n + history.account[rows]
    _, last_from_end = np.unique(row_keys[::-1], return_index=True)
    rows, row_keys = rows[::-1][last_from_end], row_keys[::-1][last_from_end]
    at = np.minimum(np.searchsorted(keys, row_keys), keys.size - 1)
    found = keys[at] == row_keys
    out_day[rows[found]] = due[at[found]]
    out_amount[rows[found]] = amount[at[found]]
    return out_day, out_amount


def _payments(recorder: LogRecorder) -> Payments:
    """The ledger's payment events as payments, in ledger order."""
    c = recorder.sim.ledger.columns()
    paid = c["event"] == EVENT["payment"]
    account = c["account"][paid].astype(np.int64)
    day = c["day"][paid].astype(np.int64)
    hour = np.maximum(c["hour"][paid], 0).astype(np.int64)
    return Payments(
        account=account,
        timestamp_utc_s=local_hour_utc_s(recorder.accounts, account, day, hour),
        amount=c["amount"][paid].astype(np.float64),
        channel=PAYMENT_CHANNEL_OF_CONTACT[c["channel"][paid].astype(np.int64) + 1],
    )


def simulated_logs(recorder: LogRecorder) -> Logs:
    """Return the logs of the run ``recorder`` watched (read after the run).

    The window runs from the first simulated day to the last one finished.
    """
    sim = recorder.sim
    window = LogWindow(date_of(recorder.first_day), date_of(max(sim.day - 1, recorder.first_day)))
    return Logs(recorder.accounts, _contacts(recorder), _payments(recorder), window)


def write_simulated_logs(
    recorder: LogRecorder, folder: str | Path, force: bool = False, csv: bool = False
) -> tuple[Path, ...]:
    """Write the run's ``accounts``, ``contacts`` and ``payments`` files into ``folder``.

    Args:
        recorder: the recorder that watched the run.
        folder: the target folder (created if missing).
        force: replace existing files; without it nothing is written if any exists.
        csv: write CSV files instead of Parquet.

    Raises:
        FileExistsError: a target exists and ``force`` is False.
    """
    return write_logs(simulated_logs(recorder), folder, force, csv)


__all__ = [
    "PAYMENT_CHANNEL_OF_CONTACT",
    "LogRecorder",
    "simulated_logs",
    "write_simulated_logs",
]
