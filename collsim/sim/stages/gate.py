"""The gate: plan checks, the compliance gate, budgets, the treatment gate, the in-day gate.

A planned contact the rule set forbids is a ``blocked`` event; a contact beyond a
daily budget is an ``overflow`` event (agent pool-hours are cut later, in the SimPy
contact centre).  After the contact gate and the budgets, a treatment gate checks
each planned (offer, variant): unsupported or forbidden treatments are downgraded to
(none, standard) with a ``treatment_blocked`` event and the contact still goes ahead."""

from __future__ import annotations

import numpy as np

from collsim.behaviour import ACTIVE
from collsim.plan import Plan, Resources, Snapshot
from collsim.sim.state import SimState
from collsim.treatments import SCENARIO_RULE_ID
from collsim.vocab import IS_TIMED, N_CHANNELS, OFFERS, VARIANTS, Channel, bucket_of

NOT_IN_COLLECTION = "not_in_collection"
"""Rule id recorded when a plan contacts an account that is not in collection."""


class PolicyError(RuntimeError):
    """A policy returned a malformed plan."""


def check_plan(s: SimState, plan: Plan) -> None:
    """Raise :class:`PolicyError` if ``plan`` has the wrong shapes or unknown codes."""
    for name in ("channel", "slot_hour", "priority"):
        value = getattr(plan, name)
        if not isinstance(value, np.ndarray) or value.shape != (s.n,):
            raise PolicyError(f"policy {plan.policy_id}: plan.{name} must have shape ({s.n},)")
    if np.any((plan.channel < -1) | (plan.channel >= N_CHANNELS)):
        raise PolicyError(f"policy {plan.policy_id}: plan has an unknown channel code")
    for name, table in (("offer", OFFERS), ("variant", VARIANTS)):
        value = np.asarray(getattr(plan, name))
        if value.shape != (s.n,) or np.any((value < 0) | (value >= len(table))):
            raise PolicyError(
                f"policy {plan.policy_id}: plan.{name} must be ({s.n},) codes 0..{len(table) - 1}"
            )


def contact_gate(s: SimState, plan: Plan, snapshot: Snapshot) -> np.ndarray:
    """Return the option of each account that passes the compliance gate and budgets."""
    try:
        option = s.options.encode(plan.channel, plan.slot_hour)
    except ValueError as exc:
        raise PolicyError(f"policy {plan.policy_id}: {exc}") from None
    rows = np.flatnonzero(option >= 0)
    opt = option[rows]
    channel = opt // s.options.n_slots
    slot = opt % s.options.n_slots
    allowed = snapshot.mask[rows, channel, slot]
    blocked = rows[~allowed]
    if blocked.size:
        record_blocked(
            s,
            blocked,
            plan.channel[blocked].astype(np.int64),
            plan.slot_hour[blocked].astype(np.int64),
        )
        option[blocked] = -1
    return fit_budgets(s, option, plan.priority, snapshot.resources)


def treatment_gate(s: SimState, plan: Plan, option: np.ndarray) -> None:
    """Set today's offers and variants; downgrade unsupported or forbidden ones.

    Leaves ``s.offer``/``s.variant`` None when no contact going ahead carries a
    treatment, so such days take the code paths of a run without treatments.
    """
    offer = np.asarray(plan.offer, dtype=np.int64)
    variant = np.asarray(plan.variant, dtype=np.int64)
    rows = np.flatnonzero((option >= 0) & ((offer > 0) | (variant > 0)))
    if rows.size == 0:
        return
    channel = option[rows] // s.options.n_slots
    o, v = offer[rows], variant[rows]
    supported = s.treatments.supported(o, v, channel, s.portfolio.dpd[rows])
    _, rule = s.ruleset.treatment_allowed(s.portfolio, s.window, rows, o, v)
    rule = np.where(supported, rule, SCENARIO_RULE_ID)
    bad = rule != ""
    if np.any(bad):
        s.ledger.append(
            "treatment_blocked",
            s.day,
            rows[bad],
            channel=channel[bad],
            hour=s.options.hour[option[rows[bad]]],
            rule=np.array([s.ledger.rule_code(r) for r in rule[bad]], dtype=np.int16),
            offer=o[bad],
            variant=v[bad],
            bucket=bucket_of(s.portfolio.dpd[rows[bad]]),
        )
    if np.all(bad):
        return
    s.offer = np.zeros(s.n, dtype=np.int8)
    s.variant = np.zeros(s.n, dtype=np.int8)
    s.offer[rows[~bad]] = o[~bad]
    s.variant[rows[~bad]] = v[~bad]


