"""The event tables the fit reads from a lender's logs (aggregated with polars).

:func:`fit_tables` turns the three log files (:class:`collsim.logs.Logs`) into what
the likelihoods of :mod:`collsim.research.fit` need, each an array table aligned
with its events:

* **calls** (agent and voice bot) inside the account's hazard spell (below): answered
  or not, local hour, fatigue;
* **visits**: met or not, local hour;
* **messages**: delivered or bounced, complaint, fatigue;
* **conversations** (right-party calls and visits without an offer or variant) inside
  the spell: which of the eight results, fatigue;
* **promises** with a known date: kept or broken;
* **spells**: each account from the window start until its first payment, a
  payment plan, a legal filing, an offer or the window's end, with the effective
  contacts inside, for the repayment hazard.

Calls, conversations and promises are taken inside the spells only: there the
likelihood also covers why the account was still there to be called (it had not
paid), so borrowers who pay quickly are not over-represented among the draws.

Fatigue follows the borrower model: every contact that reaches the borrower
(answered, voicemail, met, delivered) adds 1, decaying by ``exp(-1 / tau)`` each
morning; a contact sees the contacts of earlier days only.  Accounts are assumed
rested (no fatigue, no excitation) at the window start; ``burn_in_days`` keeps the
first days' events out of the likelihoods while they still feed fatigue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from collsim.behaviour import CONVERSATION_RESULTS
from collsim.config import Scenario
from collsim.logs import PAYMENT_CHANNELS, Logs
from collsim.portfolio import day_number
from collsim.timeutil import utc_to_local
from collsim.vocab import CHANNELS, Channel, Outcome

RESULTS: tuple[Outcome, ...] = tuple(Outcome(int(o)) for o in CONVERSATION_RESULTS)
"""Conversation results in the order of the borrower model's probabilities."""

_RESULT_INDEX = np.full(len(Outcome), -1, dtype=np.int8)
_RESULT_INDEX[list(RESULTS)] = np.arange(len(RESULTS))

COMMITMENTS = (Outcome.PROMISE_TO_PAY, Outcome.PAYMENT, Outcome.PAYMENT_PLAN)
"""Conversation results after which payments no longer come from the hazard alone."""

EXCITING_GROUPS: tuple[str, ...] = (*(c for c in CHANNELS if c != "legal"), "voicemail")
"""Jump groups: a right-party call or met visit, a delivered message, a voicemail."""

_GROUP_OF_CHANNEL = np.array(
    [EXCITING_GROUPS.index(c) if c in EXCITING_GROUPS else -1 for c in CHANNELS], dtype=np.int8
)  # by channel code
VOICEMAIL_GROUP = EXCITING_GROUPS.index("voicemail")
MESSAGE_CHANNELS = (Channel.SMS, Channel.EMAIL, Channel.APP_PUSH, Channel.LETTER)
CALL_CHANNELS = (Channel.AGENT_CALL, Channel.VOICE_BOT)
POST_MORNING_LAG_DAYS = 1
"""A letter posted on day d with a delay of D days is read on the morning of d + D + 1.

That is when the simulator's post delivers it: the SimPy timeout falls due exactly at
the start of day d + D, after that morning's post was collected.
"""
_CALLS = [int(c) for c in CALL_CHANNELS]
_TALKS = [*_CALLS, int(Channel.FIELD_VISIT)]  # channels that can reach a conversation
_MESSAGES = [int(c) for c in MESSAGE_CHANNELS]
_OTHER_PAYMENT = PAYMENT_CHANNELS.index("other")
_SELF_SERVICE = PAYMENT_CHANNELS.index("self_service")


@dataclass(frozen=True)
class Events:
    """Rows of one kind of event: each field an array aligned with the rows."""

    account: np.ndarray  # int64 row into the accounts (all tables)
    channel: np.ndarray  # int8 channel code
    hour: np.ndarray  # int64 local hour (-1 untimed)
    fatigue: np.ndarray  # float64 at the time of the contact
    y: np.ndarray  # int8: answered / met / bounced / result index / kept (per table)

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.account.shape[0])


