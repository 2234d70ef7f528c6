"""Which assumptions matter: vary each labelled assumption, watch challenger − champion move.

A sensitivity spec (see ``experiments/assumption_sensitivity.yaml``)::

    name: assumption_sensitivity
    scenario: default
    n_accounts: 5000
    days: 90
    seeds: 5
    baseline: {label: champion, id: champion}
    challenger: {label: optimised, id: optimised}
    kpi: portfolio_value
    training: {seeds: [101, 102], n_accounts: 3000, days: 60, horizon: 14}
    assumptions:
      - name: self_cure
        label: self-cure hazard
        paths: [behaviour.segments.*.self_cure_hazard]   # '*' = every list element
        mode: scale                                      # scale: × value; set: = value
        low: 0.7
        high: 1.3
        reason: why this range is plausible (one line)

For the base case and for each (assumption, side) the scenario is perturbed, the
challenger's value model is trained on the perturbed world (``load_or_train``,
cached per scenario hash), and the baseline and the challenger run on the same seeds
(common random numbers; the base case uses the same seeds too).  The paired
difference challenger − baseline in ``kpi`` gets a Student-t interval
(:func:`collsim.evaluation.stats.paired_interval`).  A side *flips the ranking* when
its difference has the opposite sign of the base case's.

Outputs in ``DIR`` (each written atomically; finished cases in ``DIR/cases`` are
reused, so an interrupted run resumes): ``sensitivity.parquet`` and ``.csv`` (one row
per case), ``runs.parquet`` (one row per case, policy and seed, every KPI),
``tornado.png`` and ``manifest.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, ValidationError, field_validator, model_validator

from collsim.config import (
    ConfigError,
    Frozen,
    Scenario,
    _format_validation,
    _validate,
    load_scenario,
    read_yaml,
)
from collsim.evaluation.runner import one_openmp_thread
from collsim.evaluation.spec import PolicySpec, build_policy, check_seeds
from collsim.evaluation.stats import paired_interval
from collsim.io import atomic_write, atomic_write_text
from collsim.policies.params import ValueModelParams

BASE = "base"
"""Assumption name and side of the unperturbed case."""

SIDES: tuple[str, ...] = ("low", "high")
"""The two perturbed sides of every assumption."""

MODEL_POLICY_IDS = ("optimised", "greedy")
"""Policy ids whose value model is trained on the (perturbed) scenario of each case."""


class SensitivityError(ConfigError):
    """A sensitivity spec that does not validate; one line per problem naming file and key."""


# ---------------------------------------------------------------------------- spec
class Assumption(Frozen):
    """One labelled assumption, the scenario fields it sets and its plausible range."""

    name: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$", description="identifier")
    label: str = Field(default="", description="shown on the plot (default: name)")
    paths: list[str] = Field(
        min_length=1, description="dotted scenario paths; '*' stands for every list element"
    )
    mode: Literal["scale", "set"] = Field(description="scale: field × value; set: field = value")
    low: float = Field(description="the low end of the plausible range")
    high: float = Field(description="the high end of the plausible range")
    reason: str = Field(min_length=1, description="one line: why this range is plausible")

    @model_validator(mode="after")
    def _range(self) -> Assumption:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.mode == "scale" and self.low <= 0:
            raise ValueError("scale multipliers must be positive")
        return self

    @property
    def title(self) -> str:
        """The label, or the name when no label is given."""
        return self.label or self.name

    def value(self, side: str) -> float:
        """The multiplier or value of ``side`` (``low`` or ``high``)."""
        return self.low if side == "low" else self.high


class TrainingSpec(Frozen):
    """How each case's value model is trained (see ``TrainingSettings``)."""

    seeds: list[int] = Field(default_factory=lambda: [101, 102, 103], min_length=1)
    n_accounts: int = Field(default=3000, gt=0)
    days: int = Field(default=90, gt=0)
    horizon: int = Field(default=14, gt=0)
    model_params: ValueModelParams = Field(
        default_factory=ValueModelParams, description="ValueModel keyword arguments (e.g. max_iter)"
    )


