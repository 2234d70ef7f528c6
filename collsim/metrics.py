"""KPIs computed from the ledger only (never tracked by hand elsewhere)."""

from __future__ import annotations

import numpy as np

from collsim.ledger import EVENT, Ledger
from collsim.treatments import daily_discount_factors
from collsim.valuation import portfolio_value_parts, valuation_of
from collsim.vocab import BUCKETS, CHANNELS, IS_CONVERSATION, OFFERS, VARIANTS, Outcome

KPI_DESCRIPTIONS: dict[str, str] = {
    "portfolio_value": (
        "the objective: NPV of cash - NPV of every cost - complaints x complaint cost"
        " + NPV of the expected recovery of what is open at the horizon (see below)"
    ),
    "accounts": "accounts in the portfolio at the start",
    "amount_recovered": "money received (currency units)",
    "npv_recovered": "recoveries discounted daily at the valuation's annual rate",
    "terminal_value": "expected recovery of the balances open at the horizon, discounted",
    "recovery_rate": "amount recovered / balance at the start",
    "contact_cost": "cost of contact attempts (currency units)",
    "agent_cost": "cost of staffed agent hours, idle time included (currency units)",
    "legal_cost": "cost carried by legal events (filings, court costs; currency units)",
    "total_cost": "every cost in the ledger: contact, staffed agent hours and legal",
    "complaint_cost": "complaints x the valuation's complaint cost, discounted",
    "net_recovery": "amount recovered - total cost (secondary: ignores what is left open)",
    "cost_to_collect": "total cost / amount recovered",
    "cure_rate": "share of accounts cured (paid their amount due in full)",
    "charged_off_balance": "balance written off (currency units)",
    "charge_off_rate": "share of accounts charged off",
    "attempts": "contact attempts made",
    "rpc_rate": "right-party conversations per telephone attempt",
    "ptp_rate": "promises to pay per right-party conversation",
    "promise_kept_rate": "promises kept / promises falling due",
    "complaints_per_1000": "complaints per 1,000 accounts",
    "agent_occupancy": "agent handle time / staffed agent time",
    "agent_utilisation": "alias of agent_occupancy (kept for old reports)",
    "overflow": "planned contacts that did not fit capacity",
    "blocked": "planned contacts refused by the compliance gate",
    "redials_blocked": "the dialler's same-day redials refused by the in-day gate",
}


