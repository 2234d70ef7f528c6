"""Capacity of a day: agent pool-hours and channel budgets as allocation resources.

Agents work shifts in the centre's time zone; accounts see local slots.  For each
account time zone, the option (agent_call, local slot h) uses the pool-hour
resource of the centre hour that local hour falls in on that date (DST-aware).
A channel served by a pool uses pool-hours; otherwise it uses its daily budget if
the capacity file sets one; otherwise it is unlimited (resource -1).
"""

from __future__ import annotations

import numpy as np

from collsim.config import Capacity, ChannelCost
from collsim.plan import OptionSpace, Resources
from collsim.timeutil import utc_offset_s
from collsim.vocab import CHANNELS

UNSTAFFED = "unstaffed"
"""Name of the zero-capacity resource used by pool options in hours nobody works."""


def pool_hour_name(pool: str, centre_hour: int) -> str:
    """Return the resource name of a pool's centre hour, e.g. ``pool:collections@09``."""
    return f"pool:{pool}@{centre_hour:02d}"


def attempts_capacity(agents: int, attempts_per_agent_hour: float) -> int:
    """Attempts an hour's agents can work (floor)."""
    return int(np.floor(agents * attempts_per_agent_hour + 1e-9))


def build_resources(
    capacity: Capacity,
    options: OptionSpace,
    zones: tuple[str, ...],
    day: int,
    channels: dict[str, ChannelCost],
) -> Resources:
    """Build the day's resources and the option → resource map per time zone.

    Args:
        capacity: the capacity file.
        options: the day's option space.
        zones: the portfolio's IANA time zones (``Portfolio.timezones``).
        day: the local day number.
        channels: channel costs (for ``cost_per_attempt``).

    Returns:
        Resources with names, capacities and ``resource_by_zone`` [Z, K].
    """
    names: list[str] = [UNSTAFFED]
    cap: list[int] = [0]
    pools: list[str | None] = [None]
    index: dict[str, int] = {UNSTAFFED: 0}
    pool_of_channel: dict[int, str] = {}
    for pool in capacity.agent_pools:
        for channel in pool.channels:
            pool_of_channel.setdefault(CHANNELS.index(channel), pool.name)
        for hour, agents in sorted(pool.agents_by_hour.items()):
            name = pool_hour_name(pool.name, hour)
            index[name] = len(names)
            names.append(name)
            cap.append(attempts_capacity(agents, pool.attempts_per_agent_hour))
            pools.append(pool.name)
    for channel, budget in capacity.channel_budgets.items():
        name = f"budget:{channel}"
        index[name] = len(names)
        names.append(name)
        cap.append(int(budget))
        pools.append(None)

    centre_offset = utc_offset_s(capacity.centre_timezone, day)
    by_zone = np.full((len(zones), options.n_options), -1, dtype=np.int32)
    for z, zone in enumerate(zones):
        shift_h = (centre_offset - utc_offset_s(zone, day)) // 3600
        for k, (channel, hour) in enumerate(zip(options.channel, options.hour, strict=True)):
            if int(channel) in pool_of_channel:
                centre_hour = int(hour) + shift_h if hour >= 0 else -1
                name = pool_hour_name(pool_of_channel[int(channel)], centre_hour)
                by_zone[z, k] = index.get(name, 0)
            elif f"budget:{CHANNELS[channel]}" in index:
                by_zone[z, k] = index[f"budget:{CHANNELS[channel]}"]
    by_zone[:, ~options.valid] = 0
    return Resources(
        names=tuple(names),
        capacity=np.asarray(cap, dtype=np.int64),
        resource_by_zone=by_zone,
        cost_per_attempt=np.array([channels[c].cost_per_attempt for c in CHANNELS]),
        money_budget=capacity.money_budget,
        pool_of_resource=tuple(pools),
    )


def centre_hour_of(capacity: Capacity, zones: tuple[str, ...], day: int) -> np.ndarray:
    """Return int [Z]: hours to add to a zone's local hour to get the centre's hour."""
    centre_offset = utc_offset_s(capacity.centre_timezone, day)
    return np.array([(centre_offset - utc_offset_s(z, day)) // 3600 for z in zones], dtype=np.int64)
