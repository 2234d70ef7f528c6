"""Plots strategy teams look at: recovery curves, channel mix, frontier, blocked attempts.

The ledger-based functions serve the CLI demo; the table-based ones read an
experiment's ``runs``/``daily``/``channel_mix`` Parquet tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from collsim.io import atomic_path
from collsim.ledger import EVENT, Ledger
from collsim.metrics import daily_series
from collsim.vocab import BUCKETS, CHANNELS


def _save(fig: plt.Figure, path: Path) -> Path:
    with atomic_path(path) as temp:
        fig.savefig(temp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_cumulative_recovery(
    ledgers: dict[str, Ledger], first_day: int, days: int, path: Path
) -> Path:
    """Cumulative net recovery per day, one line per policy."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, ledger in ledgers.items():
        series = daily_series(ledger, first_day, days)
        ax.plot(np.arange(1, days + 1), np.cumsum(series["recovered"] - series["cost"]), label=name)
    ax.set_xlabel("day")
    ax.set_ylabel("cumulative net recovery")
    ax.set_title("Cumulative net recovery by policy")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def channel_mix(ledger: Ledger) -> np.ndarray:
    """int [delinquent buckets, channels]: attempts by DPD bucket and channel."""
    c = ledger.columns()
    sel = (c["event"] == EVENT["attempt"]) & (c["bucket"] >= 1) & (c["bucket"] <= 4)
    mix = np.zeros((4, len(CHANNELS)), dtype=np.int64)
    np.add.at(mix, (c["bucket"][sel] - 1, c["channel"][sel]), 1)
    return mix


def plot_channel_mix(ledgers: dict[str, Ledger], path: Path) -> Path:
    """Stacked bars: share of attempts by channel within each DPD bucket, per policy."""
    return plot_channel_mix_tables(
        {name: channel_mix(ledger) for name, ledger in ledgers.items()}, path
    )


def plot_channel_mix_tables(mixes: dict[str, np.ndarray], path: Path, title: str = "") -> Path:
    """Stacked bars from attempts tables [4 buckets, channels], one panel per name."""
    names = [n for n, mix in mixes.items() if mix.sum() > 0]
    fig, axes = plt.subplots(
        1, max(len(names), 1), figsize=(4.2 * max(len(names), 1), 4), squeeze=False
    )
    colors = plt.get_cmap("tab10")
    for ax, name in zip(axes[0], names, strict=False):
        mix = np.asarray(mixes[name], dtype=float)
        share = mix / np.maximum(mix.sum(axis=1, keepdims=True), 1)
        bottom = np.zeros(4)
        for k, channel in enumerate(CHANNELS):
            ax.bar(BUCKETS[1:5], share[:, k], bottom=bottom, label=channel, color=colors(k % 10))
            bottom += share[:, k]
        ax.set_title(name)
        ax.set_xlabel("DPD bucket")
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("share of attempts")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(title or "Channel mix by DPD bucket")
    return _save(fig, path)


