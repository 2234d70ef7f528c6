"""Statistics over replications: t-intervals, paired differences, cost–recovery frontier.

Replications are seeds.  Under common random numbers the runs of two policies on
the same seed face the same borrowers, so their difference is estimated from
seed-matched pairs (paired t), which removes the between-seed variance that both
share.

Example:
    >>> import polars as pl  # doctest: +SKIP
    >>> runs = pl.read_parquet("results/x/runs.parquet")  # doctest: +SKIP
    >>> summarise(runs, ["net_recovery"])  # doctest: +SKIP
    >>> paired_differences(runs, "net_recovery", baseline="champion")  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """A mean with its confidence interval.

    Attributes:
        mean: the sample mean.
        low, high: the interval bounds (NaN with fewer than two values).
        n: number of values.
        sd: sample standard deviation (ddof 1).
    """

    mean: float
    low: float
    high: float
    n: int
    sd: float

    @property
    def half_width(self) -> float:
        """Half the interval's width."""
        return (self.high - self.low) / 2.0


def t_interval(values: np.ndarray, level: float = 0.95, predictive: bool = False) -> Interval:
    """Mean and Student-t interval of independent replications.

    Args:
        values: one value per replication.
        level: coverage of the interval.
        predictive: the interval of one more replication (half-width
            ``t * sd * sqrt(1 + 1/n)``) instead of the mean's (``t * sd / sqrt(n)``).
            With model uncertainty each replication runs on its own draw of a fitted
            scenario's numbers and the true scenario is one more such draw, so only
            this interval keeps the model's uncertainty as replications grow.

    Example:
        >>> iv = t_interval(np.array([1.0, 2.0, 3.0]))
        >>> round(iv.mean, 3), round(iv.half_width, 3)
        (2.0, 2.484)
        >>> round(t_interval(np.array([1.0, 2.0, 3.0]), predictive=True).half_width, 3)
        4.968
    """
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    mean = float(x.mean()) if n else float("nan")
    if n < 2:
        return Interval(mean, float("nan"), float("nan"), n, float("nan"))
    sd = float(x.std(ddof=1))
    spread = math.sqrt(1.0 + 1.0 / n) if predictive else 1.0 / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + level / 2.0, n - 1)) * sd * spread
    return Interval(mean, mean - half, mean + half, n, sd)


def paired_interval(
    treatment: np.ndarray, baseline: np.ndarray, level: float = 0.95, predictive: bool = False
) -> Interval:
    """Paired-t interval of ``treatment - baseline`` (arrays matched by seed).

    ``predictive``: see :func:`t_interval`.
    """
    a, b = np.asarray(treatment, dtype=float), np.asarray(baseline, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in size: {a.shape} vs {b.shape}")
    return t_interval(a - b, level, predictive)


def welch_interval(treatment: np.ndarray, baseline: np.ndarray, level: float = 0.95) -> Interval:
    """Unpaired (Welch) interval of the difference of means, ignoring the seed matching."""
    a, b = np.asarray(treatment, dtype=float), np.asarray(baseline, dtype=float)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = float(np.sqrt(va + vb))
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if se > 0 else 1.0
    diff = float(a.mean() - b.mean())
    half = float(stats.t.ppf(0.5 + level / 2.0, dof)) * se
    return Interval(diff, diff - half, diff + half, int(a.size), float("nan"))


def summarise(
    runs: pl.DataFrame,
    kpis: list[str],
    by: tuple[str, ...] = ("variant", "policy"),
    level: float = 0.95,
) -> pl.DataFrame:
    """Mean and t-interval per KPI and group (long format).

    Returns:
        columns ``*by, kpi, n, mean, sd, low, high``; groups in first-seen order.
    """
    rows = []
    for keys, group in runs.group_by(list(by), maintain_order=True):
        for kpi in kpis:
            iv = t_interval(group[kpi].to_numpy(), level)
            rows.append(
                {
                    **dict(zip(by, keys, strict=True)),
                    "kpi": kpi,
                    "n": iv.n,
                    "mean": iv.mean,
                    "sd": iv.sd,
                    "low": iv.low,
                    "high": iv.high,
                }
            )
    return pl.DataFrame(rows)


def paired_differences(
    runs: pl.DataFrame,
    kpi: str,
    baseline: str,
    by: tuple[str, ...] = ("variant",),
    level: float = 0.95,
    predictive: bool = False,
) -> pl.DataFrame:
    """Each policy minus the baseline policy on seed-matched runs, within each group.

    ``predictive``: the paired interval is the one of one more seed (see
    :func:`t_interval`); experiments with ``model_uncertainty`` report it.

    Returns:
        columns ``*by, policy, kpi, n, diff, low, high, rel_pct, rel_low, rel_high,
        unpaired_low, unpaired_high``; ``rel_*`` are in % of the baseline mean
        (the interval scaled by the baseline mean, treating that mean as fixed).
    """
    rows = []
    for keys, group in runs.group_by(list(by), maintain_order=True):
        base = group.filter(pl.col("policy") == baseline).sort("seed")
        for policy in group["policy"].unique(maintain_order=True).to_list():
            if policy == baseline:
                continue
            other = group.filter(pl.col("policy") == policy).sort("seed")
            joined = other.select("seed", kpi).join(
                base.select("seed", kpi), on="seed", suffix="_base"
            )
            a, b = joined[kpi].to_numpy(), joined[f"{kpi}_base"].to_numpy()
            iv = paired_interval(a, b, level, predictive)
            un = welch_interval(a, b, level) if a.size > 1 else iv
            scale = 100.0 / abs(b.mean()) if b.size and b.mean() != 0 else float("nan")
            rows.append(
                {
                    **dict(zip(by, keys, strict=True)),
                    "policy": policy,
                    "kpi": kpi,
                    "n": iv.n,
                    "diff": iv.mean,
                    "low": iv.low,
                    "high": iv.high,
                    "rel_pct": iv.mean * scale,
                    "rel_low": iv.low * scale,
                    "rel_high": iv.high * scale,
                    "unpaired_low": un.low,
                    "unpaired_high": un.high,
                }
            )
    return pl.DataFrame(rows)


def pareto_front(cost: np.ndarray, value: np.ndarray) -> np.ndarray:
    """bool mask of the points no other point dominates (cost ≤, value ≥, one strictly).

    Example:
        >>> pareto_front(np.array([1.0, 2.0, 3.0]), np.array([5.0, 4.0, 6.0])).tolist()
        [True, False, True]
    """
    c, v = np.asarray(cost, float), np.asarray(value, float)
    better_eq = (c[None, :] <= c[:, None]) & (v[None, :] >= v[:, None])
    strictly = (c[None, :] < c[:, None]) | (v[None, :] > v[:, None])
    return ~np.any(better_eq & strictly, axis=1)


def frontier(
    runs: pl.DataFrame,
    cost: str = "total_cost",
    value: str = "amount_recovered",
    by: tuple[str, ...] = ("variant", "variant_label", "policy"),
) -> pl.DataFrame:
    """Mean cost and value per (variant, policy) with a Pareto-efficiency flag.

    Returns:
        columns ``*by, cost, value, net, pareto``, sorted by cost.
    """
    points = (
        runs.group_by(list(by), maintain_order=True)
        .agg(
            pl.col(cost).mean().alias("cost"),
            pl.col(value).mean().alias("value"),
        )
        .with_columns((pl.col("value") - pl.col("cost")).alias("net"))
    )
    mask = pareto_front(points["cost"].to_numpy(), points["value"].to_numpy())
    return points.with_columns(pl.Series("pareto", mask)).sort("cost")
