"""Portfolio value: the one money objective of runs, experiments, value models and rewards.

``portfolio_value`` of a run is, in the scenario's currency and discounted to its
first day at ``valuation.npv_rate_annual`` (factor ``(1 + r) ** (-t / 365)`` for a
flow t days after the first day)::

    portfolio_value = NPV(cash received)
                    - NPV(every cost in the ledger: contact attempts, staffed agent
                          hours, legal and court costs)
                    - NPV(complaints x valuation.complaint_cost)
                    + NPV(terminal value of the receivables still open at the horizon)

Settlement discounts are not a separate cost: the cash received is already net of
them.  The horizon is the day after the ledger's last day.  The terminal value of an
account is its open balance (balance at the start minus payments and settlement
discounts) times ``valuation.terminal_recovery_by_bucket`` of its state at the
horizon: its DPD bucket if in collection or on a payment holiday (``current`` if
cured), ``charged_off`` if written off (the debt-sale price), ``legal_pending`` if a
case is open (the expected judgement net of court costs), and nothing if closed
(settled, or fully garnished: the rest of the balance is lost).  A won judgment still
being garnished is worth what is left of its award (the ``legal_closed`` amount
minus the legal payments since) times the ``garnishing`` share.  So a write-off
costs the balance beyond its sale value, a cure is worth more than its payment (the
balance moves to ``current``), and suing moves an account from its bucket's value to
the expected judgement, less the case cost.  The state is read from the ledger: the
last of an account's ``start``, ``roll``, ``holiday_ended``, ``redefault`` (bucket),
``cure`` (current), ``charge_off``, ``legal_filed`` (legal pending), ``legal_closed``
(won: garnishing; lost: followed by ``charge_off``) and ``settlement`` (closed)
events.  An account row reused for a new account (a new ``start`` event) is a new account;
rows without a ``start`` event (a cleared ledger) have no terminal value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from collsim.behaviour import CHARGED_OFF, CLOSED, CURED, LEGAL
from collsim.config import TERMINAL_STATES, ValuationConfig
from collsim.ledger import EVENT, Ledger
from collsim.treatments import daily_discount_factors
from collsim.vocab import Channel, Outcome, bucket_of

CURRENT, CHARGED_OFF_STATE, LEGAL_PENDING, CLOSED_STATE, GARNISHING = 0, 5, 6, 7, 8
"""Terminal state codes: 0-4 = the DPD buckets, then charged off, legal pending, closed,
and a won judgment being garnished (valued at the award still to come, not the balance)."""

_BUCKET_EVENTS = ("start", "roll", "holiday_ended", "redefault")
_FIXED_STATE = {
    "cure": CURRENT,
    "charge_off": CHARGED_OFF_STATE,
    "legal_filed": LEGAL_PENDING,
    "legal_closed": GARNISHING,  # a lost case is charged off right after
    "settlement": CLOSED_STATE,
}


def valuation_of(ledger: Ledger) -> ValuationConfig:
    """The valuation a ledger carries (the neutral defaults if none)."""
    return ledger.valuation if ledger.valuation is not None else ValuationConfig()


def terminal_rates(valuation: ValuationConfig) -> np.ndarray:
    """float [9]: expected recovery share of the open amount per terminal state code."""
    table = valuation.terminal_recovery_by_bucket
    named = [table[name] for name in TERMINAL_STATES if name != "garnishing"]
    return np.array([*named, 0.0, table["garnishing"]])  # codes 0-6, closed, garnishing


def state_of(status: np.ndarray, dpd: np.ndarray) -> np.ndarray:
    """Terminal state codes of accounts from the simulator's status and DPD."""
    state = bucket_of(dpd).astype(np.int8)
    state[status == CURED] = CURRENT
    state[status == CHARGED_OFF] = CHARGED_OFF_STATE
    state[status == LEGAL] = LEGAL_PENDING
    state[status == CLOSED] = CLOSED_STATE
    return state


