"""``collsim/AccountBatch-v0``: N accounts stepped together as one Gymnasium VectorEnv."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from collsim.behaviour import in_collection
from collsim.compliance import RuleSet
from collsim.config import Scenario
from collsim.envs._common import (
    STEP_KEYS,
    AccountSource,
    DayTotals,
    ShadowPrices,
    day_totals,
    new_simulation,
    plan_of,
    resolve_ruleset,
    resolve_scenario,
    step_values,
)
from collsim.features import FEATURE_NAMES, observable_features
from collsim.plan import OptionSpace, Snapshot
from collsim.policies.action_layout import ActionLayout
from collsim.portfolio import Latent, Portfolio
from collsim.sim.engine import Simulation
from collsim.valuation import account_values


class AccountBatchEnv(VectorEnv[np.ndarray, np.ndarray, np.ndarray]):
    """N independent account episodes in one Simulation of N rows (same-step autoreset).

    Row ``i`` is sub-environment ``i``: the single-account problem of
    :class:`~collsim.envs.account.AccountEnv` (same observation, action, reward,
    termination and ``info`` keys).  A row whose episode ends is refilled in the same
    step with the next fresh account (``Simulation.replace_accounts``); the
    returned observation is the new account's, and the finished episode's last
    observation and info are in ``info["final_obs"]`` / ``info["final_info"]``
    (masks ``_final_obs`` / ``_final_info``), the Gymnasium 1.x same-step
    convention.  The per-step keys (``recovered``, ``cost``, ...) are at the top
    level of ``info`` for rows that did not finish and in ``final_info`` for rows
    that did.

    Capacity is the scenario's scaled to N accounts, shared by the rows (rows
    compete for agent hours and budgets; ties are served by row index).

    Treatments (``treatments=True``; default False, the action above): the action is
    ``Discrete(1 + Σ_options treatments of its channel)``, a flat index over (option,
    offer, variant) triples (:meth:`ActionLayout.from_scenario
    <collsim.policies.action_layout.ActionLayout.from_scenario>`, stored in
    ``layout``): the agent chooses the treatment too, and the plan the engine gets
    carries it.  The mask is the option mask AND the scenario's treatment support at
    the account's DPD AND the rule set's treatment rules (the same function
    :class:`~collsim.policies.rl.RLPolicy` masks with), so a masked action meets no
    compliance or treatment block.  The observation is unchanged.

    Seeding (same as :class:`AccountEnv`, so the two can be compared): ``reset(seed=s)``
    draws a pool seed, takes rows ``0..N-1`` of the pool, then draws the Simulation's
    seed.  Hence row 0 starts with the account and the Simulation seed of
    ``AccountEnv.reset(seed=s)`` (with the same ``pool_size``), and rows ``1..N-1``
    get the accounts of that env's episodes ``2..N``.  Behaviour draws are keyed by
    (seed, row, day), so row 0's first episode equals the single env's first episode
    under the same actions whenever row 0 is not denied capacity by the other rows.
    Replacements start on later days and take the pool's next accounts.

    Args:
        num_envs: N, the number of rows.
        scenario: bundled scenario name, YAML path or Scenario.
        ruleset: rule set name, path or RuleSet (default: the scenario's).
        seed: seed used by the first ``reset()`` if it is given none.
        horizon: days per episode before truncation.
        pool_size: accounts per generated population pool.
        shadow_prices: resource-name prefix → price per unit used.
        population: fixed (portfolio, latent) to take accounts from, in order.
        treatments: actions are (option, offer, variant) triples (see above).
        max_episode_steps: alias of ``horizon`` (set by ``gymnasium.make_vec``).
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        num_envs: int = 1024,
        scenario: str | Path | Scenario = "default",
        ruleset: str | Path | RuleSet | None = None,
        seed: int | None = None,
        horizon: int = 60,
        pool_size: int = 4096,
        shadow_prices: Mapping[str, float] | None = None,
        population: tuple[Portfolio, Latent] | None = None,
        max_episode_steps: int | None = None,
        treatments: bool = False,
    ) -> None:
        if max_episode_steps is not None:
            horizon = max_episode_steps
        if num_envs < 1 or horizon < 1:
            raise ValueError(f"num_envs and horizon must be >= 1, got {num_envs}, {horizon}")
        base = resolve_scenario(scenario)
        self.num_envs = num_envs
        self.scenario = base.scaled_to(num_envs)
        self.ruleset = resolve_ruleset(ruleset, base)
        self.horizon = horizon
        self.source = AccountSource(base, pool_size, population)
        self.shadow = ShadowPrices(shadow_prices)
        self.render_mode = None
        self._default_seed = seed
        self.options = OptionSpace(np.asarray(base.sim.operating_hours, dtype=np.int64))
        self.layout = (
            ActionLayout.from_scenario(base) if treatments else ActionLayout.plain(self.options)
        )
        """What each action means (plain: ``a = 1 + option``, no treatment)."""
        self.n_actions = self.layout.n_actions
        self.single_observation_space = spaces.Box(
            -np.inf, np.inf, (len(FEATURE_NAMES),), np.float32
        )
        self.single_action_space = spaces.Discrete(self.n_actions)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.sim: Simulation | None = None
        self._snapshot: Snapshot | None = None
        self._features = np.zeros((num_envs, len(FEATURE_NAMES)), dtype=np.float32)
        self._mask = np.zeros((num_envs, self.n_actions), dtype=bool)
        self._t = np.zeros(num_envs, dtype=np.int64)
        self._value = np.zeros(num_envs)
        self.last_events: dict[str, np.ndarray] = {}
        """Ledger rows of the last step (before refilled rows' ``start`` events)."""

    # ------------------------------------------------------------------ API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start N fresh episodes (a new pool when ``seed`` is given)."""
        if seed is None and self._default_seed is not None and self._np_random is None:
            seed = self._default_seed
        super().reset(seed=seed)
        rng = self.np_random
        if seed is not None:
            self.source.restart(rng)
        sim = new_simulation(self.scenario, self.ruleset, self.source, rng, self.num_envs)
        self.sim = sim
        self._t[:] = 0
        self._observe(sim.begin_day())
        self._value = account_values(sim)
        sim.ledger.clear()
        return self._features.copy(), {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Execute every row's action, simulate the day, refill finished rows, observe."""
        if self.sim is None or self._snapshot is None:
            raise RuntimeError("step() called before reset()")
        sim, snapshot, n = self.sim, self._snapshot, self.num_envs
        a = np.asarray(actions, dtype=np.int64).reshape(n)
        in_range = (a >= 0) & (a < self.n_actions)
        allowed = np.zeros(n, dtype=bool)
        allowed[in_range] = self._mask[np.flatnonzero(in_range), a[in_range]]
        masked = ~allowed
        act = np.where(allowed & (a > 0), a - 1, -1)
        option = self.layout.option_of(act)
        shadow = self.shadow.charge(snapshot.resources, snapshot.accounts.timezone, option)
        sim.finish_day(plan_of(option, snapshot, treatment=self._treatment(act)))
        self._observe(sim.begin_day())
        self.last_events = sim.ledger.columns()
        totals = day_totals(self.last_events, n)
        sim.ledger.clear()
        after = account_values(sim)
        value = step_values(totals, self._value, after, self._t, self.scenario.valuation)
        self._value = after
        self._t += 1
        terminated = ~in_collection(sim.state.status)
        truncated = ~terminated & (self._t >= self.horizon)
        reward = value - shadow
        done = terminated | truncated
        infos = self._infos(totals, value, shadow, masked, ~done, {})
        if np.any(done):
            idx = np.flatnonzero(done)
            final_obs = np.full(n, None, dtype=object)
            for i in idx.tolist():
                final_obs[i] = self._features[i].copy()
            infos["final_obs"], infos["_final_obs"] = final_obs, done.copy()
            infos["final_info"] = self._infos(totals, value, shadow, masked, done, {})
            infos["_final_info"] = done.copy()
            self._replace(idx)
        return self._features.copy(), reward, terminated, truncated, infos

    def action_masks(self) -> np.ndarray:
        """bool [N, A]: allowed actions of each row now (action 0 always allowed)."""
        return self._mask.copy()

    def close(self, **kwargs: Any) -> None:
        """Release the Simulation."""
        self.sim = None
        self._snapshot = None

    # ------------------------------------------------------------------ helpers
    def _infos(
        self,
        totals: DayTotals,
        value: np.ndarray,
        shadow: np.ndarray,
        masked: np.ndarray,
        rows: np.ndarray,
        infos: dict[str, Any],
    ) -> dict[str, Any]:
        assert self.sim is not None
        values = {
            "recovered": totals.recovered,
            "cost": totals.cost,
            "contacts": totals.contacts,
            "complaints": totals.complaints,
            "value": value,
            "shadow_cost": shadow,
            "masked_action": masked,
            "day": np.full(self.num_envs, self.sim.day, dtype=np.int64),
        }
        assert set(STEP_KEYS) <= set(values)
        for key, value in values.items():
            infos[key] = np.where(rows, value, np.zeros_like(value))
            infos[f"_{key}"] = rows.copy()
        return infos

    def _replace(self, idx: np.ndarray) -> None:
        """Put fresh accounts in rows ``idx`` and refresh their part of today's snapshot."""
        assert self.sim is not None and self._snapshot is not None
        sim, snapshot = self.sim, self._snapshot
        portfolio, latent = self.source.take(idx.size, self.np_random)
        # The engine recomputes these rows of today's snapshot (active, mask).
        sim.replace_accounts(idx, portfolio, latent)
        sim.ledger.clear()
        self._t[idx] = 0
        self._value[idx] = account_values(sim)[idx]
        self._observe(snapshot)

    def _treatment(self, act: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(offer, variant) codes of actions ``act`` (``a - 1``, -1 none); None if plain."""
        return None if self.layout.is_plain else self.layout.treatment_of(act)

    def _observe(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._features = observable_features(snapshot)
        options = np.empty((self.num_envs, 1 + self.options.n_options), dtype=bool)
        options[:, 0] = True
        options[:, 1:] = snapshot.option_mask()
        self._mask = self.layout.mask(options, snapshot, np.arange(self.num_envs))
