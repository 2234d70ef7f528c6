"""Time zones: local days, local hours and UTC windows, DST-aware via zoneinfo.

Work is done per unique zone (a handful), never per account.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def utc_offset_s(zone: str, local_day: int, hour: int = 12) -> int:
    """Return the UTC offset in seconds of ``zone`` at local ``hour`` on a local day number.

    A local time that does not exist (spring-forward gap) takes the offset after the gap.
    """
    date = dt.date(1970, 1, 1) + dt.timedelta(days=int(local_day))
    naive = dt.datetime(date.year, date.month, date.day, hour)
    info = ZoneInfo(zone)
    offset = naive.replace(tzinfo=info, fold=1).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


def local_to_utc_s(
    zones: tuple[str, ...], zone_code: np.ndarray, local_day: int, hour: np.ndarray
) -> np.ndarray:
    """Return UTC epoch seconds of local ``hour``:00 on ``local_day`` for each account.

    Args:
        zones: IANA zone names; ``zone_code`` indexes them.
        zone_code: int [N].
        local_day: the local day number.
        hour: int [N] local hours (0-24; 24 = end of day).

    Hours inside a DST gap map to the instant after the gap; ambiguous hours
    (fall-back) map to the first occurrence.
    """
    out = np.empty(zone_code.shape[0], dtype=np.int64)
    date = dt.date(1970, 1, 1) + dt.timedelta(days=int(local_day))
    for z, name in enumerate(zones):
        rows = np.flatnonzero(zone_code == z)
        if rows.size == 0:
            continue
        info = ZoneInfo(name)
        table = np.empty(25, dtype=np.int64)
        for h in range(25):
            naive = dt.datetime(date.year, date.month, date.day) + dt.timedelta(hours=h)
            # fold=0: the first occurrence of an ambiguous time; a time in a gap takes
            # the offset before the gap, which lands on the instant after the gap.
            utc = naive.replace(tzinfo=info).astimezone(dt.UTC)
            table[h] = int((utc - _EPOCH).total_seconds())
        out[rows] = table[np.asarray(hour)[rows]]
    return out


def utc_to_local(
    zones: tuple[str, ...], zone_code: np.ndarray, utc_s: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return (local day number, local hour) of UTC epoch seconds, per row's zone.

    Vectorised per zone; offsets are looked up once per UTC day of the data.
    """
    utc_s = np.asarray(utc_s, dtype=np.int64)
    local_s = np.empty_like(utc_s)
    for z, name in enumerate(zones):
        rows = np.flatnonzero(zone_code == z)
        if rows.size == 0:
            continue
        local_s[rows] = utc_s[rows] + _offsets_at(name, utc_s[rows])
    day = np.floor_divide(local_s, 86400)
    hour = np.floor_divide(local_s - day * 86400, 3600)
    return day.astype(np.int64), hour.astype(np.int64)


def _offset_s(info: ZoneInfo, instant: dt.datetime) -> int:
    offset = instant.astimezone(info).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _offsets_at(zone: str, utc_s: np.ndarray) -> np.ndarray:
    """UTC offsets (s) of ``zone`` at each instant.

    Evaluated once per UTC day of the data; on days with a transition, per quarter hour.
    """
    info = ZoneInfo(zone)
    out = np.empty(utc_s.shape[0], dtype=np.int64)
    day_of = utc_s // 86400
    for day in np.unique(day_of):
        rows = np.flatnonzero(day_of == day)
        base = _EPOCH + dt.timedelta(days=int(day))
        first = _offset_s(info, base)
        if first == _offset_s(info, base + dt.timedelta(hours=23, minutes=59)):
            out[rows] = first
            continue
        table = np.array(
            [_offset_s(info, base + dt.timedelta(minutes=15 * q)) for q in range(96)],
            dtype=np.int64,
        )
        out[rows] = table[(utc_s[rows] - day * 86400) // 900]
    return out