@dataclass(frozen=True)
class Spells:
    """Each account's hazard spell and the effective contacts inside it.

    Attributes:
        dpd0: int64 [N] days past due at the window start.
        days: int64 [N] at-risk days before the spell's last day (no payment on them).
        event: bool [N] the spell ended with a hazard payment on day ``days``.
        contacts: the effective contacts within spells (``y`` = jump group,
            ``fatigue``; ``hour``), with ``day`` their first effective day.
        day: int64 [M] effective day of each contact (day index from the start).
        link: bool [M] a message whose self-service payment link ended the spell.
    """

    dpd0: np.ndarray
    days: np.ndarray
    event: np.ndarray
    contacts: Events
    day: np.ndarray
    link: np.ndarray


@dataclass(frozen=True)
class FitTables:
    """Everything the fit's likelihoods read (see the module doc)."""

    n_accounts: int
    window_days: int
    calls: Events
    visits: Events
    messages: Events
    conversations: Events
    promises: Events
    spells: Spells
    wrong_party: tuple[int, int]  # (wrong-party answers, answered calls)


def _contact_frame(logs: Logs, scenario: Scenario, start: int) -> pl.DataFrame:
    """All contacts with their effective day (letters: on arrival) and reach."""
    c = logs.contacts
    h = c.history
    delay = np.array([scenario.channels[name].delay_days for name in CHANNELS])
    delay = np.where(delay > 0, delay + POST_MORNING_LAG_DAYS, 0)
    outcome = h.outcome.astype(np.int64)
    channel = h.channel.astype(np.int64)
    reached = (
        (outcome != Outcome.NO_ANSWER)
        & (outcome != Outcome.NOT_DELIVERED)
        & (channel != Channel.LEGAL)
    )
    return pl.DataFrame(
        {
            "account": h.account.astype(np.int64),
            "day": h.local_day.astype(np.int64) - start,
            "eff_day": h.local_day.astype(np.int64) - start + delay[channel],
            "hour": np.where(h.local_hour >= 0, h.local_hour, -1).astype(np.int64),
            "channel": channel,
            "outcome": outcome,
            "offer": c.offer.astype(np.int64),
            "variant": c.variant.astype(np.int64),
            "promise_day": np.where(c.promise_day >= 0, c.promise_day - start, -1).astype(np.int64),
            "promise_amount": c.promise_amount,
            "reached": reached,
        }
    ).with_row_index("row")


def _with_fatigue(frame: pl.DataFrame, decay_days: float) -> pl.DataFrame:
    """Add ``fatigue``: the reached contacts before each one, decayed once a morning.

    Contacts are ordered by (effective day, local hour, file order); a letter reaches
    the borrower on the morning it arrives, before that day's calls.
    """
    weight = pl.col("reached").cast(pl.Float64) * (pl.col("eff_day") / decay_days).exp()
    return (
        frame.sort("account", "eff_day", "hour", "row")
        .with_columns(weight.alias("weight"))
        .with_columns(
            (pl.col("weight").cum_sum().over("account") - pl.col("weight")).alias("before")
        )
        .with_columns((pl.col("before") * (-pl.col("eff_day") / decay_days).exp()).alias("fatigue"))
        .drop("weight", "before")
        .sort("row")
    )


def _last_days(last: np.ndarray) -> pl.DataFrame:
    """Each account's spell end as a frame to join on ``account``."""
    return pl.DataFrame({"account": np.arange(last.shape[0], dtype=np.int64), "last": last})


def _events(frame: pl.DataFrame, y: pl.Expr) -> Events:
    picked = frame.select("account", "channel", "hour", "fatigue", y.alias("y"))
    return Events(
        account=picked["account"].to_numpy().astype(np.int64),
        channel=picked["channel"].to_numpy().astype(np.int8),
        hour=picked["hour"].to_numpy().astype(np.int64),
        fatigue=picked["fatigue"].to_numpy().astype(np.float64),
        y=picked["y"].to_numpy().astype(np.int8),
    )


def _payment_frame(logs: Logs, start: int) -> pl.DataFrame:
    p = logs.payments
    day, _ = utc_to_local(
        logs.accounts.timezones, logs.accounts.timezone[p.account], p.timestamp_utc_s
    )
    return pl.DataFrame(
        {
            "account": p.account.astype(np.int64),
            "day": day - start,
            "amount": p.amount,
            "channel": p.channel.astype(np.int64),
        }
    )


