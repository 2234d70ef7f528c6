"""fill_capacity against a plain-Python reference: one account at a time, round by round."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collsim.plan import OptionSpace
from collsim.policies.base import fill_capacity

N_SLOTS = 3


def _snapshot(rng: np.random.Generator, n: int, n_zones: int, n_resources: int) -> SimpleNamespace:
    options = OptionSpace(np.arange(8, 8 + N_SLOTS))
    mask = rng.random((n, 8, N_SLOTS)) < 0.6
    resource_by_zone = rng.integers(-1, n_resources, size=(n_zones, options.n_options))
    return SimpleNamespace(
        n=n,
        mask=mask,
        options=options,
        accounts=SimpleNamespace(timezone=rng.integers(0, n_zones, size=n)),
        resources=SimpleNamespace(
            capacity=rng.integers(0, 4, size=n_resources), resource_by_zone=resource_by_zone
        ),
        allowed_channels=lambda: mask.any(axis=2),
    )


def _reference(
    snapshot: SimpleNamespace, table: np.ndarray, group: np.ndarray, priority: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    remaining = snapshot.resources.capacity.copy()
    chosen = np.full(snapshot.n, -1)
    chosen_round = np.full(snapshot.n, -1)
    order = sorted(np.flatnonzero(group >= 0), key=lambda i: (-priority[i], i))
    valid = snapshot.options.valid
    for column in range(table.shape[1]):
        for i in order:
            option = table[group[i], column]
            if chosen[i] >= 0 or option < 0 or not valid[option]:
                continue
            if not snapshot.mask[i, option // N_SLOTS, option % N_SLOTS]:
                continue
            resource = snapshot.resources.resource_by_zone[snapshot.accounts.timezone[i], option]
            if resource >= 0:
                if remaining[resource] <= 0:
                    continue
                remaining[resource] -= 1
            chosen[i], chosen_round[i] = option, column
    return chosen, chosen_round


def _check(seed: int, n: int, n_groups: int, width: int, n_zones: int, n_resources: int) -> None:
    rng = np.random.default_rng(seed)
    snapshot = _snapshot(rng, n, n_zones, n_resources)
    table = rng.integers(-1, snapshot.options.n_options, size=(n_groups, width))
    group = rng.integers(-1, n_groups, size=n)
    priority = rng.integers(0, 4, size=n).astype(float)  # ties on purpose
    got = fill_capacity(snapshot, table, group, priority)  # type: ignore[arg-type]
    want = _reference(snapshot, table, group, priority)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 40),
    n_groups=st.integers(1, 5),
    width=st.integers(1, 6),
    n_zones=st.integers(1, 3),
    n_resources=st.integers(1, 4),
)
def test_few_groups_match_reference(
    seed: int, n: int, n_groups: int, width: int, n_zones: int, n_resources: int
) -> None:
    _check(seed, n, n_groups, width, n_zones, n_resources)


@pytest.mark.parametrize("seed", range(5))
def test_one_group_per_account_matches_reference(seed: int) -> None:
    """More groups than the per-cell path handles (one candidate list per account)."""
    _check(seed, n=400, n_groups=400, width=6, n_zones=3, n_resources=5)
