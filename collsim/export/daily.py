"""One production day: the Snapshot from the input files, then holdout and priorities.

The Snapshot a policy sees in production is built by the simulator's own builder,
:func:`collsim.snapshot.build_snapshot`, from files instead of simulator state:

* ``window``: :meth:`ContactWindow.from_history` ending on the plan's local day D;
* ``contact``: the observable contact summary (:func:`contact_state`);
* ``active``: accounts in collection, i.e. ``dpd > 0``;
* ``mask``, ``blocking_rule``, ``treatment_rule``: the rule set on day D, within ``active``;
* ``resources``: :func:`collsim.capacity.build_resources` for day D.

After the policy decides, :func:`fit_money_budget` drops the last contacts in
priority order while the plan's cost exceeds a money budget, :func:`apply_holdout`
holds out a random control group and :func:`reprioritise` renumbers priorities.

Holdout and propensity.  Each account the policy chose to contact is held out
(channel ``none``, ``holdout = true``) with probability ``holdout_share``, by a keyed
uniform draw of (seed, "holdout", day, account row) — independent of every other
account and of the policy.  ``propensity`` is the probability of the logged action
given the snapshot: ``p × (1 − holdout_share)`` for a contact the policy chose with
probability ``p`` (``p = 1`` for a deterministic policy), ``p × holdout_share`` for a
held-out row (the action logged is ``none``), and unchanged (``p``) for rows the
policy itself left alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from collsim.capacity import build_resources
from collsim.compliance import ContactWindow, RuleSet
from collsim.config import Capacity, ChannelCost
from collsim.history import History
from collsim.plan import OptionSpace, Plan, Resources, Snapshot, rank_within_groups
from collsim.portfolio import ContactState, Portfolio
from collsim.rng import RunRandom
from collsim.snapshot import ObservedAccounts
from collsim.snapshot import build_snapshot as core_snapshot
from collsim.vocab import CHANNELS, Outcome

HOLDOUT_PURPOSE = "holdout"
"""Name of the keyed random draw of the holdout."""


def _last_day(account: np.ndarray, day: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, -1, dtype=np.int64)
    np.maximum.at(out, account, day)
    return out.astype(np.int32)


def contact_state(history: History, window: ContactWindow, n: int, day: int) -> ContactState:
    """Return the observable contact summary of N accounts on local day ``day``.

    Rows after ``day`` are ignored.  ``broken_promises`` cannot be derived from a
    contact history (it needs payments) and is 0.
    """
    rows = np.flatnonzero(np.asarray(history.local_day) <= day)
    account = np.asarray(history.account, dtype=np.int64)[rows]
    local_day = np.asarray(history.local_day, dtype=np.int64)[rows]
    talk = np.asarray(history.conversation, dtype=bool)[rows]
    promise = np.asarray(history.outcome)[rows] == int(Outcome.PROMISE_TO_PAY)
    attempts_7d, rpc_7d = window.totals_before_today()
    return ContactState(
        last_contact_day=_last_day(account, local_day, n),
        last_rpc_day=_last_day(account[talk], local_day[talk], n),
        last_promise_day=_last_day(account[promise], local_day[promise], n),
        attempts_7d=attempts_7d,
        rpc_7d=rpc_7d,
        broken_promises=np.zeros(n, dtype=np.int16),
    )


def day_resources(
    capacity: Capacity,
    options: OptionSpace,
    portfolio: Portfolio,
    day: int,
    cost_per_attempt: dict[str, float],
) -> Resources:
    """Return the day's resources from a capacity file and per-channel attempt costs."""
    channels = {c: ChannelCost(cost_per_attempt=cost_per_attempt.get(c, 0.0)) for c in CHANNELS}
    return build_resources(capacity, options, portfolio.timezones, day, channels)


@dataclass(frozen=True, eq=False)
class SnapshotSource:
    """What a snapshot is built from: the accounts, their history and the rules.

    Attributes:
        portfolio: the accounts.
        history: their contact history (local days).
        ruleset: the rule set whose mask the snapshot carries.
    """

    portfolio: Portfolio
    history: History
    ruleset: RuleSet


