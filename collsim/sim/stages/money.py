"""Money: payments, promises, payment plans and instalments, settlements, holidays, cures."""

from __future__ import annotations

import numpy as np

from collsim.behaviour import ACTIVE, CLOSED, CURE_PAYMENT, CURE_PLAN, CURED, HOLIDAY
from collsim.sim.state import SimState
from collsim.vocab import Offer, Outcome, bucket_of


def promises_due(s: SimState) -> None:
    """Promises due today: kept (a payment) or broken."""
    p = s.portfolio
    due = np.flatnonzero((p.promise_due_day == s.day) & (s.borrowers.status == ACTIVE))
    if due.size == 0:
        return
    kept = s.model.promise_kept(due, s.random.uniform("promise", s.day, due))
    s.ledger.append("promise_kept", s.day, due[kept], amount=p.promise_amount[due[kept]])
    s.ledger.append("promise_broken", s.day, due[~kept])
    s.contact.broken_promises[due[~kept]] += 1
    apply_payment(s, due[kept], p.promise_amount[due[kept]], -1, -1)
    p.promise_due_day[due] = -1
    p.promise_amount[due] = 0.0


def instalments_due(s: SimState) -> None:
    """Plan instalments due today: paid (the last completes the plan) or broken."""
    st = s.borrowers
    due = np.flatnonzero(
        (st.plan_next_day == s.day) & (st.plan_remaining > 0) & (st.status == ACTIVE)
    )
    if due.size == 0:
        return
    offered = st.plan_interval[due] > 0
    boost = st.plan_keep_mult[due] if np.any(offered) else None
    paid = s.model.instalment_paid(due, s.random.uniform("instalment", s.day, due), boost)
    tag = np.where(offered, int(Offer.INSTALMENT_PLAN), -1)
    broken = due[~paid]
    s.ledger.append("plan_broken", s.day, broken, offer=tag[~paid])
    end_plan(s, broken)
    payers = due[paid]
    st.plan_remaining[payers] -= 1
    st.plan_next_day[payers] += np.where(
        st.plan_interval[payers] > 0,
        st.plan_interval[payers],
        s.scenario.behaviour.conversation.plan_interval_days,
    )
    last = payers[st.plan_remaining[payers] == 0]
    amount = np.where(
        st.plan_remaining[payers] == 0,
        s.portfolio.amount_due[payers],
        st.plan_amount[payers],
    )
    last_tag = tag[paid][st.plan_remaining[payers] == 0]
    apply_payment(s, payers, amount, -1, -1)
    s.ledger.append("plan_completed", s.day, last, offer=last_tag)
    end_plan(s, last)
    s.borrowers.cure_kind[last[s.borrowers.status[last] == CURED]] = CURE_PLAN


def end_plan(s: SimState, idx: np.ndarray) -> None:
    """Clear the payment plans of ``idx``."""
    s.borrowers.plan_remaining[idx] = 0
    s.borrowers.plan_next_day[idx] = -1
    s.borrowers.plan_interval[idx] = -1
    s.borrowers.plan_keep_mult[idx] = 1.0
    s.portfolio.hardship_plan[idx] = False


def holidays_end(s: SimState) -> None:
    """Accounts whose payment holiday ends today return to collection."""
    st = s.borrowers
    ended = np.flatnonzero((st.status == HOLIDAY) & (st.holiday_until == s.day))
    if ended.size == 0:
        return
    st.status[ended] = ACTIVE
    st.holiday_until[ended] = -1
    s.ledger.append(
        "holiday_ended",
        s.day,
        ended,
        offer=int(Offer.PAYMENT_HOLIDAY),
        bucket=bucket_of(s.portfolio.dpd[ended]),
    )


def start_offered_plans(s: SimState, who: np.ndarray) -> None:
    """Instalment plans on the offer's terms (the payment-plan machinery)."""
    cfg = s.treatments.config
    if who.size == 0 or cfg is None:
        return
    st, p = s.borrowers, s.portfolio
    terms = cfg.instalment_plan
    st.plan_remaining[who] = terms.instalments
    st.plan_next_day[who] = s.day + terms.interval_days
    st.plan_amount[who] = np.round(p.amount_due[who] / terms.instalments, 2)
    st.plan_interval[who] = terms.interval_days
    st.plan_keep_mult[who] = s.treatments.plan_keep_mult[s.latent.segment[who]]
    p.hardship_plan[who] = True
    p.promise_due_day[who] = -1
    p.promise_amount[who] = 0.0


