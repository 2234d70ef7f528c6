"""Checkpoint selection on several validation seeds, and ensembles of the selected checkpoints.

``collsim train`` keeps the model of every evaluation (``checkpoints/step_*.zip``) and
the best one on its single validation seed.  One seed makes that choice lucky:
evaluations swing by ±10 % between checkpoints 32k steps apart.  This module scores
every checkpoint of one or more training runs the way it is deployed,
``RLPolicy(checkpoint, fallbacks=8, priority="log_odds")`` deciding a whole portfolio
(``accounts`` accounts, scenario capacity scaled to it, ``days`` days), on each of
several **validation** seeds,
paired with the champion on the same seed, and keeps the ``top`` checkpoints of each
run by their mean paired difference.  It writes, into ``out``:

* ``selection.json`` — every checkpoint's score per validation seed, the champion's,
  and what was selected (cached: a rerun only evaluates what is missing);
* ``<run name>.json`` — the ensemble of one run's selected checkpoints;
* ``ensemble.json`` — the ensemble of every run's selected checkpoints
  (:class:`collsim.policies.rl.EnsembleLogits`: masked probabilities averaged).

Keep the validation seeds disjoint from the seeds a comparison reports
(:mod:`collsim.rl.compare` uses 1, 2, ...; the defaults here are 1,000,003–1,000,005).

Run::

    python -m collsim.rl.select runs/ens/s0 runs/ens/s1 runs/ens/s2 --out runs/ens
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collsim.config import Scenario, load_scenario
from collsim.plan import Policy

__all__ = ["VALIDATION_SEEDS", "SelectionOptions", "checkpoints", "portfolio_net", "select"]

VALIDATION_SEEDS = (1_000_003, 1_000_004, 1_000_005)
"""Default validation seeds (Simulation seeds; disjoint from the comparison's 1, 2, ...)."""


def checkpoints(run: Path, min_step: int = 0) -> list[tuple[int, Path]]:
    """(steps, path) of a run's saved checkpoints with at least ``min_step`` steps, in order."""
    from collsim.rl.training import CHECKPOINT_DIR

    found = []
    for path in sorted((run / CHECKPOINT_DIR).glob("step_*.zip")):
        step = int(path.stem.split("_", 1)[1])
        if step >= min_step:
            found.append((step, path))
    return found


def portfolio_net(policy: Policy, scenario: Scenario, seed: int, days: int) -> float:
    """Mean portfolio value per account of ``policy`` on a whole portfolio (``scenario`` as sized).

    The name is kept from when it was the mean net recovery; it is now the run's
    ``portfolio_value`` / accounts (:func:`collsim.valuation.account_portfolio_values`).
    """
    from collsim.sim.engine import Simulation
    from collsim.valuation import account_portfolio_values

    sim = Simulation(scenario, seed)
    sim.run(policy, days)
    return float(np.mean(account_portfolio_values(sim.ledger, scenario.portfolio.n_accounts)))


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
    """

    scenario: str = "default"
    seeds: tuple[int, ...] = VALIDATION_SEEDS
    accounts: int = 5000
    days: int = 60
    top: int = 3
    min_step: int = 0
    fallbacks: int = 8
    priority: str = "log_odds"


def select(
    runs: list[Path],
    out: Path,
    options: SelectionOptions = SelectionOptions(),
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Score every checkpoint on the validation seeds; write the selection and the ensembles.

    Args:
        runs: training run folders (each with ``checkpoints/``).
        out: folder for ``selection.json`` and the ensemble files.
        options: scenario, validation seeds and sizes, checkpoints kept and the
            deployed ``RLPolicy`` settings (:class:`SelectionOptions`).
        progress: called with a line of text after each evaluation.

    Returns:
        The selection record (also written to ``out/selection.json``).

    Raises:
        ValueError: a run without checkpoints.
    """
    from collsim.io import atomic_write_text
    from collsim.policies.champion import TieredChampion
    from collsim.policies.rl import EnsembleLogits, RLPolicy
    from collsim.rl.logits import load_logit_model

    seeds, days, top = options.seeds, options.days, options.top
    scenario = load_scenario(options.scenario).scaled_to(options.accounts)
    out.mkdir(parents=True, exist_ok=True)
    record_path = out / "selection.json"
    key = {
        "scenario": options.scenario,
        "accounts": options.accounts,
        "days": days,
        "fallbacks": options.fallbacks,
        "priority": options.priority,
    }
    cache: dict[str, dict[str, float]] = {}
    if record_path.exists():
        old = json.loads(record_path.read_text())
        if old.get("setting") == key:
            cache = old.get("scores", {})

    def score(name: str, seed: int, make: Callable[[], Policy]) -> float:
        entry = cache.setdefault(name, {})
        if str(seed) not in entry:
            started = time.perf_counter()
            entry[str(seed)] = portfolio_net(make(), scenario, seed, days)
            if progress is not None:
                progress(
                    f"{name} seed {seed}: {entry[str(seed)]:.2f} "
                    f"({time.perf_counter() - started:.1f} s)"
                )
        return entry[str(seed)]

    champion = np.array(
        [score("champion", s, lambda: TieredChampion(scenario.champion)) for s in seeds]
    )
    selected: dict[str, list[str]] = {}
    table: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        found = checkpoints(run, options.min_step)
        if not found:
            raise ValueError(f"{run}: no checkpoints (train with keep_checkpoints)")
        rows = []
        for step, path in found:
            name = str(path)
            make = functools.partial(
                RLPolicy,
                load_logit_model(path),
                fallbacks=options.fallbacks,
                priority=options.priority,
            )
            values = np.array([score(name, s, make) for s in seeds])
            rows.append(
                {
                    "path": name,
                    "steps": step,
                    "net": values.tolist(),
                    "delta_mean": float((values - champion).mean()),
                }
            )
            atomic_write_text(record_path, json.dumps({"setting": key, "scores": cache}, indent=1))
        rows.sort(key=lambda r: -r["delta_mean"])
        table[run.name] = rows
        selected[run.name] = [r["path"] for r in rows[:top]]
        EnsembleLogits.write(
            out / f"{run.name}.json", selected[run.name], selection=_how(key, seeds, top)
        )
    every = [p for paths in selected.values() for p in paths]
    EnsembleLogits.write(out / "ensemble.json", every, selection=_how(key, seeds, top))
    record = {
        "setting": key,
        "validation_seeds": list(seeds),
        "champion_net": champion.tolist(),
        "top": top,
        "min_step": options.min_step,
        "ranked": table,
        "selected": selected,
        "scores": cache,
    }
    atomic_write_text(record_path, json.dumps(record, indent=1))
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
    )
    record = select(args.runs, args.out, options, progress=print)
    for run, rows in record["ranked"].items():
        print(f"{run}: " + ", ".join(f"{r['steps']}: {r['delta_mean']:+.2f}" for r in rows[:5]))
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
