"""Writing a daily plan file (docs/plan_schema.md, schema version 2) and its manifest.

:func:`write_plan` validates the plan (every rule of the rule set, the operating slots,
every resource's capacity and the money budget) and writes nothing if anything is
violated.  Otherwise it writes the plan (Parquet, or CSV on request) and its
manifest ``<file name>.manifest.json`` (with the plan's sha256) into a new generation
folder and publishes both in one atomic step under an advisory lock
(:func:`collsim.export.publish.publish`): a crash or a concurrent writer never leaves
a plan without its matching manifest, and the previous pair stays readable until
the new one is complete.

Everything is vectorised: text columns are built by indexing small tables of
distinct texts (channel names, ``HH:MM`` strings, reasons, memos) with arrow ``take``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from collsim import __version__
from collsim.compliance import ContactWindow, RuleSet, Violation, validate_plan
from collsim.export.publish import publish
from collsim.export.reader import (
    FORMULA_START,
    PLAN_SCHEMA,
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
    PlanError,
    sha256_of,
)
from collsim.plan import OptionSpace, Plan, Resources
from collsim.portfolio import Portfolio, day_number
from collsim.timeutil import local_to_utc_s
from collsim.vocab import CHANNELS, IS_TIMED, OFFERS, VARIANTS, Channel

CHANNEL_NAMES: tuple[str, ...] = (*CHANNELS, "none")
"""Channel names indexed by channel code, ``none`` last (code -1)."""

APPROACH: dict[str, str] = {
    "agent_call": "Agent call: confirm identity, state the amount due, agree a payment date",
    "voice_bot": "Automated call: payment reminder with self-service payment",
    "sms": "SMS: payment reminder with a payment link",
    "email": "Email: payment reminder with statement and payment link",
    "app_push": "App notification: payment reminder",
    "letter": "Letter: notice of arrears and repayment options",
    "field_visit": "Field visit: discuss repayment options in person",
    "legal": "Legal: refer the account for legal action",
    "none": "No contact today",
}
"""The collector's suggested approach per channel (the start of every memo)."""

_HHMM = np.array([f"{h:02d}:00" for h in range(25)] + [""], dtype=object)
_US_PER_S = 1_000_000


@dataclass(frozen=True, eq=False)
class PlanDay:
    """What a plan is checked and written against.

    Attributes:
        portfolio: the accounts (the plan has one row per account, in this order).
        options: the day's option space (operating slots).
        resources: the day's capacity (checked, and reported in the manifest).
        date: the local day the plan is for.
        window: contact counts ending on ``date`` (from the history); feeds the
            compliance check and the memo's note on recent contact.
    """

    portfolio: Portfolio
    options: OptionSpace
    resources: Resources
    date: dt.date
    window: ContactWindow | None = None


