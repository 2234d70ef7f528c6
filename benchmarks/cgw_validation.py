"""External validation on Chehrazi, Glynn & Weber's single-account collection problem.

Run: ``.venv/bin/python benchmarks/cgw_validation.py [--quick] [--episodes N] [--steps N]``.

For ρ = 0.06 and 0.15 (start ``(λ0, w0) = (0.11, 200)``, the parameters of the public
repository ``majkee15/credit_collections_rl``) it prints:

* the exact optimum of :func:`collsim.research.cgw.exact_value` (default grid) and the
  true no-action value, next to the figures published for that repository (its
  no-action figure integrates only to ``t = 20/κ``; the cut value is printed too);
* Monte Carlo of the env (``dt = 0.05``, realised repayments, stop below balance 1 with
  the exact no-action tail) for the no-action policy, the solver's exact top-up policy
  and the solver's greedy policy over the agent's effort levels;
* PPO (stable-baselines3, one torch thread) trained with
  :func:`collsim.research.cgw_rl.train`, evaluated on fresh episodes: value, 95 % CI
  half-width, % of the exact optimum and training time.

``--quick`` skips training (solver and Monte Carlo only).  Copy the printed table into
benchmarks/RESULTS.md with the date and machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from collsim.research.cgw import (
    PUBLISHED,
    CGWParams,
    ExactResult,
    MonteCarloResult,
    exact_value,
    no_action_policy,
    no_action_value,
    repo_no_action_horizon,
    simulate,
    solver_policy,
)
from collsim.research.cgw_rl import RLConfig, evaluate, train

RHOS = (0.06, 0.15)


def _fmt(mc: MonteCarloResult, exact: float) -> str:
    """``mean ± half-width (pct %)``."""
    return f"{mc.mean:.2f} ± {mc.half_width:.2f} ({100 * mc.mean / exact:.1f}%)"


def solver_rows(rho: float, episodes: int, seed: np.random.SeedSequence, cfg: RLConfig) -> dict:
    """Exact values and Monte Carlo of the solver's policies at ``rho``."""
    params = CGWParams(rho=rho)
    started = time.perf_counter()
    res: ExactResult = exact_value(params)
    solve_s = time.perf_counter() - started
    streams = seed.spawn(3)
    return {
        "params": params,
        "exact": res,
        "solve_s": solve_s,
        "repo_cut": no_action_value(params, repo_no_action_horizon(params)),
        "mc_none": simulate(params, no_action_policy, episodes, streams[0]),
        "mc_topup": simulate(params, solver_policy(res.solution), episodes, streams[1]),
        "mc_greedy": simulate(
            params, solver_policy(res.solution, cfg.levels), episodes, streams[2]
        ),
    }


def print_solver(rows: dict[float, dict], cfg: RLConfig) -> None:
    """The solver table."""
    print(
        "| ρ | exact optimum (published) | λ*(w0) | no action: exact / cut at 20/κ (published)"
        " | MC no action | MC solver top-up | MC solver greedy on levels | solve s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for rho, row in rows.items():
        res, pub = row["exact"], PUBLISHED[rho]
        print(
            f"| {rho} | {res.optimal:.2f} ({pub['optimal']}) | {res.sustain_level:.2f} "
            f"| {res.no_action:.2f} / {row['repo_cut']:.2f} ({pub['no_action']}) "
            f"| {_fmt(row['mc_none'], res.no_action)} | {_fmt(row['mc_topup'], res.optimal)} "
            f"| {_fmt(row['mc_greedy'], res.optimal)} | {row['solve_s']:.2f} |"
        )
    print(
        f"(levels {cfg.levels}; Monte Carlo {rows[RHOS[0]]['mc_topup'].n_episodes} episodes,"
        " 95% CI half-widths; % of the exact optimum, of the exact no-action value for"
        " 'MC no action')"
    )


def print_rl(rows: dict[float, dict], cfg: RLConfig, episodes: int, seed: int) -> None:
    """Train and evaluate PPO per ρ; print the RL table."""
    print(
        "\n| ρ | exact optimum | PPO value ± 95% CI | % of optimum | CI half-width %"
        " | published DQN | training s | steps |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for rho, row in rows.items():
        params, optimum = row["params"], row["exact"].optimal
        agent = train(params, cfg)
        mc = evaluate(params, agent.model, cfg.levels, episodes, np.random.SeedSequence(seed))
        dqn = PUBLISHED[rho].get("dqn")
        print(
            f"| {rho} | {optimum:.2f} | {mc.mean:.2f} ± {mc.half_width:.2f} "
            f"| {100 * mc.mean / optimum:.2f}% | {100 * mc.half_width / optimum:.2f}% "
            f"| {dqn if dqn else '—'} | {agent.elapsed_s:.0f} | {cfg.steps:,} |",
            flush=True,
        )


def main() -> None:
    """Parse arguments, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip RL training")
    parser.add_argument("--episodes", type=int, default=20_000)
    parser.add_argument("--steps", type=int, default=RLConfig().steps)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    cfg = RLConfig(steps=args.steps)
    seed = np.random.SeedSequence(args.seed)
    rows = {rho: solver_rows(rho, args.episodes, seed.spawn(1)[0], cfg) for rho in RHOS}
    print_solver(rows, cfg)
    if not args.quick:
        print_rl(rows, cfg, args.episodes, args.seed + 1)


if __name__ == "__main__":
    main()