def _promises(contacts: pl.DataFrame, kept_payments: pl.DataFrame, last: np.ndarray) -> Events:
    """Promises falling due inside their account's hazard spell, not replaced before the date.

    Inside the spell nothing was paid before the date, so the hazard likelihood covers
    the days the promise was pending.  Kept: a payment on the promised day within 1%
    of the promised amount.
    """
    made = (
        contacts.filter(
            (pl.col("outcome") == int(Outcome.PROMISE_TO_PAY))
            & (pl.col("promise_day") > pl.col("day"))
        )
        .join(_last_days(last), on="account")
        .filter(pl.col("promise_day") <= pl.col("last"))
    )
    later_commitment = contacts.filter(
        pl.col("outcome").is_in([int(o) for o in COMMITMENTS])
    ).select("account", pl.col("day").alias("next_day"))
    replaced = (
        made.join(later_commitment, on="account")
        .filter((pl.col("next_day") > pl.col("day")) & (pl.col("next_day") < pl.col("promise_day")))
        .select("row")
    )
    kept = (
        made.join(
            kept_payments,
            left_on=["account", "promise_day"],
            right_on=["account", "day"],
        )
        .select("row")
        .unique()
        .with_columns(pl.lit(1).alias("kept"))
    )
    valid = made.join(replaced, on="row", how="anti").join(kept, on="row", how="left")
    return _events(valid.with_columns(pl.col("kept").fill_null(0)).sort("row"), pl.col("kept"))


def _promise_payments(contacts: pl.DataFrame, payments: pl.DataFrame) -> pl.DataFrame:
    """Payments keeping a promise: on its date, within 1% of its amount (account, day)."""
    promised = contacts.filter(pl.col("outcome") == int(Outcome.PROMISE_TO_PAY)).select(
        "account", pl.col("promise_day").alias("day"), "promise_amount"
    )
    close = (pl.col("amount") - pl.col("promise_amount")).abs() <= 0.01 * pl.col("promise_amount")
    return (
        payments.join(promised, on=["account", "day"])
        .filter(close)
        .select("account", "day")
        .unique()
    )


