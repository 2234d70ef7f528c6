"""Off-policy evaluation of a policy artifact from lender log files (``collsim evaluate-offline``).

Input: the three log files of :mod:`collsim.logs` (accounts, contacts with
``propensity`` and ``holdout``, payments), read by :func:`collsim.logs.load_logs`,
and a policy artifact (:func:`collsim.export.load_artifact`).  docs/offline.md
describes the command; this docstring is the exact definition.

Decision context (an approximation, the logs hold no daily snapshots).  For each
decision day ``d`` of the window (the first ``end - H + 1`` days), the accounts are
the account snapshot of the window start rolled forward with what the logs say
happened before ``d``:

* ``paid(d)``: payments on local days ``start..d-1``; ``balance = balance₀ − paid``
  and ``amount_due = amount_due₀ − paid`` (floored at 0);
* an account whose ``amount_due`` is paid (``paid ≥ amount_due₀ > 0``) or whose
  balance is paid is cured (``dpd = 0``); otherwise ``dpd = dpd₀ + (d − start)``
  when ``dpd₀ > 0`` (no new delinquency, no monthly instalments falling due);
* the open promise is the last ``promise_to_pay`` before ``d`` whose
  ``promise_date`` is on or after ``d``; a ``cease_request`` or ``dispute`` before
  ``d`` sets ``cease_communication`` / ``dispute_open``;
* the contact history is the logged contacts of days before ``d`` (nothing before
  the window start: the first days' 7-day counts are short);
* capacity: ample (no agent pool or budget binds) unless a capacity file is given.

The snapshot is built by the production builder
(:func:`collsim.export.daily.build_snapshot`) with the artifact's rule set (its
``legal_min_dpd`` floor applied) and option space, so the candidate decides as it
would in ``collsim plan``.  The rows ("considered" account-days) are the accounts
in collection that day (``dpd > 0``) plus any account with a logged contact.

Logged action of a row: the first contact of the account that local day (channel
and local hour; untimed channels letter/legal have no hour), or ``none``.  Its
logging probability ``μ``: the contact's ``propensity``; for ``none`` (the logs
have no row for an account left alone) either ``--none-propensity P`` or, by
default, the share of rows with no contact among the rows of the same day, DPD
bucket and candidate decision (contact or not) — exact when the logging plan leaves
accounts of such a stratum alone with one probability (a random holdout around
a deterministic policy, random exploration), an estimate otherwise.

Reward of a row (``collsim.valuation``'s portfolio value, per decision), over the
``H = horizon_days`` local days ``d..d+H-1`` and discounted to ``d`` at
``valuation.npv_rate_annual`` (``f(t) = (1 + r) ** (-t / 365)``)::

    reward = Σ_e f(e − d) · [payments(e) − contact costs(e) − complaint_cost · complaints(e)]
             + f(H) · V(d + H) − V(d)

with contact costs the artifact's ``cost_per_attempt`` of every logged contact (plus
the scenario's ``legal.cost_per_case`` for ``legal``) and ``V(t)`` the open balance at
``t`` times ``valuation.terminal_recovery_by_bucket`` of the reconstructed state
(cured: ``current``; paid off: 0; else the DPD bucket).  Cure: the account is cured
by ``d + H``.  Complaints: ``complaint`` outcomes in ``d..d+H-1``.

Estimators (shared with :mod:`collsim.evaluation.ope`): ``w = 1[candidate action =
logged action] / μ``; IPW ``Σ w r / n``; SNIPW ``Σ w r / Σ w``; DR
``Σ (q̂(x, π(x)) + w (r − q̂(x, a))) / n`` with a cross-fitted per-channel ridge
outcome model on the observable features.  Intervals: bootstrap over accounts.
Like the in-simulation estimand, this is the one-decision value of the candidate
on the logged states (later days keep the logged actions).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from collsim.compliance import load_ruleset, with_legal_floor
from collsim.config import ValuationConfig, load_capacity, load_scenario
from collsim.evaluation.ope import (
    Estimate,
    Interval,
    LoggedData,
    cluster_codes,
    dr_terms,
    importance_weights,
    ratio_estimates,
    ridge_predictions,
)
from collsim.export import load_artifact
from collsim.export.artifact import ArtifactPolicy
from collsim.export.daily import SnapshotSource, build_snapshot, day_resources
from collsim.features import observable_features
from collsim.history import History
from collsim.io import atomic_write_text
from collsim.logs import Logs, LogWindow, load_logs, log_file
from collsim.plan import OptionSpace, Plan, Resources
from collsim.portfolio import Portfolio, day_number
from collsim.tables import InputError, Problem, write_atomically
from collsim.timeutil import utc_to_local
from collsim.valuation import CLOSED_STATE, CURRENT, terminal_rates
from collsim.vocab import IS_TIMED, Channel, Outcome, bucket_of

EXIT_OK = 0
EXIT_THIN_SUPPORT = 2
OFF_SLOT = -2
"""Logged option code of a timed contact outside the artifact's operating slots."""
REPORT_JSON = "report.json"
ESTIMATES_PARQUET = "estimates.parquet"
OUTCOMES = ("portfolio_value", "cure_rate", "complaints")


