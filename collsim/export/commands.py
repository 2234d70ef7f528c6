"""The ``export``, ``plan`` and ``validate-plan`` commands as plain functions.

Each returns an exit code — 0 success, 1 violations found, 2 bad input — and prints
one readable line per problem on stderr (``error: <file>: row R, column C, value "V":
message``).  ``collsim.cli`` wires them into typer.  Nothing is written on exit 1 or 2.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict, TypeVar, Unpack

import numpy as np

from collsim.compliance import (
    ContactWindow,
    RuleSet,
    RulesetError,
    Violation,
    load_ruleset,
    validate_plan,
    with_legal_floor,
)
from collsim.config import Capacity, ConfigError, Scenario, load_capacity, load_scenario
from collsim.export.artifact import (
    MANIFEST,
    ArtifactError,
    ArtifactPolicy,
    OnnxPolicySettings,
    export_onnx_artifact,
    export_tree_artifact,
    load_artifact,
)
from collsim.export.daily import (
    SnapshotSource,
    apply_holdout,
    build_snapshot,
    day_resources,
    explain_blocked,
    fit_money_budget,
    reprioritise,
)
from collsim.export.planfile import PlanDay, PlanWriteOptions, write_plan
from collsim.export.planread import (
    PlanFile,
    at_hours,
    executed_hours,
    field_violations,
    read_plan_file,
)
from collsim.export.publish import output_problems
from collsim.export.reader import PlanError, read_manifest
from collsim.history import History
from collsim.plan import OptionSpace, Plan, Policy, Resources, Snapshot
from collsim.policies.champion import StrategyTree, load_tree
from collsim.portfolio import Portfolio, day_number
from collsim.tables import FIRST_DATE, LAST_DATE, InputError, load_history, load_portfolio
from collsim.vocab import CHANNELS

EXIT_OK = 0
EXIT_VIOLATIONS = 1
EXIT_BAD_INPUT = 2

BAD_INPUT = (
    InputError,
    ConfigError,
    RulesetError,
    ArtifactError,
    PlanError,
    ValueError,
    OSError,
    OverflowError,
    RecursionError,
)
"""Exceptions that mean bad input or an unusable environment (exit 2)."""


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
T = TypeVar("T")


# ----------------------------------------------------------------------------- reporting
def error_lines(exc: BaseException) -> list[str]:
    """Return one line per problem of an input error."""
    if isinstance(exc, InputError):
        return [str(p) for p in exc.problems]
    if isinstance(exc, OSError) and exc.filename:
        return [f"{exc.filename}: {exc.strerror or exc}"]
    return [line for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]


MAX_ERROR_LINES = 20
"""At most this many problem lines are printed; then one line with the count of the rest."""


def capped(lines: Iterable[str], limit: int = MAX_ERROR_LINES) -> list[str]:
    """Return the first ``limit`` lines and, if there were more, ``... and N more problem(s)``."""
    shown: list[str] = []
    rest = 0
    for line in lines:
        if len(shown) < limit:
            shown.append(line)
        else:
            rest += 1
    if rest:
        shown.append(f"... and {rest:,} more problem(s)")
    return shown


def report(lines: Iterable[str]) -> None:
    """Print each line on stderr as ``error: <line>`` (at most 20, then a count)."""
    for line in capped(lines):
        print(f"error: {line}", file=sys.stderr)


class _Problems:
    """Runs loaders, keeping their errors so that every bad input is reported at once."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def run(self, load: Callable[[], T]) -> T | None:
        try:
            return load()
        except BAD_INPUT as exc:
            self.lines.extend(error_lines(exc))
            return None

    def exit_code(self) -> int:
        report(self.lines)
        return EXIT_BAD_INPUT


def parse_date(text: str | dt.date) -> dt.date:
    """Parse a ``YYYY-MM-DD`` date; raise ValueError naming the value otherwise."""
    if isinstance(text, dt.date):
        text = text.isoformat()
    if not _DATE_RE.match(str(text)):
        raise ValueError(f"--date: {text!r} is not a date in the form YYYY-MM-DD")
    try:
        date = dt.date.fromisoformat(str(text))
    except ValueError:
        raise ValueError(f"--date: {text!r} is not a calendar date") from None
    if not FIRST_DATE <= date <= LAST_DATE:
        raise ValueError(f"--date: {text!r} is outside {FIRST_DATE}..{LAST_DATE}")
    return date


