"""Environment speed: AccountBatch-v0 account-steps/s and Portfolio-v0 days/s.

Run: ``.venv/bin/python benchmarks/bench_envs.py [--quick] [--profile]``.  Prints the
figures; copy them into benchmarks/RESULTS.md (section "Environments") with the date
and machine.  Target: ≥ 20,000 account-steps/s for AccountBatch-v0 with N = 1,024 and
uniformly random masked actions.  ``--profile`` prints the engine functions that
dominate a batched step.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import gymnasium as gym
import numpy as np

import collsim.envs  # noqa: F401  (registers the ids)


def random_masked(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random allowed action per row of ``mask``."""
    return np.where(mask, rng.random(mask.shape), -1.0).argmax(axis=-1)


def bench_batch(n: int, steps: int, warmup: int = 5) -> tuple[float, float]:
    """Return (account-steps/s, finished episodes per step) of AccountBatch-v0."""
    venv = gym.make_vec("collsim/AccountBatch-v0", num_envs=n).unwrapped
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(warmup):
        venv.step(random_masked(venv.action_masks(), rng))
    done = 0
    started = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = venv.step(random_masked(venv.action_masks(), rng))
        done += int((term | trunc).sum())
    elapsed = time.perf_counter() - started
    return n * steps / elapsed, done / steps


def bench_portfolio(n: int, days: int, allocator: str) -> tuple[float, float, float]:
    """Return (reset s, days/s, mean planned contacts) of Portfolio-v0 with random scores."""
    started = time.perf_counter()
    env = gym.make("collsim/Portfolio-v0", n_accounts=n, allocator=allocator).unwrapped
    env.reset(seed=0)
    reset_s = time.perf_counter() - started
    rng = np.random.default_rng(0)
    planned = 0
    started = time.perf_counter()
    for _ in range(days):
        _, _, _, _, info = env.step(rng.uniform(-1.0, 1.0, env.action_space.shape))
        planned += info["planned"]
    return reset_s, days / (time.perf_counter() - started), planned / days


def profile_batch(n: int, steps: int) -> None:
    """Print the top functions of a batched step by cumulative time."""
    venv = gym.make_vec("collsim/AccountBatch-v0", num_envs=n).unwrapped
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        venv.step(random_masked(venv.action_masks(), rng))
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(18)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--profile", action="store_true", help="profile a batched step")
    args = parser.parse_args()
    steps, days, n_portfolio = (20, 3, 2_000) if args.quick else (200, 10, 20_000)
    rate, finished = bench_batch(1024, steps)
    print(
        f"AccountBatch-v0 N=1024, {steps} steps: {rate:,.0f} account-steps/s "
        f"({finished:.1f} episodes finished per step)"
    )
    for allocator in ("greedy", "exact"):
        reset_s, per_s, planned = bench_portfolio(n_portfolio, days, allocator)
        print(
            f"Portfolio-v0 N={n_portfolio:,} allocator={allocator}, {days} days: "
            f"{per_s:.2f} days/s, reset {reset_s:.2f} s, {planned:,.0f} contacts planned/day"
        )
    if args.profile:
        profile_batch(1024, 30)


if __name__ == "__main__":
    main()
