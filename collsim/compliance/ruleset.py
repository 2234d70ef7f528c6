"""Rule sets: ordered rules loaded from YAML; the mask, first-violation and explain engine."""

from __future__ import annotations

import copy
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import yaml

from collsim.compliance.rules import Context, MinDpdRule, Rule, TreatmentRule, channel_table
from collsim.compliance.spec import RuleSetSpec
from collsim.compliance.window import ContactWindow
from collsim.io import safe_load_unique
from collsim.portfolio import Portfolio
from collsim.vocab import N_CHANNELS, Channel

_BUNDLED_PACKAGE = "collsim.compliance"
_BUNDLED_DIR = "rulesets"


class RulesetError(ValueError):
    """A rule-set file is missing, unreadable or invalid (the message names file and key)."""


class RuleSet:
    """An ordered list of rules applied on a local day.

    Attributes:
        id: rule-set id (e.g. ``us_reg_f``).
        version: rule-set version string.
        rule_ids: the contact rule ids, in evaluation order (``first_violation`` indexes
            this).
        treatment_rules: the treatment rules (forbid offers/variants, never a contact),
            kept apart so contact rule ids, masks and ledgers are those of the contact
            rules alone.
        treatment_rule_ids: their ids (``first_treatment_violation`` indexes this).
        allowed_hours: int array of local hours allowed by every hours rule.
        content_sha256: sha256 of the rule set's content (every rule's parameters,
            parents' included, in order); ``""`` for a rule set built in code.
    """

    content_sha256: str = ""  # set by load_ruleset; kept by with_rules (the file's content)

    def __init__(self, id: str, version: str, rules: list[Rule], description: str = "") -> None:
        ids = [rule.rule_id for rule in rules]
        treatment = [rule for rule in rules if isinstance(rule, TreatmentRule)]
        rules = [rule for rule in rules if not isinstance(rule, TreatmentRule)]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise RulesetError(f"rule set {id!r}: duplicate rule ids {', '.join(duplicates)}")
        self.id = id
        self.version = version
        self.description = description
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.rule_ids: tuple[str, ...] = tuple(rule.rule_id for rule in rules)
        self.treatment_rules: tuple[TreatmentRule, ...] = tuple(treatment)
        self.treatment_rule_ids: tuple[str, ...] = tuple(rule.rule_id for rule in treatment)
        hours = np.ones(24, dtype=bool)
        for rule in rules:
            hours &= rule.allowed_hours()
        self.allowed_hours: np.ndarray = np.flatnonzero(hours)

    def with_rules(self, extra: list[Rule]) -> RuleSet:
        """Return a copy with ``extra`` rules appended (after the contact rules).

        The copy keeps the instance's class and any attribute set on the instance.
        """
        new = copy.copy(self)
        rules = [*self.rules, *extra, *self.treatment_rules]
        RuleSet.__init__(new, self.id, self.version, rules, self.description)
        return new

    def __repr__(self) -> str:
        return f"RuleSet(id={self.id!r}, version={self.version!r}, rules={len(self.rules)})"

    def mask(
        self, portfolio: Portfolio, window: ContactWindow, slot_hours: np.ndarray
    ) -> np.ndarray:
        """Return bool [N, C, S]: contact allowed on day ``window.day`` by every rule.

        Untimed channels (letter, legal) get the same value in every slot column.

        Args:
            portfolio: the N accounts.
            window: contact counts ending on the day planned.
            slot_hours: int [S] local slot start hours.
        """
        return self.mask_and_channels(portfolio, window, slot_hours)[0]

    def mask_and_channels(
        self,
        portfolio: Portfolio,
        window: ContactWindow,
        slot_hours: np.ndarray,
        within: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (:meth:`mask`, bool [N, C]: the channel is allowed in some slot).

        The second is ``mask.any(axis=2)``, computed from the rules' parts (account rules
        do not depend on the hour, hour rules not on the account) without reducing
        the [N, C, S] mask, unless some rule depends on both.

        Args:
            portfolio: the N accounts.
            window: contact counts ending on the day planned.
            slot_hours: int [S] local slot start hours.
            within: optional bool [N]: accounts outside (e.g. not in collection today)
                get all-False rows, as if a rule forbade everything.
        """
        slot_hours = np.asarray(slot_hours, dtype=np.int64)
        ctx = Context(portfolio, window, rows=None)
        channel = np.arange(N_CHANNELS).reshape(1, N_CHANNELS, 1)
        hour = slot_hours.reshape(1, 1, -1)
        shape = (portfolio.n, N_CHANNELS, slot_hours.shape[0])
        by_axes: dict[tuple[bool, ...], np.ndarray] = {}
        for rule in self.rules:
            forbid = np.asarray(rule.forbids(ctx, channel, hour), dtype=bool)
            forbid = forbid.reshape((1,) * (3 - forbid.ndim) + forbid.shape)
            axes = tuple(size != 1 for size in forbid.shape)
            by_axes[axes] = forbid if axes not in by_axes else by_axes[axes] | forbid
        parts = list(by_axes.values())
        if within is not None:
            parts.append(~np.asarray(within, dtype=bool).reshape(-1, 1, 1))
        return _allowed(parts, shape)

    def forbid_matrix(
        self,
        portfolio: Portfolio,
        window: ContactWindow,
        account: np.ndarray,
        channel: np.ndarray,
        slot_hour: np.ndarray,
    ) -> np.ndarray:
        """Return bool [R, M]: whether rule r forbids contact triple m."""
        account, channel, hour = _aligned(
            ("account", "channel", "slot_hour"), account, channel, slot_hour
        )
        if channel.size and (channel.min() < 0 or channel.max() >= N_CHANNELS):
            raise ValueError("channel codes must be 0..7 (no contact has no rules)")
        result = np.zeros((len(self.rules), account.shape[0]), dtype=bool)
        if account.size == 0:
            return result
        ctx = Context(portfolio, window, rows=account)
        for r, rule in enumerate(self.rules):
            result[r] = np.broadcast_to(rule.forbids(ctx, channel, hour), account.shape)
        return result

    def first_violation(
        self,
        portfolio: Portfolio,
        window: ContactWindow,
        account: np.ndarray,
        channel: np.ndarray,
        slot_hour: np.ndarray,
    ) -> np.ndarray:
        """Return int16 [M]: index into ``rule_ids`` of the first rule forbidding each triple.

        -1 means allowed.

        Args:
            portfolio: the accounts.
            window: contact counts ending on day D, including attempts recorded today.
            account: int [M] account rows.
            channel: int [M] channel codes (0..7).
            slot_hour: int [M] local slot start hours (-1 for untimed channels).
        """
        return _first_forbidding(self.forbid_matrix(portfolio, window, account, channel, slot_hour))

    def explain(
        self,
        portfolio: Portfolio,
        window: ContactWindow,
        account: int,
        channel: int,
        slot_hour: int,
    ) -> list[tuple[str, str]]:
        """Return ``(rule_id, sentence)`` of every rule forbidding one contact (``[]``: allowed)."""
        forbid = self.forbid_matrix(
            portfolio, window, np.array([account]), np.array([channel]), np.array([slot_hour])
        )
        return [
            (self.rules[r].rule_id, self.rules[r].sentence) for r in np.flatnonzero(forbid[:, 0])
        ]

    def describe(self) -> list[tuple[str, str]]:
        """Return ``(rule_id, sentence)`` of every contact rule, in order (for documentation)."""
        return [(rule.rule_id, rule.sentence) for rule in self.rules]

    def describe_treatments(self) -> list[tuple[str, str]]:
        """Return ``(rule_id, sentence)`` of every treatment rule, in order."""
        return [(rule.rule_id, rule.sentence) for rule in self.treatment_rules]

    def treatment_forbid_matrix(
        self,
        portfolio: Portfolio,
        window: ContactWindow,
        account: np.ndarray,
        offer: np.ndarray,
        variant: np.ndarray,
    ) -> np.ndarray:
        """Return bool [R_t, M]: whether treatment rule r forbids (account, offer, variant) m."""
        account, offer, variant = _aligned(("account", "offer", "variant"), account, offer, variant)
        result = np.zeros((len(self.treatment_rules), account.shape[0]), dtype=bool)
        if account.size == 0 or not self.treatment_rules:
            return result
        ctx = Context(portfolio, window, rows=account)
        for r, rule in enumerate(self.treatment_rules):
            result[r] = np.broadcast_to(rule.forbids_treatment(ctx, offer, variant), account.shape)
        return result

    def first_treatment_violation(
        self,
        portfolio: Portfolio,
        window: ContactWindow,
        account: np.ndarray,
        offer: np.ndarray,
        variant: np.ndarray,
    ) -> np.ndarray:
        """Return int16 [M]: index into ``treatment_rule_ids`` of the first rule forbidding
        each (account, offer, variant); -1 means allowed."""
        return _first_forbidding(
            self.treatment_forbid_matrix(portfolio, window, account, offer, variant)
        )

    def treatment_allowed(
        self,
        portfolio: Portfolio,
        window: ContactWindow,
        account: np.ndarray,
        offer: np.ndarray,
        variant: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (bool [M] allowed, object [M] first forbidding rule id or "")."""
        first = self.first_treatment_violation(portfolio, window, account, offer, variant)
        names = np.asarray((*self.treatment_rule_ids, ""), dtype=object)
        return first < 0, names[np.where(first >= 0, first, len(self.treatment_rule_ids))]


