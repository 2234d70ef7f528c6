"""``collsim/Account-v0``: one delinquent account per episode, one decision per day."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from collsim.behaviour import in_collection
from collsim.compliance import RuleSet
from collsim.config import Scenario
from collsim.envs._common import (
    STEP_KEYS,
    AccountSource,
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
from collsim.portfolio import Latent, Portfolio
from collsim.sim.engine import Simulation
from collsim.valuation import account_values


class AccountEnv(gym.Env[np.ndarray, np.int64]):
    """One delinquent account, one step per day, until it leaves collection or the horizon.

    Each episode takes a fresh account from the scenario population (see
    :class:`~collsim.envs._common.AccountSource`: pools ``generate(scenario, seed,
    pool_size)`` whose seeds come from ``self.np_random``) and simulates it alone
    in a :class:`~collsim.sim.engine.Simulation` with capacity scaled to one
    account and a seed drawn from ``self.np_random``.

    * Observation: float32 ``Box(-inf, inf, (F,))``, the account's row of
      :func:`~collsim.features.observable_features` (columns ``FEATURE_NAMES``);
      never latent traits.
    * Action: ``Discrete(1 + K)``; 0 = no contact, ``a >= 1`` = option ``a - 1``
      (``k = channel * S + slot_index``).  :meth:`action_masks` gives the allowed
      actions; a masked action is executed as no contact and flagged
      ``info["masked_action"] = True``.
    * Reward: the day's contribution to ``portfolio_value`` (``info["value"]``:
      payments − the account's attempt and legal costs − complaints × complaint
      cost, plus the change in the account's terminal value, discounted to the
      episode's first day; :func:`~collsim.envs._common.step_values`; an episode's
      rewards sum to the account's ``portfolio_value`` terms minus its value at the
      start; staffed agent hours are no account's cost), minus optional shadow
      prices of the resources the planned contact uses
      (:class:`~collsim.envs._common.ShadowPrices`).  Ledger rows between two
      observations are counted, i.e. the decision day and the next morning
      (promises kept and instalments paid are booked in the morning).
    * Terminated: the account is cured, charged off, in legal action or closed (an
      account on a payment holiday is not terminated: it returns to collection).
      Truncated: ``horizon`` days elapsed.
    * ``info``: ``recovered``, ``cost``, ``contacts``, ``complaints``, ``value``,
      ``shadow_cost``, ``masked_action``, ``day``.

    Args:
        scenario: bundled scenario name, YAML path or Scenario.
        ruleset: rule set name, path or RuleSet (default: the scenario's).
        seed: seed used by the first ``reset()`` if it is given none.
        horizon: days per episode before truncation.
        pool_size: accounts per generated population pool.
        shadow_prices: resource-name prefix → price per unit used.
        population: fixed (portfolio, latent) to take accounts from, in order.
        render_mode: unused (no rendering).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        scenario: str | Path | Scenario = "default",
        ruleset: str | Path | RuleSet | None = None,
        seed: int | None = None,
        horizon: int = 60,
        pool_size: int = 4096,
        shadow_prices: Mapping[str, float] | None = None,
        population: tuple[Portfolio, Latent] | None = None,
        render_mode: str | None = None,
    ) -> None:
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        base = resolve_scenario(scenario)
        self.scenario = base.scaled_to(1)
        self.ruleset = resolve_ruleset(ruleset, base)
        self.horizon = horizon
        self.source = AccountSource(base, pool_size, population)
        self.shadow = ShadowPrices(shadow_prices)
        self.render_mode = render_mode
        self._default_seed = seed
        self.options = OptionSpace(np.asarray(base.sim.operating_hours, dtype=np.int64))
        self.n_actions = 1 + self.options.n_options
        self.observation_space = spaces.Box(-np.inf, np.inf, (len(FEATURE_NAMES),), np.float32)
        self.action_space = spaces.Discrete(self.n_actions)
        self.sim: Simulation | None = None
        self._snapshot: Snapshot | None = None
        self._mask = np.zeros(self.n_actions, dtype=bool)
        self._t = 0
        self._value = np.zeros(1)
        self.last_events: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode with a fresh account (a new pool when ``seed`` is given)."""
        if seed is None and self._default_seed is not None and self._np_random is None:
            seed = self._default_seed
        super().reset(seed=seed)
        if seed is not None:
            self.source.restart(self.np_random)
        self.sim = new_simulation(self.scenario, self.ruleset, self.source, self.np_random, 1)
        self._t = 0
        self._observe(self.sim.begin_day())
        self._value = account_values(self.sim)
        self.sim.ledger.clear()
        return self._obs(), {"day": int(self.sim.day)}

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Execute the day's action (masked → no contact), simulate the day, observe the next."""
        if self.sim is None or self._snapshot is None:
            raise RuntimeError("step() called before reset()")
        sim, snapshot = self.sim, self._snapshot
        a = int(action)
        masked = not (0 <= a < self.n_actions and bool(self._mask[a]))
        option = np.array([a - 1 if (a > 0 and not masked) else -1], dtype=np.int64)
        shadow = float(
            self.shadow.charge(snapshot.resources, snapshot.accounts.timezone, option)[0]
        )
        sim.finish_day(plan_of(option, snapshot))
        self._observe(sim.begin_day())
        self.last_events = sim.ledger.columns()
        totals = day_totals(self.last_events, 1)
        sim.ledger.clear()
        after = account_values(sim)
        value = float(step_values(totals, self._value, after, self._t, self.scenario.valuation)[0])
        self._value = after
        self._t += 1
        terminated = not bool(in_collection(sim.state.status[0]))
        truncated = not terminated and self._t >= self.horizon
        recovered, cost = float(totals.recovered[0]), float(totals.cost[0])
        info: dict[str, Any] = {
            "recovered": recovered,
            "cost": cost,
            "contacts": int(totals.contacts[0]),
            "complaints": int(totals.complaints[0]),
            "value": value,
            "shadow_cost": shadow,
            "masked_action": masked,
            "day": int(sim.day),
        }
        assert set(STEP_KEYS) <= set(info)
        return self._obs(), value - shadow, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """bool [1 + K]: allowed actions now (action 0, no contact, always allowed)."""
        return self._mask.copy()

    # ------------------------------------------------------------------ helpers
    def _observe(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._features = observable_features(snapshot)[0]
        self._mask = np.concatenate([[True], snapshot.option_mask()[0]])

    def _obs(self) -> np.ndarray:
        return self._features.copy()
