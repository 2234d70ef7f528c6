"""collsim.check_policy: passes on the bundled policies, names the check a broken one fails."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from collsim import PolicyCheckError, check_policy
from collsim.checks import CHECKS
from collsim.config import load_scenario
from collsim.plan import Plan, Snapshot
from collsim.policies.baselines import NoContact
from collsim.policies.champion import TieredChampion
from collsim.policies.optimised import OptimisedAllocation
from collsim.policies.registry import make_policy
from collsim.sim.engine import Simulation

SCENARIO = load_scenario("default").scaled_to(400)


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    """The fourth day of a champion run (some contact history, some inactive accounts)."""
    sim = Simulation(SCENARIO, seed=3)
    sim.run(TieredChampion(SCENARIO.champion), days=3)
    return sim.begin_day()


class SnapshotValues:
    """A tiny value model: a fixed pseudo-random value per (account, option) and day."""

    def predict_value(self, snapshot: Snapshot) -> np.ndarray:
        rng = np.random.default_rng(snapshot.day)
        shape = (snapshot.n, snapshot.options.n_options)
        return (rng.gamma(1.5, 10.0, shape) - 8.0).astype(np.float32)


def _contact_plan(snapshot: Snapshot, option: np.ndarray, policy_id: str) -> Plan:
    reason = np.zeros(snapshot.n, dtype=np.int16)
    return Plan.from_options(option, snapshot.options, policy_id, ["test"], reason)


class ForbiddenOption:
    """Contacts one account through an option its mask forbids."""

    policy_id = "forbidden_option"

    def decide(self, snapshot: Snapshot) -> Plan:
        allowed = snapshot.option_mask() | ~snapshot.options.valid[None, :]
        row, k = np.argwhere(~allowed)[0]
        option = np.full(snapshot.n, -1)
        option[row] = k
        return _contact_plan(snapshot, option, self.policy_id)


class OverCapacity:
    """The champion deciding as if every resource had a hundred times its capacity."""

    policy_id = "over_capacity"

    def __init__(self) -> None:
        self.inner = TieredChampion(SCENARIO.champion)

    def decide(self, snapshot: Snapshot) -> Plan:
        res = snapshot.resources
        ample = dataclasses.replace(res, capacity=res.capacity * 100 + 100, money_budget=None)
        return self.inner.decide(dataclasses.replace(snapshot, resources=ample))


class Unseeded:
    """The random policy drawing from OS entropy instead of ``snapshot.rng``."""

    policy_id = "unseeded"

    def __init__(self) -> None:
        self.inner = make_policy("random", SCENARIO)

    def decide(self, snapshot: Snapshot) -> Plan:
        return self.inner.decide(dataclasses.replace(snapshot, rng=np.random.default_rng()))


class ShortPlan:
    """Plans one row too few."""

    policy_id = "short"

    def decide(self, snapshot: Snapshot) -> Plan:
        return Plan.no_contact(snapshot.n - 1, self.policy_id)


class FloatChannels:
    """Plans with float channel codes."""

    policy_id = "float_channels"

    def decide(self, snapshot: Snapshot) -> Plan:
        plan = Plan.no_contact(snapshot.n, self.policy_id)
        plan.channel = plan.channel.astype(float)
        return plan


class NoPolicyId:
    def decide(self, snapshot: Snapshot) -> Plan:
        return Plan.no_contact(snapshot.n, "x")


class ReturnsOptions:
    policy_id = "returns_options"

    def decide(self, snapshot: Snapshot) -> Any:
        return np.full(snapshot.n, -1)


def _policies() -> dict[str, Any]:
    return {
        "champion": TieredChampion(SCENARIO.champion),
        "no_contact": NoContact(),
        "random": make_policy("random", SCENARIO),
        "optimised": OptimisedAllocation(SnapshotValues()),
    }


@pytest.mark.parametrize("label", ["champion", "no_contact", "random", "optimised"])
def test_bundled_policies_pass(snapshot: Snapshot, label: str) -> None:
    policy = _policies()[label]
    plan = check_policy(policy, snapshot)
    assert plan.n == snapshot.n
    if label != "no_contact":
        assert plan.contacted().any()  # the checks had contacts to check


@pytest.mark.parametrize(
    ("policy", "check"),
    [
        (NoPolicyId(), "protocol"),
        (ReturnsOptions(), "protocol"),
        (ShortPlan(), "length"),
        (FloatChannels(), "columns"),
        (ForbiddenOption(), "mask"),
        (OverCapacity(), "capacity"),
        (Unseeded(), "determinism"),
    ],
)
def test_broken_policies_fail_the_named_check(snapshot: Snapshot, policy: Any, check: str) -> None:
    with pytest.raises(PolicyCheckError, match=rf"check_policy\[{check}\]") as info:
        check_policy(policy, snapshot)
    assert info.value.check == check and check in CHECKS


def test_the_over_capacity_plan_is_otherwise_valid(snapshot: Snapshot) -> None:
    """The capacity failure is not a mask failure in disguise."""
    plan = OverCapacity().decide(snapshot)
    option = snapshot.options.encode(plan.channel, plan.slot_hour)
    rows = np.flatnonzero(option >= 0)
    assert snapshot.option_mask()[rows, option[rows]].all()


def test_a_stateful_policy_is_checked_on_copies(snapshot: Snapshot) -> None:
    """A policy whose state changes with each decision is deterministic given its state."""

    class Counting:
        policy_id = "counting"

        def __init__(self) -> None:
            self.calls = 0

        def decide(self, snapshot: Snapshot) -> Plan:
            self.calls += 1
            return Plan.no_contact(snapshot.n, f"{self.policy_id}{self.calls}")

    policy = Counting()
    check_policy(policy, snapshot)
    assert policy.calls == 0  # the caller's object is left as it was


def test_a_factory_gives_the_determinism_check_fresh_policies(snapshot: Snapshot) -> None:
    class Uncopyable:
        """Stateful, and refuses to be deep-copied (like a policy holding a torch model)."""

        policy_id = "uncopyable"

        def __init__(self) -> None:
            self.calls = 0

        def __deepcopy__(self, memo: dict[int, Any]) -> Any:
            raise RuntimeError("cannot copy")

        def decide(self, snapshot: Snapshot) -> Plan:
            self.calls += 1
            option = np.full(snapshot.n, -1)
            allowed = np.flatnonzero(snapshot.option_mask()[:, 0])
            option[allowed[: self.calls]] = 0  # contacts more accounts on each call
            return _contact_plan(snapshot, option, self.policy_id)

    with pytest.raises(PolicyCheckError, match="determinism"):
        check_policy(Uncopyable(), snapshot)
    check_policy(Uncopyable(), snapshot, factory=Uncopyable)


def test_import_collsim_stays_light() -> None:
    code = (
        "import sys, collsim; light = 'collsim.checks' not in sys.modules; "
        "collsim.check_policy; print(light, 'collsim.checks' in sys.modules, "
        "'numpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "True"]