# ----------------------------------------------------------------------------- export
POLICY_SPECS = (
    "champion",
    "no_contact",
    "TREE.yaml",
    "rl_onnx:MODEL.onnx",
    "value_model:MODEL.onnx",
)


def _tree_for(policy: str, scenario: Scenario) -> StrategyTree | None:
    if policy == "champion":
        return load_tree(scenario.champion)
    if policy == "no_contact":
        return StrategyTree(id="no_contact", description="contacts nobody", tiers=[])
    if Path(policy).suffix in {".yaml", ".yml"}:
        if not Path(policy).is_file():
            raise ValueError(f"{policy}: strategy tree file not found")
        return load_tree(policy)
    return None


Distiller = Callable[..., tuple[StrategyTree, float]]
"""``distiller(policy, scenario, seed, days, max_depth, n_accounts=...)`` → (tree,
fidelity): simulates the policy (research side, e.g. :func:`collsim.research.distill.distill`)."""


@dataclass(frozen=True)
class Distillation:
    """Whether and how ``collsim export`` distils a readable tree beside the policy.

    Attributes:
        days: if > 0, simulate that many days, distil a strategy tree and write it
            beside the policy with its fidelity (0: no tree; needs a distiller).
        max_depth: depth of the distilled tree.
        accounts: portfolio size of the distillation run (default: the scenario's).
        seed: seed of the distillation run.
    """

    days: int = 0
    max_depth: int = 4
    accounts: int | None = None
    seed: int = 0


NO_DISTILLATION = Distillation()
"""The default: export the policy without a distilled tree."""


def _distilled(
    distiller: Distiller | None, policy: Policy, scenario: Scenario, how: Distillation
) -> tuple[StrategyTree, dict[str, Any]]:
    if distiller is None:
        raise ValueError(
            "--distill-days simulates the policy: export through the research side "
            "(`collsim export`, collsim.research.commands.export_policy)"
        )
    tree, fidelity = distiller(
        policy, scenario, how.seed, how.days, how.max_depth, n_accounts=how.accounts
    )
    info = {
        "fidelity": round(fidelity, 6),
        "days": how.days,
        "seed": how.seed,
        "max_depth": how.max_depth,
    }
    return tree, info


def export_policy(
    policy: str,
    out: Path,
    scenario: str,
    *,
    distill: Distillation = NO_DISTILLATION,
    name: str | None = None,
    distiller: Distiller | None = None,
) -> int:
    """Export a policy as an artifact directory (``collsim export``).

    Args:
        policy: ``champion`` (the scenario's tree), ``no_contact``, a strategy-tree
            YAML path, ``rl_onnx:MODEL.onnx`` or ``value_model:MODEL.onnx`` (``optimised``,
            which trains its model first, is exported by
            :func:`collsim.research.commands.export_policy`).
        out: the artifact directory.
        scenario: bundled scenario name or YAML path (option space, costs, rule set).
        distill: whether and how a readable tree is distilled (:class:`Distillation`;
            needs ``distiller``).
        name: the artifact's policy name (default: its kind).
        distiller: what distils the tree (research side); required with
            ``distill.days > 0``.

    Returns:
        0 on success, 2 on bad input.
    """
    try:
        scen = load_scenario(scenario)
        tree = _tree_for(policy, scen)
        kind, _, model = policy.partition(":")
        if tree is None and (kind not in {"rl_onnx", "value_model"} or not model):
            raise ValueError(
                f"cannot export policy {policy!r}; expected one of {', '.join(POLICY_SPECS)} "
                "(or optimised, which `collsim export` trains first)"
            )
        runner: Policy
        if tree is not None:
            from collsim.export.artifact import ChampionRunner

            runner = ChampionRunner(tree)
        distilled = None
        if tree is not None:
            if distill.days > 0:
                distilled = _distilled(distiller, runner, scen, distill)
            manifest = export_tree_artifact(tree, out, scen, distilled)
        else:
            settings = OnnxPolicySettings(name=name)
            manifest = export_onnx_artifact(model, kind, out, scen, settings)
            if distill.days > 0:
                loaded = load_artifact(out)
                distilled = _distilled(distiller, loaded, scen, distill)
                manifest = export_onnx_artifact(model, kind, out, scen, settings, distilled)
    except BAD_INPUT as exc:
        report(error_lines(exc))
        return EXIT_BAD_INPUT
    fidelity = f", distilled fidelity {distilled[1]['fidelity']:.3f}" if distilled else ""
    print(f"wrote {out}/{MANIFEST} ({manifest['artifact_id']}, kind {manifest['kind']}{fidelity})")
    return EXIT_OK


