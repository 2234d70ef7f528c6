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

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import numpy as np
from scipy import stats

from collsim.config import Scenario
from collsim.evaluation.logging import LoggedDay, LoggingPolicy, day_rewards
from collsim.plan import Plan
from collsim.sim import Simulation
from collsim.vocab import N_CHANNELS

K = TypeVar("K", bound=Hashable)


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


def cluster_codes(cluster: np.ndarray) -> np.ndarray:
    """``np.unique(cluster, return_inverse=True)[1]``: each row's rank among the distinct ids.

    Without sorting when the ids are small non-negative integers (account rows, day
    strata): O(rows) instead of O(rows log rows).
    """
    small = cluster.size > 0 and np.issubdtype(cluster.dtype, np.integer)
    if small and cluster.min() >= 0 and cluster.max() < 4 * cluster.size + 1024:
        present = np.zeros(int(cluster.max()) + 1, dtype=bool)
        present[cluster] = True
        return (np.cumsum(present) - 1)[cluster]
    return np.unique(cluster, return_inverse=True)[1].reshape(-1)


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
    return ratio_estimates({name: (numerator, denominator)}, cluster, interval)[name]


def ratio_estimates(
    terms: dict[K, tuple[np.ndarray, np.ndarray]], cluster: np.ndarray, interval: Interval
) -> dict[K, Estimate]:
    """:func:`ratio_estimate` of several (numerator, denominator) pairs on the same rows.

    The clusters are found once and every pair uses the same bootstrap resamples
    (each a multinomial count per cluster: the counts of ``g`` uniform draws among
    the ``g`` clusters, drawn one resample at a time so memory stays O(g)).
    """
    group = cluster_codes(cluster)
    g = int(group.max()) + 1
    names = list(terms)
    num = np.column_stack([np.bincount(group, weights=terms[k][0], minlength=g) for k in names])
    den = np.column_stack([np.bincount(group, weights=terms[k][1], minlength=g) for k in names])
    value = num.sum(axis=0) / den.sum(axis=0)
    influence = (num - value * den) / den.mean(axis=0)
    se = np.sqrt(g / (g - 1) * np.sum(influence**2, axis=0)) / g
    level = interval.level
    if interval.method == "clt":
        z = float(stats.norm.ppf(0.5 + level / 2.0))
        low, high = value - z * se, value + z * se
    else:
        boot = _bootstrap_ratios(num, den, interval.n_boot, interval.seed)
        low, high = np.quantile(boot, [0.5 - level / 2.0, 0.5 + level / 2.0], axis=0)
        se = boot.std(axis=0, ddof=1)
    return {
        k: Estimate(str(k), float(value[i]), float(low[i]), float(high[i]), float(se[i]))
        for i, k in enumerate(names)
    }


