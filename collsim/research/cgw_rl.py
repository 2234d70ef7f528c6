"""Stable-baselines3 PPO on the Chehrazi–Glynn–Weber single account (research only).

Trains :class:`stable_baselines3.PPO` on :class:`collsim.envs.cgw.CGWBatchEnv` (through
:class:`collsim.envs.sb3.SB3VecEnv`) with ``γ = e^{−ρ dt}``, so the agent maximises the
problem's discounted value, and evaluates the greedy (deterministic) policy with
:func:`collsim.research.cgw.simulate` on fresh episodes.  Every few rollouts a
:class:`_BestKeeper` callback scores the current policy on its own evaluation stream
and keeps the best weights; the reported figure is always a new, independent Monte
Carlo run of the kept policy.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from collsim.research.cgw import (
    DEFAULT_SIM,
    REPO_EFFORT_LEVELS,
    CGWParams,
    MonteCarloResult,
    Policy,
    level_policy,
    simulate,
)


@dataclass(frozen=True)
class RLConfig:
    """PPO settings.

    Attributes:
        steps: environment steps of training.
        n_envs: accounts stepped together.
        n_steps: rollout length per account.
        batch_size: PPO minibatch.
        n_epochs: PPO epochs per rollout.
        learning_rate: Adam step size (decayed linearly to 0).
        gae_lambda: GAE λ.
        net_arch: hidden layers of the policy and value nets.
        levels: effort per action index.
        eval_every: rollouts between selection evaluations (0: keep the final policy).
        eval_episodes: episodes per selection evaluation (the same seed every time:
            candidates are compared on common random numbers).
        seed: seed of the run (torch, PPO and the env streams).
    """

    steps: int = 600_000
    n_envs: int = 16
    n_steps: int = 512
    batch_size: int = 2048
    n_epochs: int = 10
    learning_rate: float = 3e-4
    gae_lambda: float = 0.99
    net_arch: tuple[int, ...] = (64, 64)
    levels: tuple[float, ...] = REPO_EFFORT_LEVELS
    eval_every: int = 5
    eval_episodes: int = 3000
    seed: int = 0


@dataclass
class RLResult:
    """A trained agent.

    Attributes:
        model: the kept PPO model.
        elapsed_s: wall-clock training time (seconds, selection evaluations included).
        selection: (steps, selection value) of each selection evaluation.
    """

    model: Any
    elapsed_s: float
    selection: list[tuple[int, float]] = field(default_factory=list)


def model_policy(model: Any, params: CGWParams, levels: tuple[float, ...]) -> Policy:
    """The model's deterministic policy as an effort policy over batches."""
    from collsim.envs.cgw import observe

    def choose(lam: np.ndarray, balance: np.ndarray) -> np.ndarray:
        action, _ = model.predict(observe(params, lam, balance), deterministic=True)
        return np.asarray(action)

    return level_policy(levels, choose)


def _build(params: CGWParams, cfg: RLConfig) -> Any:
    """A fresh PPO on a CGW batch env."""
    from stable_baselines3 import PPO

    from collsim.envs.cgw import CGWBatchEnv
    from collsim.envs.sb3 import SB3VecEnv

    env = CGWBatchEnv(cfg.n_envs, params, cfg.levels, DEFAULT_SIM, 1.0 / params.balance0)
    venv = SB3VecEnv(env)
    venv.seed(cfg.seed)
    start_lr = cfg.learning_rate
    return PPO(
        "MlpPolicy",
        venv,
        n_steps=cfg.n_steps,
        batch_size=cfg.batch_size,
        n_epochs=cfg.n_epochs,
        learning_rate=lambda remaining: start_lr * remaining,
        gamma=float(np.exp(-params.rho * DEFAULT_SIM.dt)),
        gae_lambda=cfg.gae_lambda,
        policy_kwargs={"net_arch": list(cfg.net_arch)},
        seed=cfg.seed,
        device="cpu",
        verbose=0,
    )


def _snapshot(model: Any) -> bytes:
    """The model's policy weights."""
    import torch

    buffer = io.BytesIO()
    torch.save(model.policy.state_dict(), buffer)
    return buffer.getvalue()


def _restore(model: Any, weights: bytes) -> None:
    """Load policy weights saved by :func:`_snapshot`."""
    import torch

    model.policy.load_state_dict(torch.load(io.BytesIO(weights)))


def _keeper(params: CGWParams, cfg: RLConfig, result: RLResult, best: dict) -> Any:
    """An SB3 callback keeping the best policy seen by the selection evaluations."""
    from stable_baselines3.common.callbacks import BaseCallback

    seeds = np.random.SeedSequence([cfg.seed, 0x5E1EC7])

    class _BestKeeper(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.rollouts = 0

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            self.rollouts += 1
            if cfg.eval_every <= 0 or self.rollouts % cfg.eval_every:
                return
            policy = model_policy(self.model, params, cfg.levels)
            score = simulate(params, policy, cfg.eval_episodes, seeds).mean
            result.selection.append((int(self.num_timesteps), score))
            if score > best.get("score", -np.inf):
                best.update(score=score, weights=_snapshot(self.model))

    return _BestKeeper()


def train(params: CGWParams, cfg: RLConfig = RLConfig()) -> RLResult:
    """Train PPO (single-threaded torch) and keep the best selection-evaluated policy.

    Args:
        params: the problem.
        cfg: PPO settings.

    Returns:
        The kept model and the training time.
    """
    from collsim.rl.training import deterministic_torch

    with deterministic_torch():
        model = _build(params, cfg)
        result = RLResult(model=model, elapsed_s=0.0)
        best: dict[str, Any] = {}
        started = time.perf_counter()
        model.learn(total_timesteps=cfg.steps, callback=_keeper(params, cfg, result, best))
        if "weights" in best:
            _restore(model, best["weights"])
        result.elapsed_s = time.perf_counter() - started
    return result


def evaluate(
    params: CGWParams,
    model: Any,
    levels: tuple[float, ...],
    n_episodes: int,
    seed: np.random.SeedSequence | int,
) -> MonteCarloResult:
    """Monte Carlo value of the model's deterministic policy on fresh episodes."""
    return simulate(params, model_policy(model, params, levels), n_episodes, seed)