class SensitivitySpec(Frozen):
    """A sensitivity experiment (see the module docstring)."""

    name: str = Field(min_length=1)
    description: str = ""
    scenario: str = "default"
    overrides: dict[str, Any] = Field(default_factory=dict)
    n_accounts: int | None = Field(default=None, gt=0, description="default: the scenario's")
    days: int | None = Field(default=None, gt=0, description="default: the scenario's")
    seeds: int | list[int] = 5
    baseline: PolicySpec = Field(
        default_factory=lambda: PolicySpec(label="champion", id="champion")
    )
    challenger: PolicySpec = Field(
        default_factory=lambda: PolicySpec(label="optimised", id="optimised")
    )
    kpi: str = "portfolio_value"
    level: float = Field(default=0.95, gt=0, lt=1)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    assumptions: list[Assumption] = Field(min_length=1)

    _seeds = field_validator("seeds")(classmethod(lambda cls, v: check_seeds(v)))

    @field_validator("assumptions")
    @classmethod
    def _names(cls, value: list[Assumption]) -> list[Assumption]:
        names = [a.name for a in value]
        bad = sorted({x for x in names if names.count(x) > 1} | ({BASE} & set(names)))
        if bad:
            raise ValueError(f"assumption names must be unique and not {BASE!r}: {bad}")
        return value

    def seed_list(self) -> list[int]:
        """The seeds to run (a count n means seeds 0..n-1)."""
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


# ---------------------------------------------------------------------------- perturbation
def expand_path(data: Any, dotted: str) -> list[str]:
    """Concrete dotted paths matched by ``dotted`` ('*' = every element of a list).

    Raises:
        KeyError: a part names no key (or index) of the scenario.
    """
    paths = [""]
    nodes = [data]
    for part in dotted.split("."):
        next_paths, next_nodes = [], []
        for prefix, node in zip(paths, nodes, strict=True):
            keys = _children(node, part, dotted)
            for key in keys:
                next_paths.append(f"{prefix}.{key}" if prefix else str(key))
                next_nodes.append(node[key])
        paths, nodes = next_paths, next_nodes
    return paths


def _children(node: Any, part: str, dotted: str) -> list[Any]:
    if isinstance(node, list):
        if part == "*":
            return list(range(len(node)))
        if part.isdigit() and int(part) < len(node):
            return [int(part)]
    elif isinstance(node, dict) and part in node:
        return [part]
    raise KeyError(f"{dotted!r}: no key {part!r}")


def _set_path(data: Any, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(leaf)] = value
    else:
        node[leaf] = value


def _get_path(data: Any, dotted: str) -> Any:
    node = data
    for part in dotted.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def perturb(scenario: Scenario, assumption: Assumption, value: float) -> Scenario:
    """The scenario with every field of ``assumption`` scaled by or set to ``value``.

    Raises:
        ConfigError: a path names no scenario field, a field is not a number, or the
            perturbed scenario does not validate.
    """
    data = scenario.model_dump(mode="json")
    for pattern in assumption.paths:
        try:
            concrete = expand_path(data, pattern)
        except KeyError as exc:
            raise ConfigError(f"assumption {assumption.name!r}: path {exc.args[0]}") from None
        for path in concrete:
            old = _get_path(data, path)
            if isinstance(old, bool) or not isinstance(old, int | float | type(None)):
                raise ConfigError(
                    f"assumption {assumption.name!r}: {path} is not a number ({old!r})"
                )
            if assumption.mode == "set":
                new = value
            elif old is None:
                raise ConfigError(f"assumption {assumption.name!r}: {path} is unset; use mode set")
            else:
                new = float(old) * value
            _set_path(data, path, new)
    return _validate(data, f"{scenario.name} with {assumption.name} = {value:g}")


