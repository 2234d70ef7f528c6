"""Fit a scenario's borrower model to a lender's logs (``collsim fit``).

What the logs identify is estimated by maximum likelihood under the borrower model
of :mod:`collsim.behaviour`; everything else keeps the base scenario's value and is
listed in the report as unidentified, with the reason.

**Direct estimates** (no latent traits involved): the wrong-party share of answered
calls, each message channel's bounce rate, the field team's meeting rate (given the
hour profile), and each digital channel's complaint rate with its fatigue slope.

**Simulated likelihood** (latent traits integrated out): each account's events are
scored under K draws of its latent traits from the base scenario's look-alike
borrowers (:func:`collsim.sim.impute.matched_draws`); an account's likelihood is
the mean over its draws of the product of its events' probabilities, so accounts
that answer, promise or pay often are credited to the borrowers who do (with the
draws' estimate of the log-of-a-mean bias added back, :func:`simulated_loglik`).  Four
blocks share the draws and are maximised in turn (scipy L-BFGS-B) until the joint
likelihood settles:

* **answer**: calls answered — a common scale on the segments' answer rates and
  the best/worst hour ratio;
* **conversation**: the eight results of a right-party conversation without an
  offer or variant — the base probabilities of pay now, promise, plan, dispute,
  refusal and cease, a common scale on the segments' complaint rates, the voice
  bot's effectiveness and the fatigue slope of complaints;
* **promise**: promises kept — a common scale on the segments' promise-keeping;
* **hazard**: each account's days from the window start to its first payment,
  first commitment or legal filing — a common scale on the segments' self-cure
  hazard, its DPD scale, and the hazard jump of each kind of effective contact
  (the contact effects).  Read messages are not logged: the likelihood mixes
  over each delivered message being read or not (given that it was not paid
  through its link), exactly, as reads are independent given the traits.

Standard errors come from the numerical Hessian of the joint log-likelihood in
each block (statsmodels), on the log scale, then the delta method.  Segment-level
numbers are moved by one common factor per block (the relative levels of the
segments stay the base's): they are reported per segment with the factor's
relative error and share a ``group``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from rich.table import Table
from scipy.optimize import minimize
from scipy.sparse import csr_matrix
from statsmodels.tools.numdiff import approx_hess3

from collsim.behaviour import DEFAULT_HOURS, hour_profile, personal_hour_table
from collsim.config import FitReport, FittedValue, Scenario, dump_yaml
from collsim.logs import Logs
from collsim.portfolio import date_of, day_number
from collsim.research.fitdata import (
    EXCITING_GROUPS,
    MESSAGE_CHANNELS,
    RESULTS,
    Events,
    FitTables,
    fit_tables,
)
from collsim.sim.impute import matched_draws
from collsim.vocab import CHANNELS, Channel, Outcome

MAX_ACCOUNTS = 2_500
"""Accounts the simulated likelihood uses by default (a random subset beyond it)."""
DRAWS = 192
"""Latent draws per account by default."""
MIN_EVENTS = 30
"""Fewest events (or contacts) for a number to count as identified."""
_EPS = 1e-12
OFFSETS = {"behaviour.answer_hour_ratio": 1.0}
"""Parameters searched as (value - offset) on the log scale: the ratio is at least 1."""
BOUND_LOG = 5.0
"""The likelihood search stays within base × exp(±BOUND_LOG)."""


# --------------------------------------------------------------------------- draws
@dataclass(frozen=True)
class Traits:
    """Latent traits of the fitted accounts, [n, K] (channel response [n, K, channels])."""

    ability: np.ndarray
    willingness: np.ndarray
    answer_rate: np.ndarray
    best_hour: np.ndarray
    open_rate: np.ndarray
    response: np.ndarray
    complaint_rate: np.ndarray
    promise_keep: np.ndarray
    self_cure_hazard: np.ndarray
    personal: np.ndarray  # [24, 24] personal hour factor by (best hour, hour)
    mean_personal: np.ndarray  # [24] population mean of the personal factor


def _traits(
    scenario: Scenario, logs: Logs, rows: np.ndarray, rng: np.random.Generator, draws: int
) -> Traits:
    d = matched_draws(scenario, logs.accounts.take(rows), rng, draws)
    pool, idx = d.pool, d.rows
    personal = personal_hour_table(scenario.behaviour.personal_hour_weight)
    return Traits(
        ability=pool.ability[idx],
        willingness=pool.willingness[idx],
        answer_rate=pool.answer_rate[idx],
        best_hour=pool.best_hour[idx].astype(np.int64),
        open_rate=pool.open_rate[idx],
        response=pool.channel_response[idx],
        complaint_rate=pool.complaint_rate[idx],
        promise_keep=pool.promise_keep[idx],
        self_cure_hazard=pool.self_cure_hazard[idx],
        personal=personal,
        mean_personal=personal[pool.best_hour.astype(np.int64)].mean(axis=0),
    )


def _subset(events: Events, remap: np.ndarray) -> Events:
    keep = remap[events.account] >= 0
    return Events(
        account=remap[events.account[keep]],
        channel=events.channel[keep],
        hour=events.hour[keep],
        fatigue=events.fatigue[keep],
        y=events.y[keep],
    )


def _summing_matrix(account: np.ndarray, n: int) -> csr_matrix:
    """[n, M] matrix summing row values by account."""
    return csr_matrix(
        (np.ones(account.shape[0]), (account, np.arange(account.shape[0]))),
        shape=(n, account.shape[0]),
    )


def _per_account(values: np.ndarray, account: np.ndarray, n: int) -> np.ndarray:
    """Sum [M, K] row values into [n, K] by account."""
    return np.asarray(_summing_matrix(account, n) @ values)


# --------------------------------------------------------------------------- blocks
@dataclass
class Block:
    """Parameters estimated together and the log-likelihood [n, K] they move.

    Attributes:
        name: block name.
        names: parameter names (scenario paths or scale labels).
        start: starting values (positive; optimised on the log scale).
        loglik: function of the parameter values returning [n, K].
        events: events behind each parameter (for the report and the identified test).
    """

    name: str
    names: list[str]
    start: np.ndarray
    loglik: Callable[[np.ndarray], np.ndarray]
    events: list[int]
    value: np.ndarray = field(init=False)
    se: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.value = self.start.copy()
        self.se = np.full(self.start.shape[0], np.nan)


def _bernoulli(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1.0 - 1e-9)
    return np.where(y[:, None] > 0, np.log(p), np.log1p(-p))


def _population_hour(scenario: Scenario, ratio: float, mean_personal: np.ndarray) -> np.ndarray:
    b = scenario.behaviour
    hours = list(scenario.sim.operating_hours or DEFAULT_HOURS)
    return hour_profile(b.answer_by_hour, hours, ratio) / mean_personal


def _answer_block(scenario: Scenario, calls: Events, visits: Events, t: Traits, n: int) -> Block:
    """Calls answered and field visits meeting the borrower: both follow the hour factor."""
    b = scenario.behaviour
    i, h = calls.account, calls.hour.clip(0, 23)
    personal = t.personal[t.best_hour[i], h[:, None]]
    base_rate = t.answer_rate[i] * personal / (1.0 + b.fatigue_answer * calls.fatigue)[:, None]
    vi, vh = visits.account, visits.hour.clip(0, 23)
    visit_personal = t.personal[t.best_hour[vi], vh[:, None]]

    def loglik(x: np.ndarray) -> np.ndarray:
        hour = _population_hour(scenario, 1.0 + float(x[1]), t.mean_personal)
        answered = _bernoulli(x[0] * base_rate * hour[h][:, None], calls.y)
        met = _bernoulli(x[2] * visit_personal * hour[vh][:, None], visits.y)
        return _per_account(answered, i, n) + _per_account(met, vi, n)

    return Block(
        "answer",
        ["answer_scale", "behaviour.answer_hour_ratio", "behaviour.field_found_rate"],
        np.array([1.0, max(b.answer_hour_ratio - 1.0, 1e-3), b.field_found_rate]),
        loglik,
        [calls.n, calls.n, visits.n],
    )


_CONVERSATION_PARAMS: dict[str, Outcome] = {
    "pay_now": Outcome.PAYMENT,
    "promise": Outcome.PROMISE_TO_PAY,
    "plan": Outcome.PAYMENT_PLAN,
    "dispute": Outcome.DISPUTE,
    "refusal": Outcome.REFUSAL,
    "cease": Outcome.CEASE_REQUEST,
}
"""Base conversation probabilities the fit estimates -> the result each one produces."""


def _conversation_block(scenario: Scenario, conv: Events, t: Traits, n: int) -> Block:
    b = scenario.behaviour
    c = b.conversation
    i, ch, y, fat = conv.account, conv.channel.astype(np.int64), conv.y, conv.fatigue[:, None]
    ability, willing = t.ability[i], t.willingness[i]
    response = t.response[i, :, ch] if i.size else np.zeros((0, t.ability.shape[1]))
    complaint = t.complaint_rate[i]
    is_bot = (ch == Channel.VOICE_BOT)[:, None]
    effect = 1.0 + b.fatigue_effect * fat

    def loglik(x: np.ndarray) -> np.ndarray:
        pay_now, promise, plan, dispute, refusal, cease, comp_scale, bot, k_c = x
        strength = np.clip(np.where(is_bot, bot, 1.0) * response / effect, 0.0, 3.0)
        risk = 1.0 + k_c * fat
        probs = np.stack(
            [
                pay_now * ability * willing * strength,
                promise * willing * strength,
                plan * (1.0 - ability) * willing,
                np.full_like(ability, dispute),
                refusal * (1.0 - willing),
                comp_scale * complaint * risk,
                cease * risk * np.ones_like(ability),
            ]
        )
        total = probs.sum(axis=0)
        probs = np.where(total > 1.0, probs / np.maximum(total, _EPS), probs)
        rest = 1.0 - probs.sum(axis=0)
        chosen = np.where(
            y[:, None] == len(RESULTS) - 1, rest, probs[np.minimum(y, 6), np.arange(y.size)]
        )
        return _per_account(np.log(np.clip(chosen, _EPS, 1.0)), i, n)

    start = np.array(
        [
            *(getattr(c, p) for p in _CONVERSATION_PARAMS),
            1.0,
            b.bot_effectiveness,
            b.fatigue_complaint,
        ]
    )
    counts = dict(zip(RESULTS, np.bincount(y, minlength=len(RESULTS)).tolist(), strict=True))
    complaints, ceases = counts[Outcome.COMPLAINT], counts[Outcome.CEASE_REQUEST]
    bot_n = int((ch == Channel.VOICE_BOT).sum())
    return Block(
        "conversation",
        [
            *(f"behaviour.conversation.{p}" for p in _CONVERSATION_PARAMS),
            "complaint_scale",
            "behaviour.bot_effectiveness",
            "behaviour.fatigue_complaint",
        ],
        start,
        loglik,
        [
            *(counts[r] for r in _CONVERSATION_PARAMS.values()),
            complaints,
            bot_n,
            complaints + ceases,
        ],
    )


def _promise_block(promises: Events, t: Traits, n: int) -> Block:
    i = promises.account
    base = t.promise_keep[i] * (0.5 + 0.5 * t.ability[i])

    def loglik(x: np.ndarray) -> np.ndarray:
        return _per_account(_bernoulli(x[0] * base, promises.y), i, n)

    return Block("promise", ["promise_keep_scale"], np.ones(1), loglik, [promises.n])


@dataclass(frozen=True)
class _Exposure:
    """A spell's contact excitation per account and draw.

    Talks (and voicemails) excite surely: their excitation is summed by jump group.
    A message excites only if it is read, which the logs do not show: each message
    row keeps its own read probability and excitation, and the likelihood mixes
    over read / not read row by row (exact, as the reads are independent).
    """

    at_risk: np.ndarray  # [G, n, K] talks' excitation summed over the at-risk days
    on_event: np.ndarray  # [G, n, K] talks' excitation on the event day
    per_group: np.ndarray  # int [G] effective contacts of each jump group
    message_account: np.ndarray  # int [M] account of each message row
    message_group: np.ndarray  # int [M] jump group of each message row
    message_summing: csr_matrix  # [n, M] sums message rows by account
    read: np.ndarray  # [M, K] P(read)
    strength: np.ndarray  # [M, K] the row's excitation per unit jump if read
    summed: np.ndarray  # [M] decay × DPD factor summed over the at-risk days after it
    on_day: np.ndarray  # [M] decay × DPD factor on the spell's last day
    link_base: np.ndarray  # [M, K] P(pay by the link | read) / link_payment
    link_paid: np.ndarray  # bool [M] the message's link payment ended the spell


def _exposure(
    scenario: Scenario, tables: FitTables, remap: np.ndarray, t: Traits, n: int
) -> _Exposure:
    b = scenario.behaviour
    sp = tables.spells
    ev = _subset(sp.contacts, remap)
    keep = remap[sp.contacts.account] >= 0
    day = sp.day[keep]
    rows = np.flatnonzero(remap >= 0)
    dpd0, days = sp.dpd0[rows], sp.days[rows]
    i, ch, g = ev.account, ev.channel.astype(np.int64), ev.y.astype(np.int64)
    k_draws = t.ability.shape[1]
    strength = (
        t.willingness[i] * t.response[i, :, ch] / (1.0 + b.fatigue_effect * ev.fatigue)[:, None]
    )
    message = np.isin(ch, [int(c) for c in MESSAGE_CHANNELS]) & (
        g != EXCITING_GROUPS.index("voicemail")
    )
    hour = np.clip(ev.hour, 0, 23)
    hour_factor = (
        _population_hour(scenario, b.answer_hour_ratio, t.mean_personal)[hour][:, None]
        * (t.personal[t.best_hour[i], hour[:, None]])
    )
    letter = (ch == Channel.LETTER)[:, None]  # read on arrival, untimed, no fatigue effect
    timed = np.where(letter | (ev.hour < 0)[:, None], 0.8, hour_factor)
    read = t.open_rate[i] * (0.5 + 0.5 * timed)
    read = np.where(letter, read, read / (1.0 + b.messages.fatigue_open * ev.fatigue)[:, None])
    read = np.clip(read, 0.0, 1.0)
    tau, s_c = b.excitation_decay_days, b.contact_dpd_scale_days
    ratio = math.exp(-1.0 / tau - 1.0 / s_c)
    left = np.maximum(days[i] - day, 0)
    summed = np.exp(-(dpd0[i] + day) / s_c) * (1.0 - ratio**left) / (1.0 - ratio)
    last = days[i]
    on_day = np.where(day <= last, np.exp(-(last - day) / tau - (dpd0[i] + last) / s_c), 0.0)
    groups = len(EXCITING_GROUPS)
    at_risk = np.zeros((groups, n, k_draws))
    on_event = np.zeros((groups, n, k_draws))
    for grp in range(groups):
        sel = (g == grp) & ~message
        at_risk[grp] = _per_account(strength[sel] * summed[sel, None], i[sel], n)
        on_event[grp] = _per_account(strength[sel] * on_day[sel, None], i[sel], n)
    return _Exposure(
        at_risk=at_risk,
        on_event=on_event,
        per_group=np.bincount(g, minlength=groups),
        message_account=i[message],
        message_group=g[message],
        message_summing=_summing_matrix(i[message], n),
        read=read[message],
        strength=strength[message],
        summed=summed[message],
        on_day=on_day[message],
        link_base=(t.ability[i] * t.willingness[i] * t.response[i, :, ch])[message],
        link_paid=sp.link[keep][message],
    )


def _read_mixture(read: np.ndarray, log_if_read: np.ndarray) -> np.ndarray:
    """log(1 - r + r e^L) for P(read) r in [0, 1] and L = log-survival if read (stable)."""
    with np.errstate(divide="ignore"):
        return np.logaddexp(np.log1p(-read), np.log(read) + log_if_read)


def _hazard_block(
    scenario: Scenario, tables: FitTables, remap: np.ndarray, t: Traits, n: int
) -> Block:
    b = scenario.behaviour
    rows = np.flatnonzero(remap >= 0)
    sp = tables.spells
    dpd0, days, event = sp.dpd0[rows], sp.days[rows].astype(float), sp.event[rows]
    expo = _exposure(scenario, tables, remap, t, n)
    ability, h0 = t.ability, t.self_cure_hazard
    message_ability = ability[expo.message_account]
    # the event day matters only for accounts whose spell ended with a hazard payment
    on_event_day = np.flatnonzero(event[expo.message_account])
    event_summing = _summing_matrix(expo.message_account[on_event_day], n)
    summed_to_event = (expo.summed + expo.on_day)[on_event_day, None]

    def loglik(x: np.ndarray) -> np.ndarray:
        scale, s = x[0], x[1]
        jumps = x[2:-1]
        own_sum = np.exp(-dpd0 / s) * -np.expm1(-days / s) / -math.expm1(-1.0 / s)
        own_day = np.exp(-(dpd0 + days) / s)
        at_risk = ability * (scale * h0 * own_sum[:, None] + np.tensordot(jumps, expo.at_risk, 1))
        today = ability * (scale * h0 * own_day[:, None] + np.tensordot(jumps, expo.on_event, 1))
        # a message not paid through its link was read with P r(1 - q) / (1 - r q)
        pay_if_read = np.clip(x[-1] * expo.link_base, 0.0, 1.0)
        read = expo.read * (1.0 - pay_if_read) / np.maximum(1.0 - expo.read * pay_if_read, _EPS)
        excite = message_ability * jumps[expo.message_group][:, None] * expo.strength
        survive_rows = _read_mixture(read, -excite * expo.summed[:, None])
        day_rows = _read_mixture(read[on_event_day], -excite[on_event_day] * summed_to_event)
        day_rows -= survive_rows[on_event_day]
        pay_today = np.minimum(-today + np.asarray(event_summing @ day_rows), -_EPS)
        link = _bernoulli(pay_if_read * expo.read, expo.link_paid)
        messages = np.asarray(expo.message_summing @ (survive_rows + link))
        return -at_risk + messages + np.where(event[:, None], np.log(-np.expm1(pay_today)), 0.0)

    jump = [b.voicemail_jump if g == "voicemail" else b.jump.get(g, 0.0) for g in EXCITING_GROUPS]
    names = ["self_cure_scale", "behaviour.hazard_dpd_scale_days"] + [
        "behaviour.voicemail_jump" if g == "voicemail" else f"behaviour.jump.{g}"
        for g in EXCITING_GROUPS
    ]
    events = [int(event.sum())] * 2 + expo.per_group.tolist() + [int(expo.link_paid.sum())]
    start = np.maximum(np.array([1.0, b.hazard_dpd_scale_days, *jump, b.link_payment]), 1e-4)
    return Block("hazard", [*names, "behaviour.link_payment"], start, loglik, events)


def _blocks(
    scenario: Scenario, tables: FitTables, remap: np.ndarray, t: Traits, n: int
) -> list[Block]:
    """The four likelihood blocks of the accounts in ``remap`` under traits ``t``."""
    return [
        _answer_block(scenario, _subset(tables.calls, remap), _subset(tables.visits, remap), t, n),
        _conversation_block(scenario, _subset(tables.conversations, remap), t, n),
        _promise_block(_subset(tables.promises, remap), t, n),
        _hazard_block(scenario, tables, remap, t, n),
    ]


# --------------------------------------------------------------------------- optimise
def _joint(blocks: list[Block]) -> tuple[np.ndarray, list[np.ndarray]]:
    parts = [blk.loglik(blk.value) for blk in blocks]
    return sum(parts), parts  # type: ignore[return-value]


def _free_loglik(
    block: Block, offset: np.ndarray, free: np.ndarray
) -> Callable[[np.ndarray], float]:
    """The joint log-likelihood as a function of the block's free parameters (log scale)."""
    x0 = np.log(block.value)

    def loglik(z: np.ndarray) -> float:
        x = x0.copy()
        x[free] = z
        return simulated_loglik(offset + block.loglik(np.exp(x)))

    return loglik


