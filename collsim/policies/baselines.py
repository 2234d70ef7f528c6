"""Baseline policies: no contact, and uniformly random among allowed options."""

from __future__ import annotations

import numpy as np

from collsim.plan import Plan, Snapshot
from collsim.policies.base import fill_capacity


class NoContact:
    """Never contacts anybody (the self-cure baseline)."""

    policy_id = "no_contact"

    def decide(self, snapshot: Snapshot) -> Plan:
        """Return a plan with no contact for every account."""
        return Plan.no_contact(snapshot.n, self.policy_id)


class RandomPolicy:
    """Contacts a random share of active accounts with a uniformly random allowed option.

    Capacity is filled in random order.  The plan records each row's propensity
    (probability of the chosen action before capacity), for off-policy evaluation.

    Args:
        contact_rate: probability that an active account with an allowed option is contacted.
        chunk: rows sampled at a time (bounds memory at large N).
    """

    policy_id = "random"

    def __init__(self, contact_rate: float = 0.3, chunk: int = 100_000) -> None:
        if not 0.0 <= contact_rate <= 1.0:
            raise ValueError(f"contact_rate must be in [0, 1], got {contact_rate}")
        self.contact_rate = contact_rate
        self.chunk = chunk

    def decide(self, snapshot: Snapshot) -> Plan:
        """Return a random plan drawn from ``snapshot.rng``."""
        n, rng = snapshot.n, snapshot.rng
        pick = np.full(n, -1, dtype=np.int64)
        n_allowed = np.zeros(n, dtype=np.int64)
        for start in range(0, n, self.chunk):
            allowed = snapshot.options.option_mask(snapshot.mask[start : start + self.chunk])
            keys = np.where(allowed, rng.random(allowed.shape), -1.0)
            n_allowed[start : start + self.chunk] = allowed.sum(axis=1)
            pick[start : start + self.chunk] = np.where(
                n_allowed[start : start + self.chunk] > 0, keys.argmax(axis=1), -1
            )
        wants = (rng.random(n) < self.contact_rate) & (pick >= 0)
        option, _ = fill_capacity(
            snapshot, pick[:, None], np.where(wants, np.arange(n), -1), rng.random(n)
        )
        propensity = np.where(
            option >= 0,
            self.contact_rate / np.maximum(n_allowed, 1),
            np.where(n_allowed > 0, 1.0 - self.contact_rate, 1.0),
        )
        reason = np.where(option >= 0, 1, 0).astype(np.int16)
        return Plan.from_options(
            option,
            snapshot.options,
            self.policy_id,
            ["no contact drawn", "random allowed option"],
            reason,
            priority_score=rng.random(n),
            propensity=propensity,
        )
