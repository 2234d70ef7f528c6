"""Machinery shared by the environments: account sources, day totals, shadow prices.

Nothing here has dynamics: the engine simulates, these helpers only read its
Snapshot and ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from collsim.compliance import RuleSet, load_ruleset
from collsim.config import Scenario, ValuationConfig, load_scenario
from collsim.ledger import EVENT
from collsim.plan import Plan, Resources, Snapshot
from collsim.portfolio import Latent, Portfolio, generate
from collsim.sim.engine import Simulation
from collsim.valuation import step_value
from collsim.vocab import Outcome

SEED_HIGH = 2**62
"""Exclusive upper bound of the seeds the environments draw from their RNG."""

POLICY_ID = "env"
"""``Plan.policy_id`` of the plans the environments build."""

REASONS = ["no contact", "agent action"]
"""Reason table of the plans the environments build."""

STEP_KEYS = ("recovered", "cost", "contacts", "complaints", "value", "shadow_cost")
"""Per-step figures every environment reports in ``info`` (per account in the batch).

``value`` is the step's contribution to ``portfolio_value`` (see :func:`step_values`);
the reward is ``value − shadow_cost``.
"""

_PAYMENT = EVENT["payment"]
_ATTEMPT = EVENT["attempt"]


def resolve_scenario(scenario: str | Path | Scenario) -> Scenario:
    """Return a Scenario from a bundled name, a YAML path or a Scenario."""
    return scenario if isinstance(scenario, Scenario) else load_scenario(scenario)


def resolve_ruleset(ruleset: str | Path | RuleSet | None, scenario: Scenario) -> RuleSet:
    """Return a RuleSet from a name, a path, a RuleSet or the scenario's default."""
    if isinstance(ruleset, RuleSet):
        return ruleset
    return load_ruleset(ruleset if ruleset is not None else scenario.ruleset)


def draw_seed(rng: np.random.Generator) -> int:
    """Draw one non-negative seed from ``rng``."""
    return int(rng.integers(0, SEED_HIGH))


def new_simulation(
    scenario: Scenario, ruleset: RuleSet, source: AccountSource, rng: np.random.Generator, k: int
) -> Simulation:
    """A Simulation of ``k`` accounts from ``source``; actions come from the env, not a policy."""
    portfolio, latent = source.take(k, rng)
    return Simulation(
        scenario,
        seed=draw_seed(rng),
        ruleset=ruleset,
        portfolio=portfolio,
        latent=latent,
    )


class AccountSource:
    """Fresh delinquent accounts, taken in order from population pools.

    A pool is ``generate(scenario, pool_seed, pool_size)``; its rows are i.i.d.
    draws from the scenario population, so taking them in order gives fresh
    accounts.  When a pool is used up, the next pool's seed is drawn from the
    environment's RNG.  With a fixed ``population`` the rows are taken in order
    and wrap around.

    Args:
        scenario: the scenario whose population is sampled.
        pool_size: accounts per generated pool.
        population: a fixed (portfolio, latent) to take rows from instead.
    """

    def __init__(
        self, scenario: Scenario, pool_size: int, population: tuple[Portfolio, Latent] | None = None
    ) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}")
        self.scenario = scenario
        self.pool_size = pool_size
        self.fixed = population
        self._pool: tuple[Portfolio, Latent] | None = population
        self._next = 0

    def restart(self, rng: np.random.Generator) -> None:
        """Start over: a new pool seeded from ``rng`` (or the fixed population from row 0)."""
        self._next = 0
        if self.fixed is None:
            self._pool = generate(self.scenario, draw_seed(rng), self.pool_size)

    def take(self, k: int, rng: np.random.Generator) -> tuple[Portfolio, Latent]:
        """Return the next ``k`` accounts (a new pool from ``rng`` whenever one is used up)."""
        if self._pool is None:
            self.restart(rng)
        rows: list[tuple[Portfolio, Latent]] = []
        left = k
        while left > 0:
            assert self._pool is not None
            size = self._pool[0].n
            if self._next >= size:
                self._next = 0
                if self.fixed is None:
                    self._pool = generate(self.scenario, draw_seed(rng), self.pool_size)
                    continue
            idx = np.arange(self._next, min(self._next + left, size))
            rows.append((self._pool[0].take(idx), self._pool[1].take(idx)))
            self._next += idx.size
            left -= idx.size
        if len(rows) == 1:
            return rows[0]
        return _concat_portfolio([r[0] for r in rows]), _concat_latent([r[1] for r in rows])


def _concat(parts: list[object], cls: type) -> object:
    first = parts[0]
    values = {}
    for name in first.__dataclass_fields__:  # type: ignore[attr-defined]
        value = getattr(first, name)
        if isinstance(value, np.ndarray):
            values[name] = np.concatenate([getattr(p, name) for p in parts])
        else:
            values[name] = value
    return cls(**values)


