"""Typed scenario configuration: frozen pydantic models loaded from YAML.

Every number that shapes behaviour lives in a scenario file (``collsim/scenarios``)
with its unit and its source (or "assumption") in a comment beside it.  The models
here give the structure, the units (in field names and descriptions) and the
validation; they are ``frozen`` and reject unknown keys.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from collsim.io import safe_load_unique
from collsim.vocab import BUCKETS, CHANNELS, OFFERS, VARIANTS


class Frozen(BaseModel):
    """Base of every config model: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_channels(mapping: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(mapping) - set(CHANNELS))
    if unknown:
        raise ValueError(f"unknown channel(s) {unknown}; expected some of {list(CHANNELS)}")
    return mapping


def _check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {name!r}") from None
    return name


# --------------------------------------------------------------------------- capacity
MAX_UNITS = 10**9
"""Largest agents-per-hour or daily channel budget accepted in a capacity file."""
MAX_RATE = 10_000.0
"""Largest ``attempts_per_agent_hour`` accepted."""
MAX_MONEY = 1e15
"""Largest daily money budget accepted."""


class AgentPool(Frozen):
    """A pool of collectors working in the centre's time zone."""

    name: str = Field(description="pool name (agent_pool in plans)")
    channels: list[str] = Field(
        default_factory=lambda: ["agent_call"], description="channels the pool works"
    )
    agents_by_hour: dict[int, int] = Field(
        description="centre-local hour (0-23) -> agents on shift"
    )
    attempts_per_agent_hour: float = Field(
        gt=0, le=MAX_RATE, allow_inf_nan=False, description="dialler attempts per agent per hour"
    )
    cost_per_staffed_hour: float = Field(
        default=0.0,
        ge=0,
        allow_inf_nan=False,
        description="loaded cost of one agent on shift for one hour, idle time included",
    )

    @field_validator("agents_by_hour")
    @classmethod
    def _hours(cls, value: dict[int, int]) -> dict[int, int]:
        for hour, agents in value.items():
            if not 0 <= hour <= 23:
                raise ValueError(f"hour {hour} is not in 0..23")
            if not 0 <= agents <= MAX_UNITS:
                raise ValueError(f"agents at hour {hour} ({agents}) is not in 0..{MAX_UNITS:,}")
        return value

    @field_validator("channels")
    @classmethod
    def _pool_channels(cls, value: list[str]) -> list[str]:
        _check_channels(dict.fromkeys(value))
        return value


class Capacity(Frozen):
    """The capacity file (docs/input_formats.md): agent pools, daily budgets, money budget."""

    centre_timezone: str = Field(
        default="America/Chicago", description="IANA zone of the agents' shifts"
    )
    agent_pools: list[AgentPool] = Field(
        default_factory=list, description="agent pools; none = no agent calls possible"
    )
    channel_budgets: dict[str, int] = Field(
        default_factory=dict, description="channel -> attempts per day; omitted = unlimited"
    )
    money_budget: float | None = Field(
        default=None, ge=0, le=MAX_MONEY, allow_inf_nan=False, description="currency units per day"
    )

    _zone = field_validator("centre_timezone")(classmethod(lambda cls, v: _check_zone(v)))

    @field_validator("channel_budgets")
    @classmethod
    def _budgets(cls, value: dict[str, int]) -> dict[str, int]:
        _check_channels(value)
        for channel, budget in value.items():
            if not 0 <= budget <= MAX_UNITS:
                raise ValueError(f"budget for {channel} ({budget}) is not in 0..{MAX_UNITS:,}")
        return value

    @field_validator("agent_pools")
    @classmethod
    def _unique_pools(cls, value: list[AgentPool]) -> list[AgentPool]:
        names = [pool.name for pool in value]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"pool names must be unique; repeated: {', '.join(repeated)}")
        return value