class PlanWriteOptions(BaseModel):
    """How a plan is written and what its manifest records (immutable).

    Attributes:
        policy_id: the artifact id written in every row and the manifest.
        seed: the seed of the plan's randomness (holdout).
        inputs: files whose sha256 the manifest records, by name (``artifact``,
            ``portfolio``, ``history``, ``capacity``).
        csv: write CSV instead of Parquet.
        memo_detail: let memos and reasons name restrictions and open promises
            (:func:`public_reason`; recorded in the manifest).
        extra: more manifest fields (e.g. ``holdout_share``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    policy_id: str
    seed: int = 0
    inputs: Mapping[str, str | Path] = Field(default_factory=dict)
    csv: bool = False
    memo_detail: bool = False
    extra: Mapping[str, Any] = Field(default_factory=dict)

    @property
    def plan_format(self) -> str:
        """``csv`` or ``parquet``."""
        return "csv" if self.csv else "parquet"


# ----------------------------------------------------------------------------- columns
def _take(
    texts: list[str] | list[str | None] | tuple[str, ...] | np.ndarray, index: np.ndarray
) -> pa.Array:
    """Return ``texts[index]`` as an arrow string array (null where a text is None)."""
    dictionary = pa.array(list(texts), type=pa.string())
    return dictionary.take(pa.array(np.asarray(index, dtype=np.int64)))


def _option_resource(
    plan: Plan, portfolio: Portfolio, options: OptionSpace, resources: Resources
) -> np.ndarray:
    """int [N]: the resource each planned contact uses (-1: none or unlimited)."""
    out = np.full(plan.n, -1, dtype=np.int64)
    rows = np.flatnonzero(plan.channel >= 0)
    if rows.size:
        option = options.encode(plan.channel[rows], plan.slot_hour[rows])
        out[rows] = resources.resource_by_zone[portfolio.timezone[rows], option]
    return out


_TONE = {
    "standard": "",
    "empathetic": " Tone: empathetic, help first; ask about circumstances before the amount.",
    "firm": " Tone: firm; state the amount, the date and what happens next.",
}
_RECENT = ("No contact in the last 7 days.", "Contacted 1-2 times in the last 7 days.",
           "Contacted 3+ times in the last 7 days: keep it short.", "")  # fmt: skip
_PROMISE = ("", " Open promise to pay: confirm it rather than ask again.")


RESTRICTED_RULE_WORDS = ("cease", "dispute", "vulnerab", "hardship")
"""A rule whose id contains one of these reveals a restriction on the account (personal
status); without ``memo_detail`` plans name it only as ``blocked.restricted``."""

_BLOCKED_RE = re.compile(r"blocked by ([A-Za-z0-9_.\-]+)")
_TIER_RE = re.compile(r"^tier ([^:]+):")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "unknown"


def public_reason(text: str, detail: bool) -> tuple[str, str]:
    """Return (reason text, reason code) of a policy's reason, as a plan shows it.

    Codes: ``blocked.<rule id>`` (``blocked.restricted`` for a cease, dispute,
    vulnerability or hardship rule unless ``detail``), ``holdout``, ``tier.<name>``,
    else a slug of the text (``value_model_no_option_worth_its_capacity``).
    """
    if text.startswith("holdout"):
        inner, _ = public_reason(text.partition("policy chose: ")[2], detail)
        return f"holdout (control group); policy chose: {inner}", "holdout"
    blocked = _BLOCKED_RE.search(text)
    if blocked:
        rule = blocked.group(1).rstrip(".")
        if not detail and any(word in rule for word in RESTRICTED_RULE_WORDS):
            shown = text[: blocked.start()] + "blocked by a restriction on the account"
            return shown, "blocked.restricted"
        return text, f"blocked.{rule}"
    tier = _TIER_RE.match(text)
    if tier:
        return text, f"tier.{_slug(tier.group(1))}"
    return text, _slug(text)


def _memo_and_reason(
    plan: Plan, portfolio: Portfolio, window: ContactWindow | None, detail: bool = False
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Memo, reason and reason_code columns, built once per distinct combination of parts.

    The memo is the collector's note for a contact: the approach for the channel, the
    offer and tone, what recent history suggests (contacts in the last 7 days) and why
    the policy chose it.  It holds no personal data; an open promise and the name of a
    restriction (cease, dispute, vulnerability, hardship) appear only with ``detail``.
    """
    shown = [public_reason(text, detail) for text in plan.reasons]
    texts = [text for text, _ in shown]
    channel = np.asarray(plan.channel, dtype=np.int64)
    promise = (portfolio.promise_due_day >= 0) if detail else np.zeros(plan.n, dtype=bool)
    parts = {
        "reason": np.asarray(plan.reason, dtype=np.int64),
        "channel": np.where(channel < 0, len(CHANNELS), channel),
        "offer": np.asarray(plan.offer, dtype=np.int64),
        "variant": np.asarray(plan.variant, dtype=np.int64),
        "recent": _recent_contacts(window, plan.n),
        "promise": promise.astype(np.int64),
    }
    combos, inverse = np.unique(np.stack(list(parts.values()), axis=1), axis=0, return_inverse=True)
    memos = [_memo_text(texts, *row) for row in combos.tolist()]
    return (
        _take(memos, inverse.reshape(-1)),
        _take(texts, parts["reason"]),
        _take([code for _, code in shown], parts["reason"]),
    )


def _recent_contacts(window: ContactWindow | None, n: int) -> np.ndarray:
    """0, 1 or 2: no, 1-2, or 3+ attempts on the 7 local days before the plan date; 3: unknown."""
    if window is None:
        return np.full(n, 3, dtype=np.int64)
    attempts = window.attempts[:, :6, :].sum(axis=(1, 2), dtype=np.int64)
    return np.minimum(np.where(attempts >= 3, 2, np.where(attempts >= 1, 1, 0)), 2)


def _memo_text(reasons: list[str], reason: int, channel: int, offer: int, variant: int,
               recent: int, promise: int) -> str:  # fmt: skip
    name = CHANNEL_NAMES[channel]
    text = f"{APPROACH[name]}."
    if name == "none":
        return f"{text} Why: {reasons[reason]}."
    if offer:
        text += f" Offer: {OFFERS[offer].replace('_', ' ')}."
    text += _TONE[VARIANTS[variant]]
    text += f" {_RECENT[recent]}{_PROMISE[promise]}" if _RECENT[recent] else _PROMISE[promise]
    return f"{text} Why: {reasons[reason]}."


