"""``collsim/Tiny-v0``: the tiny collections MDP as a Gymnasium env, and MaskablePPO on it.

The env samples the MDP of :mod:`collsim.rl.tiny` (``FiniteMDP``) with
``self.np_random``; the observation is the one-hot live state and the fraction of
days left (the optimal policy of a finite horizon depends on it); the horizon is
part of the problem, so reaching it *terminates* the episode (no bootstrapping
beyond it).  ``action_masks()`` gives the MDP's mask; a masked action is executed
as no contact and flagged in ``info["masked_action"]`` (the checkers sample
actions without masks).

The reward of a step is the MDP's *expected* reward of (state, action) by default
(same values and optimal policy as the sampled one, less variance); pass
``sampled_reward=True`` for ``amount_due · 1[paid] − cost``.

:func:`learned_policy` reads a trained model's masked argmax at every (day, state),
so :func:`collsim.rl.tiny.policy_value` evaluates it exactly (no sampling).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from collsim.rl.tiny import (
    CHARGED_OFF,
    N_LIVE,
    PAID,
    TINY_HORIZON,
    FiniteMDP,
    TinyParams,
    collections_mdp,
    expected_value,
    policy_value,
    value_iteration,
)

TINY_ID = "collsim/Tiny-v0"


class TinyCollectionsEnv(gym.Env[np.ndarray, np.int64]):
    """One account of the tiny collections MDP per episode.

    Args:
        params: MDP parameters (default :class:`~collsim.rl.tiny.TinyParams`).
        horizon: days per episode.
        sampled_reward: reward ``amount_due · 1[paid] − cost`` instead of its expectation.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        params: TinyParams | None = None,
        horizon: int = TINY_HORIZON,
        sampled_reward: bool = False,
    ) -> None:
        self.params = params or TinyParams()
        self.mdp: FiniteMDP = collections_mdp(self.params)
        self.horizon = horizon
        self.sampled_reward = sampled_reward
        self.observation_space = spaces.Box(0.0, 1.0, (N_LIVE + 1,), np.float32)
        self.action_space = spaces.Discrete(self.mdp.n_actions)
        self._cdf = np.cumsum(self.mdp.transition, axis=2)
        self._state = 0
        self._t = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw the initial state."""
        super().reset(seed=seed)
        self._state = int(self.np_random.choice(self.mdp.n_states, p=self.mdp.initial))
        self._t = 0
        return observation(self._state, self._t, self.horizon), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply one day's action (a masked one is executed as no contact)."""
        a = int(action)
        masked = not (0 <= a < self.mdp.n_actions and bool(self.mdp.mask[self._state, a]))
        if masked:
            a = 0
        x = self._state
        u = float(self.np_random.random())
        y = int(np.searchsorted(self._cdf[a, x], u, side="right"))
        y = min(y, self.mdp.n_states - 1)
        if self.sampled_reward:
            reward = (self.params.amount_due if y == PAID else 0.0) - self.params.cost[a]
        else:
            reward = float(self.mdp.reward[a, x])
        self._state, self._t = y, self._t + 1
        terminated = y in (PAID, CHARGED_OFF) or self._t >= self.horizon
        obs = observation(y, self._t, self.horizon)
        return obs, reward, terminated, False, {"masked_action": masked, "state": y}

    def action_masks(self) -> np.ndarray:
        """bool [A]: the actions allowed in the current state."""
        state = min(self._state, self.mdp.n_states - 1)
        return self.mdp.mask[state].copy()


def observation(state: int, t: int, horizon: int) -> np.ndarray:
    """float32 [N_LIVE + 1]: one-hot live state and the fraction of days left."""
    obs = np.zeros(N_LIVE + 1, dtype=np.float32)
    if state < N_LIVE:
        obs[state] = 1.0
    obs[N_LIVE] = (horizon - t) / horizon
    return obs


def register_tiny() -> None:
    """Register ``collsim/Tiny-v0`` with Gymnasium (idempotent)."""
    if TINY_ID not in gym.envs.registration.registry:
        gym.register(id=TINY_ID, entry_point="collsim.rl.tiny_env:TinyCollectionsEnv")


register_tiny()


def learned_policy(model: Any, mdp: FiniteMDP, horizon: int = TINY_HORIZON) -> np.ndarray:
    """int [H, X]: a MaskablePPO model's masked argmax at every day and live state.

    Absorbing states get action 0 (they have no reward either way).
    """
    obs = np.stack([observation(x, t, horizon) for t in range(horizon) for x in range(N_LIVE)])
    masks = np.tile(mdp.mask[:N_LIVE], (horizon, 1))
    action, _ = model.predict(obs, action_masks=masks, deterministic=True)
    policy = np.zeros((horizon, mdp.n_states), dtype=np.int64)
    policy[:, :N_LIVE] = np.asarray(action).reshape(horizon, N_LIVE)
    return policy


def train_tiny(
    steps: int = 60_000, seed: int = 0, n_envs: int = 16, horizon: int = TINY_HORIZON
) -> dict[str, Any]:
    """Train MaskablePPO on ``collsim/Tiny-v0`` and evaluate it exactly by DP.

    Undiscounted (``gamma = 1``: the DP optimum is undiscounted), single-threaded.

    Returns:
        dict with ``optimum`` (DP optimal expected value), ``learned`` (exact value of
        the learned masked-argmax policy), ``ratio``, ``baselines`` (value of always
        taking action a), ``policy`` [H, X] and ``model``.
    """
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from collsim.rl.tiny import constant_policy

    torch.set_num_threads(1)
    venv = DummyVecEnv([lambda: TinyCollectionsEnv(horizon=horizon) for _ in range(n_envs)])
    venv.seed(seed)
    model = MaskablePPO(
        "MlpPolicy",
        venv,
        n_steps=128,
        batch_size=512,
        n_epochs=8,
        learning_rate=1e-3,
        gamma=1.0,
        gae_lambda=0.95,
        ent_coef=0.01,
        policy_kwargs={"net_arch": [64, 64]},
        seed=seed,
        device="cpu",
    )
    model.learn(total_timesteps=steps)
    mdp = venv.envs[0].unwrapped.mdp  # type: ignore[attr-defined]
    optimum_v, _ = value_iteration(mdp, horizon)
    policy = learned_policy(model, mdp, horizon)
    optimum = expected_value(mdp, optimum_v)
    learned = expected_value(mdp, policy_value(mdp, policy, horizon))
    baselines = {
        a: expected_value(mdp, policy_value(mdp, constant_policy(mdp, a, horizon), horizon))
        for a in range(mdp.n_actions)
    }
    return {
        "optimum": optimum,
        "learned": learned,
        "ratio": learned / optimum,
        "baselines": baselines,
        "policy": policy,
        "model": model,
    }