def build_snapshot(
    source: SnapshotSource,
    options: OptionSpace,
    resources: Resources,
    day: int,
    seed: int,
) -> tuple[Snapshot, ContactWindow]:
    """Return the Snapshot of local day ``day`` and its contact window.

    Args:
        source: the portfolio, its contact history and the rule set.
        options: the operating slots.
        resources: the day's capacity.
        day: the local day number D.
        seed: seeds the snapshot's ``rng`` (``policy`` stream) for stochastic policies.
    """
    portfolio, history, ruleset = source.portfolio, source.history, source.ruleset
    n = portfolio.n
    window = ContactWindow.from_history(history, n, day)
    contact = contact_state(history, window, n, day)
    rng = RunRandom(seed).generator("policy")
    observed = ObservedAccounts(portfolio, contact, window)
    snapshot = core_snapshot(day, observed, ruleset, options, resources, rng)
    return snapshot, window


def _resource_of(plan: Plan, snapshot: Snapshot) -> np.ndarray:
    out = np.full(plan.n, -1, dtype=np.int64)
    rows = np.flatnonzero(plan.channel >= 0)
    if rows.size:
        option = snapshot.options.encode(plan.channel[rows], plan.slot_hour[rows])
        zone = snapshot.accounts.timezone[rows]
        out[rows] = snapshot.resources.resource_by_zone[zone, option]
    return out


def _drop(plan: Plan, rows: np.ndarray, reason_text: str) -> Plan:
    """Return a copy of ``plan`` with ``rows`` set to no contact for ``reason_text``."""
    if rows.size == 0:
        return plan
    reasons = plan.reasons if reason_text in plan.reasons else (*plan.reasons, reason_text)
    code = reasons.index(reason_text)
    out = dataclasses.replace(
        plan,
        channel=plan.channel.copy(),
        slot_hour=plan.slot_hour.copy(),
        priority=plan.priority.copy(),
        expected_value=np.asarray(plan.expected_value, dtype=np.float64).copy(),
        offer=plan.offer.copy(),
        variant=plan.variant.copy(),
        reason=np.asarray(plan.reason, dtype=np.int16).copy(),
        reasons=reasons,
    )
    out.channel[rows] = -1
    out.slot_hour[rows] = -1
    out.priority[rows] = 0
    out.expected_value[rows] = 0.0
    out.offer[rows] = 0
    out.variant[rows] = 0
    out.reason[rows] = code
    return out


def reprioritise(plan: Plan, snapshot: Snapshot) -> Plan:
    """Renumber priorities 1..n within each agent pool-hour, else within (channel, slot).

    The order within a group is the plan's priority, then account order.  Rows
    without contact get 0.
    """
    resource = _resource_of(plan, snapshot)
    pools = np.array([p is not None for p in snapshot.resources.pool_of_resource] or [False])
    is_pool = (resource >= 0) & pools[np.maximum(resource, 0)]
    rows = np.flatnonzero(plan.channel >= 0)
    option = np.full(plan.n, -1, dtype=np.int64)
    option[rows] = snapshot.options.encode(plan.channel[rows], plan.slot_hour[rows])
    group = np.where(is_pool, resource, len(pools) + option)
    rank = rank_within_groups(group[rows], np.asarray(plan.priority, dtype=np.int64)[rows])
    priority = np.zeros(plan.n, dtype=np.int32)
    priority[rows] = rank
    return dataclasses.replace(plan, priority=priority)


