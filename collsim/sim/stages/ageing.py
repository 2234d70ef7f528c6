"""Ageing: DPD, new cycles' minimum due, bucket rolls, charge-off, re-defaults."""

from __future__ import annotations

import numpy as np

from collsim.behaviour import ACTIVE, CHARGED_OFF, CURED
from collsim.sim.state import SimState
from collsim.vocab import bucket_of


def redefaults(s: SimState) -> None:
    """Cured accounts that fall delinquent again: 1 DPD, one cycle's minimum due."""
    st, p = s.borrowers, s.portfolio
    cured = np.flatnonzero(st.status == CURED)
    if cured.size == 0:
        return
    u = s.random.uniform("redefault", s.day, cured)
    again = cured[(u < s.model.redefault_probability(cured, st)) & (p.balance[cured] > 0)]
    if again.size == 0:
        return
    due = s.due_fraction()[p.product[again]] * p.balance[again]
    p.amount_due[again] = np.round(np.minimum(p.balance[again], due), 2)
    p.dpd[again] = 1
    st.status[again] = ACTIVE
    st.excitation[again] = 0.0
    s.ledger.append(
        "redefault", s.day, again, amount=p.amount_due[again], bucket=bucket_of(p.dpd[again])
    )


def age_accounts(s: SimState) -> None:
    """Age active accounts not on a plan by a day: new cycles, bucket rolls, charge-off."""
    p, st, sim = s.portfolio, s.borrowers, s.scenario.sim
    ages = np.flatnonzero((st.status == ACTIVE) & (st.plan_remaining == 0))
    before = bucket_of(p.dpd[ages])
    p.dpd[ages] += 1
    new_cycle = ages[p.dpd[ages] % sim.cycle_days == 0]
    due_fraction = s.due_fraction()
    p.amount_due[new_cycle] = np.round(
        np.minimum(
            p.balance[new_cycle],
            p.amount_due[new_cycle] + due_fraction[p.product[new_cycle]] * p.balance[new_cycle],
        ),
        2,
    )
    after = bucket_of(p.dpd[ages])
    rolled = after > before
    s.ledger.append("roll", s.day, ages[rolled], bucket=after[rolled])
    charge_off(s, ages[p.dpd[ages] >= sim.charge_off_dpd])


def charge_off(s: SimState, idx: np.ndarray) -> None:
    """Charge off ``idx``: a ``charge_off`` event with the balance written off."""
    if idx.size == 0:
        return
    s.ledger.append("charge_off", s.day, idx, amount=s.portfolio.balance[idx], bucket=5)
    s.borrowers.status[idx] = CHARGED_OFF
    s.portfolio.promise_due_day[idx] = -1


__all__ = ["age_accounts", "charge_off", "redefaults"]