# ---------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """One scenario of the sensitivity grid: the base case or an (assumption, side).

    Attributes:
        assumption: the assumption's name (``base`` for the base case).
        label: its display label.
        side: ``base``, ``low`` or ``high``.
        value: the multiplier or value applied (NaN for the base case).
        mode: ``scale``, ``set`` or ``""`` for the base case.
        scenario: the perturbed scenario, sized for the run.
    """

    assumption: str
    label: str
    side: str
    value: float
    mode: str
    scenario: Scenario = field(repr=False)


@dataclass(frozen=True)
class Sensitivity:
    """A loaded spec with its cases (base first)."""

    spec: SensitivitySpec
    source: str
    cases: list[Case]

    @property
    def days(self) -> int:
        """Days simulated per run."""
        return self.spec.days or self.cases[0].scenario.sim.days

    @property
    def n_accounts(self) -> int:
        """Accounts per run."""
        return self.cases[0].scenario.portfolio.n_accounts

    @property
    def currency(self) -> str:
        """Currency of the scenario's amounts."""
        return self.cases[0].scenario.currency


def load_sensitivity(
    path: str | Path,
    *,
    n_accounts: int | None = None,
    days: int | None = None,
    seeds: int | None = None,
) -> Sensitivity:
    """Load and check a sensitivity YAML; sizes given here replace the spec's.

    Raises:
        SensitivityError: one line per problem, each naming the file and the key.
    """
    path = Path(path)
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        raise SensitivityError(str(exc)) from None
    if isinstance(data, dict):
        sizes = {"n_accounts": n_accounts, "days": days, "seeds": seeds}
        data = {**data, **{k: v for k, v in sizes.items() if v is not None}}
    try:
        spec = SensitivitySpec.model_validate(data)
    except ValidationError as exc:
        raise SensitivityError(_format_validation(str(path), exc)) from None
    return build_sensitivity(spec, str(path), path.parent)


def build_sensitivity(spec: SensitivitySpec, source: str, base_dir: Path) -> Sensitivity:
    """Resolve the scenario and build every case; collect every problem before failing."""
    from collsim.evaluation.spec import _known_kpi

    problems: list[str] = []
    spec = _resolve_policies(spec, base_dir)
    if not _known_kpi(spec.kpi):
        problems.append(f"{source}: kpi: unknown KPI {spec.kpi!r}")
    base = _base_scenario(spec, source, base_dir, problems)
    cases: list[Case] = []
    if base is not None:
        n = spec.n_accounts or base.portfolio.n_accounts
        cases.append(Case(BASE, BASE, BASE, math.nan, "", _sized(base, n)))
        for i, assumption in enumerate(spec.assumptions):
            for side in SIDES:
                try:
                    scenario = perturb(base, assumption, assumption.value(side))
                except ConfigError as exc:
                    first = str(exc).splitlines()[0]
                    problems.append(
                        f"{source}: assumptions[{i}] ({assumption.name}).{side}: {first}"
                    )
                    continue
                cases.append(
                    Case(
                        assumption.name,
                        assumption.title,
                        side,
                        assumption.value(side),
                        assumption.mode,
                        _sized(scenario, n),
                    )
                )
        _check_policies(spec, base, source, problems)
    if problems:
        raise SensitivityError("\n".join(dict.fromkeys(problems)))
    return Sensitivity(spec, source, cases)


def _resolve_policies(spec: SensitivitySpec, base_dir: Path) -> SensitivitySpec:
    """Tree YAML paths of the two policies, taken relative to the spec's folder."""
    from collsim.evaluation.spec import resolve_spec_path

    resolved = {
        key: policy.model_copy(update={"id": resolve_spec_path(policy.id, base_dir)})
        for key, policy in (("baseline", spec.baseline), ("challenger", spec.challenger))
    }
    return spec.model_copy(update=resolved)


def _sized(scenario: Scenario, n_accounts: int) -> Scenario:
    return (
        scenario if n_accounts == scenario.portfolio.n_accounts else scenario.scaled_to(n_accounts)
    )


def _base_scenario(
    spec: SensitivitySpec, source: str, base_dir: Path, problems: list[str]
) -> Scenario | None:
    from collsim.evaluation.spec import resolve_spec_path

    try:
        scenario = load_scenario(resolve_spec_path(spec.scenario, base_dir))
        if spec.overrides:
            scenario = scenario.with_overrides(spec.overrides)
    except ConfigError as exc:
        problems.extend(f"{source}: scenario: {line}" for line in str(exc).splitlines())
        return None
    return scenario


