"""The contact centre's agent pools: heap dispatch == one SimPy event per call."""

from __future__ import annotations

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

import collsim.sim.engine as engine
from collsim.config import load_scenario
from collsim.policies.champion import TieredChampion
from collsim.sim import Simulation
from collsim.sim.centre import AgentPool, SimPyAgentPool


def _run_hours(
    pool_class: type[AgentPool], agents_by_hour: dict[int, int], hours: list[np.ndarray]
) -> tuple[list[np.ndarray], list[float]]:
    pool = pool_class(simpy.Environment(), "agents", agents_by_hour)
    starts = [pool.run_hour(float(h), h, handle_s).start_h for h, handle_s in enumerate(hours)]
    return starts, pool.free_at_h


@settings(max_examples=150, deadline=None)
@given(
    agents=st.lists(st.integers(0, 6), min_size=1, max_size=5),
    calls=st.lists(
        st.lists(
            st.one_of(
                st.sampled_from([0.0, 30.0, 600.0, 3600.0]),  # ties, exact hours, zero
                st.floats(1.0, 5400.0, allow_nan=False),
            ),
            max_size=40,
        ),
        min_size=1,
        max_size=5,
    ),
)
def test_heap_dispatch_matches_simpy_events(agents: list[int], calls: list[list[float]]) -> None:
    """Start times and seat free times agree bit for bit over consecutive hours."""
    agents_by_hour = dict(enumerate(agents))
    hours = [np.asarray(c, dtype=np.float64) for c in calls]
    fast, fast_free = _run_hours(AgentPool, agents_by_hour, hours)
    slow, slow_free = _run_hours(SimPyAgentPool, agents_by_hour, hours)
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)
    assert fast_free == slow_free


@pytest.mark.parametrize("pool_class", [AgentPool, SimPyAgentPool])
def test_overrun_delays_the_next_hour(pool_class: type[AgentPool]) -> None:
    """A call running past the hour keeps its agent busy into the next hour."""
    starts, free = _run_hours(
        pool_class, {0: 1, 1: 1}, [np.array([3000.0, 1200.0]), np.array([60.0])]
    )
    np.testing.assert_array_equal(starts[0], [0.0, 3000.0 / 3600.0])
    np.testing.assert_allclose(starts[1], [4200.0 / 3600.0])  # not at 1.0: agent busy
    assert free == [pytest.approx(4260.0 / 3600.0)]


def test_hour_ends_with_calls_not_started() -> None:
    """Calls still queued when the hour ends are not started (NaN)."""
    starts, _ = _run_hours(AgentPool, {0: 2}, [np.full(5, 1800.0)])
    np.testing.assert_array_equal(np.isnan(starts[0]), [False, False, False, False, True])


def test_simulation_identical_with_simpy_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole run gives the same ledger with the heap pool and the SimPy reference."""
    scenario = load_scenario("default")

    def ledger_columns() -> dict[str, np.ndarray]:
        sim = Simulation(scenario, seed=3, n_accounts=3_000)
        sim.run(TieredChampion(), days=6)
        return sim.ledger.columns()

    fast = ledger_columns()
    monkeypatch.setattr(engine, "AgentPool", SimPyAgentPool)
    slow = ledger_columns()
    assert fast.keys() == slow.keys()
    for name in fast:
        np.testing.assert_array_equal(fast[name], slow[name], err_msg=name)
    calls = (fast["event"] == engine.EVENT["attempt"]) & (fast["channel"] == 0)
    assert calls.sum() > 1_000
