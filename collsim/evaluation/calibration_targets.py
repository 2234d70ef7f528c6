"""Calibration targets as data: what a scenario should reproduce, with bands and sources.

Each bundled scenario ships ``collsim/scenarios/targets/<scenario>.yaml``: a list of
targets, each naming a *metric* (one of :data:`METRICS`, measured by
:mod:`collsim.evaluation.calibrate` from simulated ledgers), either a ``band``
``[low, high]`` or an ``expect: yes`` condition, the public ``source`` and how much
we ``trust`` it.  Shares and effects are fractions (0.34 = 34%, an effect of 0.20 =
+20 percentage points).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from collsim.config import ConfigError, Frozen, _format_validation, read_yaml

Unit = Literal["share", "pp", "ratio"]
Trust = Literal["H", "M-H", "M", "L-M", "L", "assumption"]

METRICS: dict[str, tuple[Unit, str]] = {
    "cure_30d.no_contact": ("share", "accounts cured within 30 days, no contact"),
    "cure_30d.champion": ("share", "accounts cured within 30 days under the champion"),
    "cure_90d.champion": ("share", "accounts cured within 90 days under the champion"),
    "effect.conversation": (
        "pp",
        "30-day cure, one agent call minus no contact, on accounts whose call reached a "
        "right-party conversation (paired, same accounts and seed)",
    ),
    "effect.sms": (
        "pp",
        "30-day cure, one plain SMS minus no contact, on accounts whose SMS was delivered",
    ),
    "effect.no_answer": (
        "pp",
        "30-day cure, one agent call minus no contact, on accounts whose call reached only "
        "voicemail or no answer",
    ),
    "answer_ratio.best_worst_hour": (
        "ratio",
        "agent-call answer rate at the best local operating hour / at the worst "
        "(one call per account a day for five days, each at a uniformly drawn hour)",
    ),
    "rpc_per_attempt.agent_call": (
        "share",
        "right-party conversations per agent-call attempt under the champion",
    ),
    "promise_per_rpc.agent_call": (
        "share",
        "promises to pay per agent-call right-party conversation under the champion",
    ),
    "roll_rate_30d.1-30": (
        "share",
        "accounts starting at 1-30 DPD that roll to 31-60 within 30 days (champion)",
    ),
    "roll_rate_30d.31-60": (
        "share",
        "accounts starting at 31-60 DPD that roll to 61-90 within 30 days (champion)",
    ),
    "roll_shape.1-30_below_31-60": (
        "pp",
        "30-day roll rate 31-60 -> 61-90 minus roll rate 1-30 -> 31-60 (champion); "
        "positive = the early bucket rolls less",
    ),
    "redefault_180d.plan_cure": (
        "share",
        "cures following a completed payment plan that re-default within 180 days "
        "(champion; only cures with 180 days of follow-up in the run)",
    ),
    "agent_occupancy.champion": (
        "share",
        "agent handle time / staffed agent time under the champion",
    ),
    "collection_rate_30d.champion": (
        "share",
        "share of the amount due at the start collected within 30 days (champion)",
    ),
}
"""Measurable metrics: name -> (unit, what is measured)."""


class Target(Frozen):
    """One calibration target."""

    id: str = Field(description="short unique name")
    metric: str = Field(description="what is measured (a key of METRICS)")
    description: str = Field(default="", description="the target in words")
    band: tuple[float | None, float | None] | None = Field(
        default=None, description="[low, high] accepted range of the metric; null = unbounded"
    )
    expect: bool | None = Field(
        default=None, description="yes: the metric's statement must hold (value > 0)"
    )
    start_dpd: tuple[int, int] | None = Field(
        default=None, description="only accounts starting within this DPD range (inclusive)"
    )
    segment: str | None = Field(default=None, description="only accounts of this latent segment")
    source: str = Field(description="public source of the band")
    trust: Trust = Field(description="H, M-H, M, L-M, L or assumption")

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        if value not in METRICS:
            raise ValueError(f"unknown metric {value!r}; expected one of {sorted(METRICS)}")
        return value

    @model_validator(mode="after")
    def _band_or_expect(self) -> Target:
        if (self.band is None) == (self.expect is None):
            raise ValueError(f"target {self.id!r}: give exactly one of band or expect")
        if self.band is not None:
            low, high = self.band
            if low is not None and high is not None and low > high:
                raise ValueError(f"target {self.id!r}: band low {low} is above high {high}")
        if self.start_dpd is not None and self.start_dpd[0] > self.start_dpd[1]:
            raise ValueError(f"target {self.id!r}: start_dpd {list(self.start_dpd)} is reversed")
        return self

    @property
    def unit(self) -> Unit:
        """The metric's unit (share, pp or ratio)."""
        return METRICS[self.metric][0]

    def passes(self, value: float) -> bool:
        """Whether a measured value meets the band (or the ``expect`` condition)."""
        if self.expect is not None:
            return (value > 0) == self.expect
        assert self.band is not None
        low, high = self.band
        return (low is None or value >= low) and (high is None or value <= high)


class TargetsFile(Frozen):
    """A scenario's targets file."""

    scenario: str = Field(description="the scenario the targets are for")
    targets: list[Target] = Field(min_length=1)

    @field_validator("targets")
    @classmethod
    def _unique(cls, value: list[Target]) -> list[Target]:
        ids = [t.id for t in value]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"repeated target id(s) {repeated}")
        return value


def targets_path(scenario: str) -> Path:
    """Path of a bundled scenario's targets file."""
    return Path(str(resources.files("collsim") / "scenarios" / "targets" / f"{scenario}.yaml"))


def load_targets(name_or_path: str | Path) -> TargetsFile:
    """Load and validate a targets file: a bundled scenario name or a YAML path.

    Raises:
        ConfigError: the file is missing or does not validate (the message names the key).
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = targets_path(str(name_or_path))
    if not path.is_file():
        raise ConfigError(f"{path}: no such targets file")
    try:
        return TargetsFile.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise ConfigError(_format_validation(str(path), exc)) from None


__all__ = ["METRICS", "Target", "TargetsFile", "load_targets", "targets_path"]
