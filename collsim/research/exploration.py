"""Training logs for response models: exploration runs and H-day portfolio-value outcomes.

An exploration run simulates a scenario under a randomised policy (by default
:class:`ExplorationPolicy`: a share of account-days get a uniformly random allowed
option, the others the champion's decision) and records, per active account-day:

* the observable features the policy saw (:func:`collsim.features.observable_features`);
* the action actually attempted (from the ledger: the first contact attempt of the
  account in that day's decision epoch; ``none`` if nothing was attempted, e.g. the
  planned contact overflowed its capacity);
* the outcome: the account's **change in portfolio value over the next H days**
  (``collsim.valuation``, discounted to day d at ``valuation.npv_rate_annual``)

      y(n, d) = Σ_{e = d}^{d+H-1} f(e − d) · [payments(n, e) − the account's own costs(n, e)
                                             − complaint_cost · complaints(n, e)]
                + f(H) · V(n, d + H) − V(n, d)

  with ``V`` the account's terminal value (open balance × expected recovery of its
  state, :func:`collsim.valuation.account_values`) at each decision, so a cure is
  worth its payment plus the move of the balance to ``current``, and a write-off or
  an early suit loses value.  Staffed agent hours are not an account's cost (they are
  paid whatever the plan; capacity is the allocation's constraint).  The sum runs
  over the decision epochs ``e``; epoch ``e`` is everything the ledger
  records after day ``e``'s plan was made and before day ``e + 1``'s plan is made
  (so the morning of ``e + 1`` — promises falling due, letters arriving — belongs to
  epoch ``e``).  Rows whose window would
  run past the end of the simulated days are dropped (no censoring).

The default horizon is ``H = 14`` days: the contact's excitation decays with a
5-day time constant in the default scenario (≈ 94 % of its effect within 14 days)
and promises fall due within 7 days, while a longer window adds the noise of later,
unrelated actions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collsim.config import Scenario
from collsim.features import observable_features
from collsim.ledger import EVENT
from collsim.plan import Plan, Policy, Snapshot
from collsim.policies.baselines import RandomPolicy
from collsim.policies.champion import TieredChampion
from collsim.policies.models.treatment import (
    TREATMENT_OFFER,
    TREATMENT_VARIANT,
    TreatmentSupport,
    rule_allowed,
)
from collsim.treatments import daily_discount_factors
from collsim.valuation import account_values
from collsim.vocab import N_CHANNELS, VARIANTS, Channel, Outcome

NONE_CHANNEL = N_CHANNELS
"""Column of ``none`` (no contact) in the channel one-hot and in per-channel arrays."""


@dataclass
class TrainingLog:
    """Logged account-days of exploration runs (rows aligned).

    Attributes:
        features: float32 [M, F] observable features at decision time.
        channel: int64 [M] attempted channel (``NONE_CHANNEL`` = no contact).
        hour: int64 [M] local hour of the attempt (-1: none or untimed).
        outcome: float64 [M] change in portfolio value over the next ``horizon`` days.
        paid: bool [M] the account paid something within the horizon.
        day: int64 [M] day index within its run.
        run: int64 [M] which run (seed) the row comes from.
        horizon: H in days.
        attempts_channel, attempts_hour, attempts_response: per attempt (all
            attempts of the runs): channel, local hour and whether it got a response
            (a right-party conversation for calls and visits, a same-day link payment
            for messages); used for the hour multipliers.
        attempts_cost: float64 per attempt: its cost (for legal, plus the case cost).
        outcome_long: float64 [M] the same over ``long_horizon`` days (NaN where the
            run ends before); used for legal action, whose judgment takes weeks.
        long_horizon: ``horizon`` + the scenario's legal duration, in days.
        treatment: int64 [M] treatment code (``offer * len(VARIANTS) + variant``, 0 =
            none/standard) of the attempted contact, as applied after the engine's
            treatment gate; None for logs collected without treatments.
        complaint: bool [M] a contact attempt of that day ended in a complaint (None for
            logs collected without treatments).
    """

    features: np.ndarray
    channel: np.ndarray
    hour: np.ndarray
    outcome: np.ndarray
    paid: np.ndarray
    day: np.ndarray
    run: np.ndarray
    horizon: int
    attempts_channel: np.ndarray
    attempts_hour: np.ndarray
    attempts_response: np.ndarray
    attempts_cost: np.ndarray
    outcome_long: np.ndarray
    long_horizon: int
    treatment: np.ndarray | None = None
    complaint: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of logged account-days."""
        return int(self.outcome.shape[0])

    @staticmethod
    def concatenate(logs: list[TrainingLog]) -> TrainingLog:
        """Join logs of several runs (run ids are renumbered in order)."""
        if not logs:
            raise ValueError("no logs to concatenate")
        horizons = {(log.horizon, log.long_horizon) for log in logs}
        if len(horizons) != 1:
            raise ValueError(f"logs have different horizons {sorted(horizons)}")
        cat = np.concatenate
        return TrainingLog(
            features=cat([g.features for g in logs]),
            channel=cat([g.channel for g in logs]),
            hour=cat([g.hour for g in logs]),
            outcome=cat([g.outcome for g in logs]),
            paid=cat([g.paid for g in logs]),
            day=cat([g.day for g in logs]),
            run=cat([np.full(g.n, i, dtype=np.int64) for i, g in enumerate(logs)]),
            horizon=logs[0].horizon,
            attempts_channel=cat([g.attempts_channel for g in logs]),
            attempts_hour=cat([g.attempts_hour for g in logs]),
            attempts_response=cat([g.attempts_response for g in logs]),
            attempts_cost=cat([g.attempts_cost for g in logs]),
            outcome_long=cat([g.outcome_long for g in logs]),
            long_horizon=logs[0].long_horizon,
            treatment=(
                None
                if any(g.treatment is None for g in logs)
                else cat([g.treatment for g in logs if g.treatment is not None])
            ),
            complaint=(
                None
                if any(g.complaint is None for g in logs)
                else cat([g.complaint for g in logs if g.complaint is not None])
            ),
        )