def _grid(
    panels: int, width: float = 5.0, height: float = 3.6
) -> tuple[plt.Figure, list[plt.Axes]]:
    cols = min(panels, 3)
    rows = (panels + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[panels:]:
        ax.set_visible(False)
    return fig, flat[:panels]


def plot_headline(summary: pl.DataFrame, kpi: str, path: Path) -> Path:
    """Mean and 95% CI of the headline KPI per policy, one panel per variant.

    Args:
        summary: :func:`collsim.evaluation.stats.summarise` of the runs for ``kpi`` by
            ``("variant", "variant_label", "policy")``.
        kpi: the KPI shown (an experiment's ``headline_kpi``).
    """
    part = summary.filter(pl.col("kpi") == kpi)
    variants = part.select("variant", "variant_label").unique(maintain_order=True).rows()
    fig, axes = _grid(max(len(variants), 1))
    for ax, (variant, label) in zip(axes, variants, strict=False):
        rows = part.filter(pl.col("variant") == variant)
        mean = rows["mean"].to_numpy()
        err = np.vstack([mean - rows["low"].to_numpy(), rows["high"].to_numpy() - mean])
        ax.barh(rows["policy"].to_list(), mean, xerr=np.nan_to_num(err), color="tab:blue")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel(f"{kpi} (mean, 95% CI)")
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle(f"{kpi} by policy")
    return _save(fig, path)


def plot_mean_cumulative_recovery(daily: pl.DataFrame, path: Path) -> Path:
    """Cumulative net recovery by day, mean over seeds; one line per policy, a panel per variant.

    Args:
        daily: the ``daily.parquet`` table of an experiment.
    """
    mean = (
        daily.group_by("variant", "variant_label", "policy", "day", maintain_order=True)
        .agg(pl.col("cum_net").mean())
        .sort("variant", "day")
    )
    variants = mean.select("variant", "variant_label").unique(maintain_order=True).rows()
    fig, axes = _grid(len(variants))
    for ax, (variant, label) in zip(axes, variants, strict=True):
        part = mean.filter(pl.col("variant") == variant)
        for policy in part["policy"].unique(maintain_order=True).to_list():
            line = part.filter(pl.col("policy") == policy)
            ax.plot(line["day"].to_numpy(), line["cum_net"].to_numpy(), label=policy)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("day")
        ax.set_ylabel("cumulative net recovery")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Cumulative net recovery by policy (mean over seeds)")
    return _save(fig, path)


def plot_frontier(points: pl.DataFrame, path: Path) -> Path:
    """Cost–recovery points per (variant, policy) and the Pareto frontier.

    Args:
        points: output of :func:`collsim.evaluation.stats.frontier`.
    """
    fig, ax = plt.subplots(figsize=(8, 5))
    colors = plt.get_cmap("tab10")
    policies = points["policy"].unique(maintain_order=True).to_list()
    for i, policy in enumerate(policies):
        part = points.filter(pl.col("policy") == policy)
        ax.scatter(
            part["cost"].to_numpy(), part["value"].to_numpy(), color=colors(i % 10), label=policy
        )
        if points["variant"].n_unique() > 1:
            for row in part.iter_rows(named=True):
                ax.annotate(
                    row["variant_label"],
                    (row["cost"], row["value"]),
                    fontsize=6,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
    front = points.filter(pl.col("pareto")).sort("cost")
    ax.plot(
        front["cost"].to_numpy(), front["value"].to_numpy(), "k--", lw=1, label="Pareto frontier"
    )
    ax.set_xlabel("total cost (mean over seeds)")
    ax.set_ylabel("amount recovered (mean over seeds)")
    ax.set_title("Cost–recovery frontier")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_blocked_by_rule(runs: pl.DataFrame, path: Path) -> Path:
    """Stacked bars: mean blocked attempts per run by rule, per (variant, policy).

    Args:
        runs: the ``runs.parquet`` table (columns ``blocked.<rule>``).
    """
    rules = sorted(c for c in runs.columns if c.startswith("blocked."))
    means = runs.group_by("variant", "variant_label", "policy", maintain_order=True).agg(
        *(pl.col(r).mean() for r in rules)
    )
    many = means["variant"].n_unique() > 1
    labels = [
        f"{p}\n{v}" if many else p
        for p, v in zip(means["policy"], means["variant_label"], strict=True)
    ]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(labels) + 3), 4.5))
    bottom = np.zeros(len(labels))
    colors = plt.get_cmap("tab20")
    for k, rule in enumerate(rules):
        values = means[rule].to_numpy()
        ax.bar(
            labels, values, bottom=bottom, label=rule.removeprefix("blocked."), color=colors(k % 20)
        )
        bottom += values
    if not rules:
        ax.text(
            0.5, 0.5, "no attempt was blocked", ha="center", va="center", transform=ax.transAxes
        )
    ax.set_ylabel("blocked attempts per run (mean over seeds)")
    ax.set_title("Blocked attempts by rule")
    ax.tick_params(axis="x", labelsize=7, rotation=30 if many else 0)
    if rules:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)


