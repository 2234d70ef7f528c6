"""``collsim/Portfolio-v0``: the whole portfolio, one step a day; scores in, a feasible Plan out."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from collsim.behaviour import in_collection
from collsim.capacity import build_resources
from collsim.compliance import RuleSet
from collsim.config import Scenario
from collsim.envs._common import (
    ShadowPrices,
    day_totals,
    draw_seed,
    plan_of,
    resolve_ruleset,
    resolve_scenario,
    step_values,
)
from collsim.features import FEATURE_NAMES, observable_features
from collsim.plan import OptionSpace, Snapshot
from collsim.policies.base import fill_capacity
from collsim.portfolio import Latent, Portfolio, day_number, generate
from collsim.sim.engine import Simulation
from collsim.treatments import daily_discount_factors
from collsim.valuation import account_values

ALLOCATORS = ("greedy", "exact")


class PortfolioEnv(gym.Env[dict[str, Any], np.ndarray]):
    """The whole portfolio as one agent: a score per account × option each day.

    * Observation: ``Dict(features=Box(-inf, inf, (N, F)), capacity=Box(0, inf, (R,)))``,
      float32.  ``features`` is :func:`~collsim.features.observable_features` of every
      account; ``capacity`` is the day's units of each scarce resource (agent
      pool-hours and channel budgets, ``Resources.names`` as of ``reset``), all still
      available when the plan is made.
    * Action: ``Box(-1, 1, (N, K))`` scores.  Only order and sign matter: an account
      is contacted only with an allowed option whose score is positive.  The env
      turns scores into a compliance- and capacity-feasible Plan:
      ``allocator="greedy"`` gives each account its best-scored allowed option by
      :func:`~collsim.policies.base.fill_capacity` (rounds over each account's
      ``max_candidates`` best-scored options in order; accounts compete in order of
      their best score);
      ``allocator="exact"`` maximises the total score under capacity with
      :func:`collsim.policies.allocation.allocate` (min-cost flow).
    * Reward: the day's contribution to the run's ``portfolio_value``
      (``info["value"]``: payments − every cost of the day, staffed agent hours
      included − complaints × complaint cost + the change in the accounts' terminal
      value, discounted to the first day; an episode's rewards sum to its
      ``portfolio_value`` minus the portfolio's value at the start), minus optional
      shadow prices (see :class:`~collsim.envs._common.ShadowPrices`).
    * Terminated: no account is still in collection.  Truncated: ``horizon`` days.
    * ``info``: ``recovered``, ``cost`` (staffed hours included), ``contacts``,
      ``complaints``, ``value``, ``shadow_cost``,
      ``masked_scores`` (positive scores on masked options, dropped),
      ``masked_action`` (``masked_scores > 0``), ``planned``, ``day``.

    Args:
        scenario: bundled scenario name, YAML path or Scenario.
        ruleset: rule set name, path or RuleSet (default: the scenario's).
        seed: seed used by the first ``reset()`` if it is given none.
        horizon: days per episode (default: the scenario's ``sim.days``).
        n_accounts: portfolio size (default: the scenario's); capacity scales with it.
        allocator: ``"greedy"`` or ``"exact"``.
        max_candidates: options per account the greedy allocator tries, best score first.
        shadow_prices: resource-name prefix → price per unit used.
        population: a fixed (portfolio, latent) instead of a generated one.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        scenario: str | Path | Scenario = "default",
        ruleset: str | Path | RuleSet | None = None,
        seed: int | None = None,
        horizon: int | None = None,
        n_accounts: int | None = None,
        allocator: str = "greedy",
        max_candidates: int = 8,
        shadow_prices: Mapping[str, float] | None = None,
        population: tuple[Portfolio, Latent] | None = None,
        render_mode: str | None = None,
    ) -> None:
        if allocator not in ALLOCATORS:
            raise ValueError(f"allocator must be one of {ALLOCATORS}, got {allocator!r}")
        base = resolve_scenario(scenario)
        n = (
            population[0].n
            if population is not None
            else int(n_accounts or base.portfolio.n_accounts)
        )
        self.scenario = base.scaled_to(n) if n != base.portfolio.n_accounts else base
        self.ruleset = resolve_ruleset(ruleset, base)
        self.n = n
        self.horizon = int(horizon if horizon is not None else base.sim.days)
        self.allocator = allocator
        self.max_candidates = max(int(max_candidates), 1)
        self.shadow = ShadowPrices(shadow_prices)
        self.population = population
        self.render_mode = render_mode
        self._default_seed = seed
        self.options = OptionSpace(np.asarray(base.sim.operating_hours, dtype=np.int64))
        k = self.options.n_options
        zones = (
            population[0].timezones if population is not None else tuple(base.portfolio.timezones)
        )
        self.resource_names = build_resources(
            self.scenario.capacity,
            self.options,
            zones,
            day_number(base.sim.start_date),
            self.scenario.channels,
        ).names
        self.observation_space: spaces.Dict = spaces.Dict(
            {
                "features": spaces.Box(-np.inf, np.inf, (n, len(FEATURE_NAMES)), np.float32),
                "capacity": spaces.Box(0.0, np.inf, (len(self.resource_names),), np.float32),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, (n, k), np.float32)
        self.sim: Simulation | None = None
        self._snapshot: Snapshot | None = None
        self._t = 0
        self._value = np.zeros(n)
        self.last_events: dict[str, np.ndarray] = {}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode: a portfolio (generated from ``self.np_random``) on day 0."""
        if seed is None and self._default_seed is not None and self._np_random is None:
            seed = self._default_seed
        super().reset(seed=seed)
        if self.population is not None:
            portfolio, latent = self.population
        else:
            portfolio, latent = generate(self.scenario, draw_seed(self.np_random), self.n)
        self.sim = Simulation(
            self.scenario,
            seed=draw_seed(self.np_random),
            ruleset=self.ruleset,
            portfolio=portfolio,
            latent=latent,
        )
        self._t = 0
        self._snapshot = self.sim.begin_day()
        self._value = account_values(self.sim)
        self.sim.ledger.clear()
        return self._obs(), {"day": int(self.sim.day)}

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Turn scores into a feasible plan, simulate the day, observe the next."""
        if self.sim is None or self._snapshot is None:
            raise RuntimeError("step() called before reset()")
        sim, snapshot = self.sim, self._snapshot
        score = np.asarray(action, dtype=np.float64).reshape(self.n, self.options.n_options)
        score = np.nan_to_num(score, nan=0.0)
        mask = snapshot.option_mask()
        masked_scores = int(np.count_nonzero((score > 0) & ~mask))
        option = self.decode(score, snapshot, mask)
        shadow = self.shadow.charge(snapshot.resources, snapshot.accounts.timezone, option)
        best = np.where(option >= 0, score[np.arange(self.n), np.maximum(option, 0)], 0.0)
        sim.finish_day(plan_of(option, snapshot, priority=best))
        self._snapshot = sim.begin_day()
        self.last_events = sim.ledger.columns()
        totals = day_totals(self.last_events, self.n)
        sim.ledger.clear()
        after = account_values(sim)
        valuation = self.scenario.valuation
        staffed = totals.shared_cost * float(
            daily_discount_factors(np.asarray(self._t), valuation.npv_rate_annual)
        )
        value = float(step_values(totals, self._value, after, self._t, valuation).sum()) - staffed
        self._value = after
        self._t += 1
        terminated = not bool(np.any(in_collection(sim.state.status)))
        truncated = not terminated and self._t >= self.horizon
        recovered = float(totals.recovered.sum())
        cost = float(totals.cost.sum()) + totals.shared_cost
        info: dict[str, Any] = {
            "recovered": recovered,
            "cost": cost,
            "contacts": int(totals.contacts.sum()),
            "complaints": int(totals.complaints.sum()),
            "value": value,
            "shadow_cost": float(shadow.sum()),
            "masked_scores": masked_scores,
            "masked_action": masked_scores > 0,
            "planned": int(np.count_nonzero(option >= 0)),
            "day": int(sim.day),
        }
        return self._obs(), value - info["shadow_cost"], terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """bool [N, K]: options allowed today (no contact: all scores ≤ 0)."""
        if self._snapshot is None:
            raise RuntimeError("action_masks() called before reset()")
        return self._snapshot.option_mask()

    def decode(self, score: np.ndarray, snapshot: Snapshot, mask: np.ndarray) -> np.ndarray:
        """Return int [N]: each account's option (-1 none) from scores, feasible by construction."""
        wanted = mask & (score > 0)
        if self.allocator == "exact":
            from collsim.policies.allocation import allocate

            value = np.where(wanted, score, 0.0)
            return allocate(
                value,
                wanted,
                snapshot.resources.resource_by_zone,
                snapshot.resources.capacity,
                group=snapshot.accounts.timezone.astype(np.int64),
            )
        keyed = np.where(wanted, score, -np.inf)
        most = max(int(wanted.sum(axis=1).max(initial=0)), 1)
        width = int(min(keyed.shape[1], most, self.max_candidates))
        if width < keyed.shape[1]:  # the best `width` options, then in score order
            top = np.argpartition(-keyed, width - 1, axis=1)[:, :width]
            within = np.argsort(-np.take_along_axis(keyed, top, axis=1), axis=1, kind="stable")
            order = np.take_along_axis(top, within, axis=1)
        else:
            order = np.argsort(-keyed, axis=1, kind="stable")
        candidates = np.where(np.take_along_axis(wanted, order, axis=1), order, -1)
        priority = np.where(wanted.any(axis=1), keyed.max(axis=1, initial=-np.inf), -np.inf)
        group = np.where(
            wanted.any(axis=1), np.arange(self.n), -1
        )  # one candidate list per account
        option, _ = fill_capacity(snapshot, candidates, group, np.nan_to_num(priority, neginf=-1.0))
        return option

    def _obs(self) -> dict[str, np.ndarray]:
        assert self._snapshot is not None
        res = self._snapshot.resources
        by_name = dict(zip(res.names, res.capacity.tolist(), strict=True))
        capacity = np.array(
            [by_name.get(name, 0) for name in self.resource_names], dtype=np.float32
        )
        return {"features": observable_features(self._snapshot), "capacity": capacity}