class ExplorationPolicy:
    """Randomised exploration around the champion.

    Each active account-day is, independently with probability ``random_share``,
    given a uniformly random allowed option (with probability ``contact_rate``,
    else no contact); the other account-days get the champion's decision.  Capacity
    is filled by the two inner policies separately; the engine drops what does not
    fit (the log records what was actually attempted).

    With ``treatments``, every contact (random or the champion's) also carries a
    random treatment: (none, standard) with probability ``none_share`` (the control
    group, larger than any one treatment's), else one drawn uniformly from the others
    the scenario supports on its channel at the account's DPD and the rule set allows,
    so treatment effects can be compared within any channel and DPD.

    Args:
        scenario: the scenario (selects the champion tree).
        random_share: share of account-days decided at random.
        contact_rate: contact probability of the random part.
        treatments: randomise treatments on every contact.
        none_share: with ``treatments``, probability of (none, standard).
    """

    policy_id = "exploration"

    def __init__(
        self,
        scenario: Scenario,
        random_share: float = 0.5,
        contact_rate: float = 0.5,
        treatments: bool = False,
        none_share: float = 0.5,
    ):
        if not 0.0 <= random_share <= 1.0:
            raise ValueError(f"random_share must be in [0, 1], got {random_share}")
        self.random = RandomPolicy(contact_rate=contact_rate)
        self.champion = TieredChampion(scenario.champion)
        self.random_share = random_share
        self.support = None
        self.none_share = none_share
        if treatments:
            self.support = TreatmentSupport.from_scenario(scenario)

    def decide(self, snapshot: Snapshot) -> Plan:
        """Mix a random plan and the champion's plan account by account."""
        take_random = snapshot.rng.random(snapshot.n) < self.random_share
        plan = self.random.decide(snapshot)
        if self.random_share < 1.0:
            champion = self.champion.decide(snapshot)
            for name in ("channel", "slot_hour", "priority", "expected_value"):
                mixed = np.where(take_random, getattr(plan, name), getattr(champion, name))
                setattr(plan, name, mixed.astype(getattr(plan, name).dtype))
            plan.propensity = np.where(take_random, plan.propensity, np.nan)
            plan.policy_id = self.policy_id
        if self.support is not None:
            self._randomise_treatments(snapshot, plan)
        return plan

    def _randomise_treatments(self, snapshot: Snapshot, plan: Plan) -> None:
        """Give every planned contact a random allowed treatment (see the class doc)."""
        assert self.support is not None
        plan.offer = np.zeros(plan.n, dtype=np.int8)
        plan.variant = np.zeros(plan.n, dtype=np.int8)
        rows = np.flatnonzero(plan.channel >= 0)
        if rows.size == 0:
            return
        channel = plan.channel[rows].astype(np.int64)
        allowed = self.support.allowed(snapshot.accounts.dpd[rows])[np.arange(rows.size), channel]
        allowed &= rule_allowed(snapshot, rows)
        allowed[:, 0] = False
        keys = np.where(allowed, snapshot.rng.random(allowed.shape), -1.0)
        control = snapshot.rng.random(rows.size) < self.none_share
        t = np.where(control | ~allowed.any(axis=1), 0, keys.argmax(axis=1))
        plan.offer[rows] = TREATMENT_OFFER[t]
        plan.variant[rows] = TREATMENT_VARIANT[t]