def _utc_windows(
    plan: Plan, portfolio: Portfolio, day: int, timed: np.ndarray
) -> tuple[pa.Array, pa.Array]:
    """window_start_utc and window_end_utc (null where untimed or no contact)."""
    hour = np.where(timed, plan.slot_hour, 0).astype(np.int64)
    start = local_to_utc_s(portfolio.timezones, portfolio.timezone, day, hour)
    end = local_to_utc_s(portfolio.timezones, portfolio.timezone, day, hour + 1)
    kind = pa.timestamp("us", tz="UTC")
    return (
        pa.array(start * _US_PER_S, type=kind, mask=~timed),
        pa.array(end * _US_PER_S, type=kind, mask=~timed),
    )


def plan_table(plan: Plan, day: PlanDay, policy_id: str, memo_detail: bool = False) -> pa.Table:
    """Return the plan as a table with exactly :data:`PLAN_SCHEMA` (one row per account).

    ``day.window`` (contact counts ending on the plan date) feeds the memo's note on
    recent contact; without it the memo says nothing about it.  ``memo_detail`` lets
    memos and reasons name restrictions and open promises (:func:`public_reason`).

    ``slot_start_local``/``slot_end_local`` are ``HH:MM`` for timed channels and empty
    for ``none``, ``letter`` and ``legal``; the UTC window is null for those.
    ``agent_pool`` is the pool of the pool-hour resource of an ``agent_call``, else
    null.  ``expected_value`` is null where the policy gave none (NaN).
    """
    portfolio, options, resources = day.portfolio, day.options, day.resources
    n, day_no = plan.n, day_number(day.date)
    channel = np.asarray(plan.channel, dtype=np.int64)
    contacted = channel >= 0
    timed = contacted & IS_TIMED[np.maximum(channel, 0)]
    hour = np.where(timed, plan.slot_hour, len(_HHMM) - 1).astype(np.int64)
    end_hour = np.where(timed, hour + 1, len(_HHMM) - 1)
    window_start, window_end = _utc_windows(plan, portfolio, day_no, timed)
    resource = _option_resource(plan, portfolio, options, resources)
    is_call = channel == int(Channel.AGENT_CALL)
    pools = [*resources.pool_of_resource, None]
    pool_index = np.where(is_call & (resource >= 0), resource, len(pools) - 1)
    memo, reason, reason_code = _memo_and_reason(plan, portfolio, day.window, memo_detail)
    value = np.asarray(plan.expected_value, dtype=np.float64)
    columns = {
        "plan_date": pa.array(np.full(n, day_no, dtype=np.int32)).cast(pa.date32()),
        "account_id": pa.array(portfolio.account_id, type=pa.string()),
        "channel": _take(CHANNEL_NAMES, np.where(contacted, channel, len(CHANNELS))),
        "slot_start_local": _take(_HHMM, hour),
        "slot_end_local": _take(_HHMM, end_hour),
        "timezone": _take(portfolio.timezones, portfolio.timezone),
        "window_start_utc": window_start,
        "window_end_utc": window_end,
        "agent_pool": _take(pools, pool_index),
        "priority": pa.array(np.asarray(plan.priority, dtype=np.int32)),
        "expected_value": pa.array(value, mask=np.isnan(value), type=pa.float64()),
        "propensity": pa.array(np.asarray(plan.propensity, dtype=np.float64)),
        "holdout": pa.array(np.asarray(plan.holdout, dtype=bool)),
        "offer": _take(OFFERS, plan.offer),
        "variant": _take(VARIANTS, plan.variant),
        "memo": memo,
        "reason": reason,
        "reason_code": reason_code,
        "policy_id": pa.repeat(pa.scalar(policy_id, pa.string()), n),
    }
    return pa.table(columns, schema=PLAN_SCHEMA)


# ----------------------------------------------------------------------------- manifest
def capacity_usage(
    plan: Plan, portfolio: Portfolio, options: OptionSpace, resources: Resources
) -> dict[str, Any]:
    """Return used and available units per resource (pool-hour or budget) and money."""
    resource = _option_resource(plan, portfolio, options, resources)
    used = np.bincount(resource[resource >= 0], minlength=len(resources.names))
    per_resource = {
        name: {
            "pool": resources.pool_of_resource[r] if resources.pool_of_resource else None,
            "used": int(used[r]),
            "available": int(resources.capacity[r]),
        }
        for r, name in enumerate(resources.names)
        if used[r] or resources.capacity[r]
    }
    channel = np.asarray(plan.channel, dtype=np.int64)
    spend = float(resources.cost_per_attempt[channel[channel >= 0]].sum())
    money = {"used": round(spend, 6), "available": resources.money_budget}
    return {"resources": per_resource, "money_budget": money}


def counts_by_channel(plan: Plan) -> dict[str, int]:
    """Return the number of rows per channel name (``none`` included)."""
    channel = np.asarray(plan.channel, dtype=np.int64)
    counts = np.bincount(
        np.where(channel < 0, len(CHANNELS), channel), minlength=len(CHANNEL_NAMES)
    )
    return {name: int(c) for name, c in zip(CHANNEL_NAMES, counts, strict=True)}