# --------------------------------------------------------------------------- portfolio
class LogNormal(Frozen):
    """A log-normal distribution given by its median and the sd of its log."""

    median: float = Field(gt=0, description="median, in the quantity's unit")
    sigma: float = Field(ge=0, description="standard deviation of the natural log")


class ProductConfig(Frozen):
    """One product line of the synthetic portfolio."""

    share: float = Field(ge=0, description="relative share of accounts")
    balance: LogNormal = Field(description="outstanding balance, currency units")
    due_fraction: float = Field(gt=0, le=1, description="amount due per missed cycle / balance")


class PortfolioConfig(Frozen):
    """How the synthetic portfolio is generated."""

    n_accounts: int = Field(gt=0, description="accounts in the portfolio")
    products: dict[str, ProductConfig] = Field(description="product name -> product")
    timezones: dict[str, float] = Field(description="IANA zone -> share of accounts")
    initial_dpd_bucket_shares: dict[str, float] = Field(
        description="bucket name (1-30, 31-60, 61-90, 91-180) -> share at the start"
    )
    reach: dict[str, float] = Field(
        description="has_phone, has_mobile, has_email, has_app, has_address -> probability"
    )
    consent_autodial: float = Field(ge=0, le=1, description="P(autodial/text consent on file)")
    sms_opt_out: float = Field(ge=0, le=1, description="P(SMS opt-out on file)")
    email_opt_out: float = Field(ge=0, le=1, description="P(email opt-out on file)")
    cease_communication: float = Field(ge=0, le=1, description="P(cease request on file)")
    dispute_open: float = Field(ge=0, le=1, description="P(open dispute at the start)")
    hardship_plan: float = Field(
        ge=0, le=1, description="P(on a hardship plan) within the hardship segment"
    )
    vulnerable: float = Field(ge=0, le=1, description="P(flagged vulnerable)")
    risk_score_noise: float = Field(
        default=0.15, ge=0, description="sd of noise on the lender's risk score (if no AUC given)"
    )
    risk_score_auc: float | None = Field(
        default=None,
        gt=0.5,
        lt=1.0,
        description=(
            "target AUC of the risk score for bad accounts (hidden badness 1 - ability × "
            "willingness above its median); sets the score noise; None: use risk_score_noise"
        ),
    )

    @field_validator("timezones")
    @classmethod
    def _zones(cls, value: dict[str, float]) -> dict[str, float]:
        for zone in value:
            _check_zone(zone)
        return value

    @field_validator("reach")
    @classmethod
    def _reach(cls, value: dict[str, float]) -> dict[str, float]:
        expected = {"has_phone", "has_mobile", "has_email", "has_app", "has_address"}
        if set(value) != expected:
            raise ValueError(f"reach must give exactly {sorted(expected)}")
        return value


# --------------------------------------------------------------------------- behaviour
class SegmentConfig(Frozen):
    """A latent borrower segment (hidden from policies)."""

    name: str = Field(description="segment name (forgetful, struggling, strategic, ...)")
    share: float = Field(ge=0, description="share of accounts in the segment")
    ability: float = Field(gt=0, lt=1, description="mean probability of being able to pay in full")
    willingness: float = Field(gt=0, lt=1, description="mean willingness to pay")
    self_cure_hazard: float = Field(ge=0, description="daily payment hazard at DPD 1, no contact")
    answer_rate: float = Field(ge=0, le=1, description="P(answer a call at the best hour)")
    open_rate: float = Field(ge=0, le=1, description="P(read a delivered digital message)")
    promise_keep: float = Field(ge=0, le=1, description="P(promise to pay kept)")
    plan_keep: float = Field(ge=0, le=1, description="P(each plan instalment paid)")
    complaint_rate: float = Field(ge=0, le=1, description="P(complaint) per conversation")
    channel_response: dict[str, float] = Field(
        default_factory=dict, description="channel -> multiplier on the contact's effect"
    )

    _channels = field_validator("channel_response")(classmethod(lambda cls, v: _check_channels(v)))


