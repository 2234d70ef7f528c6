"""The tornado plot of a sensitivity table: how far each assumption moves a difference.

One row per assumption, largest swing on top.  From the base case's difference (a
dashed line with its interval shaded) a bar runs to each side's difference; an error
bar shows that side's interval.  A side whose difference has the opposite sign of
the base case's (it *flips the ranking*) is drawn in red with an ✕ marker.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from collsim.evaluation.plots import _save

SIDE_COLOURS = {"low": "tab:blue", "high": "tab:orange"}
FLIP_COLOUR = "tab:red"


def _side_text(mode: str, value: float) -> str:
    return f"×{value:g}" if mode == "scale" else f"={value:g}"


def tornado_rows(table: pl.DataFrame) -> pl.DataFrame:
    """One row per assumption (``low_*`` and ``high_*`` columns), largest swing first."""
    sides = table.filter(pl.col("side") != "base")
    low = sides.filter(pl.col("side") == "low").drop("side")
    high = sides.filter(pl.col("side") == "high").drop("side")
    keep = ["value", "diff", "low", "high", "flips_ranking"]
    wide = low.select("assumption", "label", "mode", *[pl.col(c).alias(f"low_{c}") for c in keep])
    wide = wide.join(
        high.select("assumption", *[pl.col(c).alias(f"high_{c}") for c in keep]),
        on="assumption",
        how="inner",
        maintain_order="left",
    )
    swing = (pl.col("high_diff") - pl.col("low_diff")).abs()
    return wide.with_columns(swing.alias("swing")).sort("swing", descending=True)


def plot_tornado(table: pl.DataFrame, path: Path, xlabel: str, title: str = "") -> Path:
    """Draw the tornado plot of a sensitivity table (see the module docstring).

    Args:
        table: :func:`collsim.evaluation.sensitivity.sensitivity_table` output.
        path: the PNG written (atomically).
        xlabel: the axis label (what difference, in which currency).
        title: the figure title.
    """
    base = table.filter(pl.col("side") == "base").row(0, named=True)
    rows = tornado_rows(table)
    fig, ax = plt.subplots(figsize=(9, 1.0 + 0.75 * max(rows.height, 1)))
    y = np.arange(rows.height)[::-1]  # largest swing on top
    b = float(base["diff"])
    if np.isfinite(base["low"]) and np.isfinite(base["high"]):
        ax.axvspan(base["low"], base["high"], color="grey", alpha=0.15, lw=0)
    ax.axvline(b, color="grey", ls="--", lw=1)
    ax.axvline(0.0, color="black", lw=1.2)
    for yi, row in zip(y, rows.iter_rows(named=True), strict=True):
        for k, side in enumerate(("low", "high")):
            _draw_side(ax, yi + (0.17 if k == 0 else -0.17), b, row, side)
    labels = [
        f"{r['label']}\nlow {_side_text(r['mode'], r['low_value'])}, "
        f"high {_side_text(r['mode'], r['high_value'])}"
        for r in rows.iter_rows(named=True)
    ]
    ax.set_yticks(y, labels, fontsize=8)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
    ax.set_xlabel(xlabel)
    ax.set_title(title or "Which assumptions move the difference", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    ax.legend(handles=_legend(b), fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def _draw_side(ax: plt.Axes, y: float, base: float, row: dict[str, float], side: str) -> None:
    diff, low, high = row[f"{side}_diff"], row[f"{side}_low"], row[f"{side}_high"]
    flipped = bool(row[f"{side}_flips_ranking"])
    colour = FLIP_COLOUR if flipped else SIDE_COLOURS[side]
    ax.barh(y, diff - base, left=base, height=0.32, color=colour, alpha=0.8)
    if np.isfinite(low) and np.isfinite(high):
        ax.errorbar(
            diff, y, xerr=[[diff - low], [high - diff]], fmt="none", ecolor="black", capsize=3, lw=1
        )
    if flipped:
        ax.plot(diff, y, marker="X", color=FLIP_COLOUR, markeredgecolor="black", ms=9)


def _legend(base: float) -> list[Patch]:
    return [
        Patch(color=SIDE_COLOURS["low"], label="low end of the range"),
        Patch(color=SIDE_COLOURS["high"], label="high end of the range"),
        Patch(color=FLIP_COLOUR, label="flips the ranking (sign differs from base)"),
        Patch(color="grey", alpha=0.3, label=f"base case {base:,.0f} and its CI"),
    ]
