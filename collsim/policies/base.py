"""Machinery shared by policies: capacity-aware greedy filling of ranked candidates."""

from __future__ import annotations

import numpy as np

from collsim.plan import Snapshot


def allowed_options(snapshot: Snapshot, rows: np.ndarray, option: np.ndarray) -> np.ndarray:
    """bool: whether option[i] is allowed for account rows[i] (-1 → False)."""
    s = snapshot.options.n_slots
    safe = np.maximum(option, 0)
    valid = snapshot.options.valid[safe]
    return (option >= 0) & valid & snapshot.mask[rows, safe // s, safe % s]


def fill_capacity(snapshot: Snapshot, candidates: np.ndarray, priority: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give each account its first candidate option that is allowed and has capacity left.

    Candidates are tried in rounds (column by column).  In each round, the accounts
    still unserved compete for each resource in order of ``priority`` (higher
    first; ties by account index), and take what capacity is left.

    Args:
        snapshot: the day's snapshot (mask, resources, time zones).
        candidates: int [N, L] option indices in order of preference (-1 = none).
        priority: float [N], higher is served first.

    Returns:
        (option [N] with -1 for no contact, round [N] in which it was chosen or -1).
    """
    n = snapshot.n
    res = snapshot.resources
    remaining = res.capacity.astype(np.int64).copy()
    chosen = np.full(n, -1, dtype=np.int64)
    chosen_round = np.full(n, -1, dtype=np.int64)
    zone = snapshot.accounts.timezone
    order = np.lexsort((np.arange(n), -priority))
    for column in range(candidates.shape[1]):
        rows = order[(chosen[order] < 0) & (candidates[order, column] >= 0)]
        option = candidates[rows, column]
        ok = allowed_options(snapshot, rows, option)
        rows, option = rows[ok], option[ok]
        if rows.size == 0:
            continue
        resource = res.resource_by_zone[zone[rows], option]
        unlimited = resource < 0
        take = unlimited.copy()
        limited = np.flatnonzero(~unlimited)
        if limited.size:
            r = resource[limited]
            # rows are already in priority order: rank within each resource by position.
            sort = np.argsort(r, kind="stable")
            r_sorted = r[sort]
            starts = np.r_[0, np.flatnonzero(np.diff(r_sorted)) + 1]
            rank = np.arange(r_sorted.size) - np.repeat(starts, np.diff(np.r_[starts, r_sorted.size]))
            fits = np.empty(limited.size, dtype=bool)
            fits[sort] = rank < remaining[r_sorted]
            take[limited] = fits
            np.subtract.at(remaining, r[fits], 1)
        chosen[rows[take]] = option[take]
        chosen_round[rows[take]] = column
    return chosen, chosen_round
