"""Gymnasium environments over the simulation engine (registered on import).

Gymnasium (1.x) loads no third-party plugins by itself, so the ids exist once this
package is imported.  Without importing it first, name the module in the id, the
form Gymnasium supports for that: ``gymnasium.make("collsim.envs:collsim/Account-v0")``
(and likewise ``gymnasium.make_vec("collsim.envs:collsim/AccountBatch-v0", num_envs)``)
imports this package, which registers the ids, then makes the env.

Ids (all configurable through ``gymnasium.make`` / ``make_vec`` kwargs: ``scenario``,
``ruleset``, ``seed``, ``horizon``, ...):

* ``collsim/Account-v0`` (:class:`~collsim.envs.account.AccountEnv`): one account per
  episode, ``Discrete(1 + K)`` actions with ``action_masks()``.
* ``collsim/AccountBatch-v0`` (:class:`~collsim.envs.batch.AccountBatchEnv`, via
  ``gymnasium.make_vec``): N accounts in one Simulation, same-step autoreset;
  :class:`collsim.envs.sb3.SB3VecEnv` adapts it to stable-baselines3.  With
  ``treatments=True`` the action is (channel × slot × offer × variant) flattened
  (:class:`~collsim.policies.action_layout.ActionLayout`): the agent chooses the
  treatment too.
* ``collsim/AccountBatchFast-v0`` (:class:`~collsim.envs.fast.FastAccountBatchEnv`, via
  ``gymnasium.make_vec``): the same, with the day's agent calls resolved in rounds
  (one vectorised pass per attempt) instead of the hourly SimPy pool; equal in
  distribution, ~2x faster (see docs/envs.md).
* ``collsim/Portfolio-v0`` (:class:`~collsim.envs.portfolio.PortfolioEnv`): the whole
  portfolio, scores per account × option turned into a feasible plan.

The tiny exact MDP of :mod:`collsim.rl.tiny` (:class:`collsim.envs.tiny.TinyCollectionsEnv`)
is a test and research fixture, not a public id: construct it directly; so are the
Chehrazi–Glynn–Weber single-account envs of :mod:`collsim.envs.cgw`.

This package is the only place in collsim that imports gymnasium.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from collsim.envs.account import AccountEnv
from collsim.envs.batch import AccountBatchEnv
from collsim.envs.fast import FastAccountBatchEnv
from collsim.envs.portfolio import PortfolioEnv
from collsim.envs.wrappers import EpisodeStats, VectorEpisodeStats

ACCOUNT_ID = "collsim/Account-v0"
BATCH_ID = "collsim/AccountBatch-v0"
FAST_BATCH_ID = "collsim/AccountBatchFast-v0"
PORTFOLIO_ID = "collsim/Portfolio-v0"


def register_envs() -> None:
    """Register the collsim ids with Gymnasium (idempotent)."""
    registry = gym.envs.registration.registry
    if ACCOUNT_ID not in registry:
        gym.register(id=ACCOUNT_ID, entry_point="collsim.envs.account:AccountEnv")
    if BATCH_ID not in registry:
        gym.register(id=BATCH_ID, vector_entry_point="collsim.envs.batch:AccountBatchEnv")
    if FAST_BATCH_ID not in registry:
        gym.register(id=FAST_BATCH_ID, vector_entry_point="collsim.envs.fast:FastAccountBatchEnv")
    if PORTFOLIO_ID not in registry:
        gym.register(id=PORTFOLIO_ID, entry_point="collsim.envs.portfolio:PortfolioEnv")


def make_account_batch(num_envs: int, **kwargs: Any) -> Any:
    """``gymnasium.make_vec("collsim/AccountBatch-v0", num_envs, **kwargs)``."""
    return gym.make_vec(BATCH_ID, num_envs=num_envs, **kwargs)


register_envs()

__all__ = [
    "ACCOUNT_ID",
    "BATCH_ID",
    "FAST_BATCH_ID",
    "PORTFOLIO_ID",
    "AccountBatchEnv",
    "AccountEnv",
    "EpisodeStats",
    "FastAccountBatchEnv",
    "PortfolioEnv",
    "VectorEpisodeStats",
    "make_account_batch",
    "register_envs",
]
