"""The seam between deciding and simulating: Snapshot, Plan, options and Policy.

A day's decision is ``Policy.decide(snapshot) -> Plan``.  The Snapshot holds only
what a lender can observe; the Plan holds one action per account.

Options: an action is a channel and a local slot.  Options are numbered
``k = channel * S + slot_index`` over ``S`` operating slots; untimed channels
(letter, legal) use only ``slot_index 0`` (their other options are never valid)
and carry slot -1 in a plan.  ``k = -1`` is no contact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypedDict, Unpack, runtime_checkable

import numpy as np

from collsim.portfolio import ContactState, Portfolio
from collsim.vocab import CHANNELS, IS_TIMED, N_CHANNELS, NO_CONTACT


@dataclass(frozen=True)
class OptionSpace:
    """The channel × slot options of a day.

    Attributes:
        slot_hours: int array [S] of local slot start hours.
    """

    slot_hours: np.ndarray

    @property
    def n_slots(self) -> int:
        """S, the number of operating slots."""
        return int(self.slot_hours.shape[0])

    @property
    def n_options(self) -> int:
        """K = channels × S."""
        return N_CHANNELS * self.n_slots

    @property
    def channel(self) -> np.ndarray:
        """int [K]: the channel code of each option."""
        return np.repeat(np.arange(N_CHANNELS), self.n_slots)

    @property
    def slot_index(self) -> np.ndarray:
        """int [K]: the slot index of each option."""
        return np.tile(np.arange(self.n_slots), N_CHANNELS)

    @property
    def valid(self) -> np.ndarray:
        """bool [K]: False for the unused slots of untimed channels."""
        return IS_TIMED[self.channel] | (self.slot_index == 0)

    @property
    def hour(self) -> np.ndarray:
        """int [K]: local start hour of each option (-1 for untimed channels)."""
        return np.where(IS_TIMED[self.channel], self.slot_hours[self.slot_index], -1)

    def option_mask(self, mask: np.ndarray) -> np.ndarray:
        """Flatten a compliance mask [N, C, S] to options [N, K], dropping invalid options."""
        return mask.reshape(mask.shape[0], -1) & self.valid[None, :]

    def decode(self, option: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (channel [N], slot hour [N]) for option indices (-1 → no contact)."""
        option = np.asarray(option)
        none = option < 0
        safe = np.where(none, 0, option)
        channel = np.where(none, NO_CONTACT, self.channel[safe]).astype(np.int8)
        hour = np.where(none, -1, self.hour[safe]).astype(np.int8)
        return channel, hour

    def encode(self, channel: np.ndarray, hour: np.ndarray) -> np.ndarray:
        """Return option indices for (channel, slot hour) pairs (-1 for no contact).

        Raises:
            ValueError: a timed channel's hour is not an operating slot.
        """
        channel = np.asarray(channel)
        hour = np.asarray(hour)
        lookup = np.full(24, -1)
        lookup[self.slot_hours] = np.arange(self.n_slots)
        timed = (channel >= 0) & IS_TIMED[np.maximum(channel, 0)]
        slot_index = np.where(timed, lookup[np.clip(hour, 0, 23)], 0)
        if np.any(timed & ((hour < 0) | (slot_index < 0))):
            raise ValueError("a timed channel was given an hour outside the operating slots")
        return np.where(channel < 0, -1, channel * self.n_slots + slot_index)


@dataclass(frozen=True)
class Resources:
    """Scarce resources of a day: agent pool-hours and channel budgets.

    ``resource_by_zone[z, k]`` is the resource that option k uses for an account in
    time zone z (-1: none, unlimited).  ``capacity[r]`` is the day's units of r.
    """

    names: tuple[str, ...]
    capacity: np.ndarray  # int64 [R]
    resource_by_zone: np.ndarray  # int32 [Z, K]
    cost_per_attempt: np.ndarray  # float64 [C]
    money_budget: float | None = None
    pool_of_resource: tuple[str | None, ...] = ()

    def resource_of(self, timezone: np.ndarray) -> np.ndarray:
        """Return int [N, K]: the resource each option uses for each account."""
        return self.resource_by_zone[timezone]


