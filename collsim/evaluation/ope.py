"""Off-policy evaluation of a deterministic target policy from a randomised logged run.

Estimand
--------
The logged run (:mod:`collsim.evaluation.logging`) visits a set ``C`` of active
account-days.  For a deterministic target policy π the estimand is

    V(π) = (1/|C|) Σ_{(i,d) ∈ C} R_{i,d}(π(S_d))

the mean *one-day* reward over the logged contexts had the target's plan been
executed on day d, where ``S_d`` is the logged run's state on day d and
``R_{i,d}(a)`` is account i's payments on day d after the plan minus its contact
and legal costs that day (:func:`collsim.evaluation.logging.day_rewards`).  The
logging arm of each account-day is randomised given the past, so the logged data
are a valid sample for this estimand.  :func:`target_truth` computes it exactly
in simulation: for every day d it replays the logged plans for days < d (same
seed, so the same trajectory) and then executes the target's plan on day d.

Limitations: (1) rewards after day d (promises kept later, the excitation's decay,
fatigue, state changes) are not credited to day d's action, and the logged states
are the logging policy's, not the target's — the long-run value of running π
needs a sequential (per-trajectory) estimator; (2) accounts interact only through
capacity: with binding capacity, R_i depends on others' actions (no SUTVA), so
use ample capacity when checking estimates; (3) the logging propensities are the
inner policy's *before* capacity; if capacity cuts its choices they are wrong.

Estimators
----------
The logging "arm" of a row is either the holdout (probability ``h``) or the inner
policy's option ``a`` (probability ``(1 - h) p(a | x)``).  A target decision of
no contact is matched by holdout rows, a target contact by non-holdout rows with
the same option:

    w = holdout / h                                  if π(x) = none
    w = [not holdout and a = π(x)] / ((1 - h) p(a|x)) otherwise

- IPW: mean(w r); SNIPW: Σ w r / Σ w; DR: mean(q̂(x, π(x)) + w (r − q̂(x, a))) with
  a cross-fitted outcome model q̂ (gradient boosting or per-channel ridge).
- Intervals: CLT with standard errors clustered by account (rows of one account
  are dependent), or a cluster bootstrap over accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
from scipy import stats

from collsim.config import Scenario
from collsim.evaluation.logging import LoggedDay, LoggingPolicy, day_rewards
from collsim.plan import Plan
from collsim.sim import Simulation
from collsim.vocab import N_CHANNELS


@dataclass(frozen=True)
class LoggedData:
    """Concatenated logged account-days (rows) with the target's decisions."""

    day: np.ndarray
    account: np.ndarray
    features: np.ndarray
    option: np.ndarray
    holdout: np.ndarray
    arm_propensity: np.ndarray
    target_option: np.ndarray
    reward: np.ndarray
    holdout_share: float
    n_slots: int

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.reward.shape[0])

    @classmethod
    def from_days(cls, days: list[LoggedDay], holdout_share: float, n_slots: int) -> LoggedData:
        """Concatenate :class:`LoggedDay` records."""
        cat = np.concatenate
        return cls(
            day=cat([np.full(d.account.size, d.day) for d in days]),
            account=cat([d.account for d in days]),
            features=np.vstack([d.features for d in days]),
            option=cat([d.option for d in days]),
            holdout=cat([d.holdout for d in days]),
            arm_propensity=cat([d.arm_propensity for d in days]),
            target_option=cat([d.target_option for d in days]),
            reward=cat([d.reward for d in days]),
            holdout_share=holdout_share,
            n_slots=n_slots,
        )

    @classmethod
    def from_logger(cls, logger: LoggingPolicy, n_slots: int) -> LoggedData:
        """The data of a :class:`LoggingPolicy` after :func:`run_logged`."""
        return cls.from_days(logger.days, logger.holdout_share, n_slots)


@dataclass(frozen=True)
class Estimate:
    """A policy-value estimate with its interval."""

    name: str
    value: float
    low: float
    high: float
    se: float

    def covers(self, value: float) -> bool:
        """Whether ``value`` lies in the interval."""
        return self.low <= value <= self.high


def importance_weights(matched: np.ndarray, propensity: np.ndarray) -> np.ndarray:
    """``1[matched] / propensity``: the weight of a deterministic target's decision.

    Shared by the in-simulation estimators and the estimators over lender log files
    (:mod:`collsim.evaluation.offline`).

    Args:
        matched: bool [M], the target's action is the logged arm.
        propensity: float [M], the logging probability of the logged arm.
    """
    return np.where(matched, 1.0 / np.maximum(propensity, 1e-12), 0.0)