def simulated_loglik(per_draw: np.ndarray) -> float:
    """Sum over accounts of the log of the mean likelihood over draws, bias-corrected.

    The log of a K-draw mean underestimates the log-likelihood by about
    Var(mean) / (2 mean^2); the estimate of that term from the draws themselves,
    ``sum(w^2) / (2 sum(w)^2) - 1 / (2K)``, is added back, so the bias falls from
    O(1/K) to O(1/K^2) per account.  Terms that depend on K only (``-log K`` and
    ``-1 / (2K)`` per account) are left out: they move no estimate.

    Args:
        per_draw: [n, K] log-likelihood of each account under each draw.
    """
    top = per_draw.max(axis=1, keepdims=True)
    w = np.exp(per_draw - top)
    first, second = w.sum(axis=1), np.einsum("ij,ij->i", w, w)
    return float((np.log(first) + top[:, 0] + 0.5 * second / first**2).sum())


def _log_scale_se(value: np.ndarray, hessian: np.ndarray) -> np.ndarray:
    """Standard errors of ``value`` from the Hessian in log(value) (delta method)."""
    try:
        var = np.diag(np.linalg.inv(-hessian))
    except np.linalg.LinAlgError:
        var = np.full(value.shape[0], np.nan)
    return value * np.sqrt(np.where(var > 0, var, np.nan))


