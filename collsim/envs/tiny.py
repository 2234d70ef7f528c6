"""The tiny collections MDP of :mod:`collsim.rl.tiny` as a Gymnasium env (a fixture).

A test and research fixture, deliberately not registered as a Gymnasium id:
construct :class:`TinyCollectionsEnv` directly.

The env samples the MDP (``FiniteMDP``) with ``self.np_random``; the observation is
the one-hot live state, the fraction of days left and the one-hot day: the optimal
policy of a finite horizon depends on the day, and with the day one-hot the policy
network can represent any day-dependent policy exactly (from the fraction alone it
has to carve ten steps out of one input).  The horizon is part of the problem, so
reaching it *terminates* the episode (no bootstrapping beyond it).  ``action_masks()`` gives the
MDP's mask; a masked action is executed as no contact and flagged in
``info["masked_action"]`` (the checkers sample actions without masks).

The reward of a step is the MDP's *expected* reward of (state, action) by default
(same values and optimal policy as the sampled one, less variance); pass
``sampled_reward=True`` for ``amount_due · 1[paid] − cost``; ``reward_scale``
multiplies it (what the optimiser sees; the optimal policy is the same).
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
)


class TinyCollectionsEnv(gym.Env[np.ndarray, np.int64]):
    """One account of the tiny collections MDP per episode.

    Args:
        params: MDP parameters (default :class:`~collsim.rl.tiny.TinyParams`).
        horizon: days per episode.
        sampled_reward: reward ``amount_due · 1[paid] − cost`` instead of its expectation.
        reward_scale: multiplies every reward.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        params: TinyParams | None = None,
        horizon: int = TINY_HORIZON,
        sampled_reward: bool = False,
        reward_scale: float = 1.0,
    ) -> None:
        self.params = params or TinyParams()
        self.mdp: FiniteMDP = collections_mdp(self.params)
        self.horizon = horizon
        self.sampled_reward = sampled_reward
        self.reward_scale = reward_scale
        self.observation_space = spaces.Box(0.0, 1.0, (N_LIVE + 1 + horizon,), np.float32)
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
        info = {"masked_action": masked, "state": y}
        return obs, reward * self.reward_scale, terminated, False, info

    def action_masks(self) -> np.ndarray:
        """bool [A]: the actions allowed in the current state."""
        state = min(self._state, self.mdp.n_states - 1)
        return self.mdp.mask[state].copy()


def observation(state: int, t: int, horizon: int) -> np.ndarray:
    """float32 [N_LIVE + 1 + horizon]: one-hot live state, fraction of days left, one-hot day.

    At the end of the episode (``t == horizon``) the day part is all zeros.
    """
    obs = np.zeros(N_LIVE + 1 + horizon, dtype=np.float32)
    if state < N_LIVE:
        obs[state] = 1.0
    obs[N_LIVE] = (horizon - t) / horizon
    if t < horizon:
        obs[N_LIVE + 1 + t] = 1.0
    return obs
