"""Experiment reports: the headline table, KPI tables and plots, as Markdown and HTML.

``write_report(experiment, out)`` reads ``runs.parquet``, ``daily.parquet`` and
``channel_mix.parquet`` from ``out`` and writes ``report.md``, ``report.html``
(self-contained apart from the PNGs beside it) and the PNG plots.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from collsim.evaluation import plots
from collsim.evaluation.spec import Experiment
from collsim.evaluation.stats import frontier, paired_differences, summarise
from collsim.io import atomic_write_text
from collsim.vocab import CHANNELS


def headline_columns(kpi: str = "portfolio_value") -> tuple[str, ...]:
    """Column names of the headline table for headline KPI ``kpi``."""
    return (
        "policy",
        f"{kpi} [95% CI]",
        "diff vs baseline [95% CI]",
        "diff %",
        "net recovery",
        "total cost",
        "complaints / 1000",
        "blocked",
    )


HEADLINE_COLUMNS = headline_columns()
"""Columns of the headline table with the default headline KPI (``portfolio_value``)."""


@dataclass(frozen=True)
class Table:
    """A plain table: a title, column names and string cells."""

    title: str
    columns: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]

    def markdown(self) -> str:
        """The table in GitHub Markdown."""
        lines = [
            f"**{self.title}**",
            "",
            "| " + " | ".join(self.columns) + " |",
            "|" + "---|" * len(self.columns),
        ]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        """The table as an HTML fragment."""
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
            for row in self.rows
        )
        return (
            f"<h3>{html.escape(self.title)}</h3>\n<table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>\n"
        )


def fmt(value: float) -> str:
    """A number for people: thousands separators for big ones, 3 decimals for small ones."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def _ci(mean: float, low: float, high: float) -> str:
    return f"{fmt(mean)} [{fmt(low)}, {fmt(high)}]"


def headline_tables(experiment: Experiment, runs: pl.DataFrame) -> list[Table]:
    """One headline table per variant.

    Columns: the spec's headline KPI (default ``portfolio_value``), its paired
    difference vs the baseline, net recovery, cost, complaints, blocked.
    """
    spec = experiment.spec
    headline = spec.headline_kpi
    kpis = list(
        dict.fromkeys([headline, "net_recovery", "total_cost", "complaints_per_1000", "blocked"])
    )
    summary = summarise(runs, kpis)
    diffs = paired_differences(runs, headline, spec.baseline, predictive=spec.model_uncertainty)
    tables = []
    for variant in experiment.variants:
        rows = []
        for p in spec.policies:
            s = {
                r["kpi"]: r
                for r in summary.filter(
                    (pl.col("variant") == variant.index) & (pl.col("policy") == p.label)
                ).iter_rows(named=True)
            }
            if not s:
                continue
            value = s[headline]
            if p.label == spec.baseline:
                diff, rel = "(baseline)", ""
            else:
                d = diffs.filter(
                    (pl.col("variant") == variant.index) & (pl.col("policy") == p.label)
                ).row(0, named=True)
                diff = _ci(d["diff"], d["low"], d["high"])
                rel = f"{d['rel_pct']:+.1f}% [{d['rel_low']:+.1f}, {d['rel_high']:+.1f}]"
            rows.append(
                (
                    p.label,
                    _ci(value["mean"], value["low"], value["high"]),
                    diff,
                    rel,
                    fmt(s["net_recovery"]["mean"]),
                    fmt(s["total_cost"]["mean"]),
                    fmt(s["complaints_per_1000"]["mean"]),
                    fmt(s["blocked"]["mean"]),
                )
            )
        title = "Headline" if len(experiment.variants) == 1 else f"Headline: {variant.label}"
        if spec.model_uncertainty:
            title += " (diff interval: where one more draw of the fitted numbers falls)"
        tables.append(Table(title, headline_columns(headline), rows))
    return tables


def kpi_tables(experiment: Experiment, runs: pl.DataFrame) -> list[Table]:
    """One table per variant: every requested KPI, mean [95% CI] per policy."""
    kpis = [k for k in experiment.spec.kpis if k in runs.columns]
    summary = summarise(runs, kpis)
    labels = [p.label for p in experiment.spec.policies]
    tables = []
    for variant in experiment.variants:
        part = summary.filter(pl.col("variant") == variant.index)
        rows = []
        for kpi in kpis:
            cells = []
            for label in labels:
                hit = part.filter((pl.col("policy") == label) & (pl.col("kpi") == kpi))
                cells.append(_ci(*hit.select("mean", "low", "high").row(0)) if hit.height else "–")
            rows.append((kpi, *cells))
        title = "KPIs, mean [95% CI]" + (
            "" if len(experiment.variants) == 1 else f": {variant.label}"
        )
        tables.append(Table(title, ("KPI", *labels), rows))
    return tables