def _fit_block(block: Block, offset: np.ndarray, free: np.ndarray) -> None:
    """Maximise the joint likelihood over the block's free parameters (log scale)."""
    if not free.any():
        return
    loglik = _free_loglik(block, offset, free)
    result = minimize(
        lambda z: -loglik(z),
        np.log(block.value[free]),
        method="L-BFGS-B",
        bounds=[(v - BOUND_LOG, v + BOUND_LOG) for v in np.log(block.start[free])],
    )
    x = np.log(block.value)
    x[free] = result.x
    block.value = np.exp(x)


def _standard_errors(block: Block, offset: np.ndarray, free: np.ndarray) -> None:
    if not free.any():
        return
    hessian = approx_hess3(np.log(block.value[free]), _free_loglik(block, offset, free))
    se = np.full(block.value.shape[0], np.nan)
    se[free] = _log_scale_se(block.value[free], hessian)
    block.se = se


def _maximise(blocks: list[Block], rounds: int, on_round: Callable[[int], None]) -> None:
    frees = [np.array(blk.events) >= MIN_EVENTS for blk in blocks]
    for r in range(rounds):
        for b, blk in enumerate(blocks):
            total, parts = _joint(blocks)
            _fit_block(blk, total - parts[b], frees[b])
        on_round(r)
    for b, blk in enumerate(blocks):
        total, parts = _joint(blocks)
        _standard_errors(blk, total - parts[b], frees[b])


