"""Machinery shared by policies: capacity-aware greedy filling of ranked candidates."""

from __future__ import annotations

import numpy as np

from collsim.plan import Snapshot
from collsim.vocab import N_CHANNELS, Channel

_FEW_GROUPS = 256
"""Above this many candidate groups, the per-group capacity pre-filter costs more than it saves."""


def allowed_options(snapshot: Snapshot, rows: np.ndarray, option: np.ndarray) -> np.ndarray:
    """bool: whether option[i] is allowed for account rows[i] (-1 → False)."""
    s = snapshot.options.n_slots
    safe = np.maximum(option, 0)
    valid = snapshot.options.valid[safe]
    return (option >= 0) & valid & snapshot.mask[rows, safe // s, safe % s]


def redial_crowded(snapshot: Snapshot, redial_headroom: int) -> np.ndarray:
    """int [M]: accounts with at least ``redial_headroom`` telephone attempts recently.

    Telephone attempts = agent calls + voice bot in ``contact.attempts_7d``.  The engine
    redials an unanswered agent call the same day; under a 7-in-7 rule that redial
    would be refused in-day, so policies with a headroom plan no agent call for these.
    """
    recent = snapshot.contact.attempts_7d
    phone = recent[:, Channel.AGENT_CALL].astype(np.int64) + recent[:, Channel.VOICE_BOT]
    return np.flatnonzero(phone >= redial_headroom)


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
    remaining = snapshot.resources.capacity.astype(np.int64).copy()
    chosen = np.full(n, -1, dtype=np.int64)
    chosen_round = np.full(n, -1, dtype=np.int64)
    table = np.where(snapshot.options.valid[np.maximum(table, 0)], table, -1)
    candidates = _Candidates(snapshot, table)
    pending = np.flatnonzero(group >= 0)
    pending = pending[np.argsort(-priority[pending], kind="stable")]
    pending = pending[_viable(snapshot, table, group, pending)]
    key = candidates.key(group, pending)
    allowed_flat = np.ascontiguousarray(snapshot.mask).reshape(-1)
    for column in range(table.shape[1]):
        open_now, alive = candidates.open(column, remaining)
        if alive is not None:  # drop accounts none of whose remaining candidates is open
            keep = alive[key]
            pending, key = pending[keep], key[keep]
        if pending.size == 0:
            break
        # Skip candidates whose resource is already full before touching the mask.
        sel = open_now[key] if open_now is not None else np.ones(pending.size, dtype=bool)
        rows, row_key = pending[sel], key[sel]
        option, resource = candidates.at(column, rows, row_key)
        ok = (option >= 0) & ((resource < 0) | (remaining[np.maximum(resource, 0)] > 0))
        ok[ok] = allowed_flat[rows[ok] * candidates.n_options + option[ok]]
        rows, option, resource = rows[ok], option[ok], resource[ok]
        if rows.size == 0:
            continue
        take = _take_in_order(resource, remaining)
        chosen[rows[take]] = option[take]
        chosen_round[rows[take]] = column
        keep = chosen[pending] < 0
        pending, key = pending[keep], key[keep]
    return chosen, chosen_round


class _Candidates:
    """Candidate options and their resources per round, by (group, zone) cell when few groups."""

    def __init__(self, snapshot: Snapshot, table: np.ndarray) -> None:
        self.zone = snapshot.accounts.timezone
        self.n_options = snapshot.options.n_options
        self.resource_by_zone = snapshot.resources.resource_by_zone
        self.n_zones = self.resource_by_zone.shape[0]
        self.table = table
        self.by_cell = table.shape[0] <= _FEW_GROUPS
        if self.by_cell:  # cell g * Z + z: group g's candidates in zone z
            self.option = np.repeat(table, self.n_zones, axis=0)
            zone_of_cell = np.tile(np.arange(self.n_zones), table.shape[0])
            self.resource = self.resource_by_zone[zone_of_cell[:, None], np.maximum(self.option, 0)]

    def key(self, group: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """int per row: its cell (few groups) or its group."""
        return group[rows] * self.n_zones + self.zone[rows] if self.by_cell else group[rows]

    def open(
        self, column: int, remaining: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(cell's candidate in ``column`` is open, cell has an open candidate from ``column``).

        Both are bool per cell, or None when candidates are keyed by group (many groups).
        """
        if not self.by_cell:
            return None, None
        option, resource = self.option[:, column:], self.resource[:, column:]
        open_ = (option >= 0) & ((resource < 0) | (remaining[np.maximum(resource, 0)] > 0))
        return open_[:, 0], open_.any(axis=1)

    def at(self, column: int, rows: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(option, resource) of the rows' candidates in ``column``; resource -1 = unlimited."""
        if self.by_cell:
            return self.option[key, column], self.resource[key, column]
        option = self.table[key, column]
        return option, self.resource_by_zone[self.zone[rows], np.maximum(option, 0)]


def _take_in_order(resource: np.ndarray, remaining: np.ndarray) -> np.ndarray:
    """bool: the request fits (rows in priority order); ``remaining`` is reduced in place."""
    take = resource < 0
    limited = np.flatnonzero(~take)
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
        remaining -= np.bincount(r[fits], minlength=remaining.size)
    return take


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
    allowed_channel = snapshot.allowed_channels()[rows]
    return np.asarray((allowed_channel & channels_of_group[group[rows]]).any(axis=1))