def _spell_ends(
    logs: Logs,
    contacts: pl.DataFrame,
    payments: pl.DataFrame,
    kept_payments: pl.DataFrame,
    window_days: int,
    charge_off: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per account: days at risk before the last day, whether a hazard payment, and
    whether a self-service payment, ended the spell on the last day.

    A spell runs until the first payment, a payment plan, a legal filing, a
    conversation carrying an offer, charge-off or the window's end.  Its first payment
    is a hazard payment when it has no triggering contact (channel ``other``) and does
    not keep a promise; promises made inside the spell keep it running.
    """
    n = logs.accounts.n
    dpd0 = logs.accounts.dpd.astype(np.int64)
    end = np.minimum(window_days, np.maximum(charge_off - dpd0, 0))
    stops = (
        contacts.filter(
            (pl.col("outcome") == int(Outcome.PAYMENT_PLAN))
            | (pl.col("channel") == Channel.LEGAL)
            | ((pl.col("offer") > 0) & pl.col("outcome").is_in([int(o) for o in RESULTS]))
        )
        .group_by("account")
        .agg(pl.col("day").min())
    )
    stop = np.full(n, np.iinfo(np.int64).max)
    stop[stops["account"].to_numpy()] = stops["day"].to_numpy()
    kept = kept_payments.with_columns(pl.lit(True).alias("kept"))
    first_pay = (
        payments.join(kept, on=["account", "day"], how="left")
        .filter(pl.col("day") == pl.col("day").min().over("account"))
        .group_by("account")
        .agg(
            pl.col("day").first(),
            ((pl.col("channel") == _OTHER_PAYMENT) & pl.col("kept").is_null())
            .all()
            .alias("hazard"),
            (pl.col("channel") == _SELF_SERVICE).any().alias("link"),
        )
    )
    pay_day = np.full(n, np.iinfo(np.int64).max)
    hazard = np.zeros(n, dtype=bool)
    pay_day[first_pay["account"].to_numpy()] = first_pay["day"].to_numpy()
    hazard[first_pay["account"].to_numpy()] = first_pay["hazard"].to_numpy()
    link = np.zeros(n, dtype=bool)
    link[first_pay["account"].to_numpy()] = first_pay["link"].to_numpy()
    last = np.minimum(np.minimum(end, stop), pay_day)
    ends_here = (pay_day == last) & (pay_day < stop) & (pay_day < end)
    return last, hazard & ends_here, link & ends_here


def _spells(
    logs: Logs, contacts: pl.DataFrame, ends: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> Spells:
    last, event, link_end = ends
    exciting = (
        pl.col("channel").is_in(_TALKS)
        & pl.col("outcome").is_in([int(o) for o in RESULTS] + [int(Outcome.VOICEMAIL)])
    ) | (pl.col("channel").is_in(_MESSAGES) & (pl.col("outcome") == int(Outcome.DELIVERED)))
    inside = (
        contacts.filter(exciting)
        .join(_last_days(last), on="account")
        .filter(pl.col("eff_day") <= pl.col("last"))
        .sort("row")
    )
    group = pl.when(pl.col("outcome") == int(Outcome.VOICEMAIL)).then(VOICEMAIL_GROUP)
    inside = inside.with_columns(
        group.otherwise(
            pl.col("channel").replace_strict(
                list(range(len(_GROUP_OF_CHANNEL))), _GROUP_OF_CHANNEL.tolist()
            )
        ).alias("group")
    )
    eff_day = inside["eff_day"].to_numpy().astype(np.int64)
    account = inside["account"].to_numpy().astype(np.int64)
    is_message = np.isin(inside["channel"].to_numpy(), _MESSAGES)
    return Spells(
        dpd0=logs.accounts.dpd.astype(np.int64),
        days=last,
        event=event,
        contacts=_events(inside, pl.col("group")),
        day=eff_day,
        link=is_message & link_end[account] & (eff_day == last[account]),
    )


def fit_tables(logs: Logs, scenario: Scenario, burn_in_days: int = 0) -> FitTables:
    """Build the fit's event tables from validated logs.

    Args:
        logs: the three log files, read by :func:`collsim.logs.load_logs`.
        scenario: the base scenario (fatigue decay, postal delay, charge-off DPD).
        burn_in_days: events of the window's first days feed fatigue but are left
            out of the per-contact tables (use when accounts were contacted just
            before the window).
    """
    start = day_number(logs.window.start)
    raw = _contact_frame(logs, scenario, start)
    last_day = int(raw["day"].to_numpy().max()) if raw.height else 0
    window_days = (day_number(logs.window.end) - start + 1) if logs.window.end else last_day + 1
    frame = _with_fatigue(raw, scenario.behaviour.fatigue_decay_days)
    payments = _payment_frame(logs, start)
    kept_payments = _promise_payments(frame, payments)
    ends = _spell_ends(
        logs, frame, payments, kept_payments, window_days, scenario.sim.charge_off_dpd
    )
    spells = _spells(logs, frame, ends)
    used = frame.filter(pl.col("day") >= burn_in_days)
    in_spell = used.join(_last_days(spells.days), on="account").filter(
        pl.col("day") <= pl.col("last")
    )
    is_call = pl.col("channel").is_in(_CALLS)
    calls = in_spell.filter(is_call)
    answered = ~pl.col("outcome").is_in([int(Outcome.NO_ANSWER), int(Outcome.VOICEMAIL)])
    answered_calls = used.filter(is_call & answered)
    wrong = int((answered_calls["outcome"] == int(Outcome.WRONG_PARTY)).sum())
    visits = used.filter(pl.col("channel") == Channel.FIELD_VISIT)
    conversations = in_spell.filter(
        pl.col("channel").is_in(_TALKS)
        & pl.col("outcome").is_in([int(o) for o in RESULTS])
        & (pl.col("offer") == 0)
        & (pl.col("variant") == 0)
    )
    result = pl.col("outcome").replace_strict(
        list(range(len(_RESULT_INDEX))), _RESULT_INDEX.tolist()
    )
    return FitTables(
        n_accounts=logs.accounts.n,
        window_days=window_days,
        calls=_events(calls, answered.cast(pl.Int8)),
        visits=_events(visits, (pl.col("outcome") != int(Outcome.NO_ANSWER)).cast(pl.Int8)),
        messages=_events(
            used.filter(pl.col("channel").is_in(_MESSAGES)),
            pl.when(pl.col("outcome") == int(Outcome.NOT_DELIVERED))
            .then(0)
            .when(pl.col("outcome") == int(Outcome.COMPLAINT))
            .then(2)
            .otherwise(1),
        ),
        conversations=_events(conversations, result),
        promises=_promises(used, kept_payments, spells.days),
        spells=spells,
        wrong_party=(wrong, answered_calls.height),
    )