@dataclass(frozen=True)
class Snapshot:
    """What a policy may see on one local day.

    Attributes:
        day: local day number (days since 1970-01-01).
        accounts: the observable portfolio (no latent traits).
        contact: observable summary of recent contact per account.
        active: bool [N]: the account is in collection today (delinquent, not in
            legal, not charged off).  Inactive accounts have an all-False mask.
        mask: bool [N, C, S]: allowed by the rule set and active.
        options: the day's option space.
        resources: the day's capacity.
        rng: the run's ``policy`` stream, for stochastic policies.
        blocking_rule: optional ``(account, channel, hour) -> rule ids`` (object array,
            "" where allowed) from the rule set, for plan reasons; None if unavailable.
        treatment_rule: optional ``(account, offer, variant) -> rule ids`` (object array,
            "" where allowed) of the rule set's treatment rules, for policies that choose
            treatments; None if unavailable (the engine's treatment gate still applies).
        channel_allowed: optional bool [N, C], ``mask.any(axis=2)`` when the producer
            has it cheaply; read it through :meth:`allowed_channels`.
    """

    day: int
    accounts: Portfolio
    contact: ContactState
    active: np.ndarray
    mask: np.ndarray
    options: OptionSpace
    resources: Resources
    rng: np.random.Generator = field(repr=False)
    blocking_rule: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = field(
        default=None, repr=False
    )
    treatment_rule: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = field(
        default=None, repr=False
    )
    channel_allowed: np.ndarray | None = field(default=None, repr=False)

    @property
    def date(self) -> dt.date:
        """The local calendar date."""
        return dt.date(1970, 1, 1) + dt.timedelta(days=self.day)

    @property
    def n(self) -> int:
        """Number of accounts."""
        return self.accounts.n

    def option_mask(self) -> np.ndarray:
        """bool [N, K]: the mask flattened to options."""
        return self.options.option_mask(self.mask)

    def allowed_channels(self) -> np.ndarray:
        """bool [N, C]: the channel is allowed in some slot today (``mask.any(axis=2)``)."""
        if self.channel_allowed is None:
            return np.asarray(self.mask.any(axis=2))
        return self.channel_allowed


class PlanColumns(TypedDict, total=False):
    """Optional per-account columns of :meth:`Plan.from_options` (keyword arguments).

    Each is an array [N] or None (the default):

    Attributes:
        expected_value: float expected net value over no contact (default NaN).
        priority_score: ranks contacts within each (channel, slot), highest first
            (default: ``expected_value``, else balance order).
        propensity: probability that the policy chose the action (default 1).
        offer: codes into ``vocab.OFFERS`` (default none).
        variant: codes into ``vocab.VARIANTS`` (default standard).
    """

    expected_value: np.ndarray | None
    priority_score: np.ndarray | None
    propensity: np.ndarray | None
    offer: np.ndarray | None
    variant: np.ndarray | None