class _Recorder:
    """Wraps a policy; records features and the active rows at each decision."""

    def __init__(self, inner: Policy) -> None:
        self.inner = inner
        self.policy_id = inner.policy_id
        self.rows: list[np.ndarray] = []
        self.features: list[np.ndarray] = []

    def decide(self, snapshot: Snapshot) -> Plan:
        rows = np.flatnonzero(snapshot.active)
        self.rows.append(rows)
        self.features.append(observable_features(snapshot)[rows])
        return self.inner.decide(snapshot)


def collect_log(
    scenario: Scenario,
    seed: int,
    *,
    n_accounts: int | None = None,
    days: int | None = None,
    horizon: int = 14,
    policy: Policy | None = None,
    treatments: bool = False,
) -> TrainingLog:
    """Simulate one exploration run and return its training log.

    Args:
        scenario: the scenario.
        seed: the run's seed.
        n_accounts: portfolio size (default: the scenario's; capacity scales).
        days: days to simulate (default: the scenario's); rows are logged for the
            first ``days - horizon`` days.
        horizon: H, the outcome window in days.
        policy: the exploration policy (default: :class:`ExplorationPolicy`).
        treatments: record each row's treatment (``TrainingLog.treatment``); the
            default policy then randomises treatments.

    Returns:
        The run's TrainingLog.
    """
    from collsim.sim.engine import Simulation

    if horizon < 1:
        raise ValueError(f"horizon must be >= 1 day, got {horizon}")
    recorder = _Recorder(
        policy if policy is not None else ExplorationPolicy(scenario, treatments=treatments)
    )
    sim = Simulation(scenario, seed=seed, n_accounts=n_accounts)
    n_days = days if days is not None else scenario.sim.days
    if n_days <= horizon:
        raise ValueError(f"days ({n_days}) must exceed the horizon ({horizon})")
    marks, values = [], []
    for _ in range(n_days):
        snapshot = sim.begin_day()
        marks.append(sim.ledger.mark())
        values.append(account_values(sim))
        sim.finish_day(recorder.decide(snapshot))
    values.append(account_values(sim))
    return _build_log(sim, recorder, np.asarray(marks), horizon, treatments, np.vstack(values))


