"""Simulation and production decide the same plan from the same state.

The simulator runs the champion for some days; on the plan day its portfolio and
contact history are written as the production files (``collsim.tables`` writers,
``docs/input_formats.md``: the accounts in collection or cured, as ``collsim generate``
lists them), read back, and planned with the production path
(:func:`collsim.export.commands.plan_for_day` over a loaded artifact).  Each policy's
production plan must equal the plan the simulator's policy makes on its own Snapshot of
that day: same accounts, channels and slots.

One field of the Snapshot is not in the files: ``contact.broken_promises`` (it needs
payments; production sets it to 0).  Tree policies do not read it, so the champion's
plans are compared as they are.  Model policies read it as a feature, so their
simulator plan is made on the simulator's Snapshot with that one field set to 0 (the
information the files carry); every other feature and the mask must be equal, and the
test checks that some accounts do have broken promises, so the caveat is real.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from collsim.behaviour import ACTIVE, CURED
from collsim.compliance import with_legal_floor
from collsim.config import dump_yaml, load_capacity, load_scenario
from collsim.export.artifact import export_onnx_artifact, export_tree_artifact, load_artifact
from collsim.export.commands import DayInputs, plan_for_day
from collsim.export.testing import tiny_rl_onnx, tiny_value_onnx
from collsim.features import FEATURE_NAMES, observable_features
from collsim.plan import Plan, Policy, Snapshot
from collsim.policies.champion import TieredChampion, load_tree
from collsim.policies.models.value import OnnxValueModel
from collsim.policies.optimised import OptimisedAllocation
from collsim.policies.rl import RLPolicy
from collsim.sim.engine import Simulation, history_from_ledger
from collsim.tables import load_history, load_portfolio, write_history, write_portfolio
from collsim.vocab import N_CHANNELS

N_ACCOUNTS = 1500
HISTORY_DAYS = 12
BROKEN = FEATURE_NAMES.index("broken_promises")


@dataclasses.dataclass
class Day:
    """The simulator's plan day and the production inputs written from it."""

    snapshot: Snapshot
    listed: np.ndarray
    inputs: DayInputs


def _write_inputs(sim: Simulation, listed: np.ndarray, date: dt.date, folder: Path) -> DayInputs:
    """Write the listed accounts and their history as production files; read them back."""
    portfolio = sim.portfolio.take(listed)
    history = history_from_ledger(sim.ledger).for_accounts(listed, sim.n)
    write_portfolio(portfolio, folder / "portfolio.parquet")
    write_history(history, portfolio, folder / "history.parquet")
    dump_yaml(sim.scenario.capacity, folder / "capacity.yaml")
    loaded = load_portfolio(folder / "portfolio.parquet")
    return DayInputs(
        portfolio=loaded,
        history=load_history(folder / "history.parquet", loaded, before=date),
        capacity=load_capacity(folder / "capacity.yaml"),
        ruleset=sim.ruleset,
        date=date,
    )


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Day:
    scenario = load_scenario("default")
    sim = Simulation(scenario, seed=5, n_accounts=N_ACCOUNTS)
    sim.run(TieredChampion(scenario.champion), HISTORY_DAYS)
    snapshot = sim.begin_day()
    status = sim.state.status
    listed = np.flatnonzero((status == ACTIVE) | (status == CURED))
    inputs = _write_inputs(sim, listed, snapshot.date, tmp_path_factory.mktemp("inputs"))
    return Day(snapshot, listed, inputs)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    scenario = load_scenario("default")
    root = tmp_path_factory.mktemp("artifacts")
    k = len(scenario.sim.operating_hours) * N_CHANNELS
    (root / "rl.onnx").write_bytes(tiny_rl_onnx(len(FEATURE_NAMES), 1 + k, seed=4, score=True))
    (root / "value.onnx").write_bytes(tiny_value_onnx(len(FEATURE_NAMES), k, seed=4))
    export_tree_artifact(load_tree(scenario.champion), root / "champion", scenario)
    export_onnx_artifact(root / "rl.onnx", "rl_onnx", root / "rl_onnx", scenario)
    export_onnx_artifact(root / "value.onnx", "value_model", root / "value_model", scenario)
    return {kind: root / kind for kind in ("champion", "rl_onnx", "value_model")}