def terminal_value(
    balance: np.ndarray, state: np.ndarray, valuation: ValuationConfig
) -> np.ndarray:
    """Undiscounted expected recovery of open balances in the given terminal states."""
    return np.asarray(balance, dtype=float) * terminal_rates(valuation)[state]


def account_values(sim: Any) -> np.ndarray:
    """float [N]: undiscounted terminal value of every account row of a Simulation now.

    What each account would add to ``portfolio_value`` if the run ended now; a
    change in it is the non-cash part of an action's value (value models, oracle,
    environment rewards).
    """
    state = state_of(sim.state.status, sim.portfolio.dpd)
    owed = np.asarray(sim.portfolio.balance, dtype=float).copy()
    left = getattr(sim, "_garnish_left", None)
    if left is not None:  # won judgments: the award still to be garnished
        garnishing = (state == LEGAL_PENDING) & (left > 0)
        state[garnishing] = GARNISHING
        awaited = left[garnishing] * sim._garnish_amount[garnishing]
        owed[garnishing] = np.minimum(owed[garnishing], awaited)
    return terminal_value(owed, state, sim.scenario.valuation)


def step_value(
    net_cash: np.ndarray,
    complaints: np.ndarray,
    value_before: np.ndarray,
    value_after: np.ndarray,
    days: np.ndarray | int,
    valuation: ValuationConfig,
) -> np.ndarray:
    """Contribution of one day to ``portfolio_value``, discounted to day 0 of the sum.

    ``f(t) · (net_cash - complaint_cost · complaints) + f(t + 1) · value_after
    - f(t) · value_before`` with ``f(t) = (1 + r) ** (-t / 365)``: summed over the days
    0..T-1 of an account it telescopes to the account's discounted cash, cost and
    complaints plus ``f(T) · value(T) - value(0)``, its ``portfolio_value`` terms
    minus its value at the start.

    Args:
        net_cash: payments minus the account's own costs of the day.
        complaints: complaints of the day.
        value_before, value_after: :func:`account_values` before and after the day.
        days: t, days since the start of the sum (per account or one for all).
        valuation: the scenario's valuation.
    """
    now = daily_discount_factors(np.asarray(days), valuation.npv_rate_annual)
    later = daily_discount_factors(np.asarray(days) + 1, valuation.npv_rate_annual)
    flow = np.asarray(net_cash, dtype=float) - valuation.complaint_cost * np.asarray(complaints)
    return now * (flow - value_before) + later * value_after


