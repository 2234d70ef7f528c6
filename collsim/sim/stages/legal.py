"""Legal action: filing, judgments in the courts, garnishment instalments."""

from __future__ import annotations

import numpy as np

from collsim.behaviour import CLOSED, LEGAL
from collsim.sim.stages import ageing, money, records
from collsim.sim.state import SimState
from collsim.vocab import Channel, Outcome


def file_cases(s: SimState, idx: np.ndarray) -> None:
    """File legal cases: an attempt, a ``legal_filed`` event, status LEGAL, a court case."""
    if idx.size == 0:
        return
    ch = np.full(idx.size, Channel.LEGAL, dtype=np.int64)
    records.record_attempts(
        s,
        idx,
        ch,
        np.full(idx.size, -1),
        np.full(idx.size, Outcome.DELIVERED, dtype=np.int8),
        np.zeros(idx.size, dtype=bool),
    )
    s.ledger.append(
        "legal_filed",
        s.day,
        idx,
        channel=int(Channel.LEGAL),
        cost=s.scenario.legal.cost_per_case,
    )
    s.borrowers.status[idx] = LEGAL
    s.courts.file(idx)


def judgments(s: SimState, judged: np.ndarray) -> None:
    """Judgments: court costs; lost or unrecoverable cases are charged off.

    A case is won with P = success_rate × ability; a won case recovers nothing
    with P = nothing_recovered_share.  The others recover recovery_fraction ×
    balance in ``recovery_instalments`` equal garnishment instalments, the first
    today, then one every ``recovery_interval_days`` (SimPy timeouts in the
    courts) until all are paid or the run ends; the account closes with the last.
    """
    if judged.size == 0:
        return
    legal = s.scenario.legal
    u = s.random.uniform("legal", s.day, judged)
    won = u < legal.success_rate * s.latent.ability[judged]
    if legal.nothing_recovered_share > 0.0:
        empty = s.random.uniform("legal_nothing", s.day, judged)
        won &= empty >= legal.nothing_recovered_share
    winners = judged[won]
    award = np.where(won, legal.recovery_fraction * s.portfolio.balance[judged], 0.0)
    s.ledger.append(
        "legal_closed",
        s.day,
        judged,
        outcome=np.where(won, Outcome.PAYMENT, Outcome.REFUSAL),
        amount=award,
        cost=legal.court_cost_per_case,
    )
    count = legal.recovery_instalments
    total = award[won]
    s.garnish_amount[winners] = np.round(total / count, 2)
    s.garnish_left[winners] = count
    s.courts.garnish(winners, count - 1, legal.recovery_interval_days * 24.0)
    garnishments(s, winners)
    ageing.charge_off(s, judged[~won])


def garnishments(s: SimState, due: np.ndarray) -> None:
    """Garnishment instalments due: a legal ``payment`` each; the last closes the account."""
    due = due[(s.borrowers.status[due] == LEGAL) & (s.garnish_left[due] > 0)]
    if due.size == 0:
        return
    p = s.portfolio
    amount = np.minimum(s.garnish_amount[due], p.balance[due])
    money.record_payment(s, due, amount, Channel.LEGAL, -1)
    p.balance[due] -= amount
    s.garnish_left[due] -= 1
    done = due[s.garnish_left[due] == 0]
    s.garnish_amount[done] = 0.0
    s.borrowers.status[done] = CLOSED


__all__ = ["file_cases", "garnishments", "judgments"]
