"""Speed of the exported RL policy's plan: µs per account at 100k and 1M accounts.

Run: ``.venv/bin/python benchmarks/bench_rl_plan.py [--sizes 100000 1000000] [--artifact DIR]``.

Builds the artifact as a user would: a MaskablePPO of the default size trained for a
few thousand steps on AccountBatch-v0 (seed 0), exported by
:func:`collsim.rl.export.export_artifact`; the production runner
(:func:`collsim.export.onnx_policies.make_onnx_policy`) then plans the first
snapshot of the default scenario scaled to N accounts.  Prints the median over
``--repeats`` calls (after one warm-up) of ``decide()`` and of its stages, each as
wall time and as this process's CPU time (the machine is shared: CPU time is what
the work costs, wall time what it took under the load printed beside it).  Copy the
figures into benchmarks/RESULTS.md (section "RL").
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def build_artifact(out: Path, steps: int) -> Path:
    """Train a small MaskablePPO for ``steps`` steps (seed 0) and export an rl_onnx artifact."""
    import torch

    from collsim.config import load_scenario
    from collsim.rl.export import export_artifact
    from collsim.rl.training import TrainConfig, build_model, deterministic_torch, make_train_env

    torch.set_num_threads(1)
    cfg = TrainConfig(n_envs=8, pool_size=64, steps=steps)
    with deterministic_torch():
        model = build_model(cfg, make_train_env(cfg))
        model.learn(total_timesteps=steps)
    export_artifact(model, out, load_scenario("default"))
    return out


def _timed(fn: Any, repeats: int) -> tuple[float, float, Any]:
    """Return (median wall s, median CPU s of this process, last result) after one warm-up."""
    wall, cpu, result = [], [], None
    for i in range(repeats + 1):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = fn()
        if i:
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
    return statistics.median(wall), statistics.median(cpu), result


def bench_plan(
    artifact: Path, n: int, repeats: int, threads: int = 1
) -> dict[str, tuple[float, float]]:
    """Return (wall s, CPU s) of ``decide()`` and of its stages at N accounts.

    Stages: ``inputs`` (features and mask), ``forward`` (the ONNX logits), ``choose``
    (inputs, forward, argmax, chosen probability, log-odds); ``decide`` also fits to
    capacity and builds the plan.
    """
    from collsim.config import load_scenario
    from collsim.export.onnx_policies import make_onnx_policy
    from collsim.policies.onnx import artifact_model
    from collsim.policies.rl import OnnxLogits, RLPolicy
    from collsim.sim.engine import Simulation

    scenario = load_scenario("default").scaled_to(n)
    snap = Simulation(scenario, seed=0).begin_day()
    data, source = artifact_model(artifact)
    policy: Any = make_onnx_policy("rl_onnx", data, snap.options, source)
    if threads != 1:  # the same runner with more onnxruntime threads
        policy = RLPolicy(OnnxLogits(data, source, threads), policy_id="rl_onnx")
    out: dict[str, tuple[float, float]] = {}
    *out["decide"], plan = _timed(lambda: policy.decide(snap), repeats)
    out["contacts"] = (float(np.count_nonzero(plan.contacted())), 0.0)
    if hasattr(policy, "choose"):  # this branch's stages
        *out["inputs"], (obs, mask) = _timed(lambda: policy.inputs(snap), repeats)
        *out["forward"], _ = _timed(lambda: policy.model.logits(obs, mask), repeats)
        *out["choose"], _ = _timed(lambda: policy.choose(snap), repeats)
    return out


def main() -> None:
    """Print µs/account of the exported RL policy's plan."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument(
        "--artifact", type=Path, default=None, help="rl_onnx artifact (built there if missing)"
    )
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"load average {load:.2f} (1 min), {os.cpu_count()} cores, {args.threads} ORT thread(s)")
    with tempfile.TemporaryDirectory() as tmp:
        artifact = args.artifact or Path(tmp) / "rl"
        if not artifact.exists():
            build_artifact(artifact, args.train_steps)
        for n in args.sizes:
            r = bench_plan(artifact, n, args.repeats, args.threads)
            per = 1e6 / n
            line = ", ".join(
                f"{k} {r[k][0] * per:.2f} ({r[k][1] * per:.2f} CPU)"
                for k in ("decide", "inputs", "forward", "choose")
                if k in r
            )
            print(
                f"N={n:>9,}: µs/account wall (CPU of this process): {line}; "
                f"{int(r['contacts'][0]):,} contacts; load {os.getloadavg()[0]:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
