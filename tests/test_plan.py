"""Plan helpers against plain-Python references."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collsim.plan import rank_within_groups


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(-3, 40_000), st.sampled_from([0.0, 1.5, -2.0, 7.0])), max_size=60
    )
)
def test_rank_within_groups_matches_reference(rows: list[tuple[int, float]]) -> None:
    """Ranks by key within each group, ties by position (groups beyond int16 included)."""
    group = np.array([g for g, _ in rows], dtype=np.int64)
    key = np.array([k for _, k in rows], dtype=np.float64)
    want = np.zeros(len(rows), dtype=np.int64)
    for g in set(group.tolist()):
        members = sorted(np.flatnonzero(group == g), key=lambda i: (key[i], i))
        for rank, i in enumerate(members, start=1):
            want[i] = rank
    np.testing.assert_array_equal(rank_within_groups(group, key), want)
