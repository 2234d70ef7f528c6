"""Boundary tests of every rule of the bundled rule sets, the in-day gate and the window."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from collsim.compliance import ContactWindow, RuleSet, load_ruleset
from collsim.compliance.testing import make_history, make_portfolio
from collsim.portfolio import day_number
from collsim.vocab import CHANNELS, Channel

D = day_number(dt.date(2026, 3, 11))  # a Wednesday
SLOTS = np.arange(6, 24)
CALL = int(Channel.AGENT_CALL)


@pytest.fixture(scope="module")
def us() -> RuleSet:
    return load_ruleset("us_reg_f")


@pytest.fixture(scope="module")
def cn() -> RuleSet:
    return load_ruleset("cn_gbt45251")


def window_of(
    days: list[int],
    channel: int = CALL,
    conversation: list[bool] | None = None,
    n: int = 1,
    day: int = D,
) -> ContactWindow:
    """Window of account 0 with one attempt per entry of ``days`` (offsets from D)."""
    talk = conversation if conversation is not None else [False] * len(days)
    history = make_history([0] * len(days), [day + o for o in days], [channel] * len(days), talk)
    return ContactWindow.from_history(history, n, day)


def forbidding(
    ruleset: RuleSet, window: ContactWindow, channel: int = CALL, hour: int = 10, **flags: bool
) -> list[str]:
    portfolio = make_portfolio(window.n, **flags)
    return [rule_id for rule_id, _ in ruleset.explain(portfolio, window, 0, channel, hour)]


def check_consistent(
    ruleset: RuleSet, window: ContactWindow, channel: int, hour: int, **flags: bool
) -> bool:
    """Return allowed, after checking mask, first_violation and explain agree."""
    portfolio = make_portfolio(window.n, **flags)
    explained = ruleset.explain(portfolio, window, 0, channel, hour)
    first = ruleset.first_violation(
        portfolio, window, np.array([0]), np.array([channel]), np.array([hour])
    )
    mask = ruleset.mask(portfolio, window, np.array([hour if hour >= 0 else 10]))
    assert (first[0] == -1) == (explained == []) == bool(mask[0, channel, 0])
    if explained:
        assert ruleset.rule_ids[first[0]] == explained[0][0]
    return explained == []


# ----------------------------------------------------------------- Regulation F counts
def test_seven_calls_on_d6_to_d1_forbid_a_call_on_d(us: RuleSet) -> None:
    window = window_of([-6, -5, -4, -3, -2, -1, -1])
    assert forbidding(us, window) == ["us_reg_f.7in7"]
    assert not check_consistent(us, window, CALL, 10)
    assert forbidding(us, window, channel=int(Channel.VOICE_BOT)) == ["us_reg_f.7in7"]
    assert forbidding(us, window, channel=int(Channel.SMS)) == []


def test_seven_calls_with_one_on_d7_allow_a_call(us: RuleSet) -> None:
    window = window_of([-7, -6, -5, -4, -3, -2, -1])
    assert forbidding(us, window) == []
    assert check_consistent(us, window, CALL, 10)


def test_voice_bot_calls_count_towards_7in7(us: RuleSet) -> None:
    history = make_history([0] * 7, [D - 1] * 7, [0, 1, 0, 1, 0, 1, 1])
    window = ContactWindow.from_history(history, 1, D)
    assert forbidding(us, window) == ["us_reg_f.7in7"]


def test_non_telephone_attempts_do_not_count_towards_7in7(us: RuleSet) -> None:
    window = window_of([-1] * 10, channel=int(Channel.SMS))
    assert forbidding(us, window) == []


def test_conversation_on_d6_forbids_on_d7_allows(us: RuleSet) -> None:
    assert forbidding(us, window_of([-6], conversation=[True])) == ["us_reg_f.post_conversation"]
    assert forbidding(us, window_of([-7], conversation=[True])) == []
    assert forbidding(us, window_of([-6], conversation=[False])) == []
    # Field visits and messages are not telephone calls.
    window = window_of([-1], conversation=[True])
    assert forbidding(us, window, channel=int(Channel.FIELD_VISIT)) == []
    assert forbidding(us, window, channel=int(Channel.EMAIL)) == []


def test_conversation_flag_on_a_non_telephone_channel_is_not_counted(us: RuleSet) -> None:
    window = window_of([-1], channel=int(Channel.FIELD_VISIT), conversation=[True])
    assert window.conversations.sum() == 0
    assert forbidding(us, window) == []


# ----------------------------------------------------------------- hours
@pytest.mark.parametrize(("name", "last_allowed"), [("us_reg_f", 20), ("cn_gbt45251", 21)])
@pytest.mark.parametrize(
    "channel", ["agent_call", "voice_bot", "sms", "email", "app_push", "field_visit"]
)
def test_hours_boundaries(name: str, last_allowed: int, channel: str) -> None:
    ruleset = load_ruleset(name)
    code = CHANNELS.index(channel)
    window = ContactWindow.empty(1, D)
    hours_id = "us_reg_f.hours" if name == "us_reg_f" else "cn.hours"
    assert check_consistent(ruleset, window, code, last_allowed)
    assert check_consistent(ruleset, window, code, 8)
    assert not check_consistent(ruleset, window, code, last_allowed + 1)
    assert not check_consistent(ruleset, window, code, 7)
    assert forbidding(ruleset, window, code, last_allowed + 1) == [hours_id]
    assert forbidding(ruleset, window, code, -1) == [hours_id]  # timed channel without an hour


@pytest.mark.parametrize("name", ["us_reg_f", "cn_gbt45251"])
@pytest.mark.parametrize("channel", [Channel.LETTER, Channel.LEGAL])
def test_untimed_channels_ignore_hours_and_are_constant_over_slots(name: str, channel: int) -> None:
    ruleset = load_ruleset(name)
    portfolio = make_portfolio(
        3,
        dispute_open=np.array([False, True, False]),
        cease_communication=np.array([False, False, True]),
    )
    window = ContactWindow.empty(3, D)
    mask = ruleset.mask(portfolio, window, SLOTS)
    assert np.all(mask[:, channel, :] == mask[:, channel, :1])
    assert ruleset.explain(portfolio, window, 0, int(channel), -1) == []
    assert mask[0, channel, 0]


def test_allowed_hours(us: RuleSet, cn: RuleSet) -> None:
    assert us.allowed_hours.tolist() == list(range(8, 21))
    assert cn.allowed_hours.tolist() == list(range(8, 22))


def test_mask_shape_and_hours_columns(us: RuleSet) -> None:
    portfolio = make_portfolio(4)
    mask = us.mask(portfolio, ContactWindow.empty(4, D), SLOTS)
    assert mask.shape == (4, 8, SLOTS.size) and mask.dtype == bool
    timed = mask[:, [0, 1, 2, 3, 4, 6], :]
    assert np.all(timed[..., (SLOTS >= 8) & (SLOTS <= 20)])
    assert not np.any(timed[..., (SLOTS < 8) | (SLOTS > 20)])


# ----------------------------------------------------------------- China per-day counts
def test_cn_fourth_connected_call_forbidden(cn: RuleSet) -> None:
    three = window_of([0, 0, 0], conversation=[True, True, True])
    assert forbidding(cn, three) == ["cn.connected_calls_per_day"]
    assert not check_consistent(cn, three, CALL, 10)
    two = window_of([0, 0], conversation=[True, True])
    assert check_consistent(cn, two, CALL, 10)
    yesterday = window_of([-1, -1, -1], conversation=[True, True, True])
    assert forbidding(cn, yesterday) == []


def test_cn_six_unanswered_today_forbid(cn: RuleSet) -> None:
    six = window_of([0] * 6)
    assert forbidding(cn, six) == ["cn.unanswered_per_day"]
    assert forbidding(cn, six, channel=int(Channel.VOICE_BOT)) == ["cn.unanswered_per_day"]
    assert forbidding(cn, six, channel=int(Channel.SMS)) == []
    five_and_one_answered = window_of([0] * 6, conversation=[True] + [False] * 5)
    assert forbidding(cn, five_and_one_answered) == []
    assert forbidding(cn, window_of([-1] * 6)) == []


def test_cn_has_no_7in7(cn: RuleSet) -> None:
    assert forbidding(cn, window_of([-6, -5, -4, -3, -2, -1, -1])) == []
    assert forbidding(cn, window_of([-1], conversation=[True])) == []


def test_cn_third_party_rule_exists_and_forbids_nothing(cn: RuleSet) -> None:
    sentences = dict(cn.describe())
    assert "cn.third_party" in sentences and "third party" in sentences["cn.third_party"]
    portfolio = make_portfolio(2)
    mask = cn.mask(portfolio, ContactWindow.empty(2, D), np.arange(8, 22))
    assert mask.all()


# ----------------------------------------------------------------- flags
FLAG_CASES = [
    # (rule set, flags, channel, expected rule ids)
    ("us_reg_f", {"cease_communication": True}, "agent_call", ["us_reg_f.cease"]),
    ("us_reg_f", {"cease_communication": True}, "letter", ["us_reg_f.cease"]),
    ("us_reg_f", {"cease_communication": True}, "legal", []),
    ("us_reg_f", {"dispute_open": True}, "email", ["us_reg_f.dispute"]),
    ("us_reg_f", {"dispute_open": True}, "legal", ["us_reg_f.dispute"]),
    ("us_reg_f", {"dispute_open": True}, "letter", []),
    ("us_reg_f", {"consent_autodial": False}, "voice_bot", ["us_reg_f.consent"]),
    ("us_reg_f", {"consent_autodial": False}, "sms", ["us_reg_f.consent"]),
    ("us_reg_f", {"consent_autodial": False}, "agent_call", []),
    ("us_reg_f", {"sms_opt_out": True}, "sms", ["us_reg_f.opt_out"]),
    ("us_reg_f", {"sms_opt_out": True}, "email", []),
    ("us_reg_f", {"email_opt_out": True}, "email", ["us_reg_f.opt_out"]),
    ("us_reg_f", {"email_opt_out": True}, "sms", []),
    ("us_reg_f", {"has_phone": False}, "agent_call", []),
    ("us_reg_f", {"has_phone": False, "has_mobile": False}, "agent_call", ["reach"]),
    ("us_reg_f", {"has_phone": False, "has_mobile": False}, "voice_bot", ["reach"]),
    ("us_reg_f", {"has_mobile": False}, "sms", ["reach"]),
    ("us_reg_f", {"has_mobile": False}, "agent_call", []),
    ("us_reg_f", {"has_email": False}, "email", ["reach"]),
    ("us_reg_f", {"has_app": False}, "app_push", ["reach"]),
    ("us_reg_f", {"has_address": False}, "letter", ["reach"]),
    ("us_reg_f", {"has_address": False}, "field_visit", ["reach"]),
    ("us_reg_f", {"has_address": False}, "legal", ["reach"]),
    (
        "us_reg_f",
        {"dispute_open": True, "sms_opt_out": True},
        "sms",
        ["us_reg_f.dispute", "us_reg_f.opt_out"],
    ),
    ("us_reg_f", {"vulnerable": True, "hardship_plan": True}, "field_visit", []),
    ("cn_gbt45251", {"cease_communication": True}, "sms", ["cn.cease"]),
    ("cn_gbt45251", {"cease_communication": True}, "legal", []),
    ("cn_gbt45251", {"dispute_open": True}, "agent_call", ["cn.dispute"]),
    ("cn_gbt45251", {"sms_opt_out": True}, "sms", ["cn.opt_out"]),
    ("cn_gbt45251", {"email_opt_out": True}, "email", ["cn.opt_out"]),
    ("cn_gbt45251", {"has_email": False}, "email", ["reach"]),
    ("cn_gbt45251", {"consent_autodial": False}, "voice_bot", []),
    ("strict_example", {"vulnerable": True}, "field_visit", ["strict.vulnerable"]),
    ("strict_example", {"vulnerable": True}, "legal", ["strict.vulnerable"]),
    ("strict_example", {"vulnerable": True}, "agent_call", []),
    ("strict_example", {"hardship_plan": True}, "sms", ["strict.hardship"]),
    ("strict_example", {"hardship_plan": True}, "legal", ["strict.hardship"]),
    ("strict_example", {"hardship_plan": True}, "letter", []),
]


@pytest.mark.parametrize(("name", "flags", "channel", "expected"), FLAG_CASES)
def test_flag_rules(name: str, flags: dict[str, bool], channel: str, expected: list[str]) -> None:
    ruleset = load_ruleset(name)
    code = CHANNELS.index(channel)
    hour = -1 if channel in ("letter", "legal") else 10
    window = ContactWindow.empty(1, D)
    assert forbidding(ruleset, window, code, hour, **flags) == expected
    assert check_consistent(ruleset, window, code, hour, **flags) == (expected == [])


def test_flag_rules_only_hit_flagged_accounts(us: RuleSet) -> None:
    cease = np.array([True, False, False, True])
    portfolio = make_portfolio(4, cease_communication=cease)
    mask = us.mask(portfolio, ContactWindow.empty(4, D), np.array([10]))
    assert np.array_equal(mask[:, Channel.EMAIL, 0], ~cease)
    assert mask[:, Channel.LEGAL, 0].all()


# ----------------------------------------------------------------- in-day gate
def test_in_day_gate_blocks_the_eighth_call(us: RuleSet) -> None:
    window = window_of([-6, -5, -4, -3, -2, -1])
    portfolio = make_portfolio(1)
    one = (np.array([0]), np.array([CALL]), np.array([14]))
    assert us.first_violation(portfolio, window, *one).tolist() == [-1]
    window.record(np.array([0]), np.array([CALL]), np.array([False]))  # the 7th call, today
    first = us.first_violation(portfolio, window, *one)
    assert first.dtype == np.int16
    assert us.rule_ids[first[0]] == "us_reg_f.7in7"


def test_in_day_gate_blocks_after_a_conversation_today(us: RuleSet) -> None:
    window = ContactWindow.empty(2, D)
    portfolio = make_portfolio(2)
    triples = (np.array([0, 1]), np.array([CALL, CALL]), np.array([15, 15]))
    assert us.first_violation(portfolio, window, *triples).tolist() == [-1, -1]
    window.record(np.array([0, 1]), np.array([CALL, CALL]), np.array([True, False]))
    first = us.first_violation(portfolio, window, *triples)
    assert first[0] == us.rule_ids.index("us_reg_f.post_conversation")
    assert first[1] == -1


def test_cn_in_day_gate_counts_recorded_attempts(cn: RuleSet) -> None:
    window = ContactWindow.empty(1, D)
    portfolio = make_portfolio(1)
    one = (np.array([0]), np.array([CALL]), np.array([12]))
    for _ in range(5):
        window.record(np.array([0]), np.array([CALL]), np.array([False]))
    assert cn.first_violation(portfolio, window, *one).tolist() == [-1]
    window.record(np.array([0]), np.array([int(Channel.VOICE_BOT)]), np.array([False]))
    assert cn.rule_ids[cn.first_violation(portfolio, window, *one)[0]] == "cn.unanswered_per_day"


def test_first_violation_reports_the_first_rule_in_order(us: RuleSet) -> None:
    window = window_of([-6, -5, -4, -3, -2, -1, -1], conversation=[True] + [False] * 6)
    portfolio = make_portfolio(1, consent_autodial=False)
    first = us.first_violation(portfolio, window, np.array([0]), np.array([1]), np.array([22]))
    ids = [r for r, _ in us.explain(portfolio, window, 0, 1, 22)]
    assert ids == [
        "us_reg_f.consent",
        "us_reg_f.hours",
        "us_reg_f.7in7",
        "us_reg_f.post_conversation",
    ]
    assert us.rule_ids[first[0]] == "us_reg_f.consent"


def test_first_violation_empty_and_bad_input(us: RuleSet) -> None:
    portfolio = make_portfolio(1)
    window = ContactWindow.empty(1, D)
    empty = np.zeros(0, dtype=np.int64)
    assert us.first_violation(portfolio, window, empty, empty, empty).shape == (0,)
    with pytest.raises(ValueError, match="same length"):
        us.first_violation(portfolio, window, np.array([0]), np.array([0, 1]), np.array([9]))
    with pytest.raises(ValueError, match="channel"):
        us.first_violation(portfolio, window, np.array([0]), np.array([-1]), np.array([9]))
    with pytest.raises(ValueError, match="accounts"):
        us.mask(make_portfolio(2), window, SLOTS)


def test_every_rule_has_an_id_and_a_sentence() -> None:
    for name in ("us_reg_f", "cn_gbt45251", "strict_example"):
        ruleset = load_ruleset(name)
        described = ruleset.describe()
        assert [r for r, _ in described] == list(ruleset.rule_ids)
        assert all(len(sentence) > 20 and sentence.endswith(".") for _, sentence in described)
    assert (
        "at most 7 telephone calls in 7 consecutive days"
        in dict(load_ruleset("us_reg_f").describe())["us_reg_f.7in7"]
    )


# ----------------------------------------------------------------- the window itself
def test_window_from_history_counts_and_ignores_out_of_window_rows() -> None:
    history = make_history(
        [0, 0, 1, 1, 1, 0],
        [D, D - 6, D - 7, D + 1, D - 3, D - 3],
        [0, 2, 0, 0, 1, 1],
        [False, False, True, True, True, True],
    )
    window = ContactWindow.from_history(history, 2, D)
    assert window.attempts.dtype == np.uint8 and window.attempts.shape == (2, 7, 8)
    assert window.attempts[0, 6, 0] == 1 and window.attempts[0, 0, 2] == 1
    assert window.attempts[1].sum() == 1 and window.attempts[1, 3, 1] == 1
    assert window.conversations[1, 3] == 1 and window.conversations[0, 3] == 1
    assert window.conversations.sum() == 2
    with pytest.raises(ValueError, match="account"):
        ContactWindow.from_history(make_history([5], [D], [0]), 2, D)


def test_window_saturates() -> None:
    window = ContactWindow.from_history(make_history([0] * 300, [D] * 300, [0] * 300, True), 1, D)
    assert window.attempts[0, 6, 0] == 255 and window.conversations[0, 6] == 255
    window.record(np.zeros(10, dtype=int), np.zeros(10, dtype=int), np.ones(10, dtype=bool))
    assert window.attempts[0, 6, 0] == 255 and window.conversations[0, 6] == 255


def test_window_record_accumulates_repeats() -> None:
    window = ContactWindow.empty(3, D)
    window.record(np.array([2, 2, 0]), np.array([0, 0, 3]), np.array([True, False, True]))
    assert window.attempts[2, 6, 0] == 2 and window.attempts[0, 6, 3] == 1
    assert window.conversations[:, 6].tolist() == [0, 0, 1]  # email is not a telephone call


def test_window_advance_shifts_and_zeroes() -> None:
    history = make_history([0, 0, 0], [D - 6, D - 1, D], [0, 0, 0], [True, False, False])
    window = ContactWindow.from_history(history, 1, D)
    window.advance(D + 1)
    same = ContactWindow.from_history(history, 1, D + 1)
    assert window.day == D + 1
    assert np.array_equal(window.attempts, same.attempts)
    assert np.array_equal(window.conversations, same.conversations)
    window.advance(D + 1)
    assert np.array_equal(window.attempts, same.attempts)
    window.advance(D + 20)
    assert window.attempts.sum() == 0 and window.conversations.sum() == 0
    with pytest.raises(ValueError, match="back"):
        window.advance(D)


def test_advanced_window_equals_rebuilt_window_on_random_history() -> None:
    rng = np.random.default_rng(7)
    from collsim.compliance.testing import random_history

    history = random_history(rng, 50, D - 20, D + 10, 3000)
    window = ContactWindow.from_history(history, 50, D)
    for day in (D + 1, D + 3, D + 9):
        window.advance(day)
        # Rows after the old D were not in the window; add them as if recorded.
        rebuilt = ContactWindow.from_history(history, 50, day)
        keep = history.local_day <= D
        partial = ContactWindow.from_history(
            make_history(
                history.account[keep],
                history.local_day[keep],
                history.channel[keep],
                history.conversation[keep],
            ),
            50,
            day,
        )
        assert np.array_equal(window.attempts, partial.attempts)
        assert rebuilt.attempts.sum() >= partial.attempts.sum()
