"""The engine's call shape: the policy is given to run/step, latent access is explicit."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from collsim.behaviour import CHARGED_OFF
from collsim.config import Scenario
from collsim.ledger import EVENT
from collsim.plan import Plan, Snapshot
from collsim.policies.baselines import RandomPolicy
from collsim.sim import Simulation
from collsim.sim.latent import LatentAware, LatentView
from collsim.sim.stages import ageing


def test_constructor_takes_no_policy() -> None:
    assert "policy" not in inspect.signature(Simulation.__init__).parameters
    assert "policy" in inspect.signature(Simulation.run).parameters


def test_two_runs_with_the_same_seed_give_identical_ledgers(small_default: Scenario) -> None:
    first = Simulation(small_default, seed=3).run(RandomPolicy(contact_rate=0.05), days=4)
    second = Simulation(small_default, seed=3).run(RandomPolicy(contact_rate=0.05), days=4)
    a, b = first.columns(), second.columns()
    assert a.keys() == b.keys() and len(first) > 0
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


class _Peeker(RandomPolicy):
    """A LatentAware policy recording what it was shown before each decision."""

    def __init__(self) -> None:
        super().__init__(contact_rate=0.0)
        self.seen: list[tuple[int, int]] = []
        self.view: LatentView | None = None

    def observe_latent(self, view: LatentView) -> None:
        self.view = view

    def decide(self, snapshot: Snapshot) -> Plan:
        assert self.view is not None and self.view.day == snapshot.day
        self.seen.append((self.view.day, self.view.n))
        return super().decide(snapshot)


def test_step_hands_the_latent_view_to_latent_aware_policies(small_default: Scenario) -> None:
    sim = Simulation(small_default, seed=1)
    peeker = _Peeker()
    assert isinstance(peeker, LatentAware)
    assert not isinstance(RandomPolicy(), LatentAware)
    sim.run(peeker, days=2)
    assert peeker.seen == [(sim.first_day, sim.n), (sim.first_day + 1, sim.n)]
    assert peeker.view is sim.latent_view
    assert sim.policy_id == peeker.policy_id
    np.testing.assert_array_equal(peeker.view.latent.ability, sim.latent.ability)


def test_latent_view_is_live_and_read_only(small_default: Scenario) -> None:
    sim = Simulation(small_default, seed=1)
    view = sim.latent_view
    for record, name in ((view.latent, "ability"), (view.state, "excitation"),
                         (view.portfolio, "balance")):  # fmt: skip
        array = getattr(record, name)
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0.0
    sim.run(RandomPolicy(contact_rate=0.2), days=3)  # the engine itself still writes
    assert view.day == sim.day
    np.testing.assert_array_equal(view.state.excitation, sim.state.excitation)
    np.testing.assert_array_equal(view.portfolio.balance, sim.portfolio.balance)


def test_stages_operate_on_the_explicit_state(small_default: Scenario) -> None:
    sim = Simulation(small_default, seed=2)
    state = sim.sim_state
    idx = np.array([0, 5, 9])
    ageing.charge_off(state, idx)
    assert np.all(sim.state.status[idx] == CHARGED_OFF)
    c = sim.ledger.columns()
    charged = c["account"][c["event"] == EVENT["charge_off"]]
    assert np.array_equal(np.sort(charged), idx)
