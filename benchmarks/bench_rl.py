"""RL speed: MaskablePPO training steps/s on AccountBatch-v0; RLPolicy/HybridPolicy decide() time.

Run: ``.venv/bin/python benchmarks/bench_rl.py [--quick] [--model PATH]``.  Prints the
figures; copy them into benchmarks/RESULTS.md (section "RL") with the date and
machine.  Training uses one torch thread (as ``collsim train``).  ``decide()`` is timed
on the first snapshot of the default scenario at 20,000 and 100,000 accounts (median
of 3 calls after one warm-up; the HybridPolicy's dual-price state is reset between
calls); without ``--model`` an untrained network of the default size is used (the
same cost: one forward pass per account, then capacity).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from collsim.config import load_scenario
from collsim.rl.training import TrainConfig, build_model, deterministic_torch, make_train_env
from collsim.sim.engine import Simulation


def bench_training(n: int, rollouts: int) -> float:
    """Return MaskablePPO environment steps/s (rollout + update) with N rows."""
    cfg = TrainConfig(n_envs=n, steps=n * 32 * rollouts)
    with deterministic_torch():
        venv = make_train_env(cfg)
        model = build_model(cfg, venv)
        model.learn(total_timesteps=n * 32)  # warm-up rollout
        started = time.perf_counter()
        model.learn(total_timesteps=cfg.steps, reset_num_timesteps=False)
        elapsed = time.perf_counter() - started
    return cfg.steps / elapsed


def _model(path: Path | None) -> Any:
    if path is not None:
        return path
    cfg = TrainConfig(n_envs=8, pool_size=64)
    return build_model(cfg, make_train_env(cfg))


def bench_decide(n: int, model: Any, repeats: int = 3) -> tuple[float, float, int, int]:
    """Return (RLPolicy s, HybridPolicy s, contacts planned by each) at N accounts."""
    from collsim.policies.hybrid import HybridPolicy
    from collsim.policies.rl import RLPolicy
    from collsim.rl.logits import load_logit_model

    scenario = load_scenario("default").scaled_to(n)
    snap = Simulation(scenario, seed=0).begin_day()
    loaded = load_logit_model(model)
    rl, hybrid = RLPolicy(loaded), HybridPolicy(loaded)
    times: dict[str, list[float]] = {"rl": [], "hybrid": []}
    planned = {}
    for name, policy in (("rl", rl), ("hybrid", hybrid)):
        for i in range(repeats + 1):
            if isinstance(policy, HybridPolicy):
                policy.prices = None
            started = time.perf_counter()
            plan = policy.decide(snap)
            if i:
                times[name].append(time.perf_counter() - started)
        planned[name] = int(plan.contacted().sum())
    return (
        statistics.median(times["rl"]),
        statistics.median(times["hybrid"]),
        planned["rl"],
        planned["hybrid"],
    )


def main() -> None:
    """Print the benchmark figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rollouts, 20k only")
    parser.add_argument("--model", type=Path, default=None, help="MaskablePPO .zip or .onnx")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rollouts = 2 if args.quick else 4
    for n in (256, 1024):
        rate = bench_training(n, rollouts)
        print(f"MaskablePPO training, AccountBatch-v0 N={n:>5,}: {rate:>8,.0f} steps/s")
    model = _model(args.model)
    for n in (20_000,) if args.quick else (20_000, 100_000):
        rl_s, hybrid_s, rl_n, hybrid_n = bench_decide(n, model)
        print(
            f"decide() N={n:>7,}: RLPolicy {rl_s:.3f} s ({rl_n:,} contacts), "
            f"HybridPolicy {hybrid_s:.3f} s ({hybrid_n:,} contacts)"
        )


if __name__ == "__main__":
    main()
