"""Local days around DST changes: history from UTC timestamps, 7-day windows of local days."""

from __future__ import annotations

import datetime as dt

import numpy as np

from collsim.compliance import ContactWindow, load_ruleset
from collsim.compliance.testing import make_history, make_portfolio
from collsim.portfolio import day_number
from collsim.timeutil import utc_to_local

ZONES = ("America/New_York", "Europe/London")
NY, LONDON = 0, 1


def utc(text: str) -> int:
    """UTC epoch seconds of an ISO 8601 'Z' timestamp."""
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def local(zone: int, stamps: list[str]) -> list[tuple[dt.date, int]]:
    day, hour = utc_to_local(ZONES, np.full(len(stamps), zone), np.array([utc(s) for s in stamps]))
    epoch = dt.date(1970, 1, 1)
    return [(epoch + dt.timedelta(days=int(d)), int(h)) for d, h in zip(day, hour, strict=True)]


def test_new_york_local_days_around_dst() -> None:
    stamps = [
        "2026-03-08T04:30:00Z",  # 23:30 EST on 03-07
        "2026-03-08T05:30:00Z",  # 00:30 EST on 03-08
        "2026-03-08T07:30:00Z",  # 03:30 EDT (02:00-03:00 does not exist)
        "2026-03-09T04:30:00Z",  # 00:30 EDT on 03-09 (EST would say 23:30 on 03-08)
        "2026-11-01T04:30:00Z",  # 00:30 EDT on 11-01 (EST would say 23:30 on 10-31)
        "2026-11-01T05:30:00Z",  # 01:30 EDT, first pass
        "2026-11-01T06:30:00Z",  # 01:30 EST, second pass
        "2026-11-02T04:30:00Z",  # 23:30 EST on 11-01
    ]
    assert local(NY, stamps) == [
        (dt.date(2026, 3, 7), 23),
        (dt.date(2026, 3, 8), 0),
        (dt.date(2026, 3, 8), 3),
        (dt.date(2026, 3, 9), 0),
        (dt.date(2026, 11, 1), 0),
        (dt.date(2026, 11, 1), 1),
        (dt.date(2026, 11, 1), 1),
        (dt.date(2026, 11, 1), 23),
    ]


def test_london_local_days_around_dst() -> None:
    stamps = [
        "2026-03-29T00:30:00Z",  # 00:30 GMT on 03-29
        "2026-03-29T01:30:00Z",  # 02:30 BST
        "2026-03-29T23:30:00Z",  # 00:30 BST on 03-30 (GMT would say 03-29)
        "2026-10-24T23:30:00Z",  # 00:30 BST on 10-25 (GMT would say 10-24)
        "2026-10-25T00:30:00Z",  # 01:30 BST, first pass
        "2026-10-25T01:30:00Z",  # 01:30 GMT, second pass
        "2026-10-25T23:30:00Z",  # 23:30 GMT on 10-25
    ]
    assert local(LONDON, stamps) == [
        (dt.date(2026, 3, 29), 0),
        (dt.date(2026, 3, 29), 2),
        (dt.date(2026, 3, 30), 0),
        (dt.date(2026, 10, 25), 0),
        (dt.date(2026, 10, 25), 1),
        (dt.date(2026, 10, 25), 1),
        (dt.date(2026, 10, 25), 23),
    ]


def window_from_utc(
    zone_of_account: list[int],
    account: list[int],
    stamps: list[str],
    conversation: list[bool],
    day: dt.date,
) -> ContactWindow:
    zone = np.array(zone_of_account)[np.array(account)]
    local_day, local_hour = utc_to_local(ZONES, zone, np.array([utc(s) for s in stamps]))
    history = make_history(account, local_day, [0] * len(stamps), conversation, local_hour)
    return ContactWindow.from_history(history, len(zone_of_account), day_number(day))


def test_seven_in_seven_counts_local_days_across_spring_forward() -> None:
    # D = 2026-03-15 in New York, so D-6 = 03-09.  The first call is 00:30 EDT on
    # 03-09, inside the window; a fixed EST offset would put it on 03-08, outside.
    stamps = ["2026-03-09T04:30:00Z"] + [
        f"2026-03-{d:02d}T16:00:00Z" for d in (10, 11, 12, 12, 13, 14)
    ]
    day = dt.date(2026, 3, 15)
    window = window_from_utc([NY], [0] * 7, stamps, [False] * 7, day)
    assert window.attempts[0, :, 0].tolist() == [1, 1, 1, 2, 1, 1, 0]
    us = load_ruleset("us_reg_f")
    portfolio = make_portfolio(1, timezones=ZONES)
    assert [r for r, _ in us.explain(portfolio, window, 0, 0, 10)] == ["us_reg_f.7in7"]
    # One local day later the 03-09 call has left the window.
    window.advance(day_number(day) + 1)
    assert us.explain(portfolio, window, 0, 0, 10) == []


def test_post_conversation_counts_local_days_across_fall_back() -> None:
    # London, D = 2026-10-31, D-6 = 10-25 (the fall-back day).
    day = dt.date(2026, 10, 31)
    us = load_ruleset("us_reg_f")
    portfolio = make_portfolio(2, timezones=ZONES, timezone=np.array([LONDON, LONDON]))
    window = window_from_utc(
        [LONDON, LONDON],
        [0, 1],
        ["2026-10-24T23:30:00Z", "2026-10-24T22:30:00Z"],
        [True, True],
        day,
    )
    # Account 0: 00:30 BST on 10-25 = D-6, forbids.  Account 1: 23:30 BST on 10-24 = D-7.
    assert window.conversations[:, 0].tolist() == [1, 0]
    assert [r for r, _ in us.explain(portfolio, window, 0, 0, 10)] == ["us_reg_f.post_conversation"]
    assert us.explain(portfolio, window, 1, 0, 10) == []


def test_same_utc_instant_lands_on_different_local_days_by_zone() -> None:
    # 2026-03-05T03:00Z is 22:00 on 03-04 in New York and 03:00 on 03-05 in London.
    # With D = 2026-03-11 (D-6 = 03-05): the New York account has 6 calls in the
    # window (allowed), the London account 7 (forbidden).
    stamps = ["2026-03-05T03:00:00Z"] + [f"2026-03-{d:02d}T12:00:00Z" for d in range(5, 11)]
    account = [0] * 7 + [1] * 7
    window = window_from_utc([NY, LONDON], account, stamps * 2, [False] * 14, dt.date(2026, 3, 11))
    assert window.attempts[:, :, 0].sum(axis=1).tolist() == [6, 7]
    portfolio = make_portfolio(2, timezones=ZONES, timezone=np.array([NY, LONDON]))
    us = load_ruleset("us_reg_f")
    mask = us.mask(portfolio, window, np.array([10]))
    assert mask[:, 0, 0].tolist() == [True, False]
    first = us.first_violation(
        portfolio, window, np.array([0, 1]), np.array([0, 0]), np.array([10, 10])
    )
    assert first[0] == -1 and us.rule_ids[first[1]] == "us_reg_f.7in7"
