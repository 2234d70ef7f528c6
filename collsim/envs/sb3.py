"""A thin stable-baselines3 ``VecEnv`` over a same-step autoreset Gymnasium vector env.

SB3 does not accept a ``gymnasium.vector.VectorEnv``; this adapter translates the
batched ``collsim/AccountBatch-v0`` to SB3's conventions: ``infos`` is a list of
dicts with ``terminal_observation`` and ``TimeLimit.truncated`` for finished rows,
``get_attr`` raises ``AttributeError`` for unknown names (so ``has_attr`` works) and
``env_method("action_masks")`` returns one mask per row (what sb3-contrib's
MaskablePPO reads every step).

Example:
    >>> import gymnasium as gym, collsim.envs
    >>> venv = SB3VecEnv(gym.make_vec("collsim/AccountBatch-v0", num_envs=4))
    >>> venv.seed(0)
    [0, 1, 2, 3]
    >>> venv.reset().shape[0]
    4
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn


class SB3VecEnv(VecEnv):
    """Adapter: a Gymnasium same-step autoreset ``VectorEnv`` as an SB3 ``VecEnv``.

    Args:
        vector_env: e.g. ``gymnasium.make_vec("collsim/AccountBatch-v0", num_envs=1024)``.
    """

    def __init__(self, vector_env: VectorEnv) -> None:
        self.venv = vector_env
        super().__init__(
            vector_env.num_envs, vector_env.single_observation_space, vector_env.single_action_space
        )
        self._actions: np.ndarray | None = None

    def reset(self) -> VecEnvObs:
        """Reset every row (seeded by :meth:`seed` if it was called)."""
        seed = self._seeds[0]
        obs, _ = self.venv.reset(seed=seed)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return np.asarray(obs)

    def step_async(self, actions: np.ndarray) -> None:
        """Remember the actions for :meth:`step_wait`."""
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        """Step every row; finished rows are already reset (same-step autoreset)."""
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        self._actions = None
        terminated, truncated = np.asarray(terminated), np.asarray(truncated)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if np.any(dones):
            final_obs = info["final_obs"]
            for i in np.flatnonzero(dones).tolist():
                infos[i]["terminal_observation"] = final_obs[i]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return np.asarray(obs), np.asarray(reward, dtype=np.float32), dones, infos

    def close(self) -> None:
        """Close the vector env."""
        self.venv.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Return the vector env's attribute once per index (``AttributeError`` if absent)."""
        value = getattr(self.venv, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the vector env (shared by all rows)."""
        setattr(self.venv, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call a vector-env method; a result with one row per env is split per index."""
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        idx = list(self._get_indices(indices))
        if isinstance(result, np.ndarray) and result.ndim >= 1 and result.shape[0] == self.num_envs:
            return [result[i] for i in idx]
        return [result for _ in idx]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """Rows are not separate wrapped envs: always False."""
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        """No rendering."""
        return [None for _ in range(self.num_envs)]
