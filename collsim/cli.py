"""The ``collsim`` command line.

Exit codes: 0 success, 1 a check found problems (violations), 2 bad input or usage.
Errors go to stderr, one readable line each; long work shows a progress bar.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from collsim.config import ConfigError, bundled_scenarios, dump_yaml, load_scenario

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="collsim: decide, simulate and export daily debt-collection contact plans.",
)
console = Console()
err_console = Console(stderr=True)

EXIT_PROBLEMS = 1
EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print each line of ``message`` to stderr and exit with ``code``."""
    for line in str(message).splitlines() or [""]:
        err_console.print(f"[red]error:[/red] {line}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def bad_input_is_exit_2() -> Iterator[None]:
    """Turn input errors (config, files, values) into exit 2 with a readable message."""
    from collsim.tables import InputError

    try:
        yield
    except (ConfigError, InputError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
        disable=not sys.stderr.isatty(),
    )


def parse_date(text: str) -> dt.date:
    """Parse YYYY-MM-DD or raise ValueError naming the value."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--date: {text!r} is not a date in the form YYYY-MM-DD") from None


# ---------------------------------------------------------------------------- scenarios
@app.command()
def scenarios() -> None:
    """List the bundled scenarios."""
    table = Table("scenario", "accounts", "days", "rule set", "description")
    for name in bundled_scenarios():
        s = load_scenario(name)
        table.add_row(
            name, f"{s.portfolio.n_accounts:,}", str(s.sim.days), s.ruleset, s.description
        )
    console.print(table)


# ---------------------------------------------------------------------------- simulate
def run_policy(
    scenario_name: str,
    policy: str,
    seed: int,
    n_accounts: int | None,
    days: int | None,
    ruleset: str | None = None,
) -> Any:
    """Simulate one policy with a progress bar (labelled with its id); return the Simulation."""
    return _run_policy(scenario_name, policy, (seed, n_accounts, days), ruleset, logs=False)[0]


def _run_policy(
    scenario_name: str,
    policy: str,
    size: tuple[int, int | None, int | None],
    ruleset: str | None,
    logs: bool,
) -> tuple[Any, Any]:
    """Simulate (seed, accounts, days); return the Simulation and its LogRecorder (or None)."""
    from collsim.research.registry import make_policy
    from collsim.sim import Simulation
    from collsim.sim.logs import LogRecorder

    seed, n_accounts, days = size
    scenario = load_scenario(scenario_name)
    sim = Simulation(scenario, seed, n_accounts=n_accounts, ruleset=ruleset)
    recorder = LogRecorder(sim) if logs else None
    decider = make_policy(policy, scenario)
    total = days or sim.scenario.sim.days
    with _progress() as progress:
        task = progress.add_task(policy, total=total)

        def advance(_stats: object) -> None:
            if recorder is not None:
                recorder.end_of_day()
            progress.advance(task)

        sim.run(decider if recorder is None else recorder.wrap(decider), total, progress=advance)
    return sim, recorder


def write_run(sim: Any, out: Path, policy: str, seed: int) -> dict[str, float]:
    """Write ledger.parquet, kpis.json and manifest.json of a run; return the KPIs."""
    from collsim.io import atomic_write_text
    from collsim.metrics import kpis
    from collsim.runinfo import write_manifest

    out.mkdir(parents=True, exist_ok=True)
    sim.ledger.write_parquet(out / "ledger.parquet", sim.portfolio.account_id)
    values = kpis(sim.ledger)
    atomic_write_text(out / "kpis.json", json.dumps(values, indent=2, sort_keys=True) + "\n")
    write_manifest(
        out / "manifest.json",
        scenario=sim.scenario.name,
        config_hash=sim.scenario.config_hash(),
        policy=policy,
        policy_id=sim.policy_id,
        seed=seed,
        accounts=sim.n,
        days=sim.day_index,
        ruleset=sim.ruleset.id,
    )
    return values


@app.command()
def simulate(
    scenario: Annotated[str, typer.Option(help="bundled scenario name or YAML path")] = "default",
    policy: Annotated[
        str, typer.Option(help="no_contact | random | champion | tree YAML")
    ] = "champion",
    accounts: Annotated[
        int | None, typer.Option(help="portfolio size (default: scenario's)")
    ] = None,
    days: Annotated[int | None, typer.Option(help="days to simulate (default: scenario's)")] = None,
    seed: Annotated[int, typer.Option(help="run seed")] = 0,
    ruleset: Annotated[
        str | None, typer.Option(help="rule set name or YAML (default: scenario's)")
    ] = None,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/latest"),
    logs: Annotated[
        Path | None,
        typer.Option(help="also write lender logs (accounts, contacts, payments) to this folder"),
    ] = None,
    force: Annotated[bool, typer.Option(help="replace existing files in --logs")] = False,
) -> None:
    """Simulate a scenario under a policy; write ledger.parquet, kpis.json, manifest.json.

    With ``--logs DIR`` also write the run's lender logs (docs/input_formats.md):
    accounts.parquet (the portfolio at the start), contacts.parquet, payments.parquet.
    """
    from collsim.logs import existing_log_files

    existing = existing_log_files(logs) if logs is not None else []
    if existing and not force:
        fail("\n".join(f"--logs {p}: an existing file is there; pass --force to replace it"
                        for p in existing))  # fmt: skip
    with bad_input_is_exit_2():
        sim, recorder = _run_policy(
            scenario, policy, (seed, accounts, days), ruleset, logs=bool(logs)
        )
    values = write_run(sim, out, policy, seed)
    console.print(kpi_table({policy: values}))
    console.print(f"wrote {out}/ledger.parquet, kpis.json, manifest.json")
    if logs is not None:
        from collsim.logs import write_logs
        from collsim.sim.logs import simulated_logs

        run_logs = simulated_logs(recorder)
        written = write_logs(run_logs, logs, force=force)
        window = run_logs.window
        console.print("wrote " + ", ".join(str(p) for p in written))
        console.print(f"log window: {window.start}..{window.end} (accounts' local days)")


HEADLINE_KPIS = (
    "portfolio_value",
    "net_recovery",
    "amount_recovered",
    "total_cost",
    "recovery_rate",
    "cure_rate",
    "roll_rate.31-60",
    "charge_off_rate",
    "attempts",
    "rpc_rate",
    "ptp_rate",
    "complaints_per_1000",
    "agent_cost",
    "agent_occupancy",
    "blocked",
    "overflow",
)


def _fmt(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def kpi_table(
    results: dict[str, dict[str, float]], names: tuple[str, ...] = HEADLINE_KPIS
) -> Table:
    """A rich table: one row per KPI, one column per policy."""
    table = Table("KPI", *results.keys(), title="KPIs")
    for name in names:
        table.add_row(name, *(_fmt(r.get(name, 0.0)) for r in results.values()))
    return table


# ---------------------------------------------------------------------------- demo
@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="report folder")] = Path("demo_output"),
    accounts: Annotated[int, typer.Option(help="accounts per run")] = 4000,
    days: Annotated[int, typer.Option(help="days per run")] = 90,
    seeds: Annotated[int, typer.Option(help="number of paired seeds")] = 3,
    seed: Annotated[int, typer.Option(help="first seed")] = 0,
    workers: Annotated[int | None, typer.Option(help="worker processes (default 2)")] = None,
    train_accounts: Annotated[
        int | None, typer.Option(help="accounts per exploration run of the value model [800]")
    ] = None,
    train_days: Annotated[
        int | None, typer.Option(help="days per exploration run of the value model [90]")
    ] = None,
) -> None:
    """No contact, the champion and the optimised allocation on the default scenario.

    Paired over seeds (common random numbers) with 95% intervals; trains the optimised
    policy's value model first when it is not cached.
    """
    from dataclasses import replace

    from collsim.evaluation.demo import DEMO_TRAINING, DemoSize, run_demo

    training = replace(
        DEMO_TRAINING,
        n_accounts=DEMO_TRAINING.n_accounts if train_accounts is None else train_accounts,
        days=DEMO_TRAINING.days if train_days is None else train_days,
    )
    if min(accounts, days, seeds, training.n_accounts) < 1 or (workers is not None and workers < 1):
        fail("--accounts, --days, --seeds, --workers and --train-accounts must be at least 1")
    if training.days <= training.horizon:
        fail(f"--train-days must exceed the value model's horizon ({training.horizon} days)")
    with bad_input_is_exit_2():
        result = run_demo(
            out,
            DemoSize(accounts, days, seeds, seed),
            say=lambda text: err_console.print(text, highlight=False),
            training=training,
            workers=workers,
        )
    for table in (result.kpi_table, result.diff_table):
        rich = Table(title=table.title, show_lines=True)
        for i, column in enumerate(table.columns):
            rich.add_column(column, no_wrap=i == 0, justify="left" if i == 0 else "right")
        for row in table.rows:
            rich.add_row(*row)
        console.print(rich)
    console.print(result.verdict, soft_wrap=False)
    console.print(f"report: {', '.join(str(p) for p in result.files)}")


# ---------------------------------------------------------------------------- compare
@app.command("compare")
def compare_cmd(
    experiment: Annotated[Path, typer.Argument(help="experiment spec YAML")],
    out: Annotated[Path, typer.Option(help="report folder")] = Path("results/experiment"),
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler: local-cluster or tcp://host:8786")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="local worker processes")] = None,
) -> None:
    """Run an experiment (scenarios × policies × seeds) and write its report."""
    from collsim.evaluation.commands import compare

    raise typer.Exit(compare(experiment, out, scheduler, workers))


# ---------------------------------------------------------------------------- sensitivity
@app.command("sensitivity")
def sensitivity_cmd(
    spec: Annotated[Path, typer.Argument(help="sensitivity spec YAML")],
    out: Annotated[Path, typer.Option(help="output folder")] = Path("results/sensitivity"),
    accounts: Annotated[int | None, typer.Option(help="accounts per run (default: spec's)")] = None,
    days: Annotated[int | None, typer.Option(help="days per run (default: spec's)")] = None,
    seeds: Annotated[int | None, typer.Option(help="number of seeds (default: spec's)")] = None,
    workers: Annotated[int, typer.Option(help="processes, each running whole cases")] = 1,
) -> None:
    """Vary each assumption over its range; tornado plot of challenger − champion."""
    from collsim.evaluation.sensitivity import sensitivity_command

    raise typer.Exit(sensitivity_command(spec, out, accounts, days, seeds, workers))


# ---------------------------------------------------------------------------- train
@app.command("train")
def train_cmd(
    scenario: Annotated[str, typer.Option(help="bundled scenario name or YAML path")] = "default",
    algo: Annotated[str, typer.Option(help="training algorithm")] = "maskable_ppo",
    steps: Annotated[
        int | None,
        typer.Option(help="environment steps (default 200,000); offline: gradient steps"),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed")] = 0,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("models/ppo"),
    n_envs: Annotated[int, typer.Option(help="accounts stepped together")] = 256,
    logs: Annotated[
        Path | None, typer.Option(help="--algo offline: folder of the lender logs")
    ] = None,
    start: Annotated[str | None, typer.Option(help="--algo offline: first log day")] = None,
    end: Annotated[str | None, typer.Option(help="--algo offline: last log day")] = None,
    capacity: Annotated[
        Path | None, typer.Option(help="--algo offline: capacity YAML of the logged days")
    ] = None,
    horizon_days: Annotated[int, typer.Option(help="--algo offline: reward window")] = 7,
    treatments: Annotated[
        bool, typer.Option(help="the agent chooses offer and variant too (actions)")
    ] = False,
) -> None:
    """Train an RL policy on collsim/AccountBatch-v0 (or, ``--algo offline``, from logs alone)."""
    from collsim.rl.commands import OFFLINE, train, train_offline_logs

    if algo == OFFLINE:
        from collsim.rl.offline import OfflineConfig

        if logs is None:
            fail("--algo offline needs --logs DIR")
        with bad_input_is_exit_2():
            window = _window(start, end)
            default = OfflineConfig().steps
            config = OfflineConfig(horizon_days=horizon_days, seed=seed,
                                   steps=default if steps is None else steps)  # fmt: skip
        raise typer.Exit(train_offline_logs(out, logs, window, scenario, capacity, config))
    ppo_steps = 200_000 if steps is None else steps
    overrides = {"scenario": scenario, "algo": algo, "steps": ppo_steps, "seed": seed}
    if treatments:
        overrides["treatments"] = True
    raise typer.Exit(train(out, {**overrides, "n_envs": n_envs}))


# ---------------------------------------------------------------------------- export
TrainAccounts = Annotated[
    int | None, typer.Option(help="value model: accounts per exploration run (default 3000)")
]
TrainDays = Annotated[
    int | None, typer.Option(help="value model: days per exploration run (default 90)")
]
TrainSeeds = Annotated[int | None, typer.Option(help="value model: exploration runs (default 3)")]


@app.command("fit-value-model")
def fit_value_model_cmd(
    out: Annotated[Path, typer.Option(help="model file MODEL.onnx (+ MODEL.json)")],
    scenario: Annotated[str, typer.Option(help="scenario the model is for")] = "default",
    train_accounts: TrainAccounts = None,
    train_days: TrainDays = None,
    train_seeds: TrainSeeds = None,
    retrain: Annotated[bool, typer.Option(help="train even if cached")] = False,
    force: Annotated[bool, typer.Option(help="replace an existing model file")] = False,
) -> None:
    """Fit (or load from the cache) the scenario's value model and write it as ONNX."""
    from collsim.research.commands import ValueTraining, fit_value_model

    training = ValueTraining(train_accounts, train_days, train_seeds, retrain)
    raise typer.Exit(fit_value_model(scenario, out, training, force))


@app.command("export")
def export_cmd(
    policy: Annotated[
        str,
        typer.Option(
            help="champion, no_contact, optimised, TREE.yaml, rl_onnx:M.onnx or value_model:M.onnx"
        ),
    ],
    out: Annotated[Path, typer.Option(help="artifact folder")],
    scenario: Annotated[str, typer.Option(help="scenario the policy is for")] = "default",
    seed: Annotated[int, typer.Option(help="seed for the distillation run")] = 0,
    distill_days: Annotated[
        int, typer.Option(help="days simulated to distil a readable tree (0: none)")
    ] = 0,
    max_depth: Annotated[int, typer.Option(help="depth of the distilled tree")] = 4,
    distill_accounts: Annotated[
        int | None, typer.Option(help="accounts in the distillation run")
    ] = None,
    train_accounts: TrainAccounts = None,
    train_days: TrainDays = None,
    train_seeds: TrainSeeds = None,
    retrain: Annotated[bool, typer.Option(help="optimised: train even if cached")] = False,
) -> None:
    """Export a policy as an artifact folder (manifest.json with sha256 of every file).

    ``--policy optimised`` fits the scenario's value model (or loads it from the cache)
    and exports it with the exact allocation; no Python needs to be written.
    """
    from collsim.export.commands import Distillation
    from collsim.research.commands import ValueTraining, export_policy

    raise typer.Exit(
        export_policy(
            policy,
            out,
            scenario,
            distill=Distillation(distill_days, max_depth, distill_accounts, seed),
            training=ValueTraining(train_accounts, train_days, train_seeds, retrain),
        )
    )


@app.command("plan")
def plan_cmd(
    artifact: Annotated[Path, typer.Option(help="policy artifact folder")],
    portfolio: Annotated[Path, typer.Option(help="portfolio file (CSV or Parquet)")],
    history: Annotated[Path, typer.Option(help="contact history file (CSV or Parquet)")],
    capacity: Annotated[Path, typer.Option(help="capacity YAML")],
    date: Annotated[str, typer.Option(help="plan date YYYY-MM-DD (accounts' local day)")],
    ruleset: Annotated[str, typer.Option(help="rule set name or YAML")],
    out: Annotated[Path, typer.Option(help="plan file (.parquet, or .csv with --csv)")],
    holdout_share: Annotated[float, typer.Option(help="share of planned contacts held out")] = 0.0,
    seed: Annotated[int, typer.Option(help="seed of the holdout draw")] = 0,
    csv: Annotated[bool, typer.Option(help="write CSV instead of Parquet")] = False,
    force: Annotated[bool, typer.Option(help="replace an existing plan at --out")] = False,
    ruleset_override: Annotated[
        bool, typer.Option(help="plan with a rule set other than the artifact's (recorded)")
    ] = False,
    memo_detail: Annotated[
        bool, typer.Option(help="memos may name cease/dispute/vulnerability status (recorded)")
    ] = False,
) -> None:
    """Build, validate and write the daily plan and its manifest (none if a rule is broken)."""
    from collsim.export.commands import make_plan

    raise typer.Exit(
        make_plan(
            artifact,
            portfolio=portfolio,
            history=history,
            capacity=capacity,
            date=date,
            ruleset=ruleset,
            out=out,
            holdout_share=holdout_share,
            seed=seed,
            csv=csv,
            force=force,
            ruleset_override=ruleset_override,
            memo_detail=memo_detail,
        )
    )


@app.command("validate-plan")
def validate_plan_cmd(
    plan: Annotated[Path, typer.Argument(help="plan file")],
    portfolio: Annotated[Path, typer.Option(help="portfolio file")],
    history: Annotated[Path, typer.Option(help="contact history file")],
    capacity: Annotated[Path, typer.Option(help="capacity YAML")],
    ruleset: Annotated[str, typer.Option(help="rule set name or YAML")],
) -> None:
    """List every violation as `account_id, rule_id, sentence`; exit 1 if any."""
    from collsim.export.commands import validate_plan_files

    raise typer.Exit(validate_plan_files(plan, portfolio, history, capacity, ruleset))


@app.command("validate-logs")
def validate_logs_cmd(
    folder: Annotated[Path, typer.Argument(help="folder of accounts, contacts and payments")],
    start: Annotated[str, typer.Option(help="first day of the window, YYYY-MM-DD")],
    end: Annotated[str | None, typer.Option(help="last day of the window, YYYY-MM-DD")] = None,
) -> None:
    """Validate lender logs (docs/input_formats.md, "Lender logs"); exit 2 listing problems."""
    from collsim.logs import LogWindow, load_logs

    with bad_input_is_exit_2():
        last = None if end is None else _window_day("--end", end)
        window = LogWindow(_window_day("--start", start), last)
        logs = load_logs(folder, window)
    paid = float(logs.payments.amount.sum())
    console.print(
        f"{folder}: valid; {logs.accounts.n:,} accounts, {logs.contacts.m:,} contacts, "
        f"{logs.payments.m:,} payments totalling {paid:,.2f}"
    )


@app.command("evaluate-offline")
def evaluate_offline_cmd(
    logs: Annotated[Path, typer.Option(help="folder of accounts, contacts and payments")],
    policy: Annotated[Path, typer.Option(help="candidate policy artifact folder")],
    start: Annotated[
        str | None, typer.Option(help="first day of the window (default: the logs' first)")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="last day of the window (default: the logs' last)")
    ] = None,
    out: Annotated[Path, typer.Option(help="report folder")] = Path("offline_report"),
    bootstrap: Annotated[int, typer.Option(help="bootstrap resamples over accounts")] = 200,
    min_ess: Annotated[float, typer.Option(help="exit 2 below this effective sample size")] = 100.0,
    min_overlap: Annotated[
        float, typer.Option(help="exit 2 below this share of rows with support")
    ] = 0.8,
    horizon_days: Annotated[int, typer.Option(help="reward window after a decision")] = 14,
    none_propensity: Annotated[
        float | None,
        typer.Option(help="logging probability of no contact (default: estimated)"),
    ] = None,
    capacity: Annotated[
        Path | None, typer.Option(help="capacity YAML of the logged days (default: ample)")
    ] = None,
    ruleset: Annotated[
        str | None, typer.Option(help="rule set name or YAML (default: the artifact's)")
    ] = None,
    scenario: Annotated[
        str | None, typer.Option(help="scenario whose valuation applies (default: artifact's)")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the bootstrap and cross-fitting")] = 0,
) -> None:
    """Estimate a candidate artifact's value from lender logs (IPW, SNIPW, DR); docs/offline.md.

    Exit 0 with the report written; 2 on bad logs (nothing written) or when support
    is too thin (report written, verdict ``thin_support``).
    """
    from collsim.evaluation.offline import OfflineSettings, offline_command

    with bad_input_is_exit_2():
        window = _window(start, end)
        if none_propensity is not None and not 0.0 < none_propensity <= 1.0:
            raise ValueError(f"--none-propensity: {none_propensity} is not in (0, 1]")
        if bootstrap < 10:
            raise ValueError(f"--bootstrap: {bootstrap} resamples are too few (at least 10)")
        settings = OfflineSettings(
            horizon_days=horizon_days,
            none_propensity=none_propensity,
            n_boot=bootstrap,
            min_ess=min_ess,
            min_overlap=min_overlap,
            seed=seed,
            capacity=capacity,
            ruleset=ruleset,
            scenario=scenario,
        )
        with _progress() as progress:
            task = progress.add_task("evaluate-offline", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            code = offline_command(logs, policy, window, out, settings, advance)
    raise typer.Exit(code)


@app.command("monitor")
def monitor_cmd(
    logs: Annotated[Path, typer.Option(help="folder of accounts, contacts and payments")],
    reference: Annotated[
        Path | None, typer.Option(help="reference log folder giving the expected rates")
    ] = None,
    reference_days: Annotated[
        int | None, typer.Option(help="expected rates from the logs' first N days (default 7)")
    ] = None,
    window_days: Annotated[int, typer.Option(help="realised window: the logs' last days")] = 7,
    tolerance: Annotated[
        float, typer.Option(help="absolute widening of each expected interval")
    ] = 0.02,
    min_attempts: Annotated[int, typer.Option(help="judge a cell only with this many")] = 200,
    level: Annotated[float, typer.Option(help="level of the binomial interval")] = 0.99,
    artifact: Annotated[
        str | None, typer.Option(help="label only: the artifact behind the plans")
    ] = None,
    out: Annotated[Path, typer.Option(help="HTML report")] = Path("monitor.html"),
) -> None:
    """Realised vs expected contact rates by channel x segment x hour band; docs/offline.md.

    Exit 0 when every judged cell is within its band, 1 when one left it (for a
    scheduler to alert), 2 on bad input.
    """
    from collsim.evaluation.monitor import MonitorSettings, monitor_command

    with bad_input_is_exit_2():
        if reference is not None and reference_days is not None:
            raise ValueError("pass --reference or --reference-days, not both")
        if not 0.0 < level < 1.0 or tolerance < 0.0:
            raise ValueError(f"--level {level} must be in (0, 1) and --tolerance {tolerance} >= 0")
        settings = MonitorSettings(
            window_days=window_days,
            reference_days=7 if reference_days is None else reference_days,
            tolerance=tolerance,
            min_attempts=min_attempts,
            level=level,
            label=artifact,
        )
        code = monitor_command(logs, reference, out, settings)
    raise typer.Exit(code)


def _window(start: str | None, end: str | None) -> tuple[dt.date | None, dt.date | None]:
    """``--start`` and ``--end`` as dates (None when not given)."""
    return (
        None if start is None else _window_day("--start", start),
        None if end is None else _window_day("--end", end),
    )


def _window_day(option: str, text: str) -> dt.date:
    """Parse YYYY-MM-DD or raise ValueError naming the option and the value."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option}: {text!r} is not a date in the form YYYY-MM-DD") from None


@app.command("fit")
def fit_cmd(
    start: Annotated[str, typer.Option(help="first day of the logs' window, YYYY-MM-DD")],
    out: Annotated[Path, typer.Option(help="fitted scenario YAML to write")],
    logs: Annotated[
        Path | None, typer.Option(help="folder of accounts, contacts and payments")
    ] = None,
    portfolio: Annotated[
        Path | None, typer.Option(help="accounts file (instead of --logs)")
    ] = None,
    contacts: Annotated[Path | None, typer.Option(help="contacts file (instead of --logs)")] = None,
    payments: Annotated[Path | None, typer.Option(help="payments file (instead of --logs)")] = None,
    end: Annotated[str | None, typer.Option(help="last day of the window, YYYY-MM-DD")] = None,
    base: Annotated[str, typer.Option(help="base scenario: bundled name or YAML")] = "default",
    seed: Annotated[int, typer.Option(help="seed of the account subset and latent draws")] = 0,
    draws: Annotated[int, typer.Option(help="latent draws per account (more: less bias)")] = 192,
    max_accounts: Annotated[
        int, typer.Option(help="accounts in the simulated likelihood (a random subset beyond)")
    ] = 2500,
    force: Annotated[bool, typer.Option(help="replace an existing --out")] = False,
) -> None:
    """Fit the borrower model to a lender's logs; write the base scenario with fitted numbers.

    Each fitted number's standard error and event count, and every number the logs
    cannot identify (base value kept), are in the YAML's ``fit`` section
    (docs/fitting.md).
    """
    from collsim.logs import LogWindow, load_log_files, load_logs
    from collsim.research.fit import FitOptions, fit_logs, fit_table, write_fitted

    files = (portfolio, contacts, payments)
    if (logs is not None) == all(f is not None for f in files) or (logs and any(files)):
        fail("give either --logs DIR or all of --portfolio, --contacts and --payments")
    if out.exists() and not force:
        fail(f"--out {out}: the file exists; pass --force to replace it")
    with bad_input_is_exit_2():
        window = LogWindow(
            _window_day("--start", start), None if end is None else _window_day("--end", end)
        )
        base_scenario = load_scenario(base)
        if logs is not None:
            data = load_logs(logs, window)
        else:
            assert portfolio and contacts and payments
            data = load_log_files(portfolio, contacts, payments, window)
    options = FitOptions(seed=seed, draws=draws, max_accounts=max_accounts)
    fitted = fit_logs(data, base_scenario, options, progress=console.print)
    write_fitted(fitted, out)
    console.print(fit_table(fitted))
    report = fitted.fit
    assert report is not None
    console.print(
        f"wrote {out}: {len(report.fitted)} numbers fitted, {len(report.unidentified)} kept "
        f"from {base} (listed under fit.unidentified)"
    )
    for warning in report.warnings:
        console.print(f"[yellow]note:[/yellow] {warning}")


@app.command("backtest")
def backtest_cmd(
    logs: Annotated[
        Path, typer.Option(help="folder of lender logs (accounts, contacts, payments)")
    ],
    scenario: Annotated[str, typer.Option(help="bundled scenario name or YAML path")] = "default",
    start: Annotated[
        str | None,
        typer.Option(help="first day of the window, YYYY-MM-DD (default: first logged day)"),
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="last day compared, YYYY-MM-DD (default: last logged day)")
    ] = None,
    replications: Annotated[int, typer.Option(help="simulated replications (>= 2)")] = 5,
    seed: Annotated[int, typer.Option(help="seed of the latent draws and the runs")] = 0,
    tolerance: Annotated[
        float, typer.Option(help="relative widening of the band (share of the simulated median)")
    ] = 0.10,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("results/backtest"),
    substitute: Annotated[
        bool,
        typer.Option(
            help="give accounts cured in the logs but owing in simulation the logged "
            "contacts of look-alikes still owing (--no-substitute: the logged contacts only)"
        ),
    ] = True,
) -> None:
    """Replay the logged contacts in simulation; compare actual vs simulated by week.

    Writes backtest.csv, backtest.parquet, backtest.png and backtest.json into --out.
    Exit 0 when every metric-week lies in the simulated band, 1 when any fails, 2 on
    bad input.
    """
    from collsim.evaluation.backtest import BacktestOptions
    from collsim.evaluation.backtest_command import BacktestInputs, backtest_command

    with bad_input_is_exit_2():
        first = None if start is None else _window_day("--start", start)
        last = None if end is None else _window_day("--end", end)
        options = BacktestOptions(replications, seed, tolerance, substitute=substitute)
        code = backtest_command(BacktestInputs(scenario, logs, first, last), options, out, console)
    raise typer.Exit(code)


# ---------------------------------------------------------------------------- generate
@app.command()
def generate(
    scenario: Annotated[str, typer.Option(help="bundled scenario name or YAML path")] = "default",
    accounts: Annotated[int | None, typer.Option(help="portfolio size")] = None,
    seed: Annotated[int, typer.Option(help="seed")] = 0,
    date: Annotated[str, typer.Option(help="as-of date YYYY-MM-DD")] = "2026-01-05",
    history_days: Annotated[int, typer.Option(help="days of contact history before the date")] = 14,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("portfolio"),
) -> None:
    """A synthetic portfolio as of a date with its contact history before it.

    Writes portfolio.parquet, history.parquet and capacity.yaml.  The history is the
    champion strategy simulated for ``history_days`` days before the date.
    """
    with bad_input_is_exit_2():
        as_of = parse_date(date)
        portfolio, history, scenario_obj = synthetic_portfolio(
            scenario, accounts, seed, as_of, history_days
        )
    from collsim.tables import write_history, write_portfolio

    out.mkdir(parents=True, exist_ok=True)
    write_portfolio(portfolio, out / "portfolio.parquet")
    write_history(history, portfolio, out / "history.parquet")
    dump_yaml(scenario_obj.capacity, out / "capacity.yaml")
    console.print(
        f"wrote {out}/portfolio.parquet ({portfolio.n:,} accounts), "
        f"history.parquet ({history.m:,} attempts), capacity.yaml"
    )
    simulated = accounts or scenario_obj.portfolio.n_accounts
    if portfolio.n < simulated:
        console.print(
            f"note: {simulated - portfolio.n:,} of the {simulated:,} simulated accounts left "
            f"collection (paid, cured or charged off) during the {history_days} days of "
            f"history before {as_of} and are not in the portfolio"
        )


def synthetic_portfolio(
    scenario_name: str,
    accounts: int | None,
    seed: int,
    as_of: dt.date,
    history_days: int,
    progress: Callable[[Any], None] | None = None,
) -> tuple[Any, Any, Any]:
    """Simulate the champion for ``history_days`` before ``as_of``.

    Returns (portfolio, history, scenario).

    The portfolio keeps the accounts still in collection on the date.
    """
    from collsim.behaviour import ACTIVE
    from collsim.policies.registry import make_policy
    from collsim.sim import Simulation, history_from_ledger

    scenario = load_scenario(scenario_name)
    start = as_of - dt.timedelta(days=history_days)
    scenario = scenario.with_overrides({"sim.start_date": start.isoformat()})
    sim = Simulation(scenario, seed, n_accounts=accounts)
    sim.run(make_policy("champion", scenario), history_days, progress=progress)
    keep = (sim.state.status == ACTIVE).nonzero()[0]
    history = history_from_ledger(sim.ledger).for_accounts(keep, sim.n)
    return sim.portfolio.take(keep), history, sim.scenario


@app.command("calibrate")
def calibrate_cmd(
    scenario: Annotated[str, typer.Option(help="bundled scenario name or YAML path")] = "default",
    accounts: Annotated[
        int | None, typer.Option(help="accounts per run (default: scenario's)")
    ] = None,
    days: Annotated[int, typer.Option(help="days of the no-contact and one-touch runs")] = 60,
    champion_days: Annotated[
        int | None,
        typer.Option(
            help="days of the champion run (default: max(days, scenario's); 270 "
            "when re-default is a target and the ledger records it)"
        ),
    ] = None,
    seeds: Annotated[int, typer.Option(help="number of seeds")] = 1,
    seed: Annotated[int, typer.Option(help="first seed")] = 0,
    targets: Annotated[
        str | None, typer.Option(help="targets YAML (default: the scenario's bundled targets)")
    ] = None,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("calibration_output"),
    strict: Annotated[bool, typer.Option(help="exit 1 if any target fails its band")] = False,
    hour_accounts: Annotated[
        int | None, typer.Option(help="accounts of the hour-spread run (default: >= 50,000)")
    ] = None,
) -> None:
    """Measure the calibration targets in the simulator; write calibration.json and .png."""
    from collsim.evaluation.calibration_report import CalibrateOptions, calibrate_command, verdict

    options = CalibrateOptions(accounts, days, champion_days, seeds, seed, hour_accounts)
    with bad_input_is_exit_2():
        results = calibrate_command(scenario, out, options, targets)
    if strict and any(verdict(t, m) is False for t, m in results):
        raise typer.Exit(EXIT_PROBLEMS)


def expected_failures() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input or an unusable environment: exit 2, no traceback."""
    from collsim.export.commands import BAD_INPUT

    return BAD_INPUT


def main(argv: list[str] | None = None) -> None:
    """Entry point: run a command; map every expected failure to exit 2.

    An expected failure (bad input, unusable output path, full or read-only disk,
    out-of-range number...) prints one line per problem on stderr, at most 20 and
    then a count, and exits 2.  Only an unexpected bug shows a traceback.
    """
    from collsim.export.commands import error_lines, report

    try:
        app(args=argv, prog_name="collsim")
    except expected_failures() as exc:
        report(error_lines(exc))
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
