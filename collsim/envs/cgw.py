"""The Chehrazi–Glynn–Weber single-account problem as Gymnasium envs (research fixture).

The dynamics are :func:`collsim.research.cgw.advance`: at each decision (every
``dt = 0.05`` time units, the repository's step) the agent picks one of a few effort
levels (default the repository's bins ``0, 0.2, 1.0``); the effort raises the intensity
by ``δ2·a`` at once and costs ``c·a``; repayments then occur exactly (event by event)
until the next decision.  The reward of a step is the collections minus the effort
cost, discounted to the start of the step, so the return with ``γ = e^{−ρ dt}`` is the
problem's discounted value.  The episode terminates when the balance falls below
``balance_stop`` (1, as in the repository); with ``terminal_value`` the last reward
includes the exact no-action value of what is left (worth nearly nothing).

The observation is ``(λ / LAMBDA_SCALE, w / w0)`` (``float32``).  Not registered as a
Gymnasium id: construct :class:`CGWEnv` (one account) or :class:`CGWBatchEnv` (N
accounts, same-step autoreset; wrap with :class:`collsim.envs.sb3.SB3VecEnv` for
stable-baselines3) directly.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from collsim.research.cgw import (
    DEFAULT_PARAMS,
    DEFAULT_SIM,
    REPO_EFFORT_LEVELS,
    Batch,
    CGWParams,
    NoActionValue,
    SimConfig,
    advance,
)

LAMBDA_SCALE = 2.0
"""Intensity divisor in the observation."""


def observe(params: CGWParams, lam: np.ndarray, balance: np.ndarray) -> np.ndarray:
    """Observations ``(λ / LAMBDA_SCALE, w / w0)`` for a batch, shape ``(n, 2)``."""
    obs = np.stack([np.asarray(lam) / LAMBDA_SCALE, np.asarray(balance) / params.balance0], -1)
    return obs.astype(np.float32)


def _spaces(levels: tuple[float, ...]) -> tuple[spaces.Box, spaces.Discrete]:
    """Single observation and action spaces."""
    box = spaces.Box(low=0.0, high=np.inf, shape=(2,), dtype=np.float32)
    return box, spaces.Discrete(len(levels))


class CGWEnv(gym.Env[np.ndarray, np.int64]):
    """One account of the Chehrazi–Glynn–Weber problem per episode.

    Args:
        params: the problem (start state ``(λ0, w0)``).
        levels: effort per action index.
        cfg: decision step, stop balance, terminal value, reward mode, time cap.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        params: CGWParams = DEFAULT_PARAMS,
        levels: tuple[float, ...] = REPO_EFFORT_LEVELS,
        cfg: SimConfig = DEFAULT_SIM,
    ) -> None:
        self.params, self.cfg = params, cfg
        self.levels = np.asarray(levels, dtype=float)
        self.observation_space, self.action_space = _spaces(levels)
        self._no_action = NoActionValue.build(params)
        self._batch = Batch.start(params, 1)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start at ``(λ0, w0)``."""
        super().reset(seed=seed)
        self._batch = Batch.start(self.params, 1)
        return observe(self.params, self._batch.lam, self._batch.balance)[0], {}

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Apply the effort of ``action`` and advance one decision step."""
        start = float(self._batch.time[0])
        effort = self.levels[[int(action)]]
        reward, ended = advance(
            self.params, self._batch, effort, self.np_random, self.cfg, self._no_action
        )
        obs = observe(self.params, self._batch.lam, self._batch.balance)[0]
        value = float(reward[0]) * float(np.exp(self.params.rho * start))
        info = {"time": float(self._batch.time[0]), "effort": float(effort[0])}
        return obs, value, bool(ended[0]), False, info


class CGWBatchEnv(VectorEnv[np.ndarray, np.ndarray, np.ndarray]):
    """N independent accounts stepped together (same-step autoreset).

    Args:
        num_envs: number of accounts.
        params: the problem.
        levels: effort per action index.
        cfg: simulation settings.
        reward_scale: rewards are multiplied by this (e.g. ``1/w0`` for training).
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        num_envs: int,
        params: CGWParams = DEFAULT_PARAMS,
        levels: tuple[float, ...] = REPO_EFFORT_LEVELS,
        cfg: SimConfig = DEFAULT_SIM,
        reward_scale: float = 1.0,
    ) -> None:
        self.num_envs, self.params, self.cfg = num_envs, params, cfg
        self.levels = np.asarray(levels, dtype=float)
        self.reward_scale = reward_scale
        self.single_observation_space, self.single_action_space = _spaces(levels)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._no_action = NoActionValue.build(params)
        self._batch = Batch.start(params, num_envs)
        self._rng = np.random.default_rng()

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start every account at ``(λ0, w0)``; ``seed`` reseeds the batch's stream."""
        if seed is not None:
            first = seed[0] if isinstance(seed, list) else seed
            self._rng = np.random.default_rng(np.random.SeedSequence(first))
        self._batch = Batch.start(self.params, self.num_envs)
        return observe(self.params, self._batch.lam, self._batch.balance), {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Advance every account one decision step; finished rows restart at once."""
        start = self._batch.time.copy()
        effort = self.levels[np.asarray(actions, dtype=int)]
        reward, ended = advance(
            self.params, self._batch, effort, self._rng, self.cfg, self._no_action
        )
        reward = reward * np.exp(self.params.rho * start) * self.reward_scale
        obs = observe(self.params, self._batch.lam, self._batch.balance)
        info: dict[str, Any] = {}
        if ended.any():
            info["final_obs"] = obs.copy()
            fresh = Batch.start(self.params, int(ended.sum()))
            self._batch.lam[ended], self._batch.balance[ended] = fresh.lam, fresh.balance
            self._batch.time[ended] = 0.0
            obs = observe(self.params, self._batch.lam, self._batch.balance)
        truncated = np.zeros(self.num_envs, dtype=bool)
        return obs, reward, ended, truncated, info

    def close(self, **kwargs: Any) -> None:
        """Nothing to release."""