def settle(s: SimState, idx: np.ndarray, channel: int, hour: np.ndarray) -> None:
    """Settlements: pay (1 - discount) × balance, record the discount, close."""
    cfg = s.treatments.config
    if idx.size == 0 or cfg is None:
        return
    p = s.portfolio
    balance = p.balance[idx]
    amount = np.round((1.0 - cfg.settlement.discount_fraction) * balance, 2)
    record_payment(s, idx, amount, channel, hour)
    s.ledger.append(
        "settlement",
        s.day,
        idx,
        channel=channel,
        amount=balance - amount,
        offer=int(Offer.SETTLEMENT),
        bucket=bucket_of(p.dpd[idx]),
    )
    p.balance[idx] = 0.0
    p.amount_due[idx] = 0.0
    p.promise_due_day[idx] = -1
    p.promise_amount[idx] = 0.0
    end_plan(s, idx[s.borrowers.plan_remaining[idx] > 0])
    s.borrowers.status[idx] = CLOSED


def pay_due(s: SimState, idx: np.ndarray, channel: int, hour: np.ndarray, purpose: str) -> None:
    """Payments of the amount due (full) or part of it, for accounts still active."""
    idx = idx[s.borrowers.status[idx] == ACTIVE]
    hour = np.asarray(hour)[: idx.size] if np.ndim(hour) else hour
    if idx.size == 0:
        return
    full = s.model.payment_is_full(idx, s.random.uniform(f"{purpose}_full", s.day, idx))
    fraction = s.model.partial_fraction(idx, s.random.uniform(f"{purpose}_part", s.day, idx))
    due = s.portfolio.amount_due[idx]
    amount = np.round(np.where(full, due, due * fraction), 2)
    apply_payment(s, idx, amount, channel, hour)


def record_payment(
    s: SimState, idx: np.ndarray, amount: np.ndarray, channel: int, hour: np.ndarray | int
) -> None:
    """Ledger the positive payments of ``idx`` and count them as recovered."""
    positive = amount > 0
    if not np.any(positive):
        return
    hour_arr = np.broadcast_to(np.asarray(hour), idx.shape)
    s.ledger.append(
        "payment",
        s.day,
        idx[positive],
        channel=channel,
        hour=hour_arr[positive],
        outcome=int(Outcome.PAYMENT),
        amount=amount[positive],
        bucket=bucket_of(s.portfolio.dpd[idx[positive]]),
    )
    s.recovered += float(amount[positive].sum())


def apply_payment(
    s: SimState, idx: np.ndarray, amount: np.ndarray, channel: int, hour: np.ndarray | int
) -> None:
    """Book payments: reduce balance and amount due; an account paying its due is cured."""
    if idx.size == 0:
        return
    p = s.portfolio
    amount = np.minimum(amount, p.balance[idx])
    record_payment(s, idx, amount, channel, hour)
    p.balance[idx] -= amount
    p.amount_due[idx] = np.maximum(p.amount_due[idx] - amount, 0.0)
    cured = idx[(p.amount_due[idx] <= 0.005) & (s.borrowers.status[idx] == ACTIVE)]
    cure(s, cured)


def cure(s: SimState, idx: np.ndarray) -> None:
    """Cure ``idx``: nothing due, DPD 0, promises and plans cleared, status CURED."""
    if idx.size == 0:
        return
    p = s.portfolio
    s.ledger.append("cure", s.day, idx, bucket=bucket_of(p.dpd[idx]))
    p.dpd[idx] = 0
    p.amount_due[idx] = 0.0
    p.promise_due_day[idx] = -1
    p.promise_amount[idx] = 0.0
    end_plan(s, idx[s.borrowers.plan_remaining[idx] > 0])
    s.borrowers.status[idx] = CURED
    s.borrowers.cure_kind[idx] = CURE_PAYMENT


def daily_payments(s: SimState) -> None:
    """Payments from the repayment hazard (self-cure plus contact excitation)."""
    idx = np.flatnonzero(s.borrowers.status == ACTIVE)
    if idx.size == 0:
        return
    on_plan = s.borrowers.plan_remaining[idx] > 0
    idx = idx[~on_plan]
    prob = s.model.payment_probability(idx, s.portfolio.dpd[idx], s.borrowers)
    pays = idx[s.random.uniform("pay", s.day, idx) < prob]
    pay_due(s, pays, -1, np.full(pays.size, -1), purpose="pay")


def link_payments(
    s: SimState,
    idx: np.ndarray,
    channel: int,
    hour: np.ndarray | int,
    variant: np.ndarray | None = None,
) -> None:
    """Immediate self-service payments from a read message's payment link."""
    if idx.size == 0:
        return
    ch = np.full(idx.size, channel, dtype=np.int64)
    pays = s.random.uniform(f"link_{channel}", s.day, idx) < s.model.link_payment_probability(
        idx, ch, variant
    )
    hour_arr = np.broadcast_to(np.asarray(hour), idx.shape)
    pay_due(s, idx[pays], channel, hour_arr[pays], purpose=f"link_{channel}")


__all__ = [
    "apply_payment",
    "cure",
    "daily_payments",
    "end_plan",
    "holidays_end",
    "instalments_due",
    "link_payments",
    "pay_due",
    "promises_due",
    "record_payment",
    "settle",
    "start_offered_plans",
]