def frontier_table(points: pl.DataFrame) -> Table:
    """The cost–recovery points with their Pareto flag."""
    rows = [
        (
            r["variant_label"],
            r["policy"],
            fmt(r["cost"]),
            fmt(r["value"]),
            fmt(r["net"]),
            "yes" if r["pareto"] else "",
        )
        for r in points.iter_rows(named=True)
    ]
    return Table(
        "Cost–recovery frontier (means over seeds)",
        ("variant", "policy", "total cost", "recovered", "net", "Pareto"),
        rows,
    )


def channel_mixes(experiment: Experiment, mix: pl.DataFrame) -> dict[str, np.ndarray]:
    """Policy label → attempts [4 DPD buckets, channels] of the first variant, all seeds.

    Args:
        mix: the ``channel_mix.parquet`` table of the experiment.
    """
    first = experiment.variants[0]
    mixes = {}
    for p in experiment.spec.policies:
        part = mix.filter((pl.col("variant") == first.index) & (pl.col("policy") == p.label))
        table = np.zeros((4, len(CHANNELS)), dtype=np.int64)
        for row in (
            part.group_by("bucket", "channel").agg(pl.col("attempts").sum()).iter_rows(named=True)
        ):
            table[
                ["1-30", "31-60", "61-90", "91-180"].index(row["bucket"]),
                CHANNELS.index(row["channel"]),
            ] = row["attempts"]
        mixes[p.label] = table
    return mixes


def write_plots(experiment: Experiment, out: Path, runs: pl.DataFrame) -> dict[str, Path]:
    """Write the PNG plots (the headline KPI first); return title → path."""
    daily = pl.read_parquet(out / "daily.parquet")
    mixes = channel_mixes(experiment, pl.read_parquet(out / "channel_mix.parquet"))
    first = experiment.variants[0]
    title = (
        "Channel mix by DPD bucket (all seeds"
        + ("" if len(experiment.variants) == 1 else f", {first.label}")
        + ")"
    )
    headline = experiment.spec.headline_kpi
    return {
        f"Headline: {headline}": plots.plot_headline(
            summarise(runs, [headline], by=("variant", "variant_label", "policy")),
            headline,
            out / "headline.png",
        ),
        "Cumulative net recovery": plots.plot_mean_cumulative_recovery(
            daily, out / "cumulative_recovery.png"
        ),
        "Cost–recovery frontier": plots.plot_frontier(frontier(runs), out / "frontier.png"),
        "Channel mix by DPD bucket": plots.plot_channel_mix_tables(
            mixes, out / "channel_mix.png", title
        ),
        "Blocked attempts by rule": plots.plot_blocked_by_rule(runs, out / "blocked_by_rule.png"),
    }


def _intro(experiment: Experiment, runs: pl.DataFrame) -> list[str]:
    spec = experiment.spec
    n_accounts = sorted(set(runs["n_accounts"].to_list()))
    return [
        f"Scenario `{spec.scenario}`, {', '.join(f'{n:,}' for n in n_accounts)} accounts, "
        f"{experiment.days} days, seeds {spec.seed_list()} ({runs.height} runs).",
        f"Baseline: `{spec.baseline}`. Intervals: 95% Student-t over seeds; differences are "
        "paired on seeds (common random numbers). Diff % is relative to the baseline mean.",
    ]


def write_report(experiment: Experiment, out: Path) -> list[Table]:
    """Write report.md, report.html and the plots; return the headline tables."""
    runs = pl.read_parquet(out / "runs.parquet")
    headline = headline_tables(experiment, runs)
    tables = [*headline, *kpi_tables(experiment, runs), frontier_table(frontier(runs))]
    images = write_plots(experiment, out, runs)
    intro = _intro(experiment, runs)
    title = f"Experiment {experiment.spec.name}"
    md = [f"# {title}", "", *intro, ""]
    md += [t.markdown() for t in tables]
    md += [f"![{name}]({path.name})\n" for name, path in images.items()]
    md.append(
        "Data: `runs.parquet`, `daily.parquet`, `channel_mix.parquet` (read with "
        "`polars.read_parquet`); provenance: `manifest.json`.\n"
    )
    atomic_write_text(out / "report.md", "\n".join(md))
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
        "font-size:13px}th{background:#eee}img{max-width:100%}"
    )
    body = [f"<h1>{html.escape(title)}</h1>", *(f"<p>{html.escape(line)}</p>" for line in intro)]
    body += [t.html() for t in tables]
    body += [
        f'<h3>{html.escape(name)}</h3><img src="{path.name}" alt="{html.escape(name)}">'
        for name, path in images.items()
    ]
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    atomic_write_text(out / "report.html", page)
    return headline
