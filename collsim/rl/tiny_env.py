"""MaskablePPO on the tiny collections MDP and its exact evaluation by DP.

The env, :class:`TinyCollectionsEnv`, lives in :mod:`collsim.envs.tiny` (the only
package that imports gymnasium); it is a fixture, not a registered Gymnasium id.
:func:`learned_policy` reads a trained model's masked argmax at every (day, state), so
:func:`collsim.rl.tiny.policy_value` evaluates it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
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

__all__ = ["TinyCollectionsEnv", "TinyRecipe", "learned_policy", "observation", "train_tiny"]


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


@dataclass(frozen=True)
class TinyRecipe:
    """How MaskablePPO is trained on the tiny MDP (seeds and figures: benchmarks/RESULTS.md).

    The action-value gaps the policy must resolve are small (0.2–1 on values of 4–35)
    while the returns of sampled paths vary far more (payment ends the episode on a
    random day), so the recipe is about noise:

    * ``ent_coef = 0.001`` (was 0.01): against per-batch normalised advantages a 0.2
      gap is of the order of 0.01 standard deviations, the size of a 0.01 bonus;
    * ``reward_scale = 0.01``: values near 1 for the critic, whose gradient shares
      the one gradient-norm clip with the actor's;
    * the one-hot day of :func:`~collsim.envs.tiny.observation`;
    * larger rollouts, more steps and a learning rate falling linearly to 0, so that
      the last updates settle rather than move the argmax on noise;
    * 64 envs × 512 steps a rollout (32,768 samples) in minibatches of 8,192: with
      16 envs and minibatches of 2,048 the policy settled (lr → 0) on a wrong argmax
      in a few states on one seed of three (98.69 %), and averaging its last policies
      did not help; larger batches give each update a less noisy advantage.

    ``gamma = 1``: the DP optimum is undiscounted and the horizon terminates episodes.
    """

    steps: int = 2_000_000
    n_envs: int = 64
    n_steps: int = 512
    batch_size: int = 8192
    n_epochs: int = 8
    learning_rate: float = 1e-3
    linear_decay: bool = True
    gamma: float = 1.0
    gae_lambda: float = 0.9
    ent_coef: float = 0.001
    reward_scale: float = 0.01
    net_arch: tuple[int, ...] = (64, 64)


def train_tiny(
    recipe: TinyRecipe | None = None, seed: int = 0, horizon: int = TINY_HORIZON
) -> dict[str, Any]:
    """Train MaskablePPO on :class:`TinyCollectionsEnv` and evaluate it exactly by DP.

    Single-threaded; the learned masked-argmax policy is evaluated by
    :func:`~collsim.rl.tiny.policy_value` (exact, no sampling noise).

    Args:
        recipe: the training recipe (default :class:`TinyRecipe`).
        seed: the training seed (environments and network).
        horizon: days per episode.

    Returns:
        dict with ``optimum`` (DP optimal expected value), ``learned`` (exact value of
        the learned masked-argmax policy), ``ratio``, ``baselines`` (value of always
        taking action a), ``policy`` [H, X] and ``model``.
    """
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from collsim.rl.tiny import constant_policy

    r = recipe or TinyRecipe()
    torch.set_num_threads(1)
    venv = DummyVecEnv(
        [
            lambda: TinyCollectionsEnv(horizon=horizon, reward_scale=r.reward_scale)
            for _ in range(r.n_envs)
        ]
    )
    venv.seed(seed)
    lr0 = r.learning_rate
    model = MaskablePPO(
        "MlpPolicy",
        venv,
        n_steps=r.n_steps,
        batch_size=r.batch_size,
        n_epochs=r.n_epochs,
        learning_rate=(lambda left: lr0 * left) if r.linear_decay else lr0,
        gamma=r.gamma,
        gae_lambda=r.gae_lambda,
        ent_coef=r.ent_coef,
        policy_kwargs={"net_arch": list(r.net_arch)},
        seed=seed,
        device="cpu",
    )
    model.learn(total_timesteps=r.steps)
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
