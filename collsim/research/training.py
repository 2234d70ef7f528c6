"""Train a value model for a scenario, cached on disk as ONNX + JSON (never pickle).

:func:`load_or_train` is what the ``greedy`` and ``optimised`` policy ids use: it
simulates a few small exploration runs of the scenario
(:class:`~collsim.research.exploration.ExplorationPolicy`), fits a
:class:`~collsim.research.value.ValueModel`, exports it to
``<cache>/<key>.onnx`` (+ ``<key>.json``) and returns the onnxruntime-backed
:class:`~collsim.policies.models.value.OnnxValueModel`, so a cached and a freshly
trained model give the same decisions.  The key is the sha256 of the scenario's
config hash, the training settings, the feature names and the model format version.

Cache directory: ``$COLLSIM_CACHE/models`` if ``COLLSIM_CACHE`` is set, else
``~/.cache/collsim/models``.  Default settings (3 runs × 3,000 accounts × 90 days,
H = 14) train in ~25–50 s on 2 shared cores.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from collsim.config import Scenario, ValuationConfig
from collsim.features import FEATURE_NAMES
from collsim.policies.models.value import OnnxValueModel
from collsim.policies.params import ValueModelParams
from collsim.research.exploration import ExplorationPolicy, TrainingLog, collect_log
from collsim.research.value import ValueModel

FORMAT_VERSION = 1

OBJECTIVES = ("portfolio_value", "cash")
"""What a value model's outcome measures (``TrainingSettings.objective``)."""


@dataclass(frozen=True)
class TrainingSettings:
    """How a scenario's value model is trained.

    Attributes:
        seeds: seeds of the exploration runs (one run each).
        n_accounts: accounts per exploration run (capacity scales with it).
        days: days per run (rows need ``horizon`` days after them; legal rows need
            ``horizon`` + the legal duration, so keep runs ≥ 60 days for a legal model).
        horizon: H, the outcome window in days.
        random_share: share of account-days decided at random (the rest: champion).
        contact_rate: contact probability of the random part.
        random_state: the estimators' seed.
        model_params: ``ValueModel`` keyword arguments (:class:`ValueModelParams`; a
            mapping is validated into one: an unknown key is an error).
        objective: what the outcome measures: ``"portfolio_value"`` (the change in
            portfolio value, :mod:`collsim.research.exploration`) or ``"cash"``
            (payments − the account's costs, undiscounted: the objective before issue
            15, kept for comparison).
    """

    seeds: tuple[int, ...] = (101, 102, 103)
    n_accounts: int = 3000
    days: int = 90
    horizon: int = 14
    random_share: float = 0.5
    contact_rate: float = 0.5
    random_state: int = 0
    model_params: ValueModelParams = field(default_factory=ValueModelParams)
    objective: str = "portfolio_value"

    def __post_init__(self) -> None:
        """Validate ``model_params`` given as a mapping."""
        if not isinstance(self.model_params, ValueModelParams):
            params = ValueModelParams.model_validate(self.model_params)
            object.__setattr__(self, "model_params", params)

    def key(self, scenario: Scenario) -> str:
        """Cache key for this scenario and these settings."""
        payload = {
            "scenario": scenario.config_hash(),
            "settings": {**asdict(self), "model_params": self.model_params.kwargs()},
            "features": list(FEATURE_NAMES),
            "format": FORMAT_VERSION,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def cache_dir() -> Path:
    """The model cache directory (see module doc)."""
    root = os.environ.get("COLLSIM_CACHE")
    return Path(root) / "models" if root else Path.home() / ".cache" / "collsim" / "models"


def training_log(
    scenario: Scenario, settings: TrainingSettings, treatments: bool = False
) -> TrainingLog:
    """Simulate the exploration runs and return their joined log.

    Args:
        scenario: the scenario simulated.
        settings: seeds, sizes and exploration rates.
        treatments: also randomise treatments on the random contacts (and log them).
    """
    if settings.objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {settings.objective!r}")
    if settings.objective == "cash":  # the same world, valued at its cash only
        scenario = scenario.model_copy(update={"valuation": ValuationConfig()})
    logs = [
        collect_log(
            scenario,
            seed,
            n_accounts=settings.n_accounts,
            days=settings.days,
            horizon=settings.horizon,
            policy=ExplorationPolicy(
                scenario,
                random_share=settings.random_share,
                contact_rate=settings.contact_rate,
                treatments=treatments,
            ),
            treatments=treatments,
        )
        for seed in settings.seeds
    ]
    return TrainingLog.concatenate(logs)


def train_value_model(scenario: Scenario, settings: TrainingSettings | None = None) -> ValueModel:
    """Fit a ValueModel for ``scenario`` (no cache)."""
    settings = settings or TrainingSettings()
    params = settings.model_params.kwargs()
    model = ValueModel(random_state=settings.random_state, **params)
    return model.fit(training_log(scenario, settings))


def load_or_train(
    scenario: Scenario,
    settings: TrainingSettings | None = None,
    *,
    directory: str | Path | None = None,
    retrain: bool = False,
) -> OnnxValueModel:
    """Return the scenario's value model from the cache, training and caching it if absent.

    Args:
        scenario: the scenario.
        settings: training settings (default: :class:`TrainingSettings`).
        directory: cache directory (default: :func:`cache_dir`).
        retrain: train even if cached.

    Returns:
        The onnxruntime-backed model.
    """
    settings = settings or TrainingSettings()
    root = Path(directory) if directory is not None else cache_dir()
    path = root / f"value_{settings.key(scenario)}.onnx"
    if retrain or not (path.exists() and path.with_suffix(".json").exists()):
        root.mkdir(parents=True, exist_ok=True)
        model = train_value_model(scenario, settings)
        model.to_onnx(path, np.asarray(scenario.sim.operating_hours, dtype=np.int64))
    return OnnxValueModel(path)
