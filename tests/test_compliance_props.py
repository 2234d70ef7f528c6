"""Property: the mask, first_violation and explain agree on every cell."""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collsim.compliance import ContactWindow, load_ruleset
from collsim.compliance.testing import make_history, make_portfolio
from collsim.portfolio import FLAG_COLUMNS, day_number
from collsim.vocab import IS_TIMED, N_CHANNELS

RULESETS = {name: load_ruleset(name) for name in ("us_reg_f", "cn_gbt45251", "strict_example")}
FIRST_DAY = day_number(dt.date(2026, 3, 1))


@st.composite
def cases(draw: st.DrawFn) -> tuple:  # type: ignore[type-arg]
    n = draw(st.integers(1, 5))
    flags = {
        name: np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        for name in FLAG_COLUMNS
    }
    day = FIRST_DAY + draw(st.integers(0, 13))
    row = st.tuples(
        st.integers(0, n - 1), st.integers(-8, 0), st.integers(0, N_CHANNELS - 1), st.booleans()
    )
    rows = draw(st.lists(row, max_size=40))
    today = draw(
        st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, N_CHANNELS - 1), st.booleans()),
            max_size=12,
        )
    )
    slots = sorted(draw(st.sets(st.integers(0, 23), min_size=1, max_size=6)))
    name = draw(st.sampled_from(sorted(RULESETS)))
    return n, flags, day, rows, today, np.array(slots), name


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_mask_first_violation_and_explain_agree(case: tuple) -> None:  # type: ignore[type-arg]
    n, flags, day, rows, today, slots, name = case
    ruleset = RULESETS[name]
    portfolio = make_portfolio(n, **flags)
    if rows:
        account, offset, channel, talk = (list(c) for c in zip(*rows, strict=True))
        history = make_history(account, [day + o for o in offset], channel, talk)
        window = ContactWindow.from_history(history, n, day)
    else:
        window = ContactWindow.empty(n, day)
    if today:
        account, channel, talk = (np.array(c) for c in zip(*today, strict=True))
        window.record(account, channel, talk)

    mask = ruleset.mask(portfolio, window, slots)
    assert mask.shape == (n, N_CHANNELS, slots.size)
    # The fast paths agree with their plain definitions.
    mask_again, channels = ruleset.mask_and_channels(portfolio, window, slots)
    np.testing.assert_array_equal(mask_again, mask)
    np.testing.assert_array_equal(channels, mask.any(axis=2))
    within = np.arange(n) % 2 == 0
    mask_within, channels_within = ruleset.mask_and_channels(portfolio, window, slots, within)
    np.testing.assert_array_equal(mask_within, mask & within[:, None, None])
    np.testing.assert_array_equal(channels_within, channels & within[:, None])
    attempts, conversations = window.totals_before_today()
    np.testing.assert_array_equal(attempts, window.attempts[:, :-1].sum(axis=1))
    np.testing.assert_array_equal(conversations, window.conversations[:, :-1].sum(axis=1))
    rows = np.arange(n)[::-1]
    np.testing.assert_array_equal(portfolio.reachable(rows), portfolio.reachable()[rows])

    # Every cell as a triple; untimed channels carry slot hour -1.
    a, c, s = (
        x.ravel()
        for x in np.meshgrid(
            np.arange(n), np.arange(N_CHANNELS), np.arange(slots.size), indexing="ij"
        )
    )
    hour = np.where(IS_TIMED[c], slots[s], -1)
    first = ruleset.first_violation(portfolio, window, a, c, hour)
    assert np.array_equal(mask[a, c, s], first == -1)
    for i in range(a.size):
        explained = ruleset.explain(portfolio, window, int(a[i]), int(c[i]), int(hour[i]))
        assert (explained == []) == bool(mask[a[i], c[i], s[i]])
        if explained:
            assert explained[0][0] == ruleset.rule_ids[first[i]]
    # Untimed channels: same value in every slot column.
    assert np.all(mask[:, ~IS_TIMED, :] == mask[:, ~IS_TIMED, :1])


def test_rule_on_account_and_hour_uses_the_full_reduction() -> None:
    """A rule that depends on both the account and the hour: channels = mask.any(axis=2)."""
    from collsim.compliance.ruleset import _allowed

    rng = np.random.default_rng(0)
    parts = [rng.random((6, N_CHANNELS, 1)) < 0.3, rng.random((6, N_CHANNELS, 5)) < 0.7]
    allowed, channels = _allowed(parts, (6, N_CHANNELS, 5))
    np.testing.assert_array_equal(allowed, ~(parts[0] | parts[1]))
    np.testing.assert_array_equal(channels, allowed.any(axis=2))
    assert channels.any() and not channels.all()
