"""The stages of a simulated day: functions of one :class:`~collsim.sim.state.SimState`.

:meth:`collsim.sim.engine.Simulation.begin_day` and
:meth:`~collsim.sim.engine.Simulation.finish_day` call them in this fixed order:

Morning (before the decision):
    0. from the second day on: the contact window advances, excitation decays.
    1. :func:`post.letters_arrive` — letters delivered today are read; link payments.
    2. :func:`legal.judgments` — court judgments: costs, awards, charge-off of lost cases.
    3. :func:`legal.garnishments` — garnishment instalments due.
    4. :func:`money.holidays_end` — payment holidays ending return to collection.
    5. :func:`ageing.redefaults` — cured accounts falling delinquent again.
    6. :func:`money.promises_due` — promises kept or broken.
    7. :func:`money.instalments_due` — plan instalments paid or broken.
    8. :func:`responses.resolve_disputes` — disputes closing today.

Execution (after the decision):
    9. :func:`gate.check_plan`, :func:`gate.contact_gate` (compliance and budgets),
       :func:`gate.treatment_gate` (offers and variants).
    10. :func:`contacts.execute_plan` — messages, voice bot, letters, legal filings,
        field visits and agent calls (SimPy, hour by hour), with the borrowers'
        responses (:mod:`responses`, :mod:`money`).
    11. :func:`money.daily_payments` — payments from the repayment hazard.
    12. :func:`ageing.age_accounts` — DPD, cycles, rolls, charge-off.

Stages never draw random numbers in another order than listed: runs are reproducible
bit for bit.
"""
