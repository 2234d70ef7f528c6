"""``collsim calibrate``: run the standard experiments and measure every calibration target.

Experiments, all on the same seed (common random numbers: the same accounts and luck):

* ``no_contact`` — nobody is contacted (the self-cure baseline).
* ``one_sms`` — one plain SMS to every account on day 0 (tree ``one_touch_sms``).
* ``one_call`` — one agent-call attempt to every account on day 0 (tree
  ``one_touch_agent_call``), agent capacity raised so every planned call is made, no
  redial.
* ``hour_spread`` — one agent-call attempt per account a day for five days, each at a
  local operating hour drawn uniformly (:class:`~collsim.policies.one_touch.SpreadHours`);
  fatigue and cures do not depend on the drawn hour, so they leave the ratio of answer
  rates between hours unbiased while five days give five times the attempts.
* ``champion`` — the scenario's champion strategy tree, on the scenario's own capacity.

The first four run on the *experiment scenario* (:func:`experiment_scenario`: no
channel budgets, no redial and, for the call experiments, agents on every hour); the
population is generated from the scenario's portfolio and behaviour sections only, so
every run of a seed has the same accounts, which :func:`measure_all` checks (the
hour-spread run, which is not paired, is larger: see ``HOUR_SPREAD_MIN_ACCOUNTS``).
Every target is measured from the ledgers (plus observable start columns and, for
segment targets, the latent segment), with a 95% percentile-bootstrap interval over
accounts (Poisson weights from a ``SeedSequence``-derived generator).  Effects are
paired: the same accounts in the treated and the no-contact run of one seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from collsim.config import ConfigError, Scenario
from collsim.evaluation.calibration_targets import Target, TargetsFile
from collsim.ledger import EVENT
from collsim.metrics import kpis
from collsim.plan import Policy
from collsim.policies.baselines import NoContact
from collsim.policies.champion import TieredChampion
from collsim.policies.one_touch import FirstDayOnly, SpreadHours
from collsim.rng import RunRandom
from collsim.sim import Simulation
from collsim.vocab import IS_CONVERSATION, Channel, Outcome, bucket_of

CURE_WINDOW_DAYS = 30
"""Days of the cure window of the one-touch effects."""
REDEFAULT_WINDOW_DAYS = 180
"""Days after a plan cure within which a re-default counts."""
REDEFAULT_LEAD_DAYS = 90
"""Days of champion run before the follow-up window, in which plan cures can happen."""
MIN_UNITS = 20
"""Fewest accounts (or cures) a target needs to be measured."""
HOUR_SPREAD_DAYS = 5
"""Days of the hour-spread run: one agent call per account a day, each at a drawn hour."""
HOUR_SPREAD_MIN_ACCOUNTS = 50_000
"""Fewest accounts of the hour-spread run: the best and worst of 13 hourly answer rates
need thousands of calls an hour (the run is short and needs no pairing)."""
UNPAIRED = frozenset({"hour_spread"})
"""Experiments measured on their own (their accounts need not be the paired runs')."""
BOOTSTRAP_DRAWS = 400
NEVER = np.iinfo(np.int64).max // 4
"""Day index of an event that never happened."""

EXPERIMENT_OF_METRIC: dict[str, tuple[str, ...]] = {
    "cure_30d.no_contact": ("no_contact",),
    "effect.conversation": ("no_contact", "one_call"),
    "effect.sms": ("no_contact", "one_sms"),
    "effect.no_answer": ("no_contact", "one_call"),
    "answer_ratio.best_worst_hour": ("hour_spread",),
}
"""Experiments each metric needs; every metric not listed needs ``champion``."""


@dataclass(frozen=True)
class Arm:
    """What is measured of one simulated run.

    Attributes:
        name: the experiment.
        days: days simulated.
        cols: ledger columns, ``day`` relative to the first day (0 = day 0).
        start_dpd: int [N] days past due at the start (observable).
        start_due: float [N] amount due at the start (observable).
        segment: int [N] latent segment code (research only).
        segments: segment names.
        operating_hours: local slot hours of the scenario.
        kpis: the run's KPI table (:func:`collsim.metrics.kpis`).
        rate_days: days the champion's rates (contact, promise, occupancy) are measured
            over: the scenario's days (or the run's, if shorter), so a longer run for
            re-default does not change them.
    """

    name: str
    days: int
    cols: dict[str, np.ndarray]
    start_dpd: np.ndarray
    start_due: np.ndarray
    segment: np.ndarray
    segments: tuple[str, ...]
    operating_hours: tuple[int, ...]
    kpis: dict[str, float] = field(default_factory=dict)
    rate_days: int | None = None

    @property
    def n(self) -> int:
        """Number of accounts."""
        return int(self.start_dpd.shape[0])

    def events(self, name: str) -> np.ndarray:
        """bool per ledger row: the row is a ``name`` event (all False if unknown)."""
        if name not in EVENT:
            return np.zeros(self.cols["event"].shape[0], dtype=bool)
        return self.cols["event"] == EVENT[name]

    def first_day(self, name: str) -> np.ndarray:
        """int [N]: the first day index of a ``name`` event per account (NEVER if none)."""
        out = np.full(self.n, NEVER, dtype=np.int64)
        rows = self.events(name) & (self.cols["account"] >= 0)
        np.minimum.at(out, self.cols["account"][rows], self.cols["day"][rows].astype(np.int64))
        return out

    def per_account(self, rows: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """float [N]: count (or sum of ``values``) of the selected ledger rows per account."""
        weights = None if values is None else values[rows]
        return np.bincount(self.cols["account"][rows], weights=weights, minlength=self.n)


@dataclass(frozen=True)
class Measured:
    """A target's measurement: value with a 95% interval, or why it is not measurable."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0
    note: str = ""


# ---------------------------------------------------------------------------- experiments
def experiment_scenario(scenario: Scenario, n_accounts: int, calls: bool = True) -> Scenario:
    """The scenario of the one-touch experiments: every planned contact is made.

    Sized for ``n_accounts``; no channel or money budget and ``max_redials = 0``.  With
    ``calls``, every agent-call pool is staffed in all 24 centre hours with enough
    agents to start every account's call within its hour (a call lasts at most ~9
    minutes: 6 per agent-hour is safe); without, the pools stay as scaled (an
    experiment that makes no agent call skips the cost of a huge idle pool).
    Portfolio and behaviour are unchanged, so the accounts are those of the scenario.
    """
    data = scenario.scaled_to(n_accounts).model_dump(mode="json")
    capacity = data["capacity"]
    for pool in capacity["agent_pools"] if calls else []:
        per_agent = min(6.0, float(pool["attempts_per_agent_hour"]))
        agents = int(np.ceil(n_accounts / per_agent)) + 1
        pool["agents_by_hour"] = dict.fromkeys(range(24), agents)
    capacity["channel_budgets"] = {}
    capacity["money_budget"] = None
    data["sim"]["max_redials"] = 0
    return Scenario.model_validate(data)


def experiments_needed(targets: TargetsFile) -> list[str]:
    """The experiments the targets need, in run order."""
    needed: set[str] = set()
    for t in targets.targets:
        needed.update(EXPERIMENT_OF_METRIC.get(t.metric, ("champion",)))
    order = ("no_contact", "one_sms", "one_call", "hour_spread", "champion")
    return [e for e in order if e in needed]


def default_champion_days(scenario: Scenario, targets: TargetsFile, days: int) -> int:
    """Days of the champion run: the scenario's (or ``days``, if longer), extended to
    give plan cures 180 days of follow-up when a target needs re-default and the
    ledger records it."""
    needed = max(days, scenario.sim.days)
    wants = any(t.metric == "redefault_180d.plan_cure" for t in targets.targets)
    if wants and "redefault" in EVENT:
        needed = max(needed, REDEFAULT_WINDOW_DAYS + REDEFAULT_LEAD_DAYS)
    return needed


def experiment_days(experiment: str, days: int, champion_days: int) -> int:
    """Days simulated by an experiment."""
    return {"hour_spread": HOUR_SPREAD_DAYS, "champion": champion_days}.get(experiment, days)


def _policy(experiment: str, scenario: Scenario) -> Policy:
    if experiment == "no_contact":
        return NoContact()
    if experiment == "one_sms":
        return FirstDayOnly(TieredChampion("one_touch_sms"))
    if experiment == "one_call":
        return FirstDayOnly(TieredChampion("one_touch_agent_call"))
    if experiment == "hour_spread":
        return SpreadHours("agent_call", days=HOUR_SPREAD_DAYS)
    return TieredChampion(scenario.champion)


def run_experiment(
    experiment: str,
    scenario: Scenario,
    n_accounts: int,
    seed: int,
    days: int,
    tick: Callable[[], None] | None = None,
) -> Arm:
    """Simulate one experiment and return what is measured of it."""
    if experiment == "champion":
        run_scenario = scenario.scaled_to(n_accounts)
    else:
        calls = experiment in ("one_call", "hour_spread")
        run_scenario = experiment_scenario(scenario, n_accounts, calls)
    sim = Simulation(run_scenario, seed)
    start_dpd = sim.portfolio.dpd.astype(np.int64).copy()
    start_due = sim.portfolio.amount_due.astype(np.float64).copy()
    first = sim.first_day
    sim.run(
        _policy(experiment, scenario),
        days=days,
        progress=None if tick is None else (lambda _stats: tick()),
    )
    cols = dict(sim.ledger.columns())
    cols["day"] = cols["day"].astype(np.int64) - first
    return Arm(
        name=experiment,
        days=days,
        cols=cols,
        start_dpd=start_dpd,
        start_due=start_due,
        segment=sim.latent.segment.astype(np.int64),
        segments=tuple(sim.latent.segments),
        operating_hours=tuple(int(h) for h in scenario.sim.operating_hours),
        kpis=kpis(sim.ledger) if experiment == "champion" else {},
        rate_days=min(days, scenario.sim.days),
    )


# ---------------------------------------------------------------------------- statistics
def bootstrap_interval(
    statistic: Callable[[np.ndarray], np.ndarray],
    n_units: int,
    rng: np.random.Generator,
    draws: int = BOOTSTRAP_DRAWS,
    chunk: int = 50,
) -> tuple[float, float]:
    """95% percentile interval of ``statistic`` under a Poisson bootstrap of the units.

    Args:
        statistic: maps weights float [B, n_units] to the statistic per draw [B].
        n_units: number of resampled units (accounts, attempts or cures).
        rng: the generator (derived from a SeedSequence).
        draws: bootstrap draws.
        chunk: draws per weight matrix (bounds memory).
    """
    values = []
    for start in range(0, draws, chunk):
        weights = rng.poisson(1.0, size=(min(chunk, draws - start), n_units)).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            values.append(np.asarray(statistic(weights), dtype=np.float64))
    stats = np.concatenate(values)
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(stats, [2.5, 97.5])
    return float(low), float(high)


def ratio_measure(
    numerator: np.ndarray, denominator: np.ndarray, rng: np.random.Generator, what: str
) -> Measured:
    """sum(numerator) / sum(denominator) over units, with its bootstrap interval."""
    units = int(np.count_nonzero(denominator))
    if units < MIN_UNITS or denominator.sum() <= 0:
        return Measured(None, n=units, note=f"not measurable: {units} {what}")
    value = float(numerator.sum() / denominator.sum())
    low, high = bootstrap_interval(
        lambda w: (w @ numerator) / (w @ denominator), numerator.shape[0], rng
    )
    return Measured(value, low, high, n=units)


def mean_measure(values: np.ndarray, rng: np.random.Generator, what: str) -> Measured:
    """Mean over units, with its bootstrap interval."""
    return ratio_measure(values.astype(np.float64), np.ones(values.shape[0]), rng, what)


# ---------------------------------------------------------------------------- measures
Runs = list[dict[str, Arm]]
"""One dict experiment -> Arm per seed."""


def unit_filter(target: Target, arm: Arm) -> np.ndarray:
    """bool [N]: the accounts a target is restricted to (start DPD range, segment)."""
    keep = np.ones(arm.n, dtype=bool)
    if target.start_dpd is not None:
        low, high = target.start_dpd
        keep &= (arm.start_dpd >= low) & (arm.start_dpd <= high)
    if target.segment is not None:
        keep &= arm.segment == arm.segments.index(target.segment)
    return keep


def cured_within(arm: Arm, window_days: int) -> np.ndarray:
    """bool [N]: the account has a ``cure`` event in its first ``window_days`` days."""
    return arm.first_day("cure") < window_days


def _too_short(runs: Runs, experiment: str, days: int) -> Measured | None:
    have = runs[0][experiment].days
    if have < days:
        return Measured(None, note=f"not measurable: {experiment} ran {have} days < {days}")
    return None


def measure_cure(target: Target, runs: Runs, rng: np.random.Generator) -> Measured:
    """Share of the target's accounts cured within the window (30 or 90 days)."""
    experiment = target.metric.split(".")[1]
    window = int(target.metric.split(".")[0].split("_")[1].rstrip("d"))
    short = _too_short(runs, experiment, window)
    if short is not None:
        return short
    values = [cured_within(r[experiment], window)[unit_filter(target, r[experiment])] for r in runs]
    return mean_measure(np.concatenate(values), rng, "accounts")


def first_attempts(arm: Arm, channel: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(account, outcome, local hour) of each account's first day-0 attempt on ``channel``."""
    c = arm.cols
    rows = np.flatnonzero(arm.events("attempt") & (c["day"] == 0) & (c["channel"] == channel))
    account, first = np.unique(c["account"][rows], return_index=True)
    picked = rows[first]
    return account, c["outcome"][picked].astype(np.int64), c["hour"][picked].astype(np.int64)


_EFFECT_ARM = {
    "effect.conversation": ("one_call", Channel.AGENT_CALL),
    "effect.no_answer": ("one_call", Channel.AGENT_CALL),
    "effect.sms": ("one_sms", Channel.SMS),
}


def effect_subset(metric: str, arm: Arm) -> np.ndarray:
    """bool [N]: accounts whose day-0 touch reached what the effect is about."""
    _, channel = _EFFECT_ARM[metric]
    account, outcome, _ = first_attempts(arm, int(channel))
    if metric == "effect.conversation":
        hit = IS_CONVERSATION[outcome]
    elif metric == "effect.no_answer":
        hit = np.isin(outcome, (Outcome.NO_ANSWER, Outcome.VOICEMAIL))
    else:
        hit = outcome != Outcome.NOT_DELIVERED
    subset = np.zeros(arm.n, dtype=bool)
    subset[account[hit]] = True
    return subset


def paired_effect(treated: Arm, control: Arm, subset: np.ndarray, window_days: int) -> np.ndarray:
    """float [M]: cured within the window in ``treated`` minus in ``control``, per account.

    The two runs must have the same accounts (same seed; checked on the start events).
    """
    check_same_accounts(treated, control)
    return (
        cured_within(treated, window_days)[subset].astype(np.float64)
        - cured_within(control, window_days)[subset]
    )


def check_same_accounts(a: Arm, b: Arm) -> None:
    """Raise if two runs do not start from the same accounts (common random numbers)."""
    same = (
        a.n == b.n
        and np.array_equal(a.start_dpd, b.start_dpd)
        and np.array_equal(a.start_due, b.start_due)
        and np.array_equal(a.segment, b.segment)
    )
    if not same:
        raise RuntimeError(f"runs {a.name} and {b.name} do not have the same accounts")


def measure_effect(target: Target, runs: Runs, rng: np.random.Generator) -> Measured:
    """Paired effect of the one touch on 30-day cure over the accounts it reached."""
    experiment, _ = _EFFECT_ARM[target.metric]
    for name in (experiment, "no_contact"):
        short = _too_short(runs, name, CURE_WINDOW_DAYS)
        if short is not None:
            return short
    values = []
    for r in runs:
        treated = r[experiment]
        subset = effect_subset(target.metric, treated) & unit_filter(target, treated)
        values.append(paired_effect(treated, r["no_contact"], subset, CURE_WINDOW_DAYS))
    return mean_measure(np.concatenate(values), rng, "accounts reached")


def hour_counts(arm: Arm) -> tuple[np.ndarray, np.ndarray]:
    """(attempts, answered) float [N, H]: agent-call attempts per account and operating hour.

    Answered = the call was picked up (any outcome but no answer or voicemail).
    """
    c = arm.cols
    hours = np.asarray(arm.operating_hours)
    rows = np.flatnonzero(arm.events("attempt") & (c["channel"] == Channel.AGENT_CALL))
    slot = np.searchsorted(hours, c["hour"][rows])
    ok = (slot < hours.size) & (hours[np.minimum(slot, hours.size - 1)] == c["hour"][rows])
    rows, slot = rows[ok], slot[ok]
    cell = c["account"][rows] * hours.size + slot
    answered = ~np.isin(c["outcome"][rows], (Outcome.NO_ANSWER, Outcome.VOICEMAIL))
    size = arm.n * hours.size
    attempts = np.bincount(cell, minlength=size).reshape(arm.n, hours.size)
    answers = np.bincount(cell, weights=answered, minlength=size).reshape(arm.n, hours.size)
    return attempts.astype(np.float64), answers


def cross_fit_ratio(
    attempts: np.ndarray, answers: np.ndarray, half: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Best-hour / worst-hour answer rate, hours chosen on one half, rates from the other.

    Picking the highest and lowest of many noisy hourly rates overstates their ratio;
    choosing the hours on one half of the accounts and measuring them on the other
    (and the reverse, averaged) removes that selection bias, at the price of a bias the
    other way when neighbouring hours are close (a near-best hour gets chosen).

    Args:
        attempts, answers: float [N, H] per account and hour.
        half: bool [N], the first half of a random split of the accounts.
        weights: float [B, N] bootstrap weights (ones for the point estimate).

    Returns:
        float [B]: the ratio per weight row.
    """
    rates = []
    for part in (half, ~half):
        w = weights * part
        rates.append((w @ answers) / (w @ attempts))
    ratio = np.zeros(weights.shape[0])
    for pick, measure in ((rates[0], rates[1]), (rates[1], rates[0])):
        best = np.take_along_axis(measure, pick.argmax(axis=1)[:, None], axis=1)[:, 0]
        worst = np.take_along_axis(measure, pick.argmin(axis=1)[:, None], axis=1)[:, 0]
        ratio += 0.5 * best / worst
    return ratio


def measure_hour_ratio(target: Target, runs: Runs, rng: np.random.Generator) -> Measured:
    """Answer rate at the best operating hour / at the worst, from spread attempts.

    The plain ratio of the highest to the lowest hourly rate (as the public figure is
    defined), over the accounts of all seeds; picking the extremes of noisy rates
    overstates it at small sizes, hence the large hour-spread run.  The note adds the
    cross-fitted ratio (:func:`cross_fit_ratio`, biased the other way): a large gap
    between the two means the run is too small.
    """
    parts = [hour_counts(r["hour_spread"]) for r in runs]
    keeps = [unit_filter(target, r["hour_spread"]) for r in runs]
    attempts = np.concatenate([a[k] for (a, _), k in zip(parts, keeps, strict=True)])
    answers = np.concatenate([b[k] for (_, b), k in zip(parts, keeps, strict=True)])
    per_hour = attempts.sum(axis=0)
    n = int(np.count_nonzero(attempts.sum(axis=1)))
    if per_hour.min() < 2 * MIN_UNITS:
        return Measured(None, n=n, note="not measurable: too few attempts per hour")
    rate = answers.sum(axis=0) / per_hour
    if rate.min() <= 0:
        return Measured(None, n=n, note="not measurable: an hour with no answer")
    units = int(attempts.shape[0])

    def plain(w: np.ndarray) -> np.ndarray:
        r = (w @ answers) / (w @ attempts)
        return np.asarray(r.max(axis=1) / r.min(axis=1))

    low, high = bootstrap_interval(plain, units, rng)
    half: np.ndarray = rng.random(units) < 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = float(cross_fit_ratio(attempts, answers, half, np.ones((1, units)))[0])
    hours = runs[0]["hour_spread"].operating_hours
    note = (
        f"best {hours[rate.argmax()]}h {rate.max():.1%}, worst {hours[rate.argmin()]}h "
        f"{rate.min():.1%}; cross-fitted {cross:.2f}; {int(per_hour.min()):,}+ calls an hour"
    )
    return Measured(float(rate.max() / rate.min()), low, high, n=n, note=note)


def _in_rate_window(arm: Arm) -> np.ndarray:
    """bool per ledger row: the row's day is within the arm's ``rate_days``."""
    days = arm.days if arm.rate_days is None else arm.rate_days
    return np.asarray(arm.cols["day"] < days)


def _agent_counts(arm: Arm, keep: np.ndarray) -> dict[str, np.ndarray]:
    c = arm.cols
    agent = arm.events("attempt") & (c["channel"] == Channel.AGENT_CALL) & _in_rate_window(arm)
    conversation = agent & IS_CONVERSATION[np.maximum(c["outcome"], 0)] & (c["outcome"] >= 0)
    promise = conversation & (c["outcome"] == Outcome.PROMISE_TO_PAY)
    return {
        "attempts": arm.per_account(agent)[keep],
        "rpc": arm.per_account(conversation)[keep],
        "promises": arm.per_account(promise)[keep],
        "handle_s": arm.per_account(agent, c["duration_s"])[keep],
    }


def _champion_arrays(target: Target, runs: Runs, name: str) -> np.ndarray:
    parts = []
    for r in runs:
        arm = r["champion"]
        parts.append(_agent_counts(arm, unit_filter(target, arm))[name])
    return np.concatenate(parts)


def measure_rpc(target: Target, runs: Runs, rng: np.random.Generator) -> Measured:
    """Right-party conversations per agent-call attempt under the champion."""
    return ratio_measure(
        _champion_arrays(target, runs, "rpc"),
        _champion_arrays(target, runs, "attempts"),
        rng,
        "accounts called",
    )


def measure_promise(target: Target, runs: Runs, rng: np.random.Generator) -> Measured:
    """Promises to pay per agent-call right-party conversation under the champion."""
    return ratio_measure(
        _champion_arrays(target, runs, "promises"),
        _champion_arrays(target, runs, "rpc"),
        rng,
        "accounts with a conversation",
    )


def rolled_within(arm: Arm, bucket: int, window_days: int) -> tuple[np.ndarray, np.ndarray]:
    """(started in ``bucket``, rolled into ``bucket + 1`` within the window), bool [N] each."""
    c = arm.cols
    started = bucket_of(arm.start_dpd) == bucket
    into = arm.events("roll") & (c["bucket"] == bucket + 1) & (c["day"] < window_days)
    return started, arm.per_account(into) > 0


def measure_roll(target: Target, runs: Runs, rng: np.random.Generator) -> Measured:
    """30-day roll rate of the accounts starting in a bucket, under the champion."""
    bucket = 1 if target.metric.endswith("1-30") else 2
    short = _too_short(runs, "champion", CURE_WINDOW_DAYS)
    if short is not None:
        return short
    values = []
    for r in runs:
        arm = r["champion"]
        started, rolled = rolled_within(arm, bucket, CURE_WINDOW_DAYS)
        values.append(rolled[started & unit_filter(target, arm)])
    return mean_measure(np.concatenate(values), rng, "accounts in the bucket")


def measure_roll_shape(target: Target, runs: Runs, rng: np.random.Generator) -> Measured:
    """Roll rate 31-60 minus roll rate 1-30 (30-day, champion); > 0 is the US shape."""
    short = _too_short(runs, "champion", CURE_WINDOW_DAYS)
    if short is not None:
        return short
    cols: dict[str, list[np.ndarray]] = {"in1": [], "r1": [], "in2": [], "r2": []}
    for r in runs:
        arm = r["champion"]
        keep = unit_filter(target, arm)
        for b in (1, 2):
            started, rolled = rolled_within(arm, b, CURE_WINDOW_DAYS)
            cols[f"in{b}"].append((started & keep).astype(np.float64))
            cols[f"r{b}"].append((started & keep & rolled).astype(np.float64))
    a = {k: np.concatenate(v) for k, v in cols.items()}
    n1, n2 = int(a["in1"].sum()), int(a["in2"].sum())
    if min(n1, n2) < MIN_UNITS:
        return Measured(None, n=n1 + n2, note=f"not measurable: {n1} and {n2} accounts")

    def statistic(w: np.ndarray) -> np.ndarray:
        return np.asarray((w @ a["r2"]) / (w @ a["in2"]) - (w @ a["r1"]) / (w @ a["in1"]))

    value = float(statistic(np.ones((1, a["in1"].shape[0])))[0])
    low, high = bootstrap_interval(statistic, a["in1"].shape[0], rng)
    note = f"1-30: {a['r1'].sum() / n1:.1%}, 31-60: {a['r2'].sum() / n2:.1%}"
    return Measured(value, low, high, n=n1 + n2, note=note)


def plan_cure_redefaults(arm: Arm, window_days: int) -> tuple[np.ndarray, np.ndarray]:
    """(followed, redefaulted) bool per plan cure: a ``cure`` the same day as a
    ``plan_completed`` of the account; followed = the run covers ``window_days`` after it;
    redefaulted = a ``redefault`` event of the account within that many days after."""
    c = arm.cols
    key_scale = np.int64(1 << 32)

    def keys(rows: np.ndarray) -> np.ndarray:
        return c["account"][rows] * key_scale + c["day"][rows]

    cures = keys(arm.events("cure"))
    plan_cures = np.unique(cures[np.isin(cures, keys(arm.events("plan_completed")))])
    redefaults = np.sort(keys(arm.events("redefault")))
    nxt = np.searchsorted(redefaults, plan_cures, side="right")
    found = nxt < redefaults.size
    gap = np.where(found, redefaults[np.minimum(nxt, max(redefaults.size - 1, 0))] - plan_cures, -1)
    cure_day = plan_cures % key_scale
    followed = cure_day + window_days <= arm.days - 1
    redefaulted = found & (gap > 0) & (gap <= window_days)
    return followed, redefaulted


def measure_redefault(target: Target, runs: Runs, rng: np.random.Generator) -> Measured:
    """Share of plan cures that re-default within 180 days (fully followed cures only)."""
    if "redefault" not in EVENT:
        return Measured(None, note="not measurable: the ledger has no redefault event yet")
    values, total = [], 0
    for r in runs:
        arm = r["champion"]
        followed, redefaulted = plan_cure_redefaults(arm, REDEFAULT_WINDOW_DAYS)
        total += int(followed.size)
        values.append(redefaulted[followed])
    x = np.concatenate(values)
    measured = mean_measure(x, rng, "plan cures with 180 days of follow-up")
    note = f"{x.size} of {total} plan cures followed {REDEFAULT_WINDOW_DAYS} days"
    if measured.value is None:
        longer = REDEFAULT_WINDOW_DAYS + REDEFAULT_LEAD_DAYS
        note = f"not measurable: {note}; run the champion longer (--champion-days {longer})"
    return Measured(measured.value, measured.low, measured.high, measured.n, note)


def measure_occupancy(target: Target, runs: Runs, rng: np.random.Generator) -> Measured:
    """Agent handle time / staffed agent time under the champion.

    Uses the KPI ``agent_occupancy`` of :func:`collsim.metrics.kpis` when it exists and
    the run lasted the scenario's days (its interval: the ledger ratio's interval scaled
    to it), else the ledger ratio over the scenario's days.
    """
    handle, staffed = [], 0.0
    for r in runs:
        arm = r["champion"]
        handle.append(_agent_counts(arm, np.ones(arm.n, dtype=bool))["handle_s"])
        staffed_rows = arm.events("agent_capacity") & _in_rate_window(arm)
        staffed += float(arm.cols["duration_s"][staffed_rows].sum())
    x = np.concatenate(handle)
    if staffed <= 0:
        return Measured(None, note="not measurable: no staffed agent time")
    value = float(x.sum() / staffed)
    low, high = bootstrap_interval(lambda w: (w @ x) / staffed, x.shape[0], rng)
    kpi = [r["champion"].kpis.get("agent_occupancy") for r in runs]
    whole_run = all(r["champion"].rate_days in (None, r["champion"].days) for r in runs)
    if whole_run and all(k is not None for k in kpi) and value > 0:
        point = float(np.mean([float(k) for k in kpi if k is not None]))
        scale = point / value
        return Measured(point, low * scale, high * scale, x.shape[0], "KPI agent_occupancy")
    return Measured(value, low, high, x.shape[0], "handle time / staffed time (ledger)")


def measure_collection(target: Target, runs: Runs, rng: np.random.Generator) -> Measured:
    """Share of the amount due at the start collected within 30 days (champion)."""
    short = _too_short(runs, "champion", CURE_WINDOW_DAYS)
    if short is not None:
        return short
    paid, due = [], []
    for r in runs:
        arm = r["champion"]
        rows = arm.events("payment") & (arm.cols["day"] < CURE_WINDOW_DAYS)
        collected = np.minimum(arm.per_account(rows, arm.cols["amount"]), arm.start_due)
        keep = unit_filter(target, arm) & (arm.start_due > 0)
        paid.append(collected[keep])
        due.append(arm.start_due[keep])
    return ratio_measure(np.concatenate(paid), np.concatenate(due), rng, "accounts with a due")


MEASURES: dict[str, Callable[[Target, Runs, np.random.Generator], Measured]] = {
    "cure_30d.no_contact": measure_cure,
    "cure_30d.champion": measure_cure,
    "cure_90d.champion": measure_cure,
    "effect.conversation": measure_effect,
    "effect.sms": measure_effect,
    "effect.no_answer": measure_effect,
    "answer_ratio.best_worst_hour": measure_hour_ratio,
    "rpc_per_attempt.agent_call": measure_rpc,
    "promise_per_rpc.agent_call": measure_promise,
    "roll_rate_30d.1-30": measure_roll,
    "roll_rate_30d.31-60": measure_roll,
    "roll_shape.1-30_below_31-60": measure_roll_shape,
    "redefault_180d.plan_cure": measure_redefault,
    "agent_occupancy.champion": measure_occupancy,
    "collection_rate_30d.champion": measure_collection,
}


def check_targets(targets: TargetsFile, scenario: Scenario) -> None:
    """Raise ConfigError if a target names a segment the scenario does not have."""
    names = [s.name for s in scenario.behaviour.segments]
    for t in targets.targets:
        if t.segment is not None and t.segment not in names:
            raise ConfigError(
                f"target {t.id!r}: unknown segment {t.segment!r}; the scenario has {names}"
            )


def measure_all(targets: TargetsFile, runs: Runs, seed: int) -> list[tuple[Target, Measured]]:
    """Measure every target from the runs (one bootstrap generator per target)."""
    for r in runs:
        arms = [arm for name, arm in r.items() if name not in UNPAIRED]
        for other in arms[1:]:
            check_same_accounts(arms[0], other)
    random = RunRandom(seed)
    return [
        (t, MEASURES[t.metric](t, runs, random.generator(f"calibrate:{t.id}")))
        for t in targets.targets
    ]


@dataclass(frozen=True)
class CalibrationSettings:
    """What ``collsim calibrate`` runs.

    Attributes:
        n_accounts: accounts of the paired runs.
        days: days of the no-contact and one-touch runs.
        champion_days: days of the champion run.
        seeds: the seeds.
        hour_accounts: accounts of the (unpaired) hour-spread run; default
            max(n_accounts, HOUR_SPREAD_MIN_ACCOUNTS).
    """

    n_accounts: int
    days: int
    champion_days: int
    seeds: tuple[int, ...]
    hour_accounts: int | None = None

    def accounts_of(self, experiment: str) -> int:
        """Accounts simulated by an experiment."""
        if experiment != "hour_spread":
            return self.n_accounts
        if self.hour_accounts is not None:
            return self.hour_accounts
        return max(self.n_accounts, HOUR_SPREAD_MIN_ACCOUNTS)


def run_all(
    scenario: Scenario,
    targets: TargetsFile,
    settings: CalibrationSettings,
    tick: Callable[[], None] | None = None,
) -> tuple[Runs, dict[str, Any]]:
    """Run the experiments the targets need for every seed.

    Returns:
        (runs, summary: experiment -> days, attempts and capacity overflow, over the seeds).
    """
    if settings.days < CURE_WINDOW_DAYS:
        raise ValueError(f"--days must be at least {CURE_WINDOW_DAYS}, got {settings.days}")
    check_targets(targets, scenario)
    runs: Runs = []
    for seed in settings.seeds:
        arms = {}
        for experiment in experiments_needed(targets):
            days = experiment_days(experiment, settings.days, settings.champion_days)
            arms[experiment] = run_experiment(
                experiment, scenario, settings.accounts_of(experiment), seed, days, tick
            )
        runs.append(arms)
    summary = {
        name: {
            "days": arm.days,
            "attempts": int(sum(int(r[name].events("attempt").sum()) for r in runs)),
            "overflow": int(sum(int(r[name].events("overflow").sum()) for r in runs)),
        }
        for name, arm in runs[0].items()
    }
    return runs, summary


__all__ = [
    "Arm",
    "CalibrationSettings",
    "Measured",
    "experiment_scenario",
    "experiments_needed",
    "measure_all",
    "paired_effect",
    "run_all",
    "run_experiment",
]