class ConversationConfig(Frozen):
    """What happens after a right-party contact (shares scaled per borrower)."""

    pay_now: float = Field(ge=0, description="base P(pay during the conversation)")
    promise: float = Field(ge=0, description="base P(promise to pay)")
    plan: float = Field(ge=0, description="base P(payment plan) for borrowers unable to pay")
    dispute: float = Field(ge=0, description="base P(dispute) per conversation")
    refusal: float = Field(ge=0, description="base P(refusal) for unwilling borrowers")
    cease: float = Field(ge=0, description="base P(cease request) per conversation")
    promise_max_days: int = Field(ge=1, description="promise due within 1..N days")
    plan_instalments: int = Field(ge=1, description="instalments in a payment plan")
    plan_interval_days: int = Field(ge=1, description="days between plan instalments")
    dispute_days: int = Field(ge=1, description="days until an opened dispute is resolved")


class RedefaultConfig(Frozen):
    """Re-default after a cure: a cure is not forever."""

    after_payment: float = Field(
        default=0.10, ge=0, lt=1, description="P(delinquent again within 180 days | paid its due)"
    )
    after_plan: float = Field(
        default=0.22,
        ge=0,
        lt=1,
        description="P(delinquent again within 180 days | cured by completing a plan (re-age))",
    )


_MESSAGE_CHANNELS = ("sms", "email", "app_push")


def _check_message_channels(value: dict[str, float]) -> dict[str, float]:
    bad = sorted(set(value) - set(_MESSAGE_CHANNELS))
    if bad:
        raise ValueError(f"channel(s) {bad} are not messages; use {list(_MESSAGE_CHANNELS)}")
    return value


class MessageRiskConfig(Frozen):
    """Opt-out, complaint and falling open rates of digital messages (SMS, email, app push).

    Per delivered message, at fatigue F (:class:`BehaviourConfig`):
    P(complaint) = complaint × (1 + fatigue_risk × F), P(opt-out) = opt_out × (1 +
    fatigue_risk × F); P(read) is divided by 1 + fatigue_open × F.  An opt-out sets the
    account's SMS or email opt-out flag, or removes the app (app push).
    """

    opt_out: dict[str, float] = Field(
        default_factory=lambda: {"sms": 0.003, "email": 0.002, "app_push": 0.002},
        description="message channel -> P(opt-out | delivered) at zero fatigue",
    )
    complaint: dict[str, float] = Field(
        default_factory=lambda: {"sms": 0.0002, "email": 0.0001, "app_push": 0.0001},
        description="message channel -> P(complaint | delivered) at zero fatigue",
    )
    fatigue_risk: float = Field(
        default=0.5, ge=0, description="opt-out and complaint risk times 1 + k * fatigue"
    )
    fatigue_open: float = Field(
        default=0.15, ge=0, description="P(read a message) divided by 1 + k * fatigue"
    )

    _opt_out = field_validator("opt_out", "complaint")(
        classmethod(lambda cls, v: _check_message_channels(v))
    )

    @field_validator("opt_out", "complaint")
    @classmethod
    def _probabilities(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not 0.0 <= p <= 0.5 for p in value.values()):
            raise ValueError("per-message probabilities must be in [0, 0.5]")
        return value