def weights(data: LoggedData) -> np.ndarray:
    """Importance weights of the target's decisions (see the module docstring).

    A holdout row's arm propensity is ``h``, so a target's ``none`` weighs ``1 / h``
    on holdout rows.
    """
    target_none = data.target_option < 0
    match = ~data.holdout & (data.option == data.target_option)
    return importance_weights(np.where(target_none, data.holdout, match), data.arm_propensity)


# ---------------------------------------------------------------------------- intervals
@dataclass(frozen=True)
class Interval:
    """How an estimate's interval is made.

    Attributes:
        level: coverage, e.g. 0.95.
        method: ``clt`` (cluster-robust standard error) or ``bootstrap`` (clusters resampled).
        n_boot: bootstrap resamples.
        seed: seed of the bootstrap draws.
    """

    level: float = 0.95
    method: Literal["clt", "bootstrap"] = "clt"
    n_boot: int = 500
    seed: int = 0


def ratio_estimate(
    name: str,
    numerator: np.ndarray,
    denominator: np.ndarray,
    cluster: np.ndarray,
    interval: Interval,
) -> Estimate:
    """Σ numerator / Σ denominator with a cluster-robust CLT or cluster-bootstrap interval.

    The estimators below (and :mod:`collsim.evaluation.offline`) are all this ratio:
    IPW is ``Σ w r / n``, SNIPW ``Σ w r / Σ w``, DR ``Σ ψ / n``.  The bootstrap
    resamples clusters (accounts) with replacement.
    """
    level, method, n_boot, seed = interval.level, interval.method, interval.n_boot, interval.seed
    _, group = np.unique(cluster, return_inverse=True)
    g = int(group.max()) + 1
    num = np.bincount(group, weights=numerator, minlength=g)
    den = np.bincount(group, weights=denominator, minlength=g)
    value = float(num.sum() / den.sum())
    influence = (num - value * den) / den.mean()
    se = float(np.sqrt(g / (g - 1) * np.sum(influence**2)) / g)
    if method == "clt":
        z = float(stats.norm.ppf(0.5 + level / 2.0))
        return Estimate(name, value, value - z * se, value + z * se, se)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(g, np.full(g, 1.0 / g), size=n_boot).astype(float)
    boot = (counts @ num) / np.maximum(counts @ den, 1e-300)
    low, high = np.quantile(boot, [0.5 - level / 2.0, 0.5 + level / 2.0])
    return Estimate(name, value, float(low), float(high), float(boot.std(ddof=1)))


def ipw(
    data: LoggedData,
    level: float = 0.95,
    method: Literal["clt", "bootstrap"] = "clt",
    n_boot: int = 500,
    seed: int = 0,
) -> Estimate:
    """Inverse propensity weighting: mean(w r)."""
    w = weights(data)
    return ratio_estimate(
        "ipw", w * data.reward, np.ones(data.n), data.account, Interval(level, method, n_boot, seed)
    )


def snipw(
    data: LoggedData,
    level: float = 0.95,
    method: Literal["clt", "bootstrap"] = "clt",
    n_boot: int = 500,
    seed: int = 0,
) -> Estimate:
    """Self-normalised IPW: Σ w r / Σ w (interval by linearisation or bootstrap)."""
    w = weights(data)
    interval = Interval(level, method, n_boot, seed)
    return ratio_estimate("snipw", w * data.reward, w, data.account, interval)


