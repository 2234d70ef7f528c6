"""Experiment specs: scenario variants × policies × seeds, read from YAML.

An experiment YAML (see ``experiments/*.yaml``)::

    name: capacity_what_if
    scenario: default                  # bundled name or path (relative to this file)
    overrides: {sim.max_redials: 1}    # dotted paths into the scenario
    n_accounts: 5000                   # portfolio size (capacity scales with it)
    days: 60
    seeds: 5                           # a count (seeds 0..4) or a list [11, 12]
    axes:                              # what-if axes: their product gives the variants
      - {name: headcount, transform: agents_scale, values: [0.5, 1, 1.5, 2]}
      - {name: sms_cost, path: channels.sms.cost_per_attempt, values: [0.01, 0.05]}
    policies:
      - {label: champion, id: champion}
      - {label: random_20, id: random, params: {contact_rate: 0.2}}
    baseline: champion
    headline_kpi: portfolio_value      # the default; any KPI name
    model_uncertainty: false           # true: each seed draws a fitted scenario's numbers
    kpis: [portfolio_value, net_recovery, total_cost, complaints_per_1000]

An axis either sets a dotted ``path`` of the scenario or applies a named
``transform`` (see :data:`TRANSFORMS`).  Paths ``ruleset`` and ``champion`` and
policy ids ending in ``.yaml``, and the PATH of ``rl:PATH``, ``hybrid:PATH``,
``greedy:PATH`` and ``optimised:PATH``, are resolved relative to the experiment file
(when the file exists there).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from pydantic import Field, ValidationError, field_validator, model_validator

from collsim.config import (
    ConfigError,
    Frozen,
    Scenario,
    _format_validation,
    load_scenario,
    read_yaml,
)
from collsim.plan import Policy
from collsim.policies.params import AnyPolicyParams, NoParams, PolicyParams, params_model

Value = float | int | str | bool

TRANSFORMS: dict[str, str] = {
    "agents_scale": "multiply every agent pool's agents_by_hour by x (rounded, non-zero stays ≥ 1)",
    "budgets_scale": "multiply every daily channel budget (and the money budget) by x",
    "field_agents_scale": "multiply the field agents on duty by x (rounded, non-zero stays ≥ 1)",
    "n_accounts": "portfolio size x (capacity scales with it, before other transforms)",
}
"""Named axis transforms and what they do."""

DEFAULT_KPIS: tuple[str, ...] = (
    "portfolio_value",
    "net_recovery",
    "amount_recovered",
    "total_cost",
    "recovery_rate",
    "cure_rate",
    "complaints_per_1000",
    "blocked",
    "overflow",
    "attempts",
    "agent_occupancy",
)


class ExperimentError(ConfigError):
    """An experiment spec that does not validate; one line per problem naming file and key."""


class Axis(Frozen):
    """One what-if axis: a dotted scenario path or a named transform, and its values."""

    name: str = Field(min_length=1)
    path: str | None = Field(default=None, description="dotted path into the scenario")
    transform: str | None = Field(default=None, description="one of TRANSFORMS")
    values: list[Value] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_target(self) -> Axis:
        if (self.path is None) == (self.transform is None):
            raise ValueError("give exactly one of 'path' or 'transform'")
        if self.transform is not None and self.transform not in TRANSFORMS:
            raise ValueError(f"unknown transform {self.transform!r}; known: {sorted(TRANSFORMS)}")
        if self.transform is not None and not all(
            isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in self.values
        ):
            raise ValueError(f"transform {self.transform!r} needs positive numeric values")
        return self


def _error_line(where: str, item: Any) -> str:
    """``<where>.<field>: <message>`` of one pydantic error."""
    field = ".".join(str(part) for part in item["loc"])
    return f"{where}.{field}: {item['msg']}" if field else f"{where}: {item['msg']}"


def check_seeds(value: int | list[int]) -> int | list[int]:
    """Validate a seed count (at least 1) or a non-empty list of distinct seeds >= 0."""
    if isinstance(value, int) and value < 1:
        raise ValueError("a seed count must be at least 1")
    if isinstance(value, list) and (not value or len(set(value)) != len(value) or min(value) < 0):
        raise ValueError("seeds must be a non-empty list of distinct non-negative integers")
    return value


class PolicySpec(Frozen):
    """A policy under test: a label for the reports, a registry id and constructor params.

    ``params`` are validated into the model of the id's kind
    (:func:`collsim.policies.params.params_model`): a key the kind does not have is an
    error naming the policy and the key.
    """

    label: str = Field(min_length=1)
    id: str = Field(min_length=1, description="no_contact | random | champion | tree YAML path")
    params: AnyPolicyParams = Field(
        default_factory=NoParams, description="typed per kind: see collsim.policies.params"
    )

    @model_validator(mode="before")
    @classmethod
    def _typed_params(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return data
        model = params_model(data["id"])
        params = data.get("params", {})
        if isinstance(params, model):
            return data
        if isinstance(params, PolicyParams):
            params = params.kwargs()
        try:
            typed = model.model_validate(params)
        except ValidationError as exc:
            where = f"policy {data.get('label')!r} ({data['id']}): params"
            problems = [_error_line(where, item) for item in exc.errors()]
            raise ValueError("; ".join(problems)) from None
        return {**data, "params": typed}


class ExperimentSpec(Frozen):
    """An experiment: scenario variants × policies × seeds (see the module docstring)."""

    name: str = Field(min_length=1)
    description: str = ""
    scenario: str = "default"
    overrides: dict[str, Any] = Field(default_factory=dict)
    axes: list[Axis] = Field(default_factory=list)
    policies: list[PolicySpec] = Field(min_length=1)
    baseline: str
    seeds: int | list[int] = 5
    days: int | None = Field(default=None, gt=0, description="default: the scenario's")
    n_accounts: int | None = Field(default=None, gt=0, description="default: the scenario's")
    kpis: list[str] = Field(default_factory=lambda: list(DEFAULT_KPIS))
    headline_kpi: str = Field(
        default="portfolio_value",
        description="the KPI of the headline table and its paired differences",
    )
    model_uncertainty: bool = Field(
        default=False,
        description="a fitted scenario (`collsim fit`): each seed runs on its own draw of the "
        "fitted numbers and paired differences get the interval of one more draw, so they "
        "include model uncertainty, not only seed noise",
    )

    _seeds = field_validator("seeds")(classmethod(lambda cls, v: check_seeds(v)))

    @field_validator("policies")
    @classmethod
    def _labels(cls, value: list[PolicySpec]) -> list[PolicySpec]:
        labels = [p.label for p in value]
        duplicated = sorted({x for x in labels if labels.count(x) > 1})
        if duplicated:
            raise ValueError(f"policy labels must be unique; repeated: {duplicated}")
        return value

    @field_validator("axes")
    @classmethod
    def _axis_names(cls, value: list[Axis]) -> list[Axis]:
        names = [a.name for a in value]
        reserved = {"experiment", "variant", "policy", "policy_id", "seed", "day"}
        bad = sorted({x for x in names if names.count(x) > 1} | (set(names) & reserved))
        if bad:
            raise ValueError(f"axis names must be unique and not {sorted(reserved)}: {bad}")
        return value

    def seed_list(self) -> list[int]:
        """The seeds to run (a count n means seeds 0..n-1)."""
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    def spec_hash(self) -> str:
        """sha256 of the canonical JSON of the spec."""
        data = self.model_dump(mode="json")
        if not data["model_uncertainty"]:
            data.pop("model_uncertainty")  # specs without it hash as before it existed
        canonical = json.dumps(data, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Variant:
    """One point of the what-if grid.

    Attributes:
        index: position in the grid (0 = first value of every axis).
        values: axis name → value.
        scenario: the fully transformed scenario.
        n_accounts: portfolio size.
    """

    index: int
    values: dict[str, Value]
    scenario: Scenario
    n_accounts: int

    @property
    def label(self) -> str:
        """``name=value, …`` or ``base`` when there are no axes."""
        return ", ".join(f"{k}={v}" for k, v in self.values.items()) or "base"


@dataclass(frozen=True)
class Experiment:
    """A loaded spec with its resolved variants."""

    spec: ExperimentSpec
    source: str
    base_dir: Path
    variants: list[Variant]

    @property
    def days(self) -> int:
        """Days simulated per run."""
        return self.spec.days or self.variants[0].scenario.sim.days

    def policy_ref(self, spec: PolicySpec) -> str:
        """The policy id, with a tree YAML path resolved against the spec folder."""
        return resolve_spec_path(spec.id, self.base_dir)


# ---------------------------------------------------------------------------- loading
def load_experiment(path: str | Path) -> Experiment:
    """Load and check an experiment YAML; build every variant and policy once.

    Raises:
        ExperimentError: one line per problem, each naming the file and the key.
    """
    path = Path(path)
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        raise ExperimentError(str(exc)) from None
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise ExperimentError(_format_validation(str(path), exc)) from None
    return build_experiment(spec, str(path), path.parent)


def build_experiment(spec: ExperimentSpec, source: str, base_dir: Path) -> Experiment:
    """Resolve a spec's scenario, overrides, variants and policies; collect every problem."""
    problems: list[str] = []
    if spec.baseline not in {p.label for p in spec.policies}:
        labels = [p.label for p in spec.policies]
        problems.append(f"{source}: baseline: {spec.baseline!r} is not a policy label {labels}")
    unknown_kpis = [k for k in (spec.headline_kpi, *spec.kpis) if not _known_kpi(k)]
    if unknown_kpis:
        problems.append(f"{source}: kpis: unknown KPI(s) {unknown_kpis}")
    base = _base_scenario(spec, source, base_dir, problems)
    if base is not None and spec.model_uncertainty and base.fit is None:
        problems.append(
            f"{source}: model_uncertainty: scenario {spec.scenario!r} has no fit report "
            "(write one with `collsim fit`)"
        )
    variants: list[Variant] = []
    if base is not None:
        variants = _variants(spec, base, source, base_dir, problems)
    if variants:
        _check_policies(spec, variants[0].scenario, source, base_dir, problems)
    if problems:
        raise ExperimentError("\n".join(problems))
    return Experiment(spec, source, base_dir, variants)


