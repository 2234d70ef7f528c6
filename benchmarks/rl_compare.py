"""Champion vs RL policies on paired seeds: the tables of benchmarks/RL_COMPARISON.md.

Every policy runs the same scenario on the same seeds through the evaluation runner
(:func:`collsim.evaluation.runner.run_experiment`; common random numbers: the same
seed means the same borrowers and behaviour draws), so the difference to the
champion is a paired t interval over seeds (:mod:`collsim.evaluation.stats`).

Blocked contacts are counted two ways, from the runs' KPIs:

* ``gate blocks`` — the engine's ``blocked`` ledger events: planned contacts refused
  by the compliance gate (at the day's gate or in-day, before the hour's call);
* ``redials blocked`` — the engine's ``redial_blocked`` events: the dialler's own
  same-day redials of an unanswered agent call refused in-day (e.g. the 8th call in
  seven days under ``us_reg_f.7in7``); not planned contacts.

Whether a policy's plans stay inside the day's mask and capacity is checked per
snapshot by :func:`collsim.check_policy`, not here.

Run::

    .venv/bin/python benchmarks/rl_compare.py --model runs/rl/best_model.zip --out runs/rl_compare

adds ``rl``, ``rl+fallbacks`` and ``hybrid`` for the model; further learned policies with
``--rl LABEL=PATH`` / ``--hybrid LABEL=PATH`` (a ``.zip``, ``.onnx`` or ensemble
``.json``); default policies left out with ``--skip LABEL ...``.  ``--out`` gets the
runner's output (``cells/`` makes reruns resume) and ``comparison.md``; copy the table
into ``benchmarks/RL_COMPARISON.md`` with the command and the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path
from typing import Any

import polars as pl

from collsim.evaluation.runner import run_experiment
from collsim.evaluation.spec import Experiment, ExperimentSpec, PolicySpec, build_experiment
from collsim.evaluation.stats import paired_differences, summarise

BASELINE = "champion"
KPIS = ["portfolio_value", "net_recovery", "amount_recovered", "total_cost", "attempts",
        "blocked", "redials_blocked", "overflow"]  # fmt: skip


def policy_specs(
    model: Path | None,
    priority: str,
    rl: list[tuple[str, Path]],
    hybrid: list[tuple[str, Path]],
    skip: list[str],
) -> list[PolicySpec]:
    """The compared policies: champion, no contact, optimised, the model's and the labelled ones.

    Raises:
        ValueError: ``skip`` names the champion (the baseline).
    """
    if BASELINE in skip:
        raise ValueError("the champion is the baseline and cannot be skipped")
    specs = [
        PolicySpec(label=BASELINE, id="champion"),
        PolicySpec(label="no_contact", id="no_contact"),
        PolicySpec(label="optimised", id="optimised"),
    ]
    if model is not None:
        specs += [
            PolicySpec(label="rl", id=f"rl:{model}", params={"priority": priority}),
            PolicySpec(
                label="rl+fallbacks",
                id=f"rl:{model}",
                params={"fallbacks": 8, "priority": priority},
            ),
            PolicySpec(label="hybrid", id=f"hybrid:{model}"),
        ]
    specs = [s for s in specs if s.label not in skip]
    specs += [
        PolicySpec(label=label, id=f"rl:{path}", params={"fallbacks": 8, "priority": priority})
        for label, path in rl
    ]
    specs += [PolicySpec(label=label, id=f"hybrid:{path}") for label, path in hybrid]
    return specs


def experiment(
    policies: list[PolicySpec], scenario: str, accounts: int, days: int, seeds: list[int]
) -> Experiment:
    """The comparison as an evaluation-runner experiment."""
    spec = ExperimentSpec(
        name="rl_comparison",
        scenario=scenario,
        policies=policies,
        baseline=BASELINE,
        seeds=seeds,
        days=days,
        n_accounts=accounts,
        kpis=["portfolio_value"],
    )
    return build_experiment(spec, "benchmarks/rl_compare.py", Path.cwd())


def _fmt(x: float) -> str:
    return f"{x:,.0f}"


def comparison_markdown(runs: pl.DataFrame, exp: Experiment, notes: list[str]) -> str:
    """The comparison table (markdown): KPI means, paired 95% CIs vs the champion."""
    for kpi in KPIS:
        if kpi not in runs.columns:
            runs = runs.with_columns(pl.lit(0.0).alias(kpi))
    means = summarise(runs, KPIS, by=("policy",))
    diffs = paired_differences(runs, "portfolio_value", BASELINE, by=("variant",))

    def stat(label: str, kpi: str, column: str = "mean") -> float:
        row = means.filter((pl.col("policy") == label) & (pl.col("kpi") == kpi))
        return float(row[column][0])

    def total(label: str, kpi: str) -> float:
        return float(runs.filter(pl.col("policy") == label)[kpi].sum())

    scenario = exp.variants[0].scenario
    seeds = exp.spec.seed_list()
    lines = [
        f"Scenario `{scenario.name}` ({scenario.ruleset}), {scenario.portfolio.n_accounts:,} "
        f"accounts × {exp.days} days, seeds {seeds} (paired: same seed = same borrowers and "
        "behaviour draws). Portfolio value = the objective (docs/kpis.md); net recovery = "
        "amount recovered − every cost; whole portfolio, currency units. 95% intervals: "
        "Student t over seeds (paired differences for Δ).",
        "",
        f"| policy | portfolio value (mean ± 95% CI) | Δ vs {BASELINE} (paired, 95% CI) | Δ % | "
        "net recovery | recovered | cost | attempts | gate blocks | redials blocked | "
        "overflow |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label in runs["policy"].unique(maintain_order=True).to_list():
        half = (stat(label, "portfolio_value", "high") - stat(label, "portfolio_value", "low")) / 2
        delta, pct = "—", "—"
        if label != BASELINE:
            d = diffs.filter(pl.col("policy") == label).row(0, named=True)
            delta = f"{_fmt(d['diff'])} [{_fmt(d['low'])}, {_fmt(d['high'])}]"
            pct = f"{d['rel_pct']:+.1f}%"
        lines.append(
            f"| {label} | {_fmt(stat(label, 'portfolio_value'))} ± {_fmt(half)} | {delta} | "
            f"{pct} | {_fmt(stat(label, 'net_recovery'))} | "
            f"{_fmt(stat(label, 'amount_recovered'))} | {_fmt(stat(label, 'total_cost'))} | "
            f"{_fmt(stat(label, 'attempts'))} | {_fmt(total(label, 'blocked'))} | "
            f"{_fmt(total(label, 'redials_blocked'))} | {_fmt(total(label, 'overflow'))} |"
        )
    lines += [
        "",
        "Gate blocks: planned contacts refused by the engine's compliance gate (`blocked` "
        "events), summed over seeds. Redials blocked: the dialler's same-day redials refused "
        "in-day (`redial_blocked` events), not plan violations. Overflow: planned contacts "
        "that did not fit agent capacity in the SimPy day.",
    ]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def _labelled(spec: str) -> tuple[str, Path]:
    label, sep, path = spec.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {spec!r}")
    return label, Path(path)


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line's arguments."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, help="adds rl, rl+fallbacks and hybrid")
    parser.add_argument("--rl", type=_labelled, action="append", default=[],
                        metavar="LABEL=PATH", help="RLPolicy(PATH, fallbacks=8)")  # fmt: skip
    parser.add_argument("--priority", default="log_odds",
                        help="RLPolicy priority (confidence, log_odds, value)")  # fmt: skip
    parser.add_argument("--hybrid", type=_labelled, action="append", default=[],
                        metavar="LABEL=PATH", help="HybridPolicy(PATH) as LABEL")  # fmt: skip
    parser.add_argument("--skip", nargs="*", default=[], help="default policies not to run")
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--workers", type=int, default=None, help="default min(2, CPUs)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--title", default="RL vs champion on the default scenario")
    parser.add_argument("--note", action="append", default=[])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; write ``OUT/comparison.md`` and print it."""
    args: Any = parse(argv)
    policies = policy_specs(args.model, args.priority, args.rl, args.hybrid, args.skip)
    exp = experiment(policies, args.scenario, args.accounts, args.days, args.seeds)
    started = time.perf_counter()
    tables = run_experiment(exp, args.out, workers=args.workers)
    elapsed = time.perf_counter() - started
    models = [f"{p.label} = `{p.id}`" for p in policies if p.id.startswith(("rl:", "hybrid:"))]
    header = (
        f"# {args.title}\n\nGenerated by `benchmarks/rl_compare.py` on "
        f"{dt.date.today().isoformat()} ({elapsed:.0f} s). Models: {', '.join(models) or 'none'}."
        "\n\n"
    )
    runs = pl.read_parquet(tables["runs"])
    text = header + comparison_markdown(runs, exp, args.note)
    (args.out / "comparison.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