def _combine(parts: list[np.ndarray], shape: tuple[int, int, int]) -> np.ndarray:
    """OR broadcastable bool arrays into a new array of ``shape`` (smallest first)."""
    parts = sorted(parts, key=lambda a: a.size)
    if not parts:
        return np.zeros(shape, dtype=bool)
    total = parts[0]
    for part in parts[1:]:
        total = total | part
    if total.shape != shape:
        total = np.broadcast_to(total, shape).copy()
    elif len(parts) == 1:
        total = total.copy()
    return total


def _first_forbidding(forbid: np.ndarray) -> np.ndarray:
    """int16 [M]: the first rule (row) of ``forbid`` [R, M] that is True, -1 if none."""
    if forbid.shape[0] == 0:
        return np.full(forbid.shape[1], -1, dtype=np.int16)
    first = np.argmax(forbid, axis=0)
    return np.where(forbid.any(axis=0), first, -1).astype(np.int16)


def _allowed(parts: list[np.ndarray], shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(allowed bool ``shape``, allowed in some slot bool [N, C]) from the forbidding parts.

    When no part depends on both the account and the hour, the [N, C, S] result is
    written in one pass from the account part and the hour part, and the second
    result comes from the parts without reducing it.
    """
    n, c, s = shape
    if any(p.shape[0] != 1 and p.shape[2] != 1 for p in parts):  # a rule on account and hour
        allowed = _combine(parts, shape)
        np.logical_not(allowed, out=allowed)
        return allowed, np.asarray(allowed.any(axis=2))
    by_account = ~_combine([p for p in parts if p.shape[2] == 1], (n, c, 1))
    by_hour = ~_combine([p for p in parts if p.shape[2] != 1], (1, c, s))
    allowed = np.logical_and(by_account, by_hour, out=np.empty(shape, dtype=bool))
    return allowed, by_account[..., 0] & by_hour.any(axis=2)


LEGAL_MIN_DPD_RULE_ID = "legal.min_dpd"
"""Rule id of the scenario's litigation floor (``legal.min_dpd``)."""


def with_legal_floor(ruleset: RuleSet, min_dpd: int) -> RuleSet:
    """Return ``ruleset`` with the rule "no legal action below ``min_dpd`` DPD" appended.

    The scenario's ``legal.min_dpd`` enters the compliance mask this way, so policies,
    the RL action mask and the engine's gate all refuse legal action below it.  A rule
    set that already has the rule, or a floor of 0, is returned as it is.
    """
    if min_dpd <= 0 or LEGAL_MIN_DPD_RULE_ID in ruleset.rule_ids:
        return ruleset
    rule = MinDpdRule(
        LEGAL_MIN_DPD_RULE_ID,
        f"Lender policy (scenario legal.min_dpd): no legal action before {min_dpd} days past due.",
        channel_table([Channel.LEGAL]),
        min_dpd,
    )
    return ruleset.with_rules([rule])


def bundled_rulesets() -> list[str]:
    """Return the names of the bundled rule sets (e.g. ``us_reg_f``, ``cn_gbt45251``)."""
    folder = resources.files(_BUNDLED_PACKAGE).joinpath(_BUNDLED_DIR)
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _bundled_path(name: str) -> Path:
    return Path(str(resources.files(_BUNDLED_PACKAGE).joinpath(_BUNDLED_DIR, f"{name}.yaml")))


def _resolve(name_or_path: str | Path, base: Path | None) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, str) and text in bundled_rulesets():
        return _bundled_path(text)
    path = Path(text)
    if base is not None and not path.is_absolute():
        path = base / path
    if not path.is_file():
        known = ", ".join(bundled_rulesets())
        raise RulesetError(f"{text}: no such rule-set file and not a bundled rule set ({known})")
    return path