# ---------------------------------------------------------------------------- demo plots
def _money_axis(axis: Any) -> None:
    """Tick labels with thousands separators (the currency goes in the axis label)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=5))  # long labels: few ticks, none overlapping
    axis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:,.0f}"))


def plot_value_intervals(summary: pl.DataFrame, what: str, currency: str, path: Path) -> Path:
    """Mean and 95% CI of one money KPI per policy (horizontal bars, values written on them).

    Args:
        summary: :func:`collsim.evaluation.stats.summarise` of one KPI by ``("policy",)``.
        what: what the values are, e.g. ``"portfolio value per run"``.
        currency: the scenario's currency code.
    """
    policies = summary["policy"].to_list()
    mean = summary["mean"].to_numpy()
    err = np.nan_to_num(np.vstack([mean - summary["low"].to_numpy(), summary["high"] - mean]))
    fig, ax = plt.subplots(figsize=(8, 0.8 * len(policies) + 1.6))
    ax.barh(policies, mean, xerr=err, color="tab:blue", alpha=0.6, capsize=6)
    for y, value in enumerate(mean):
        ax.text(0, y - 0.3, f" {value:,.0f}", va="center", ha="left", fontsize=9)
    ax.invert_yaxis()
    _money_axis(ax.xaxis)
    ax.set_xlabel(f"{what} ({currency}; mean over seeds, 95% CI)")
    ax.set_xlim(0, max(float(np.max(mean + err[1])), 1.0) * 1.25)
    ax.set_title(what.capitalize())
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)


def plot_paired_differences(diffs: pl.DataFrame, what: str, currency: str, path: Path) -> Path:
    """Paired difference vs the baseline with its 95% CI per policy, and the zero line.

    Args:
        diffs: :func:`collsim.evaluation.stats.paired_differences` of one KPI.
        what: what the difference is, e.g. ``"portfolio value, policy − champion"``.
        currency: the scenario's currency code.
    """
    policies = diffs["policy"].to_list()
    diff = diffs["diff"].to_numpy()
    err = np.nan_to_num(np.vstack([diff - diffs["low"].to_numpy(), diffs["high"] - diff]))
    fig, ax = plt.subplots(figsize=(8, 0.8 * len(policies) + 1.6))
    colors = ["tab:green" if d > 0 else "tab:red" for d in diff]
    ax.errorbar(diff, policies, xerr=err, fmt="none", ecolor="black", capsize=6)
    ax.scatter(diff, policies, color=colors, zorder=3, s=60)
    for y, (value, low, high) in enumerate(zip(diff, diffs["low"], diffs["high"], strict=True)):
        ax.annotate(
            f"{value:+,.0f}  [{low:+,.0f}, {high:+,.0f}]",
            (value, y),
            xytext=(0, 10),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    ax.axvline(0.0, color="grey", lw=1, ls="--")
    ax.margins(x=0.2)  # room for the labels at the ends
    ax.invert_yaxis()
    ax.set_ylim(len(policies) - 0.4, -0.8)
    _money_axis(ax.xaxis)
    ax.set_xlabel(f"{what} ({currency} per run; paired over seeds, 95% CI)")
    ax.set_title(f"Paired difference: {what}")
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)


def plot_cumulative_cash(daily: pl.DataFrame, currency: str, path: Path) -> Path:
    """Cumulative cash collected by day of the run, mean over seeds, one line per policy.

    Args:
        daily: the ``daily.parquet`` table of an experiment (first variant only).
        currency: the scenario's currency code.
    """
    first = daily.filter(pl.col("variant") == daily["variant"].min())
    mean = (
        first.group_by("policy", "seed", maintain_order=True)
        .agg(pl.col("day"), pl.col("recovered").cum_sum().alias("cash"))
        .explode("day", "cash")
        .group_by("policy", "day", maintain_order=True)
        .agg(pl.col("cash").mean())
        .sort("day", maintain_order=True)
    )
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for policy in daily["policy"].unique(maintain_order=True).to_list():
        line = mean.filter(pl.col("policy") == policy)
        ax.plot(line["day"].to_numpy(), line["cash"].to_numpy(), label=policy, lw=2)
    _money_axis(ax.yaxis)
    ax.set_xlabel("day of the run")
    ax.set_ylabel(f"cash collected to date ({currency})")
    ax.set_title("Cumulative cash collected (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)
