"""Hybrid RL + exact allocation: the RL policy scores, the allocation respects capacity.

Per account n and option k, the score is the policy's log-odds of k over no contact::

    score[n, k] = logit[n, 1 + k] - logit[n, 0] = log π(k | s_n) - log π(none | s_n)

(positive: the agent prefers the contact to leaving the account alone).  Each
resource r (agent pool-hour, channel budget) carries a shadow price ``λ_r ≥ 0`` in the
same units, and the day's plan is the exact optimum of::

    max Σ_n (score[n, k_n] - λ_{r(n, k_n)})   s.t. use_r ≤ capacity_r, masked options never

solved by :func:`collsim.policies.allocation.allocate` (``resource_of =
snapshot.resources.resource_by_zone``, ``group`` = time zone; or
:func:`~collsim.policies.allocation.allocate_with_budget` under a money budget).
Options with a non-positive priced score are not planned.

**Dual-price step.**  After each day the prices move by a projected subgradient step
of the Lagrangian dual of the capacity constraints::

    λ_r ← max(0, λ_r + η · (demand_r − capacity_r) / max(capacity_r, 1))

where ``demand_r`` is how many accounts would use r if capacity were unlimited at
today's prices (each account's best positively priced option).  A resource that is
over-demanded day after day becomes dearer, so only accounts whose preference for it
beats its price ask for it, and the others move to their next best option or none;
an under-demanded resource's price falls back to 0.  The exact allocation keeps each
day feasible whatever the prices.  ``price_history`` records the prices used each
day, with demand and use per resource (``resource_names`` names the columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collsim.plan import Plan, Snapshot
from collsim.policies.allocation import allocate_day
from collsim.policies.rl import LogitModel, RLPolicy, load_logit_model, model_name
from collsim.vocab import CHANNELS

__all__ = ["DayPrices", "HybridPolicy"]


@dataclass(frozen=True)
class DayPrices:
    """One day's shadow prices and resource use (arrays over the resources).

    Attributes:
        day: the local day.
        price: λ used for the day's allocation.
        demand: accounts that wanted each resource at those prices (no capacity).
        used: units allocated.
        capacity: units available.
    """

    day: int
    price: np.ndarray
    demand: np.ndarray
    used: np.ndarray
    capacity: np.ndarray


class HybridPolicy:
    """RL scores fed into the exact allocation, with dual prices for capacity.

    Args:
        model_path: as :class:`collsim.policies.rl.RLPolicy` (a LogitModel, ``.onnx``,
            ``rl_onnx`` artifact directory or ensemble ``.json``).
        step_size: η of the dual-price step (score units per unit of relative excess).
        use_prices: charge the prices in the allocation (False: prices are still
            computed and reported, the allocation uses the raw scores).
        policy_id: id written in plans (default ``hybrid:<file name>``).

    Attributes:
        prices: current λ per resource (None before the first day).
        resource_names: names of the resources the prices refer to.
        price_history: one :class:`DayPrices` per decided day.
    """

    def __init__(
        self,
        model_path: str | Path | Any,
        step_size: float = 0.2,
        use_prices: bool = True,
        policy_id: str | None = None,
    ) -> None:
        name = model_name(model_path)
        self.rl = RLPolicy(load_logit_model(model_path), policy_id=f"rl:{name}")
        self.policy_id = policy_id or f"hybrid:{name}"
        self.step_size = float(step_size)
        self.use_prices = use_prices
        self.prices: np.ndarray | None = None
        self.resource_names: tuple[str, ...] = ()
        self.price_history: list[DayPrices] = []

    @property
    def model(self) -> LogitModel:
        """The RL model whose logits are scored."""
        return self.rl.model

    def scores(self, snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray]:
        """Return (score float64 [N, K], mask bool [N, K]): log-odds of each option over none."""
        logits, mask = self.rl.logits(snapshot)
        allowed = mask[:, 1:]
        score = logits[:, 1:].astype(np.float64) - logits[:, :1].astype(np.float64)
        return np.where(allowed, score, 0.0), allowed

    def price_table(self) -> np.ndarray:
        """float [days, R]: the price history as a table (rows: days decided)."""
        if not self.price_history:
            return np.zeros((0, len(self.resource_names)))
        return np.stack([d.price for d in self.price_history])

    def decide(self, snapshot: Snapshot) -> Plan:
        """Return the exact allocation of the priced scores; then update the prices."""
        res, opts = snapshot.resources, snapshot.options
        n = snapshot.n
        zone = np.asarray(snapshot.accounts.timezone, dtype=np.int64)
        if self.prices is None or self.resource_names != res.names:
            self.prices = np.zeros(len(res.names))
            self.resource_names = res.names
        score, allowed = self.scores(snapshot)
        resource = res.resource_by_zone[zone]  # [N, K]
        charge = np.where(resource >= 0, self.prices[np.maximum(resource, 0)], 0.0)
        priced = score - charge if self.use_prices else score
        mask = allowed & (priced > 0)
        choice, _ = allocate_day(priced, mask, snapshot)
        rows = np.arange(n)
        self._dual_step(snapshot.day, priced, mask, resource, choice, res.capacity)
        value = np.where(choice >= 0, priced[rows, np.maximum(choice, 0)], 0.0)
        reasons = ["hybrid: no option worth its price or capacity"]
        reasons += [f"hybrid: {c}" for c in CHANNELS]
        reason = np.where(choice >= 0, 1 + np.maximum(choice, 0) // opts.n_slots, 0)
        return Plan.from_options(
            choice, opts, self.policy_id, reasons, reason.astype(np.int16), priority_score=value
        )

    def _dual_step(
        self,
        day: int,
        priced: np.ndarray,
        mask: np.ndarray,
        resource: np.ndarray,
        choice: np.ndarray,
        capacity: np.ndarray,
    ) -> None:
        """Record today's prices and use, then take the projected subgradient step."""
        assert self.prices is not None
        n_res = self.prices.size
        rows = np.arange(priced.shape[0])
        best = np.argmax(np.where(mask, priced, -np.inf), axis=1)
        wants = mask[rows, best]
        want_res = resource[rows[wants], best[wants]]
        demand = np.bincount(want_res[want_res >= 0], minlength=n_res)
        planned = choice >= 0
        used_res = resource[rows[planned], choice[planned]]
        used = np.bincount(used_res[used_res >= 0], minlength=n_res)
        cap = np.asarray(capacity, dtype=np.float64)
        self.price_history.append(DayPrices(day, self.prices.copy(), demand, used, cap.copy()))
        # a resource with no capacity today (e.g. unstaffed hours) is never allocated: no price
        excess = np.where(cap > 0, (demand - cap) / np.maximum(cap, 1.0), 0.0)
        self.prices = np.maximum(0.0, self.prices + self.step_size * excess)