def _read_spec(path: Path) -> RuleSetSpec:
    try:
        data = safe_load_unique(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, ValueError) as exc:  # ValueError: e.g. a bad date
        raise RulesetError(f"{path}: cannot read rule set: {exc}") from None
    if not isinstance(data, dict):
        raise RulesetError(f"{path}: a rule set must be a YAML mapping")
    try:
        return RuleSetSpec.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise RulesetError(f"{path}: {problems}") from None


def _load_rules(
    path: Path, seen: tuple[Path, ...]
) -> tuple[RuleSetSpec, list[Rule], list[dict[str, Any]]]:
    """Return the file's spec, its rules (parents' first) and their specs as JSON data."""
    if path.resolve() in seen:
        chain = " -> ".join(str(p) for p in (*seen, path.resolve()))
        raise RulesetError(f"{path}: 'extends' forms a cycle: {chain}")
    spec = _read_spec(path)
    rules: list[Rule] = []
    content: list[dict[str, Any]] = []
    if spec.extends is not None:
        try:
            parent = _resolve(spec.extends, path.parent)
        except RulesetError as exc:
            raise RulesetError(f"{path}: extends: {exc}") from None
        _, rules, content = _load_rules(parent, (*seen, path.resolve()))
    for index, rule_spec in enumerate(spec.rules):
        try:
            rules.append(rule_spec.build())
        except ValueError as exc:
            raise RulesetError(f"{path}: rules.{index}: {exc}") from None
        content.append(rule_spec.model_dump(mode="json"))
    return spec, rules, content


