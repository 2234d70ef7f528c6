"""Reading a daily plan file in production: manifest, checksum and schema checks.

This module needs only pyarrow and the standard library (it imports nothing else
from collsim), so a production scheduler can read a plan without the simulator,
pydantic, OR-Tools or any RL library::

    from collsim.export.reader import read_plan, PlanError

    table = read_plan("plans/2026-03-09/plan.parquet")

:func:`read_plan` refuses a plan (raises :class:`PlanError`) unless its manifest
``<file name>.manifest.json`` is beside it, the manifest's ``schema_version`` is 2, the
plan file's sha256 equals the manifest's ``sha256.plan``, the columns and their types
are exactly :data:`PLAN_SCHEMA` and the row count equals the manifest's ``rows``.

Writers (:func:`collsim.export.write_plan`) publish the plan and its manifest
``<file name>.manifest.json`` as one unit (:mod:`collsim.export.publish`): both names
are links into one generation folder that is swapped in by a single rename.  A
reader resolves the plan's link first and reads the manifest beside the resolved
file, so it always gets one consistent pair.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

SCHEMA_VERSION = 2
"""The plan file schema version written and accepted (docs/plan_schema.md).

Version 2 (from version 1): adds ``variant`` (the message variant, after ``offer``)
and ``reason_code`` (machine-readable reason, after ``reason``); the manifest is named
``<file name>.manifest.json`` and records ``memo_detail``.  Version-1 plans are
refused: re-plan the day with this collsim.
"""

SCHEMA_VERSION_KEY = b"collsim.schema_version"
"""Parquet schema metadata key holding the schema version."""

PLAN_SCHEMA = pa.schema(
    [
        ("plan_date", pa.date32()),
        ("account_id", pa.string()),
        ("channel", pa.string()),
        ("slot_start_local", pa.string()),
        ("slot_end_local", pa.string()),
        ("timezone", pa.string()),
        ("window_start_utc", pa.timestamp("us", tz="UTC")),
        ("window_end_utc", pa.timestamp("us", tz="UTC")),
        ("agent_pool", pa.string()),
        ("priority", pa.int32()),
        ("expected_value", pa.float64()),
        ("propensity", pa.float64()),
        ("holdout", pa.bool_()),
        ("offer", pa.string()),
        ("variant", pa.string()),
        ("memo", pa.string()),
        ("reason", pa.string()),
        ("reason_code", pa.string()),
        ("policy_id", pa.string()),
    ]
)
"""Columns and types of a schema-version-2 plan file, in file order."""

PLAN_COLUMN_DESCRIPTIONS: dict[str, str] = {
    "plan_date": "the local day the plan is for",
    "account_id": "the account (the only personal identifier in a plan)",
    "channel": "the action: a channel name, or `none` for no contact",
    "slot_start_local": "start of the local window `HH:MM`; empty for `none`, `letter`, `legal`",
    "slot_end_local": "end of the local window `HH:MM`; empty for `none`, `letter`, `legal`",
    "timezone": "the account's IANA time zone",
    "window_start_utc": "the window's start in UTC (DST-aware); null when there is no window",
    "window_end_utc": "the window's end in UTC (DST-aware); null when there is no window",
    "agent_pool": "the agent pool that makes an `agent_call`; null otherwise",
    "priority": "1 = first within its pool and slot (or channel and slot); 0 for no contact",
    "expected_value": (
        "expected gain in portfolio_value of this action over no contact; null without an estimate"
    ),
    "propensity": "probability that the policy chose this action (1.0 if deterministic)",
    "holdout": "the account was randomly held out as a control (channel `none`)",
    "offer": "`none`, `instalment_plan`, `settlement`, `payment_holiday`: the treatment offered",
    "variant": "`standard`, `empathetic`, `firm`: the message variant (tone and template)",
    "memo": (
        "the collector's note: suggested approach (no personal data; no cease, dispute, "
        "vulnerability or promise status unless the manifest's `memo_detail` is true)"
    ),
    "reason": "human-readable: the tier or model that chose it, or why the preferred one "
    "was blocked (a restriction on the account is not named unless `memo_detail`)",
    "reason_code": (
        "machine-readable reason: `tier.<name>`, `blocked.<rule id>`, "
        "`blocked.restricted` (a cease/dispute/vulnerability/hardship rule, unless "
        "`memo_detail`), `holdout`, or the policy's own code"
    ),
    "policy_id": "the artifact id of the policy",
}
"""Meaning of each plan column (schema version 2)."""
assert set(PLAN_COLUMN_DESCRIPTIONS) == set(PLAN_SCHEMA.names)

MANIFEST_FIELDS: dict[str, str] = {
    "schema_version": "plan schema version (2)",
    "format": "`parquet` or `csv`",
    "plan_date": "the local day the plan is for",
    "created_utc": "when the plan was written (UTC)",
    "collsim_version": "version of collsim that wrote it",
    "policy_id": "artifact id of the policy",
    "ruleset": "rule set id, version and content_sha256 the plan was validated against",
    "seed": "seed of the holdout draw",
    "sha256": "sha256 of the artifact manifest, portfolio, history, capacity and plan files",
    "rows": "rows in the plan (one per portfolio account)",
    "counts_by_channel": "planned contacts per channel (and `none`)",
    "holdout_rows": "accounts held out as controls",
    "operating_hours": "local slot start hours the plan may use",
    "cost_per_attempt": "cost of one attempt per channel",
    "capacity": "capacity used and available per pool-hour, budget and money budget",
    "violations": "always 0: a plan with a violation is never written",
    "memo_detail": (
        "whether memos and reasons may name restrictions (cease, dispute, vulnerability, "
        "hardship, open promise): `collsim plan --memo-detail`"
    ),
    "holdout_share": "share of planned contacts held out (added by `collsim plan`)",
    "artifact_kind": "kind of the policy artifact (added by `collsim plan`)",
    "ruleset_override": (
        "null, or the artifact's own rule set (`artifact_ruleset`, `artifact_ruleset_sha256`) "
        "when `--ruleset-override` planned with another one"
    ),
}
"""Fields of the plan manifest ``<plan file name>.manifest.json``."""

FORMULA_START = r"^[=+\-@\t\r']"
"""A CSV text cell matching this is written with one leading ``'`` (spreadsheet safety)."""

