"""YAML rule-set files: pydantic models (frozen, ``extra="forbid"``) and rule construction.

A rule-set file::

    id: strict_example
    version: "1"
    extends: us_reg_f            # optional: a bundled name or a path (relative to this file)
    description: ...
    rules:
      - id: strict.telephone_per_week
        type: attempts_cap       # one of the rule types below
        channels: [telephone]    # channel names, or the groups `telephone`, `all`
        days: 7                  # 1 = day D only, 7 = D-6..D
        max: 3                   # attempts reaching this number forbid the channels
        sentence: "House rule: at most 3 telephone calls in 7 consecutive days."

Rule types: ``hours``, ``attempts_cap``, ``conversations_cap``, ``unanswered_cap``,
``flag``, ``flag_map``, ``reach``, ``quiet_days``, ``note`` and ``treatment``.  ``sentence``
is optional for custom rules (a sentence is generated from the parameters).

A ``treatment`` rule forbids offers and/or variants (not contacts) for accounts with a
flag, e.g. ``{type: treatment, flag: vulnerable, variants: [firm]}``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from collsim.compliance import rules as r
from collsim.portfolio import FLAG_COLUMNS
from collsim.vocab import CHANNELS, IS_TELEPHONE, IS_TIMED, OFFERS, VARIANTS

ChannelName = Literal[
    "agent_call",
    "voice_bot",
    "sms",
    "email",
    "app_push",
    "letter",
    "field_visit",
    "legal",
    "telephone",
    "timed",
    "all",
]
FlagName = Literal[
    "has_phone",
    "has_mobile",
    "has_email",
    "has_app",
    "has_address",
    "consent_autodial",
    "sms_opt_out",
    "email_opt_out",
    "cease_communication",
    "dispute_open",
    "hardship_plan",
    "vulnerable",
]
OfferName = Literal["instalment_plan", "settlement", "payment_holiday"]
VariantName = Literal["empathetic", "firm"]
assert set(OfferName.__args__) == set(OFFERS[1:])  # type: ignore[attr-defined]
assert set(VariantName.__args__) == set(VARIANTS[1:])  # type: ignore[attr-defined]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
assert set(FlagName.__args__) == set(FLAG_COLUMNS)  # type: ignore[attr-defined]


def channels_table(names: list[ChannelName] | tuple[ChannelName, ...]) -> np.ndarray:
    """Return bool [C] for channel names and the groups ``telephone``, ``timed``, ``all``."""
    table = np.zeros(len(CHANNELS), dtype=bool)
    for name in names:
        if name == "telephone":
            table |= IS_TELEPHONE
        elif name == "timed":
            table |= IS_TIMED
        elif name == "all":
            table[:] = True
        else:
            table[CHANNELS.index(name)] = True
    return table


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _RuleSpec(_Spec):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    sentence: str | None = None


class HoursSpec(_RuleSpec):
    """Timed contacts only in local slots ``min_hour <= h <= max_hour``."""

    type: Literal["hours"]
    min_hour: int = Field(ge=0, le=23)
    max_hour: int = Field(ge=0, le=23)
    channels: tuple[ChannelName, ...] = ("timed",)

    @model_validator(mode="after")
    def _ordered(self) -> HoursSpec:
        if self.min_hour > self.max_hour:
            raise ValueError("min_hour must not exceed max_hour")
        return self

    def build(self) -> r.Rule:
        table = channels_table(self.channels)
        sentence = self.sentence or (
            f"Contact by {r.channel_list(table & IS_TIMED)} only in local slots "
            f"{self.min_hour:02d}:00 to {self.max_hour:02d}:00 "
            f"(ending by {self.max_hour + 1:02d}:00)."
        )
        return r.HoursRule(self.id, sentence, self.min_hour, self.max_hour, table)


class _CapSpec(_RuleSpec):
    channels: tuple[ChannelName, ...] = ("telephone",)
    days: Literal[1, 7] = 1
    max: int = Field(ge=0, le=254)

    def _span(self) -> str:
        return "on the same local day" if self.days == 1 else "in 7 consecutive local days"


class AttemptsCapSpec(_CapSpec):
    """At most ``max`` attempts on the channels per day (``days: 1``) or week (``days: 7``)."""

    type: Literal["attempts_cap"]

    def build(self) -> r.Rule:
        table = channels_table(self.channels)
        sentence = (
            self.sentence or f"At most {self.max} {r.channel_list(table)} attempts {self._span()}."
        )
        return r.AttemptsCapRule(self.id, sentence, table, self.days, self.max)


class ConversationsCapSpec(_CapSpec):
    """Telephone conversations reaching ``max`` forbid the channels."""

    type: Literal["conversations_cap"]

    def build(self) -> r.Rule:
        table = channels_table(self.channels)
        sentence = self.sentence or (
            f"No {r.channel_list(table)} once {self.max} telephone conversations "
            f"took place {self._span()}."
        )
        return r.ConversationsCapRule(self.id, sentence, table, self.days, self.max)


class UnansweredCapSpec(_CapSpec):
    """Telephone attempts without a conversation reaching ``max`` forbid the channels."""

    type: Literal["unanswered_cap"]

    def build(self) -> r.Rule:
        table = channels_table(self.channels)
        sentence = self.sentence or (
            f"No {r.channel_list(table)} once {self.max} unanswered telephone attempts "
            f"were made {self._span()}."
        )
        return r.UnansweredCapRule(self.id, sentence, table, self.days, self.max)


class FlagSpec(_RuleSpec):
    """A flag equal to ``value`` forbids channels (``forbid``) or all but some (``allow_only``)."""

    type: Literal["flag"]
    flag: FlagName
    value: bool = True
    forbid: tuple[ChannelName, ...] | None = None
    allow_only: tuple[ChannelName, ...] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> FlagSpec:
        if (self.forbid is None) == (self.allow_only is None):
            raise ValueError("give exactly one of 'forbid' and 'allow_only'")
        return self

    def build(self) -> r.Rule:
        if self.forbid is not None:
            forbidden = channels_table(self.forbid)
            what = f"forbids {r.channel_list(forbidden)}"
        else:
            allowed = channels_table(self.allow_only or ())
            forbidden = ~allowed
            what = f"allows only {r.channel_list(allowed) or 'no contact'}"
        state = "set" if self.value else "not set"
        sentence = self.sentence or f"Account flag {self.flag} {state} {what}."
        return r.FlagRule(self.id, sentence, self.flag, self.value, forbidden)


class FlagMapSpec(_RuleSpec):
    """Each flag set forbids its own channels (e.g. ``{sms_opt_out: [sms]}``)."""

    type: Literal["flag_map"]
    flags: dict[FlagName, tuple[ChannelName, ...]] = Field(min_length=1)

    def build(self) -> r.Rule:
        tables: dict[str, np.ndarray] = {f: channels_table(c) for f, c in self.flags.items()}
        sentence = (
            self.sentence
            or "; ".join(f"{f} forbids {r.channel_list(t)}" for f, t in tables.items()) + "."
        )
        return r.FlagMapRule(self.id, sentence, tables)


class ReachSpec(_RuleSpec):
    """A channel needs its reachability flag."""

    type: Literal["reach"]

    def build(self) -> r.Rule:
        sentence = self.sentence or (
            "A channel needs a valid contact point: phone or mobile for calls, mobile for SMS, "
            "email for email, the app for push, an address for letters, field visits and "
            "legal action."
        )
        return r.ReachRule(self.id, sentence)


class QuietDaysSpec(_RuleSpec):
    """No contact on the channels on given weekdays and/or dates (local date of day D)."""

    type: Literal["quiet_days"]
    weekdays: tuple[Weekday, ...] = ()
    dates: tuple[dt.date, ...] = ()
    channels: tuple[ChannelName, ...] = ("all",)

    @model_validator(mode="after")
    def _some(self) -> QuietDaysSpec:
        if not self.weekdays and not self.dates:
            raise ValueError("give 'weekdays' and/or 'dates'")
        return self

    def build(self) -> r.Rule:
        table = channels_table(self.channels)
        days = [d.capitalize() for d in self.weekdays] + [d.isoformat() for d in self.dates]
        sentence = (
            self.sentence
            or f"No {r.channel_list(table)} contact on {', '.join(days)} (local date)."
        )
        weekdays = frozenset(r.WEEKDAYS.index(d) for d in self.weekdays)
        return r.QuietDaysRule(self.id, sentence, weekdays, frozenset(self.dates), table)


class NoteSpec(_RuleSpec):
    """A documented obligation met by construction; forbids no planned contact."""

    type: Literal["note"]
    sentence: str

    def build(self) -> r.Rule:
        return r.NoteRule(self.id, self.sentence)


class TreatmentSpec(_RuleSpec):
    """A flag equal to ``value`` forbids the given offers and/or variants (not the contact)."""

    type: Literal["treatment"]
    flag: FlagName
    value: bool = True
    offers: tuple[OfferName, ...] = ()
    variants: tuple[VariantName, ...] = ()

    @model_validator(mode="after")
    def _some(self) -> TreatmentSpec:
        if not self.offers and not self.variants:
            raise ValueError("give 'offers' and/or 'variants'")
        return self

    def build(self) -> r.Rule:
        offers = np.zeros(len(OFFERS), dtype=bool)
        offers[[OFFERS.index(o) for o in self.offers]] = True
        variants = np.zeros(len(VARIANTS), dtype=bool)
        variants[[VARIANTS.index(v) for v in self.variants]] = True
        what = " and ".join(
            part
            for part in (
                f"offers {', '.join(self.offers)}" if self.offers else "",
                f"variants {', '.join(self.variants)}" if self.variants else "",
            )
            if part
        )
        state = "set" if self.value else "not set"
        sentence = self.sentence or f"Account flag {self.flag} {state} forbids {what}."
        return r.TreatmentRule(self.id, sentence, self.flag, self.value, offers, variants)


RuleSpec = Annotated[
    HoursSpec
    | AttemptsCapSpec
    | ConversationsCapSpec
    | UnansweredCapSpec
    | FlagSpec
    | FlagMapSpec
    | ReachSpec
    | QuietDaysSpec
    | NoteSpec
    | TreatmentSpec,
    Field(discriminator="type"),
]


class RuleSetSpec(_Spec):
    """A rule-set file."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

    id: str = Field(min_length=1)
    version: str = "1"
    description: str = ""
    extends: str | None = None
    rules: tuple[RuleSpec, ...] = ()
