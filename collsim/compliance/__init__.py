"""Compliance: the single implementation of every contact rule.

A :class:`RuleSet` answers, on a local day D (``window.day``):

* :meth:`RuleSet.mask` — bool ``[account, channel, slot]`` of allowed contacts, computed
  once per day; the source of the RL action mask, the allocation and the snapshot;
* :meth:`RuleSet.first_violation` — for aligned ``(account, channel, slot_hour)`` triples,
  the index into ``rule_ids`` of the first rule that forbids each (-1 if allowed); the
  simulator's in-day gate, which sees attempts recorded today with
  :meth:`ContactWindow.record`;
* :meth:`RuleSet.explain` — every ``(rule_id, sentence)`` forbidding one contact.

All three evaluate the same ``Rule.forbids`` code (see :mod:`collsim.compliance.rules`),
so they cannot disagree.  Rule sets are YAML (:mod:`collsim.compliance.spec`); bundled:
``us_reg_f``, ``cn_gbt45251`` and the custom example ``strict_example``.

Rule ids.  ``us_reg_f``: ``reach``, ``us_reg_f.cease``, ``us_reg_f.dispute``,
``us_reg_f.consent``, ``us_reg_f.opt_out``, ``us_reg_f.hours``, ``us_reg_f.7in7``,
``us_reg_f.post_conversation``.  ``cn_gbt45251``: ``reach`` (shared: a fact about
contact data, not a legal rule), ``cn.cease``, ``cn.dispute``, ``cn.opt_out`` (the
legal basis differs from Regulation F, so they carry ``cn.`` ids), ``cn.hours``,
``cn.connected_calls_per_day``, ``cn.unanswered_per_day``, ``cn.third_party`` (a
documented obligation: forbids no contact with the borrower).  :func:`validate_plan`
adds ``plan.slot``, ``capacity.<resource>`` and ``capacity.money_budget``.

Slots: a local start hour 0..23; untimed channels (letter, legal) carry -1 and hour
rules do not apply to them (quiet days do).  In the mask, untimed channels have the
same value in every slot column.
"""

from collsim.compliance.ruleset import (
    LEGAL_MIN_DPD_RULE_ID,
    RuleSet,
    RulesetError,
    bundled_rulesets,
    load_ruleset,
    with_legal_floor,
)
from collsim.compliance.validate import Violation, validate_plan
from collsim.compliance.window import ContactWindow

__all__ = [
    "LEGAL_MIN_DPD_RULE_ID",
    "with_legal_floor",
    "ContactWindow",
    "RuleSet",
    "RulesetError",
    "Violation",
    "bundled_rulesets",
    "load_ruleset",
    "validate_plan",
]
