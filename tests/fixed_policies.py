"""Fixed-treatment test policies shared by the test modules."""

from __future__ import annotations

import numpy as np

from collsim.plan import Plan, Snapshot
from collsim.vocab import Channel


class OfferEveryone:
    """Agent calls for every allowed account at 18:00 with a fixed treatment."""

    def __init__(self, offer: int, variant: int = 0) -> None:
        self.offer, self.variant = offer, variant
        self.policy_id = f"offer_{offer}_{variant}"

    def decide(self, snapshot: Snapshot) -> Plan:
        opts = snapshot.options
        slot = int(np.flatnonzero(opts.slot_hours == 18)[0])
        k = int(Channel.AGENT_CALL) * opts.n_slots + slot
        ok = snapshot.option_mask()[:, k]
        option = np.where(ok, k, -1)
        n = snapshot.n
        return Plan.from_options(
            option,
            opts,
            self.policy_id,
            ["test"],
            np.zeros(n, dtype=np.int16),
            offer=np.full(n, self.offer),
            variant=np.full(n, self.variant),
        )
