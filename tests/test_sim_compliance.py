"""A simulated run never makes a contact that breaks a rule — checked by an independent replay.

The replay below re-implements the time and flag rules of ``us_reg_f`` and
``cn_gbt45251`` as plain Python over the ledger (one attempt at a time, in ledger
order), so it shares no code with the compliance engine it checks.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collsim.ledger import EVENT
from collsim.plan import Plan, Snapshot
from collsim.portfolio import generate
from collsim.sim import Simulation
from collsim.vocab import IS_CONVERSATION, IS_TELEPHONE, IS_TIMED, Channel, Outcome
from tests.conftest import scenario_with


class Everything:
    """Plans a contact for every account every day, at random, ignoring the mask."""

    policy_id = "everything"

    def decide(self, snapshot: Snapshot) -> Plan:
        rng = snapshot.rng
        n = snapshot.n
        channel = rng.integers(0, 8, n)
        hour = snapshot.options.slot_hours[rng.integers(0, snapshot.options.n_slots, n)]
        option = snapshot.options.encode(channel, np.where(IS_TIMED[channel], hour, -1))
        return Plan.from_options(
            option,
            snapshot.options,
            self.policy_id,
            ["all"],
            np.zeros(n, dtype=np.int16),
            priority_score=rng.random(n),
        )


RULES = {
    "us_reg_f": {"hours": (8, 20), "seven_in_seven": True, "consent": True},
    "cn_gbt45251": {"hours": (8, 21), "seven_in_seven": False, "consent": False},
}


def replay_violations(sim: Simulation, initial, ruleset: str, dispute_days: int) -> list[tuple]:
    """Return every attempt in the ledger that the reference rules forbid."""
    spec = RULES[ruleset]
    c = sim.ledger.columns()
    reach = initial.reachable()
    cease = initial.cease_communication.copy()
    dispute_from = np.where(initial.dispute_open, -(10**9), 10**9)
    dispute_to = np.where(initial.dispute_open, 10**9, -(10**9))
    phone_days: dict[int, list[int]] = defaultdict(list)
    conversation_days: dict[int, list[int]] = defaultdict(list)
    today_conv: dict[tuple[int, int], int] = defaultdict(int)
    today_unanswered: dict[tuple[int, int], int] = defaultdict(int)
    bad = []
    for i in np.flatnonzero(c["event"] == EVENT["attempt"]):
        a, d, ch, h, o = (
            int(c["account"][i]),
            int(c["day"][i]),
            int(c["channel"][i]),
            int(c["hour"][i]),
            int(c["outcome"][i]),
        )
        problems = []
        if not reach[a, ch]:
            problems.append("reach")
        if cease[a] and ch != Channel.LEGAL:
            problems.append("cease")
        if dispute_from[a] <= d < dispute_to[a] and ch != Channel.LETTER:
            problems.append("dispute")
        if (
            spec["consent"]
            and not initial.consent_autodial[a]
            and ch in (Channel.VOICE_BOT, Channel.SMS)
        ):
            problems.append("consent")
        if (ch == Channel.SMS and initial.sms_opt_out[a]) or (
            ch == Channel.EMAIL and initial.email_opt_out[a]
        ):
            problems.append("opt_out")
        low, high = spec["hours"]
        if IS_TIMED[ch] and not low <= h <= high:
            problems.append("hours")
        if IS_TELEPHONE[ch]:
            if spec["seven_in_seven"]:
                if sum(d - 6 <= x <= d for x in phone_days[a]) >= 7:
                    problems.append("7in7")
                if any(d - 6 <= x <= d for x in conversation_days[a]):
                    problems.append("post_conversation")
            else:
                if today_conv[a, d] >= 3:
                    problems.append("connected_calls_per_day")
                if today_unanswered[a, d] >= 6:
                    problems.append("unanswered_per_day")
        if problems:
            bad.append((a, d, ch, h, problems))
        # Update the reference state with what this attempt did.
        if IS_TELEPHONE[ch]:
            phone_days[a].append(d)
            if IS_CONVERSATION[o]:
                conversation_days[a].append(d)
                today_conv[a, d] += 1
            else:
                today_unanswered[a, d] += 1
        if o == Outcome.CEASE_REQUEST:
            cease[a] = True
        if o == Outcome.DISPUTE:
            dispute_from[a], dispute_to[a] = d, d + dispute_days
    return bad


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 10_000), ruleset=st.sampled_from(sorted(RULES)), redials=st.integers(0, 3)
)
def test_simulated_runs_record_no_violating_contact(seed, ruleset, redials):
    scenario = scenario_with(
        sim__days=12,
        sim__operating_hours=list(range(24)),
        sim__max_redials=redials,
        portfolio__cease_communication=0.1,
        portfolio__dispute_open=0.1,
        portfolio__consent_autodial=0.5,
        portfolio__sms_opt_out=0.2,
        behaviour__conversation__cease=0.1,
        behaviour__conversation__dispute=0.1,
    ).scaled_to(150)
    initial, latent = generate(scenario, seed)
    sim = Simulation(scenario, seed, ruleset=ruleset, portfolio=initial, latent=latent)
    sim.run(Everything())
    c = sim.ledger.columns()
    attempts = int((c["event"] == EVENT["attempt"]).sum())
    blocked = int((c["event"] == EVENT["blocked"]).sum())
    assert attempts > 100 and blocked > 100, (attempts, blocked)
    assert (
        replay_violations(sim, initial, ruleset, scenario.behaviour.conversation.dispute_days) == []
    )


def test_reference_replay_catches_a_violation():
    """The replay is not vacuous: an ungated run (rules switched off) is caught."""
    scenario = scenario_with(sim__days=5, sim__operating_hours=list(range(24))).scaled_to(100)
    initial, latent = generate(scenario, 1)
    from collsim.compliance import load_ruleset

    permissive = load_ruleset("us_reg_f")
    permissive.mask_and_channels = lambda portfolio, window, slot_hours, within: (  # type: ignore[method-assign]
        np.ones((portfolio.n, 8, slot_hours.size), dtype=bool),
        np.ones((portfolio.n, 8), dtype=bool),
    )
    permissive.first_violation = lambda p, w, a, c, h: np.full(len(a), -1, np.int16)  # type: ignore[method-assign]
    sim = Simulation(scenario, 1, ruleset=permissive, portfolio=initial, latent=latent)
    sim.run(Everything())
    assert replay_violations(sim, initial, "us_reg_f", 30)