class BehaviourConfig(Frozen):
    """The borrower model's parameters."""

    segments: list[SegmentConfig] = Field(description="latent segments; shares sum to 1")
    segment_shares_by_bucket: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="starting DPD bucket -> segment -> share (omitted buckets: segment shares)",
    )
    hazard_dpd_scale_days: float = Field(
        gt=0, description="self-cure hazard falls as exp(-dpd/scale)"
    )
    excitation_decay_days: float = Field(gt=0, description="Hawkes kernel time constant, days")
    contact_dpd_scale_days: float = Field(
        default=1e9, gt=0, description="contact excitation pays as exp(-dpd/scale); days"
    )
    jump: dict[str, float] = Field(
        description="channel -> hazard jump of an effective contact, 1/day"
    )
    fatigue_decay_days: float = Field(gt=0, description="fatigue time constant, days")
    fatigue_answer: float = Field(ge=0, description="answer rate divided by 1 + k * fatigue")
    fatigue_effect: float = Field(ge=0, description="contact effect divided by 1 + k * fatigue")
    fatigue_complaint: float = Field(ge=0, description="complaint risk times 1 + k * fatigue")
    answer_by_hour: list[float] = Field(
        min_length=24,
        max_length=24,
        description="shape of the answer rate by local hour (rescaled: mean 1 over open hours)",
    )
    answer_hour_ratio: float = Field(
        default=1.3, ge=1, description="population answer rate, best operating hour / worst"
    )
    personal_hour_weight: float = Field(
        default=0.3, ge=0, le=1, description="weight of each borrower's own best hour (0: none)"
    )
    voicemail_jump: float = Field(
        default=0.0, ge=0, description="hazard jump of a call that only left a voicemail, 1/day"
    )
    bot_effectiveness: float = Field(
        default=0.6,
        ge=0,
        description="voice-bot conversation's pay/promise strength relative to a human agent's",
    )
    redefault_within_180d: RedefaultConfig = Field(
        default_factory=RedefaultConfig, description="re-default after a cure"
    )
    wrong_party_rate: float = Field(ge=0, le=1, description="P(wrong party | answered call)")
    not_delivered_rate: dict[str, float] = Field(description="message channel -> P(bounce)")
    link_payment: float = Field(ge=0, le=1, description="P(pay via link | message read), scaled")
    partial_payment_fraction: float = Field(gt=0, le=1, description="mean partial payment / due")
    field_found_rate: float = Field(ge=0, le=1, description="P(borrower met on a field visit)")
    conversation: ConversationConfig = Field(description="results of a conversation")
    messages: MessageRiskConfig = Field(
        default_factory=MessageRiskConfig,
        description="opt-out and complaint hazards and falling open rates of messages",
    )

    _jump = field_validator("jump")(classmethod(lambda cls, v: _check_channels(v)))

    @model_validator(mode="after")
    def _shares(self) -> BehaviourConfig:
        total = sum(s.share for s in self.segments)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"segment shares sum to {total}, not 1")
        names = {s.name for s in self.segments}
        for bucket, mix in self.segment_shares_by_bucket.items():
            if bucket not in BUCKETS[1:5]:
                raise ValueError(f"segment_shares_by_bucket: unknown bucket {bucket!r}")
            unknown = sorted(set(mix) - names)
            if unknown or any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
                raise ValueError(
                    f"segment_shares_by_bucket[{bucket!r}]: shares must be >= 0 with a positive "
                    f"sum over known segments (unknown: {unknown})"
                )
        return self


# --------------------------------------------------------------------------- treatments
TREATMENT_CHANNELS: tuple[str, ...] = (
    "agent_call",
    "voice_bot",
    "field_visit",
    "sms",
    "email",
    "app_push",
)
"""Channels that can carry an offer or a variant: conversations and digital messages."""


def _check_treatment_channels(value: list[str]) -> list[str]:
    bad = sorted(set(value) - set(TREATMENT_CHANNELS))
    if bad:
        raise ValueError(
            f"channel(s) {bad} cannot carry a treatment; use {list(TREATMENT_CHANNELS)}"
        )
    return value


class _OfferConfig(Frozen):
    """What every offer has: who may carry it, who may get it, how often it is taken."""

    channels: list[str] = Field(description="channels that can carry the offer")
    take_up: float = Field(
        ge=0, le=1, description="base P(accept | right-party conversation), before multipliers"
    )
    min_dpd: int = Field(default=0, ge=0, description="offered only from this DPD (days)")

    _channels = field_validator("channels")(
        classmethod(lambda cls, v: _check_treatment_channels(v))
    )