NULLABLE_TEXT = ("agent_pool",)
"""Text columns where an empty CSV cell means null."""


CHANNEL_VALUES = (
    "agent_call",
    "voice_bot",
    "sms",
    "email",
    "app_push",
    "letter",
    "field_visit",
    "legal",
    "none",
)
"""Values of the ``channel`` column (``collsim.vocab.CHANNELS`` and ``none``)."""
OFFER_VALUES = ("none", "instalment_plan", "settlement", "payment_holiday")
"""Values of the ``offer`` column (``collsim.vocab.OFFERS``)."""
VARIANT_VALUES = ("standard", "empathetic", "firm")
"""Values of the ``variant`` column (``collsim.vocab.VARIANTS``)."""
NULLABLE = ("window_start_utc", "window_end_utc", "agent_pool", "expected_value")
"""Columns that may hold nulls; every other column is required in every row."""


class PlanError(ValueError):
    """A plan that must not be used (missing manifest, wrong checksum or schema), or
    one that cannot be written (it would contain ``violations`` violations, > 0)."""

    def __init__(self, message: str, violations: int = 0) -> None:
        super().__init__(message)
        self.violations = violations


def manifest_path(plan_path: str | Path) -> Path:
    """Return the manifest path of a plan file: ``plan.parquet`` → ``plan.parquet.manifest.json``.

    Each plan file has its own manifest, so ``plan.parquet`` and ``plan.csv`` in one
    folder never share one.
    """
    path = Path(plan_path)
    return path.with_name(f"{path.name}.manifest.json")