@dataclass(frozen=True)
class OfflineSettings:
    """How ``evaluate-offline`` estimates and when it refuses.

    Attributes:
        horizon_days: H, the reward window after each decision, in days.
        none_propensity: the logging probability of ``none`` (None: estimated).
        n_boot: bootstrap resamples (over accounts).
        min_ess: refuse (exit 2) below this effective sample size.
        min_overlap: refuse below this share of rows whose candidate action the
            logging plan could have taken.
        level: interval level.
        seed: seeds the one SeedSequence of the run (bootstrap, cross-fitting).
        capacity: a capacity YAML (None: ample capacity).
        ruleset: a rule set name or YAML instead of the artifact's.
        scenario: the scenario whose valuation and legal cost apply (None: the artifact's).
    """

    horizon_days: int = 14
    none_propensity: float | None = None
    n_boot: int = 200
    min_ess: float = 100.0
    min_overlap: float = 0.8
    level: float = 0.95
    seed: int = 0
    capacity: Path | None = None
    ruleset: str | None = None
    scenario: str | None = None


# --------------------------------------------------------------------------- checks
def _first_bad(logs: Logs, path: str, bad: np.ndarray, column: str, message: str) -> Problem:
    """A Problem naming the first bad contact row (file order) and how many there are."""
    rows = np.flatnonzero(bad)
    file_row = logs.contacts.file_row
    at_file = rows + 1 if file_row is None else file_row[rows]
    first = int(np.argmin(at_file))
    row = int(at_file[first])
    value = _contact_value(logs, rows[first], column)
    more = f" ({rows.size} such rows)" if rows.size > 1 else ""
    return Problem(path, row, column, value, message + more)


def _contact_value(logs: Logs, row: int, column: str) -> str:
    c = logs.contacts
    if column == "propensity":
        return "" if np.isnan(c.propensity[row]) else repr(float(c.propensity[row]))
    return {1: "true", 0: "false"}.get(int(c.holdout[row]), "")


def ope_problems(logs: Logs, contacts_path: str) -> list[Problem]:
    """What makes valid logs unusable for off-policy evaluation (empty if nothing).

    The reader already refuses unknown outcomes and a propensity outside (0, 1]
    (including 0).  Here: a contact of a collsim plan (``holdout`` false) without a
    propensity, a contact from no collsim plan (both empty: its probability is
    unknown), and a held-out account that was contacted (the control arm is broken).
    Only the first row of each kind is named, with the count.
    """
    c = logs.contacts
    missing = np.isnan(c.propensity)
    checks = [
        (missing & (c.holdout == 0), "propensity",
         "missing on a contact of a collsim plan (holdout false); evaluate-offline needs the "
         "probability the plan gave every logged contact"),
        (missing & (c.holdout < 0), "propensity",
         "missing and holdout empty: a contact from no collsim plan has no known probability, "
         "so the logs cannot be reweighted"),
        (c.holdout == 1, "holdout",
         "a held-out (control) account was contacted; the holdout arm must have no contact "
         "for off-policy evaluation"),
    ]  # fmt: skip
    return [_first_bad(logs, contacts_path, bad, col, msg) for bad, col, msg in checks if bad.any()]


def load_checked_logs(folder: Path, window: LogWindow) -> Logs:
    """Load the logs and refuse (InputError, one problem per kind) what OPE cannot use."""
    logs = load_logs(folder, window)
    problems = ope_problems(logs, str(log_file(folder, "contacts")))
    if problems:
        raise InputError(problems[:1])
    return logs


# --------------------------------------------------------------------------- event sums
@dataclass(frozen=True)
class _Events:
    """Per-account events on local day offsets (0 = window start), summable over windows.

    ``cum[account, t]`` is the sum of the account's values on offsets ``0..t-1``.
    """

    cum: np.ndarray

    @classmethod
    def of(
        cls, account: np.ndarray, offset: np.ndarray, value: np.ndarray, n_accounts: int, span: int
    ) -> _Events:
        key = account.astype(np.int64) * span + offset.astype(np.int64)
        daily = np.bincount(key, weights=value, minlength=n_accounts * span)
        cum = np.zeros((n_accounts, span + 1))
        np.cumsum(daily.reshape(n_accounts, span), axis=1, out=cum[:, 1:])
        return cls(cum)

    def between(self, account: np.ndarray, first: np.ndarray, stop: np.ndarray) -> np.ndarray:
        """Σ value of each account's events on offsets first..stop-1."""
        return self.cum[account, stop] - self.cum[account, first]