def record_blocked(s: SimState, idx: np.ndarray, channel: np.ndarray, hour: np.ndarray) -> None:
    """Ledger 'blocked' events with the first rule that forbids each contact."""
    rule = np.full(idx.size, s.ledger.rule_code(NOT_IN_COLLECTION), dtype=np.int16)
    active = s.borrowers.status[idx] == ACTIVE
    if np.any(active):
        first = s.ruleset.first_violation(
            s.portfolio, s.window, idx[active], channel[active], hour[active]
        )
        codes = np.array([s.ledger.rule_code(r) for r in s.ruleset.rule_ids], dtype=np.int16)
        rule[active] = np.where(first >= 0, codes[np.maximum(first, 0)], rule[active])
    s.ledger.append(
        "blocked",
        s.day,
        idx,
        channel=channel,
        hour=np.where(IS_TIMED[channel], hour, -1),
        rule=rule,
        bucket=bucket_of(s.portfolio.dpd[idx]),
    )


def fit_budgets(
    s: SimState, option: np.ndarray, priority: np.ndarray, resources: Resources
) -> np.ndarray:
    """Drop planned contacts beyond daily budgets (by plan priority); record overflow.

    Agent pool-hours are not cut here: the SimPy contact centre decides which calls fit.
    """
    rows = np.flatnonzero(option >= 0)
    resource = resources.resource_by_zone[s.portfolio.timezone[rows], option[rows]]
    is_pool = np.array([p is not None for p in resources.pool_of_resource], dtype=bool)
    limited = (resource >= 0) & ~is_pool[np.maximum(resource, 0)]
    rows, resource = rows[limited], resource[limited]
    order = np.lexsort((rows, priority[rows], resource))
    rows, resource = rows[order], resource[order]
    starts = np.r_[0, np.flatnonzero(np.diff(resource)) + 1]
    rank = np.arange(rows.size) - np.repeat(starts, np.diff(np.r_[starts, rows.size]))
    over = rank >= resources.capacity[resource]
    dropped = rows[over]
    if dropped.size:
        # resource[over] is sorted: codes are added in the order they first occur.
        names, which = np.unique(resource[over], return_inverse=True)
        codes = np.array([s.ledger.rule_code(resources.names[r]) for r in names], dtype=np.int16)
        codes = codes[which]
        channel = option[dropped] // s.options.n_slots
        s.ledger.append(
            "overflow",
            s.day,
            dropped,
            channel=channel,
            hour=s.options.hour[option[dropped]],
            rule=codes,
        )
        option = option.copy()
        option[dropped] = -1
    return option


def hour_gate(s: SimState, batch: np.ndarray, local: np.ndarray, redial: np.ndarray) -> np.ndarray:
    """In-day compliance gate before each hour's calls; returns the calls that may go.

    A refused planned call is a ``blocked`` event; a refused redial (the dialler's
    own retry after no answer, not part of the plan) is a ``redial_blocked`` event.
    """
    first = hour_violations(s, batch, local)
    record_hour_blocks(s, batch, local, redial, first)
    return first == -1


def hour_violations(s: SimState, batch: np.ndarray, local: np.ndarray) -> np.ndarray:
    """int16 [M]: first in-day rule refusing each agent call (-1: may go, -2: not active).

    Reads the state only (records nothing): :func:`hour_gate` = this then
    :func:`record_hour_blocks`.
    """
    active = s.borrowers.status[batch] == ACTIVE
    first = np.full(batch.size, -2, dtype=np.int16)
    channel = np.full(batch.size, Channel.AGENT_CALL, dtype=np.int64)
    first[active] = s.ruleset.first_violation(
        s.portfolio, s.window, batch[active], channel[active], local[active]
    )
    return first


def record_hour_blocks(
    s: SimState, batch: np.ndarray, local: np.ndarray, redial: np.ndarray, first: np.ndarray
) -> None:
    """Ledger the calls :func:`hour_violations` refused by a rule (``first >= 0``)."""
    blocked = first >= 0
    if np.any(blocked):
        codes = np.array([s.ledger.rule_code(r) for r in s.ruleset.rule_ids], dtype=np.int16)
        for event, rows in (
            ("blocked", blocked & ~redial),
            ("redial_blocked", blocked & redial),
        ):
            s.ledger.append(
                event,
                s.day,
                batch[rows],
                channel=int(Channel.AGENT_CALL),
                hour=local[rows],
                rule=codes[first[rows]],
                bucket=bucket_of(s.portfolio.dpd[batch[rows]]),
            )


__all__ = [
    "NOT_IN_COLLECTION",
    "PolicyError",
    "check_plan",
    "contact_gate",
    "fit_budgets",
    "hour_gate",
    "hour_violations",
    "record_blocked",
    "record_hour_blocks",
    "treatment_gate",
]
