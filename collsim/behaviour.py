"""The borrower model: vectorised functions of state, latent traits and keyed draws.

Everything here is numpy over index arrays; no SimPy, no Python loop over
accounts.  The simulator calls these functions with uniforms from
:class:`collsim.rng.RunRandom` keyed by (run, purpose, account, day, attempt), so
two policies on the same seed face the same borrowers.

The model (parameters in the scenario's ``behaviour`` section):

* **Repayment hazard.**  Each day an active account pays with probability
  ``1 - exp(-lambda)``, ``lambda = ability * (h0 * exp(-dpd / s) + E * exp(-dpd / s_c))``.
  ``h0``
  is the segment's self-cure hazard; ``E`` is a self-exciting intensity (Chehrazi,
  Glynn & Weber 2019): every effective contact adds a jump scaled by willingness,
  and ``E`` decays by ``exp(-1 / tau)`` a day.  Contact raises willingness, never
  ability: the whole hazard is scaled by ability, and a payment is the full amount
  due (a cure) with probability ``ability``, else a partial payment.
* **Re-default.**  A cured account falls delinquent again (1 DPD, one cycle due)
  with a constant daily hazard set from the scenario's 180-day re-default
  probability, higher after a plan (re-age) cure than after a payment.
* **Diminishing returns and fatigue.**  Every attempt that reaches the borrower
  adds 1 to a fatigue level that decays like ``E``.  Answer rates are divided
  by ``1 + k_answer F``, jumps by ``1 + k_effect F``; complaint risk is
  multiplied by ``1 + k_complaint F``.
* **Calls** (agent, voice bot): answered with the borrower's answer rate times
  an hour factor whose population mean is a mean-preserving profile over the
  operating hours (best/worst ``answer_hour_ratio``) and whose per-borrower part
  peaks at the borrower's best hour; answered calls reach a wrong party with
  ``wrong_party_rate``; a right-party conversation ends in one of: pay now,
  promise to pay (for the full due with probability ``ability``, else a part),
  payment plan, dispute, refusal, complaint, cease request, or no commitment.
  A voice bot's pay/promise strength is ``bot_effectiveness`` times a human's.
  Only a right-party conversation gets the channel's jump; a voicemail gets
  ``voicemail_jump`` (message-sized) and an unanswered call nothing.
* **Messages** (SMS, email, push, letter): delivered unless bounced; read with
  the borrower's open rate and hour profile; a read message excites the hazard
  and may lead to an immediate payment through the self-service link.  Digital
  messages carry an opt-out and a complaint hazard per delivered message, both
  rising with fatigue, and their open rate falls with fatigue
  (``behaviour.messages``).
* **Field visits** meet the borrower with ``field_found_rate`` and then behave
  like an agent conversation with the field channel's response.
* **Treatments** (optional, :mod:`collsim.treatments`): a variant multiplies the
  pay-now, promise, complaint and cease probabilities of a conversation (and the
  link payment of a message) by segment; an offer made in a right-party
  conversation (or a read message, scaled down) is accepted with its take-up:
  base × segment multiplier × variant multiplier × willingness (instalment plan,
  payment holiday) or ability × urgency near charge-off (settlement).  Borrowers who
  paid, disputed, complained or asked to cease do not take the offer.  Without
  treatments none of this is computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from collsim.config import BehaviourConfig
from collsim.portfolio import Latent
from collsim.vocab import CHANNELS, N_CHANNELS, Channel, Offer, Outcome

if TYPE_CHECKING:
    from collsim.treatments import TreatmentTables

ACTIVE, CURED, LEGAL, CHARGED_OFF, CLOSED, HOLIDAY = 0, 1, 2, 3, 4, 5
"""Account status codes of the simulator (HOLIDAY: on an accepted payment holiday)."""

DEFAULT_HOURS: tuple[int, ...] = tuple(range(8, 21))
"""Local hours a profile averages over when no operating hours are given."""


CURE_NONE, CURE_PAYMENT, CURE_PLAN = 0, 1, 2
"""How a cured account cured: not cured, by paying its due, by completing a plan (re-age)."""


def in_collection(status: np.ndarray) -> np.ndarray:
    """bool: the account is, or will return to, collection (active or on a payment holiday).

    Environments end an account's episode when this becomes False.
    """
    return np.isin(status, (ACTIVE, HOLIDAY))


_TAKES_OFFER = np.zeros(len(Outcome), dtype=bool)
_TAKES_OFFER[
    [Outcome.RIGHT_PARTY, Outcome.PROMISE_TO_PAY, Outcome.PAYMENT_PLAN, Outcome.REFUSAL]
] = True
"""Conversation results after which an offer may still be accepted."""

_OFFER_OUTCOME = np.array(
    [Outcome.RIGHT_PARTY, Outcome.PAYMENT_PLAN, Outcome.PAYMENT, Outcome.RIGHT_PARTY],
    dtype=np.int8,
)
"""Attempt outcome recorded when an offer is accepted (by offer code)."""

CONVERSATION_RESULTS = np.array(
    [
        Outcome.PAYMENT,
        Outcome.PROMISE_TO_PAY,
        Outcome.PAYMENT_PLAN,
        Outcome.DISPUTE,
        Outcome.REFUSAL,
        Outcome.COMPLAINT,
        Outcome.CEASE_REQUEST,
        Outcome.RIGHT_PARTY,
    ],
    dtype=np.int8,
)
"""Conversation results, in the order ``conversation_probabilities`` stacks them."""


@dataclass
class BorrowerState:
    """Dynamic hidden state of each account, owned by the simulator."""

    status: np.ndarray  # int8, ACTIVE..CLOSED
    excitation: np.ndarray  # float64, extra repayment hazard per day
    fatigue: np.ndarray  # float64
    plan_remaining: np.ndarray  # int16 instalments left (0 = no plan)
    plan_next_day: np.ndarray  # int64 day number of the next instalment
    plan_amount: np.ndarray  # float64 per instalment
    dispute_until: np.ndarray  # int64 day number when an open dispute resolves (-1 none)
    plan_interval: np.ndarray  # int64 days between instalments (-1: the scenario's default)
    plan_keep_mult: np.ndarray  # float64 × P(instalment paid) (1 unless an offered plan)
    holiday_until: np.ndarray  # int64 day number a payment holiday ends (-1 none)
    cure_kind: np.ndarray  # int8 how the account last cured: CURE_NONE, CURE_PAYMENT, CURE_PLAN

    @classmethod
    def initial(cls, n: int) -> BorrowerState:
        """Return the state of N active accounts with no history."""
        return cls(
            status=np.zeros(n, dtype=np.int8),
            excitation=np.zeros(n),
            fatigue=np.zeros(n),
            plan_remaining=np.zeros(n, dtype=np.int16),
            plan_next_day=np.full(n, -1, dtype=np.int64),
            plan_amount=np.zeros(n),
            dispute_until=np.full(n, -1, dtype=np.int64),
            plan_interval=np.full(n, -1, dtype=np.int64),
            plan_keep_mult=np.ones(n),
            holiday_until=np.full(n, -1, dtype=np.int64),
            cure_kind=np.zeros(n, dtype=np.int8),
        )


@dataclass(frozen=True)
class ContactResult:
    """Outcomes of a batch of contact attempts (arrays aligned with the batch)."""

    outcome: np.ndarray  # int8 outcome code
    reached: np.ndarray  # bool: the borrower received the contact (fatigue)
    effective: np.ndarray  # bool: excites the repayment hazard
    conversation: np.ndarray  # bool: a telephone conversation took place
    accepted: np.ndarray | None = None  # bool: an offer was accepted (None: no offers made)
    opted_out: np.ndarray | None = None  # bool: the borrower opted out of the message channel
    jump: np.ndarray | None = None  # float: hazard jump of each effective row (None: channel's)

    def rows(self, keep: np.ndarray) -> ContactResult:
        """Return the results of the rows selected by ``keep`` (bool mask or indices)."""
        picked: dict[str, Any] = {
            name: None if value is None else value[keep] for name, value in vars(self).items()
        }
        return ContactResult(**picked)


class BorrowerModel:
    """Vectorised borrower behaviour for one portfolio's latent traits.

    Args:
        config: the scenario's behaviour section.
        latent: the accounts' latent traits.
        treatments: the scenario's treatment tables (None: no treatment is ever used).
        operating_hours: the local hours contacts can start; the answer-rate profile
            averages 1 over them (see :func:`hour_profile`).
    """

    def __init__(
        self,
        config: BehaviourConfig,
        latent: Latent,
        treatments: TreatmentTables | None = None,
        operating_hours: Sequence[int] = DEFAULT_HOURS,
    ) -> None:
        self.config = config
        self.latent = latent
        self.treatments = treatments
        self.jump = np.array([config.jump.get(c, 0.0) for c in CHANNELS])
        hours = np.asarray(operating_hours, dtype=np.int64)
        self.hour_profile = hour_profile(
            config.answer_by_hour, hours.tolist(), config.answer_hour_ratio
        )
        self._personal_table = personal_hour_table(config.personal_hour_weight)
        mean_personal = self._personal_table[latent.best_hour.astype(np.int64)].mean(axis=0)
        self._population_hour = self.hour_profile / mean_personal
        self.not_delivered = np.array([config.not_delivered_rate.get(c, 0.0) for c in CHANNELS])
        redefault = config.redefault_within_180d
        self.redefault_hazard = (
            -np.log1p(-np.array([0.0, redefault.after_payment, redefault.after_plan])) / 180.0
        )  # 1/day, by cure kind
        risk = config.messages
        self.opt_out = np.array([risk.opt_out.get(c, 0.0) for c in CHANNELS])
        self.message_complaint = np.array([risk.complaint.get(c, 0.0) for c in CHANNELS])

    # ------------------------------------------------------------------ daily dynamics
    def decay(self, state: BorrowerState) -> None:
        """Advance the excitation and fatigue by one day (in place)."""
        state.excitation *= np.exp(-1.0 / self.config.excitation_decay_days)
        state.fatigue *= np.exp(-1.0 / self.config.fatigue_decay_days)

    def payment_probability(
        self, idx: np.ndarray, dpd: np.ndarray, state: BorrowerState
    ) -> np.ndarray:
        """P(the account pays today) for accounts ``idx`` with days past due ``dpd``.

        Contact raises willingness (the excitation), never ability: the whole hazard,
        own and excited, is scaled by the borrower's ability to pay.  The excitation
        turns into payments less the deeper the delinquency
        (``exp(-dpd / contact_dpd_scale_days)``).
        """
        own = self.latent.self_cure_hazard[idx] * np.exp(-dpd / self.config.hazard_dpd_scale_days)
        excited = state.excitation[idx] * np.exp(-dpd / self.config.contact_dpd_scale_days)
        return 1.0 - np.exp(-self.latent.ability[idx] * (own + excited))

    def payment_is_full(self, idx: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Whether a payment covers the whole amount due (else partial)."""
        return u < self.latent.ability[idx]

    def partial_fraction(self, idx: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Share of the amount due paid by a partial payment.

        The configured mean times ``0.5 + ability``: a borrower with little ability
        to pay pays little (contact cannot create money).
        """
        mean = self.config.partial_payment_fraction * (0.5 + self.latent.ability[idx])
        return np.clip(mean * (0.5 + u), 0.05, 0.95)

    # ------------------------------------------------------------------ contacts
    def hour_factor(self, idx: np.ndarray, local_hour: np.ndarray) -> np.ndarray:
        """Relative availability at a local hour (population mean 1 over operating hours).

        The account's personal factor (peaked at its best hour, weight
        ``personal_hour_weight``) times the population profile divided by the
        personal factor's mean at that hour, so that averaged over the accounts the
        factor is exactly :func:`hour_profile` at every hour.
        """
        hour = np.clip(local_hour, 0, 23)
        personal = self._personal_table[self.latent.best_hour[idx].astype(np.int64), hour]
        return self._population_hour[hour] * personal

    def answer_probability(
        self, idx: np.ndarray, local_hour: np.ndarray, state: BorrowerState
    ) -> np.ndarray:
        """P(a call is answered) for accounts ``idx`` at their local hours."""
        fatigue = 1.0 + self.config.fatigue_answer * state.fatigue[idx]
        return self.latent.answer_rate[idx] * self.hour_factor(idx, local_hour) / fatigue

    def variant_scale(self, idx: np.ndarray, variant: np.ndarray) -> np.ndarray:
        """float [M, 5]: the variant's multipliers for each account's segment.

        Columns follow ``treatments.SCALE_FIELDS`` (pay, promise, complaint, cease, take_up).
        """
        if self.treatments is None:
            return np.ones((idx.shape[0], 5))
        return self.treatments.variant_scale[self.latent.segment[idx], variant]

    def offer_take_up(
        self,
        idx: np.ndarray,
        offer: np.ndarray,
        variant: np.ndarray,
        dpd: np.ndarray,
        message: bool = False,
    ) -> np.ndarray:
        """P(accept the offer made) for accounts ``idx`` (0 where the offer is none).

        Base take-up × segment multiplier × variant multiplier × willingness
        (instalment plan, payment holiday) or × ability × urgency (settlement);
        × the message factor when made through a read message's link.
        """
        t = self.treatments
        if t is None:
            return np.zeros(idx.shape[0])
        lat = self.latent
        segment = lat.segment[idx]
        settle = offer == Offer.SETTLEMENT
        driver = np.where(
            settle,
            lat.ability[idx] * np.clip(dpd / t.charge_off_dpd, 0.0, 1.0) ** t.urgency_exponent,
            lat.willingness[idx],
        )
        p = (
            t.take_up[offer]
            * t.take_up_mult[segment, offer]
            * t.variant_scale[segment, variant, 4]
            * driver
        )
        if message:
            p = p * t.message_factor
        return np.clip(np.where(offer > 0, p, 0.0), 0.0, 0.95)

    def conversation_probabilities(
        self,
        idx: np.ndarray,
        channel: np.ndarray,
        state: BorrowerState,
        scale: np.ndarray | None = None,
    ) -> np.ndarray:
        """Return [M, 8] probabilities of the conversation results (see module doc).

        ``scale`` (float [M, >=4], from :meth:`variant_scale`) multiplies pay now,
        promise, complaint and cease before normalisation; None leaves them as they are.
        """
        c = self.config.conversation
        lat = self.latent
        ability, willing = lat.ability[idx], lat.willingness[idx]
        response = lat.channel_response[idx, channel]
        human = np.where(channel == Channel.VOICE_BOT, self.config.bot_effectiveness, 1.0)
        strength = np.clip(
            human * response / (1.0 + self.config.fatigue_effect * state.fatigue[idx]), 0, 3
        )
        complaint = lat.complaint_rate[idx] * (
            1.0 + self.config.fatigue_complaint * state.fatigue[idx]
        )
        probs = np.stack(
            [
                c.pay_now * ability * willing * strength,
                c.promise * willing * strength,
                c.plan * (1.0 - ability) * willing,
                np.full(idx.shape[0], c.dispute),
                c.refusal * (1.0 - willing),
                complaint,
                c.cease * (1.0 + self.config.fatigue_complaint * state.fatigue[idx]),
            ],
            axis=1,
        )
        if scale is not None:
            probs[:, [0, 1, 5, 6]] *= scale[:, :4]
        total = probs.sum(axis=1, keepdims=True)
        probs = np.where(total > 1.0, probs / np.maximum(total, 1e-12), probs)
        rest = 1.0 - probs.sum(axis=1, keepdims=True)
        return np.concatenate([probs, rest], axis=1)

    def call(
        self,
        idx: np.ndarray,
        channel: np.ndarray,
        local_hour: np.ndarray,
        state: BorrowerState,
        u_answer: np.ndarray,
        u_party: np.ndarray,
        u_result: np.ndarray,
        treatment: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> ContactResult:
        """Outcomes of telephone calls (agent or voice bot) and field visits.

        Args:
            treatment: optional ``(offer, variant, dpd, u_take)`` aligned with ``idx``;
                the variant scales the conversation, an accepted offer replaces the
                result (see ``_OFFER_OUTCOME``) and is flagged in ``accepted``.
        """
        is_visit = channel == Channel.FIELD_VISIT
        p_answer = np.where(
            is_visit,
            self.config.field_found_rate * self.hour_factor(idx, local_hour),
            self.answer_probability(idx, local_hour, state),
        )
        answered = u_answer < p_answer
        wrong = answered & ~is_visit & (u_party < self.config.wrong_party_rate)
        right = answered & ~wrong
        scale = None if treatment is None else self.variant_scale(idx, treatment[1])
        probs = self.conversation_probabilities(idx, channel, state, scale)
        cumulative = np.cumsum(probs, axis=1)
        pick = (u_result[:, None] >= cumulative).sum(axis=1).clip(0, 7)
        result = CONVERSATION_RESULTS[pick]
        accepted = None
        if treatment is not None:
            offer, variant, dpd, u_take = treatment
            p_take = self.offer_take_up(idx, offer, variant, dpd)
            accepted = answered & ~wrong & _TAKES_OFFER[result] & (u_take < p_take)
            result = np.where(accepted, _OFFER_OUTCOME[offer], result).astype(np.int8)
        no_answer = np.where(u_party < 0.5, Outcome.NO_ANSWER, Outcome.VOICEMAIL).astype(np.int8)
        outcome = np.where(right, result, np.where(wrong, Outcome.WRONG_PARTY, no_answer))
        outcome = np.where(is_visit & ~answered, Outcome.NO_ANSWER, outcome).astype(np.int8)
        voicemail = outcome == Outcome.VOICEMAIL
        return ContactResult(
            outcome=outcome,
            reached=answered | voicemail,
            effective=right | voicemail,
            conversation=right & ~is_visit,
            accepted=accepted,
            jump=np.where(voicemail, self.config.voicemail_jump, self.jump[channel]),
        )

    def message(
        self,
        idx: np.ndarray,
        channel: np.ndarray,
        local_hour: np.ndarray,
        u_deliver: np.ndarray,
        u_open: np.ndarray,
        state: BorrowerState | None = None,
        u_risk: np.ndarray | None = None,
    ) -> ContactResult:
        """Outcomes of SMS, email, app push and letters (letters read on arrival).

        With ``state`` and ``u_risk`` (digital messages): the open rate is divided by
        ``1 + fatigue_open × F``; a delivered message leads to a complaint (outcome
        ``complaint``) with P = complaint × (1 + fatigue_risk × F), else to an opt-out
        from its channel (``opted_out``) with P = opt_out × (1 + fatigue_risk × F).
        Neither is read.  Without them (letters): no fatigue effect, no risk.
        """
        delivered = u_deliver >= self.not_delivered[channel]
        timed = local_hour >= 0
        hour_factor = np.where(timed, self.hour_factor(idx, np.maximum(local_hour, 0)), 0.8)
        p_open = self.latent.open_rate[idx] * (0.5 + 0.5 * hour_factor)
        outcome = np.where(delivered, Outcome.DELIVERED, Outcome.NOT_DELIVERED).astype(np.int8)
        if state is None or u_risk is None:
            return ContactResult(
                outcome=outcome,
                reached=delivered,
                effective=delivered & (u_open < p_open),
                conversation=np.zeros(idx.shape[0], dtype=bool),
            )
        cfg = self.config.messages
        fatigue = state.fatigue[idx]
        risk = 1.0 + cfg.fatigue_risk * fatigue
        p_complaint = np.minimum(self.message_complaint[channel] * risk, 0.5)
        p_opt_out = np.minimum(self.opt_out[channel] * risk, 0.5)
        complaint = delivered & (u_risk < p_complaint)
        opted_out = delivered & ~complaint & (u_risk < p_complaint + p_opt_out)
        read = delivered & ~complaint & ~opted_out
        read &= u_open < p_open / (1.0 + cfg.fatigue_open * fatigue)
        return ContactResult(
            outcome=np.where(complaint, Outcome.COMPLAINT, outcome).astype(np.int8),
            reached=delivered,
            effective=read,
            conversation=np.zeros(idx.shape[0], dtype=bool),
            opted_out=opted_out,
        )

    def link_payment_probability(
        self, idx: np.ndarray, channel: np.ndarray, variant: np.ndarray | None = None
    ) -> np.ndarray:
        """P(pay at once through the self-service link | message read).

        The link is always on in digital messages; a variant scales it by its ``pay``
        multiplier (None: no variant).
        """
        lat = self.latent
        p = (
            self.config.link_payment
            * lat.ability[idx]
            * lat.willingness[idx]
            * lat.channel_response[idx, channel]
        )
        if variant is not None:
            p = p * self.variant_scale(idx, variant)[:, 0]
        return np.clip(p, 0.0, 1.0)

    def excite(
        self,
        idx: np.ndarray,
        channel: np.ndarray,
        effective: np.ndarray,
        reached: np.ndarray,
        state: BorrowerState,
        jump: np.ndarray | None = None,
    ) -> None:
        """Apply contact effects in place: hazard jumps (diminishing) and fatigue.

        ``jump`` (1/day per row, e.g. :attr:`ContactResult.jump`) replaces the
        channel's jump; None: the channel's.  The jump raises willingness: it is
        scaled by willingness here and by ability in :meth:`payment_probability`.
        """
        lat = self.latent
        jump = (
            (self.jump[channel] if jump is None else jump)
            * lat.willingness[idx]
            * lat.channel_response[idx, channel]
            / (1.0 + self.config.fatigue_effect * state.fatigue[idx])
        )
        np.add.at(state.excitation, idx, np.where(effective, jump, 0.0))
        np.add.at(state.fatigue, idx, reached.astype(float))

    def redefault_probability(self, idx: np.ndarray, state: BorrowerState) -> np.ndarray:
        """P(a cured account falls delinquent again today), by how it cured."""
        return -np.expm1(-self.redefault_hazard[state.cure_kind[idx]])

    def promise_kept(self, idx: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Whether each promise falling due is kept."""
        return u < self.latent.promise_keep[idx] * (0.5 + 0.5 * self.latent.ability[idx])

    def instalment_paid(
        self, idx: np.ndarray, u: np.ndarray, boost: np.ndarray | None = None
    ) -> np.ndarray:
        """Whether each plan instalment falling due is paid.

        ``boost`` multiplies P(paid) (offered plans; capped at 0.99); None: as configured.
        """
        if boost is None:
            return u < self.latent.plan_keep[idx]
        return u < np.minimum(self.latent.plan_keep[idx] * boost, 0.99)


