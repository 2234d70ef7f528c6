"""``check_policy``: check a policy against the decide contract (like Gymnasium's ``check_env``).

A policy (:class:`collsim.plan.Policy`) turns a day's :class:`~collsim.plan.Snapshot`
into a :class:`~collsim.plan.Plan`.  :func:`check_policy` runs it on one snapshot
and checks, in order:

1. ``protocol`` — it has a string ``policy_id`` and a callable ``decide``, and
   ``decide`` returns a ``Plan``;
2. ``length`` — every plan column has one row per account of the snapshot;
3. ``columns`` — column dtypes (integer codes, float values, bool holdout), channel
   and reason codes in range, no slot hour or treatment on a row without contact,
   propensities in (0, 1];
4. ``mask`` — every planned contact is an option the snapshot's compliance mask
   allows (an inactive account has an all-False mask, so it is never contacted);
5. ``capacity`` — no resource (agent pool-hour, channel budget) gets more planned
   contacts than its capacity, and the planned cost fits the money budget;
6. ``determinism`` — the same snapshot with the same ``rng`` seed gives the same
   plan, on two fresh policies from ``factory`` if given, else on two deep copies of
   ``policy``, else (a policy that cannot be copied, e.g. one holding a torch model)
   on ``policy`` itself twice.  A policy that keeps state between days (e.g.
   ``HybridPolicy``'s dual prices) and cannot be copied needs ``factory``.

The first failing check raises :class:`PolicyCheckError` naming it.  Numpy only: it
runs where production runs.

Example:
    >>> from collsim import check_policy  # doctest: +SKIP
    >>> check_policy(MyPolicy(), snapshot)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from collsim.plan import Plan, Policy, Snapshot
from collsim.vocab import N_CHANNELS

__all__ = ["CHECKS", "PolicyCheckError", "check_policy"]

CHECKS = ("protocol", "length", "columns", "mask", "capacity", "determinism")
"""The names of the checks, in the order :func:`check_policy` runs them."""

_KINDS = {
    "channel": "i",
    "slot_hour": "i",
    "priority": "i",
    "expected_value": "f",
    "propensity": "f",
    "holdout": "b",
    "offer": "i",
    "reason": "i",
    "variant": "i",
}
"""Plan column → numpy dtype kind (``i``: signed integer, ``f``: float, ``b``: bool)."""


class PolicyCheckError(ValueError):
    """A policy failed one of :func:`check_policy`'s checks.

    Attributes:
        check: the name of the failed check (one of :data:`CHECKS`).
        policy_id: the policy's id (``"?"`` when it has none).
    """

    def __init__(self, check: str, policy_id: str, detail: str) -> None:
        super().__init__(f"check_policy[{check}] failed for policy {policy_id!r}: {detail}")
        self.check = check
        self.policy_id = policy_id


def check_policy(
    policy: Any,
    snapshot: Snapshot,
    seed: int = 0,
    *,
    factory: Callable[[], Any] | None = None,
) -> Plan:
    """Run ``policy`` on ``snapshot`` and check its plan; raise on the first failed check.

    Args:
        policy: the object to check (it should follow :class:`collsim.plan.Policy`).
        snapshot: a day's snapshot (e.g. ``Simulation.begin_day()`` or
            :func:`collsim.export.daily.build_snapshot`).
        seed: seed of the fresh ``rng`` given to the policy in the snapshot.
        factory: builds a fresh policy like ``policy``; the determinism check compares
            two of them (needed for a stateful policy that cannot be deep-copied).

    Returns:
        The plan of the first run.

    Raises:
        PolicyCheckError: a check failed; ``.check`` names it.
    """
    policy_id = str(getattr(policy, "policy_id", "?"))
    _check_protocol(policy, policy_id)
    first, second = (factory(), factory()) if factory is not None else _two_copies(policy)
    plan = _decide(first, snapshot, seed, policy_id)
    _check_length(plan, snapshot.n, policy_id)
    _check_columns(plan, policy_id)
    option = _check_mask(plan, snapshot, policy_id)
    _check_capacity(plan, snapshot, option, policy_id)
    _check_determinism(plan, _decide(second, snapshot, seed, policy_id), policy_id)
    return plan


def _check_protocol(policy: Any, policy_id: str) -> None:
    if not isinstance(policy, Policy) or not isinstance(policy.policy_id, str):
        raise PolicyCheckError(
            "protocol",
            policy_id,
            f"{type(policy).__name__} needs a str attribute policy_id and a method "
            "decide(snapshot) -> Plan (collsim.plan.Policy)",
        )


def _two_copies(policy: Any) -> tuple[Any, Any]:
    """Two independent copies of a stateful policy, or the policy twice if it cannot be copied."""
    try:
        return copy.deepcopy(policy), copy.deepcopy(policy)
    except Exception:  # e.g. an ONNX Runtime session: deciding twice on one object
        return policy, policy


def _decide(policy: Any, snapshot: Snapshot, seed: int, policy_id: str) -> Plan:
    fresh = dataclasses.replace(snapshot, rng=np.random.default_rng(seed))
    plan = policy.decide(fresh)
    if not isinstance(plan, Plan):
        raise PolicyCheckError(
            "protocol", policy_id, f"decide returned {type(plan).__name__}, not a Plan"
        )
    return plan


def _check_length(plan: Plan, n: int, policy_id: str) -> None:
    wrong = {
        name: np.shape(getattr(plan, name))
        for name in _KINDS
        if np.shape(getattr(plan, name)) != (n,)
    }
    if wrong:
        raise PolicyCheckError(
            "length", policy_id, f"the snapshot has {n} accounts; column shapes {wrong}"
        )


def _check_columns(plan: Plan, policy_id: str) -> None:
    wrong = {
        name: str(np.asarray(getattr(plan, name)).dtype)
        for name, kind in _KINDS.items()
        if np.asarray(getattr(plan, name)).dtype.kind != kind
    }
    if wrong:
        raise PolicyCheckError("columns", policy_id, f"wrong dtypes {wrong} (expected {_KINDS})")
    none = plan.channel < 0
    problems = [
        text
        for bad, text in (
            (np.any((plan.channel < -1) | (plan.channel >= N_CHANNELS)), "channel code range"),
            (np.any((plan.reason < 0) | (plan.reason >= len(plan.reasons))), "reason codes"),
            (np.any(plan.slot_hour[none] != -1), "slot hour on a row without contact"),
            (np.any((plan.offer[none] != 0) | (plan.variant[none] != 0)), "treatment, no contact"),
            (np.any(~((plan.propensity > 0) & (plan.propensity <= 1))), "propensity not in (0, 1]"),
        )
        if bad
    ]
    if problems:
        raise PolicyCheckError("columns", policy_id, "; ".join(problems))


def _check_mask(plan: Plan, snapshot: Snapshot, policy_id: str) -> np.ndarray:
    """The plan's option per account (-1 none), after checking each against the mask."""
    try:
        option = snapshot.options.encode(plan.channel, plan.slot_hour)
    except ValueError as exc:
        raise PolicyCheckError("mask", policy_id, str(exc)) from None
    rows = np.flatnonzero(option >= 0)
    allowed = snapshot.option_mask()[rows, option[rows]]
    if not allowed.all():
        bad = rows[~allowed]
        raise PolicyCheckError(
            "mask",
            policy_id,
            f"{bad.size} planned contacts outside the snapshot's mask, e.g. account "
            f"{snapshot.accounts.account_id[bad[0]]} (row {bad[0]}, channel "
            f"{plan.channel[bad[0]]}, hour {plan.slot_hour[bad[0]]})",
        )
    return np.asarray(option)


