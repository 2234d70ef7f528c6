"""Logging for off-policy evaluation: a randomised logging policy with a holdout, and its log.

:class:`LoggingPolicy` wraps a stochastic policy that records propensities (e.g.
:class:`~collsim.policies.baselines.RandomPolicy`).  Each day it

1. lets the inner policy decide;
2. holds out each active account with probability ``holdout_share`` (drawn from
   the run's policy stream): a held-out account gets channel ``none`` and
   ``holdout=True``;
3. records, per active account-day, the observable features, the logged arm
   (holdout, or the inner policy's option), its probability, and — if a
   ``target`` policy is given — the target's decision on the same snapshot.

:func:`run_logged` drives a :class:`~collsim.sim.Simulation` day by day and adds
the reward of every logged account-day:

    reward(i, d) = payments received by account i on day d after the day's plan
                   was made (conversation payments, payment links, hazard payments,
                   including those the day's contact excited)
                   − the cost of i's contact attempts and legal filings on day d.

Promises made on day d and kept later, and the longer decay of the contact's
excitation, are *not* in the reward: it is a one-day outcome (see
:mod:`collsim.evaluation.ope` for what that estimand means).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from collsim.features import observable_features
from collsim.ledger import EVENT
from collsim.plan import Plan, Policy, Snapshot

HOLDOUT_REASON = "holdout (random control)"


@dataclass
class LoggedDay:
    """What was logged on one day (rows = accounts active that day).

    Attributes:
        day: local day number.
        account: int [M] account rows.
        features: float32 [M, F] observable features (``collsim.features.FEATURE_NAMES``).
        option: int [M] logged option (-1 = no contact).
        holdout: bool [M] held out as control.
        arm_propensity: float [M] probability of the logged arm: ``h`` for a
            holdout row, ``(1 - h) * p_inner(option | x)`` otherwise.
        propensity: float [M] probability of the logged channel/slot (the plan's
            propensity; for a holdout row ``h + (1 - h) * p_inner(none | x)``).
        target_option: int [M] the target policy's option on the same snapshot (or -1).
        reward: float [M] one-day net value (filled by :func:`run_logged`).
    """

    day: int
    account: np.ndarray
    features: np.ndarray
    option: np.ndarray
    holdout: np.ndarray
    arm_propensity: np.ndarray
    propensity: np.ndarray
    target_option: np.ndarray
    reward: np.ndarray = field(default_factory=lambda: np.zeros(0))


class LoggingPolicy:
    """A stochastic policy plus a random holdout, recording every decision.

    Args:
        inner: a stochastic policy whose plans carry ``propensity`` (probability of
            the chosen action).
        holdout_share: probability that an active account is held out (channel none).
        target: a deterministic policy to evaluate later; its decision on each
            logged snapshot is recorded (it gets its own generator, so it never
            shifts the logging policy's draws).
        seed: seed of the target's generator.
    """

    def __init__(
        self, inner: Policy, holdout_share: float = 0.1, target: Policy | None = None, seed: int = 0
    ) -> None:
        if not 0.0 < holdout_share < 1.0:
            raise ValueError(f"holdout_share must be in (0, 1), got {holdout_share}")
        self.inner = inner
        self.holdout_share = holdout_share
        self.target = target
        self.seed = seed
        self.policy_id = f"logged:{inner.policy_id}"
        self.days: list[LoggedDay] = []
        self.plans: list[Plan] = []
        self.target_plans: list[Plan] = []

    def target_snapshot(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot the target sees: the same, with its own generator keyed by day."""
        rng = np.random.default_rng([self.seed, snapshot.day, 0x7A5])
        return replace(snapshot, rng=rng)

    def decide(self, snapshot: Snapshot) -> Plan:
        """The inner plan with the holdout applied; the day is recorded."""
        plan = self.inner.decide(snapshot)
        h = self.holdout_share
        held = snapshot.active & (snapshot.rng.random(snapshot.n) < h)
        inner_option = snapshot.options.encode(plan.channel, plan.slot_hour)
        p_none = _inner_none_probability(self.inner, snapshot, plan, inner_option)
        active = snapshot.active
        arm = np.where(held, h, np.where(active, (1.0 - h) * plan.propensity, plan.propensity))
        propensity = np.where(
            held | (active & (inner_option < 0)),
            h + (1.0 - h) * p_none,
            arm,
        )
        logged = _with_holdout(plan, held, propensity)
        target_option = np.full(snapshot.n, -1, dtype=np.int64)
        if self.target is not None:
            target_plan = self.target.decide(self.target_snapshot(snapshot))
            self.target_plans.append(target_plan)
            target_option = snapshot.options.encode(target_plan.channel, target_plan.slot_hour)
        rows = np.flatnonzero(active)
        self.days.append(
            LoggedDay(
                day=snapshot.day,
                account=rows,
                features=observable_features(snapshot)[rows],
                option=np.where(held, -1, inner_option)[rows],
                holdout=held[rows],
                arm_propensity=arm[rows],
                propensity=propensity[rows],
                target_option=target_option[rows],
            )
        )
        self.plans.append(logged)
        return logged


def _inner_none_probability(
    inner: Policy, snapshot: Snapshot, plan: Plan, option: np.ndarray
) -> np.ndarray:
    """P(inner policy plans no contact | x): exact for RandomPolicy, else from its plan.

    Rows where a non-random inner policy chose a contact get NaN (unknown).
    """
    from collsim.policies.baselines import RandomPolicy

    if isinstance(inner, RandomPolicy):
        allowed = snapshot.option_mask().any(axis=1)
        return np.where(allowed, 1.0 - inner.contact_rate, 1.0)
    return np.where(option < 0, plan.propensity, np.nan)


def _with_holdout(plan: Plan, held: np.ndarray, propensity: np.ndarray) -> Plan:
    reasons = (*plan.reasons, HOLDOUT_REASON)
    return replace(
        plan,
        channel=np.where(held, -1, plan.channel).astype(plan.channel.dtype),
        slot_hour=np.where(held, -1, plan.slot_hour).astype(plan.slot_hour.dtype),
        priority=np.where(held, 0, plan.priority).astype(plan.priority.dtype),
        expected_value=np.where(held, np.nan, plan.expected_value),
        propensity=propensity,
        holdout=plan.holdout | held,
        reason=np.where(held, len(reasons) - 1, plan.reason).astype(plan.reason.dtype),
        reasons=reasons,
        policy_id=f"logged:{plan.policy_id}",
    )


def day_rewards(events: dict[str, np.ndarray], n: int) -> np.ndarray:
    """float [n]: payments minus contact and legal costs per account in ``events``."""
    event, account = events["event"], events["account"]
    paid = event == EVENT["payment"]
    cost = (event == EVENT["attempt"]) | (event == EVENT["legal_filed"])
    reward = np.bincount(account[paid], weights=events["amount"][paid], minlength=n)
    reward -= np.bincount(account[cost], weights=events["cost"][cost], minlength=n)
    return reward[:n]


def run_logged(sim: object, logger: LoggingPolicy, days: int) -> list[LoggedDay]:
    """Simulate ``days`` days under ``logger`` and fill each logged day's rewards.

    Args:
        sim: a :class:`~collsim.sim.Simulation`.
        logger: the logging policy.
        days: days to simulate.
    """
    from collsim.sim import Simulation

    if not isinstance(sim, Simulation):
        raise ValueError("run_logged needs a Simulation")
    for _ in range(days):
        snapshot = sim.begin_day()
        sim.finish_day(logger.decide(snapshot))
        logged = logger.days[-1]
        logged.reward = day_rewards(sim.day_events(), sim.n)[logged.account]
    return logger.days
