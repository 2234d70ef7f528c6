"""Checkpoint selection on several validation seeds, and ensembles of the selected checkpoints.

``collsim train`` keeps the model of every evaluation (``checkpoints/step_*.zip``) and
the best one on its single validation seed.  One seed makes that choice lucky:
evaluations swing by ±10 % between checkpoints 32k steps apart.  :func:`select` scores
every checkpoint of one or more training runs the way it is deployed,
``RLPolicy(checkpoint, fallbacks=8, priority="log_odds")`` deciding a whole portfolio
(``accounts`` accounts, scenario capacity scaled to it, ``days`` days), on each of
several **validation** seeds, paired with the champion on the same seed, and keeps the
``top`` checkpoints of each run by their mean paired difference in portfolio value per
account.

The runs are an experiment of the evaluation runner
(:func:`collsim.evaluation.runner.run_experiment`: champion and every checkpoint ×
validation seeds, common random numbers); the paired differences come from
:mod:`collsim.evaluation.stats`.  It writes, into ``out``:

* ``validation/`` — the runner's output (``cells/`` is its cache: a rerun only
  evaluates what is missing; ``runs.parquet`` has every KPI of every run);
* ``selection.json`` — every checkpoint's score per validation seed, the champion's,
  and what was selected;
* ``<run name>.json`` — the ensemble of one run's selected checkpoints;
* ``ensemble.json`` — the ensemble of every run's selected checkpoints
  (:class:`collsim.policies.rl.EnsembleLogits`: masked probabilities averaged).

Keep the validation seeds disjoint from the seeds a comparison reports (the
comparisons in ``benchmarks/RL_COMPARISON.md`` use 1, 2, ...; the defaults here are
1,000,003–1,000,005).

Run::

    python -m collsim.rl.select runs/ens/s0 runs/ens/s1 runs/ens/s2 --out runs/ens
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collsim.evaluation.spec import Experiment

__all__ = [
    "VALIDATION_SEEDS",
    "SelectionOptions",
    "checkpoints",
    "select",
    "validation_experiment",
]

VALIDATION_SEEDS = (1_000_003, 1_000_004, 1_000_005)
"""Default validation seeds (Simulation seeds; disjoint from the comparisons' 1, 2, ...)."""

CHAMPION = "champion"
"""Label of the baseline in the validation experiment."""


@dataclass(frozen=True)
class SelectionOptions:
    """How :func:`select` scores checkpoints.

    Attributes:
        scenario: the scenario (as trained).
        seeds: validation Simulation seeds.
        accounts: portfolio size of each validation run.
        days: days of each validation run.
        top: checkpoints kept per run.
        min_step: ignore checkpoints with fewer steps.
        fallbacks: ``RLPolicy`` fallbacks (as deployed).
        priority: ``RLPolicy`` priority (as deployed).
        workers: processes of the evaluation runner (1: in this process).
    """

    scenario: str = "default"
    seeds: tuple[int, ...] = VALIDATION_SEEDS
    accounts: int = 5000
    days: int = 60
    top: int = 3
    min_step: int = 0
    fallbacks: int = 8
    priority: str = "log_odds"
    workers: int = 1


DEFAULT_OPTIONS = SelectionOptions()
"""The documented defaults of :func:`select`."""


def checkpoints(run: Path, min_step: int = 0) -> list[tuple[int, Path]]:
    """(steps, path) of a run's saved checkpoints with at least ``min_step`` steps, in order."""
    from collsim.rl.training import CHECKPOINT_DIR

    found = []
    for path in sorted((run / CHECKPOINT_DIR).glob("step_*.zip")):
        step = int(path.stem.split("_", 1)[1])
        if step >= min_step:
            found.append((step, path))
    return found


def validation_experiment(paths: list[Path], options: SelectionOptions) -> Experiment:
    """The evaluation-runner experiment: champion and every checkpoint on every seed.

    Each checkpoint's label is its path; its policy is ``rl:PATH`` with the options'
    ``fallbacks`` and ``priority``.
    """
    from collsim.evaluation.spec import ExperimentSpec, PolicySpec, build_experiment
    from collsim.policies.params import RLParams

    params = RLParams.model_validate({"fallbacks": options.fallbacks, "priority": options.priority})
    policies = [PolicySpec(label=CHAMPION, id="champion")] + [
        PolicySpec(label=str(path), id=f"rl:{path}", params=params) for path in paths
    ]
    spec = ExperimentSpec(
        name="checkpoint_selection",
        scenario=options.scenario,
        policies=policies,
        baseline=CHAMPION,
        seeds=list(options.seeds),
        days=options.days,
        n_accounts=options.accounts,
        kpis=["portfolio_value"],
    )
    return build_experiment(spec, "collsim.rl.select", Path.cwd())


def _value_per_account(runs_parquet: Path) -> dict[str, dict[int, float]]:
    """Label → seed → portfolio value per account, from the runner's ``runs.parquet``."""
    import polars as pl

    runs = pl.read_parquet(runs_parquet)
    out: dict[str, dict[int, float]] = {}
    for row in runs.select("policy", "seed", "portfolio_value", "n_accounts").iter_rows():
        label, seed, value, n = row
        out.setdefault(label, {})[int(seed)] = float(value) / int(n)
    return out


def select(
    runs: list[Path],
    out: Path,
    options: SelectionOptions = DEFAULT_OPTIONS,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Score every checkpoint on the validation seeds; write the selection and the ensembles.

    Args:
        runs: training run folders (each with ``checkpoints/``).
        out: folder for ``validation/``, ``selection.json`` and the ensemble files.
        options: scenario, validation seeds and sizes, checkpoints kept, the deployed
            ``RLPolicy`` settings and the runner's workers (:class:`SelectionOptions`).
        progress: called with a line of text after each newly evaluated run.

    Returns:
        The selection record (also written to ``out/selection.json``).

    Raises:
        ValueError: a run without checkpoints.
    """
    from collsim.evaluation.runner import run_experiment
    from collsim.evaluation.stats import paired_interval
    from collsim.io import atomic_write_text
    from collsim.policies.rl import EnsembleLogits

    seeds, top = options.seeds, options.top
    found = {run.name: checkpoints(run, options.min_step) for run in runs}
    for run in runs:
        if not found[run.name]:
            raise ValueError(f"{run}: no checkpoints (train with keep_checkpoints)")
    paths = [path for ckpts in found.values() for _, path in ckpts]
    experiment = validation_experiment(paths, options)

    def done(cell: dict[str, Any]) -> None:
        if progress is not None:
            value = cell["kpis"]["portfolio_value"] / cell["n_accounts"]
            progress(f"{cell['policy']} seed {cell['seed']}: {value:.2f}")

    tables = run_experiment(
        experiment, out / "validation", workers=options.workers, progress=False, on_cell_done=done
    )
    scores = _value_per_account(tables["runs"])
    champion = np.array([scores[CHAMPION][s] for s in seeds])
    selected: dict[str, list[str]] = {}
    table: dict[str, list[dict[str, Any]]] = {}
    key = {
        "scenario": options.scenario,
        "accounts": options.accounts,
        "days": options.days,
        "fallbacks": options.fallbacks,
        "priority": options.priority,
    }
    for run in runs:
        rows = []
        for step, path in found[run.name]:
            values = np.array([scores[str(path)][s] for s in seeds])
            diff = paired_interval(values, champion)
            rows.append(
                {
                    "path": str(path),
                    "steps": step,
                    "net": values.tolist(),
                    "delta_mean": diff.mean,
                    "delta_low": diff.low,
                    "delta_high": diff.high,
                }
            )
        rows.sort(key=lambda r: -r["delta_mean"])
        table[run.name] = rows
        selected[run.name] = [r["path"] for r in rows[:top]]
        EnsembleLogits.write(
            out / f"{run.name}.json", selected[run.name], selection=_how(key, seeds, top)
        )
    every = [p for chosen in selected.values() for p in chosen]
    EnsembleLogits.write(out / "ensemble.json", every, selection=_how(key, seeds, top))
    record = {
        "setting": key,
        "validation_seeds": list(seeds),
        "champion_net": champion.tolist(),
        "top": top,
        "min_step": options.min_step,
        "ranked": table,
        "selected": selected,
        "scores": {label: {str(s): v for s, v in by.items()} for label, by in scores.items()},
    }
    atomic_write_text(out / "selection.json", json.dumps(record, indent=1))
    return record


def _how(key: dict[str, Any], seeds: tuple[int, ...], top: int) -> dict[str, Any]:
    return {
        "by": "mean paired portfolio value per account vs champion, RLPolicy(fallbacks, priority)",
        "validation_seeds": list(seeds),
        "top_per_run": top,
        **key,
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: select checkpoints and write the ensembles."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="training run folders")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(VALIDATION_SEEDS))
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--min-step", type=int, default=0)
    parser.add_argument("--priority", default="log_odds", help="RLPolicy priority")
    parser.add_argument("--workers", type=int, default=1, help="evaluation processes")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    options = SelectionOptions(
        scenario=args.scenario,
        seeds=tuple(args.seeds),
        accounts=args.accounts,
        days=args.days,
        top=args.top,
        min_step=args.min_step,
        priority=args.priority,
        workers=args.workers,
    )
    record = select(args.runs, args.out, options, progress=print)
    for run, rows in record["ranked"].items():
        print(f"{run}: " + ", ".join(f"{r['steps']}: {r['delta_mean']:+.2f}" for r in rows[:5]))
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
