"""Plan validation: every planned contact against the rules, and capacity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collsim.compliance.ruleset import RuleSet
from collsim.compliance.window import ContactWindow
from collsim.plan import OptionSpace, Plan, Resources, rank_within_groups
from collsim.portfolio import Portfolio
from collsim.vocab import CHANNELS, IS_TIMED, N_CHANNELS

SLOT_RULE_ID = "plan.slot"
"""Rule id of a timed contact whose hour is not an operating slot (or an unknown channel)
that no rule of the rule set forbids."""


@dataclass(frozen=True)
class Violation:
    """One broken rule: the account (``""`` for plan-wide rules), the rule id and its sentence."""

    account_id: str
    rule_id: str
    sentence: str


def validate_plan(
    plan: Plan,
    portfolio: Portfolio,
    window: ContactWindow,
    ruleset: RuleSet,
    options: OptionSpace,
    resources: Resources | None = None,
) -> list[Violation]:
    """Return every violation of a plan, in account order, then capacity, then money budget.

    Each planned contact is checked against every rule of ``ruleset`` on day
    ``window.day`` (all failing rules are reported per row), and its offer and
    variant against every treatment rule (a forbidden offer is a violation with the
    treatment rule's id).  With ``resources``,
    contacts beyond a resource's capacity (in plan priority order within the
    resource, then account order) are violations ``capacity.<resource name>``, and a
    planned cost above ``resources.money_budget`` is one violation
    ``capacity.money_budget`` with account id ``""``.

    Args:
        plan: one row per account, in portfolio order.
        portfolio: the accounts.
        window: contact counts ending on the plan's day.
        ruleset: the rule set.
        options: the day's option space (operating slots).
        resources: the day's capacity, or ``None`` to skip capacity checks.

    Raises:
        ValueError: the plan does not have one row per account.
    """
    if plan.n != portfolio.n:
        raise ValueError(f"plan has {plan.n} rows, portfolio has {portfolio.n} accounts")
    channel = np.asarray(plan.channel, dtype=np.int64)
    hour = np.asarray(plan.slot_hour, dtype=np.int64)
    rows = np.flatnonzero(channel >= 0)
    bad_slot = _bad_slot(channel[rows], hour[rows], options)
    # A contact at a real hour outside the operating slots is checked against the rules
    # too, so that e.g. a call at 22:00 is reported under the hours rule; plan.slot is
    # reported only where no rule of the rule set forbids it.
    known = (channel[rows] < N_CHANNELS) & (hour[rows] < 24)
    found = _rule_violations(portfolio, window, ruleset, rows[known], channel, hour)
    ruled = np.zeros(portfolio.n, dtype=bool)
    ruled[[row for row, _, _ in found]] = True
    slot_rows = rows[bad_slot]
    found += _slot_violations(portfolio, slot_rows[~ruled[slot_rows]], channel, hour, options)
    found += _treatment_violations(portfolio, window, ruleset, plan, rows)
    found.sort(key=lambda v: int(v[0]))
    violations = [
        Violation(str(portfolio.account_id[row]), rule_id, sentence)
        for row, rule_id, sentence in found
    ]
    if resources is not None:
        good = rows[~bad_slot]
        option = options.encode(channel[good], hour[good])
        violations += _capacity_violations(portfolio, plan, resources, good, option)
        violations += _money_violations(resources, channel[good])
    return violations


def _bad_slot(channel: np.ndarray, hour: np.ndarray, options: OptionSpace) -> np.ndarray:
    """bool: unknown channel, or a timed channel whose hour is not an operating slot."""
    known = channel < N_CHANNELS
    operating = np.zeros(24, dtype=bool)
    operating[np.asarray(options.slot_hours, dtype=np.int64)] = True
    timed = known & IS_TIMED[np.where(known, channel, 0)]
    in_slot = (hour >= 0) & (hour < 24) & operating[np.clip(hour, 0, 23)]
    return ~known | (timed & ~in_slot)


def _slot_violations(
    portfolio: Portfolio,
    rows: np.ndarray,
    channel: np.ndarray,
    hour: np.ndarray,
    options: OptionSpace,
) -> list[tuple[int, str, str]]:
    slots = ", ".join(str(int(h)) for h in options.slot_hours)
    out = []
    for row in rows:
        name = (
            CHANNELS[channel[row]] if channel[row] < N_CHANNELS else f"channel code {channel[row]}"
        )
        out.append(
            (
                int(row),
                SLOT_RULE_ID,
                f"{name} at local hour {hour[row]} is not in the operating slots ({slots}).",
            )
        )
    return out


def _rule_violations(
    portfolio: Portfolio,
    window: ContactWindow,
    ruleset: RuleSet,
    rows: np.ndarray,
    channel: np.ndarray,
    hour: np.ndarray,
) -> list[tuple[int, str, str]]:
    first = ruleset.first_violation(portfolio, window, rows, channel[rows], hour[rows])
    failing = rows[first >= 0]
    forbid = ruleset.forbid_matrix(portfolio, window, failing, channel[failing], hour[failing])
    position, rule_index = np.nonzero(forbid.T)  # by failing row, then rule order
    return [
        (int(failing[m]), ruleset.rules[r].rule_id, ruleset.rules[r].sentence)
        for m, r in zip(position, rule_index, strict=True)
    ]


def _treatment_violations(
    portfolio: Portfolio, window: ContactWindow, ruleset: RuleSet, plan: Plan, rows: np.ndarray
) -> list[tuple[int, str, str]]:
    """Planned offers/variants that a treatment rule forbids (all failing rules per row)."""
    offer = np.asarray(plan.offer, dtype=np.int64)[rows]
    variant = np.asarray(plan.variant, dtype=np.int64)[rows]
    treated = (offer > 0) | (variant > 0)
    rows, offer, variant = rows[treated], offer[treated], variant[treated]
    forbid = ruleset.treatment_forbid_matrix(portfolio, window, rows, offer, variant)
    position, rule_index = np.nonzero(forbid.T)
    rules = ruleset.treatment_rules
    return [
        (int(rows[m]), rules[r].rule_id, rules[r].sentence)
        for m, r in zip(position, rule_index, strict=True)
    ]


def _capacity_violations(
    portfolio: Portfolio, plan: Plan, resources: Resources, rows: np.ndarray, option: np.ndarray
) -> list[Violation]:
    resource = resources.resource_by_zone[portfolio.timezone[rows], option]
    limited = resource >= 0
    rows, resource = rows[limited], resource[limited]
    # Rank within each resource by plan priority, then account order (rows ascending).
    rank = rank_within_groups(resource, np.asarray(plan.priority, dtype=np.int64)[rows])
    capacity = np.asarray(resources.capacity, dtype=np.int64)[resource]
    over = np.flatnonzero(rank > capacity)
    return [
        Violation(
            str(portfolio.account_id[rows[i]]),
            f"capacity.{resources.names[resource[i]]}",
            f"Resource {resources.names[resource[i]]} has capacity {capacity[i]} for the day; "
            f"this contact is number {rank[i]} in priority order.",
        )
        for i in over
    ]


def _money_violations(resources: Resources, channel: np.ndarray) -> list[Violation]:
    if resources.money_budget is None:
        return []
    cost = float(np.asarray(resources.cost_per_attempt, dtype=float)[channel].sum())
    if cost <= resources.money_budget:
        return []
    return [
        Violation(
            "",
            "capacity.money_budget",
            f"Planned contacts cost {cost:.2f}, above the day's money budget of "
            f"{resources.money_budget:.2f}.",
        )
    ]
