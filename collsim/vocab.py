"""The shared vocabulary of collsim: channels, outcomes, buckets, slots.

Codes are small integers used in every array; names are the lower-case strings used
in every file (docs/input_formats.md, docs/plan_schema.md).  The order of the tuples
is part of the contract between modules (array axes follow it) and must not change.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

CHANNELS: tuple[str, ...] = (
    "agent_call",
    "voice_bot",
    "sms",
    "email",
    "app_push",
    "letter",
    "field_visit",
    "legal",
)
"""Channel names; index = channel code.  ``none`` (no contact) is code -1."""


class Channel(IntEnum):
    """Channel codes (axis 1 of every compliance mask)."""

    AGENT_CALL = 0
    VOICE_BOT = 1
    SMS = 2
    EMAIL = 3
    APP_PUSH = 4
    LETTER = 5
    FIELD_VISIT = 6
    LEGAL = 7


NO_CONTACT = -1
N_CHANNELS = len(CHANNELS)

TELEPHONE = np.array([Channel.AGENT_CALL, Channel.VOICE_BOT])
"""Channels that are telephone calls (Reg F 7-in-7, CN per-day call limits)."""

MESSAGES = np.array([Channel.SMS, Channel.EMAIL, Channel.APP_PUSH])
"""Digital messages: sent in batches against a daily budget."""

UNTIMED = np.array([Channel.LETTER, Channel.LEGAL])
"""Channels with no time-of-day window in a plan (slot is -1)."""

IS_TELEPHONE = np.zeros(N_CHANNELS, dtype=bool)
IS_TELEPHONE[TELEPHONE] = True
IS_TIMED = np.ones(N_CHANNELS, dtype=bool)
IS_TIMED[UNTIMED] = False

OUTCOMES: tuple[str, ...] = (
    "no_answer",
    "voicemail",
    "not_delivered",
    "delivered",
    "wrong_party",
    "right_party",
    "promise_to_pay",
    "payment",
    "payment_plan",
    "dispute",
    "refusal",
    "complaint",
    "cease_request",
)
"""Outcome names of a contact attempt; index = outcome code."""


class Outcome(IntEnum):
    """Outcome codes."""

    NO_ANSWER = 0
    VOICEMAIL = 1
    NOT_DELIVERED = 2
    DELIVERED = 3
    WRONG_PARTY = 4
    RIGHT_PARTY = 5
    PROMISE_TO_PAY = 6
    PAYMENT = 7
    PAYMENT_PLAN = 8
    DISPUTE = 9
    REFUSAL = 10
    COMPLAINT = 11
    CEASE_REQUEST = 12


CONVERSATION_OUTCOMES = np.array(
    [
        Outcome.RIGHT_PARTY,
        Outcome.PROMISE_TO_PAY,
        Outcome.PAYMENT,
        Outcome.PAYMENT_PLAN,
        Outcome.DISPUTE,
        Outcome.REFUSAL,
        Outcome.COMPLAINT,
        Outcome.CEASE_REQUEST,
    ]
)
"""Outcomes of a telephone attempt that count as a conversation with the borrower."""

IS_CONVERSATION = np.zeros(len(OUTCOMES), dtype=bool)
IS_CONVERSATION[CONVERSATION_OUTCOMES] = True

BUCKETS: tuple[str, ...] = ("current", "1-30", "31-60", "61-90", "91-180", "charged_off")
"""DPD buckets; index = bucket code."""

BUCKET_LOWER_DPD = np.array([0, 1, 31, 61, 91, 181])

OFFERS: tuple[str, ...] = ("none", "instalment_plan", "settlement", "payment_holiday")
"""Offers a contact can carry; index = offer code (0 = none).

The self-service payment link is not an offer: every digital message (SMS, email,
app push) always carries one (see ``BorrowerModel.link_payment_probability``).
"""


class Offer(IntEnum):
    """Offer codes (``Plan.offer``)."""

    NONE = 0
    INSTALMENT_PLAN = 1
    SETTLEMENT = 2
    PAYMENT_HOLIDAY = 3


VARIANTS: tuple[str, ...] = ("standard", "empathetic", "firm")
"""Message/script variants (tone) of a contact; index = variant code (0 = standard).

A treatment is the pair (offer, variant); (none, standard) is no treatment.
"""


class Variant(IntEnum):
    """Variant codes (``Plan.variant``)."""

    STANDARD = 0
    EMPATHETIC = 1
    FIRM = 2


N_HOURS = 24


def bucket_of(dpd: np.ndarray, charged_off: np.ndarray | None = None) -> np.ndarray:
    """Return the bucket code of each account from its days past due.

    Args:
        dpd: days past due, int array.
        charged_off: optional bool array; charged-off accounts get the last bucket.

    Returns:
        int8 array of bucket codes (index into ``BUCKETS``).
    """
    bucket = (np.searchsorted(BUCKET_LOWER_DPD[1:5], dpd, side="right")).astype(np.int8)
    if charged_off is not None:
        bucket[charged_off] = len(BUCKETS) - 1
    return bucket


def channel_code(name: str) -> int:
    """Return the code of a channel name (``none`` → -1); raise ValueError if unknown."""
    if name == "none":
        return NO_CONTACT
    try:
        return CHANNELS.index(name)
    except ValueError:
        raise ValueError(
            f"unknown channel {name!r}; expected one of {', '.join(CHANNELS)}"
        ) from None


def offer_code(name: str) -> int:
    """Return the code of an offer name; raise ValueError if unknown."""
    try:
        return OFFERS.index(name)
    except ValueError:
        raise ValueError(f"unknown offer {name!r}; expected one of {', '.join(OFFERS)}") from None


def variant_code(name: str) -> int:
    """Return the code of a variant name; raise ValueError if unknown."""
    try:
        return VARIANTS.index(name)
    except ValueError:
        raise ValueError(
            f"unknown variant {name!r}; expected one of {', '.join(VARIANTS)}"
        ) from None


def outcome_code(name: str) -> int:
    """Return the code of an outcome name; raise ValueError if unknown."""
    try:
        return OUTCOMES.index(name)
    except ValueError:
        raise ValueError(
            f"unknown outcome {name!r}; expected one of {', '.join(OUTCOMES)}"
        ) from None
