"""``collsim train``: train an RL policy, evaluate it, export it (function returning an exit code).

``--algo offline --logs DIR`` learns from lender logs alone instead
(:func:`train_offline_logs`, :mod:`collsim.rl.offline`); the rest of this docstring
is the online run.

Writes into ``out``:

* ``model.zip`` — the final MaskablePPO (research side; SB3's own format);
* ``best_model.zip`` — the model with the best periodic evaluation;
* ``checkpoints/step_<steps>.zip`` — the model at every evaluation (for
  :mod:`collsim.rl.select`, which picks on several validation seeds);
* ``evaluations.json`` — steps, mean portfolio value per account, standard error;
* ``training_curve.png`` — the evaluations against steps;
* ``action_layout.json`` — with ``treatments``: what each action means (option, offer,
  variant), read by :class:`collsim.rl.logits.TorchLogits` for the ``.zip`` models;
* ``policy.onnx`` — the best model as an ONNX graph in the ``rl_onnx`` signature (with
  ``treatments``, the layout in its metadata);
* ``artifact/`` — an ``rl_onnx`` policy artifact (manifest with checksums) that
  :func:`collsim.export.artifact.load_artifact` and ``collsim plan`` load without
  torch (production never unpickles: only the ONNX is meant to leave research);
* ``manifest.json`` — config, config hash, seed, scenario hash, timings, the
  evaluations and package versions (:func:`collsim.runinfo.write_manifest`).

Exit codes: 0 done, 2 bad input (unknown scenario or algorithm, bad sizes).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from collsim.config import ConfigError, _format_validation, load_scenario
from collsim.rl.training import ALGOS, EvalPoint, TrainConfig

__all__ = ["OFFLINE", "train", "train_offline_logs"]

OFFLINE = "offline"
"""``--algo`` of offline learning from logs."""


def _error(message: str) -> int:
    print(f"collsim train: {message}", file=sys.stderr)
    return 2


def _progress(total: int, show: bool) -> tuple[Any, Any]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps  eval value/account: {task.fields[eval]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not show,
    )
    task = bar.add_task("train", total=total, eval="-")

    def update(steps: int, point: EvalPoint | None) -> None:
        if point is None:
            bar.update(task, completed=min(steps, total))
        else:
            bar.update(task, completed=min(steps, total), eval=f"{point.mean_net:,.2f}")

    return bar, update


def train(
    out: Path,
    overrides: Mapping[str, Any] | None = None,
    *,
    config: TrainConfig | None = None,
    progress: bool | None = None,
) -> int:
    """Train, evaluate and export an RL policy; return the exit code.

    Args:
        out: output directory (created; files in it are replaced).
        overrides: :class:`~collsim.rl.training.TrainConfig` fields set on the command
            line (``scenario``, ``algo``, ``steps``, ``seed``, ``n_envs``, ...); they
            override ``config``.
        config: further hyper-parameters (default: ``TrainConfig()``).
        progress: show a progress bar (default: when stderr is a terminal).

    Returns:
        0 done, 2 bad input (unknown scenario, algorithm or field, bad sizes).
    """
    changes = dict(overrides or {})
    if changes.get("algo", ALGOS[0]) not in ALGOS:
        return _error(f"unknown algorithm {changes['algo']!r}; expected one of {', '.join(ALGOS)}")
    try:
        cfg = (config or TrainConfig()).replace(**changes)
    except ValidationError as exc:
        return _error(_format_validation("config", exc))
    if cfg.steps < 1 or cfg.n_envs < 1:
        return _error(f"--steps and n_envs must be >= 1 (got {cfg.steps}, {cfg.n_envs})")
    try:
        scen = load_scenario(cfg.scenario)
    except (ConfigError, FileNotFoundError, OSError, ValueError) as exc:
        return _error(str(exc).splitlines()[0])
    return _run(cfg, scen, Path(out), sys.stderr.isatty() if progress is None else progress)


def _run(cfg: TrainConfig, scen: Any, out: Path, show: bool) -> int:
    from collsim.io import atomic_write_text
    from collsim.rl.export import ONNX_FILE, export_artifact
    from collsim.rl.logits import LAYOUT_FILE
    from collsim.rl.training import action_layout, plot_curve, train_model
    from collsim.runinfo import write_manifest

    out.mkdir(parents=True, exist_ok=True)
    layout = action_layout(cfg, scen)
    if layout is not None:
        atomic_write_text(out / LAYOUT_FILE, layout)
    bar, update = _progress(cfg.steps, show)
    with bar:
        result = train_model(cfg, best_path=out / "best_model.zip", progress=update)
    result.model.save(str(out / "model.zip"))
    if not (out / "best_model.zip").exists():
        result.best_model.save(str(out / "best_model.zip"))
    evaluations = [vars(e) for e in result.evaluations]
    atomic_write_text(out / "evaluations.json", json.dumps(evaluations, indent=2) + "\n")
    plot_curve(result.evaluations, out / "training_curve.png", f"{cfg.algo} on {scen.name}")
    artifact = export_artifact(
        result.best_model,
        out / "artifact",
        scen,
        name=cfg.algo,
        fallbacks=cfg.eval_fallbacks,
        treatments=cfg.treatments,
    )
    config_hash = cfg.config_hash(scen)
    write_manifest(
        out / "manifest.json",
        kind="train",
        config=cfg.to_dict(),
        config_hash=config_hash,
        seed=cfg.seed,
        scenario=scen.name,
        scenario_hash=scen.config_hash(),
        steps=result.steps,
        elapsed_s=round(result.elapsed_s, 2),
        steps_per_s=round(result.steps / max(result.elapsed_s, 1e-9), 1),
        evaluation={
            "method": (
                f"mean portfolio value per account of RLPolicy(fallbacks={cfg.eval_fallbacks}, "
                f"priority={cfg.eval_priority}) on a {cfg.eval_accounts}-account portfolio, "
                f"{cfg.horizon} days, Simulation seed {cfg.eval_seed}"
                if cfg.eval_mode == "deploy"
                else "mean portfolio-value contribution per account over its first episode "
                f"({cfg.eval_envs} accounts, env seed {cfg.eval_seed}, masked argmax)"
            ),
            "final": vars(result.final),
            "best": vars(result.best),
            "all": evaluations,
        },
        files={
            "model": "model.zip",
            "best_model": "best_model.zip",
            "onnx": ONNX_FILE,
            "artifact": "artifact",
            "artifact_id": artifact["artifact_id"],
            "curve": "training_curve.png",
        },
    )
    print(
        f"trained {result.steps:,} steps in {result.elapsed_s:.1f} s; "
        f"eval value/account final {result.final.mean_net:,.2f}, best {result.best.mean_net:,.2f} "
        f"(at {result.best.steps:,} steps); wrote {out}",
        file=sys.stderr,
    )
    return 0


def train_offline_logs(
    out: Path,
    logs: Path,
    window: tuple[Any, Any] = (None, None),
    scenario: str = "default",
    capacity: Path | None = None,
    config: Any = None,
) -> int:
    """``collsim train --algo offline``: learn a masked policy from logs, export it.

    Writes into ``out``: ``policy.onnx`` and ``artifact/`` (the ``rl_onnx`` artifact, as
    the online run), ``losses.json`` and ``manifest.json`` (config, logs, window, rows,
    timings, package versions).

    Args:
        out: output directory.
        logs: folder of the lender logs (``accounts``, ``contacts``, ``payments``).
        window: first and last local day (None: the logs' first / last).
        scenario: option space, rule set, costs and valuation of the logged days.
        capacity: the logged days' capacity file (None: ample).
        config: :class:`~collsim.rl.offline.OfflineConfig` (default: its defaults).

    Returns:
        0 done, 2 bad input (logs, scenario, sizes; one line on stderr, nothing written).
    """
    import time

    from collsim.evaluation.offline import load_window_logs
    from collsim.rl.offline import OfflineConfig, logged_transitions
    from collsim.tables import InputError

    cfg = config or OfflineConfig()
    try:
        scen = load_scenario(scenario)
        started = time.perf_counter()
        data = load_window_logs(Path(logs), *window)
        transitions = logged_transitions(data, scen, cfg.horizon_days, capacity)
        built_s = time.perf_counter() - started
        return _fit_offline(Path(out), transitions, scen, cfg, {
            "logs": str(logs), "window": [str(data.window.start), str(data.window.end)],
            "capacity": str(capacity) if capacity else "ample", "transitions_s": round(built_s, 2),
        })  # fmt: skip
    except (ConfigError, InputError, FileNotFoundError, OSError, ValueError) as exc:
        return _error(str(exc))


def _fit_offline(out: Path, transitions: Any, scen: Any, cfg: Any, source: dict[str, Any]) -> int:
    from collsim.io import atomic_write_text
    from collsim.rl.export import ONNX_FILE, export_artifact
    from collsim.rl.offline import train_offline
    from collsim.runinfo import write_manifest

    result = train_offline(transitions, cfg, scen)
    out.mkdir(parents=True, exist_ok=True)
    artifact = export_artifact(result.module, out / "artifact", scen, "offline", result.fallbacks)
    atomic_write_text(out / "losses.json", json.dumps(result.losses) + "\n")
    write_manifest(
        out / "manifest.json",
        kind="train",
        algo=OFFLINE,
        config=cfg.to_dict(),
        seed=cfg.seed,
        scenario=scen.name,
        scenario_hash=scen.config_hash(),
        **source,
        transitions=transitions.n,
        dropped_rows=transitions.dropped,
        reward_scale=result.reward_scale,
        elapsed_s=round(result.elapsed_s, 2),
        files={"onnx": ONNX_FILE, "artifact": "artifact", "artifact_id": artifact["artifact_id"],
               "losses": "losses.json"},
    )  # fmt: skip
    print(
        f"trained offline on {transitions.n:,} logged account-days ({transitions.dropped:,} "
        f"dropped) in {result.elapsed_s:.1f} s; final loss TD {result.losses[-1][0]:.4g}, "
        f"CQL {result.losses[-1][1]:.4g}; wrote {out}",
        file=sys.stderr,
    )
    return 0