@dataclass
class Plan:
    """One action per account for one day (arrays of length N).

    Attributes:
        channel: int8 channel code, -1 = no contact.
        slot_hour: int8 local start hour, -1 for no contact and untimed channels.
        priority: int32, 1 = first within its resource; 0 for no contact.
        expected_value: float64 expected net value over no contact (NaN if unknown).
        propensity: float64 in (0, 1], probability that the policy chose this action.
        holdout: bool, randomly held out as a control.
        offer: int8 code into ``vocab.OFFERS`` (0 = none).
        reason: int16 code into ``reasons``.
        reasons: table of reason texts.
        policy_id: the policy that made the plan.
        variant: int8 code into ``vocab.VARIANTS`` (0 = standard); omitted → all standard.
    """

    channel: np.ndarray
    slot_hour: np.ndarray
    priority: np.ndarray
    expected_value: np.ndarray
    propensity: np.ndarray
    holdout: np.ndarray
    offer: np.ndarray
    reason: np.ndarray
    reasons: tuple[str, ...]
    policy_id: str
    variant: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))

    def __post_init__(self) -> None:
        """Give a plan built without variants the standard variant on every row."""
        if self.variant.size == 0 and self.channel.shape[0] > 0:
            self.variant = np.zeros(self.channel.shape[0], dtype=np.int8)

    @property
    def n(self) -> int:
        """Number of accounts."""
        return int(self.channel.shape[0])

    @classmethod
    def no_contact(cls, n: int, policy_id: str, reason: str = "no contact") -> Plan:
        """Return a plan that contacts nobody."""
        return cls.from_options(
            np.full(n, -1),
            OptionSpace(np.arange(1)),
            policy_id,
            [reason],
            np.zeros(n, dtype=np.int16),
        )

    @classmethod
    def from_options(
        cls,
        option: np.ndarray,
        options: OptionSpace,
        policy_id: str,
        reasons: list[str],
        reason: np.ndarray,
        **columns: Unpack[PlanColumns],
    ) -> Plan:
        """Build a plan from chosen option indices (-1 = no contact).

        Priorities are ranks within each (channel, slot), highest ``priority_score``
        (default: expected value, else balance order) first.  ``offer`` and
        ``variant`` (codes into ``vocab.OFFERS`` / ``vocab.VARIANTS``) default to
        none / standard; rows without contact always get none / standard.

        Args:
            option: int [N] chosen option per account, -1 for no contact.
            options: the day's option space (decodes ``option``).
            policy_id: the policy that made the plan.
            reasons: table of reason texts.
            reason: int [N] codes into ``reasons``.
            **columns: the optional columns of :class:`PlanColumns`.

        Raises:
            TypeError: a keyword that is not a :class:`PlanColumns` key.
        """
        unknown = sorted(set(columns) - PlanColumns.__optional_keys__)
        if unknown:
            raise TypeError(f"Plan.from_options got unknown column(s) {unknown}")
        expected_value = columns.get("expected_value")
        priority_score = columns.get("priority_score")
        propensity = columns.get("propensity")
        n = int(option.shape[0])
        channel, hour = options.decode(option)
        score = priority_score if priority_score is not None else expected_value
        if score is None:
            score = np.zeros(n)
        priority = np.zeros(n, dtype=np.int64)
        contacted = np.flatnonzero(option >= 0)
        priority[contacted] = rank_within_groups(
            option[contacted], -np.nan_to_num(score[contacted], nan=0.0)
        )
        return cls(
            channel=channel,
            slot_hour=hour,
            priority=np.where(option < 0, 0, priority).astype(np.int32),
            expected_value=(
                np.full(n, np.nan) if expected_value is None else np.asarray(expected_value, float)
            ),
            propensity=np.ones(n) if propensity is None else np.asarray(propensity, float),
            holdout=np.zeros(n, dtype=bool),
            offer=_treatment_codes(columns.get("offer"), option),
            reason=np.asarray(reason, dtype=np.int16),
            reasons=tuple(reasons),
            policy_id=policy_id,
            variant=_treatment_codes(columns.get("variant"), option),
        )

    def contacted(self) -> np.ndarray:
        """bool [N]: a contact is planned."""
        return self.channel >= 0

    def reason_text(self) -> np.ndarray:
        """object [N]: the reason text of each row."""
        return np.asarray(self.reasons, dtype=object)[self.reason]

    def treated(self) -> np.ndarray:
        """bool [N]: a contact with an offer or a non-standard variant is planned."""
        return self.contacted() & ((self.offer > 0) | (self.variant > 0))

    def channel_name(self) -> np.ndarray:
        """object [N]: channel names with ``none``."""
        names = np.asarray((*CHANNELS, "none"), dtype=object)
        return names[self.channel]


def _treatment_codes(codes: np.ndarray | None, option: np.ndarray) -> np.ndarray:
    """int8 [N]: offer or variant codes, 0 where none given or no contact is planned."""
    if codes is None:
        return np.zeros(option.shape[0], dtype=np.int8)
    return np.where(option < 0, 0, np.asarray(codes)).astype(np.int8)


def rank_within_groups(group: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Return 1-based ranks of ``key`` (ascending, stable) within each group value."""
    order = np.argsort(key, kind="stable")
    by_group = group[order]
    if by_group.size and by_group.min() >= 0 and by_group.max() < 2**15:
        by_group = by_group.astype(np.int16)  # small ints: numpy's stable sort is a radix sort
    order = order[np.argsort(by_group, kind="stable")]
    sorted_group = group[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_group)) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, group.shape[0]]))
    rank = np.empty(group.shape[0], dtype=np.int64)
    rank[order] = np.arange(group.shape[0]) - run_start + 1
    return rank


@runtime_checkable
class Policy(Protocol):
    """A policy decides one day's plan from a snapshot; it never sees latent state."""

    policy_id: str

    def decide(self, snapshot: Snapshot) -> Plan:
        """Return the plan for ``snapshot.day``."""
        ...
