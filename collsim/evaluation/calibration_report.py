"""The calibration report: a rich table, ``calibration.json`` and ``calibration.png``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from collsim.evaluation.calibrate import Measured
from collsim.evaluation.calibration_targets import Target, Unit
from collsim.io import atomic_write, atomic_write_text

_SCALE: dict[Unit, float] = {"share": 100.0, "pp": 100.0, "ratio": 1.0}
_SUFFIX: dict[Unit, str] = {"share": "%", "pp": " pp", "ratio": "×"}
_AXIS: dict[Unit, str] = {
    "share": "percent (%)",
    "pp": "difference (percentage points)",
    "ratio": "ratio (×)",
}
PASS_COLOUR, FAIL_COLOUR, NA_COLOUR = "#2e7d32", "#c62828", "#9e9e9e"


def fmt(value: float | None, unit: Unit) -> str:
    """A value in display units (percent, percentage points or ×)."""
    if value is None:
        return "–"
    shown = value * _SCALE[unit]
    sign = "+" if unit == "pp" and shown > 0 else ""
    return f"{sign}{shown:.1f}{_SUFFIX[unit]}" if unit != "ratio" else f"{shown:.2f}×"


def band_text(target: Target) -> str:
    """The band (or condition) in display units."""
    if target.expect is not None:
        return "yes (> 0)" if target.expect else "no (≤ 0)"
    assert target.band is not None
    low, high = target.band
    if low is None:
        return f"≤ {fmt(high, target.unit)}"
    if high is None:
        return f"≥ {fmt(low, target.unit)}"
    return f"{fmt(low, target.unit)} – {fmt(high, target.unit)}"


def verdict(target: Target, measured: Measured) -> bool | None:
    """Pass (True), fail (False) or not measurable (None), on the point estimate."""
    return None if measured.value is None else target.passes(measured.value)


def _finite(value: float | None) -> float | None:
    """JSON has no NaN: a missing or non-finite number is null."""
    return None if value is None or not math.isfinite(value) else float(value)


def rows(results: list[tuple[Target, Measured]]) -> list[dict[str, Any]]:
    """One JSON-ready record per target."""
    out = []
    for t, m in results:
        out.append(
            {
                "id": t.id,
                "metric": t.metric,
                "description": t.description,
                "unit": t.unit,
                "band": None if t.band is None else list(t.band),
                "expect": t.expect,
                "start_dpd": None if t.start_dpd is None else list(t.start_dpd),
                "segment": t.segment,
                "value": _finite(m.value),
                "ci95": None if m.value is None else [_finite(m.low), _finite(m.high)],
                "n": m.n,
                "pass": verdict(t, m),
                "note": m.note,
                "source": t.source,
                "trust": t.trust,
            }
        )
    return out


def rich_table(results: list[tuple[Target, Measured]], title: str) -> Table:
    """The printed table: target, band, measured (95% CI), n, result, trust, source."""
    table = Table(title=title, show_lines=False)
    for column in ("target", "band", "measured (95% CI)", "n", "result", "trust", "source"):
        table.add_column(column, overflow="fold")
    for t, m in results:
        ok = verdict(t, m)
        if m.value is None:
            shown = m.note
        else:
            shown = f"{fmt(m.value, t.unit)} ({fmt(m.low, t.unit)} … {fmt(m.high, t.unit)})"
            if m.note:
                shown += f"\n[dim]{m.note}[/dim]"
        result = {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: "[yellow]n/a"}[ok]
        name = t.id if not t.description else f"{t.id}\n[dim]{t.description}[/dim]"
        table.add_row(name, band_text(t), shown, str(m.n), result, t.trust, t.source)
    return table


def write_json(path: Path, header: dict[str, Any], results: list[tuple[Target, Measured]]) -> None:
    """Write ``calibration.json`` atomically (no timings: same inputs, same bytes)."""
    document = {**header, "targets": rows(results)}
    atomic_write_text(path, json.dumps(document, indent=2, sort_keys=False) + "\n")


def write_png(path: Path, results: list[tuple[Target, Measured]], title: str) -> None:
    """Write ``calibration.png``: one panel per target, band shaded, value with its CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results)
    fig, axes = plt.subplots(n, 1, figsize=(9.0, 0.95 * n + 1.0), squeeze=False)
    for ax, (t, m) in zip(axes[:, 0], results, strict=True):
        _panel(ax, t, m)
    fig.suptitle(
        f"{title}\nshaded: target band; dot: measured; bar: 95% interval "
        "(green: in band, red: outside, grey: not measurable)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 0.97))

    def save(temp: Path) -> None:
        fig.savefig(temp, dpi=110, format="png", metadata={"Software": None})

    try:
        atomic_write(path, save)
    finally:
        plt.close(fig)


def _panel(ax: Any, t: Target, m: Measured) -> None:
    scale = _SCALE[t.unit]
    ok = verdict(t, m)
    colour = {True: PASS_COLOUR, False: FAIL_COLOUR, None: NA_COLOUR}[ok]
    points = [v * scale for v in (m.value, m.low, m.high) if v is not None]
    if t.band is not None:
        low, high = t.band
        ends = [v * scale for v in (low, high) if v is not None]
        span = max(ends + points) - min(ends + points) or 1.0
        lo = low * scale if low is not None else min(ends + points) - span
        hi = high * scale if high is not None else max(ends + points) + span
        ax.axvspan(lo, hi, color="#90caf9", alpha=0.5, lw=0)
        points += ends
    else:  # expect yes: the band is everything above 0
        span = max([abs(p) for p in points] + [1.0])
        ax.axvspan(0.0, 2.0 * span, color="#90caf9", alpha=0.5, lw=0)
        points += [0.0]
    if m.value is not None:  # the interval need not contain the point (e.g. max / min)
        if m.low is not None and m.high is not None:
            ax.hlines(0, m.low * scale, m.high * scale, color=colour, lw=2)
            ax.plot([m.low * scale, m.high * scale], [0, 0], "|", color=colour, ms=12)
        ax.plot([m.value * scale], [0], "o", color=colour, ms=7)
    else:
        ax.text(0.5, 0.5, m.note, transform=ax.transAxes, ha="center", va="center", fontsize=8)
    lo, hi = min(points), max(points)
    pad = 0.15 * (hi - lo or 1.0)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_yticks([])
    label = {True: "pass", False: "FAIL", None: "n/a"}[ok]
    ax.set_ylabel(f"{t.id}\n{label}", rotation=0, ha="right", va="center", fontsize=8, color=colour)
    ax.set_xlabel(_AXIS[t.unit], fontsize=7, labelpad=1)
    ax.tick_params(axis="x", labelsize=7)


__all__ = [
    "CalibrateOptions",
    "band_text",
    "calibrate_command",
    "fmt",
    "rich_table",
    "rows",
    "verdict",
    "write_json",
    "write_png",
]


@dataclass(frozen=True)
class CalibrateOptions:
    """How big ``collsim calibrate`` runs are.

    Attributes:
        n_accounts: accounts per run (default: the scenario's).
        days: days of the no-contact and one-touch runs (at least 30).
        champion_days: days of the champion run (default: max(days, scenario's days),
            and 270 when re-default is a target and the ledger records it).
        seeds: number of seeds (``seed``, ``seed + 1``, ...).
        seed: first seed.
        hour_accounts: accounts of the hour-spread run (default: at least 50,000).
    """

    n_accounts: int | None = None
    days: int = 60
    champion_days: int | None = None
    seeds: int = 1
    seed: int = 0
    hour_accounts: int | None = None


def calibrate_command(
    scenario_name: str,
    out: Path,
    options: CalibrateOptions = CalibrateOptions(),
    targets_file: str | None = None,
) -> list[tuple[Target, Measured]]:
    """Run ``collsim calibrate``: experiments, measurements, table, JSON and PNG.

    Args:
        scenario_name: bundled scenario name or YAML path.
        out: output folder for calibration.json and calibration.png.
        options: run sizes and seeds (:class:`CalibrateOptions`).
        targets_file: targets YAML (default: the scenario's bundled targets).

    Returns:
        (target, measurement) pairs in file order.
    """
    import sys
    import time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from collsim.config import load_scenario
    from collsim.evaluation.calibrate import (
        CalibrationSettings,
        default_champion_days,
        experiment_days,
        experiments_needed,
        measure_all,
        run_all,
    )
    from collsim.evaluation.calibration_targets import load_targets

    n_accounts, days, seeds = options.n_accounts, options.days, options.seeds
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    if n_accounts is not None and n_accounts < 1:
        raise ValueError(f"--accounts must be at least 1, got {n_accounts}")
    scenario = load_scenario(scenario_name)
    targets = load_targets(targets_file or scenario.name)
    settings = CalibrationSettings(
        n_accounts=n_accounts or scenario.portfolio.n_accounts,
        days=days,
        champion_days=options.champion_days or default_champion_days(scenario, targets, days),
        seeds=tuple(range(options.seed, options.seed + seeds)),
        hour_accounts=options.hour_accounts,
    )
    total = seeds * sum(
        experiment_days(e, settings.days, settings.champion_days)
        for e in experiments_needed(targets)
    )
    err = Console(stderr=True)
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]calibrate"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not sys.stderr.isatty(),
    ) as progress:
        task = progress.add_task("days simulated", total=total)
        runs, experiments = run_all(scenario, targets, settings, lambda: progress.advance(task))
    results = measure_all(targets, runs, options.seed)
    title = (
        f"calibration of {scenario.name}: {settings.n_accounts:,} accounts, "
        f"{len(settings.seeds)} seed(s), one-touch {settings.days} d, "
        f"champion {settings.champion_days} d"
    )
    header = {
        "scenario": scenario.name,
        "config_hash": scenario.config_hash(),
        "targets_file": str(targets_file or f"bundled:{scenario.name}"),
        "accounts": settings.n_accounts,
        "days": settings.days,
        "champion_days": settings.champion_days,
        "seeds": list(settings.seeds),
        "hour_accounts": settings.accounts_of("hour_spread"),
        "experiments": experiments,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "calibration.json", header, results)
    write_png(out / "calibration.png", results, title)
    console = Console()
    if not console.is_terminal:  # files and pipes get the whole table, not 80 columns
        console = Console(width=170)
    console.print(rich_table(results, title))
    console.print(
        f"wrote {out}/calibration.json, calibration.png in {time.perf_counter() - started:.1f} s"
    )
    return results
