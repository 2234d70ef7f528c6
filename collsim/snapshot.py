"""The Snapshot a policy decides on: one builder for simulation and production.

The simulator (:meth:`collsim.sim.engine.Simulation.snapshot`) and the daily plan
(:func:`collsim.export.daily.build_snapshot`, from the portfolio and contact-history
files) both call :func:`build_snapshot`, so a policy sees the same Snapshot from the
same state:

* ``active``: accounts in collection.  A collections file lists the accounts in
  collection and cured ones, so a listed account is in collection iff ``dpd > 0``
  (the default); the engine passes its own status (the same set:
  ``tests/test_snapshot_active.py``);
* ``contact``: the observable contact summary, its 7-day totals taken from the window;
* ``mask``: the rule set's mask on the day, within ``active``;
* ``blocking_rule`` / ``treatment_rule``: the rule set's first blocking rule of a
  contact or treatment, for plan reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from collsim.compliance import ContactWindow, RuleSet
from collsim.plan import OptionSpace, Resources, Snapshot
from collsim.portfolio import ContactState, Portfolio

__all__ = ["ObservedAccounts", "blocking_rule", "build_snapshot", "treatment_rule"]

RuleLookup = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``(account, a, b) -> rule ids`` (object array, "" where allowed)."""


def blocking_rule(ruleset: RuleSet, portfolio: Portfolio, window: ContactWindow) -> RuleLookup:
    """Return ``(account, channel, hour) -> rule id`` of the first rule forbidding each contact."""
    names = np.asarray((*ruleset.rule_ids, ""), dtype=object)

    def lookup(account: np.ndarray, channel: np.ndarray, hour: np.ndarray) -> np.ndarray:
        first = ruleset.first_violation(portfolio, window, account, channel, hour)
        return np.asarray(names[np.where(first >= 0, first, len(ruleset.rule_ids))])

    return lookup


def treatment_rule(ruleset: RuleSet, portfolio: Portfolio, window: ContactWindow) -> RuleLookup:
    """Return ``(account, offer, variant) -> rule id`` of the first treatment rule forbidding it."""

    def lookup(account: np.ndarray, offer: np.ndarray, variant: np.ndarray) -> np.ndarray:
        return np.asarray(ruleset.treatment_allowed(portfolio, window, account, offer, variant)[1])

    return lookup


@dataclass(frozen=True)
class ObservedAccounts:
    """What the lender observes of its accounts on one day.

    Attributes:
        portfolio: the observable accounts.
        contact: their contact summary; :func:`build_snapshot` sets its
            ``attempts_7d`` and ``rpc_7d`` from ``window``.
        window: the contact window ending on the day.
        active: bool [N], accounts in collection (default: ``dpd > 0``).
    """

    portfolio: Portfolio
    contact: ContactState
    window: ContactWindow
    active: np.ndarray | None = None


def build_snapshot(
    day: int,
    observed: ObservedAccounts,
    ruleset: RuleSet,
    options: OptionSpace,
    resources: Resources,
    rng: np.random.Generator,
) -> Snapshot:
    """Return what a policy may see on local day ``day``.

    Args:
        day: the local day number.
        observed: the accounts, their contact summary and window, and which are active.
        ruleset: the rule set whose mask the snapshot carries.
        options: the operating slots.
        resources: the day's capacity.
        rng: the run's ``policy`` stream, for stochastic policies.
    """
    portfolio, contact, window, active = (
        observed.portfolio,
        observed.contact,
        observed.window,
        observed.active,
    )
    if active is None:
        active = np.asarray(portfolio.dpd) > 0
    mask, channels = ruleset.mask_and_channels(portfolio, window, options.slot_hours, within=active)
    contact.attempts_7d, contact.rpc_7d = window.totals_before_today()
    return Snapshot(
        day=day,
        accounts=portfolio,
        contact=contact,
        active=active,
        mask=mask,
        options=options,
        resources=resources,
        rng=rng,
        blocking_rule=blocking_rule(ruleset, portfolio, window),
        treatment_rule=treatment_rule(ruleset, portfolio, window),
        channel_allowed=channels,
    )
