"""What borrowers agree to in conversations: payments, promises, plans, disputes, offers."""

from __future__ import annotations

import numpy as np

from collsim.behaviour import ACTIVE, HOLIDAY
from collsim.sim.stages import money
from collsim.sim.state import SimState
from collsim.vocab import Offer, Outcome, bucket_of


def after_conversation(
    s: SimState,
    idx: np.ndarray,
    channel: np.ndarray,
    hour: np.ndarray,
    outcome: np.ndarray,
    accepted: np.ndarray | None = None,
) -> None:
    """Apply what borrowers agreed to in conversations (vectorised per outcome).

    Rows flagged in ``accepted`` took the offer of the day instead.
    """
    if accepted is not None and np.any(accepted):
        assert s.offer is not None
        accept_offers(
            s,
            idx[accepted],
            s.offer[idx[accepted]].astype(np.int64),
            channel[accepted],
            hour[accepted],
        )
        keep = ~accepted
        idx, channel, hour, outcome = idx[keep], channel[keep], hour[keep], outcome[keep]
    day = s.day
    conv = s.scenario.behaviour.conversation
    p, st = s.portfolio, s.borrowers
    pay = idx[outcome == Outcome.PAYMENT]
    if pay.size:
        for c in np.unique(channel[outcome == Outcome.PAYMENT]):
            sel = (outcome == Outcome.PAYMENT) & (channel == c)
            money.pay_due(s, idx[sel], int(c), hour[sel], purpose="pay_now")
    promise = (outcome == Outcome.PROMISE_TO_PAY) & (st.status[idx] == ACTIVE)
    if np.any(promise):
        who = idx[promise]
        u = s.random.uniform("promise_days", day, who)
        p.promise_due_day[who] = day + 1 + (u * conv.promise_max_days).astype(np.int64)
        full = s.model.payment_is_full(who, s.random.uniform("promise_full", day, who))
        part = s.model.partial_fraction(who, s.random.uniform("promise_part", day, who))
        p.promise_amount[who] = np.round(
            np.where(full, p.amount_due[who], p.amount_due[who] * part), 2
        )
        s.contact.last_promise_day[who] = day
    plan = (
        (outcome == Outcome.PAYMENT_PLAN)
        & (st.status[idx] == ACTIVE)
        & (st.plan_remaining[idx] == 0)
    )
    if np.any(plan):
        who = idx[plan]
        st.plan_remaining[who] = conv.plan_instalments
        st.plan_next_day[who] = day + conv.plan_interval_days
        st.plan_amount[who] = np.round(p.amount_due[who] / conv.plan_instalments, 2)
        p.hardship_plan[who] = True
    dispute = idx[outcome == Outcome.DISPUTE]
    p.dispute_open[dispute] = True
    st.dispute_until[dispute] = day + conv.dispute_days
    p.cease_communication[idx[outcome == Outcome.CEASE_REQUEST]] = True


def accept_offers(
    s: SimState, idx: np.ndarray, offer: np.ndarray, channel: np.ndarray, hour: np.ndarray
) -> None:
    """Apply accepted offers (only those the account can still take are recorded)."""
    st = s.borrowers
    cfg = s.treatments.config
    if idx.size == 0 or cfg is None:
        return
    active = st.status[idx] == ACTIVE
    free = st.plan_remaining[idx] == 0
    ok = active & ((offer == Offer.SETTLEMENT) | free)
    idx, offer, channel, hour = idx[ok], offer[ok], channel[ok], hour[ok]
    if idx.size == 0:
        return
    variant = np.zeros(idx.size, dtype=np.int8) if s.variant is None else s.variant[idx]
    s.ledger.append(
        "offer_accepted",
        s.day,
        idx,
        channel=channel,
        hour=hour,
        offer=offer,
        variant=variant,
        bucket=bucket_of(s.portfolio.dpd[idx]),
    )
    money.start_offered_plans(s, idx[offer == Offer.INSTALMENT_PLAN])
    settle = offer == Offer.SETTLEMENT
    for c in np.unique(channel[settle]):
        sel = settle & (channel == c)
        money.settle(s, idx[sel], int(c), hour[sel])
    holiday = idx[offer == Offer.PAYMENT_HOLIDAY]
    st.status[holiday] = HOLIDAY
    st.holiday_until[holiday] = s.day + cfg.payment_holiday.days
    s.portfolio.promise_due_day[holiday] = -1
    s.portfolio.promise_amount[holiday] = 0.0


def resolve_disputes(s: SimState) -> None:
    """Disputes whose investigation ends today are closed."""
    resolved = s.borrowers.dispute_until == s.day
    s.portfolio.dispute_open[resolved] = False
    s.borrowers.dispute_until[resolved] = -1


__all__ = ["accept_offers", "after_conversation", "resolve_disputes"]