def open_receivables(columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Open amount and terminal state of every account life in ledger columns.

    A life is an account row from one of its ``start`` events to the next.  The open
    amount is the balance, or for a won judgment being garnished (``GARNISHING``)
    what is left of the award.

    Returns:
        (open amount, state) arrays, one entry per ``start`` event, in ledger order.
    """
    event, account = columns["event"], columns["account"]
    order = np.lexsort((np.arange(event.size), account))
    ev, acc, amount = event[order], account[order], columns["amount"][order]
    is_start = ev == EVENT["start"]
    starts = np.flatnonzero(is_start)
    life = np.cumsum(is_start) - 1
    valid = life >= 0
    valid[valid] = acc[starts[life[valid]]] == acc[valid]
    n_lives = starts.size
    paid = ((ev == EVENT["payment"]) | (ev == EVENT["settlement"])) & valid
    balance = amount[starts] - np.bincount(life[paid], amount[paid], minlength=n_lives)
    code = np.full(ev.size, -1, dtype=np.int64)
    for name in _BUCKET_EVENTS:
        sel = ev == EVENT[name]
        code[sel] = columns["bucket"][order][sel]
    for name, value in _FIXED_STATE.items():
        code[ev == EVENT[name]] = value
    rows = np.flatnonzero((code >= 0) & valid)
    last = rows[np.r_[life[rows][1:] != life[rows][:-1], True]] if rows.size else rows
    state = np.zeros(n_lives, dtype=np.int64)
    state[life[last]] = code[last]
    won = (ev == EVENT["legal_closed"]) & valid
    legal_paid = paid & (ev == EVENT["payment"]) & (columns["channel"][order] == Channel.LEGAL)
    awaited = np.bincount(life[won], amount[won], minlength=n_lives) - np.bincount(
        life[legal_paid], amount[legal_paid], minlength=n_lives
    )
    balance = np.where(state == GARNISHING, np.minimum(balance, awaited), balance)
    unsort = np.argsort(order[starts], kind="stable")
    return np.maximum(balance, 0.0)[unsort], state[unsort]


def portfolio_value_parts(
    ledger: Ledger, valuation: ValuationConfig | None = None
) -> dict[str, float]:
    """The terms of ``portfolio_value`` of a run (see the module docstring).

    Args:
        ledger: the run's ledger.
        valuation: the valuation (default: the one the ledger carries).

    Returns:
        ``npv_recovered``, ``npv_cost``, ``complaint_cost``, ``terminal_value``
        (all discounted to the first day) and ``portfolio_value``.
    """
    valuation = valuation or valuation_of(ledger)
    c = ledger.columns()
    rate = valuation.npv_rate_annual
    first = int(c["day"].min()) if c["day"].size else 0
    factor = daily_discount_factors(c["day"].astype(np.int64) - first, rate)
    event = c["event"]
    pay = event == EVENT["payment"]
    complaint = (event == EVENT["attempt"]) & (c["outcome"] == Outcome.COMPLAINT)
    horizon_days = int(c["day"].max()) + 1 - first if c["day"].size else 0
    balance, state = open_receivables(c)
    parts = {
        "npv_recovered": float((c["amount"][pay] * factor[pay]).sum()),
        "npv_cost": float((c["cost"] * factor).sum()),
        "complaint_cost": valuation.complaint_cost * float(factor[complaint].sum()),
        "terminal_value": float(
            terminal_value(balance, state, valuation).sum()
            * daily_discount_factors(np.array(horizon_days), rate)
        ),
    }
    parts["portfolio_value"] = (
        parts["npv_recovered"] - parts["npv_cost"] - parts["complaint_cost"]
    ) + parts["terminal_value"]
    return parts


def account_portfolio_values(
    ledger: Ledger, n: int, valuation: ValuationConfig | None = None
) -> np.ndarray:
    """float [n]: ``portfolio_value`` split by account row; the rows sum to it.

    Each row gets its discounted payments − its own costs − its complaints ×
    complaint cost + the discounted terminal value of its accounts; costs of no
    account (staffed agent hours) are shared equally by the ``n`` rows.
    """
    valuation = valuation or valuation_of(ledger)
    c = ledger.columns()
    rate = valuation.npv_rate_annual
    first = int(c["day"].min()) if c["day"].size else 0
    factor = daily_discount_factors(c["day"].astype(np.int64) - first, rate)
    event, account = c["event"], c["account"]
    complaint = (event == EVENT["attempt"]) & (c["outcome"] == Outcome.COMPLAINT)
    flow = np.where(event == EVENT["payment"], c["amount"], 0.0) - c["cost"]
    flow = (flow - valuation.complaint_cost * complaint) * factor
    row = account >= 0
    out = np.bincount(account[row], flow[row], minlength=n)[:n]
    horizon_days = int(c["day"].max()) + 1 - first if c["day"].size else 0
    balance, state = open_receivables(c)
    held = terminal_value(balance, state, valuation) * daily_discount_factors(
        np.array(horizon_days), rate
    )
    out += np.bincount(account[event == EVENT["start"]], held, minlength=n)[:n]
    return out + flow[~row].sum() / max(n, 1)


__all__ = [
    "account_portfolio_values",
    "account_values",
    "step_value",
    "CHARGED_OFF_STATE",
    "CLOSED_STATE",
    "CURRENT",
    "GARNISHING",
    "LEGAL_PENDING",
    "open_receivables",
    "portfolio_value_parts",
    "state_of",
    "terminal_rates",
    "terminal_value",
    "valuation_of",
]