def plan_manifest(
    plan: Plan, day: PlanDay, ruleset: RuleSet, settings: PlanWriteOptions
) -> dict[str, Any]:
    """Return the plan manifest (without ``sha256.plan``, added once the file exists).

    ``settings.extra`` is merged last, then ``memo_detail`` is recorded.
    """
    options, resources = day.options, day.resources
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "format": settings.plan_format,
        "plan_date": day.date.isoformat(),
        "created_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "collsim_version": __version__,
        "policy_id": settings.policy_id,
        "ruleset": {
            "id": ruleset.id,
            "version": ruleset.version,
            "content_sha256": ruleset.content_sha256,
        },
        "seed": int(settings.seed),
        "sha256": {name: sha256_of(path) for name, path in sorted(settings.inputs.items())},
        "rows": plan.n,
        "counts_by_channel": counts_by_channel(plan),
        "holdout_rows": int(np.count_nonzero(plan.holdout)),
        "operating_hours": [int(h) for h in options.slot_hours],
        "cost_per_attempt": {
            c: float(v) for c, v in zip(CHANNELS, resources.cost_per_attempt, strict=True)
        },
        "capacity": capacity_usage(plan, day.portfolio, options, resources),
        "violations": 0,
        "memo_detail": False,
    }
    manifest.update({**settings.extra, "memo_detail": settings.memo_detail})
    return manifest


# ----------------------------------------------------------------------------- writing
def neutralise_formulas(table: pa.Table) -> pa.Table:
    """Prefix ``'`` to text cells a spreadsheet would run as a formula (CSV plans).

    A cell starting with ``=``, ``+``, ``-``, ``@``, tab, carriage return or ``'`` gets
    one leading ``'``; :func:`collsim.export.read_plan` removes it again.
    """
    for i, field in enumerate(table.schema):
        if pa.types.is_string(field.type):
            column = table.column(i)
            risky = pc.match_substring_regex(column, FORMULA_START)
            quoted = pc.binary_join_element_wise("'", column, "")
            table = table.set_column(i, field, pc.if_else(risky, quoted, column))
    return table


def _write_table(table: pa.Table, path: Path, csv: bool) -> None:
    if csv:
        pacsv.write_csv(neutralise_formulas(table), path)
    else:
        metadata = {SCHEMA_VERSION_KEY: str(SCHEMA_VERSION).encode()}
        pq.write_table(table.replace_schema_metadata(metadata), path, compression="zstd")


def _raise_violations(violations: list[Violation], out_path: Path) -> None:
    shown = "\n".join(f"{v.account_id}, {v.rule_id}, {v.sentence}" for v in violations[:20])
    more = f"\n... and {len(violations) - 20} more" if len(violations) > 20 else ""
    raise PlanError(
        f"{out_path}: not written: the plan has {len(violations)} violation(s):\n{shown}{more}",
        violations=len(violations),
    )


def write_plan(
    plan: Plan,
    day: PlanDay,
    ruleset: RuleSet,
    out_path: str | Path,
    settings: PlanWriteOptions,
) -> dict[str, Any]:
    """Validate a plan and write it with its manifest, atomically; or write nothing.

    Args:
        plan: one row per account of ``day.portfolio``, in portfolio order.
        day: the accounts, option space, capacity, date and contact window
            (``day.window`` is required: the rules are checked against it).
        ruleset: the rule set checked.
        out_path: the plan file; the manifest goes beside it.
        settings: policy id, seed, hashed inputs, format, memo detail and extra
            manifest fields.

    Returns:
        The manifest written.

    Raises:
        PlanError: the plan has a violation (nothing is written).
        ValueError: ``day.window`` is None.
    """
    out_path = Path(out_path)
    if day.window is None:
        raise ValueError("write_plan needs day.window (the contact counts ending on day.date)")
    violations = validate_plan(plan, day.portfolio, day.window, ruleset, day.options, day.resources)
    if violations:
        _raise_violations(violations, out_path)
    table = plan_table(plan, day, settings.policy_id, settings.memo_detail)
    manifest = plan_manifest(plan, day, ruleset, settings)

    def write(plan_file: Path, manifest_file: Path) -> None:
        _write_table(table, plan_file, settings.csv)
        manifest["sha256"]["plan"] = sha256_of(plan_file)
        text = json.dumps(manifest, indent=2, sort_keys=False) + "\n"
        manifest_file.write_text(text, encoding="utf-8")

    publish(out_path, write)
    return manifest


__all__ = [
    "APPROACH",
    "CHANNEL_NAMES",
    "PlanDay",
    "PlanWriteOptions",
    "capacity_usage",
    "counts_by_channel",
    "plan_manifest",
    "plan_table",
    "write_plan",
]
