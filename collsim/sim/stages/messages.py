"""Messages (SMS, email, app push): delivery, reads, opt-outs, link offers and payments."""

from __future__ import annotations

import numpy as np

from collsim.sim.stages import money, records, responses
from collsim.sim.state import SimState
from collsim.vocab import Channel, bucket_of


def send_messages(s: SimState, idx: np.ndarray, channel: int, hour: np.ndarray) -> None:
    """Send messages on one channel: delivery, reads, opt-outs, offers, link payments."""
    if idx.size == 0:
        return
    ch = np.full(idx.size, channel, dtype=np.int64)
    result = s.model.message(
        idx,
        ch,
        hour,
        s.random.uniform(f"deliver_{channel}", s.day, idx),
        s.random.uniform(f"open_{channel}", s.day, idx),
        s.borrowers,
        s.random.uniform(f"message_risk_{channel}", s.day, idx),
    )
    records.record_attempts(s, idx, ch, hour, result.outcome, result.conversation)
    if result.opted_out is not None:
        opt_out(s, idx[result.opted_out], channel, hour[result.opted_out])
    s.model.excite(idx, ch, result.effective, result.reached, s.borrowers)
    read, read_hour = idx[result.effective], hour[result.effective]
    variant = None
    if s.offer is not None and s.variant is not None:
        taken = message_offers(s, read, channel, read_hour)
        read, read_hour = read[~taken], read_hour[~taken]
        variant = s.variant[read].astype(np.int64)
    money.link_payments(s, read, channel, read_hour, variant)


def opt_out(s: SimState, idx: np.ndarray, channel: int, hour: np.ndarray) -> None:
    """Opt-outs from a message channel: the flag the rule sets read is set at once.

    SMS sets ``sms_opt_out``, email ``email_opt_out``; app push removes the app
    (``has_app``), so the channel's reach rule forbids it from the next contact on.
    """
    if idx.size == 0:
        return
    p = s.portfolio
    flag = {
        Channel.SMS: p.sms_opt_out,
        Channel.EMAIL: p.email_opt_out,
        Channel.APP_PUSH: p.has_app,
    }[Channel(channel)]
    flag[idx] = channel != Channel.APP_PUSH
    s.ledger.append(
        "opt_out",
        s.day,
        idx,
        channel=channel,
        hour=hour,
        bucket=bucket_of(p.dpd[idx]),
    )


def message_offers(s: SimState, idx: np.ndarray, channel: int, hour: np.ndarray) -> np.ndarray:
    """Offers taken through read messages' links; return bool [M] taken."""
    assert s.offer is not None and s.variant is not None
    offer = s.offer[idx].astype(np.int64)
    variant = s.variant[idx].astype(np.int64)
    p = s.model.offer_take_up(idx, offer, variant, s.portfolio.dpd[idx], message=True)
    taken = s.random.uniform(f"offer_link_{channel}", s.day, idx) < p
    responses.accept_offers(
        s, idx[taken], offer[taken], np.full(int(taken.sum()), channel), hour[taken]
    )
    return taken


__all__ = ["message_offers", "opt_out", "send_messages"]
