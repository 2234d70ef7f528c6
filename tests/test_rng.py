"""Keyed draws and named streams."""

from __future__ import annotations

import numpy as np

from collsim.rng import RunRandom


def test_keyed_draws_depend_only_on_their_key():
    a, b = RunRandom(5), RunRandom(5)
    accounts = np.arange(1000)
    assert np.array_equal(a.uniform("answer", 3, accounts), b.uniform("answer", 3, accounts))
    # A subset gets the same values as in the full batch (keyed per account, not by position).
    assert np.array_equal(
        a.uniform("answer", 3, accounts[[7, 500]]), a.uniform("answer", 3, accounts)[[7, 500]]
    )
    assert not np.array_equal(a.uniform("answer", 3, accounts), a.uniform("answer", 4, accounts))
    assert not np.array_equal(a.uniform("answer", 3, accounts), a.uniform("party", 3, accounts))
    assert not np.array_equal(
        a.uniform("answer", 3, accounts), RunRandom(6).uniform("answer", 3, accounts)
    )


def test_keyed_draws_look_uniform():
    u = RunRandom(1).uniform("x", 0, np.arange(200_000))
    assert u.min() >= 0 and u.max() < 1
    counts, _ = np.histogram(u, bins=20, range=(0, 1))
    expected = u.size / 20
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 50  # 19 dof: p < 1e-4 at 50


def test_named_streams_are_independent_and_stable():
    rr = RunRandom(9)
    x = rr.generator("population").random(5)
    assert np.array_equal(x, RunRandom(9).generator("population").random(5))
    assert not np.array_equal(x, rr.generator("policy").random(5))