def _simulator_policy(kind: str, artifact: Path, day: Day) -> Policy:
    """The policy the simulator runs for an artifact's kind (as the registry builds it)."""
    if kind == "champion":
        return TieredChampion(load_scenario("default").champion)
    if kind == "rl_onnx":
        return RLPolicy(artifact)  # the registry's rl:PATH
    hours = day.snapshot.options.slot_hours
    return OptimisedAllocation(OnnxValueModel((artifact / "model.onnx").read_bytes(), 1, hours))


def _without_broken_promises(snapshot: Snapshot) -> Snapshot:
    contact = dataclasses.replace(
        snapshot.contact, broken_promises=np.zeros_like(snapshot.contact.broken_promises)
    )
    return dataclasses.replace(snapshot, contact=contact)


def _production_plan(artifact: Path, day: Day) -> tuple[Plan, Snapshot]:
    policy = load_artifact(artifact)
    floor = int(policy.manifest["legal_min_dpd"])
    inputs = dataclasses.replace(day.inputs, ruleset=with_legal_floor(day.inputs.ruleset, floor))
    decided = plan_for_day(policy, inputs, holdout_share=0.0, seed=0)
    return decided.plan, decided.snapshot


def assert_same_plan(sim_plan: Plan, prod_plan: Plan, listed: np.ndarray) -> None:
    """Listed accounts: same channel and slot; unlisted accounts: no contact in simulation."""
    unlisted = np.setdiff1d(np.arange(sim_plan.n), listed)
    assert np.all(sim_plan.channel[unlisted] < 0)
    np.testing.assert_array_equal(prod_plan.channel, sim_plan.channel[listed])
    np.testing.assert_array_equal(prod_plan.slot_hour, sim_plan.slot_hour[listed])


def test_the_files_give_the_simulators_snapshot(day: Day, artifacts: dict[str, Path]) -> None:
    _, prod = _production_plan(artifacts["champion"], day)
    sim = day.snapshot
    rows = day.listed
    np.testing.assert_array_equal(prod.active, sim.active[rows])
    np.testing.assert_array_equal(prod.mask, sim.mask[rows])
    np.testing.assert_array_equal(prod.resources.capacity, sim.resources.capacity)
    sim_features, prod_features = observable_features(sim)[rows], observable_features(prod)
    other = np.arange(len(FEATURE_NAMES)) != BROKEN
    np.testing.assert_array_equal(prod_features[:, other], sim_features[:, other])
    assert np.all(prod_features[:, BROKEN] == 0)
    assert np.any(sim_features[:, BROKEN] > 0)  # the one field the files lack is in play
    assert prod.blocking_rule is not None and prod.treatment_rule is not None


@pytest.mark.parametrize("kind", ["champion", "rl_onnx", "value_model"])
def test_production_plans_what_the_simulator_plans(
    kind: str, day: Day, artifacts: dict[str, Path]
) -> None:
    snapshot = day.snapshot if kind == "champion" else _without_broken_promises(day.snapshot)
    sim_plan = _simulator_policy(kind, artifacts[kind], day).decide(snapshot)
    prod_plan, _ = _production_plan(artifacts[kind], day)
    assert sim_plan.contacted().sum() > 50  # a plan with contacts competing for capacity
    assert_same_plan(sim_plan, prod_plan, day.listed)


def test_a_history_missing_a_day_gives_another_plan(day: Day, artifacts: dict[str, Path]) -> None:
    """The comparison can fail: without yesterday's contacts the champion's cadence differs."""
    history = day.inputs.history
    keep = np.asarray(history.local_day) < day.snapshot.day - 1
    short = dataclasses.replace(
        history,
        **{f: getattr(history, f)[keep] for f in
           ("account", "local_day", "local_hour", "channel", "outcome", "conversation")},
    )  # fmt: skip
    stale = Day(day.snapshot, day.listed, dataclasses.replace(day.inputs, history=short))
    prod_plan, _ = _production_plan(artifacts["champion"], stale)
    with pytest.raises(AssertionError):
        assert_same_plan(TieredChampion(load_scenario("default").champion).decide(
            day.snapshot), prod_plan, day.listed)  # fmt: skip
