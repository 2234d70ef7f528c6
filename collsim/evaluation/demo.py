"""``collsim demo``: no contact, the champion and the optimised allocation, paired over seeds.

The demo builds an in-memory experiment (default scenario, three policies, a few
seeds with common random numbers), trains the optimised policy's value model first
when it is not cached (small, explicit settings: :data:`DEMO_TRAINING`), runs the
cells with :func:`collsim.evaluation.runner.run_experiment`, and reads the numbers
with :mod:`collsim.evaluation.stats` (t-intervals, paired differences vs the
champion).  Output folder: ``kpis.md`` (the tables and the verdict),
``portfolio_value.png``, ``difference_vs_champion.png``, ``cumulative_cash.png``,
``channel_mix.png`` and the runner's ``runs.parquet``, ``daily.parquet``,
``channel_mix.parquet`` and ``manifest.json``.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from collsim.config import load_scenario
from collsim.evaluation import plots
from collsim.evaluation.report import Table, channel_mixes, fmt
from collsim.evaluation.runner import one_openmp_thread, run_experiment
from collsim.evaluation.spec import (
    Experiment,
    ExperimentSpec,
    PolicySpec,
    apply_axes,
    build_experiment,
)
from collsim.evaluation.stats import paired_differences, summarise
from collsim.io import atomic_write_text
from collsim.policies.params import (
    AnyPolicyParams,
    NoParams,
    TrainingParams,
    ValueModelParams,
    ValuePolicyParams,
)
from collsim.research.training import TrainingSettings, cache_dir

DEMO_POLICIES: tuple[str, ...] = ("no_contact", "champion", "optimised")
"""Policies of the demo, in table order."""

BASELINE = "champion"
"""The policy every other one is compared with."""

DEMO_KPIS: tuple[str, ...] = (
    "portfolio_value",
    "net_recovery",
    "cure_rate",
    "complaints_per_1000",
    "agent_occupancy",
    "total_cost",
)
"""KPIs of the demo tables, the objective first."""

MONEY_KPIS = frozenset({"portfolio_value", "net_recovery", "total_cost"})
"""KPIs in currency units."""

DEMO_TRAINING = TrainingSettings(
    seeds=(101, 102, 103), n_accounts=800, days=90, model_params=ValueModelParams(max_iter=60)
)
"""The demo's value-model training: 3 exploration runs of 800 accounts × 90 days, 60
boosting rounds at most (the library default trains on 3 × 3,000 accounts with 150: 129 s
of CPU against this one's 81 s, both measured at load average ≈ 10 on 2 cores)."""


@dataclass(frozen=True)
class DemoSize:
    """How big the demo is.

    Attributes:
        accounts: accounts per run.
        days: days per run.
        seeds: number of seeds (paired replications).
        first_seed: the first seed; the seeds are ``first_seed .. first_seed + seeds - 1``.
    """

    accounts: int = 4000
    days: int = 90
    seeds: int = 3
    first_seed: int = 0


@dataclass(frozen=True)
class DemoResult:
    """What the demo measured.

    Attributes:
        kpi_table: mean [95% CI] per KPI (rows) and policy (columns).
        diff_table: paired difference vs the champion per KPI and other policy.
        verdict: the plain-language paragraph.
        runs: the runner's runs table.
        files: the files written.
    """

    kpi_table: Table
    diff_table: Table
    verdict: str
    runs: pl.DataFrame
    files: list[Path]


def demo_spec(size: DemoSize, training: TrainingSettings = DEMO_TRAINING) -> ExperimentSpec:
    """The demo as an experiment spec (no contact, champion, optimised; paired seeds)."""
    trained = ValuePolicyParams(training=TrainingParams.model_validate(asdict(training)))
    params: dict[str, AnyPolicyParams] = {"optimised": trained}
    return ExperimentSpec(
        name="demo",
        description="make demo: the decision against the champion and no contact",
        scenario="default",
        policies=[
            PolicySpec(label=p, id=p, params=params.get(p, NoParams())) for p in DEMO_POLICIES
        ],
        baseline=BASELINE,
        seeds=list(range(size.first_seed, size.first_seed + size.seeds)),
        days=size.days,
        n_accounts=size.accounts,
        kpis=list(DEMO_KPIS),
    )


def model_path(spec: ExperimentSpec, training: TrainingSettings) -> tuple[Any, Path]:
    """The demo's scenario and where its cached value model lives."""
    scenario, _ = apply_axes(load_scenario(spec.scenario), spec, {}, Path.cwd())
    return scenario, cache_dir() / f"value_{training.key(scenario)}.onnx"


def ensure_value_model(
    spec: ExperimentSpec, training: TrainingSettings, say: Callable[[str], None]
) -> None:
    """Train (and cache) the optimised policy's value model unless it is cached."""
    from collsim.research.training import load_or_train

    scenario, path = model_path(spec, training)
    if path.exists() and path.with_suffix(".json").exists():
        say(f"value model: cached ({path})")
        return
    say(
        f"training the value model on {len(training.seeds)} exploration runs "
        f"({training.n_accounts:,} accounts × {training.days} days each)…"
    )
    start_s = time.perf_counter()
    load_or_train(scenario, training)
    say(f"value model trained in {time.perf_counter() - start_s:.0f} s, cached at {path}")


def run_demo(
    out: Path,
    size: DemoSize,
    say: Callable[[str], None] = print,
    training: TrainingSettings = DEMO_TRAINING,
    workers: int | None = None,
) -> DemoResult:
    """Train if needed, run the cells afresh, write the tables and plots; return them."""
    one_openmp_thread()
    spec = demo_spec(size, training)
    ensure_value_model(spec, training, say)
    experiment = build_experiment(spec, "collsim demo", Path.cwd())
    shutil.rmtree(out / "cells", ignore_errors=True)  # always a fresh run
    say(
        f"simulating {len(DEMO_POLICIES)} policies × {size.seeds} seeds "
        f"({size.accounts:,} accounts × {size.days} days each)…"
    )
    run_experiment(experiment, out, workers=workers)
    runs = pl.read_parquet(out / "runs.parquet")
    currency = experiment.variants[0].scenario.currency
    kpi_table, diff_table, verdict_text = demo_tables(runs, size, currency)
    files = [write_markdown(out / "kpis.md", kpi_table, diff_table, verdict_text)]
    files += write_demo_plots(experiment, runs, out, currency)
    return DemoResult(kpi_table, diff_table, verdict_text, runs, files)


# ---------------------------------------------------------------------------- numbers
def _label(kpi: str, currency: str) -> str:
    return f"{kpi} ({currency})" if kpi in MONEY_KPIS else kpi


def _ci_cell(mean: float, low: float, high: float) -> str:
    """``mean`` over ``[low, high]`` (two lines: the rich table wraps it there)."""
    return f"{fmt(mean)}\n[{fmt(low)}, {fmt(high)}]"


def _signed(value: float) -> str:
    text = fmt(value)
    return text if text.startswith(("-", "–")) else f"+{text}"


def _diff_cell(diff: float, low: float, high: float) -> str:
    return f"{_signed(diff)}\n[{_signed(low)}, {_signed(high)}]"


def differences(runs: pl.DataFrame) -> pl.DataFrame:
    """Paired differences vs the champion for every demo KPI (long format)."""
    return pl.concat([paired_differences(runs, k, BASELINE) for k in DEMO_KPIS])


def demo_tables(runs: pl.DataFrame, size: DemoSize, currency: str) -> tuple[Table, Table, str]:
    """The KPI table, the difference table and the verdict, from the runs table."""
    summary = summarise(runs, list(DEMO_KPIS), by=("policy",))
    diffs = differences(runs)
    kpi_rows = []
    for kpi in DEMO_KPIS:
        cells = []
        for policy in DEMO_POLICIES:
            row = summary.filter((pl.col("policy") == policy) & (pl.col("kpi") == kpi))
            cells.append(_ci_cell(*row.select("mean", "low", "high").row(0)))
        kpi_rows.append((_label(kpi, currency), *cells))
    others = [p for p in DEMO_POLICIES if p != BASELINE]
    diff_rows = []
    for kpi in DEMO_KPIS:
        cells = []
        for policy in others:
            row = diffs.filter((pl.col("policy") == policy) & (pl.col("kpi") == kpi))
            cells.append(_diff_cell(*row.select("diff", "low", "high").row(0)))
        diff_rows.append((_label(kpi, currency), *cells))
    seeds = f"{size.seeds} seed{'s' if size.seeds != 1 else ''}"
    kpi_table = Table(
        f"Per run, mean [95% CI] over {seeds}", ("KPI", *DEMO_POLICIES), tuple(kpi_rows)
    )
    diff_table = Table(
        f"Paired difference vs {BASELINE} [95% CI], same borrowers on each seed",
        ("KPI", *(f"{p} − {BASELINE}" for p in others)),
        tuple(diff_rows),
    )
    return kpi_table, diff_table, verdict(summary, diffs, size, currency)


def _money(value: float, currency: str) -> str:
    return f"{value:,.0f} {currency}"


def _comparison(policy: str, d: dict[str, Any], base_mean: float, currency: str) -> str:
    """One sentence: ``policy`` against the champion on portfolio value."""
    amount = _money(abs(d["diff"]), currency)
    ci = f"95% CI [{d['low']:+,.0f}, {d['high']:+,.0f}]"
    rel = f"{d['diff'] / abs(base_mean) * 100:+.1f}%" if base_mean else "n/a"
    if math.isnan(d["low"]):
        return f"{policy} differs from the {BASELINE} by {d['diff']:+,.0f} {currency} per run "
    if d["low"] > 0:
        return f"{policy} beats the {BASELINE} by {amount} per run ({rel}, {ci})"
    if d["high"] < 0:
        return f"{policy} falls short of the {BASELINE} by {amount} per run ({rel}, {ci})"
    return (
        f"{policy} shows no significant difference from the {BASELINE} "
        f"({d['diff']:+,.0f} {currency} per run, {ci}, an interval that includes zero)"
    )


def verdict(summary: pl.DataFrame, diffs: pl.DataFrame, size: DemoSize, currency: str) -> str:
    """A plain-language paragraph computed from the portfolio-value numbers."""

    def mean(policy: str, kpi: str) -> float:
        row = summary.filter((pl.col("policy") == policy) & (pl.col("kpi") == kpi))
        return float(row["mean"][0])

    value = diffs.filter(pl.col("kpi") == "portfolio_value")
    by_policy = {r["policy"]: r for r in value.iter_rows(named=True)}
    base = mean(BASELINE, "portfolio_value")
    last = size.first_seed + size.seeds - 1
    seeds = f"seeds {size.first_seed}–{last}" if size.seeds > 1 else f"seed {last}"
    parts = [
        f"On {size.accounts:,} accounts × {size.days} days of the calibrated default scenario, "
        f"paired over {seeds} (every policy meets the same borrowers), the "
        f"{BASELINE} is worth {_money(base, currency)} per run in portfolio value.",
        f"On portfolio value, {_comparison('optimised', by_policy['optimised'], base, currency)};",
        f"{_comparison('no_contact', by_policy['no_contact'], base, currency)}.",
        f"Complaints per 1,000 accounts: optimised {mean('optimised', 'complaints_per_1000'):.1f}"
        f", {BASELINE} {mean(BASELINE, 'complaints_per_1000'):.1f}; agent occupancy "
        f"{mean('optimised', 'agent_occupancy'):.0%} vs "
        f"{mean(BASELINE, 'agent_occupancy'):.0%}.",
    ]
    if size.seeds < 2:
        parts.append("One seed gives no interval: run with --seeds 3 or more to judge.")
    return " ".join(parts)


# ---------------------------------------------------------------------------- files
def write_markdown(path: Path, kpi_table: Table, diff_table: Table, verdict_text: str) -> Path:
    """The two tables (one line per cell) and the verdict as Markdown."""

    def flat(table: Table) -> Table:
        rows = tuple(tuple(c.replace("\n", " ") for c in row) for row in table.rows)
        return Table(table.title, table.columns, rows)

    text = "\n".join([flat(kpi_table).markdown(), flat(diff_table).markdown(), verdict_text, ""])
    atomic_write_text(path, text)
    return path


def write_demo_plots(
    experiment: Experiment, runs: pl.DataFrame, out: Path, currency: str
) -> list[Path]:
    """portfolio_value.png, difference_vs_champion.png, cumulative_cash.png, channel_mix.png."""
    daily = pl.read_parquet(out / "daily.parquet")
    mix = pl.read_parquet(out / "channel_mix.parquet")
    value = summarise(runs, ["portfolio_value"], by=("policy",))
    diffs = paired_differences(runs, "portfolio_value", BASELINE)
    return [
        plots.plot_value_intervals(
            value, "portfolio value per run", currency, out / "portfolio_value.png"
        ),
        plots.plot_paired_differences(
            diffs,
            f"portfolio value, policy − {BASELINE}",
            currency,
            out / "difference_vs_champion.png",
        ),
        plots.plot_cumulative_cash(daily, currency, out / "cumulative_cash.png"),
        plots.plot_channel_mix_tables(
            channel_mixes(experiment, mix),
            out / "channel_mix.png",
            "Channel mix by DPD bucket (all seeds)",
        ),
    ]
