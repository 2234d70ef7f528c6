"""The champion strategy: a tiered DPD ladder read from YAML (the industry's strategy tree).

A tree is a list of tiers; the first tier whose conditions (DPD range, balance
range, risk band) match an account applies.  A tier names a ladder of channels
in order of preference, preferred local slots, and a cadence (minimum days
between contacts).  Capacity is filled by priority (balance, higher first); an
account whose preferred channel/slot is forbidden or full moves down its ladder.

A tier may also name a treatment: ``offer`` (``vocab.OFFERS``, default none) and
``variant`` (``vocab.VARIANTS``, default standard), passed to the plan for every
contact of the tier.  Whether an offer is allowed for an account (hardship,
vulnerable, ...) is the rule set's business, not the tree's: the engine downgrades a
forbidden offer to none.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
from pydantic import Field, ValidationError, field_validator

from collsim.config import TREATMENT_CHANNELS, ConfigError, Frozen, _format_validation, read_yaml
from collsim.plan import Plan, Snapshot
from collsim.policies.base import fill_capacity
from collsim.vocab import CHANNELS, IS_TIMED, OFFERS, VARIANTS


class Condition(Frozen):
    """Inclusive ranges; ``None`` = unbounded."""

    dpd: tuple[int | None, int | None] = (None, None)
    balance: tuple[float | None, float | None] = (None, None)
    risk: tuple[float | None, float | None] = (None, None)


class Tier(Frozen):
    """One branch of the strategy tree."""

    name: str
    when: Condition = Field(default_factory=Condition)
    ladder: list[str] = Field(description="channels in order of preference; [] = leave alone")
    slots: list[int] = Field(
        default_factory=lambda: [18, 19, 12, 17, 10, 13, 9, 14, 15, 16, 11, 20, 8]
    )
    cadence_days: int = Field(default=1, ge=1, description="minimum days between contacts")
    offer: str = Field(default="none", description="offer made with the tier's contacts")
    variant: str = Field(default="standard", description="script/message variant (tone)")

    @field_validator("offer")
    @classmethod
    def _offer(cls, value: str) -> str:
        if value not in OFFERS:
            raise ValueError(f"unknown offer {value!r}; expected one of {list(OFFERS)}")
        return value

    @field_validator("variant")
    @classmethod
    def _variant(cls, value: str) -> str:
        if value not in VARIANTS:
            raise ValueError(f"unknown variant {value!r}; expected one of {list(VARIANTS)}")
        return value

    @field_validator("ladder")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in CHANNELS]
        if unknown:
            raise ValueError(f"unknown channel(s) {unknown}")
        return value


class StrategyTree(Frozen):
    """A champion strategy tree."""

    id: str
    description: str = ""
    tiers: list[Tier]


def load_tree(name_or_path: str | Path) -> StrategyTree:
    """Load a bundled tree by name (``champion_us``, ``champion_cn``) or a YAML path."""
    path = Path(name_or_path)
    if not path.suffix:
        bundled = resources.files("collsim") / "policies" / "trees" / f"{name_or_path}.yaml"
        path = Path(str(bundled))
    try:
        return StrategyTree.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise ConfigError(_format_validation(str(path), exc)) from None


def _within(values: np.ndarray, bounds: tuple[float | None, float | None]) -> np.ndarray:
    low, high = bounds
    ok = np.ones(values.shape[0], dtype=bool)
    if low is not None:
        ok &= values >= low
    if high is not None:
        ok &= values <= high
    return ok


class TieredChampion:
    """The champion policy: a strategy tree applied to the snapshot.

    Args:
        tree: a StrategyTree, a bundled tree name or a YAML path.
    """

    def __init__(self, tree: StrategyTree | str | Path = "champion_us") -> None:
        self.tree = tree if isinstance(tree, StrategyTree) else load_tree(tree)
        self.policy_id = f"champion:{self.tree.id}"

    def tier_of(self, snapshot: Snapshot) -> np.ndarray:
        """int [N]: the first matching tier of each active account, -1 if none."""
        a = snapshot.accounts
        risk = np.nan_to_num(a.risk_score, nan=0.5)
        tier = np.full(snapshot.n, -1, dtype=np.int64)
        for t, spec in enumerate(self.tree.tiers):
            match = (
                (tier < 0)
                & snapshot.active
                & _within(a.dpd, spec.when.dpd)
                & _within(a.balance, spec.when.balance)
                & _within(risk, spec.when.risk)
            )
            tier[match] = t
        return tier

    def _candidates(self, snapshot: Snapshot) -> np.ndarray:
        """int [T, L]: each tier's candidate options in order of preference."""
        opts = snapshot.options
        lookup = {int(h): i for i, h in enumerate(opts.slot_hours)}
        rows = []
        for spec in self.tree.tiers:
            row = []
            for name in spec.ladder:
                c = CHANNELS.index(name)
                if not IS_TIMED[c]:
                    row.append(c * opts.n_slots)
                    continue
                row.extend(c * opts.n_slots + lookup[h] for h in spec.slots if h in lookup)
            rows.append(row)
        width = max((len(r) for r in rows), default=0)
        table = np.full((len(rows), max(width, 1)), -1, dtype=np.int64)
        for t, row in enumerate(rows):
            table[t, : len(row)] = row
        return table

    def decide(self, snapshot: Snapshot) -> Plan:
        """Return the champion's plan."""
        tier = self.tier_of(snapshot)
        cadence = np.array([t.cadence_days for t in self.tree.tiers] + [1])[tier]
        last = snapshot.contact.last_contact_day
        due = (tier >= 0) & ((last < 0) | (snapshot.day - last >= cadence))
        priority = snapshot.accounts.balance * (1.0 + snapshot.accounts.dpd / 30.0)
        option, _ = fill_capacity(
            snapshot, self._candidates(snapshot), np.where(due, tier, -1), priority
        )
        reasons, reason = self._reasons(snapshot, tier, due, option)
        offer, variant = self._treatments(tier, option, snapshot.options.n_slots)
        return Plan.from_options(
            option,
            snapshot.options,
            self.policy_id,
            reasons,
            reason,
            priority_score=priority,
            offer=offer,
            variant=variant,
        )

    def _treatments(
        self, tier: np.ndarray, option: np.ndarray, n_slots: int
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(offer, variant) codes of each account's tier; None when the tree has none.

        Contacts on channels that carry no treatment (letter, legal) get none/standard.
        """
        offers = np.array([OFFERS.index(t.offer) for t in self.tree.tiers] + [0], dtype=np.int8)
        variants = np.array(
            [VARIANTS.index(t.variant) for t in self.tree.tiers] + [0], dtype=np.int8
        )
        if not offers.any() and not variants.any():
            return None, None
        carries = np.isin(np.arange(len(CHANNELS)), [CHANNELS.index(c) for c in TREATMENT_CHANNELS])
        ok = (option >= 0) & carries[np.maximum(option, 0) // n_slots]
        return np.where(ok, offers[tier], 0), np.where(ok, variants[tier], 0)

    def _reasons(
        self, snapshot: Snapshot, tier: np.ndarray, due: np.ndarray, option: np.ndarray
    ) -> tuple[list[str], np.ndarray]:
        """Reason texts: the tier and channel chosen, or why nothing was planned.

        When an account with no contact planned had its preferred action (its tier's
        first channel at the first slot) forbidden, the reason names that rule.
        """
        names = [t.name for t in self.tree.tiers]
        reasons = [
            "no tier (not in collection or no matching tier)",
            "cadence: contacted recently",
            "nothing allowed or capacity full",
        ]
        reasons += [f"tier {n}: {c}" for n in names for c in CHANNELS]
        reason = np.where(tier < 0, 0, np.where(~due, 1, 2))
        contacted = option >= 0
        channel = np.where(contacted, option // snapshot.options.n_slots, 0)
        reason = np.where(contacted, 3 + np.maximum(tier, 0) * len(CHANNELS) + channel, reason)
        preferred = self._candidates(snapshot)[:, 0]
        missed = np.flatnonzero(due & ~contacted)
        missed = missed[preferred[tier[missed]] >= 0]
        if snapshot.blocking_rule is not None and missed.size:
            first = preferred[tier[missed]]
            rule = snapshot.blocking_rule(
                missed, first // snapshot.options.n_slots, snapshot.options.hour[first]
            )
            texts = sorted(set(rule.tolist()) - {""})
            code = {t: len(reasons) + i for i, t in enumerate(texts)}
            reasons += [f"preferred action blocked by {t}" for t in texts]
            blocked = rule != ""
            reason[missed[blocked]] = [code[t] for t in rule[blocked].tolist()]
        return reasons, reason.astype(np.int16)