# --------------------------------------------------------------------------- direct
def _proportion(hits: int, total: int) -> tuple[float, float]:
    p = hits / max(total, 1)
    return p, math.sqrt(max(p * (1.0 - p), 0.0) / max(total, 1))


def _scalar_mle(
    loglik: Callable[[np.ndarray], float], start: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Maximise a small likelihood on the log scale; (values, standard errors)."""
    result = minimize(
        lambda z: -loglik(np.exp(z)),
        np.log(start),
        method="L-BFGS-B",
        bounds=[(v - 8.0, v + 8.0) for v in np.log(start)],
    )
    hessian = approx_hess3(result.x, lambda z: loglik(np.exp(z)))
    value = np.exp(result.x)
    at_bound = np.abs(result.x - np.log(start)) > 8.0 - 0.01
    return value, np.where(at_bound, np.nan, _log_scale_se(value, hessian))


def _binary_loglik(p: np.ndarray, y: np.ndarray) -> float:
    return float(_bernoulli(p[:, None], y).sum())


def _direct(scenario: Scenario, tables: FitTables) -> list[FittedValue]:
    b = scenario.behaviour
    out: list[FittedValue] = []
    wrong, answered = tables.wrong_party
    if answered >= MIN_EVENTS:
        p, se = _proportion(wrong, answered)
        out.append(
            FittedValue(
                path="behaviour.wrong_party_rate",
                value=p,
                se=se,
                n=answered,
                base=b.wrong_party_rate,
                method="binomial share of answered calls",
            )
        )
    m = tables.messages
    for channel in MESSAGE_CHANNELS:
        sel = m.channel == channel
        if sel.sum() >= MIN_EVENTS:
            name = CHANNELS[channel]
            p, se = _proportion(int((m.y[sel] == 0).sum()), int(sel.sum()))
            out.append(
                FittedValue(
                    path=f"behaviour.not_delivered_rate.{name}",
                    value=p,
                    se=se,
                    n=int(sel.sum()),
                    base=b.not_delivered_rate.get(name, 0.0),
                    method="binomial share of messages bounced",
                )
            )
    out.extend(_message_complaints(scenario, tables))
    return out


def _capped_loglik(x: np.ndarray, load: np.ndarray, y: np.ndarray) -> float:
    return _binary_loglik(np.minimum(x[0] * load, 0.5), y)


def _message_complaints(scenario: Scenario, tables: FitTables) -> list[FittedValue]:
    """Each digital channel's complaint rate per delivered message, fatigue slope at base.

    The slope (``messages.fatigue_risk``) is left at the base value: complaints are
    rare and the slope ran to the search bound on half of the identification runs.
    """
    risk = scenario.behaviour.messages
    m = tables.messages
    digital = [c for c in MESSAGE_CHANNELS if c != Channel.LETTER]
    delivered = (m.y > 0) & np.isin(m.channel, [int(c) for c in digital])
    channel = np.searchsorted(np.array([int(c) for c in digital]), m.channel[delivered])
    load = 1.0 + risk.fatigue_risk * m.fatigue[delivered]
    y = (m.y[delivered] == 2).astype(np.int8)
    counts = np.bincount(channel, minlength=len(digital))
    complaints = np.bincount(channel, weights=y, minlength=len(digital))
    out = []
    for k, code in enumerate(digital):
        if counts[k] < MIN_EVENTS or complaints[k] == 0:
            continue
        name = CHANNELS[code]
        rows = channel == k
        start = np.array([max(risk.complaint.get(name, 1e-4), 1e-5)])
        value, se = _scalar_mle(partial(_capped_loglik, load=load[rows], y=y[rows]), start)
        if np.isfinite(se[0]):
            out.append(
                FittedValue(
                    path=f"behaviour.messages.complaint.{name}",
                    value=float(value[0]),
                    se=float(se[0]),
                    n=int(counts[k]),
                    base=risk.complaint.get(name, 0.0),
                    method="binomial likelihood of complaints per delivered message",
                )
            )
    return out


# --------------------------------------------------------------------------- report
SEGMENT_SCALES: dict[str, str] = {
    "answer_scale": "answer_rate",
    "complaint_scale": "complaint_rate",
    "promise_keep_scale": "promise_keep",
    "self_cure_scale": "self_cure_hazard",
}
"""Block scale label -> the segment attribute it multiplies."""

SEGMENT_CAPS = {"answer_rate": 1.0, "promise_keep": 0.99}
"""Highest value a scaled segment attribute may take."""

UNIDENTIFIED: dict[str, str] = {
    "behaviour.segments.*.share": "segment membership is never observed",
    "behaviour.segment_shares_by_bucket": "segment membership is never observed",
    "behaviour.segments.*.ability": "latent; enters every block with the fitted levels",
    "behaviour.segments.*.willingness": "latent; enters every block with the fitted levels",
    "behaviour.segments.*.channel_response": "relative channel responses stay the base's",
    "behaviour.segments.*.open_rate": "reads are not used: simulated logs never hold `read`",
    "behaviour.segments.*.plan_keep": "plan instalments are not followed in this version",
    "behaviour.partial_payment_fraction": "payment amounts are not modelled in the fit",
    "behaviour.messages.opt_out": "opt-outs are not contact outcomes in the logs",
    "behaviour.messages.fatigue_open": "reads are not in the logs",
    "behaviour.messages.fatigue_risk": "complaints per message are too rare to fit the slope",
    "behaviour.fatigue_answer": "held at the base value in the answer likelihood",
    "behaviour.fatigue_effect": "held at the base value (confounded with the jumps)",
    "behaviour.fatigue_decay_days": "time constant held at the base value",
    "behaviour.excitation_decay_days": "time constant held at the base value",
    "behaviour.contact_dpd_scale_days": "held at the base value (confounded with the jumps)",
    "behaviour.redefault_within_180d": "needs account status after a cure (later snapshots)",
    "behaviour.personal_hour_weight": "each borrower's best hour is never observed",
    "legal": "court outcomes take longer than a log window",
    "treatments": "conversations with an offer or a variant are left out",
    "portfolio": "the synthetic portfolio generator is not fitted (the logs hold the real one)",
}
"""Scenario paths a fit never estimates, with the reason (the base value is kept)."""


def _scale_values(
    scenario: Scenario, label: str, value: float, se: float, n: int
) -> list[FittedValue]:
    attribute = SEGMENT_SCALES[label]
    cap = SEGMENT_CAPS.get(attribute, math.inf)
    out = []
    for seg in scenario.behaviour.segments:
        base = float(getattr(seg, attribute))
        out.append(
            FittedValue(
                path=f"behaviour.segments.{seg.name}.{attribute}",
                value=min(base * value, cap),
                se=base * se,
                n=n,
                base=base,
                method="simulated likelihood: common factor on the segments",
                group=label,
            )
        )
    return out


def _block_values(
    scenario: Scenario, blocks: list[Block]
) -> tuple[list[FittedValue], dict[str, str]]:
    fitted: list[FittedValue] = []
    skipped: dict[str, str] = {}
    for blk in blocks:
        offset = np.array([OFFSETS.get(name, 0.0) for name in blk.names])
        for name, value, se, n, start, shift in zip(
            blk.names, blk.value, blk.se, blk.events, blk.start, offset, strict=True
        ):
            if n < MIN_EVENTS or not np.isfinite(se):
                skipped[name] = f"too few events ({n} < {MIN_EVENTS}) or a flat likelihood"
                continue
            if abs(math.log(value / start)) > BOUND_LOG - 0.01:
                skipped[name] = (
                    f"the estimate ran to the search bound ({value:.3g}): not identified"
                )
                continue
            if name in SEGMENT_SCALES:
                fitted.extend(_scale_values(scenario, name, float(value), float(se), n))
                continue
            fitted.append(
                FittedValue(
                    path=name,
                    value=float(value + shift),
                    se=float(se),
                    n=n,
                    base=float(start + shift),
                    method=f"simulated likelihood ({blk.name})",
                )
            )
    return fitted, skipped


def _set(data: dict, path: str, value: float) -> None:
    node: object = data
    *parents, leaf = path.split(".")
    for part in parents:
        if isinstance(node, list):
            node = next(item for item in node if item.get("name") == part)
        else:
            assert isinstance(node, dict)
            node = node.setdefault(part, {})
    assert isinstance(node, dict)
    node[leaf] = value


def _warnings(logs: Logs) -> list[str]:
    c = logs.contacts
    randomised = int(
        ((c.propensity < 1.0) & np.isfinite(c.propensity)).sum() + (c.holdout == 1).sum()
    )
    notes = [
        "accounts are taken as rested (no fatigue, no contact excitation) at the window start",
        "segment-level numbers move together by one factor per block; their relative levels are "
        "the base scenario's",
    ]
    if randomised == 0:
        notes.append(
            "no randomised contacts (propensity < 1) and no holdouts: the contact effects (jumps) "
            "rest on the model's structure and on the logging policy deciding from what it "
            "observed only; treat them as confounded"
        )
    return notes


@dataclass(frozen=True)
class FitOptions:
    """How a fit runs.

    Attributes:
        seed: seeds the account subset and the latent draws.
        draws: latent draws per account (K).
        max_accounts: accounts used by the simulated likelihood (a random subset beyond).
        rounds: passes over the four blocks.
        burn_in_days: days at the window start kept out of the likelihoods.
    """

    seed: int = 0
    draws: int = DRAWS
    max_accounts: int = MAX_ACCOUNTS
    rounds: int = 2
    burn_in_days: int = 0


def fit_logs(
    logs: Logs,
    base: Scenario,
    options: FitOptions = FitOptions(),
    progress: Callable[[str], None] = lambda _: None,
) -> Scenario:
    """Estimate the borrower model from logs; return the base scenario with the fitted numbers.

    Args:
        logs: validated logs (:func:`collsim.logs.load_logs`).
        base: the scenario whose structure is fitted and whose other numbers are kept.
        options: seed, draws, subset size, rounds, burn-in.
        progress: called with a short message as each step ends.

    Returns:
        A scenario whose ``fit`` report lists every estimate (value, standard
        error, events) and every number the logs cannot identify.
    """
    seeds = np.random.SeedSequence(options.seed).spawn(2)
    tables = fit_tables(logs, base, options.burn_in_days)
    progress(
        f"event tables: {tables.calls.n} calls, {tables.conversations.n} conversations, "
        f"{tables.promises.n} promises, {int(tables.spells.event.sum())} hazard payments"
    )
    n_all = logs.accounts.n
    rows = np.sort(np.random.default_rng(seeds[0]).permutation(n_all)[: options.max_accounts])
    remap = np.full(n_all, -1, dtype=np.int64)
    remap[rows] = np.arange(rows.size)
    traits = _traits(base, logs, rows, np.random.default_rng(seeds[1]), options.draws)
    n = rows.size
    blocks = _blocks(base, tables, remap, traits, n)
    _maximise(blocks, options.rounds, lambda r: progress(f"likelihood round {r + 1} done"))
    fitted, skipped = _block_values(base, blocks)
    fitted = _direct(base, tables) + fitted
    found = {v.path for v in fitted}
    message_risk = [f"behaviour.messages.complaint.{c}" for c in ("sms", "email", "app_push")]
    for path in message_risk:
        if path not in found:
            skipped[path] = "too few complaints, or the estimate ran to the search bound"
    progress(f"{len(fitted)} numbers fitted")
    return _fitted_scenario(base, logs, fitted, {**UNIDENTIFIED, **skipped})


def _fitted_scenario(
    base: Scenario, logs: Logs, fitted: list[FittedValue], unidentified: dict[str, str]
) -> Scenario:
    data = base.model_dump(mode="json")
    for value in fitted:
        _set(data, value.path, value.value)
    start = day_number(logs.window.start)
    last = day_number(logs.window.end) if logs.window.end else start
    data["fit"] = FitReport(
        base=base.name,
        window_start=date_of(start),
        window_end=date_of(last),
        accounts=logs.accounts.n,
        contacts=logs.contacts.m,
        payments=logs.payments.m,
        fitted=fitted,
        unidentified=unidentified,
        warnings=_warnings(logs),
    ).model_dump(mode="json")
    return Scenario.model_validate(data)


def write_fitted(scenario: Scenario, path: Path) -> None:
    """Write a fitted scenario as YAML atomically (temporary file, then rename)."""
    name = path.stem
    dump_yaml(scenario.model_copy(update={"name": name}), path)


def fit_table(scenario: Scenario) -> Table:
    """A rich table of the fitted numbers: path, base, fitted, standard error, events."""
    table = Table(title="fitted numbers")
    for column in ("path", "base", "fitted", "s.e.", "events"):
        table.add_column(column, justify="left" if column == "path" else "right")
    report = scenario.fit
    for v in report.fitted if report else []:
        table.add_row(v.path, f"{v.base:.4g}", f"{v.value:.4g}", f"{v.se:.2g}", f"{v.n:,}")
    return table


def value_at(scenario: Scenario, path: str) -> float:
    """The number at a dotted scenario path (segments addressed by name)."""
    node: object = scenario.model_dump(mode="json")
    for part in path.split("."):
        if isinstance(node, list):
            node = next(item for item in node if item.get("name") == part)
        else:
            assert isinstance(node, dict)
            node = node.get(part, 0.0)
    return float(node)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Coverage:
    """How a fit's intervals cover a known truth (identification checks)."""

    path: str
    true_value: float
    value: float
    se: float

    @property
    def z(self) -> float:
        """(estimate - truth) / standard error."""
        return (self.value - self.true_value) / self.se if self.se > 0 else math.inf

    def inside(self, z_crit: float = 1.96) -> bool:
        """The truth lies in the estimate's two-sided interval."""
        return abs(self.z) <= z_crit


def coverage(fitted: Scenario, truth: Scenario) -> list[Coverage]:
    """Each fitted number against the same path of the scenario that made the logs."""
    report = fitted.fit
    assert report is not None, "not a fitted scenario"
    return [Coverage(v.path, value_at(truth, v.path), v.value, v.se) for v in report.fitted]


def draw_scenario(scenario: Scenario, rng: np.random.Generator) -> Scenario:
    """One draw of a fitted scenario's numbers from their sampling distribution.

    Each fitted number becomes ``value + se * z`` (normal approximation of the
    maximum-likelihood estimate), one ``z`` per number, shared by the numbers of a
    ``group`` (the segment levels one factor moved); a draw is kept positive, and
    probabilities below 1.  A scenario without a fit report is returned as it is.
    """
    report = scenario.fit
    if report is None:
        return scenario
    shared: dict[str, float] = {}
    data = scenario.model_dump(mode="json")
    for v in report.fitted:
        z = shared.setdefault(v.group, float(rng.standard_normal())) if v.group else None
        z = float(rng.standard_normal()) if z is None else z
        lowest = max(v.value * 0.05, OFFSETS.get(v.path, 0.0))
        drawn = max(v.value + v.se * z, lowest)
        if v.value <= 1.0 and _is_probability(v.path):
            drawn = min(drawn, 0.99)
        _set(data, v.path, drawn)
    return Scenario.model_validate(data)


def _is_probability(path: str) -> bool:
    """Paths holding probabilities (capped below 1 when drawn)."""
    leaf = path.rsplit(".", 1)[-1]
    return (
        "jump" not in path
        and leaf not in {"hazard_dpd_scale_days", "answer_hour_ratio"}
        and ("self_cure_hazard" not in path)
    )