class InstalmentOffer(_OfferConfig):
    """An instalment plan: the amount due spread over instalments (cash later, may break)."""

    instalments: int = Field(ge=1, description="instalments in the offered plan")
    interval_days: int = Field(ge=1, description="days between instalments")


class SettlementOffer(_OfferConfig):
    """Settle in full for (1 - discount) × balance; the discount is money given up."""

    discount_fraction: float = Field(gt=0, lt=1, description="share of the balance forgiven")
    urgency_exponent: float = Field(
        default=0.0, ge=0, description="take-up × (dpd / charge_off_dpd) ** k (near charge-off)"
    )


class HolidayOffer(_OfferConfig):
    """A payment holiday: DPD frozen and no collection for N days, then back to collection."""

    days: int = Field(ge=1, description="days of the holiday")


class VariantConfig(Frozen):
    """A script/message variant (tone)."""

    channels: list[str] = Field(description="channels that can carry the variant")

    _channels = field_validator("channels")(
        classmethod(lambda cls, v: _check_treatment_channels(v))
    )


class VariantResponse(Frozen):
    """Multipliers a variant applies to one segment's conversation (1 = as standard)."""

    pay: float = Field(default=1.0, ge=0, description="× P(pay now) and × P(pay via link)")
    promise: float = Field(default=1.0, ge=0, description="× P(promise to pay)")
    complaint: float = Field(default=1.0, ge=0, description="× P(complaint)")
    cease: float = Field(default=1.0, ge=0, description="× P(cease request)")
    take_up: float = Field(default=1.0, ge=0, description="× P(accept an offer)")


class SegmentTreatmentResponse(Frozen):
    """One segment's response to treatments (multipliers, 1 = no effect)."""

    take_up: dict[str, float] = Field(
        default_factory=dict, description="offer -> multiplier on its take-up"
    )
    plan_keep: float = Field(
        default=1.0, gt=0, description="× P(instalment paid) on an offered instalment plan"
    )
    variants: dict[str, VariantResponse] = Field(
        default_factory=dict, description="variant -> multipliers"
    )

    @field_validator("take_up")
    @classmethod
    def _offers(cls, value: dict[str, float]) -> dict[str, float]:
        bad = sorted(set(value) - set(OFFERS[1:]))
        if bad:
            raise ValueError(f"unknown offer(s) {bad}; expected some of {list(OFFERS[1:])}")
        return value

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: dict[str, VariantResponse]) -> dict[str, VariantResponse]:
        bad = sorted(set(value) - set(VARIANTS[1:]))
        if bad:
            raise ValueError(f"unknown variant(s) {bad}; expected some of {list(VARIANTS[1:])}")
        return value


class TreatmentsConfig(Frozen):
    """Treatments beyond the channel: offers, variants and how segments respond."""

    npv_discount_rate_annual: float = Field(
        ge=0, description="annual rate for the NPV of recoveries (daily compounding)"
    )
    message_take_up_factor: float = Field(
        ge=0, le=1, description="offer take-up through a read message's link / in a conversation"
    )
    instalment_plan: InstalmentOffer = Field(description="the instalment plan offer")
    settlement: SettlementOffer = Field(description="the settlement offer")
    payment_holiday: HolidayOffer = Field(description="the payment holiday offer")
    variants: dict[str, VariantConfig] = Field(description="empathetic / firm -> channels")
    response: dict[str, SegmentTreatmentResponse] = Field(
        description="segment -> response multipliers"
    )

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: dict[str, VariantConfig]) -> dict[str, VariantConfig]:
        bad = sorted(set(value) - set(VARIANTS[1:]))
        if bad:
            raise ValueError(f"unknown variant(s) {bad}; expected some of {list(VARIANTS[1:])}")
        return value

    def offer(self, code: int) -> _OfferConfig:
        """Return the configuration of offer ``code`` (1..3)."""
        return (self.instalment_plan, self.settlement, self.payment_holiday)[code - 1]


