"""The collector's memo: approach, offer, tone, recent history and reason; no personal data."""

from __future__ import annotations

import datetime as dt

import numpy as np

from collsim.capacity import build_resources
from collsim.compliance import ContactWindow
from collsim.config import load_scenario
from collsim.export.planfile import PlanDay, plan_table
from collsim.plan import OptionSpace, Plan
from collsim.portfolio import day_number, generate
from collsim.vocab import OFFERS, VARIANTS, Channel


def test_memo_carries_offer_tone_history_and_reason():
    scenario = load_scenario("default")
    portfolio, _ = generate(scenario, seed=1, n_accounts=4)
    date = dt.date(2026, 3, 9)
    day = day_number(date)
    options = OptionSpace(np.asarray(scenario.sim.operating_hours))
    resources = build_resources(
        scenario.capacity, options, portfolio.timezones, day, scenario.channels
    )
    channel = np.array([Channel.AGENT_CALL, Channel.SMS, -1, Channel.AGENT_CALL])
    hour = np.array([18, 12, -1, 10])
    plan = Plan.from_options(
        options.encode(channel, hour),
        options,
        "p",
        ["tier mid", "nothing"],
        np.array([0, 0, 1, 0]),
        offer=np.array([OFFERS.index("instalment_plan"), 0, 0, 0], dtype=np.int8),
        variant=np.array(
            [VARIANTS.index("empathetic"), 0, 0, VARIANTS.index("firm")], dtype=np.int8
        ),
    )
    portfolio.promise_due_day[:] = [-1, -1, -1, day + 2]
    window = ContactWindow.empty(4, day)
    window.attempts[1, 3, Channel.SMS] = 4
    with_window = PlanDay(portfolio, options, resources, date, window)
    memo = plan_table(plan, with_window, "p").column("memo").to_pylist()
    assert "Offer: instalment plan." in memo[0] and "Tone: empathetic" in memo[0]
    assert "No contact in the last 7 days." in memo[0] and memo[0].endswith("Why: tier mid.")
    assert "3+ times in the last 7 days" in memo[1] and "Tone" not in memo[1]
    assert memo[2] == "No contact today. Why: nothing."
    assert "Tone: firm" in memo[3] and "Open promise to pay" not in memo[3]
    assert not any(str(a) in m for a in portfolio.account_id for m in memo)
    # An open promise is personal status: in the memo only when memo_detail asks for it.
    detailed = plan_table(plan, with_window, "p", memo_detail=True)
    assert "Open promise to pay" in detailed.column("memo").to_pylist()[3]
    assert detailed.column("variant").to_pylist() == ["empathetic", "standard", "standard", "firm"]
    # Without a contact window the memo makes no claim about recent contact.
    without = PlanDay(portfolio, options, resources, date)
    bare = plan_table(plan, without, "p").column("memo").to_pylist()
    assert not any("last 7 days" in m for m in bare)