def _discount(offset: np.ndarray, valuation: ValuationConfig) -> np.ndarray:
    """f(t) = (1 + r) ** (-t / 365)."""
    return (1.0 + valuation.npv_rate_annual) ** (-np.asarray(offset, dtype=float) / 365.0)


@dataclass(frozen=True)
class _LogDays:
    """The logs on local day offsets from the window start."""

    start: int
    span: int
    contact_offset: np.ndarray
    payment_offset: np.ndarray

    @classmethod
    def of(cls, logs: Logs) -> _LogDays:
        start = day_number(logs.window.start)
        c_off = logs.contacts.history.local_day.astype(np.int64) - start
        p = logs.payments
        a = logs.accounts
        p_day, _ = utc_to_local(a.timezones, a.timezone[p.account], p.timestamp_utc_s)
        p_off = np.asarray(p_day, dtype=np.int64) - start
        last = max(int(c_off.max(initial=0)), int(p_off.max(initial=0)))
        if logs.window.end is not None:
            last = max(last, day_number(logs.window.end) - start)
        return cls(start, last + 2, c_off, p_off)


# --------------------------------------------------------------------------- state
@dataclass
class _State:
    """The accounts rolled forward day by day (see the module docstring)."""

    base: Portfolio
    paid: np.ndarray
    promise_day: np.ndarray
    promise_amount: np.ndarray
    cease: np.ndarray
    dispute: np.ndarray

    @classmethod
    def start(cls, accounts: Portfolio) -> _State:
        return cls(
            accounts,
            np.zeros(accounts.n),
            np.asarray(accounts.promise_due_day, dtype=np.int32).copy(),
            np.asarray(accounts.promise_amount, dtype=float).copy(),
            np.asarray(accounts.cease_communication, dtype=bool).copy(),
            np.asarray(accounts.dispute_open, dtype=bool).copy(),
        )

    def absorb(self, logs: Logs, days: _LogDays, offset: int) -> None:
        """Add the payments and contacts of day ``offset``."""
        p = logs.payments
        today = days.payment_offset == offset
        np.add.at(self.paid, p.account[today], p.amount[today])
        c = logs.contacts
        rows = np.flatnonzero(days.contact_offset == offset)
        account, outcome = c.history.account[rows], c.outcome[rows]
        promised = rows[(outcome == Outcome.PROMISE_TO_PAY) & (c.promise_day[rows] >= 0)]
        self.promise_day[c.history.account[promised]] = c.promise_day[promised]
        self.promise_amount[c.history.account[promised]] = np.nan_to_num(
            c.promise_amount[promised], nan=0.0
        )
        self.cease[account[outcome == Outcome.CEASE_REQUEST]] = True
        self.dispute[account[outcome == Outcome.DISPUTE]] = True

    def cured(self) -> np.ndarray:
        """bool [N]: amount due or balance paid since the window start."""
        a = self.base
        due = np.asarray(a.amount_due, dtype=float)
        return ((due > 0) & (self.paid >= due)) | (self.paid >= np.asarray(a.balance) - 1e-9)

    def portfolio(self, offset: int, day: int) -> Portfolio:
        """The accounts on day ``start + offset``."""
        a = self.base
        dpd0 = np.asarray(a.dpd, dtype=np.int64)
        dpd = np.where(self.cured() | (dpd0 <= 0), 0, dpd0 + offset).astype(np.int32)
        open_promise = self.promise_day >= day
        return dataclasses.replace(
            a,
            balance=np.maximum(np.asarray(a.balance, dtype=float) - self.paid, 0.0),
            amount_due=np.maximum(np.asarray(a.amount_due, dtype=float) - self.paid, 0.0),
            dpd=dpd,
            promise_due_day=np.where(open_promise, self.promise_day, -1).astype(np.int32),
            promise_amount=np.where(open_promise, self.promise_amount, 0.0),
            cease_communication=self.cease.copy(),
            dispute_open=self.dispute.copy(),
        )


def _history_before(history: History, day: int) -> History:
    keep = np.flatnonzero(np.asarray(history.local_day) < day)
    return History(
        account=history.account[keep],
        local_day=history.local_day[keep],
        local_hour=history.local_hour[keep],
        channel=history.channel[keep],
        outcome=history.outcome[keep],
        conversation=history.conversation[keep],
    )


