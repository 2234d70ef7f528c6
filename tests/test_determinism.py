"""Same seed → byte-identical ledger; different seed → different; common random numbers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from collsim.ledger import EVENT
from collsim.plan import Snapshot
from collsim.policies.baselines import NoContact, RandomPolicy
from collsim.policies.champion import TieredChampion
from collsim.portfolio import Latent
from collsim.sim import Simulation


def ledger_bytes(scenario, policy, seed, tmp_path, name):
    sim = Simulation(scenario, seed)
    sim.run(policy)
    path = tmp_path / f"{name}.parquet"
    sim.ledger.write_parquet(path, sim.portfolio.account_id)
    return path.read_bytes()


@pytest.mark.parametrize("make_policy", [TieredChampion, RandomPolicy])
def test_same_seed_byte_identical_ledger(small_default, tmp_path, make_policy):
    first = ledger_bytes(small_default, make_policy(), 7, tmp_path, "a")
    second = ledger_bytes(small_default, make_policy(), 7, tmp_path, "b")
    assert first == second


def test_different_seed_different_ledger(small_default, tmp_path):
    first = ledger_bytes(small_default, TieredChampion(), 7, tmp_path, "a")
    second = ledger_bytes(small_default, TieredChampion(), 8, tmp_path, "b")
    assert first != second


def cure_day(sim: Simulation) -> np.ndarray:
    c = sim.ledger.columns()
    day = np.full(sim.n, np.iinfo(np.int32).max)
    cures = c["event"] == EVENT["cure"]
    day[c["account"][cures]] = c["day"][cures]
    return day


def test_common_random_numbers_self_cure(small_default):
    """A self-cure under NoContact happens no later under a policy that never contacts them."""
    base = Simulation(small_default, seed=11)
    base.run(NoContact())
    champ = Simulation(small_default, seed=11)
    champ.run(RandomPolicy(contact_rate=0.03))
    c = champ.ledger.columns()
    touched = np.unique(
        c["account"][
            (c["event"] == EVENT["attempt"])
            | (c["event"] == EVENT["blocked"])
            | (c["event"] == EVENT["overflow"])
        ]
    )
    untouched = np.setdiff1d(np.arange(base.n), touched)
    cured_alone = untouched[cure_day(base)[untouched] < np.iinfo(np.int32).max]
    assert cured_alone.size > 10, "the test needs self-curing, never-contacted accounts"
    assert np.array_equal(cure_day(champ)[cured_alone], cure_day(base)[cured_alone])
    # Same population: the start events are identical.
    assert np.array_equal(base.portfolio.account_id, champ.portfolio.account_id)


class SnapshotSpy:
    """Records every snapshot a policy receives."""

    policy_id = "spy"

    def __init__(self) -> None:
        self.inner = TieredChampion()
        self.snapshots: list[Snapshot] = []

    def decide(self, snapshot: Snapshot):
        self.snapshots.append(snapshot)
        return self.inner.decide(snapshot)


def test_snapshot_exposes_no_latent_trait(small_default):
    spy = SnapshotSpy()
    sim = Simulation(small_default, seed=2)
    sim.run(spy, days=2)
    latent_names = {f.name for f in dataclasses.fields(Latent)}
    latent_arrays = [
        getattr(sim.latent, name)
        for name in latent_names
        if isinstance(getattr(sim.latent, name), np.ndarray)
    ]
    for snapshot in spy.snapshots:
        stack = [snapshot]
        seen = 0
        while stack:
            obj = stack.pop()
            if dataclasses.is_dataclass(obj):
                assert not isinstance(obj, Latent)
                for f in dataclasses.fields(obj):
                    assert f.name not in latent_names - {"segments"}, (
                        f"snapshot field {f.name} is latent"
                    )
                    stack.append(getattr(obj, f.name))
            elif isinstance(obj, np.ndarray):
                seen += 1
                assert not any(np.shares_memory(obj, arr) for arr in latent_arrays)
        assert seen > 10