# ---------------------------------------------------------------------------- outcome model
def action_features(features: np.ndarray, option: np.ndarray, n_slots: int) -> np.ndarray:
    """Features with the action appended: channel code (N_CHANNELS = none) and slot index."""
    channel = np.where(option < 0, N_CHANNELS, option // n_slots)
    slot = np.where(option < 0, -1, option % n_slots)
    return np.column_stack([features, channel, slot]).astype(np.float64)


class _Regressor(Protocol):
    def fit(self, X: np.ndarray, y: np.ndarray) -> Any: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...


def _model(kind: str, seed: int, n_features: int) -> _Regressor:
    if kind == "hgb":
        from sklearn.ensemble import HistGradientBoostingRegressor

        categorical = np.zeros(n_features + 2, dtype=bool)
        categorical[n_features] = True
        return HistGradientBoostingRegressor(
            max_iter=100,
            learning_rate=0.05,
            min_samples_leaf=50,
            l2_regularization=1.0,
            categorical_features=categorical,
            random_state=seed,
        )
    if kind == "ridge":
        return _PerChannelRidge()
    raise ValueError(f"unknown outcome model {kind!r}; expected 'hgb' or 'ridge'")


class _PerChannelRidge:
    """One ridge regression per channel (and no contact) on the observable features."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> _PerChannelRidge:
        from sklearn.linear_model import Ridge

        self.models: dict[int, Ridge] = {}
        self.fallback = float(y.mean()) if y.size else 0.0
        channel = X[:, -2].astype(int)
        for c in np.unique(channel):
            sel = channel == c
            self.models[int(c)] = Ridge(alpha=10.0).fit(X[sel, :-2], y[sel])
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = np.full(X.shape[0], self.fallback)
        channel = X[:, -2].astype(int)
        for c, model in self.models.items():
            sel = channel == c
            if np.any(sel):
                out[sel] = model.predict(X[sel, :-2])
        return out


def outcome_predictions(
    data: LoggedData, kind: str = "hgb", folds: int = 2, seed: int = 0, n_threads: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fitted q̂(x, logged option) and q̂(x, target option).

    Accounts are split into ``folds`` groups; each group's predictions come from a
    model fitted on the other groups.  ``n_threads`` caps OpenMP/BLAS threads (on a
    shared machine one thread is much faster than contended ones).
    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    accounts = np.unique(data.account)
    fold_of = dict(zip(accounts.tolist(), rng.permutation(accounts.size) % folds, strict=True))
    fold = np.array([fold_of[a] for a in data.account.tolist()])
    X_logged = action_features(data.features, data.option, data.n_slots)
    X_target = action_features(data.features, data.target_option, data.n_slots)
    q_logged = np.zeros(data.n)
    q_target = np.zeros(data.n)
    with threadpool_limits(limits=n_threads):
        for k in range(folds):
            train, test = fold != k, fold == k
            model = _model(kind, seed, data.features.shape[1])
            model.fit(X_logged[train], data.reward[train])
            q_logged[test] = model.predict(X_logged[test])
            q_target[test] = model.predict(X_target[test])
    return q_logged, q_target


@dataclass(frozen=True)
class OutcomeModel:
    """The cross-fitted outcome model of :func:`doubly_robust`.

    Attributes:
        kind: the regressor (see :func:`outcome_predictions`), e.g. ``hgb``.
        folds: cross-fitting folds.
    """

    kind: str = "hgb"
    folds: int = 2


def dr_terms(
    q_target: np.ndarray, q_logged: np.ndarray, w: np.ndarray, reward: np.ndarray
) -> np.ndarray:
    """Per-row doubly robust terms ``q̂(x, π(x)) + w (r − q̂(x, a))`` (their mean is DR)."""
    return q_target + w * (reward - q_logged)


def doubly_robust(
    data: LoggedData,
    level: float = 0.95,
    method: Literal["clt", "bootstrap"] = "clt",
    outcome: OutcomeModel = OutcomeModel(),
    n_boot: int = 500,
    seed: int = 0,
) -> Estimate:
    """Doubly robust: mean(q̂(x, π(x)) + w (r − q̂(x, a))) with a cross-fitted model."""
    q_logged, q_target = outcome_predictions(data, outcome.kind, outcome.folds, seed)
    psi = dr_terms(q_target, q_logged, weights(data), data.reward)
    interval = Interval(level, method, n_boot, seed)
    return ratio_estimate(f"dr_{outcome.kind}", psi, np.ones(data.n), data.account, interval)


def evaluate(
    data: LoggedData,
    level: float = 0.95,
    method: Literal["clt", "bootstrap"] = "clt",
    model: str = "hgb",
    seed: int = 0,
) -> dict[str, Estimate]:
    """IPW, SNIPW and DR estimates of the target's one-day value."""
    return {
        "ipw": ipw(data, level, method, seed=seed),
        "snipw": snipw(data, level, method, seed=seed),
        "dr": doubly_robust(data, level, method, OutcomeModel(model), seed=seed),
    }


# ---------------------------------------------------------------------------- truth
def replay(
    scenario: Scenario, seed: int, plans: list[Plan], n_accounts: int | None = None
) -> Simulation:
    """Simulate with recorded plans; the same seed reproduces the logged run exactly."""
    sim = Simulation(scenario, seed, n_accounts=n_accounts)
    for plan in plans:
        sim.begin_day()
        sim.finish_day(plan)
    return sim


def target_truth(
    scenario: Scenario, seed: int, logger: LoggingPolicy, n_accounts: int | None = None
) -> np.ndarray:
    """float per logged row: the one-day reward had the target's plan run that day.

    For each logged day d: replay the logged plans of days < d, then execute the
    target's recorded plan of day d and read day d's rewards.  Costs O(D²) simulated
    days; meant for small test scenarios.  The mean of the result is V(π).
    """
    if len(logger.target_plans) != len(logger.days):
        raise ValueError("the logger recorded no target decisions (pass target= to LoggingPolicy)")
    truth = []
    for d, logged in enumerate(logger.days):
        sim = replay(scenario, seed, logger.plans[:d], n_accounts)
        sim.begin_day()
        sim.finish_day(logger.target_plans[d])
        rewards = day_rewards(sim.day_events(), sim.n)
        truth.append(rewards[logged.account])
    return np.concatenate(truth)
