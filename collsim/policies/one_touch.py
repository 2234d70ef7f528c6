"""One-touch policies for calibration experiments (``collsim calibrate``).

* :class:`FirstDayOnly` runs any policy on the first day it decides and contacts
  nobody afterwards: with a one-touch strategy tree (``one_touch_sms``,
  ``one_touch_agent_call``) every account gets at most one contact, on day 0.
* :class:`SpreadHours` makes one attempt of a timed channel per account a day on the
  first days, each at a local operating hour drawn uniformly (answer rates by hour).

Both see only the snapshot (no latent traits), like any policy.
"""

from __future__ import annotations

import numpy as np

from collsim.plan import Plan, Policy, Snapshot
from collsim.vocab import CHANNELS, IS_TIMED


class FirstDayOnly:
    """Wrap a policy: its plan on the first day, no contact on every later day.

    Args:
        inner: the policy deciding the first day.
    """

    def __init__(self, inner: Policy) -> None:
        self.inner = inner
        self.policy_id = f"first_day_only:{inner.policy_id}"
        self._first_day: int | None = None

    def decide(self, snapshot: Snapshot) -> Plan:
        """Return the inner plan on the first day, else a no-contact plan."""
        if self._first_day is None:
            self._first_day = snapshot.day
        if snapshot.day != self._first_day:
            return Plan.no_contact(snapshot.n, self.policy_id, "one touch: after the first day")
        return self.inner.decide(snapshot)


class SpreadHours:
    """One attempt per active account a day on the first ``days`` days, at drawn hours.

    Each day's hour is drawn uniformly over the operating slots from the snapshot's
    policy generator (seeded by the run), independently of everything else.  An
    account whose drawn hour is forbidden gets no contact (it is not moved to another
    hour, so the hours stay uniform).  Capacity is not checked: run it on a scenario
    whose capacity fits every account.

    Args:
        channel: a timed channel name (default ``agent_call``).
        days: days with an attempt (from the first day the policy decides).
    """

    def __init__(self, channel: str = "agent_call", days: int = 1) -> None:
        code = CHANNELS.index(channel)
        if not IS_TIMED[code]:
            raise ValueError(f"SpreadHours needs a timed channel, not {channel!r}")
        if days < 1:
            raise ValueError(f"days must be at least 1, got {days}")
        self.channel = code
        self.days = days
        self.policy_id = f"spread_hours:{channel}"
        self._first_day: int | None = None

    def decide(self, snapshot: Snapshot) -> Plan:
        """Return the day's spread plan (no contact after the first ``days`` days)."""
        if self._first_day is None:
            self._first_day = snapshot.day
        if snapshot.day - self._first_day >= self.days:
            return Plan.no_contact(snapshot.n, self.policy_id, "spread: after the last day")
        opts = snapshot.options
        slot = snapshot.rng.integers(opts.n_slots, size=snapshot.n)
        rows = np.arange(snapshot.n)
        allowed = snapshot.active & snapshot.mask[rows, self.channel, slot]
        option = np.where(allowed, self.channel * opts.n_slots + slot, -1)
        reason = allowed.astype(np.int16)
        return Plan.from_options(
            option,
            opts,
            self.policy_id,
            ["drawn hour forbidden or not in collection", "one attempt at a drawn hour"],
            reason,
        )
