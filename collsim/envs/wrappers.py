"""Wrappers: episode statistics for the single environments and the batched one."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv, VectorWrapper

STAT_KEYS = ("recovered", "cost", "contacts", "complaints")
"""Step ``info`` keys summed over an episode."""


class EpisodeStats(gym.Wrapper[Any, Any, Any, Any]):
    """Report episode totals in ``info["episode_stats"]`` on the last step of each episode.

    ``episode_stats`` holds the sums of the step infos ``recovered``, ``cost``,
    ``contacts`` and ``complaints``, plus ``net`` (recovered − cost), ``return``
    (sum of rewards, which includes shadow costs) and ``length`` (steps).

    Example:
        >>> import gymnasium as gym, collsim.envs
        >>> env = EpisodeStats(gym.make("collsim/Account-v0", horizon=3))
        >>> _ = env.reset(seed=0)
        >>> for _ in range(3):
        ...     _, _, term, trunc, info = env.step(0)
        ...     if term or trunc:
        ...         break
        >>> sorted(info["episode_stats"])[:3]
        ['complaints', 'contacts', 'cost']
    """

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self._totals = _zero()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the env and the totals."""
        self._totals = _zero()
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the env; add ``episode_stats`` to the info of an episode's last step."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        for key in STAT_KEYS:
            self._totals[key] += float(info.get(key, 0.0))
        self._totals["return"] += float(reward)
        self._totals["length"] += 1
        if terminated or truncated:
            info = dict(info)
            info["episode_stats"] = _finish(self._totals)
        return obs, reward, terminated, truncated, info


class VectorEpisodeStats(VectorWrapper):
    """Per-row episode totals for a same-step autoreset vector env (``AccountBatch-v0``).

    For rows that finish this step, ``info["final_info"]["episode_stats"]`` is a dict of
    arrays [N] (keys as :class:`EpisodeStats`) with mask ``_episode_stats``.
    """

    def __init__(self, env: VectorEnv) -> None:
        super().__init__(env)
        self._totals = {k: np.zeros(self.num_envs) for k in _zero()}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the env and every row's totals."""
        for value in self._totals.values():
            value[:] = 0.0
        return self.env.reset(seed=seed, options=options)

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """Step the env; add ``episode_stats`` for finished rows to ``final_info``."""
        obs, reward, terminated, truncated, info = self.env.step(actions)
        done = np.asarray(terminated) | np.asarray(truncated)
        final = info.get("final_info", {})
        for key in STAT_KEYS:
            live = np.where(
                info.get(f"_{key}", np.zeros(self.num_envs, bool)), info.get(key, 0.0), 0.0
            )
            last = np.where(
                final.get(f"_{key}", np.zeros(self.num_envs, bool)), final.get(key, 0.0), 0.0
            )
            self._totals[key] += live + last
        self._totals["return"] += np.asarray(reward, dtype=float)
        self._totals["length"] += 1
        if np.any(done):
            stats = {key: np.where(done, value, 0.0) for key, value in self._totals.items()}
            stats["net"] = np.where(done, self._totals["recovered"] - self._totals["cost"], 0.0)
            for key in list(stats):
                stats[f"_{key}"] = done.copy()
            final = dict(final)
            final["episode_stats"], final["_episode_stats"] = stats, done.copy()
            info = dict(info)
            info["final_info"] = final
            for value in self._totals.values():
                value[done] = 0.0
        return obs, reward, terminated, truncated, info


def _zero() -> dict[str, float]:
    return {
        "recovered": 0.0,
        "cost": 0.0,
        "contacts": 0.0,
        "complaints": 0.0,
        "return": 0.0,
        "length": 0.0,
    }


def _finish(totals: dict[str, float]) -> dict[str, float]:
    out = dict(totals)
    out["net"] = totals["recovered"] - totals["cost"]
    out["contacts"] = int(totals["contacts"])
    out["complaints"] = int(totals["complaints"])
    out["length"] = int(totals["length"])
    return out
