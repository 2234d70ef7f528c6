"""Golden trace: a tiny deterministic scenario whose events are derived by hand."""

from __future__ import annotations

import numpy as np

from collsim.config import load_scenario
from collsim.ledger import EVENT, EVENTS
from collsim.plan import Plan, Snapshot
from collsim.portfolio import generate
from collsim.sim import Simulation
from collsim.vocab import CHANNELS, OUTCOMES, Channel


def deterministic_scenario():
    """Every probability is 0 or 1, so the trace follows from the rules alone."""
    data = load_scenario("default").model_dump(mode="json")
    data["sim"].update(days=2, operating_hours=[9, 10], max_redials=0)
    beh = data["behaviour"]
    beh["answer_by_hour"] = [1.0] * 24
    beh["wrong_party_rate"] = 0.0
    beh["not_delivered_rate"] = {"sms": 0.0, "email": 0.0, "app_push": 0.0, "letter": 0.0}
    beh["jump"] = dict.fromkeys(beh["jump"], 0.0)
    beh["link_payment"] = 0.0
    beh["fatigue_answer"] = 0.0
    beh["fatigue_complaint"] = 0.0
    beh["fatigue_effect"] = 0.0
    beh["conversation"].update(
        pay_now=0.0, promise=1.0, plan=0.0, dispute=0.0, refusal=0.0, cease=0.0, promise_max_days=1
    )
    data["portfolio"]["n_accounts"] = 3
    return type(load_scenario("default")).model_validate(data)


def tiny_population(scenario):
    portfolio, latent = generate(scenario, seed=0, n_accounts=3)
    portfolio.dpd[:] = [40, 5, 100]
    portfolio.balance[:] = [1000.0, 500.0, 800.0]
    portfolio.amount_due[:] = [100.0, 50.0, 80.0]
    portfolio.timezone[:] = portfolio.timezones.index("America/Chicago")
    for flag in (
        "has_phone",
        "has_mobile",
        "has_email",
        "has_app",
        "has_address",
        "consent_autodial",
    ):
        getattr(portfolio, flag)[:] = True
    for flag in (
        "sms_opt_out",
        "email_opt_out",
        "cease_communication",
        "dispute_open",
        "hardship_plan",
        "vulnerable",
    ):
        getattr(portfolio, flag)[:] = False
    latent.ability[:] = 1.0
    latent.willingness[:] = 1.0
    latent.answer_rate[:] = 1.0
    latent.best_hour[:] = 9
    latent.open_rate[:] = 0.0
    latent.channel_response[:] = 1.0
    latent.complaint_rate[:] = 0.0
    latent.promise_keep[:] = 1.0
    latent.self_cure_hazard[:] = 0.0
    return portfolio, latent


class ScriptedPolicy:
    """Day 1: agent call to account 0 at 09:00 and an SMS to account 1 at 10:00."""

    policy_id = "scripted"

    def __init__(self) -> None:
        self.first_day: int | None = None

    def decide(self, snapshot: Snapshot) -> Plan:
        if self.first_day is None:
            self.first_day = snapshot.day
        channel = np.full(snapshot.n, -1)
        hour = np.full(snapshot.n, -1)
        if snapshot.day == self.first_day:
            channel[:2] = [Channel.AGENT_CALL, Channel.SMS]
            hour[:2] = [9, 10]
        option = snapshot.options.encode(channel, hour)
        return Plan.from_options(
            option,
            snapshot.options,
            self.policy_id,
            ["script"],
            np.zeros(snapshot.n, dtype=np.int16),
        )


def test_exact_event_trace_two_days():
    scenario = deterministic_scenario()
    portfolio, latent = tiny_population(scenario)
    sim = Simulation(scenario, seed=3, portfolio=portfolio, latent=latent)
    sim.run(ScriptedPolicy())
    c = sim.ledger.columns()
    keep = c["event"] != EVENT["agent_capacity"]
    day1 = sim.first_day
    trace = [
        (
            int(d - day1),
            EVENTS[e],
            int(a),
            CHANNELS[ch] if ch >= 0 else "none",
            OUTCOMES[o] if o >= 0 else "",
            int(h),
            float(amt),
        )
        for d, e, a, ch, o, h, amt in zip(
            c["day"][keep],
            c["event"][keep],
            c["account"][keep],
            c["channel"][keep],
            c["outcome"][keep],
            c["hour"][keep],
            c["amount"][keep],
            strict=True,
        )
    ]
    assert trace == [
        (0, "start", 0, "none", "", -1, 1000.0),
        (0, "start", 1, "none", "", -1, 500.0),
        (0, "start", 2, "none", "", -1, 800.0),
        # SMS first (message batches precede the call centre), delivered, not read.
        (0, "attempt", 1, "sms", "delivered", 10, 0.0),
        # The agent call at 09:00 is answered by the borrower, who promises to pay tomorrow.
        (0, "attempt", 0, "agent_call", "promise_to_pay", 9, 0.0),
        # Day 2: the promise falls due and is kept: a payment of the amount due cures the account.
        (1, "promise_kept", 0, "none", "", -1, 100.0),
        (1, "payment", 0, "none", "payment", -1, 100.0),
        (1, "cure", 0, "none", "", -1, 0.0),
    ]
    assert sim.portfolio.dpd.tolist() == [0, 7, 102]
    assert sim.portfolio.balance.tolist() == [900.0, 500.0, 800.0]
    # The agent's handle time is a conversation's (minutes), the SMS costs its unit price.
    attempt = c["event"] == EVENT["attempt"]
    call = attempt & (c["channel"] == Channel.AGENT_CALL)
    assert 180.0 <= c["duration_s"][call][0] <= 540.0
    assert (
        c["cost"][attempt & (c["channel"] == Channel.SMS)][0]
        == scenario.channels["sms"].cost_per_attempt
    )