def _known_kpi(name: str) -> bool:
    from collsim.metrics import KPI_DESCRIPTIONS

    prefixes = ("attempts.", "rpc_rate.", "ptp_rate.", "roll_rate.", "blocked.")
    return name in KPI_DESCRIPTIONS or name.startswith(prefixes)


_MODEL_ID = re.compile(r"^(rl|hybrid|greedy|optimised):(.+)$")
"""A model policy id ``KIND:PATH``."""


def resolve_spec_path(value: Any, base_dir: Path) -> Any:
    """A tree ``.yaml`` / ``.yml`` path, or the PATH of a ``KIND:PATH`` model id, is taken
    relative to the spec folder if it exists there (else as given: relative to the cwd)."""
    if not isinstance(value, str):
        return value
    model = _MODEL_ID.match(value)
    if model is not None:
        return f"{model.group(1)}:{_relative_to(model.group(2), base_dir)}"
    if value.endswith((".yaml", ".yml")):
        return _relative_to(value, base_dir)
    return value


def _relative_to(path: str, base_dir: Path) -> str:
    if Path(path).is_absolute():
        return path
    candidate = base_dir / path
    return str(candidate) if candidate.exists() else path


def _base_scenario(
    spec: ExperimentSpec, source: str, base_dir: Path, problems: list[str]
) -> Scenario | None:
    try:
        scenario = load_scenario(resolve_spec_path(spec.scenario, base_dir))
    except ConfigError as exc:
        problems.extend(f"{source}: scenario: {line}" for line in str(exc).splitlines())
        return None
    for key, value in spec.overrides.items():
        try:
            scenario = scenario.with_overrides({key: resolve_spec_path(value, base_dir)})
        except (ConfigError, ValueError, IndexError, TypeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            problems.append(f"{source}: overrides.{key}: {first}")
    return scenario


def _variants(
    spec: ExperimentSpec, base: Scenario, source: str, base_dir: Path, problems: list[str]
) -> list[Variant]:
    variants = []
    grids = [list(enumerate(a.values)) for a in spec.axes]
    seen_errors: set[str] = set()
    for index, combo in enumerate(itertools.product(*grids)):
        values = {a.name: v for a, (_, v) in zip(spec.axes, combo, strict=True)}
        try:
            scenario, n = apply_axes(base, spec, values, base_dir)
        except AxisError as exc:
            if str(exc) not in seen_errors:
                seen_errors.add(str(exc))
                problems.append(f"{source}: {exc}")
            continue
        variants.append(Variant(index, values, scenario, n))
    return variants


class AxisError(ValueError):
    """An axis value that cannot be applied (message: ``axes[i].values[j]: why``)."""


def apply_axes(
    base: Scenario, spec: ExperimentSpec, values: dict[str, Value], base_dir: Path
) -> tuple[Scenario, int]:
    """Apply one combination of axis values to the base scenario.

    Order: size (spec ``n_accounts`` or the ``n_accounts`` transform, via
    ``Scenario.scaled_to``), then the other transforms, then the dotted paths.

    Returns:
        (scenario, n_accounts).
    """
    n = spec.n_accounts or base.portfolio.n_accounts
    for axis in spec.axes:
        if axis.transform == "n_accounts":
            n = int(values[axis.name])
    scenario = base.scaled_to(n) if n != base.portfolio.n_accounts else base
    for i, axis in enumerate(spec.axes):
        value = values[axis.name]
        j = axis.values.index(value)
        try:
            if axis.transform in ("agents_scale", "budgets_scale", "field_agents_scale"):
                scenario = _TRANSFORM_FUNCS[axis.transform](scenario, float(value))
            elif axis.path is not None:
                scenario = scenario.with_overrides({axis.path: resolve_spec_path(value, base_dir)})
        except (ConfigError, ValueError, IndexError, TypeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise AxisError(f"axes[{i}] ({axis.name}).values[{j}] = {value!r}: {first}") from None
    return scenario, n


def _round_count(value: float) -> int:
    return max(int(math.floor(value + 0.5)), 1) if value > 0 else 0


def agents_scale(scenario: Scenario, x: float) -> Scenario:
    """Multiply every agent pool's agents per hour by ``x`` (rounded half up; non-zero ≥ 1)."""
    data = scenario.model_dump(mode="json")
    for pool in data["capacity"]["agent_pools"]:
        pool["agents_by_hour"] = {h: _round_count(a * x) for h, a in pool["agents_by_hour"].items()}
    return Scenario.model_validate(data)


def budgets_scale(scenario: Scenario, x: float) -> Scenario:
    """Multiply every daily channel budget and the money budget by ``x``."""
    data = scenario.model_dump(mode="json")
    cap = data["capacity"]
    cap["channel_budgets"] = {c: _round_count(b * x) for c, b in cap["channel_budgets"].items()}
    if cap.get("money_budget") is not None:
        cap["money_budget"] = cap["money_budget"] * x
    return Scenario.model_validate(data)


def field_agents_scale(scenario: Scenario, x: float) -> Scenario:
    """Multiply the field agents on duty by ``x`` (rounded half up; non-zero ≥ 1)."""
    return scenario.with_overrides(
        {"sim.field_agents": _round_count(scenario.sim.field_agents * x)}
    )


_TRANSFORM_FUNCS = {
    "agents_scale": agents_scale,
    "budgets_scale": budgets_scale,
    "field_agents_scale": field_agents_scale,
}


# ---------------------------------------------------------------------------- policies
def build_policy(policy_id: str, params: dict[str, Any], scenario: Scenario) -> Policy:
    """Build a policy from its registry id and constructor params.

    ``params`` go to the policy class's constructor (e.g. ``contact_rate`` for
    ``random``; ``tree`` for ``champion``, default the scenario's tree; ``fallbacks``
    or ``priority`` for ``rl:PATH``, whose model path comes first), except
    ``training`` of the value-model ids (``greedy``, ``optimised``): a mapping of
    :class:`~collsim.research.training.TrainingSettings` fields, e.g.
    ``{seeds: [101, 102], n_accounts: 1000}``, that says how their model is trained.

    Raises:
        ValueError: unknown id or params the class does not accept.
    """
    from collsim.research.registry import TRAINED_POLICY_IDS, make_policy

    kwargs = dict(params)
    training = None
    if policy_id in TRAINED_POLICY_IDS and "training" in kwargs:
        training = _training_settings(kwargs.pop("training"))
    policy = make_policy(policy_id, scenario, training)
    if not kwargs:
        return policy
    if policy_id == "champion":
        kwargs.setdefault("tree", scenario.champion)
    args = []
    if policy_id.startswith(("rl:", "hybrid:")):  # reuse the model the registry loaded
        args = [cast(Any, policy).model]
        kwargs.setdefault("policy_id", policy.policy_id)
    try:
        built: Policy = type(policy)(*args, **kwargs)
    except TypeError as exc:
        raise ValueError(
            f"policy {policy_id!r} does not accept params {sorted(params)}: {exc}"
        ) from None
    return built


def _training_settings(value: Any) -> Any:
    """``TrainingSettings`` from a mapping of its fields (lists become tuples).

    Raises:
        ValueError: not a mapping, or a field the settings do not have.
    """
    from collsim.research.training import TrainingSettings

    if not isinstance(value, dict):
        raise ValueError(f"params.training must be a mapping, got {value!r}")
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    try:
        return TrainingSettings(**fields)
    except TypeError as exc:
        raise ValueError(f"params.training: {exc}") from None


def _check_policies(
    spec: ExperimentSpec, scenario: Scenario, source: str, base_dir: Path, problems: list[str]
) -> None:
    for i, p in enumerate(spec.policies):
        try:
            build_policy(resolve_spec_path(p.id, base_dir), p.params.kwargs(), scenario)
        except (ConfigError, ValueError) as exc:
            first = str(exc).splitlines()[0]
            problems.append(f"{source}: policies[{i}] ({p.label}): {first}")
