"""Shared fixtures: small scenarios and hand-made portfolios."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from collsim.config import Scenario, load_scenario


def scenario_with(base: str = "default", **dotted: Any) -> Scenario:
    """The bundled scenario with dotted-path overrides (``sim__days=2`` → ``sim.days``)."""
    return load_scenario(base).with_overrides({k.replace("__", "."): v for k, v in dotted.items()})


@pytest.fixture
def small_default() -> Scenario:
    """The default scenario scaled to 600 accounts and 20 days."""
    return scenario_with(sim__days=20).scaled_to(600)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator for test data."""
    return np.random.default_rng(12345)
