"""Back-test a scenario against lender logs: replay the logged contacts, compare by week.

``collsim backtest --scenario S --logs DIR`` asks: had the scenario's borrowers been
the lender's, would the contacts the lender actually made have produced the results
the lender actually saw?  The steps:

1. **Start state.**  The logs' account snapshot (``logs.accounts``), with latent
   traits drawn from the scenario's look-alike borrowers
   (:func:`collsim.sim.impute.matched_draws`), one draw per replication.  The
   scenario's ``sim.start_date``/``sim.days`` are set from the log window, so that
   simulated day d is logged local day d; it is scaled to the snapshot's size.
2. **Replay.**  :class:`ReplayPolicy` plans, each day, each account's logged contact
   (channel, local hour slot, offer, variant).  A plan has one action per
   account-day, so when the logs hold several contacts of an account on a day, the
   *first* (earliest timestamp) is replayed; the simulator makes its own same-day
   redials of an unanswered agent call, as the lender's dialler did.  The
   simulator's gate refuses what it would not allow (an account already cured in
   simulation, a contact rule, a budget): these are counted as refused replays.  An
   account the logs show cured (so the lender stopped working it) but still owing in
   simulation gets the day's logged action of a look-alike still owing in the logs
   (*substitution*, see :class:`ReplayPolicy`), else an open-loop replay starves it.
3. **Compare.**  :func:`weekly_metrics` computes, from a :class:`~collsim.logs.Logs`,
   the metrics of :data:`METRICS` per week of the window.  The actual values come
   from the lender logs and the simulated ones from each replication's own logs
   (:func:`collsim.sim.logs.simulated_logs`): the same function on the same format.
   A metric-week fails when the actual lies outside the simulated band
   (:func:`compare`).

All randomness comes from one :class:`numpy.random.SeedSequence` (through
:class:`collsim.rng.RunRandom`) split into named streams: ``backtest.latent`` for
the latent draws and ``backtest.replication.<k>`` for replication k's run seed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from collsim.config import Scenario
from collsim.ledger import EVENT
from collsim.logs import Logs
from collsim.plan import Plan, Snapshot
from collsim.portfolio import Latent, day_number
from collsim.rng import RunRandom
from collsim.sim.engine import Simulation
from collsim.sim.impute import POOL_ACCOUNTS, matched_draws
from collsim.sim.logs import LogRecorder, simulated_logs
from collsim.timeutil import utc_to_local
from collsim.vocab import (
    BUCKET_LOWER_DPD,
    IS_CONVERSATION,
    IS_TELEPHONE,
    IS_TIMED,
    Outcome,
    bucket_of,
)

METRICS: tuple[str, ...] = ("cure_rate", "roll_rate", "rpc_rate", "ptp_rate", "cash_collected")
"""The weekly metrics, in report order."""

METRIC_MEANINGS: dict[str, str] = {
    "cure_rate": "share of accounts owing at the start whose payments since the start "
    "reach their amount due at the start (cumulative to the week's end)",
    "roll_rate": "share of accounts owing at the start whose DPD (start DPD + days "
    "elapsed) reached the next bucket boundary (1, 31, 61, 91 or 181) before they were "
    "cured (cumulative to the week's end)",
    "rpc_rate": "right-party conversations per telephone attempt (agent call, voice "
    "bot) in the week",
    "ptp_rate": "promises to pay per telephone right-party conversation in the week",
    "cash_collected": "sum of payments received in the week, in the portfolio currency",
}
"""What each metric of :data:`METRICS` measures (docs/strategy_teams.md)."""

DAYS_PER_WEEK = 7
CENTS = 100
"""Money is summed in whole cents (int64): exact, so the sums do not depend on the
order polars adds rows in (its group-bys run on several threads)."""

Z_90 = 1.6448536269514722
"""Standard-normal quantile of 0.95: a two-sided 90% interval, like the 5–95% band."""

BAND_QUANTILES = (0.05, 0.95)
"""The empirical quantiles of the replications that bound the simulated band."""

ROLL_BOUNDARIES_DPD = BUCKET_LOWER_DPD[1:]
"""DPD at which an unpaid account enters a worse bucket (1-30, 31-60, ..., charged off)."""

REPLAY_POLICY_ID = "replay"
"""The ``policy_id`` of :class:`ReplayPolicy` (research wing; not in the core registry)."""


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class BacktestOptions:
    """Settings of a back-test.

    Attributes:
        replications: simulated replications (latent draw k and run seed k each).
        seed: the back-test's seed (one SeedSequence, named streams).
        tolerance: relative widening of the band (share of the simulated median).
        pool_accounts: synthetic accounts the latent traits are drawn from.
        substitute: substituted contacts for accounts cured in the logs only
            (:class:`ReplayPolicy`); False replays the logged contacts alone.
    """

    replications: int = 5
    seed: int = 0
    tolerance: float = 0.10
    pool_accounts: int = POOL_ACCOUNTS
    substitute: bool = True

    def __post_init__(self) -> None:
        """Refuse settings that cannot make a band."""
        if self.replications < 2:
            raise ValueError(f"--replications must be >= 2, got {self.replications}")
        if not 0 <= self.tolerance < 10:
            raise ValueError(f"--tolerance must be in [0, 10), got {self.tolerance}")
        if self.seed < 0:
            raise ValueError(f"--seed must be >= 0, got {self.seed}")


@dataclass(frozen=True)
class Period:
    """The local days compared: ``days`` days from ``first_day`` (a day number)."""

    first_day: int
    days: int

    @property
    def last_day(self) -> int:
        """Day number of the last day compared."""
        return self.first_day + self.days - 1

    @property
    def weeks(self) -> int:
        """Number of weeks (the last one may be short)."""
        return -(-self.days // DAYS_PER_WEEK)

    @property
    def start(self) -> dt.date:
        """The first calendar day."""
        return dt.date(1970, 1, 1) + dt.timedelta(days=self.first_day)


def log_period(logs: Logs, end: dt.date | None = None) -> Period:
    """The period to compare: the window's start to ``end`` (default: the window's end).

    Without an end anywhere, the last local day of any logged contact or payment.
    """
    first = day_number(logs.window.start)
    last_date = end or logs.window.end
    last = day_number(last_date) if last_date is not None else _last_logged_day(logs, first)
    if last < first:
        raise ValueError(f"--end {last_date} is before the window start {logs.window.start}")
    return Period(first, last - first + 1)


def _last_logged_day(logs: Logs, first_day: int) -> int:
    days = np.r_[logs.contacts.history.local_day, payment_local_days(logs), first_day]
    return int(days.max())


def payment_local_days(logs: Logs) -> np.ndarray:
    """int64 [M]: the local day number of each payment in its account's zone."""
    accounts, payments = logs.accounts, logs.payments
    zone = accounts.timezone[payments.account]
    day, _ = utc_to_local(accounts.timezones, zone, payments.timestamp_utc_s)
    return day


