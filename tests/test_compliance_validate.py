"""validate_plan: hand-made plans with known violations, and capacity."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from collsim.compliance import ContactWindow, Violation, load_ruleset, validate_plan
from collsim.compliance.testing import make_history, make_portfolio
from collsim.plan import OptionSpace, Plan, Resources
from collsim.portfolio import day_number
from collsim.vocab import N_CHANNELS, Channel

D = day_number(dt.date(2026, 3, 11))
OPTIONS = OptionSpace(np.arange(8, 22))
N = 10


def make_plan(channel: list[int], hour: list[int], priority: list[int] | None = None) -> Plan:
    n = len(channel)
    return Plan(
        channel=np.array(channel, dtype=np.int8),
        slot_hour=np.array(hour, dtype=np.int8),
        priority=np.array(priority if priority is not None else [1] * n, dtype=np.int32),
        expected_value=np.zeros(n),
        propensity=np.ones(n),
        holdout=np.zeros(n, dtype=bool),
        offer=np.zeros(n, dtype=np.int8),
        reason=np.zeros(n, dtype=np.int16),
        reasons=("test",),
        policy_id="test",
    )


def setting() -> tuple:  # type: ignore[type-arg]
    flags = {
        name: np.zeros(N, dtype=bool)
        for name in ("cease_communication", "dispute_open", "sms_opt_out")
    }
    consent = np.ones(N, dtype=bool)
    consent[2] = False
    flags["cease_communication"][3] = True
    flags["dispute_open"][4] = True
    flags["sms_opt_out"][4] = True
    portfolio = make_portfolio(N, consent_autodial=consent, **flags)
    # Account 7 had 7 calls in the last 6 days.
    history = make_history([7] * 7, [D - 6, D - 5, D - 4, D - 3, D - 2, D - 1, D - 1], [0] * 7)
    window = ContactWindow.from_history(history, N, D)
    return portfolio, window


CALL, BOT, SMS, EMAIL = (
    int(Channel.AGENT_CALL),
    int(Channel.VOICE_BOT),
    int(Channel.SMS),
    int(Channel.EMAIL),
)
LETTER, FIELD = int(Channel.LETTER), int(Channel.FIELD_VISIT)


def test_known_violations_are_reported_exactly() -> None:
    portfolio, window = setting()
    plan = make_plan(
        channel=[CALL, CALL, SMS, EMAIL, SMS, LETTER, -1, BOT, FIELD, CALL],
        hour=[10, 21, 12, 9, 12, -1, -1, 14, 18, 20],
    )
    violations = validate_plan(plan, portfolio, window, load_ruleset("us_reg_f"), OPTIONS)
    got = [(v.account_id, v.rule_id) for v in violations]
    assert got == [
        ("A00000001", "us_reg_f.hours"),
        ("A00000002", "us_reg_f.consent"),
        ("A00000003", "us_reg_f.cease"),
        ("A00000004", "us_reg_f.dispute"),
        ("A00000004", "us_reg_f.opt_out"),
        ("A00000007", "us_reg_f.7in7"),
    ]
    assert all(isinstance(v, Violation) and v.sentence for v in violations)
    assert "1006.14(b)(2)(i)" in violations[-1].sentence


def test_clean_plan_returns_nothing() -> None:
    portfolio, window = setting()
    plan = make_plan(
        channel=[CALL, CALL, CALL, -1, LETTER, EMAIL, -1, EMAIL, FIELD, BOT],
        hour=[10, 20, 8, -1, -1, 9, -1, 14, 18, 20],
    )
    cease_only_legal = make_plan([-1] * 3 + [int(Channel.LEGAL)] + [-1] * 6, [-1] * 10)
    for p in (plan, cease_only_legal, Plan.no_contact(N, "x")):
        assert validate_plan(p, portfolio, window, load_ruleset("us_reg_f"), OPTIONS) == []


def test_hour_outside_operating_slots_names_the_real_rule() -> None:
    portfolio, window = setting()
    plan = make_plan([CALL] + [-1] * 9, [23] + [-1] * 9)
    violations = validate_plan(plan, portfolio, window, load_ruleset("cn_gbt45251"), OPTIONS)
    assert [(v.account_id, v.rule_id) for v in violations] == [("A00000000", "cn.hours")]
    call_at_22 = make_plan([CALL] + [-1] * 9, [22] + [-1] * 9)
    violations = validate_plan(call_at_22, portfolio, window, load_ruleset("us_reg_f"), OPTIONS)
    assert [(v.account_id, v.rule_id) for v in violations] == [("A00000000", "us_reg_f.hours")]


def test_hour_outside_operating_slots_but_lawful_is_plan_slot() -> None:
    portfolio, window = setting()
    plan = make_plan([CALL] + [-1] * 9, [12] + [-1] * 9)
    narrow = OptionSpace(np.arange(8, 12))
    violations = validate_plan(plan, portfolio, window, load_ruleset("us_reg_f"), narrow)
    assert [(v.account_id, v.rule_id) for v in violations] == [("A00000000", "plan.slot")]


def test_plan_length_must_match() -> None:
    portfolio, window = setting()
    with pytest.raises(ValueError, match="rows"):
        validate_plan(make_plan([-1], [-1]), portfolio, window, load_ruleset("us_reg_f"), OPTIONS)


def resources(call_capacity: int, sms_capacity: int, budget: float | None) -> Resources:
    by_option = np.full(OPTIONS.n_options, -1, dtype=np.int32)
    by_option[OPTIONS.channel == CALL] = 0
    by_option[OPTIONS.channel == SMS] = 1
    cost = np.zeros(N_CHANNELS)
    cost[CALL], cost[SMS], cost[EMAIL] = 2.0, 0.1, 0.01
    return Resources(
        names=("early_stage", "sms"),
        capacity=np.array([call_capacity, sms_capacity]),
        resource_by_zone=by_option[None, :],
        cost_per_attempt=cost,
        money_budget=budget,
    )


def test_capacity_overflow_in_priority_then_account_order() -> None:
    portfolio, window = setting()
    plan = make_plan(
        channel=[CALL, CALL, CALL, -1, -1, SMS, SMS, -1, CALL, EMAIL],
        hour=[10, 11, 12, -1, -1, 9, 9, -1, 18, 9],
        priority=[3, 1, 2, 0, 0, 1, 1, 0, 2, 1],
    )
    violations = validate_plan(
        plan, portfolio, window, load_ruleset("us_reg_f"), OPTIONS, resources(2, 1, None)
    )
    got = [(v.account_id, v.rule_id) for v in violations]
    # Calls: priority 1 (A1), 2 (A2, A8 by account order), 3 (A0); capacity 2.
    # Reported in account order.
    assert got == [
        ("A00000000", "capacity.early_stage"),
        ("A00000006", "capacity.sms"),
        ("A00000008", "capacity.early_stage"),
    ]
    assert (
        validate_plan(
            plan, portfolio, window, load_ruleset("us_reg_f"), OPTIONS, resources(4, 2, None)
        )
        == []
    )


def test_money_budget() -> None:
    portfolio, window = setting()
    plan = make_plan(
        [CALL, CALL, -1, -1, -1, SMS, EMAIL, -1, -1, -1], [10, 11, -1, -1, -1, 9, 9, -1, -1, -1]
    )
    cost = 2.0 + 2.0 + 0.1 + 0.01
    rules = load_ruleset("us_reg_f")
    over = validate_plan(plan, portfolio, window, rules, OPTIONS, resources(9, 9, cost - 0.05))
    assert [(v.account_id, v.rule_id) for v in over] == [("", "capacity.money_budget")]
    assert validate_plan(plan, portfolio, window, rules, OPTIONS, resources(9, 9, cost)) == []