# ----------------------------------------------------------------------------- plan
@dataclass
class DayInputs:
    """The loaded inputs of one plan day."""

    portfolio: Portfolio
    history: History
    capacity: Capacity
    ruleset: RuleSet
    date: dt.date


def load_inputs(
    portfolio: str | Path,
    history: str | Path,
    capacity: str | Path,
    ruleset: str | Path,
    date: str | dt.date,
    problems: _Problems,
) -> DayInputs | None:
    """Load and validate the day's files; record every problem and return None if any."""
    day = problems.run(lambda: parse_date(date))
    rules = problems.run(lambda: load_ruleset(ruleset))
    cap = problems.run(lambda: load_capacity(capacity))
    accounts = problems.run(lambda: load_portfolio(portfolio))
    contacts = None
    if accounts is not None:
        contacts = problems.run(lambda: load_history(history, accounts, before=day))
    if day is None or rules is None or cap is None or accounts is None or contacts is None:
        return None
    return DayInputs(accounts, contacts, cap, rules, day)


def ruleset_pin_problems(policy: ArtifactPolicy, rules: RuleSet) -> list[str]:
    """Return why ``rules`` is not the rule set the artifact was made for (empty if it is).

    The artifact pins its rule set by content (``ruleset_sha256``); an artifact from
    before pinning is compared by id.
    """
    pinned_id = policy.manifest.get("ruleset")
    pinned_sha = policy.manifest.get("ruleset_sha256")
    same = rules.content_sha256 == pinned_sha if pinned_sha else rules.id == pinned_id
    if same:
        return []
    return [
        f"--ruleset: {rules.id} (content {rules.content_sha256[:12]}) is not the rule set the "
        f"artifact was made for ({pinned_id}, content {str(pinned_sha)[:12]}); pass "
        "--ruleset-override to plan with it anyway (recorded in the manifest)"
    ]


def _override_record(
    policy: ArtifactPolicy, rules: RuleSet, override: bool
) -> dict[str, Any] | None:
    """The manifest's ``ruleset_override``: what the artifact pinned, if overridden."""
    if not override or not ruleset_pin_problems(policy, rules):
        return None
    return {
        "artifact_ruleset": policy.manifest.get("ruleset"),
        "artifact_ruleset_sha256": policy.manifest.get("ruleset_sha256"),
    }


@dataclass
class DayPlan:
    """A decided day: the plan and what it was decided and checked against."""

    plan: Plan
    snapshot: Snapshot
    window: ContactWindow
    resources: Resources


def plan_for_day(
    policy: ArtifactPolicy, inputs: DayInputs, holdout_share: float, seed: int
) -> DayPlan:
    """Decide the day: snapshot, policy, blocked-rule reasons, money budget, holdout, priorities."""
    day = day_number(inputs.date)
    options = policy.options
    resources = day_resources(
        inputs.capacity, options, inputs.portfolio, day, policy.cost_per_attempt
    )
    source = SnapshotSource(inputs.portfolio, inputs.history, inputs.ruleset)
    snapshot, window = build_snapshot(source, options, resources, day, seed)
    plan = policy.decide(snapshot)
    preferred = policy.preferred_option(snapshot)
    if preferred is not None:
        plan = explain_blocked(plan, snapshot, window, inputs.ruleset, preferred)
    plan = fit_money_budget(plan, snapshot)
    plan = apply_holdout(plan, holdout_share, seed, day)
    plan = reprioritise(plan, snapshot)
    return DayPlan(plan, snapshot, window, resources)


class PlanRequest(TypedDict):
    """The keyword arguments of :func:`make_plan` (the options of ``collsim plan``).

    Attributes:
        portfolio, history, capacity: the input files (docs/input_formats.md).
        date: the local day planned, ``YYYY-MM-DD``.
        ruleset: bundled rule set name or YAML path.
        out: the plan file; ``<file name>.manifest.json`` is published beside it
            (:mod:`collsim.export.publish`).  Refused if it is an input, inside the
            artifact, a folder or device, or exists (unless ``force``).
        holdout_share: probability that a planned contact is held out as a control (0).
        seed: seed of the holdout draw (and of a stochastic policy) (0).
        csv: write CSV instead of Parquet (False).
        force: replace an existing plan or file at ``out`` (False).
        ruleset_override: allow a rule set other than the artifact's (recorded in the
            manifest as ``ruleset_override``) (False).
        memo_detail: let memos and reasons name restrictions (cease, dispute,
            vulnerability, hardship) and open promises; recorded in the manifest (False).
    """

    portfolio: str | Path
    history: str | Path
    capacity: str | Path
    date: str | dt.date
    ruleset: str | Path
    out: str | Path
    holdout_share: NotRequired[float]
    seed: NotRequired[int]
    csv: NotRequired[bool]
    force: NotRequired[bool]
    ruleset_override: NotRequired[bool]
    memo_detail: NotRequired[bool]