def content_sha256(content: list[dict[str, Any]]) -> str:
    """Return the sha256 of a rule set's rules (canonical JSON of their specs, in order)."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _check_bundled_identity(ruleset: RuleSet, path: Path) -> None:
    """Refuse a file that claims a bundled id but whose content is not the bundled one."""
    if ruleset.id not in bundled_rulesets():
        return
    if path.resolve() == _bundled_path(ruleset.id).resolve():
        return
    bundled = load_ruleset(ruleset.id)
    if (ruleset.version, ruleset.content_sha256) != (bundled.version, bundled.content_sha256):
        raise RulesetError(
            f"{path}: claims the bundled id {ruleset.id!r} (version {ruleset.version!r}) but "
            f"its content differs from the bundled {ruleset.id} version {bundled.version!r} "
            f"(content sha256 {ruleset.content_sha256[:12]} vs {bundled.content_sha256[:12]}); "
            "give a custom rule set its own id"
        )


def load_ruleset(name_or_yaml_path: str | Path) -> RuleSet:
    """Load a bundled rule set by name (``us_reg_f``, ``cn_gbt45251``) or a YAML file.

    A file may ``extends:`` a bundled name or another file (relative to itself); its
    rules are appended after the parent's.  The rule set's ``content_sha256`` is the
    digest of all its rules; a file that uses a bundled id must have exactly the
    bundled content and version.

    Raises:
        RulesetError: the file is missing or invalid (the message names file and key),
            or it claims a bundled id with other content.
    """
    path = _resolve(name_or_yaml_path, None)
    spec, rules, content = _load_rules(path, ())
    try:
        ruleset = RuleSet(spec.id, spec.version, rules, spec.description)
    except RulesetError as exc:
        raise RulesetError(f"{path}: {exc}") from None
    ruleset.content_sha256 = content_sha256(content)
    _check_bundled_identity(ruleset, path)
    return ruleset


def _aligned(names: tuple[str, ...], *arrays: np.ndarray) -> list[np.ndarray]:
    """The arrays as flat int64; raise ValueError unless they have the same length."""
    flat = [np.asarray(a, dtype=np.int64).reshape(-1) for a in arrays]
    if len({a.shape for a in flat}) > 1:
        raise ValueError(f"{', '.join(names[:-1])} and {names[-1]} must have the same length")
    return flat
