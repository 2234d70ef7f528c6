"""Letters: sending (delivery draw, post delay in SimPy) and arrival in the morning."""

from __future__ import annotations

import numpy as np

from collsim.behaviour import ACTIVE
from collsim.sim.stages import money, records
from collsim.sim.state import SimState
from collsim.vocab import Channel, Outcome


def send_letters(s: SimState, idx: np.ndarray) -> None:
    """Post letters: a delivery draw; delivered letters arrive after the post delay."""
    if idx.size == 0:
        return
    ch = np.full(idx.size, Channel.LETTER, dtype=np.int64)
    delivered = (
        s.random.uniform("deliver_letter", s.day, idx) >= s.model.not_delivered[Channel.LETTER]
    )
    outcome = np.where(delivered, Outcome.DELIVERED, Outcome.NOT_DELIVERED).astype(np.int8)
    records.record_attempts(
        s, idx, ch, np.full(idx.size, -1), outcome, np.zeros(idx.size, dtype=bool)
    )
    delay_h = s.scenario.channels["letter"].delay_days * 24.0
    s.post.send(idx[delivered], delay_h)


def letters_arrive(s: SimState) -> None:
    """Letters arriving today: read by active borrowers, who may pay through them."""
    arrived = s.post.collect()
    arrived = arrived[s.borrowers.status[arrived] == ACTIVE]
    if arrived.size:
        channel = np.full(arrived.size, Channel.LETTER, dtype=np.int64)
        result = s.model.message(
            arrived,
            channel,
            np.full(arrived.size, -1),
            np.ones(arrived.size),
            s.random.uniform("letter_open", s.day, arrived),
        )
        s.model.excite(arrived, channel, result.effective, result.reached, s.borrowers)
        money.link_payments(s, arrived[result.effective], Channel.LETTER, -1)


__all__ = ["letters_arrive", "send_letters"]