@dataclass(frozen=True)
class _PlanArgs:
    """A :class:`PlanRequest` with its defaults filled in (unknown or missing keys: TypeError)."""

    portfolio: str | Path
    history: str | Path
    capacity: str | Path
    date: str | dt.date
    ruleset: str | Path
    out: str | Path
    holdout_share: float = 0.0
    seed: int = 0
    csv: bool = False
    force: bool = False
    ruleset_override: bool = False
    memo_detail: bool = False


def make_plan(artifact: str | Path, **request: Unpack[PlanRequest]) -> int:
    """Decide and write the daily plan (``collsim plan``).

    Args:
        artifact: the policy artifact directory.
        **request: the input files, date, rule set, output file and options
            (:class:`PlanRequest`).

    Returns:
        0 written; 1 the plan would contain a violation (nothing written; each
        violation on stderr as ``account_id, rule_id, sentence``); 2 bad input.

    Raises:
        TypeError: a keyword :class:`PlanRequest` does not have, or a missing one.
    """
    args = _PlanArgs(**request)
    portfolio, history, capacity = args.portfolio, args.history, args.capacity
    date, ruleset, out = args.date, args.ruleset, Path(args.out)
    holdout_share, seed, csv = args.holdout_share, args.seed, args.csv
    problems = _Problems()
    policy = problems.run(lambda: load_artifact(artifact))
    inputs = load_inputs(portfolio, history, capacity, ruleset, date, problems)
    if not 0.0 <= holdout_share < 1.0:
        problems.lines.append(f"--holdout-share: {holdout_share} is not in [0, 1)")
    sources = [Path(p) for p in (artifact, portfolio, history, capacity)]
    if Path(str(ruleset)).suffix in {".yaml", ".yml"}:
        sources.append(Path(str(ruleset)))
    problems.lines.extend(output_problems(out, sources, args.force))
    if policy is not None and inputs is not None and not args.ruleset_override:
        problems.lines.extend(ruleset_pin_problems(policy, inputs.ruleset))
    suffix = ".csv" if csv else ".parquet"
    if out.suffix.lower() != suffix:
        problems.lines.append(f"--out {out}: a {suffix[1:]} plan file must end in {suffix}")
    if problems.lines or policy is None or inputs is None:
        return problems.exit_code()
    floor = int(policy.manifest.get("legal_min_dpd", 0))
    inputs = dataclasses.replace(inputs, ruleset=with_legal_floor(inputs.ruleset, floor))
    files = {
        "artifact": Path(artifact) / MANIFEST,
        "portfolio": portfolio,
        "history": history,
        "capacity": capacity,
    }
    try:
        day = plan_for_day(policy, inputs, holdout_share, seed)
        manifest = write_plan(
            day.plan,
            PlanDay(inputs.portfolio, policy.options, day.resources, inputs.date, day.window),
            inputs.ruleset,
            out,
            PlanWriteOptions(
                policy_id=policy.policy_id,
                seed=seed,
                inputs=files,
                csv=csv,
                memo_detail=args.memo_detail,
                extra={
                    "holdout_share": holdout_share,
                    "artifact_kind": policy.kind,
                    "legal_min_dpd": floor,
                    "ruleset_override": _override_record(
                        policy, inputs.ruleset, args.ruleset_override
                    ),
                },
            ),
        )
    except PlanError as exc:
        if not exc.violations:
            report(error_lines(exc))
            return EXIT_BAD_INPUT
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        for line in str(exc).splitlines()[1:]:
            print(line, file=sys.stderr)
        return EXIT_VIOLATIONS
    except BAD_INPUT as exc:
        report(error_lines(exc))
        return EXIT_BAD_INPUT
    contacts = manifest["rows"] - manifest["counts_by_channel"]["none"]
    print(f"wrote {out} ({manifest['rows']:,} accounts, {contacts:,} contacts, 0 violations)")
    return EXIT_OK


