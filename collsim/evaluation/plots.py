"""Plots strategy teams look at: cumulative recovery and channel mix by policy."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from collsim.io import atomic_path  # noqa: E402
from collsim.metrics import daily_series  # noqa: E402
from collsim.sim.ledger import EVENT, Ledger  # noqa: E402
from collsim.vocab import BUCKETS, CHANNELS  # noqa: E402


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
    names = [n for n, ledger in ledgers.items() if channel_mix(ledger).sum() > 0]
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(4.2 * max(len(names), 1), 4), squeeze=False)
    colors = plt.get_cmap("tab10").colors
    for ax, name in zip(axes[0], names, strict=False):
        mix = channel_mix(ledgers[name]).astype(float)
        share = mix / np.maximum(mix.sum(axis=1, keepdims=True), 1)
        bottom = np.zeros(4)
        for k, channel in enumerate(CHANNELS):
            ax.bar(BUCKETS[1:5], share[:, k], bottom=bottom, label=channel, color=colors[k % 10])
            bottom += share[:, k]
        ax.set_title(name)
        ax.set_xlabel("DPD bucket")
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("share of attempts")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle("Channel mix by DPD bucket")
    return _save(fig, path)