def _build_log(
    sim: object,
    recorder: _Recorder,
    marks: np.ndarray,
    horizon: int,
    treatments: bool = False,
    values: np.ndarray | None = None,
) -> TrainingLog:
    """Turn a finished run's ledger and recorded features into a TrainingLog.

    ``values`` (float [days + 1, N]): :func:`collsim.valuation.account_values` at each
    decision and at the end; None values every open account at 0 (net cash only).
    """
    from collsim.sim.engine import Simulation

    assert isinstance(sim, Simulation)
    n, n_days = sim.n, marks.shape[0]
    c = sim.ledger.columns()
    row = np.arange(c["event"].shape[0])
    epoch = np.searchsorted(marks, row, side="right") - 1  # -1: before the first decision
    event, account = c["event"], c["account"]
    after = epoch >= 0

    # Portfolio-value flows per (epoch, account): payments - the account's own costs -
    # complaints x complaint cost, discounted to day 0; then the discounted open value.
    valuation = sim.scenario.valuation
    pay = after & (event == EVENT["payment"])
    cost = after & (account >= 0) & (c["cost"] != 0)
    said_all = after & (event == EVENT["attempt"]) & (c["outcome"] == Outcome.COMPLAINT)
    cash = np.zeros((n_days, n))
    np.add.at(cash, (epoch[pay], account[pay]), c["amount"][pay])
    np.add.at(cash, (epoch[cost], account[cost]), -c["cost"][cost])
    np.add.at(cash, (epoch[said_all], account[said_all]), -valuation.complaint_cost)
    factor = daily_discount_factors(np.arange(n_days + 1), valuation.npv_rate_annual)
    held = np.zeros((n_days + 1, n)) if values is None else values * factor[:, None]
    paid_count = np.zeros((n_days, n), dtype=np.int32)
    np.add.at(paid_count, (epoch[pay], account[pay]), 1)
    cum = np.vstack([np.zeros((1, n)), np.cumsum(cash * factor[:-1, None], axis=0)])

    def gain(d: int, end: int, rows: np.ndarray) -> np.ndarray:
        """Change in portfolio value of ``rows`` over epochs d..end-1, valued at day d."""
        return (cum[end, rows] - cum[d, rows] + held[end, rows] - held[d, rows]) / factor[d]

    cum_paid = np.vstack([np.zeros((1, n), np.int32), np.cumsum(paid_count, axis=0)])

    # The action taken: the first attempt of each (epoch, account).
    att = np.flatnonzero(after & (event == EVENT["attempt"]))
    first = att[np.unique(epoch[att] * n + account[att], return_index=True)[1]]
    taken_channel = np.full((n_days, n), NONE_CHANNEL, dtype=np.int64)
    taken_hour = np.full((n_days, n), -1, dtype=np.int64)
    taken_channel[epoch[first], account[first]] = c["channel"][first]
    taken_hour[epoch[first], account[first]] = c["hour"][first]
    taken_treatment = np.zeros((n_days, n), dtype=np.int64)
    offer_code = np.maximum(c["offer"][first], 0).astype(np.int64)
    variant_code = np.maximum(c["variant"][first], 0).astype(np.int64)
    taken_treatment[epoch[first], account[first]] = offer_code * len(VARIANTS) + variant_code
    complained = np.zeros((n_days, n), dtype=bool)
    said = att[c["outcome"][att] == Outcome.COMPLAINT]
    complained[epoch[said], account[said]] = True

    # Rows: active account-days whose whole window was simulated.
    keys = ("f", "ch", "h", "y", "p", "d", "L", "t", "c")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    long = horizon + sim.scenario.legal.duration_days
    for d in range(n_days - horizon + 1):
        rows = recorder.rows[d]
        parts["f"].append(recorder.features[d])
        parts["ch"].append(taken_channel[d, rows])
        parts["h"].append(taken_hour[d, rows])
        parts["t"].append(taken_treatment[d, rows])
        parts["c"].append(complained[d, rows])
        parts["y"].append(gain(d, d + horizon, rows))
        parts["p"].append(cum_paid[d + horizon, rows] > cum_paid[d, rows])
        parts["d"].append(np.full(rows.size, d, dtype=np.int64))
        parts["L"].append(
            gain(d, d + long, rows) if d + long <= n_days else np.full(rows.size, np.nan)
        )
    cat = np.concatenate

    # Attempt responses for the hour multipliers.
    outcome = c["outcome"][att]
    response = outcome >= Outcome.RIGHT_PARTY
    link = pay & (c["channel"] >= 0) & (c["hour"] >= 0)
    link_key = np.unique(
        epoch[link] * (n * N_CHANNELS) + account[link] * N_CHANNELS + c["channel"][link]
    )
    att_key = epoch[att] * (n * N_CHANNELS) + account[att] * N_CHANNELS + c["channel"][att]
    response |= np.isin(att_key, link_key)
    return TrainingLog(
        features=cat(parts["f"]).astype(np.float32),
        channel=cat(parts["ch"]),
        hour=cat(parts["h"]),
        outcome=cat(parts["y"]),
        paid=cat(parts["p"]),
        day=cat(parts["d"]),
        run=np.zeros(sum(x.size for x in parts["d"]), dtype=np.int64),
        horizon=horizon,
        attempts_channel=c["channel"][att].astype(np.int64),
        attempts_hour=c["hour"][att].astype(np.int64),
        attempts_response=response,
        attempts_cost=c["cost"][att]
        + np.where(c["channel"][att] == Channel.LEGAL, sim.scenario.legal.cost_per_case, 0.0),
        outcome_long=cat(parts["L"]),
        long_horizon=long,
        treatment=cat(parts["t"]) if treatments else None,
        complaint=cat(parts["c"]) if treatments else None,
    )