def personal_hour_table(weight: float) -> np.ndarray:
    """float [24, 24]: a borrower's own availability factor by (best hour, local hour).

    ``1 - weight`` everywhere plus ``weight`` times a Gaussian bump (3 h wide) at the
    borrower's best hour.
    """
    hours = np.arange(24)
    return 1.0 - weight + weight * np.exp(-0.5 * ((hours[None, :] - hours[:, None]) / 3.0) ** 2)


def hour_profile(
    shape: Sequence[float], operating_hours: Sequence[int], best_to_worst: float
) -> np.ndarray:
    """float [24]: the population's relative answer rate by local hour.

    The scenario's ``answer_by_hour`` gives the shape; it is stretched linearly so
    that over the operating hours its mean is 1 (mean-preserving: the hour moves
    *when* borrowers answer, not how many) and its best hour is ``best_to_worst``
    times its worst.  Hours outside the operating hours follow the same line,
    floored at 0.05.

    >>> p = hour_profile([1.0] * 18 + [2.0] + [1.0] * 5, range(8, 21), 1.3)
    >>> round(float(p[8:21].mean()), 6), round(float(p[18] / p[8]), 6)
    (1.0, 1.3)
    """
    s = np.asarray(shape, dtype=float)
    inside = s[np.asarray(operating_hours, dtype=np.int64)]
    mean, high, low = inside.mean(), inside.max(), inside.min()
    if high - low < 1e-12:
        return np.ones(24)
    alpha = (best_to_worst - 1.0) / ((high - mean) - best_to_worst * (low - mean))
    return np.maximum(1.0 + alpha * (s - mean), 0.05)


def channel_index(names: list[str]) -> np.ndarray:
    """Return channel codes for names (helper for configs)."""
    return np.array([CHANNELS.index(n) for n in names], dtype=np.int64)


assert len(CHANNELS) == N_CHANNELS