def _check_policies(
    spec: SensitivitySpec, scenario: Scenario, source: str, problems: list[str]
) -> None:
    for key, policy in (("baseline", spec.baseline), ("challenger", spec.challenger)):
        if policy.id in MODEL_POLICY_IDS:
            if policy.params.kwargs():
                problems.append(f"{source}: {key}: {policy.id!r} takes no params")
            continue
        try:
            build_policy(policy.id, policy.params.kwargs(), scenario)
        except (ConfigError, ValueError) as exc:
            problems.append(f"{source}: {key} ({policy.label}): {str(exc).splitlines()[0]}")


# ---------------------------------------------------------------------------- running
@dataclass(frozen=True)
class CaseTask:
    """Everything one case needs (picklable, for a worker process)."""

    key: str
    index: int
    spec: SensitivitySpec = field(repr=False)
    scenario: Scenario = field(repr=False)
    days: int = 0


def case_key(spec: SensitivitySpec, scenario: Scenario, days: int) -> str:
    """Hash of the inputs that determine a case's result."""
    canonical = json.dumps(
        {
            "config": scenario.config_hash(),
            "baseline": spec.baseline.model_dump(mode="json"),
            "challenger": spec.challenger.model_dump(mode="json"),
            "training": spec.training.model_dump(mode="json"),
            "seeds": spec.seed_list(),
            "days": days,
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def plan_tasks(sensitivity: Sensitivity) -> list[CaseTask]:
    """One task per case, in case order."""
    spec, days = sensitivity.spec, sensitivity.days
    return [
        CaseTask(case_key(spec, c.scenario, days), i, spec, c.scenario, days)
        for i, c in enumerate(sensitivity.cases)
    ]


def steps_per_case(spec: SensitivitySpec) -> int:
    """Progress steps of one case: a model training and two runs per seed."""
    return 1 + 2 * len(spec.seed_list())


def _make_policy(policy: PolicySpec, spec: SensitivitySpec, scenario: Scenario) -> Any:
    """A fresh policy; a model policy's value model is trained on ``scenario`` (cached)."""
    if policy.id not in MODEL_POLICY_IDS:
        return build_policy(policy.id, policy.params.kwargs(), scenario)
    from collsim.policies import optimised
    from collsim.research.training import TrainingSettings, load_or_train

    t = spec.training
    settings = TrainingSettings(
        seeds=tuple(t.seeds),
        n_accounts=t.n_accounts,
        days=t.days,
        horizon=t.horizon,
        model_params=t.model_params,
    )
    model = load_or_train(scenario, settings)
    if policy.id == "greedy":
        return optimised.GreedyScore(model)
    return optimised.OptimisedAllocation(model)


def run_case(task: CaseTask, step: Callable[[], None] | None = None) -> dict[str, Any]:
    """Train the challenger's model on the case's scenario, then run both policies per seed.

    A pure function of ``task`` (the model cache only saves time).

    Returns:
        JSON-ready ``{"key", "runs": [{"policy", "seed", "kpis"}]}``.
    """
    from collsim.metrics import kpis
    from collsim.sim import Simulation

    tick = step or (lambda: None)
    spec = task.spec
    _make_policy(spec.challenger, spec, task.scenario)  # trains (or loads) the model once
    tick()
    runs = []
    for seed in spec.seed_list():
        for policy in (spec.baseline, spec.challenger):
            sim = Simulation(task.scenario, seed)
            sim.run(_make_policy(policy, spec, task.scenario), task.days)
            runs.append({"policy": policy.label, "seed": seed, "kpis": kpis(sim.ledger)})
            tick()
    return {"key": task.key, "runs": runs}


def case_path(out: Path, key: str) -> Path:
    """Where a finished case's result lives."""
    return out / "cases" / f"{key}.json"


def _results(pending: list[CaseTask], workers: int, step: Callable[[int], None]) -> Iterator[Any]:
    if workers == 1 or len(pending) <= 1:
        for task in pending:
            yield run_case(task, lambda: step(1))
        return
    from collsim.evaluation.runner import _mp_context

    per_case = steps_per_case(pending[0].spec)
    with ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context()) as pool:
        futures: list[Future[dict[str, Any]]] = [pool.submit(run_case, t) for t in pending]
        try:
            for future in as_completed(futures):
                step(per_case)
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def run_sensitivity(
    sensitivity: Sensitivity,
    out: Path,
    *,
    workers: int = 1,
    progress: bool | None = None,
) -> dict[str, Path]:
    """Run (or resume) every case; write the table, the runs, the tornado plot, the manifest.

    Args:
        sensitivity: a loaded spec.
        out: output folder.
        workers: processes (1: in this process); each runs whole cases.
        progress: show a rich progress bar (default: when stderr is a terminal).

    Returns:
        name → path of ``table``, ``csv``, ``runs``, ``tornado`` and ``manifest``.
    """
    out = Path(out)
    tasks = plan_tasks(sensitivity)
    pending = [t for t in tasks if not case_path(out, t.key).exists()]
    per_case = steps_per_case(sensitivity.spec)
    show = sys.stderr.isatty() if progress is None else progress
    with _progress_bar(show) as bar:
        bar_id = bar.add_task(
            sensitivity.spec.name,
            total=len(tasks) * per_case,
            completed=(len(tasks) - len(pending)) * per_case,
        )
        for result in _results(pending, workers, lambda k: bar.advance(bar_id, k)):
            atomic_write_text(case_path(out, result["key"]), json.dumps(result) + "\n")
    results = [json.loads(case_path(out, t.key).read_text(encoding="utf-8")) for t in tasks]
    return write_outputs(sensitivity, results, out)


def _progress_bar(show: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("model trainings + runs"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not show,
    )


# ---------------------------------------------------------------------------- tables
def runs_table(sensitivity: Sensitivity, results: list[dict[str, Any]]) -> pl.DataFrame:
    """One row per case, policy and seed: ``assumption, side, value, policy, seed`` + KPIs."""
    rows = []
    for case, result in zip(sensitivity.cases, results, strict=True):
        for run in result["runs"]:
            rows.append(
                {
                    "assumption": case.assumption,
                    "side": case.side,
                    "value": case.value,
                    "policy": run["policy"],
                    "seed": run["seed"],
                    **run["kpis"],
                }
            )
    return pl.DataFrame(rows).fill_null(0.0)


def sensitivity_table(sensitivity: Sensitivity, runs: pl.DataFrame) -> pl.DataFrame:
    """Paired challenger − baseline difference in the KPI per case, with flips flagged.

    Returns:
        columns ``assumption, label, side, mode, value, n, baseline_mean,
        challenger_mean, diff, low, high, excludes_zero, flips_ranking``, base first.
    """
    spec = sensitivity.spec
    rows = []
    for case in sensitivity.cases:
        part = runs.filter(
            (pl.col("assumption") == case.assumption) & (pl.col("side") == case.side)
        )
        base = part.filter(pl.col("policy") == spec.baseline.label).sort("seed")
        chal = part.filter(pl.col("policy") == spec.challenger.label).sort("seed")
        a, b = chal[spec.kpi].to_numpy(), base[spec.kpi].to_numpy()
        iv = paired_interval(a, b, spec.level)
        rows.append(
            {
                "assumption": case.assumption,
                "label": case.label,
                "side": case.side,
                "mode": case.mode,
                "value": case.value,
                "n": iv.n,
                "baseline_mean": float(b.mean()),
                "challenger_mean": float(a.mean()),
                "diff": iv.mean,
                "low": iv.low,
                "high": iv.high,
            }
        )
    return flag_flips(pl.DataFrame(rows))


def flag_flips(table: pl.DataFrame) -> pl.DataFrame:
    """Add ``excludes_zero`` and ``flips_ranking`` (the sign of ``diff`` differs from base's).

    Args:
        table: rows with ``side`` (exactly one ``base``), ``diff``, ``low``, ``high``.
    """
    base = table.filter(pl.col("side") == BASE)
    if base.height != 1:
        raise ValueError(f"the table needs exactly one base row, found {base.height}")
    sign = float(np.sign(base["diff"][0]))
    return table.with_columns(
        ((pl.col("low") > 0) | (pl.col("high") < 0)).fill_null(False).alias("excludes_zero"),
        (
            (pl.col("side") != BASE)
            & (pl.col("diff").sign() != sign)
            & (pl.col("diff") != 0)
            & pl.lit(sign != 0)
        ).alias("flips_ranking"),
    )


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    frame.write_parquet(path, compression="zstd")


def write_outputs(
    sensitivity: Sensitivity, results: list[dict[str, Any]], out: Path
) -> dict[str, Path]:
    """Write the table (Parquet and CSV), the runs, the tornado plot and the manifest."""
    from collsim.evaluation.tornado import plot_tornado
    from collsim.runinfo import write_manifest

    spec = sensitivity.spec
    runs = runs_table(sensitivity, results)
    table = sensitivity_table(sensitivity, runs)
    paths = {
        "table": out / "sensitivity.parquet",
        "csv": out / "sensitivity.csv",
        "runs": out / "runs.parquet",
        "tornado": out / "tornado.png",
        "manifest": out / "manifest.json",
    }
    atomic_write(paths["table"], partial(_write_parquet, table))
    atomic_write(paths["csv"], table.write_csv)
    atomic_write(paths["runs"], partial(_write_parquet, runs))
    plot_tornado(
        table,
        paths["tornado"],
        xlabel=f"{spec.challenger.label} − {spec.baseline.label}, {spec.kpi} "
        f"({sensitivity.currency}; paired {spec.level:.0%} CI)",
        title=f"{spec.name}: {sensitivity.n_accounts:,} accounts × {sensitivity.days} days × "
        f"{len(spec.seed_list())} seeds",
    )
    write_manifest(
        paths["manifest"],
        experiment=spec.name,
        source=sensitivity.source,
        spec=spec.model_dump(mode="json"),
        days=sensitivity.days,
        seeds=spec.seed_list(),
        config_hashes={
            f"{c.assumption}.{c.side}": c.scenario.config_hash() for c in sensitivity.cases
        },
    )
    return paths


# ---------------------------------------------------------------------------- command
def sensitivity_command(
    spec_path: Path,
    out: Path,
    n_accounts: int | None = None,
    days: int | None = None,
    seeds: int | None = None,
    workers: int = 1,
) -> int:
    """``collsim sensitivity SPEC --out DIR``: run, write, print the table; the exit code.

    Returns:
        0 on success, 2 on bad input (each problem printed on its own line to stderr).
    """
    from rich.console import Console

    from collsim.compliance.ruleset import RulesetError
    from collsim.evaluation.commands import EXIT_BAD_INPUT, EXIT_OK, _error_lines

    one_openmp_thread()
    console, err = Console(), Console(stderr=True)
    if workers < 1:
        _error_lines(f"--workers: must be at least 1, got {workers}", err)
        return EXIT_BAD_INPUT
    try:
        loaded = load_sensitivity(spec_path, n_accounts=n_accounts, days=days, seeds=seeds)
        paths = run_sensitivity(loaded, out, workers=workers)
    except (ConfigError, RulesetError, FileNotFoundError, ValueError) as exc:
        _error_lines(str(exc), err)
        return EXIT_BAD_INPUT
    console.print(_rich_table(pl.read_parquet(paths["table"]), loaded))
    console.print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return EXIT_OK


def _rich_table(table: pl.DataFrame, sensitivity: Sensitivity) -> Any:
    from rich.table import Table

    spec = sensitivity.spec
    rich = Table(
        title=f"{spec.challenger.label} − {spec.baseline.label}: {spec.kpi} "
        f"({sensitivity.currency}, paired {spec.level:.0%} CI)"
    )
    for column in ("assumption", "side", "value", "diff", "CI", "flips ranking"):
        rich.add_column(column, no_wrap=column == "assumption")
    for r in table.iter_rows(named=True):
        value = "" if r["side"] == BASE else f"{'×' if r['mode'] == 'scale' else '='}{r['value']:g}"
        rich.add_row(
            r["assumption"],
            r["side"],
            value,
            f"{r['diff']:,.0f}",
            f"[{r['low']:,.0f}, {r['high']:,.0f}]",
            "[red]YES[/red]" if r["flips_ranking"] else "",
        )
    return rich
