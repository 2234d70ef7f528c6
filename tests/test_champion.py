"""The champion strategy: tiers, cadence, capacity, and value over no contact."""

from __future__ import annotations

import numpy as np

from collsim.metrics import kpis
from collsim.policies.baselines import NoContact
from collsim.policies.champion import TieredChampion, load_tree
from collsim.sim import Simulation
from collsim.vocab import CHANNELS


def test_bundled_trees_load():
    for name in ("champion_us", "champion_cn"):
        tree = load_tree(name)
        assert tree.tiers and all(set(t.ladder) <= set(CHANNELS) for t in tree.tiers)


def test_champion_beats_no_contact_on_paired_seeds(small_default):
    differences = []
    for seed in (1, 2, 3):
        results = {}
        for policy in (NoContact(), TieredChampion()):
            sim = Simulation(small_default, seed)
            sim.run(policy)
            results[policy.policy_id] = kpis(sim.ledger)["net_recovery"]
        differences.append(results["champion:champion_us"] - results["no_contact"])
    assert min(differences) > 0, differences


def test_champion_plan_respects_mask_and_capacity(small_default):
    sim = Simulation(small_default, seed=4)
    snapshot = sim.snapshot()
    plan = TieredChampion().decide(snapshot)
    option = snapshot.options.encode(plan.channel, plan.slot_hour)
    rows = np.flatnonzero(option >= 0)
    assert rows.size > 0
    s = snapshot.options.n_slots
    assert snapshot.mask[rows, option[rows] // s, option[rows] % s].all()
    resource = snapshot.resources.resource_by_zone[snapshot.accounts.timezone[rows], option[rows]]
    used = np.bincount(resource[resource >= 0], minlength=len(snapshot.resources.names))
    assert (used <= snapshot.resources.capacity).all()


def test_reason_names_the_rule_that_blocked_the_preferred_action(small_default):
    policy = TieredChampion()
    sim = Simulation(small_default, seed=5)
    sim.portfolio.cease_communication[:60] = True
    for flag in ("has_phone", "has_mobile", "has_email", "has_app", "has_address"):
        getattr(sim.portfolio, flag)[:60] = True  # so that reach is not the first rule to fail
    snapshot = sim.begin_day()
    plan = policy.decide(snapshot)
    text = plan.reason_text()
    ceased = np.arange(60)[policy.tier_of(snapshot)[:60] >= 0]
    assert ceased.size > 20
    assert not plan.contacted()[ceased].any()
    assert set(text[ceased]) == {"preferred action blocked by us_reg_f.cease"}
    assert any(t.startswith("tier ") for t in text[60:])
