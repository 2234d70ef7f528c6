"""MaskablePPO on the tiny collections MDP and its exact evaluation by DP.

The env, :class:`TinyCollectionsEnv`, lives in :mod:`collsim.envs.tiny` (the only
package that imports gymnasium); it is a fixture, not a registered Gymnasium id.
:func:`learned_policy` reads a trained model's masked argmax at every (day, state), so
:func:`collsim.rl.tiny.policy_value` evaluates it exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from collsim.envs.tiny import TinyCollectionsEnv, observation
from collsim.rl.tiny import (
    N_LIVE,
    TINY_HORIZON,
    FiniteMDP,
    expected_value,
    policy_value,
    value_iteration,
)

__all__ = ["TinyCollectionsEnv", "learned_policy", "observation", "train_tiny"]


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
    """Train MaskablePPO on :class:`TinyCollectionsEnv` and evaluate it exactly by DP.

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