# --------------------------------------------------------------------------- valuation
TERMINAL_STATES: tuple[str, ...] = (
    "current",
    "1-30",
    "31-60",
    "61-90",
    "91-180",
    "charged_off",
    "legal_pending",
    "garnishing",
)
"""Keys of ``valuation.terminal_recovery_by_bucket``: the DPD buckets and legal cases.

All are shares of the open balance except ``garnishing`` (won judgments still being
paid): the share of the award still to come that is expected to be paid.
"""


class ValuationConfig(Frozen):
    """How a run is valued (``portfolio_value``): discounting, complaints, open receivables.

    The defaults value nothing that is still open and charge nothing for complaints,
    so ``portfolio_value`` of a scenario without a ``valuation`` section is the
    discounted net recovery; the bundled scenarios set every field with its source.
    """

    npv_rate_annual: float = Field(
        default=0.0, ge=0, description="1/year; cash and costs discounted daily at this rate"
    )
    complaint_cost: float = Field(
        default=0.0, ge=0, description="currency units per complaint (handling and conduct risk)"
    )
    terminal_recovery_by_bucket: dict[str, float] = Field(
        default_factory=lambda: dict.fromkeys(TERMINAL_STATES, 0.0),
        description="state at the horizon -> expected share of the open balance recovered",
    )

    @field_validator("terminal_recovery_by_bucket")
    @classmethod
    def _states(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != set(TERMINAL_STATES):
            raise ValueError(f"give exactly the states {list(TERMINAL_STATES)}")
        bad = {k: v for k, v in value.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise ValueError(f"recovery shares must be in [0, 1]: {bad}")
        return value


# --------------------------------------------------------------------------- channels
class ChannelCost(Frozen):
    """Cost and handling of one channel."""

    cost_per_attempt: float = Field(ge=0, description="currency units per attempt")
    cost_per_minute: float = Field(default=0.0, ge=0, description="per minute of handle time")
    handle_time_s: dict[str, float] = Field(
        default_factory=dict,
        description="no_answer / voicemail / wrong_party / conversation -> mean seconds",
    )
    delay_days: int = Field(default=0, ge=0, description="days until the contact takes effect")


class LegalConfig(Frozen):
    """The legal pipeline."""

    duration_days: int = Field(ge=1, description="days from filing to judgment")
    cost_per_case: float = Field(ge=0, description="cost of filing a case, currency units")
    success_rate: float = Field(ge=0, le=1, description="P(judgment recovers), scaled by ability")
    recovery_fraction: float = Field(ge=0, le=1, description="share of balance recovered")
    min_dpd: int = Field(
        default=90, ge=0, description="no legal action below this many days past due"
    )
    court_cost_per_case: float = Field(
        default=0.0, ge=0, description="court and attorney costs at judgment, currency units"
    )
    nothing_recovered_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="share of won judgments that recover nothing (no assets, no employer)",
    )
    recovery_instalments: int = Field(
        default=1, ge=1, description="garnishment instalments that pay the recovery"
    )
    recovery_interval_days: int = Field(
        default=30, ge=1, description="days between garnishment instalments"
    )


class SimConfig(Frozen):
    """Clock and structural settings of a run."""

    start_date: dt.date = Field(description="first simulated local day")
    days: int = Field(gt=0, description="days simulated")
    operating_hours: list[int] = Field(description="local hours a plan may use (slot start hours)")
    charge_off_dpd: int = Field(
        default=180, gt=0, description="DPD at which an account is charged off"
    )
    cycle_days: int = Field(default=30, gt=0, description="a new amount falls due every N DPD")
    max_redials: int = Field(
        default=1, ge=0, description="extra agent-call attempts per day on no answer"
    )
    field_visit_hours: float = Field(default=1.5, gt=0, description="hours per field visit")
    field_agents: int = Field(default=5, ge=0, description="field agents on duty per day")

    @field_validator("operating_hours")
    @classmethod
    def _hours(cls, value: list[int]) -> list[int]:
        if not value or any(not 0 <= h <= 23 for h in value) or sorted(set(value)) != value:
            raise ValueError("operating_hours must be distinct, increasing hours in 0..23")
        return value


class FittedValue(Frozen):
    """One scenario number estimated from a lender's logs (``collsim fit``)."""

    path: str = Field(description="dotted scenario path, e.g. behaviour.wrong_party_rate")
    value: float = Field(description="the estimate (also written at ``path``)")
    se: float = Field(ge=0, description="standard error of the estimate")
    n: int = Field(ge=0, description="events the estimate rests on")
    base: float = Field(description="the base scenario's value")
    method: str = Field(description="how it was estimated")
    group: str = Field(
        default="",
        description="values sharing one estimated factor (segment scales); drawn together",
    )


class FitReport(Frozen):
    """Where a fitted scenario's numbers came from (written by ``collsim fit``)."""

    base: str = Field(description="the base scenario the unidentified numbers come from")
    window_start: dt.date = Field(description="first local day of the logs")
    window_end: dt.date = Field(description="last local day of the logs")
    accounts: int = Field(ge=0, description="accounts in the logs")
    contacts: int = Field(ge=0, description="contact rows in the logs")
    payments: int = Field(ge=0, description="payment rows in the logs")
    fitted: list[FittedValue] = Field(description="every estimated number")
    unidentified: dict[str, str] = Field(
        description="scenario path -> why the logs cannot identify it (base value kept)"
    )
    warnings: list[str] = Field(default_factory=list, description="caveats of the fit")


class Scenario(Frozen):
    """A complete scenario: portfolio, borrowers, channels, capacity, rules, clock."""

    name: str = Field(description="scenario name")
    description: str = Field(description="what the scenario represents")
    currency: str = Field(default="USD", description="currency of every amount")
    ruleset: str = Field(description="bundled rule set name or path to a YAML rule set")
    champion: str = Field(default="champion_us", description="bundled strategy tree or YAML path")
    sim: SimConfig = Field(description="clock and structure of a run")
    portfolio: PortfolioConfig = Field(description="synthetic portfolio generation")
    behaviour: BehaviourConfig = Field(description="the borrower model")
    channels: dict[str, ChannelCost] = Field(description="channel -> cost and handling")
    legal: LegalConfig = Field(description="the legal pipeline")
    capacity: Capacity = Field(description="agents and budgets (the capacity file format)")
    treatments: TreatmentsConfig | None = Field(
        default=None, description="offers and variants; None = only offer none, variant standard"
    )
    valuation: ValuationConfig = Field(
        default_factory=ValuationConfig, description="how a run is valued (portfolio_value)"
    )
    fit: FitReport | None = Field(
        default=None, description="set by ``collsim fit``: what was estimated from logs"
    )

    @model_validator(mode="after")
    def _treatment_segments(self) -> Scenario:
        if self.treatments is not None:
            names = {s.name for s in self.behaviour.segments}
            unknown = sorted(set(self.treatments.response) - names)
            if unknown:
                raise ValueError(f"treatments.response: unknown segment(s) {unknown}")
        return self

    @model_validator(mode="after")
    def _agents_paid_once(self) -> Scenario:
        for pool in self.capacity.agent_pools:
            per_minute = [c for c in pool.channels if self.channels[c].cost_per_minute > 0]
            if pool.cost_per_staffed_hour > 0 and per_minute:
                raise ValueError(
                    f"agent pool {pool.name!r} is paid per staffed hour: set "
                    f"cost_per_minute of {per_minute} to 0 (agents would be paid twice)"
                )
        return self

    @field_validator("channels")
    @classmethod
    def _all_channels(cls, value: dict[str, ChannelCost]) -> dict[str, ChannelCost]:
        missing = sorted(set(CHANNELS) - set(value))
        if missing:
            raise ValueError(f"channels lacks {missing}")
        return _check_channels(value)

    def with_overrides(self, overrides: dict[str, Any]) -> Scenario:
        """Return a copy with dotted-path overrides applied, e.g. ``{"sim.days": 30}``."""
        data = self.model_dump(mode="json")
        for dotted, value in overrides.items():
            node = data
            *parents, leaf = dotted.split(".")
            for part in parents:
                if not isinstance(node, dict) or part not in node:
                    raise ConfigError(f"override {dotted!r}: no key {part!r}")
                node = node[part]
            if isinstance(node, list):
                node[int(leaf)] = value
            else:
                node[leaf] = value
        return _validate(data, f"{self.name} with overrides")

    def scaled_to(self, n_accounts: int) -> Scenario:
        """Return a copy sized for ``n_accounts``: agents and budgets scale in proportion.

        Non-zero agent counts and budgets stay at least 1.
        """
        factor = n_accounts / self.portfolio.n_accounts

        def scale(value: float) -> int:
            return max(int(round(value * factor)), 1) if value > 0 else 0

        capacity = self.capacity.model_dump(mode="json")
        for pool in capacity["agent_pools"]:
            pool["agents_by_hour"] = {h: scale(a) for h, a in pool["agents_by_hour"].items()}
        capacity["channel_budgets"] = {c: scale(b) for c, b in capacity["channel_budgets"].items()}
        if capacity.get("money_budget") is not None:
            capacity["money_budget"] = capacity["money_budget"] * factor
        data = self.model_dump(mode="json")
        data["capacity"] = capacity
        data["portfolio"]["n_accounts"] = n_accounts
        data["sim"]["field_agents"] = scale(self.sim.field_agents)
        return _validate(data, f"{self.name} scaled to {n_accounts} accounts")

    def config_hash(self) -> str:
        """Return the sha256 of the canonical JSON of this scenario.

        A scenario without treatments (or a fit report) hashes as it did before they
        existed.
        """
        data = self.model_dump(mode="json")
        for optional in ("treatments", "fit"):
            if data.get(optional) is None:
                data.pop(optional, None)
        canonical = json.dumps(data, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


class ConfigError(ValueError):
    """A scenario or capacity file that does not validate; the message names the file and key."""


def _format_validation(source: str, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        value = item.get("input")
        shown = "" if isinstance(value, dict | list) else f" (value {value!r})"
        lines.append(f"{source}: {where}: {item['msg']}{shown}")
    return "\n".join(lines)


def _validate(data: Any, source: str) -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(source, exc)) from None


def read_yaml(path: Path) -> Any:
    """Read a YAML file with the safe loader; raise ConfigError naming the file."""
    try:
        with path.open(encoding="utf-8") as handle:
            return safe_load_unique(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def bundled_scenarios() -> list[str]:
    """Return the names of the scenarios shipped with collsim."""
    folder = resources.files("collsim") / "scenarios"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a bundled scenario by name or a scenario YAML by path.

    Raises:
        ConfigError: the file is missing, not YAML, or does not validate; the
            message names the file and the key.
    """
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} or candidate.exists():
        path = candidate
    elif str(name_or_path) in bundled_scenarios():
        path = Path(str(resources.files("collsim") / "scenarios" / f"{name_or_path}.yaml"))
    else:
        raise ConfigError(
            f"unknown scenario {name_or_path!r}; bundled: {', '.join(bundled_scenarios())}"
        )
    return _validate(read_yaml(path), str(path))


def load_capacity(path: str | Path) -> Capacity:
    """Load and validate a capacity file (docs/input_formats.md); ConfigError names file and key."""
    path = Path(path)
    try:
        return Capacity.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise ConfigError(_format_validation(str(path), exc)) from None


def dump_yaml(model: BaseModel, path: Path) -> None:
    """Write a config model as YAML atomically (temporary file, then rename)."""
    from collsim.io import atomic_write_text

    text = yaml.safe_dump(model.model_dump(mode="json", exclude_none=True), sort_keys=False)
    atomic_write_text(path, text)