# ----------------------------------------------------------------------------- validate
def _legal_floor(plan_path: Path) -> int:
    """The litigation floor (``legal_min_dpd``) of the plan's manifest, else the default
    scenario's ``legal.min_dpd``."""
    try:
        return int(read_manifest(plan_path)["legal_min_dpd"])
    except (PlanError, KeyError, TypeError, ValueError):
        return load_scenario("default").legal.min_dpd


def _plan_context(plan_path: Path) -> tuple[OptionSpace, dict[str, float]]:
    """Operating hours and attempt costs from the plan's manifest, if any.

    Without a manifest: every hour 0..23 is a slot (the rule set's hours rules still
    apply) and costs are the default scenario's.
    """
    try:
        manifest = read_manifest(plan_path)
        hours = [int(h) for h in manifest["operating_hours"]]
        costs = {c: float(v) for c, v in manifest["cost_per_attempt"].items()}
        return OptionSpace(np.asarray(hours, dtype=np.int64)), costs
    except (PlanError, KeyError, TypeError, ValueError, AttributeError):
        scenario = load_scenario("default")
        costs = {c: scenario.channels[c].cost_per_attempt for c in CHANNELS}
        return OptionSpace(np.arange(24)), costs


def _file_violations(plan_path: Path, read: PlanFile, inputs: DayInputs) -> list[Violation]:
    """Every violation of a plan file: rules and capacity at the planned slot, the rules at
    every other hour the file's executed fields imply, and the fields themselves."""
    options, costs = _plan_context(plan_path)
    day = day_number(read.date)
    accounts = inputs.portfolio
    resources = day_resources(inputs.capacity, options, accounts, day, costs)
    window = ContactWindow.from_history(inputs.history, accounts.n, day)
    found = validate_plan(read.plan, accounts, window, inputs.ruleset, options, resources)
    for hours in executed_hours(read, accounts):
        if np.any(hours >= 0):
            moved = at_hours(read.plan, hours)
            found += validate_plan(moved, accounts, window, inputs.ruleset, options)
    found += field_violations(read, accounts, options, resources)
    unique = list(dict.fromkeys(found))
    if not unique:
        return []
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = pa.array([v.account_id for v in unique], type=pa.string())
    known = pa.array(accounts.account_id, type=pa.string())
    row = np.asarray(pc.index_in(ids, value_set=known).fill_null(accounts.n).to_numpy())
    return [unique[i] for i in np.argsort(row, kind="stable")]


def validate_plan_files(
    plan: str | Path,
    portfolio: str | Path,
    history: str | Path,
    capacity: str | Path,
    ruleset: str | Path,
) -> int:
    """Check a plan file against the rules and capacity (``collsim validate-plan``).

    Every executed field is checked: the channel and local slot against the rules,
    operating slots and capacity; the UTC window and slot end against the rules at the
    hours they imply; time zone, UTC window, slot end and agent pool against the
    portfolio and capacity; one row per portfolio account
    (:func:`collsim.export.planread.field_violations`).  Every violation is printed on
    stdout as ``account_id, rule_id, sentence``.

    The rules are the rule set's plus the litigation floor (rule ``legal.min_dpd``)
    recorded in the plan's manifest (default: the default scenario's).

    Returns:
        0 no violation, 1 violations found, 2 bad input.
    """
    problems = _Problems()
    rules = problems.run(lambda: load_ruleset(ruleset))
    cap = problems.run(lambda: load_capacity(capacity))
    accounts = problems.run(lambda: load_portfolio(portfolio))
    read = None
    if accounts is not None:
        read = problems.run(lambda: read_plan_file(plan, accounts))
    contacts = None
    if accounts is not None and read is not None:
        contacts = problems.run(lambda: load_history(history, accounts, before=read.date))
    if problems.lines or rules is None or cap is None or contacts is None or read is None:
        return problems.exit_code()
    rules = with_legal_floor(rules, _legal_floor(Path(plan)))
    inputs = DayInputs(accounts, contacts, cap, rules, read.date)  # type: ignore[arg-type]
    violations = _file_violations(Path(plan), read, inputs)
    for v in violations:
        print(f"{v.account_id}, {v.rule_id}, {v.sentence}")
    print(f"{plan}: {len(violations)} violation(s) in {inputs.portfolio.n:,} rows", file=sys.stderr)
    return EXIT_VIOLATIONS if violations else EXIT_OK


__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_OK",
    "EXIT_VIOLATIONS",
    "POLICY_SPECS",
    "export_policy",
    "make_plan",
    "parse_date",
    "plan_for_day",
    "validate_plan_files",
]
