"""``collsim backtest --scenario S --logs DIR [...]``: files, plot, tables, exit code.

The computation is :mod:`collsim.evaluation.backtest`; this module loads the inputs,
writes ``backtest.csv``, ``backtest.parquet``, ``backtest.png`` and ``backtest.json``
into the output folder (each atomically), prints the comparison with rich and
returns the exit code: 0 every metric-week passed, 1 some failed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import polars as pl
from rich.console import Console
from rich.table import Table

from collsim.config import load_scenario
from collsim.evaluation.backtest import (
    METRICS,
    BacktestOptions,
    BacktestResult,
    Period,
    backtest,
    log_period,
    payment_local_days,
)
from collsim.io import atomic_path, atomic_write_text
from collsim.logs import Logs, LogWindow, load_logs
from collsim.portfolio import date_of

EXIT_PASSED = 0
EXIT_FAILED = 1

OUTPUT_FILES = ("backtest.csv", "backtest.parquet", "backtest.png", "backtest.json")
"""What :func:`backtest_command` writes into its output folder."""

EARLIEST = dt.date(1970, 1, 1)
"""The window start used to read logs when ``--start`` is not given."""


@dataclass(frozen=True)
class BacktestInputs:
    """What the command reads: scenario, logs folder and the window to compare."""

    scenario: str
    logs: Path
    start: dt.date | None = None
    end: dt.date | None = None


def read_logs(folder: Path, start: dt.date | None, end: dt.date | None) -> tuple[Logs, Period]:
    """Load the logs and the period to compare.

    Without ``start`` the logs are read with an open window and the period starts on
    the first local day of any contact or payment (pass ``--start``: the account
    snapshot is the book at the start of the window).  Rows after ``end`` are read but
    not compared or replayed.

    Raises:
        InputError: a log file has problems.
        ValueError: ``end`` is before ``start``.
    """
    logs = load_logs(folder, LogWindow(start or EARLIEST))
    if start is None:
        first = _first_logged_day(logs)
        logs = Logs(logs.accounts, logs.contacts, logs.payments, LogWindow(first))
    return logs, log_period(logs, end)


def _first_logged_day(logs: Logs) -> dt.date:
    days = [logs.contacts.history.local_day, payment_local_days(logs)]
    known = [int(d.min()) for d in days if d.size]
    if not known:
        raise ValueError(f"{logs.window}: the logs hold no contact and no payment")
    return date_of(min(known))


# --------------------------------------------------------------------------- output
def write_tables(result: BacktestResult, out: Path) -> list[Path]:
    """Write the comparison as CSV and Parquet (atomically); return the paths."""
    csv, parquet = out / "backtest.csv", out / "backtest.parquet"
    with atomic_path(csv) as temp:
        result.table.write_csv(temp)
    with atomic_path(parquet) as temp:
        result.table.write_parquet(temp)
    return [csv, parquet]


def write_summary(result: BacktestResult, inputs: BacktestInputs, out: Path) -> Path:
    """Write backtest.json: settings, verdict, failures and refused replays."""
    period = result.period
    summary = {
        "scenario": inputs.scenario,
        "logs": str(inputs.logs),
        "start": period.start.isoformat(),
        "days": period.days,
        "weeks": period.weeks,
        "options": asdict(result.options),
        "passed": result.passed,
        "failures": result.failures.height,
        "contacts_logged": result.contacts_logged,
        "replications": [
            {"index": r.index, "seed": r.seed, **asdict(r.refusals)} for r in result.replications
        ],
    }
    path = out / "backtest.json"
    atomic_write_text(path, json.dumps(summary, indent=2, default=str) + "\n")
    return path


def plot_backtest(table: pl.DataFrame, path: Path) -> Path:
    """One panel per metric: the actual by week against the simulated band."""
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 3.8))
    for ax, metric in zip(axes, METRICS, strict=True):
        rows = table.filter(pl.col("metric") == metric).sort("week")
        week = rows["week"].to_numpy() + 1
        ax.fill_between(week, rows["band_low"].to_numpy(), rows["band_high"].to_numpy(),
                        color="tab:blue", alpha=0.15, label="band (noise, tolerance)")  # fmt: skip
        ax.fill_between(week, rows["sim_p05"].to_numpy(), rows["sim_p95"].to_numpy(),
                        color="tab:blue", alpha=0.35, label="simulated 5–95%")  # fmt: skip
        ax.plot(week, rows["sim_median"].to_numpy(), color="tab:blue", lw=1, ls="--",
                label="simulated median")  # fmt: skip
        actual = rows["actual"].cast(pl.Float64).fill_null(float("nan")).to_numpy()
        ax.plot(week, actual, color="black", marker="o", label="actual")
        failed = (rows["verdict"] == "fail").to_numpy()
        ax.scatter(week[failed], actual[failed], color="red", zorder=5, s=60, label="fail")
        ax.set_title(metric)
        ax.set_xlabel("week")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle("Back-test: actual vs simulated, by week")
    with atomic_path(path) as temp:
        fig.savefig(temp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3f}"
    return str(value)


def comparison_table(table: pl.DataFrame, title: str) -> Table:
    """A rich table of metric-weeks: actual, simulated median, band, verdict."""
    rich = Table("week", "from", "metric", "actual", "simulated", "band", "verdict", title=title)
    for row in table.iter_rows(named=True):
        style = "red" if row["verdict"] == "fail" else None
        band = f"{_cell(row['band_low'])}–{_cell(row['band_high'])}"
        rich.add_row(
            str(row["week"] + 1), str(row["week_start"]), row["metric"], _cell(row["actual"]),
            _cell(row["sim_median"]), band, row["verdict"], style=style,
        )  # fmt: skip
    return rich


def refusal_table(result: BacktestResult) -> Table:
    """A rich table of the replayed contacts the simulation refused, per replication."""
    rich = Table("replication", "planned", "not made", "blocked", "overflow", "substituted",
                 title="Replayed contacts (first logged contact per account-day)")  # fmt: skip
    for r in result.replications:
        f = r.refusals
        rich.add_row(str(r.index), f"{f.planned:,}", f"{f.not_made:,}", f"{f.blocked:,}",
                     f"{f.overflow:,}", f"{f.substituted:,}")  # fmt: skip
    return rich


def report(result: BacktestResult, console: Console) -> None:
    """Print the comparison, the refusals and the verdict."""
    console.print(comparison_table(result.table, "Back-test by week"))
    console.print(refusal_table(result))
    failures = result.failures
    if failures.height:
        console.print(comparison_table(failures, f"FAILED: {failures.height} metric-week(s)"))
        names = ", ".join(dict.fromkeys(failures["metric"].to_list()))
        console.print(f"[red]back-test failed[/red]: {names} outside the simulated band")
    else:
        console.print("[green]back-test passed[/green]: every metric-week inside the band")


def backtest_command(
    inputs: BacktestInputs, options: BacktestOptions, out: Path, console: Console | None = None
) -> int:
    """Run a back-test, write its files into ``out``, print it; return the exit code.

    Returns:
        0 when every metric-week passed, 1 when any failed.

    Raises:
        ConfigError, InputError, ValueError: bad scenario, logs or settings.
    """
    console = console or Console()
    scenario = load_scenario(inputs.scenario)
    logs, period = read_logs(inputs.logs, inputs.start, inputs.end)
    console.print(
        f"back-test of {inputs.scenario} on {inputs.logs}: {logs.accounts.n:,} accounts, "
        f"{period.start}..{period.start + dt.timedelta(days=period.days - 1)} "
        f"({period.weeks} weeks), {options.replications} replications"
    )
    result = backtest(scenario, logs, period, options)
    out.mkdir(parents=True, exist_ok=True)
    written = [*write_tables(result, out), plot_backtest(result.table, out / "backtest.png"),
               write_summary(result, inputs, out)]  # fmt: skip
    report(result, console)
    console.print("wrote " + ", ".join(str(p) for p in written))
    return EXIT_PASSED if result.passed else EXIT_FAILED


__all__ = [
    "OUTPUT_FILES",
    "BacktestInputs",
    "backtest_command",
    "plot_backtest",
    "read_logs",
]