def _rate(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def kpis(ledger: Ledger) -> dict[str, float]:
    """Return the KPI table of a run (name → value); see ``KPI_DESCRIPTIONS``.

    Also includes per-channel attempts/RPC/PTP (``attempts.<channel>`` …), roll rates
    by bucket (``roll_rate.<from>`` = share of accounts that were in a bucket and
    later rolled to the next one) and blocked attempts by rule (``blocked.<rule>``).
    """
    c = ledger.columns()
    event, channel, outcome = c["event"], c["channel"], c["outcome"]
    is_ = {name: event == code for name, code in EVENT.items()}
    start, attempt = is_["start"], is_["attempt"]
    n = int(start.sum())
    recovered = float(c["amount"][is_["payment"]].sum())
    contact_cost = float(c["cost"][is_["attempt"]].sum())
    agent_cost = float(c["cost"][is_["agent_capacity"]].sum())
    legal_cost = float(c["cost"][is_["legal_filed"] | is_["legal_closed"]].sum())
    total_cost = float(c["cost"].sum())
    value = portfolio_value_parts(ledger)
    occupancy = _rate(
        float(c["duration_s"][attempt & (channel == 0)].sum()),
        float(c["duration_s"][is_["agent_capacity"]].sum()),
    )
    phone = attempt & (channel >= 0) & (channel <= 1)
    conversation = IS_CONVERSATION[np.maximum(outcome, 0)] & (outcome >= 0)
    conv_phone = phone & conversation
    promise = outcome == Outcome.PROMISE_TO_PAY
    kept, broken = int(is_["promise_kept"].sum()), int(is_["promise_broken"].sum())
    out: dict[str, float] = {
        "portfolio_value": value["portfolio_value"],
        "accounts": float(n),
        "amount_recovered": recovered,
        "npv_recovered": value["npv_recovered"],
        "terminal_value": value["terminal_value"],
        "recovery_rate": _rate(recovered, float(c["amount"][start].sum())),
        "contact_cost": contact_cost,
        "agent_cost": agent_cost,
        "legal_cost": legal_cost,
        "total_cost": total_cost,
        "complaint_cost": value["complaint_cost"],
        "net_recovery": recovered - total_cost,
        "cost_to_collect": _rate(total_cost, recovered),
        "cure_rate": _rate(float(is_["cure"].sum()), n),
        "charged_off_balance": float(c["amount"][is_["charge_off"]].sum()),
        "charge_off_rate": _rate(float(is_["charge_off"].sum()), n),
        "attempts": float(attempt.sum()),
        "rpc_rate": _rate(float(conv_phone.sum()), float(phone.sum())),
        "ptp_rate": _rate(float((conv_phone & promise).sum()), float(conv_phone.sum())),
        "promise_kept_rate": _rate(kept, kept + broken),
        "complaints_per_1000": _rate(
            1000.0 * float((attempt & (outcome == Outcome.COMPLAINT)).sum()), n
        ),
        "agent_occupancy": occupancy,
        "agent_utilisation": occupancy,
        "overflow": float(is_["overflow"].sum()),
        "blocked": float(is_["blocked"].sum()),
        "redials_blocked": float(is_["redial_blocked"].sum()),
    }
    for code, name in enumerate(CHANNELS):
        ch = attempt & (channel == code)
        out[f"attempts.{name}"] = float(ch.sum())
        out[f"rpc_rate.{name}"] = _rate(float((ch & conversation).sum()), float(ch.sum()))
        out[f"ptp_rate.{name}"] = _rate(
            float((ch & conversation & promise).sum()), float((ch & conversation).sum())
        )
    out.update(roll_rates(ledger))
    for kind, prefix in (("blocked", "blocked"), ("redial_blocked", "redials_blocked")):
        counts = np.bincount(c["rule"][is_[kind]].astype(np.int64), minlength=len(ledger.rules))
        for code, name in enumerate(ledger.rules):
            if counts[code]:
                out[f"{prefix}.{name}"] = float(counts[code])
    if ledger.treated():
        out.update(treatment_kpis(ledger))
    return out


TREATMENT_KPI_DESCRIPTIONS: dict[str, str] = {
    "offers_made.<offer>": "contact attempts carrying the offer",
    "offer_take_up.<offer>": "offers accepted / attempts carrying the offer",
    "offered_plan_completion_rate": "offered instalment plans completed / (completed + broken)",
    "plan_completion_rate": "all payment plans completed / (completed + broken)",
    "discount_given": "settlement discounts given (currency units)",
    "npv_recovered": "as in kpis: recoveries discounted daily at the valuation's annual rate",
    "complaints.<offer>.<variant>": "complaints per 1,000 attempts carrying the treatment",
    "treatment_blocked": "planned treatments downgraded to none/standard by a rule",
}
"""Treatment KPIs (:func:`treatment_kpis`); added to :func:`kpis` for treated runs."""


def treatment_kpis(ledger: Ledger, npv_rate_annual: float | None = None) -> dict[str, float]:
    """Return the treatment KPIs of a run (see ``TREATMENT_KPI_DESCRIPTIONS``).

    Works on any ledger: a run without treatments has no offers, and its attempts
    count as (none, standard).

    Args:
        ledger: the run's ledger.
        npv_rate_annual: annual discount rate (default: the ledger's
            ``valuation.npv_rate_annual``); factors ``(1 + r) ** (-t / 365)`` with t
            the days since the ledger's first day.
    """
    c = ledger.columns()
    event, outcome = c["event"], c["outcome"]
    offer = np.maximum(c["offer"], 0)
    variant = np.maximum(c["variant"], 0)
    attempt = event == EVENT["attempt"]
    accepted = event == EVENT["offer_accepted"]
    out: dict[str, float] = {}
    for code, name in enumerate(OFFERS[1:], start=1):
        made = float((attempt & (offer == code)).sum())
        out[f"offers_made.{name}"] = made
        out[f"offer_take_up.{name}"] = _rate(float((accepted & (offer == code)).sum()), made)
    done, broken = event == EVENT["plan_completed"], event == EVENT["plan_broken"]
    offered = c["offer"] == 1
    out["offered_plan_completion_rate"] = _rate(
        float((done & offered).sum()), float(((done | broken) & offered).sum())
    )
    out["plan_completion_rate"] = _rate(float(done.sum()), float((done | broken).sum()))
    out["discount_given"] = float(c["amount"][event == EVENT["settlement"]].sum())
    pay = event == EVENT["payment"]
    first = int(c["day"].min()) if c["day"].size else 0
    rate = valuation_of(ledger).npv_rate_annual if npv_rate_annual is None else npv_rate_annual
    factor = daily_discount_factors(c["day"][pay].astype(np.int64) - first, rate)
    out["npv_recovered"] = float((c["amount"][pay] * factor).sum())
    complaint = attempt & (outcome == Outcome.COMPLAINT)
    for o, offer_name in enumerate(OFFERS):
        for v, variant_name in enumerate(VARIANTS):
            sel = attempt & (offer == o) & (variant == v)
            out[f"complaints.{offer_name}.{variant_name}"] = _rate(
                1000.0 * float((complaint & sel).sum()), float(sel.sum())
            )
    out["treatment_blocked"] = float((event == EVENT["treatment_blocked"]).sum())
    return out


def roll_rates(ledger: Ledger) -> dict[str, float]:
    """Share of accounts that were in each delinquent bucket and later rolled to the next.

    An account "was in" bucket b if it started there or rolled into it.
    """
    c = ledger.columns()
    event, bucket, account = c["event"], c["bucket"], c["account"]
    entered = (event == EVENT["start"]) | (event == EVENT["roll"])
    out = {}
    for b in range(1, 5):
        was_in = np.unique(account[entered & (bucket == b)])
        rolled = np.unique(account[(event == EVENT["roll"]) & (bucket == b + 1)])
        if b == 4:  # from 91-180 the next state is charge-off
            rolled = np.unique(account[event == EVENT["charge_off"]])
        out[f"roll_rate.{BUCKETS[b]}"] = _rate(
            float(np.isin(was_in, rolled).sum()), float(was_in.size)
        )
    return out


def daily_series(ledger: Ledger, first_day: int, days: int) -> dict[str, np.ndarray]:
    """Per-day recovered amount, cost (every cost row) and attempts (length ``days``)."""
    c = ledger.columns()
    index = c["day"].astype(np.int64) - first_day
    ok = (index >= 0) & (index < days)

    def per_day(selector: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        sel = ok & selector
        w = None if weights is None else weights[sel]
        return np.bincount(index[sel], weights=w, minlength=days)[:days].astype(float)

    event = c["event"]
    return {
        "recovered": per_day(event == EVENT["payment"], c["amount"]),
        "cost": per_day(np.ones(event.shape, dtype=bool), c["cost"]),
        "attempts": per_day(event == EVENT["attempt"]),
    }
