"""Machinery shared by policies: capacity-aware greedy filling of ranked candidates."""

from __future__ import annotations

import numpy as np

from collsim.plan import Snapshot
from collsim.vocab import N_CHANNELS

_FEW_GROUPS = 256
"""Above this many candidate groups, the per-group capacity pre-filter costs more than it saves."""


def allowed_options(snapshot: Snapshot, rows: np.ndarray, option: np.ndarray) -> np.ndarray:
    """bool: whether option[i] is allowed for account rows[i] (-1 → False)."""
    s = snapshot.options.n_slots
    safe = np.maximum(option, 0)
    valid = snapshot.options.valid[safe]
    return (option >= 0) & valid & snapshot.mask[rows, safe // s, safe % s]


def fill_capacity(
    snapshot: Snapshot, table: np.ndarray, group: np.ndarray, priority: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Give each account its first candidate option that is allowed and has capacity left.

    Account n's candidates are ``table[group[n]]`` (groups share candidate lists, so
    no [N, L] array is built).  Candidates are tried in rounds (column by column).
    In each round, the accounts still unserved compete for each resource in order
    of ``priority`` (higher first; ties by account index) and take what is left.

    Args:
        snapshot: the day's snapshot (mask, resources, time zones).
        table: int [G, L] option indices in order of preference (-1 = none).
        group: int [N] row of ``table`` for each account (-1 = no candidates).
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
    pending = order[(group[order] >= 0)]
    pending = pending[_viable(snapshot, table, group, pending)]
    for column in range(table.shape[1]):
        if table.shape[0] <= _FEW_GROUPS:
            # Drop accounts none of whose remaining candidates has capacity left.
            alive = _open_candidates(table[:, column:], res.resource_by_zone, remaining)
            pending = pending[alive[group[pending], zone[pending]]]
        if pending.size == 0:
            break
        option = table[group[pending], column]
        has = option >= 0
        rows, option = pending[has], option[has]
        # Skip candidates whose resource is already full before touching the mask.
        resource = res.resource_by_zone[zone[rows], option]
        open_ = (resource < 0) | (remaining[np.maximum(resource, 0)] > 0)
        rows, option, resource = rows[open_], option[open_], resource[open_]
        ok = allowed_options(snapshot, rows, option)
        rows, option, resource = rows[ok], option[ok], resource[ok]
        if rows.size == 0:
            continue
        unlimited = resource < 0
        take = unlimited.copy()
        limited = np.flatnonzero(~unlimited)
        if limited.size:
            r = resource[limited]
            # rows are already in priority order: rank within each resource by position.
            sort = np.argsort(r, kind="stable")
            r_sorted = r[sort]
            starts = np.r_[0, np.flatnonzero(np.diff(r_sorted)) + 1]
            rank = np.arange(r_sorted.size) - np.repeat(
                starts, np.diff(np.r_[starts, r_sorted.size])
            )
            fits = np.empty(limited.size, dtype=bool)
            fits[sort] = rank < remaining[r_sorted]
            take[limited] = fits
            remaining -= np.bincount(r[fits], minlength=remaining.size)
        chosen[rows[take]] = option[take]
        chosen_round[rows[take]] = column
        pending = pending[chosen[pending] < 0]
    return chosen, chosen_round


def _viable(
    snapshot: Snapshot, table: np.ndarray, group: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """bool per row: some channel among its candidates is allowed at some slot today."""
    n_slots = snapshot.options.n_slots
    channels_of_group = np.zeros((table.shape[0], N_CHANNELS), dtype=bool)
    g, j = np.nonzero(table >= 0)
    channels_of_group[g, table[g, j] // n_slots] = True
    if table.shape[0] > _FEW_GROUPS:  # one group per account: no saving from a channel pre-check
        has_channel: np.ndarray = np.asarray(channels_of_group.any(axis=1))
        return has_channel[group[rows]]
    allowed_any: np.ndarray = np.asarray(snapshot.mask.any(axis=2))  # reduce in place
    allowed_channel = allowed_any[rows]
    return np.asarray((allowed_channel & channels_of_group[group[rows]]).any(axis=1))


def _open_candidates(
    table: np.ndarray, resource_by_zone: np.ndarray, remaining: np.ndarray
) -> np.ndarray:
    """bool [G, Z]: group g in zone z has a candidate whose resource is unlimited or not full."""
    resource = resource_by_zone[:, np.maximum(table, 0)]  # [Z, G, L]
    open_ = (table >= 0)[None] & ((resource < 0) | (remaining[np.maximum(resource, 0)] > 0))
    return open_.any(axis=2).T