def fit_money_budget(plan: Plan, snapshot: Snapshot) -> Plan:
    """Drop contacts, last in priority first, until the plan's cost fits the money budget."""
    budget = snapshot.resources.money_budget
    channel = np.asarray(plan.channel, dtype=np.int64)
    rows = np.flatnonzero(channel >= 0)
    cost = snapshot.resources.cost_per_attempt[channel[rows]]
    if budget is None or cost.sum() <= budget:
        return plan
    # Least important first: highest priority number, then the last account.
    order = np.lexsort((-rows, -np.asarray(plan.priority)[rows]))
    kept_cost = cost.sum() - np.cumsum(cost[order])
    n_drop = int(np.searchsorted(-kept_cost, -budget, side="left")) + 1
    return _drop(plan, rows[order[:n_drop]], "money budget exhausted")


def apply_holdout(plan: Plan, share: float, seed: int, day: int) -> Plan:
    """Hold out each planned contact with probability ``share`` (see the module docstring).

    Raises:
        ValueError: ``share`` is not in [0, 1).
    """
    if not 0.0 <= share < 1.0:
        raise ValueError(f"holdout_share must be in [0, 1), got {share}")
    contacted = np.asarray(plan.channel) >= 0
    uniform = RunRandom(seed).uniform(HOLDOUT_PURPOSE, day, np.arange(plan.n))
    held = contacted & (uniform < share)
    base = np.asarray(plan.propensity, dtype=np.float64)
    propensity = np.where(held, base * share, np.where(contacted, base * (1.0 - share), base))
    n_reasons = len(plan.reasons)
    reasons = (
        *plan.reasons,
        *(f"holdout (control group); policy chose: {r}" for r in plan.reasons),
    )
    reason = np.where(held, np.asarray(plan.reason, dtype=np.int16) + n_reasons, plan.reason)
    out = dataclasses.replace(
        plan,
        channel=np.where(held, -1, plan.channel).astype(np.int8),
        slot_hour=np.where(held, -1, plan.slot_hour).astype(np.int8),
        priority=np.where(held, 0, plan.priority).astype(np.int32),
        expected_value=np.where(held, 0.0, plan.expected_value),
        offer=np.where(held, 0, plan.offer).astype(np.int8),
        variant=np.where(held, 0, plan.variant).astype(np.int8),
        propensity=propensity,
        holdout=held,
        reason=reason.astype(np.int16),
        reasons=reasons,
    )
    return out


def explain_blocked(
    plan: Plan,
    snapshot: Snapshot,
    window: ContactWindow,
    ruleset: RuleSet,
    preferred: np.ndarray,
) -> Plan:
    """Name the rule that blocked each account's preferred option, where none was planned.

    Args:
        preferred: int [N], the option the policy would have liked first (-1: none).

    Rows planned no contact whose preferred option is forbidden get the reason
    ``preferred <channel> blocked by <rule id>``; if it was allowed, the reason is
    kept (capacity, cadence).
    """
    rows = np.flatnonzero((np.asarray(plan.channel) < 0) & (preferred >= 0) & snapshot.active)
    if rows.size == 0:
        return plan
    channel, hour = snapshot.options.decode(preferred[rows])
    first = ruleset.first_violation(
        snapshot.accounts, window, rows, channel.astype(np.int64), hour.astype(np.int64)
    )
    blocked = first >= 0
    rows, channel, first = rows[blocked], channel[blocked], first[blocked]
    key = channel.astype(np.int64) * len(ruleset.rule_ids) + first
    unique, inverse = np.unique(key, return_inverse=True)
    texts = [
        f"preferred {CHANNELS[k // len(ruleset.rule_ids)]} blocked by "
        f"{ruleset.rule_ids[k % len(ruleset.rule_ids)]}"
        for k in unique.tolist()
    ]
    reasons = (*plan.reasons, *texts)
    reason = np.asarray(plan.reason, dtype=np.int16).copy()
    reason[rows] = len(plan.reasons) + inverse
    return dataclasses.replace(plan, reason=reason, reasons=reasons)


__all__ = [
    "HOLDOUT_PURPOSE",
    "apply_holdout",
    "SnapshotSource",
    "build_snapshot",
    "contact_state",
    "day_resources",
    "explain_blocked",
    "fit_money_budget",
    "reprioritise",
]