def sha256_of(path: str | Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(plan_path: str | Path) -> dict[str, Any]:
    """Return the manifest of a plan file as a dict.

    Raises:
        PlanError: the manifest is missing, not JSON, not an object, or not version 2.
    """
    path = manifest_path(plan_path)
    if not path.is_file():
        raise PlanError(
            f"{plan_path}: manifest {path.name} is missing; the plan is incomplete or "
            "still being written and must not be used"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise PlanError(f"{path}: manifest is not readable JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise PlanError(f"{path}: manifest must be a JSON object")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise PlanError(
            f"{path}: schema_version {manifest.get('schema_version')!r} is not supported "
            f"(expected {SCHEMA_VERSION})"
        )
    return manifest


def _check_checksum(plan_path: Path, manifest: dict[str, Any]) -> None:
    sums = manifest.get("sha256")
    expected = sums.get("plan") if isinstance(sums, dict) else None
    if not isinstance(expected, str):
        raise PlanError(f"{manifest_path(plan_path)}: manifest has no sha256.plan")
    actual = sha256_of(plan_path)
    if actual != expected:
        raise PlanError(
            f"{plan_path}: checksum mismatch: the file's sha256 is {actual}, the manifest "
            f"says {expected}; the plan was altered or belongs to another manifest"
        )


def _read_csv(path: Path) -> pa.Table:
    with pacsv.open_csv(path) as probe:
        names = probe.schema.names
    types = {f.name: f.type for f in PLAN_SCHEMA if f.name in names}
    convert = pacsv.ConvertOptions(
        column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=False
    )
    return pacsv.read_csv(path, convert_options=convert)


def _read_table(path: Path, kind: str) -> pa.Table:
    try:
        return _read_csv(path) if kind == "csv" else pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        message = " ".join(str(exc).split())
        raise PlanError(f"{path}: cannot read as {kind.upper()}: {message}") from None


def check_schema(table: pa.Table, source: str) -> None:
    """Raise PlanError unless ``table`` has exactly the columns and types of PLAN_SCHEMA."""
    names = table.schema.names
    if names != PLAN_SCHEMA.names:
        missing = [n for n in PLAN_SCHEMA.names if n not in names]
        extra = [n for n in names if n not in PLAN_SCHEMA.names]
        detail = []
        if missing:
            detail.append(f"missing {', '.join(missing)}")
        if extra:
            detail.append(f"unexpected {', '.join(extra)}")
        if not detail:
            detail.append(f"columns out of order: {', '.join(names)}")
        raise PlanError(f"{source}: schema mismatch: {'; '.join(detail)}")
    for expected in PLAN_SCHEMA:
        actual = table.schema.field(expected.name).type
        if actual != expected.type:
            raise PlanError(
                f"{source}: schema mismatch: column {expected.name} has type {actual}, "
                f"expected {expected.type}"
            )


def _check_parquet_version(table: pa.Table, source: str) -> None:
    stored = (table.schema.metadata or {}).get(SCHEMA_VERSION_KEY)
    if stored is not None and stored != str(SCHEMA_VERSION).encode():
        raise PlanError(f"{source}: file schema_version {stored.decode()!r} is not supported")


def unquote_formulas(table: pa.Table) -> pa.Table:
    """Undo the CSV writer's spreadsheet-safety ``'`` prefix on text cells."""
    for i, field in enumerate(table.schema):
        if pa.types.is_string(field.type):
            column = table.column(i)
            quoted = pc.match_substring_regex(column, "^'" + FORMULA_START[1:])
            stripped = pc.utf8_slice_codeunits(column, 1)
            table = table.set_column(i, field, pc.if_else(quoted, stripped, column))
    return table


def _null_empty_text(table: pa.Table) -> pa.Table:
    for name in NULLABLE_TEXT:
        i = table.schema.get_field_index(name)
        column = table.column(i)
        if pa.types.is_string(column.type):
            empty = pc.equal(column, "")
            fixed = pc.if_else(empty, pa.scalar(None, pa.string()), column)
            table = table.set_column(i, name, fixed)
    return table


def _first_row(mask: pa.Array) -> int:
    return int(pc.index(mask, True).as_py()) + 1


def check_values(table: pa.Table, source: str, plan_date: object = None) -> None:
    """Raise PlanError unless nulls, enumerations, uniqueness and ranges are valid.

    Every column but :data:`NULLABLE` is non-null; ``channel``, ``offer`` and
    ``variant`` hold known values; ``account_id`` is unique; ``plan_date`` is one date
    (the manifest's, if given); ``priority`` >= 0; ``propensity`` in (0, 1].
    """
    for name in table.column_names:
        nulls = table.column(name).null_count
        if nulls and name not in NULLABLE:
            first = _first_row(pc.is_null(table.column(name)).combine_chunks())
            raise PlanError(f"{source}: column {name} has {nulls} null(s) (first at row {first})")
    for name, values in (("channel", CHANNEL_VALUES), ("offer", OFFER_VALUES),
                         ("variant", VARIANT_VALUES)):  # fmt: skip
        known = pc.is_in(table.column(name), value_set=pa.array(values)).combine_chunks()
        if not pc.all(known).as_py():
            row = _first_row(pc.invert(known))
            value = table.column(name)[row - 1].as_py()
            raise PlanError(f"{source}: row {row}, column {name}: unknown value {value!r}")
    if pc.count_distinct(table.column("account_id")).as_py() != table.num_rows:
        raise PlanError(f"{source}: account_id is not unique")
    dates = pc.unique(table.column("plan_date")).to_pylist()
    if len(dates) > 1 or (plan_date is not None and dates and str(dates[0]) != str(plan_date)):
        raise PlanError(f"{source}: plan_date {dates} is not the manifest's {plan_date}")
    if table.num_rows and pc.min(table.column("priority")).as_py() < 0:
        raise PlanError(f"{source}: priority must be >= 0")
    propensity = table.column("propensity")
    if (
        table.num_rows
        and not pc.all(pc.and_(pc.greater(propensity, 0.0), pc.less_equal(propensity, 1.0))).as_py()
    ):
        raise PlanError(f"{source}: propensity must be in (0, 1]")


def read_plan(path: str | Path) -> pa.Table:
    """Read a daily plan file (Parquet or CSV) after checking manifest, checksum and schema.

    Args:
        path: the plan file; its manifest ``<file name>.manifest.json`` must be beside it.

    Returns:
        The plan as a table with exactly the columns and types of :data:`PLAN_SCHEMA`.

    Raises:
        PlanError: the file or its manifest is missing, the checksum differs from the
            manifest, the schema or row count does not match, a value is invalid
            (:func:`check_values`: nulls, unknown channel/offer/variant, duplicate
            account, another plan date), or the manifest reports violations.
    """
    path = Path(path)
    if not path.is_file():
        raise PlanError(f"{path}: plan file not found")
    if not manifest_path(path).is_file():
        read_manifest(path)  # raises: the manifest is missing
    path = path.resolve()  # the published generation: plan and manifest of one pair
    manifest = read_manifest(path)
    if manifest.get("violations") != 0:
        raise PlanError(f"{path}: manifest reports violations={manifest.get('violations')!r}")
    _check_checksum(path, manifest)
    kind = manifest.get("format") or ("csv" if path.suffix.lower() == ".csv" else "parquet")
    table = _read_table(path, str(kind))
    if kind == "csv":
        table = _null_empty_text(unquote_formulas(table))
    else:
        _check_parquet_version(table, str(path))
    check_schema(table, str(path))
    check_values(table, str(path), manifest.get("plan_date"))
    if table.num_rows != manifest.get("rows"):
        raise PlanError(
            f"{path}: the file has {table.num_rows} rows, the manifest says {manifest.get('rows')}"
        )
    return table.replace_schema_metadata(None)


__all__ = [
    "PLAN_SCHEMA",
    "SCHEMA_VERSION",
    "PlanError",
    "check_schema",
    "check_values",
    "manifest_path",
    "read_manifest",
    "read_plan",
    "sha256_of",
]