def _concat_portfolio(parts: list[Portfolio]) -> Portfolio:
    out = _concat(list(parts), Portfolio)
    assert isinstance(out, Portfolio)
    return out


def _concat_latent(parts: list[Latent]) -> Latent:
    out = _concat(list(parts), Latent)
    assert isinstance(out, Latent)
    return out


@dataclass(frozen=True)
class DayTotals:
    """Per-account figures of the ledger rows between two observations (arrays [N])."""

    recovered: np.ndarray
    cost: np.ndarray
    contacts: np.ndarray
    complaints: np.ndarray
    shared_cost: float = 0.0
    """Costs of no one account: staffed agent hours (``agent_capacity`` rows)."""


def day_totals(events: Mapping[str, np.ndarray], n: int) -> DayTotals:
    """Sum ledger columns per account: payments, the account's costs, attempts, complaints.

    An account's costs are every cost its rows carry (attempts, legal filings and
    court costs); costs of no account (staffed agent hours) are ``shared_cost``.

    Args:
        events: ledger columns (``Ledger.columns()`` or ``Ledger.since(mark)``).
        n: number of accounts (rows of the Simulation).
    """
    account, event = events["account"], events["event"]
    row = account >= 0
    pay = row & (event == _PAYMENT)
    attempt = row & (event == _ATTEMPT)
    complaint = attempt & (events["outcome"] == Outcome.COMPLAINT)
    return DayTotals(
        recovered=np.bincount(account[pay], weights=events["amount"][pay], minlength=n),
        cost=np.bincount(account[row], weights=events["cost"][row], minlength=n),
        contacts=np.bincount(account[attempt], minlength=n),
        complaints=np.bincount(account[complaint], minlength=n),
        shared_cost=float(events["cost"][~row].sum()),
    )


def step_values(
    totals: DayTotals,
    value_before: np.ndarray,
    value_after: np.ndarray,
    days: np.ndarray | int,
    valuation: ValuationConfig,
) -> np.ndarray:
    """float [N]: each account's contribution of one step to ``portfolio_value``.

    :func:`collsim.valuation.step_value` of the account's net cash (payments − its
    own costs), complaints and terminal value before and after the step, discounted
    to the episode's first day (``days`` = steps since then).  Over an episode the
    steps sum to the account's discounted cash, costs and complaint costs plus its
    discounted terminal value at the end, minus its value at the start.
    """
    return step_value(
        totals.recovered - totals.cost,
        totals.complaints,
        value_before,
        value_after,
        days,
        valuation,
    )


class ShadowPrices:
    """Prices per unit of scarce resource, charged in the reward (constrained RL).

    A Lagrangian relaxation of the capacity constraints: the reward of a step is
    the portfolio-value contribution minus ``Σ_r λ_r · use_r``, where ``use_r`` is the number of
    planned contacts that use resource ``r`` (Abe et al., "Optimizing debt
    collections using constrained reinforcement learning", KDD 2010).  Prices are
    given per resource-name prefix, e.g. ``{"pool:": 0.5, "budget:sms": 0.01}``;
    a resource takes the price of its longest matching prefix (0 if none).

    Args:
        prices: resource-name prefix → price per unit used.
    """

    def __init__(self, prices: Mapping[str, float] | None) -> None:
        self.prices = dict(prices or {})
        self._cache: dict[tuple[str, ...], np.ndarray] = {}

    def per_resource(self, names: tuple[str, ...]) -> np.ndarray:
        """Return float [R]: the price of each named resource."""
        if names not in self._cache:
            price = np.zeros(len(names))
            for r, name in enumerate(names):
                best = -1
                for prefix, value in self.prices.items():
                    if name.startswith(prefix) and len(prefix) > best:
                        best, price[r] = len(prefix), float(value)
            self._cache[names] = price
        return self._cache[names]

    def charge(self, resources: Resources, timezone: np.ndarray, option: np.ndarray) -> np.ndarray:
        """Return float [N]: the shadow cost of each account's planned option (-1: none)."""
        if not self.prices:
            return np.zeros(option.shape[0])
        planned = option >= 0
        resource = np.full(option.shape[0], -1, dtype=np.int64)
        resource[planned] = resources.resource_by_zone[timezone[planned], option[planned]]
        price = self.per_resource(resources.names)
        return np.where(resource >= 0, price[np.maximum(resource, 0)], 0.0)


def plan_of(
    option: np.ndarray,
    snapshot: Snapshot,
    priority: np.ndarray | None = None,
    treatment: tuple[np.ndarray, np.ndarray] | None = None,
) -> Plan:
    """Return the Plan contacting each account with ``option`` (-1 = no contact).

    ``treatment`` gives (offer, variant) codes per account (None: none, standard).
    """
    reason = (option >= 0).astype(np.int16)
    offer, variant = treatment if treatment is not None else (None, None)
    return Plan.from_options(
        option,
        snapshot.options,
        POLICY_ID,
        REASONS,
        reason,
        priority_score=priority,
        offer=offer,
        variant=variant,
    )