def _check_capacity(plan: Plan, snapshot: Snapshot, option: np.ndarray, policy_id: str) -> None:
    res = snapshot.resources
    rows = np.flatnonzero(option >= 0)
    used = res.resource_by_zone[snapshot.accounts.timezone[rows], option[rows]]
    counts = np.bincount(used[used >= 0], minlength=len(res.names))
    over = np.flatnonzero(counts > res.capacity)
    if over.size:
        listed = ", ".join(f"{res.names[r]}: {counts[r]} > {res.capacity[r]}" for r in over[:5])
        raise PolicyCheckError("capacity", policy_id, f"resources over capacity: {listed}")
    if res.money_budget is not None:
        cost = float(np.asarray(res.cost_per_attempt, dtype=float)[plan.channel[rows]].sum())
        if cost > res.money_budget:
            raise PolicyCheckError(
                "capacity", policy_id, f"planned cost {cost:.2f} > budget {res.money_budget:.2f}"
            )


def _check_determinism(a: Plan, b: Plan, policy_id: str) -> None:
    differ = [
        name
        for name in _KINDS
        if not np.array_equal(getattr(a, name), getattr(b, name), equal_nan=name in _FLOATS)
    ]
    if differ or a.reasons != b.reasons:
        raise PolicyCheckError(
            "determinism",
            policy_id,
            f"two runs on the same snapshot and rng seed differ in {differ or ['reasons']}",
        )


_FLOATS = frozenset(name for name, kind in _KINDS.items() if kind == "f")