# --------------------------------------------------------------------------- metrics
def _cents(amount: np.ndarray) -> np.ndarray:
    """int64: currency amounts in whole cents."""
    return np.rint(np.asarray(amount, dtype=np.float64) * CENTS).astype(np.int64)


def _frames(logs: Logs, period: Period) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(accounts, contacts, payments) as polars frames, days relative to the period."""
    a, h = logs.accounts, logs.contacts.history
    accounts = pl.DataFrame(
        {"account": np.arange(a.n), "due": _cents(a.amount_due), "dpd": a.dpd.astype(np.int64)}
    )
    contacts = pl.DataFrame(
        {
            "day": h.local_day - period.first_day,
            "phone": IS_TELEPHONE[h.channel],
            "outcome": h.outcome.astype(np.int64),
        }
    )
    payments = pl.DataFrame(
        {
            "account": logs.payments.account,
            "day": payment_local_days(logs) - period.first_day,
            "cents": _cents(logs.payments.amount),
        }
    )
    inside = (pl.col("day") >= 0) & (pl.col("day") < period.days)
    return accounts, contacts.filter(inside), payments.filter(inside)


def _weeks(period: Period) -> pl.DataFrame:
    return pl.DataFrame({"week": np.arange(period.weeks, dtype=np.int64)})


def _cumulative_share(
    days: pl.Series, weeks: pl.DataFrame, denominator: int, metric: str
) -> pl.DataFrame:
    """Share of ``denominator`` whose event day is on or before each week's end."""
    counts = pl.DataFrame({"week": days // DAYS_PER_WEEK}).group_by("week").len()
    joined = weeks.join(counts, on="week", how="left").sort("week")
    joined = joined.with_columns(pl.col("len").fill_null(0))
    share = (pl.col("len").cum_sum() / max(denominator, 1)).cast(pl.Float64)
    return joined.select(
        "week",
        pl.lit(metric).alias("metric"),
        share.alias("value"),
        pl.lit(float(denominator)).alias("denominator"),
        _binomial_sd(share, pl.lit(float(denominator))).alias("sampling_sd"),
    )


def _binomial_sd(share: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """Binomial standard error of a share of ``denominator`` (null when it is 0)."""
    p = share.clip(0.0, 1.0)
    return pl.when(denominator > 0).then((p * (1.0 - p) / denominator).sqrt()).otherwise(None)


def _cure_days(owed: pl.DataFrame, payments: pl.DataFrame) -> pl.DataFrame:
    """``account``, ``cure_day``: the day each owing account's payments reached its due."""
    paid = payments.sort(["account", "day"], maintain_order=True).with_columns(
        paid=pl.col("cents").cum_sum().over("account")
    )
    return (
        paid.join(owed, on="account")
        .filter(pl.col("paid") >= pl.col("due"))
        .group_by("account")
        .agg(cure_day=pl.col("day").min())
    )


def logged_cure_days(logs: Logs, period: Period) -> np.ndarray:
    """int64 [N]: the period day each account cured in the logs (``period.days`` if never).

    Cured as in the ``cure_rate`` metric: the account owed at the start and its
    payments since the start reached its amount due at the start.
    """
    accounts, _, payments = _frames(logs, period)
    cured = _cure_days(accounts.filter(pl.col("due") > 0), payments)
    out = np.full(logs.accounts.n, period.days, dtype=np.int64)
    out[cured["account"].to_numpy()] = cured["cure_day"].to_numpy()
    return out


def _cure_and_roll(
    accounts: pl.DataFrame, payments: pl.DataFrame, weeks: pl.DataFrame, period: Period
) -> list[pl.DataFrame]:
    """Weekly cumulative cure and roll rates of the accounts owing at the start."""
    owed = accounts.filter(pl.col("due") > 0)
    cured = _cure_days(owed, payments)
    boundary = ROLL_BOUNDARIES_DPD[
        np.minimum(np.searchsorted(ROLL_BOUNDARIES_DPD, owed["dpd"].to_numpy(), "right"), 4)
    ]
    owed = owed.with_columns(roll_day=pl.Series(boundary) - pl.col("dpd"))
    owed = owed.join(cured, on="account", how="left")
    rolled = owed.filter(
        (pl.col("roll_day") < period.days)
        & (pl.col("dpd") < ROLL_BOUNDARIES_DPD[-1])
        & (pl.col("cure_day").is_null() | (pl.col("cure_day") >= pl.col("roll_day")))
    )
    return [
        _cumulative_share(cured["cure_day"], weeks, owed.height, "cure_rate"),
        _cumulative_share(rolled["roll_day"], weeks, owed.height, "roll_rate"),
    ]


def _contact_rates(contacts: pl.DataFrame, weeks: pl.DataFrame) -> list[pl.DataFrame]:
    """Weekly RPC rate (per telephone attempt) and PTP rate (per RPC)."""
    rpc = pl.col("outcome").is_in(np.flatnonzero(IS_CONVERSATION).tolist())
    counts = (
        contacts.filter(pl.col("phone"))
        .with_columns(week=pl.col("day") // DAYS_PER_WEEK)
        .group_by("week")
        .agg(
            attempts=pl.len().cast(pl.Float64),
            rpc=rpc.sum().cast(pl.Float64),
            ptp=(pl.col("outcome") == int(Outcome.PROMISE_TO_PAY)).sum().cast(pl.Float64),
        )
    )
    joined = weeks.join(counts, on="week", how="left").sort("week")
    joined = joined.with_columns(pl.col("attempts", "rpc", "ptp").fill_null(0.0))

    def rate(metric: str, numerator: str, denominator: str) -> pl.DataFrame:
        den = pl.col(denominator)
        share = pl.when(den > 0).then(pl.col(numerator) / den).otherwise(None)
        return joined.select(
            "week",
            pl.lit(metric).alias("metric"),
            share.alias("value"),
            den.alias("denominator"),
            _binomial_sd(share, den).alias("sampling_sd"),
        )

    return [rate("rpc_rate", "rpc", "attempts"), rate("ptp_rate", "ptp", "rpc")]


def _cash(payments: pl.DataFrame, weeks: pl.DataFrame, n_accounts: int) -> pl.DataFrame:
    """Weekly sum of payments, with the sampling sd of a sum over independent accounts.

    The sd is ``sqrt(sum x^2 - (sum x)^2 / N)`` over the N accounts' weekly amounts x
    (zero for an account that paid nothing): ``sqrt(N)`` times their standard deviation,
    rounded to the cent (its float sum of squares may differ in the last bits from one
    run to the next).
    """
    per_account = (
        payments.with_columns(week=pl.col("day") // DAYS_PER_WEEK)
        .group_by("week", "account")
        .agg(x=pl.col("cents").sum())
        .sort("week", "account")
    )
    sums = per_account.group_by("week").agg(
        cents=pl.col("x").sum(), square=(pl.col("x").cast(pl.Float64) ** 2).sum()
    )
    total = pl.col("cents").cast(pl.Float64)
    variance = pl.col("square") - total**2 / max(n_accounts, 1)
    return (
        weeks.join(sums, on="week", how="left")
        .sort("week")
        .with_columns(pl.col("cents").fill_null(0), pl.col("square").fill_null(0.0))
        .select(
            "week",
            pl.lit("cash_collected").alias("metric"),
            (total / CENTS).alias("value"),
            pl.lit(None, dtype=pl.Float64).alias("denominator"),
            (variance.clip(0.0).sqrt() / CENTS).round(2).alias("sampling_sd"),
        )
    )


def weekly_metrics(logs: Logs, period: Period) -> pl.DataFrame:
    """The :data:`METRICS` of each week of ``period``, computed from lender logs.

    The one function both sides of a back-test go through: the lender's logs and each
    replication's simulated logs.  Week w covers days ``7w .. 7w + 6`` of the period
    (the last week may be short); rows outside the period are ignored.

    Returns:
        columns ``week`` (0-based), ``metric``, ``value`` (null when the denominator
        is 0), ``denominator`` (the count a rate is a share of; null for cash) and
        ``sampling_sd`` (the value's sampling standard error: binomial for a rate,
        ``sqrt(N)`` × the sd of the accounts' weekly amounts for cash), ordered by
        metric (as in :data:`METRICS`) then week.
    """
    accounts, contacts, payments = _frames(logs, period)
    weeks = _weeks(period)
    parts = [
        *_cure_and_roll(accounts, payments, weeks, period),
        *_contact_rates(contacts, weeks),
        _cash(payments, weeks, logs.accounts.n),
    ]
    return pl.concat(parts, how="vertical_relaxed")


# --------------------------------------------------------------------------- replay
@dataclass(frozen=True)
class ReplaySchedule:
    """The logged contacts to replay: the first contact of each account-day, by day.

    Attributes:
        first_day: day number of the period's first day.
        day: int64 [P] local day number, sorted.
        account: int64 [P] account row.
        channel: int64 [P] channel code.
        hour: int64 [P] local hour of the logged contact.
        offer: int8 [P] offer code.
        variant: int8 [P] variant code.
        cure_day: int64 [N] period day each account cured in the logs (see
            :func:`logged_cure_days`).
        bucket: int64 [N] DPD bucket of each account at the start.
        logged: contacts logged in the period (all, not only the first of each day).
    """

    first_day: int
    day: np.ndarray
    account: np.ndarray
    channel: np.ndarray
    hour: np.ndarray
    offer: np.ndarray
    variant: np.ndarray
    cure_day: np.ndarray
    bucket: np.ndarray
    logged: int

    @property
    def planned(self) -> int:
        """Account-days with a logged contact to replay."""
        return int(self.day.shape[0])

    @classmethod
    def from_logs(cls, logs: Logs, period: Period) -> ReplaySchedule:
        """The first logged contact of each account-day in ``period``.

        Contacts are sorted by (account, timestamp), so the first row of each
        (account, day) is the earliest contact of that account-day.
        """
        c = logs.contacts
        h = c.history
        day = h.local_day
        inside = np.flatnonzero((day >= period.first_day) & (day <= period.last_day))
        key = (h.local_day[inside] - period.first_day) * logs.accounts.n + h.account[inside]
        _, first = np.unique(key, return_index=True)  # sorted by day, then account
        rows = inside[first]
        return cls(
            first_day=period.first_day,
            day=h.local_day[rows].astype(np.int64),
            account=h.account[rows].astype(np.int64),
            channel=h.channel[rows].astype(np.int64),
            hour=h.local_hour[rows].astype(np.int64),
            offer=c.offer[rows].astype(np.int8),
            variant=c.variant[rows].astype(np.int8),
            cure_day=logged_cure_days(logs, period),
            bucket=np.asarray(bucket_of(logs.accounts.dpd), dtype=np.int64),
            logged=int(inside.size),
        )

    def rows_of(self, day: int) -> slice:
        """The slice of the schedule planned on local day number ``day``."""
        lo, hi = np.searchsorted(self.day, [day, day + 1])
        return slice(int(lo), int(hi))


def slot_hours_for(hour: np.ndarray, channel: np.ndarray, slot_hours: np.ndarray) -> np.ndarray:
    """int64 [P]: the plan slot of each logged contact (-1 for untimed channels).

    A timed contact goes to the latest operating slot starting at or before its local
    hour; one made before the first slot goes to the first slot.
    """
    index = np.clip(np.searchsorted(slot_hours, hour, side="right") - 1, 0, slot_hours.size - 1)
    return np.where(IS_TIMED[channel], slot_hours[index], -1).astype(np.int64)


@dataclass
class _DayActions:
    """One day's action per account: channel (-1 none), slot hour, offer, variant."""

    channel: np.ndarray
    hour: np.ndarray
    offer: np.ndarray
    variant: np.ndarray

    @classmethod
    def none(cls, n: int) -> _DayActions:
        return cls(
            np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64),
            np.zeros(n, dtype=np.int8), np.zeros(n, dtype=np.int8),
        )  # fmt: skip

    def copy_from(self, to: np.ndarray, source: np.ndarray) -> None:
        """Give accounts ``to`` the actions of accounts ``source``."""
        for name in ("channel", "hour", "offer", "variant"):
            column = getattr(self, name)
            column[to] = column[source]


class ReplayPolicy:
    """A policy that plans each day the logged contacts of that day.

    Each account gets its own first logged contact of the day.  An account the logs
    show cured before today (so the lender stopped working it) but which still owes
    in simulation, and has no logged contact today, gets *substituted* contact: the
    logged action today (possibly none) of a random look-alike donor, an account of
    the same start DPD bucket not cured in the logs by today.  Without it, an
    open-loop replay starves the simulated accounts that have not paid while the
    real ones had, and biases cure and cash downwards.

    Args:
        schedule: the contacts to replay.
        substitute: give look-alike contacts to accounts cured in the logs only.
    """

    policy_id = REPLAY_POLICY_ID
    REASONS = (
        "replay of the first logged contact of the account-day",
        "no logged contact",
        "logged action of a look-alike account still owing in the logs",
    )

    def __init__(self, schedule: ReplaySchedule, substitute: bool = True) -> None:
        self.schedule = schedule
        self.substitute = substitute
        self.substituted = 0

    def decide(self, snapshot: Snapshot) -> Plan:
        """Plan the logged contacts of ``snapshot.day``."""
        s, rows = self.schedule, self.schedule.rows_of(snapshot.day)
        n, options = snapshot.n, snapshot.options
        actions = _DayActions.none(n)
        who = s.account[rows]
        actions.channel[who] = s.channel[rows]
        actions.hour[who] = slot_hours_for(s.hour[rows], s.channel[rows], options.slot_hours)
        actions.offer[who], actions.variant[who] = s.offer[rows], s.variant[rows]
        reason = np.where(actions.channel >= 0, 0, 1).astype(np.int16)
        if self.substitute:
            orphans = self._substitute(snapshot, actions)
            reason[orphans] = 2
        option = options.encode(actions.channel, actions.hour)
        return Plan.from_options(
            option, options, self.policy_id, list(self.REASONS), reason,
            offer=actions.offer, variant=actions.variant,
        )  # fmt: skip

    def _substitute(self, snapshot: Snapshot, actions: _DayActions) -> np.ndarray:
        """Copy donors' actions onto accounts cured in the logs but owing in simulation."""
        s, today = self.schedule, snapshot.day - self.schedule.first_day
        own = actions.channel >= 0
        orphan = snapshot.active & (s.cure_day < today) & ~own
        owing = s.cure_day >= today
        orphans = np.flatnonzero(orphan)
        for bucket in np.unique(s.bucket[orphans]):
            to = orphans[s.bucket[orphans] == bucket]
            donors = np.flatnonzero(owing & (s.bucket == bucket))
            if donors.size == 0:
                donors = np.flatnonzero(owing)
            if donors.size == 0:
                continue
            actions.copy_from(to, snapshot.rng.choice(donors, size=to.size))
        self.substituted += int((actions.channel[orphans] >= 0).sum())
        return orphans


# --------------------------------------------------------------------------- runs
def aligned_scenario(scenario: Scenario, period: Period, n_accounts: int) -> Scenario:
    """The scenario with its ``sim`` start and days set to the period, scaled to the book."""
    sim = scenario.sim.model_copy(update={"start_date": period.start, "days": period.days})
    aligned = scenario.model_copy(update={"sim": sim})
    if aligned.portfolio.n_accounts != n_accounts:
        aligned = aligned.scaled_to(n_accounts)
    return aligned


@dataclass(frozen=True)
class Refusals:
    """What became of the replayed contacts in one replication.

    Attributes:
        planned: account-days with a logged contact to replay.
        not_made: of those, account-days with no simulated attempt at all.
        substituted: contacts planned for accounts cured in the logs but owing in
            simulation, copied from look-alike donors (:class:`ReplayPolicy`).
        blocked: planned contacts (replayed or substituted) the compliance gate
            refused (``blocked`` events; e.g. ``not_in_collection``: the account had
            already left collection in simulation).
        overflow: planned contacts beyond a daily budget (``overflow`` events).
    """

    planned: int
    not_made: int
    substituted: int
    blocked: int
    overflow: int


@dataclass(frozen=True)
class Replication:
    """One simulated replay: its logs, weekly metrics and refusals."""

    index: int
    seed: int
    metrics: pl.DataFrame
    refusals: Refusals


def replication_seeds(seed: int, replications: int) -> tuple[np.random.Generator, list[int]]:
    """(latent-draw generator, run seed of each replication), all from one SeedSequence."""
    root = RunRandom(seed)
    seeds = [
        int(root.stream_seed(f"backtest.replication.{k}").generate_state(1, np.uint32)[0])
        for k in range(replications)
    ]
    return root.generator("backtest.latent"), seeds


def _refusals(sim: Simulation, policy: ReplayPolicy, logs: Logs) -> Refusals:
    """Count the replayed contacts the simulation did not make."""
    event = sim.ledger.columns()["event"]
    h, schedule = logs.contacts.history, policy.schedule
    made = np.unique(h.local_day * sim.n + h.account)
    planned = schedule.day * sim.n + schedule.account
    return Refusals(
        planned=schedule.planned,
        not_made=int((~np.isin(planned, made)).sum()),
        substituted=policy.substituted,
        blocked=int((event == EVENT["blocked"]).sum()),
        overflow=int((event == EVENT["overflow"]).sum()),
    )


def replicate(
    scenario: Scenario,
    logs: Logs,
    latent: Latent,
    seed: int,
    period: Period,
    substitute: bool = True,
) -> tuple[pl.DataFrame, Refusals]:
    """Replay the logs once in simulation; return its weekly metrics and refusals.

    Args:
        scenario: the scenario, aligned with the period (:func:`aligned_scenario`).
        logs: the lender logs (start state and contacts to replay).
        latent: latent traits of the logged accounts (one draw).
        seed: the run seed.
        period: the days compared.
        substitute: give accounts cured in the logs but owing in simulation their
            look-alikes' logged contacts (:class:`ReplayPolicy`).
    """
    policy = ReplayPolicy(ReplaySchedule.from_logs(logs, period), substitute)
    sim = Simulation(scenario, seed, portfolio=logs.accounts, latent=latent)
    recorder = LogRecorder(sim)
    sim.run(recorder.wrap(policy), period.days, progress=recorder.end_of_day)
    simulated = simulated_logs(recorder)
    return weekly_metrics(simulated, period), _refusals(sim, policy, simulated)


def run_replications(
    scenario: Scenario,
    logs: Logs,
    period: Period,
    options: BacktestOptions,
    progress: Callable[[int], None] | None = None,
) -> list[Replication]:
    """Run the options' replications of the replay (draw k and seed k for replication k).

    Args:
        scenario: the scenario (aligned and scaled here).
        logs: the lender logs.
        period: the days compared.
        options: replications, seed and the latent pool size.
        progress: called with each finished replication's index.
    """
    aligned = aligned_scenario(scenario, period, logs.accounts.n)
    latent_rng, seeds = replication_seeds(options.seed, options.replications)
    draws = matched_draws(
        aligned, logs.accounts, latent_rng, draws=options.replications,
        pool_accounts=options.pool_accounts,
    )  # fmt: skip
    out = []
    for k, seed in enumerate(seeds):
        metrics, refusals = replicate(
            aligned, logs, draws.draw(k), seed, period, options.substitute
        )
        out.append(Replication(k, seed, metrics, refusals))
        if progress is not None:
            progress(k)
    return out


# --------------------------------------------------------------------------- comparison
def _band_row(
    actual: dict[str, object], simulated: np.ndarray, tolerance: float
) -> dict[str, object]:
    """One metric-week of the comparison table."""
    metric, value = str(actual["metric"]), actual["value"]
    known = simulated[np.isfinite(simulated)]
    if known.size:
        low, median, high = np.quantile(known, (BAND_QUANTILES[0], 0.5, BAND_QUANTILES[1]))
    else:
        low = median = high = np.nan
    sd = actual["sampling_sd"]
    noise = Z_90 * float(sd) if isinstance(sd, float) and np.isfinite(sd) else 0.0
    widen = tolerance * abs(float(median)) if np.isfinite(median) else 0.0
    band_low, band_high = low - noise - widen, high + noise + widen
    if value is None:
        verdict = "n/a"  # nothing to compare: no telephone attempts (or RPCs) that week
    elif not known.size:
        verdict = "fail"
    else:
        inside = band_low <= float(value) <= band_high  # type: ignore[arg-type]
        verdict = "pass" if inside else "fail"
    return {
        "week": actual["week"],
        "metric": metric,
        "actual": value,
        "sim_median": float(median),
        "sim_p05": float(low),
        "sim_p95": float(high),
        "band_low": float(band_low),
        "band_high": float(band_high),
        "verdict": verdict,
    }


def compare(
    actual: pl.DataFrame, replications: list[pl.DataFrame], tolerance: float, period: Period
) -> pl.DataFrame:
    """Compare actual weekly metrics with the replications' band.

    The simulated band of a metric-week is the empirical 5–95% interval of the
    replications, widened on each side by the sampling noise of the actual value
    (1.645 × its ``sampling_sd``: binomial ``sqrt(p (1 - p) / n)`` for a rate,
    ``sqrt(N)`` × the sd of the accounts' weekly amounts for cash) and by
    ``tolerance`` × |simulated median|.  The
    metric-week fails when the actual lies outside; it is ``n/a`` when the actual
    has no denominator (e.g. no telephone attempts that week).

    Returns:
        one row per metric-week: ``week``, ``week_start``, ``metric``, ``actual``,
        ``sim_median``, ``sim_p05``, ``sim_p95``, ``band_low``, ``band_high``,
        ``verdict`` (pass, fail, n/a).
    """
    stacked = np.stack([r["value"].cast(pl.Float64).fill_null(np.nan).to_numpy()
                        for r in replications])  # fmt: skip
    rows = [
        _band_row(row, stacked[:, i], tolerance)
        for i, row in enumerate(actual.iter_rows(named=True))
    ]
    table = pl.DataFrame(rows, schema_overrides={"actual": pl.Float64})
    week_start = pl.lit(period.start) + pl.duration(days=pl.col("week") * DAYS_PER_WEEK)
    return table.with_columns(week_start=week_start.cast(pl.Date)).select(
        "week", "week_start", *[c for c in table.columns if c != "week"]
    )


@dataclass(frozen=True)
class BacktestResult:
    """A back-test's comparison table, its replications and its settings."""

    table: pl.DataFrame
    replications: list[Replication]
    period: Period
    options: BacktestOptions
    contacts_logged: int

    @property
    def failures(self) -> pl.DataFrame:
        """The failing metric-weeks."""
        return self.table.filter(pl.col("verdict") == "fail")

    @property
    def passed(self) -> bool:
        """No metric-week failed."""
        return self.failures.height == 0


def backtest(
    scenario: Scenario,
    logs: Logs,
    period: Period,
    options: BacktestOptions,
    progress: Callable[[int], None] | None = None,
) -> BacktestResult:
    """Replay ``logs`` under ``scenario`` and compare the weekly metrics.

    Args:
        scenario: the scenario under test (e.g. the output of ``collsim fit``).
        logs: the lender logs.
        period: the days compared (:func:`log_period`).
        options: replications, seed, tolerance.
        progress: called with each finished replication's index.
    """
    runs = run_replications(scenario, logs, period, options, progress)
    actual = weekly_metrics(logs, period)
    table = compare(actual, [r.metrics for r in runs], options.tolerance, period)
    logged = ReplaySchedule.from_logs(logs, period).logged
    return BacktestResult(table, runs, period, options, logged)


__all__ = [
    "METRICS",
    "METRIC_MEANINGS",
    "BacktestOptions",
    "BacktestResult",
    "Period",
    "Refusals",
    "ReplayPolicy",
    "ReplaySchedule",
    "Replication",
    "aligned_scenario",
    "backtest",
    "compare",
    "log_period",
    "replicate",
    "run_replications",
    "weekly_metrics",
]
