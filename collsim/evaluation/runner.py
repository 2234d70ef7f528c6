"""Run an experiment: cells = scenario variant × policy × seed, resumable, local or on Dask.

Every cell is one :class:`~collsim.sim.Simulation` run.  Two policies on the same
seed face the same borrowers (common random numbers): the engine's behavioural
draws are keyed by (seed, account, day), so passing the same seed is enough.

Each finished cell is written at once to ``DIR/cells/<key>.json`` (atomically); a
rerun skips the cells whose file exists, so an interrupted experiment resumes
where it stopped.  The key is a hash of everything that determines the cell's
result (scenario config hash, policy, params, seed, days), so a changed spec
never reuses a stale cell.  The result tables are assembled from the cell files,
in the experiment's cell order, so they do not depend on where or in which order
cells ran:

- ``runs.parquet``: one row per run: ``experiment``, ``variant``, ``variant_label``,
  one column per axis, ``policy`` (label), ``policy_id``, ``seed``, ``days``,
  ``n_accounts``, ``config_hash`` and every KPI (``blocked.<rule>`` absent = 0).
- ``daily.parquet``: one row per run and day (1-based): ``recovered``, ``cost``,
  ``attempts``, ``net`` and ``cum_net``.
- ``channel_mix.parquet``: attempts per run, DPD bucket and channel.
- ``manifest.json``: spec hash, scenario config hashes, seeds, versions.

Example:
    >>> import polars as pl  # doctest: +SKIP
    >>> runs = pl.read_parquet("results/champion_vs_challengers/runs.parquet")  # doctest: +SKIP
    >>> runs.group_by("policy").agg(pl.col("net_recovery").mean())  # doctest: +SKIP
    >>> daily = pl.read_parquet("results/champion_vs_challengers/daily.parquet")  # doctest: +SKIP
    >>> day_60 = daily.filter(pl.col("day") == 60)  # doctest: +SKIP
    >>> day_60.group_by("policy").agg(pl.col("cum_net").mean())  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from collsim.config import Scenario
from collsim.evaluation.spec import Experiment, Value, build_policy
from collsim.io import atomic_write, atomic_write_text
from collsim.research.spec import ResolvedPolicy, resolve_policy
from collsim.vocab import BUCKETS, CHANNELS

LOCAL_CLUSTER = "local-cluster"
"""``scheduler`` value that starts a dask.distributed LocalCluster."""

LOCAL_THREADS = "local-cluster-threads"
"""``scheduler`` value that starts a LocalCluster whose workers are threads (tests)."""


@dataclass(frozen=True)
class CellTask:
    """Everything one cell needs (picklable; sent to a worker process or Dask worker)."""

    key: str
    variant: int
    label: str
    policy_id: str
    params: dict[str, Any]
    seed: int
    days: int
    scenario: Scenario = field(repr=False)
    policy: ResolvedPolicy | None = field(default=None, repr=False)


def one_openmp_thread() -> None:
    """Use one OpenMP thread per process unless the user set ``OMP_NUM_THREADS``.

    Call before scikit-learn loads: worker processes already use the cores, and OpenMP
    threads spinning on a shared 2-core machine slowed value-model training about tenfold.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def cell_key(
    config_hash: str, label: str, policy_id: str, params: dict[str, Any], seed: int, days: int
) -> str:
    """Hash of the inputs that determine a cell's result."""
    canonical = json.dumps(
        {
            "config": config_hash,
            "label": label,
            "policy": policy_id,
            "params": params,
            "seed": seed,
            "days": days,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def plan_cells(experiment: Experiment, *, resolve: bool = True) -> list[CellTask]:
    """All cells of an experiment, in report order: variant, then seed, then policy.

    Args:
        experiment: a loaded experiment.
        resolve: resolve every (variant, policy) once, here on the client, into a
            self-contained :class:`~collsim.research.spec.ResolvedPolicy` carried by the
            cells (tree content, value-model bytes: ``greedy`` / ``optimised`` train or load
            their model now, as an explicit first stage, never on a worker).
    """
    spec = experiment.spec
    tasks = []
    for variant in experiment.variants:
        resolved: dict[str, ResolvedPolicy] = {}
        if resolve:
            for p in spec.policies:
                resolved[p.label] = resolve_policy(
                    p.id, p.params.kwargs(), variant.scenario, experiment.base_dir
                )
        for seed in spec.seed_list():
            scenario = seed_scenario(variant.scenario, seed, spec.model_uncertainty)
            config_hash = scenario.config_hash()
            for p in spec.policies:
                policy_id = experiment.policy_ref(p)
                params = p.params.kwargs()
                key = cell_key(config_hash, p.label, policy_id, params, seed, experiment.days)
                tasks.append(
                    CellTask(
                        key,
                        variant.index,
                        p.label,
                        policy_id,
                        params,
                        seed,
                        experiment.days,
                        scenario,
                        resolved.get(p.label),
                    )
                )
    return tasks


def seed_scenario(scenario: Scenario, seed: int, model_uncertainty: bool) -> Scenario:
    """The scenario a seed runs on: a draw of the fitted numbers, or the scenario itself."""
    if not model_uncertainty:
        return scenario
    if scenario.fit is None:
        raise ValueError(
            f"model_uncertainty needs a fitted scenario (collsim fit); {scenario.name} has none"
        )
    from collsim.research.fit import draw_scenario
    from collsim.rng import RunRandom

    return draw_scenario(scenario, RunRandom(seed).generator("fitted_numbers"))


# ---------------------------------------------------------------------------- one cell
def run_cell(task: CellTask) -> dict[str, Any]:
    """Simulate one cell; return its JSON-ready result (KPIs, daily series, channel mix).

    A pure function of ``task``: the same task gives the same result on any worker.
    """
    from collsim.evaluation.plots import channel_mix
    from collsim.metrics import daily_series, kpis
    from collsim.sim import Simulation

    if task.policy is not None:
        policy = task.policy.build(task.scenario)
    else:
        policy = build_policy(task.policy_id, task.params, task.scenario)
    sim = Simulation(task.scenario, task.seed)
    sim.run(policy, task.days)
    series = daily_series(sim.ledger, sim.first_day, task.days)
    return {
        "key": task.key,
        "variant": task.variant,
        "policy": task.label,
        "policy_id": policy.policy_id,
        "seed": task.seed,
        "days": task.days,
        "n_accounts": sim.n,
        "config_hash": task.scenario.config_hash(),
        "kpis": kpis(sim.ledger),
        "daily": {name: values.tolist() for name, values in series.items()},
        "channel_mix": channel_mix(sim.ledger).tolist(),
    }


# ---------------------------------------------------------------------------- executors
def default_workers() -> int:
    """min(2, CPUs): the machine is shared."""
    return max(1, min(2, os.cpu_count() or 1))


Results = Iterator[dict[str, Any]]
"""Cell results in completion order."""


def _mp_context() -> BaseContext:
    """fork where available (scripts need no ``__main__`` guard), else spawn."""
    methods = get_all_start_methods()
    return get_context("fork" if "fork" in methods else "spawn")


def _start_inline(tasks: list[CellTask]) -> tuple[Results, Callable[[], None]]:
    return (run_cell(t) for t in tasks), lambda: None


def _start_processes(tasks: list[CellTask], workers: int) -> tuple[Results, Callable[[], None]]:
    """Submit every cell to a process pool now (before any progress thread starts)."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context())
    futures: list[Future[dict[str, Any]]] = [pool.submit(run_cell, t) for t in tasks]

    def close() -> None:
        pool.shutdown(wait=True, cancel_futures=True)

    return (f.result() for f in as_completed(futures)), close


def _start_dask(
    tasks: list[CellTask], scheduler: str, workers: int
) -> tuple[Results, Callable[[], None]]:
    """Submit every cell to a Dask LocalCluster or to the scheduler at ``scheduler``."""
    from distributed import Client, LocalCluster
    from distributed import as_completed as dask_completed

    cluster = None
    if scheduler in (LOCAL_CLUSTER, LOCAL_THREADS):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=scheduler == LOCAL_CLUSTER,
            dashboard_address=None,
        )
        client = Client(cluster)
    else:
        client = Client(scheduler, timeout="10s")
    futures = [client.submit(run_cell, t, key=f"cell-{t.key}", pure=False) for t in tasks]

    def close() -> None:
        client.cancel(futures)
        client.close()
        if cluster is not None:
            cluster.close()

    return (f.result() for f in dask_completed(futures)), close


# ---------------------------------------------------------------------------- experiment
def cell_path(out: Path, key: str) -> Path:
    """Where a finished cell's result lives."""
    return out / "cells" / f"{key}.json"


def run_experiment(
    experiment: Experiment,
    out: Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool | None = None,
    on_cell_done: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Path]:
    """Run (or resume) every cell, then assemble the result tables and the manifest.

    Args:
        experiment: a loaded experiment.
        out: output folder.
        workers: local processes or LocalCluster workers (default ``min(2, CPUs)``);
            1 runs the cells in this process.
        scheduler: None (local processes), ``"local-cluster"`` (a Dask LocalCluster),
            ``"local-cluster-threads"`` (one whose workers are threads) or the address
            of a Dask scheduler.  The same cell function runs everywhere, so the
            results are identical.
        progress: show a rich progress bar (default: when stderr is a terminal).
        on_cell_done: called with each cell result after its file is written (a hook
            for tests and notebooks; an exception stops the run, finished cells stay).

    Returns:
        name → path of ``runs``, ``daily``, ``channel_mix`` and ``manifest``.
    """
    out = Path(out)
    keys = plan_cells(experiment, resolve=False)
    pending_keys = {t.key for t in keys if not cell_path(out, t.key).exists()}
    tasks = plan_cells(experiment) if pending_keys else keys
    pending = [t for t in tasks if t.key in pending_keys]
    workers = workers or default_workers()
    show = sys.stderr.isatty() if progress is None else progress
    if not pending:
        stream, close = _start_inline([])
    elif scheduler is not None:
        stream, close = _start_dask(pending, scheduler, workers)
    elif workers == 1 or len(pending) == 1:
        stream, close = _start_inline(pending)
    else:
        stream, close = _start_processes(pending, workers)
    try:
        with _progress_bar(show) as bar:
            bar_task = bar.add_task(
                experiment.spec.name, total=len(tasks), completed=len(tasks) - len(pending)
            )
            for result in stream:
                atomic_write_text(cell_path(out, result["key"]), json.dumps(result) + "\n")
                bar.advance(bar_task)
                if on_cell_done is not None:
                    on_cell_done(result)
    finally:
        close()
    results = [json.loads(cell_path(out, t.key).read_text(encoding="utf-8")) for t in tasks]
    paths = write_tables(experiment, results, out)
    paths["manifest"] = _write_manifest(experiment, tasks, out, scheduler, workers)
    return paths


def _progress_bar(show: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("cells"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not show,
    )


# ---------------------------------------------------------------------------- tables
def _axis_columns(experiment: Experiment) -> dict[str, pl.DataType]:
    """Axis name → polars dtype (Float64 if all values are numeric, else String)."""
    dtypes: dict[str, pl.DataType] = {}
    for axis in experiment.spec.axes:
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in axis.values)
        dtypes[axis.name] = pl.Float64() if numeric else pl.String()
    return dtypes


def _axis_value(value: Value, dtype: pl.DataType) -> Any:
    return float(value) if isinstance(dtype, pl.Float64) else str(value)


def _run_keys(experiment: Experiment, result: dict[str, Any]) -> dict[str, Any]:
    variant = experiment.variants[result["variant"]]
    row: dict[str, Any] = {
        "experiment": experiment.spec.name,
        "variant": variant.index,
        "variant_label": variant.label,
    }
    for name, dtype in _axis_columns(experiment).items():
        row[name] = _axis_value(variant.values[name], dtype)
    row.update(policy=result["policy"], policy_id=result["policy_id"], seed=result["seed"])
    return row


def _key_schema(experiment: Experiment) -> dict[str, pl.DataType]:
    schema: dict[str, pl.DataType] = {
        "experiment": pl.String(),
        "variant": pl.Int64(),
        "variant_label": pl.String(),
    }
    schema.update(_axis_columns(experiment))
    schema.update(policy=pl.String(), policy_id=pl.String(), seed=pl.Int64())
    return schema


def runs_table(experiment: Experiment, results: list[dict[str, Any]]) -> pl.DataFrame:
    """One row per run: keys and every KPI (columns in a stable order)."""
    names: list[str] = []
    for r in results:
        names.extend(k for k in r["kpis"] if k not in names)
    fixed = [k for k in names if not k.startswith("blocked.")]
    rules = sorted(k for k in names if k.startswith("blocked."))
    rows = []
    for r in results:
        row = _run_keys(experiment, r)
        row.update(days=r["days"], n_accounts=r["n_accounts"], config_hash=r["config_hash"])
        row.update({k: float(r["kpis"].get(k, 0.0)) for k in fixed + rules})
        rows.append(row)
    schema = _key_schema(experiment)
    schema.update(days=pl.Int64(), n_accounts=pl.Int64(), config_hash=pl.String())
    schema.update({k: pl.Float64() for k in fixed + rules})
    return pl.DataFrame(rows, schema=schema, orient="row")


def daily_table(experiment: Experiment, results: list[dict[str, Any]]) -> pl.DataFrame:
    """One row per run and day: recovered, cost, attempts, net, cumulative net."""
    frames = []
    schema = _key_schema(experiment)
    for r in results:
        keys = _run_keys(experiment, r)
        recovered = np.asarray(r["daily"]["recovered"], dtype=float)
        cost = np.asarray(r["daily"]["cost"], dtype=float)
        days = recovered.shape[0]
        frame = pl.DataFrame({name: [keys[name]] * days for name in schema}, schema=schema)
        frames.append(
            frame.with_columns(
                pl.Series("day", np.arange(1, days + 1), dtype=pl.Int64),
                pl.Series("recovered", recovered),
                pl.Series("cost", cost),
                pl.Series("attempts", np.asarray(r["daily"]["attempts"], dtype=float)),
                pl.Series("net", recovered - cost),
                pl.Series("cum_net", np.cumsum(recovered - cost)),
            )
        )
    return pl.concat(frames, how="vertical")


def channel_mix_table(experiment: Experiment, results: list[dict[str, Any]]) -> pl.DataFrame:
    """Attempts per run, delinquent DPD bucket and channel (long format)."""
    schema = _key_schema(experiment)
    rows = []
    for r in results:
        keys = _run_keys(experiment, r)
        mix = r["channel_mix"]
        for b, bucket in enumerate(BUCKETS[1:5]):
            for c, channel in enumerate(CHANNELS):
                rows.append(
                    {**keys, "bucket": bucket, "channel": channel, "attempts": int(mix[b][c])}
                )
    schema.update(bucket=pl.String(), channel=pl.String(), attempts=pl.Int64())
    return pl.DataFrame(rows, schema=schema, orient="row")


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    frame.write_parquet(path, compression="zstd")


def write_tables(
    experiment: Experiment, results: list[dict[str, Any]], out: Path
) -> dict[str, Path]:
    """Write runs.parquet, daily.parquet and channel_mix.parquet atomically."""
    tables = {
        "runs": runs_table(experiment, results),
        "daily": daily_table(experiment, results),
        "channel_mix": channel_mix_table(experiment, results),
    }
    paths = {}
    for name, frame in tables.items():
        path = out / f"{name}.parquet"
        atomic_write(path, partial(_write_parquet, frame))
        paths[name] = path
    return paths


def _write_manifest(
    experiment: Experiment,
    tasks: Iterable[CellTask],
    out: Path,
    scheduler: str | None,
    workers: int,
) -> Path:
    from collsim.io import sha256_file
    from collsim.runinfo import write_manifest

    spec = experiment.spec
    source = Path(experiment.source)
    path = out / "manifest.json"
    write_manifest(
        path,
        experiment=spec.name,
        spec=spec.model_dump(mode="json"),
        spec_hash=spec.spec_hash(),
        spec_file=str(source),
        spec_file_sha256=sha256_file(source) if source.is_file() else None,
        scenario_config_hashes={v.label: v.scenario.config_hash() for v in experiment.variants},
        seeds=spec.seed_list(),
        days=experiment.days,
        policies={p.label: experiment.policy_ref(p) for p in spec.policies},
        cells=[t.key for t in tasks],
        scheduler=scheduler or "local-processes",
        workers=workers,
    )
    return path