def _ample_resources(options: OptionSpace, zones: int, costs: dict[str, float]) -> Resources:
    """Resources no plan exhausts: every option uses no resource."""
    from collsim.vocab import CHANNELS

    return Resources(
        names=("unlimited",),
        capacity=np.array([np.iinfo(np.int64).max // 4], dtype=np.int64),
        resource_by_zone=np.full((max(zones, 1), options.n_options), -1, dtype=np.int32),
        cost_per_attempt=np.array([costs.get(c, 0.0) for c in CHANNELS]),
        pool_of_resource=(None,),
    )


# --------------------------------------------------------------------------- decisions
@dataclass
class _Rows:
    """Considered account-days, appended day by day.

    Each column is one buffer of ``capacity`` rows (accounts × decision days, the
    most there can be), allocated at its first append: the pages never written
    take no memory, and no concatenation copies the rows at the end.
    """

    capacity: int
    n: int = 0
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def append(self, **parts: np.ndarray) -> None:
        size = next(iter(parts.values())).shape[0]
        for name, part in parts.items():
            if name not in self.columns:
                shape = (self.capacity, *part.shape[1:])
                self.columns[name] = np.empty(shape, dtype=part.dtype)
            self.columns[name][self.n : self.n + size] = part
        self.n += size

    def cat(self, name: str) -> np.ndarray:
        """The column ``name`` of the rows appended so far (a view)."""
        return self.columns[name][: self.n]


def _first_contacts(logs: Logs, days: _LogDays) -> np.ndarray:
    """int64 [span, accounts]: the row of each account's first contact that day (-1: none)."""
    c = logs.contacts.history
    n = logs.accounts.n
    key = days.contact_offset * n + c.account.astype(np.int64)
    _, first = np.unique(key, return_index=True)
    out = np.full(days.span * n, -1, dtype=np.int64)
    out[key[first]] = first
    return out.reshape(days.span, n)


def _option_codes(channel: np.ndarray, hour: np.ndarray, options: OptionSpace) -> np.ndarray:
    """Option codes of logged contacts; a timed contact off the slots gets ``OFF_SLOT``."""
    lookup = np.full(24, -1, dtype=np.int64)
    lookup[options.slot_hours] = np.arange(options.n_slots)
    channel = channel.astype(np.int64)
    timed = IS_TIMED[channel]
    slot = np.where(timed, lookup[np.clip(hour.astype(np.int64), 0, 23)], 0)
    return np.where(slot < 0, OFF_SLOT, channel * options.n_slots + np.maximum(slot, 0))


def _decide_day(context: _Context, state: _State, offset: int, rows: _Rows) -> None:
    """Reconstruct day ``offset``, let the candidate decide, append the considered rows."""
    day = context.days.start + offset
    portfolio = state.portfolio(offset, day)
    resources = context.resources(portfolio, day)
    source = SnapshotSource(portfolio, _history_before(context.logs.contacts.history, day),
                            context.ruleset)  # fmt: skip
    snapshot, _ = build_snapshot(source, context.options, resources, day, context.seed)
    plan: Plan = context.policy.decide(snapshot)
    candidate = context.options.encode(plan.channel, plan.slot_hour)
    n = portfolio.n
    logged = np.full(n, -1, dtype=np.int64)
    propensity = np.full(n, np.nan)
    row = context.first[offset]
    contacted = row >= 0
    row = row[contacted]
    logged[contacted] = context.first_option[row]
    propensity[contacted] = context.logs.contacts.propensity[row]
    keep = np.flatnonzero(snapshot.active | contacted)
    rows.append(
        day=np.full(keep.size, offset, dtype=np.int64), account=keep,
        features=observable_features(snapshot)[keep], logged=logged[keep],
        propensity=propensity[keep], candidate=candidate[keep].astype(np.int64),
        bucket=bucket_of(portfolio.dpd[keep]).astype(np.int64),
    )  # fmt: skip


@dataclass
class _Context:
    """What every decision day shares."""

    logs: Logs
    days: _LogDays
    policy: ArtifactPolicy
    options: OptionSpace
    ruleset: Any
    resources: Callable[[Portfolio, int], Resources]
    first: np.ndarray
    first_option: np.ndarray
    seed: int


def _context(logs: Logs, policy: ArtifactPolicy, settings: OfflineSettings, seed: int) -> _Context:
    days = _LogDays.of(logs)
    ruleset = load_ruleset(settings.ruleset or str(policy.manifest["ruleset"]))
    ruleset = with_legal_floor(ruleset, int(policy.manifest.get("legal_min_dpd", 0)))
    options, costs = policy.options, policy.cost_per_attempt
    if settings.capacity is not None:
        capacity = load_capacity(settings.capacity)

        def resources(portfolio: Portfolio, day: int) -> Resources:
            return day_resources(capacity, options, portfolio, day, costs)
    else:
        ample = _ample_resources(options, len(logs.accounts.timezones), costs)

        def resources(portfolio: Portfolio, day: int) -> Resources:
            return ample

    h = logs.contacts.history
    first_option = _option_codes(h.channel, h.local_hour, options)
    first = _first_contacts(logs, days)
    return _Context(logs, days, policy, options, ruleset, resources, first, first_option, seed)


# --------------------------------------------------------------------------- outcomes
def _outcomes(
    logs: Logs, days: _LogDays, context: _Context, rows: _Rows, horizon: int, valuation: Any
) -> dict[str, np.ndarray]:
    """Per-row reward (portfolio value), cure by d + H and complaints in d..d+H-1."""
    a, c, p = logs.accounts, logs.contacts, logs.payments
    account, offset = rows.cat("account"), rows.cat("day")
    stop = offset + horizon
    f = _discount(np.arange(days.span + horizon + 1), valuation)

    def window_sum(who: np.ndarray, at: np.ndarray, value: np.ndarray) -> np.ndarray:
        return _Events.of(who, at, value, a.n, days.span).between(account, offset, stop)

    costs = np.array([context.policy.cost_per_attempt.get(n, 0.0) for n in _channel_names()])
    cost = costs[c.history.channel.astype(np.int64)]
    cost = cost + np.where(c.history.channel == Channel.LEGAL, valuation.legal_cost, 0.0)
    complaint = (c.outcome == Outcome.COMPLAINT).astype(float)
    spent = cost + valuation.complaint_cost * complaint
    pay_off, contact_off = days.payment_offset, days.contact_offset
    cash = window_sum(p.account, pay_off, p.amount * f[pay_off])
    cash -= window_sum(c.history.account, contact_off, spent * f[contact_off])
    cash /= f[offset]
    complaints = window_sum(c.history.account, contact_off, complaint)
    raw_pay = _Events.of(p.account, pay_off, p.amount, a.n, days.span)
    value_now = _open_value(a, account, offset, raw_pay.cum[account, offset], valuation)
    paid_end = raw_pay.cum[account, stop]
    del raw_pay
    value_end = _open_value(a, account, stop, paid_end, valuation)
    due = np.asarray(a.amount_due, dtype=float)[account]
    balance = np.asarray(a.balance, dtype=float)[account]
    cured = ((due > 0) & (paid_end >= due)) | (paid_end >= balance - 1e-9)
    return {
        "portfolio_value": cash + f[horizon] * value_end - value_now,
        "cure_rate": cured.astype(float),
        "complaints": complaints,
    }


def _channel_names() -> tuple[str, ...]:
    from collsim.vocab import CHANNELS

    return CHANNELS


def _open_value(
    a: Portfolio, account: np.ndarray, offset: np.ndarray, paid: np.ndarray, valuation: Any
) -> np.ndarray:
    """V(t): open balance × recovery of the reconstructed state at offset ``t``."""
    balance = np.maximum(np.asarray(a.balance, dtype=float)[account] - paid, 0.0)
    due = np.asarray(a.amount_due, dtype=float)[account]
    dpd0 = np.asarray(a.dpd, dtype=np.int64)[account]
    state = bucket_of(np.where(dpd0 > 0, dpd0 + offset, 0)).astype(np.int64)
    state[((due > 0) & (paid >= due)) | (dpd0 <= 0)] = CURRENT
    state[balance <= 0] = CLOSED_STATE
    return balance * terminal_rates(valuation.config)[state]


@dataclass(frozen=True)
class _Valuation:
    config: ValuationConfig
    legal_cost: float

    @property
    def npv_rate_annual(self) -> float:
        return self.config.npv_rate_annual

    @property
    def complaint_cost(self) -> float:
        return self.config.complaint_cost


def _valuation(policy: ArtifactPolicy, settings: OfflineSettings) -> _Valuation:
    scenario = load_scenario(settings.scenario or str(policy.manifest.get("scenario", "default")))
    return _Valuation(scenario.valuation, float(scenario.legal.cost_per_case))


# --------------------------------------------------------------------------- estimation
def _none_propensity(
    rows: _Rows, logged: np.ndarray, candidate: np.ndarray, given: float | None
) -> np.ndarray:
    """μ(none | x) per row: ``given``, or the share of no contact in its stratum."""
    if given is not None:
        return np.full(logged.size, float(given))
    stratum = (rows.cat("day") * 8 + rows.cat("bucket")) * 2 + (candidate >= 0)
    group = cluster_codes(stratum)
    total = np.bincount(group)
    left_alone = np.bincount(group, weights=(logged == -1).astype(float))
    return (left_alone / total)[group]


@dataclass(frozen=True)
class Diagnostics:
    """Weight and support diagnostics of the candidate on the logs.

    Attributes:
        rows: considered account-days.
        accounts: distinct accounts among them.
        ess: effective sample size ``(Σ w)² / Σ w²``.
        max_weight: the largest weight.
        top1_weight_share: share of Σ w carried by the 1 % largest weights.
        mean_weight: mean w (≈ 1 when the propensities are right).
        overlap: share of rows whose candidate action the logging plan could have
            taken (it is the logged action, or the logged action's μ < 1).
        agreement: share of rows where the candidate took the logged action.
        candidate_contact_share: share of rows the candidate contacts.
        logged_contact_share: share of rows with a logged contact.
    """

    rows: int
    accounts: int
    ess: float
    max_weight: float
    top1_weight_share: float
    mean_weight: float
    overlap: float
    agreement: float
    candidate_contact_share: float
    logged_contact_share: float


def diagnostics(
    w: np.ndarray, matched: np.ndarray, mu: np.ndarray, account: np.ndarray,
    candidate: np.ndarray, logged: np.ndarray,
) -> Diagnostics:  # fmt: skip
    """Weight diagnostics, overlap and agreement (see :class:`Diagnostics`)."""
    total = float(w.sum())
    top = max(1, int(np.ceil(0.01 * w.size)))
    top_share = float(np.partition(w, w.size - top)[-top:].sum() / total) if total > 0 else 0.0
    return Diagnostics(
        rows=int(w.size),
        accounts=int(np.count_nonzero(np.bincount(account))) if w.size else 0,
        ess=float(total**2 / max(float((w**2).sum()), 1e-300)),
        max_weight=float(w.max(initial=0.0)),
        top1_weight_share=top_share,
        mean_weight=float(w.mean()) if w.size else 0.0,
        overlap=float(np.mean(matched | (mu < 1.0 - 1e-9))) if w.size else 0.0,
        agreement=float(matched.mean()) if w.size else 0.0,
        candidate_contact_share=float(np.mean(candidate >= 0)) if w.size else 0.0,
        logged_contact_share=float(np.mean(logged != -1)) if w.size else 0.0,
    )


def _estimates(
    data: LoggedData, w: np.ndarray, outcomes: dict[str, np.ndarray],
    settings: OfflineSettings, seeds: np.random.SeedSequence,
) -> dict[str, dict[str, Estimate]]:  # fmt: skip
    """Logged mean, IPW, SNIPW and DR of each outcome, bootstrap intervals over accounts."""
    ones = np.ones(data.n)
    # (bootstrap, cross-fitting) seeds per outcome; one bootstrap serves all outcomes
    pairs = [[int(s.generate_state(1)[0]) for s in seeds.spawn(2)] for _ in outcomes]
    predictions = ridge_predictions(data, list(outcomes.values()), [fit for _, fit in pairs], 2)
    terms: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for (name, reward), (q_logged, q_target) in zip(outcomes.items(), predictions, strict=True):
        terms |= {
            (name, "logged"): (reward, ones),
            (name, "ipw"): (w * reward, ones),
            (name, "snipw"): (w * reward, w),
            (name, "dr"): (dr_terms(q_target, q_logged, w, reward), ones),
        }
    interval = Interval(settings.level, "bootstrap", settings.n_boot, pairs[0][0])
    out: dict[str, dict[str, Estimate]] = {name: {} for name in outcomes}
    for (name, label), estimate in ratio_estimates(terms, data.account, interval).items():
        out[name][label] = dataclasses.replace(estimate, name=label)
    return out


@dataclass(frozen=True)
class OfflineResult:
    """What ``evaluate-offline`` found.

    Attributes:
        report: the JSON report (see docs/offline.md).
        estimates: outcome → estimator → estimate.
        diagnostics: weights and support.
        problems: why support is too thin (empty when it is not).
    """

    report: dict[str, Any]
    estimates: dict[str, dict[str, Estimate]]
    diagnostics: Diagnostics
    problems: list[str]


def evaluate_offline(
    logs: Logs,
    policy: ArtifactPolicy,
    settings: OfflineSettings,
    progress: Callable[[int, int], None] | None = None,
) -> OfflineResult:
    """Estimate the candidate ``policy``'s value on ``logs`` (see the module docstring).

    Args:
        logs: lender logs, checked with :func:`ope_problems`.
        policy: the candidate artifact.
        settings: horizon, propensity of ``none``, bootstrap, thresholds.
        progress: called with (days done, days) after each decision day.

    Raises:
        ValueError: the window is shorter than the horizon, or nothing was considered.
    """
    seeds = np.random.SeedSequence(settings.seed)
    decide_seed, estimate_seeds = seeds.spawn(2)
    context = _context(logs, policy, settings, int(decide_seed.generate_state(1)[0]))
    n_days = _decision_days(logs, context.days, settings.horizon_days)

    def day_done(offset: int, _accounts: np.ndarray) -> None:
        if progress is not None:
            progress(offset + 1, n_days)

    rows = _reconstruct(logs, context, n_days, day_done)
    logged, candidate = rows.cat("logged"), rows.cat("candidate")
    none_mu = _none_propensity(rows, logged, candidate, settings.none_propensity)
    mu = np.where(logged == -1, none_mu, rows.cat("propensity"))
    matched = logged == candidate
    w = importance_weights(matched, mu)
    valuation = _valuation(policy, settings)
    outcomes = _outcomes(logs, context.days, context, rows, settings.horizon_days, valuation)
    data = LoggedData(
        day=rows.cat("day"), account=rows.cat("account"), features=rows.cat("features"),
        option=np.where(logged == OFF_SLOT, -1, logged), holdout=np.zeros(logged.size, bool),
        arm_propensity=mu, target_option=candidate, reward=outcomes["portfolio_value"],
        holdout_share=0.0, n_slots=context.options.n_slots,
    )  # fmt: skip
    diag = diagnostics(w, matched, mu, data.account, candidate, logged)
    estimates = _estimates(data, w, outcomes, settings, estimate_seeds)
    problems = thin_support(diag, settings)
    report = _report(logs, policy, settings, n_days, diag, estimates, problems)
    return OfflineResult(report, estimates, diag, problems)


def _reconstruct(
    logs: Logs, context: _Context, n_days: int, on_day: Callable[[int, np.ndarray], None]
) -> _Rows:
    """Rebuild and decide each decision day in turn; ``on_day(offset, accounts)`` after each.

    ``accounts`` are the rows that day appended (the considered accounts, in order).

    Raises:
        ValueError: no account was considered on any day.
    """
    state, rows = _State.start(logs.accounts), _Rows(logs.accounts.n * n_days)
    for offset in range(n_days):
        first = rows.n
        _decide_day(context, state, offset, rows)
        on_day(offset, rows.cat("account")[first:])
        state.absorb(logs, context.days, offset)
    if rows.n == 0:
        raise ValueError("no account was in collection on any decision day of the logs")
    return rows


def _decision_days(logs: Logs, days: _LogDays, horizon: int) -> int:
    if horizon < 1:
        raise ValueError(f"--horizon-days must be >= 1, got {horizon}")
    end = days.span - 2 if logs.window.end is None else day_number(logs.window.end) - days.start
    n_days = end - horizon + 2
    if n_days < 1:
        raise ValueError(
            f"the log window has {end + 1} day(s); it must be longer than --horizon-days "
            f"{horizon} (each decision needs {horizon} days of outcomes)"
        )
    return n_days


def thin_support(diag: Diagnostics, settings: OfflineSettings) -> list[str]:
    """Why the logs cannot support the candidate (empty if they can)."""
    problems = []
    if diag.ess < settings.min_ess:
        problems.append(
            f"effective sample size {diag.ess:.1f} is below --min-ess {settings.min_ess:g} "
            f"(max weight {diag.max_weight:.3g}, top 1% of rows carry "
            f"{diag.top1_weight_share:.0%} of the weight)"
        )
    if diag.overlap < settings.min_overlap:
        problems.append(
            f"overlap {diag.overlap:.1%} is below --min-overlap {settings.min_overlap:.0%}: the "
            "logging plan could not have taken the candidate's action on the other rows"
        )
    return problems


# --------------------------------------------------------------------------- report
def _report(
    logs: Logs, policy: ArtifactPolicy, settings: OfflineSettings, n_days: int,
    diag: Diagnostics, estimates: dict[str, dict[str, Estimate]], problems: list[str],
) -> dict[str, Any]:  # fmt: skip
    start = logs.window.start
    return {
        "policy": policy.policy_id,
        "window": {"start": str(start), "end": str(logs.window.end)},
        "decision_days": {
            "first": str(start),
            "last": str(start + dt.timedelta(days=n_days - 1)),
            "count": n_days,
        },
        "horizon_days": settings.horizon_days,
        "none_propensity": (
            "estimated per day x DPD bucket x candidate decision"
            if settings.none_propensity is None
            else settings.none_propensity
        ),
        "capacity": str(settings.capacity) if settings.capacity else "ample",
        "bootstrap_resamples": settings.n_boot,
        "level": settings.level,
        "seed": settings.seed,
        "diagnostics": dataclasses.asdict(diag),
        "estimates": {
            outcome: {k: dataclasses.asdict(e) for k, e in by.items()}
            for outcome, by in estimates.items()
        },
        "verdict": "thin_support" if problems else "ok",
        "problems": problems,
    }


def estimates_table(estimates: dict[str, dict[str, Estimate]]) -> pa.Table:
    """One row per (outcome, estimator): value, low, high, se."""
    rows = [(o, k, e) for o, by in estimates.items() for k, e in by.items()]
    return pa.table(
        {
            "outcome": [o for o, _, _ in rows],
            "estimator": [k for _, k, _ in rows],
            "value": [e.value for _, _, e in rows],
            "low": [e.low for _, _, e in rows],
            "high": [e.high for _, _, e in rows],
            "se": [e.se for _, _, e in rows],
        }
    )


def write_report(result: OfflineResult, out: Path) -> tuple[Path, Path]:
    """Write report.json and estimates.parquet into ``out``, each atomically."""
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(estimates_table(result.estimates), out / ESTIMATES_PARQUET)
    text = json.dumps(result.report, indent=2, sort_keys=False, allow_nan=True) + "\n"
    atomic_write_text(out / REPORT_JSON, text)
    return out / REPORT_JSON, out / ESTIMATES_PARQUET


def load_window_logs(folder: Path, start: dt.date | None, end: dt.date | None) -> Logs:
    """Load checked logs for the window ``start..end``.

    A missing ``start`` / ``end`` is the logs' first / last local day.  Rows before
    ``start`` are refused (the accounts file is the book at ``start``); rows after
    ``end`` are read but ignored: decisions and outcomes use days up to ``end``.
    """
    logs = load_checked_logs(folder, LogWindow(start or dt.date(1970, 1, 2), None))
    days = np.concatenate([logs.contacts.history.local_day, _payment_days(logs)])
    if days.size == 0 and (start is None or end is None):
        raise ValueError(f"{folder}: the logs hold no contact and no payment; pass --start, --end")
    first = start or dt.date(1970, 1, 1) + dt.timedelta(days=int(days.min()))
    last = end or dt.date(1970, 1, 1) + dt.timedelta(days=int(days.max()))
    if last < first:
        raise ValueError(f"--end {last} is before the window start {first}")
    return dataclasses.replace(logs, window=LogWindow(first, last))


def _payment_days(logs: Logs) -> np.ndarray:
    a, p = logs.accounts, logs.payments
    day, _ = utc_to_local(a.timezones, a.timezone[p.account], p.timestamp_utc_s)
    return np.asarray(day, dtype=np.int64)


def summary_lines(result: OfflineResult) -> list[str]:
    """A readable summary: the estimates and the diagnostics."""
    d = result.diagnostics
    lines = [f"{'outcome':<16}{'estimator':<8}{'value':>12}{'low':>12}{'high':>12}"]
    for outcome, by in result.estimates.items():
        for name, e in by.items():
            lines.append(f"{outcome:<16}{name:<8}{e.value:>12.4g}{e.low:>12.4g}{e.high:>12.4g}")
    lines.append(
        f"rows {d.rows:,} ({d.accounts:,} accounts); ESS {d.ess:,.1f}; max weight "
        f"{d.max_weight:.3g}; top 1% weight share {d.top1_weight_share:.1%}; mean weight "
        f"{d.mean_weight:.3f}; overlap {d.overlap:.1%}; agreement {d.agreement:.1%}"
    )
    return lines


def offline_command(
    logs_folder: Path,
    artifact: Path,
    window: tuple[dt.date | None, dt.date | None],
    out: Path,
    settings: OfflineSettings,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """``collsim evaluate-offline``: load, check, estimate, write the report; the exit code.

    Returns:
        0, or 2 when support is too thin (the report is written with verdict
        ``thin_support``; the reasons go to stderr).

    Raises:
        InputError: bad logs (nothing is written).
        ArtifactError: a bad artifact (nothing is written).
    """
    import sys

    policy = load_artifact(artifact)
    logs = load_window_logs(logs_folder, *window)
    result = evaluate_offline(logs, policy, settings, progress)
    written = write_report(result, out)
    print("\n".join(summary_lines(result)))
    print("wrote " + ", ".join(str(p) for p in written))
    for problem in result.problems:
        print(f"error: support too thin: {problem}", file=sys.stderr)
    return EXIT_THIN_SUPPORT if result.problems else EXIT_OK


__all__ = [
    "Diagnostics",
    "OfflineResult",
    "OfflineSettings",
    "diagnostics",
    "estimates_table",
    "evaluate_offline",
    "load_checked_logs",
    "load_window_logs",
    "offline_command",
    "ope_problems",
    "thin_support",
    "write_report",
]
