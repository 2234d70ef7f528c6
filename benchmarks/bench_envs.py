"""Environment speed: AccountBatch(-Fast)-v0 account-steps/s, MaskablePPO steps/s, Portfolio-v0.

Run: ``.venv/bin/python benchmarks/bench_envs.py [--quick] [--profile] [--fast] [--train]``.
Prints the figures; copy them into benchmarks/RESULTS.md (section "Environments") with
the date, machine and load average.  Targets: ≥ 20,000 account-steps/s for
AccountBatch-v0 with N = 1,024 and uniformly random masked actions; ``--fast``: the
batched envs at N = 16,384 and 32,768 (target ≥ 500,000 account-steps/s for
AccountBatchFast-v0); ``--train``: MaskablePPO end to end (rollout + update) on
AccountBatchFast-v0 through ``SB3VecEnv`` (target ≥ 20,000 env steps/s).
``--profile`` prints the engine functions that dominate a batched step.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time

import gymnasium as gym
import numpy as np

import collsim.envs  # noqa: F401  (registers the ids)


def random_masked(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random allowed action per row of ``mask``."""
    return np.where(mask, rng.random(mask.shape), -1.0).argmax(axis=-1)


def random_allowed(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same law as :func:`random_masked` (uniform over allowed actions), in O(N·K) int16."""
    count = mask.sum(axis=1)
    pick = (rng.random(mask.shape[0]) * count).astype(np.int16)
    return (mask.cumsum(axis=1, dtype=np.int16) <= pick[:, None]).sum(axis=1)


def bench_env_steps(env_ids: list[str], n: int, steps: int, warmup: int = 3) -> list[float]:
    """Return account-steps/s of ``step()`` for each env, stepped in turn (same load for all).

    The envs are stepped alternately, one step each, so that a change in the machine's
    load during the run affects them alike; action sampling is not timed.
    """
    venvs = [gym.make_vec(env_id, num_envs=n).unwrapped for env_id in env_ids]
    rngs = [np.random.default_rng(0) for _ in venvs]
    for venv in venvs:
        venv.reset(seed=0)
    seconds = np.zeros(len(venvs))
    for step in range(warmup + steps):
        for k, (venv, rng) in enumerate(zip(venvs, rngs, strict=True)):
            actions = random_allowed(venv.action_masks(), rng)
            started = time.perf_counter()
            venv.step(actions)
            if step >= warmup:
                seconds[k] += time.perf_counter() - started
    return [n * steps / s for s in seconds]


def bench_train(n: int, n_steps: int, batch: int, epochs: int, rollouts: int) -> float:
    """Return MaskablePPO env steps/s end to end (rollouts + updates) on AccountBatchFast-v0."""
    import torch
    from sb3_contrib import MaskablePPO

    torch.distributions.Distribution.set_default_validate_args(False)  # per-batch checks
    from collsim.envs.sb3 import SB3VecEnv

    venv = SB3VecEnv(gym.make_vec("collsim/AccountBatchFast-v0", num_envs=n))
    venv.seed(0)
    model = MaskablePPO(
        "MlpPolicy",
        venv,
        n_steps=n_steps,
        batch_size=batch,
        n_epochs=epochs,
        learning_rate=3e-4,
        seed=0,
        device="cpu",
    )
    model.learn(total_timesteps=n * n_steps)  # warm-up: reset, first rollout and update
    total = n * n_steps * rollouts
    started = time.perf_counter()
    model.learn(total_timesteps=total, reset_num_timesteps=False)
    return total / (time.perf_counter() - started)


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


def bench_fast(quick: bool) -> None:
    """Print account-steps/s of the full and the fast batched env at large N."""
    sizes, steps = ((2048,), 5) if quick else ((16_384, 32_768), 20)
    env_ids = ["collsim/AccountBatch-v0", "collsim/AccountBatchFast-v0"]
    for n in sizes:
        rates = bench_env_steps(env_ids, n, steps)
        for env_id, rate in zip(env_ids, rates, strict=True):
            print(f"{env_id} N={n:,}, {steps} steps: {rate:,.0f} account-steps/s in step()")
        print(f"  fast / full: {rates[1] / rates[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--profile", action="store_true", help="profile a batched step")
    parser.add_argument("--fast", action="store_true", help="batched envs at N = 16k and 32k")
    parser.add_argument("--train", action="store_true", help="MaskablePPO steps/s end to end")
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    if args.fast or args.train:
        if args.fast:
            bench_fast(args.quick)
        if args.train:
            n, n_steps = (1024, 4) if args.quick else (16_384, 8)
            rate = bench_train(n, n_steps, batch=min(n * n_steps, 32_768), epochs=1, rollouts=3)
            print(
                f"MaskablePPO on AccountBatchFast-v0 N={n:,}, n_steps {n_steps}, batch 32,768, "
                f"1 epoch: {rate:,.0f} env steps/s end to end"
            )
        print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
        return
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