def _bootstrap_ratios(num: np.ndarray, den: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """[n_boot, K]: Σ counts·num / Σ counts·den of each resample of the g clusters."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    g = num.shape[0]
    boot = np.empty((n_boot, num.shape[1]))
    with threadpool_limits(limits=1):
        for b in range(n_boot):
            counts = np.bincount(rng.integers(0, g, size=g), minlength=g).astype(float)
            boot[b] = (counts @ num) / np.maximum(counts @ den, 1e-300)
    return boot


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
    channel = _option_channel(option, n_slots)
    slot = np.where(option < 0, -1, option % n_slots)
    return np.column_stack([features, channel, slot]).astype(np.float64)


class _Regressor(Protocol):
    def fit(self, X: np.ndarray, y: np.ndarray) -> Any: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...


def _model(kind: str, seed: int, n_features: int) -> _Regressor:
    if kind != "hgb":
        raise ValueError(f"unknown outcome model {kind!r}; expected 'hgb' or 'ridge'")
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


RIDGE_ALPHA = 10.0
"""L2 penalty of the per-channel ridge outcome model."""
_CHUNK_ROWS = 1 << 16


def _option_channel(option: np.ndarray, n_slots: int) -> np.ndarray:
    """Channel code of each option (``N_CHANNELS`` = no contact)."""
    return np.where(option < 0, N_CHANNELS, option // n_slots).astype(np.int64)


@dataclass
class _RidgeSums:
    """Least-squares sums per (reward, fold, channel) on shifted features.

    Count, Σx and Σxxᵀ depend on the reward only through its fold split; the
    sums of the last fold are the totals minus the other folds'.
    """

    count: np.ndarray
    sx: np.ndarray
    sxx: np.ndarray
    sy: np.ndarray
    sxy: np.ndarray

    @classmethod
    def zeros(cls, lead: tuple[int, ...], p: int, rewards: tuple[int, ...] = ()) -> _RidgeSums:
        """Zero sums for ``lead`` cells of ``p`` features and ``rewards`` reward columns."""
        return cls(np.zeros(lead), np.zeros((*lead, p)), np.zeros((*lead, p, p)),
                   np.zeros((*lead, *rewards)), np.zeros((*lead, *rewards, p)))  # fmt: skip

    def add(self, at: tuple[int, ...], x: np.ndarray, y: np.ndarray) -> None:
        """Add rows ``x`` with reward(s) ``y`` (the last axis of ``y`` may be rewards)."""
        self.count[at] += x.shape[0]
        self.sx[at] += x.sum(axis=0)
        self.sxx[at] += x.T @ x
        self.sy[at] += y.sum(axis=0)
        self.sxy[at] += (x.T @ y).T

    def solve(self, o: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(coef [groups, p], intercept [groups]): reward ``o``'s ridge fitted off fold ``k``.

        A channel without training rows predicts the training mean (as the
        per-channel sklearn ridges did); every ridge centres features and reward.
        """
        train = np.arange(self.count.shape[1]) != k
        n, sx, sxx = (v[o, train].sum(0) for v in (self.count, self.sx, self.sxx))
        sy, sxy = self.sy[o, train].sum(0), self.sxy[o, train].sum(0)
        p = sx.shape[1]
        coef = np.zeros((n.size, p))
        intercept = np.full(n.size, sy.sum() / n.sum() if n.sum() > 0 else 0.0)
        for c in np.flatnonzero(n > 0):
            mx, my = sx[c] / n[c], sy[c] / n[c]
            gram = sxx[c] - n[c] * np.outer(mx, mx) + RIDGE_ALPHA * np.eye(p)
            coef[c] = np.linalg.solve(gram, sxy[c] - n[c] * mx * my)
            intercept[c] = my - mx @ coef[c]
        return coef, intercept


def ridge_predictions(
    data: LoggedData, rewards: list[np.ndarray], seeds: list[int], folds: int = 2
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cross-fitted per-channel ridge q̂(x, logged option), q̂(x, target option) per reward.

    One ridge per logged channel (and no contact) on the observable features: the
    closed-form ridge of :data:`RIDGE_ALPHA` with an intercept (``(XᶜᵀXᶜ + αI)β =
    Xᶜᵀyᶜ`` on centred data).  Reward ``i`` splits the accounts into folds with
    ``seeds[i]`` as :func:`outcome_predictions` does.  The sums are accumulated
    chunk by chunk in float64, every reward in the same pass, so no design matrix
    is built.  BLAS runs on one thread (its many small products are slower on
    contended threads).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _ridge_predictions(data, rewards, seeds, folds)


def _ridge_predictions(
    data: LoggedData, rewards: list[np.ndarray], seeds: list[int], folds: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    features, n, groups = data.features, data.n, N_CHANNELS + 1
    index = cluster_codes(data.account)
    fold = np.stack([(np.random.default_rng(s).permutation(int(index.max()) + 1) % folds)[index]
                     for s in seeds])  # fmt: skip
    logged = _option_channel(data.option, data.n_slots)
    target = _option_channel(data.target_option, data.n_slots)
    shift = features[: min(n, _CHUNK_ROWS)].mean(axis=0, dtype=np.float64)
    y = np.column_stack(rewards)
    p = features.shape[1]
    sums = _RidgeSums.zeros((len(rewards), folds, groups), p)
    total = _RidgeSums.zeros((groups,), p, (len(rewards),))
    for part in _chunks(n):
        order = np.argsort(logged[part], kind="stable")
        x = features[part][order].astype(np.float64) - shift
        y_part, fold_part, channel = y[part][order], fold[:, part][:, order], logged[part][order]
        edges = np.searchsorted(channel, np.arange(groups + 1))
        for c in map(int, np.flatnonzero(np.diff(edges))):
            block = slice(edges[c], edges[c + 1])
            total.add((c,), x[block], y_part[block])
            for o, k in np.ndindex(len(rewards), folds - 1):
                sel = fold_part[o, block] == k
                sums.add((o, k, c), x[block][sel], y_part[block][sel, o])
    for v in ("count", "sx", "sxx"):
        getattr(sums, v)[:, -1] = getattr(total, v) - getattr(sums, v)[:, :-1].sum(axis=1)
    sums.sy[:, -1] = total.sy.T - sums.sy[:, :-1].sum(axis=1)
    sums.sxy[:, -1] = np.moveaxis(total.sxy, 1, 0) - sums.sxy[:, :-1].sum(axis=1)
    models = [[sums.solve(o, k) for k in range(folds)] for o in range(len(rewards))]
    coef = np.array([[m[0] for m in by] for by in models])  # [rewards, folds, groups, p]
    intercept = np.array([[m[1] for m in by] for by in models])
    out = [(np.empty(n), np.empty(n)) for _ in rewards]
    for part in _chunks(n):
        x = features[part].astype(np.float64) - shift
        q = (x @ coef.reshape(-1, coef.shape[-1]).T + intercept.reshape(-1)).reshape(
            x.shape[0], *intercept.shape
        )
        rows = np.arange(x.shape[0])
        for o, (q_logged, q_target) in enumerate(out):
            q_logged[part] = q[rows, o, fold[o, part], logged[part]]
            q_target[part] = q[rows, o, fold[o, part], target[part]]
    return out


def _chunks(n: int) -> list[slice]:
    return [slice(lo, min(lo + _CHUNK_ROWS, n)) for lo in range(0, n, _CHUNK_ROWS)]


def outcome_predictions(
    data: LoggedData, kind: str = "hgb", folds: int = 2, seed: int = 0, n_threads: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fitted q̂(x, logged option) and q̂(x, target option).

    Accounts are split into ``folds`` groups; each group's predictions come from a
    model fitted on the other groups.  ``kind``: ``hgb`` (gradient boosting on the
    features, channel and slot) or ``ridge`` (one ridge per channel on the
    features).  ``n_threads`` caps OpenMP/BLAS threads (on a shared machine one
    thread is much faster than contended ones).
    """
    from threadpoolctl import threadpool_limits

    if kind == "ridge":
        return ridge_predictions(data, [data.reward], [seed], folds)[0]
    index = cluster_codes(data.account)
    fold = (np.random.default_rng(seed).permutation(int(index.max()) + 1) % folds)[index]
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
