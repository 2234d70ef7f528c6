"""Treatments as actions (issue 19): the env's (option, offer, variant) actions, the
layout carried by the model, RLPolicy planning the treatments it chose, and the
``collsim train --treatments`` → artifact → ``collsim plan`` chain."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collsim.config import load_scenario
from collsim.envs.batch import AccountBatchEnv
from collsim.ledger import EVENT
from collsim.policies.action_layout import ActionLayout
from collsim.policies.models.treatment import TreatmentSupport
from collsim.policies.rl import MASKED_LOGIT, RLPolicy
from collsim.sim.engine import Simulation
from collsim.vocab import CHANNELS, OFFERS, Offer

RULESET = "treatments_example"
"""A rule set with treatment rules (so the mask has rules to respect)."""


def random_masked(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random allowed action per row."""
    draw = rng.random(mask.shape)
    draw[~mask] = -1.0
    return np.asarray(draw.argmax(axis=1))


def run_random(env: AccountBatchEnv, days: int, seed: int, mask_treatments: bool = True) -> Any:
    """Step ``env`` with random masked actions; return (events per day, rewards, offers)."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    events, rewards, offers = [], [], 0
    for _ in range(days):
        mask = env.action_masks()
        if not mask_treatments:  # the option mask alone: every treatment of an allowed option
            layout = env.layout
            assert env._snapshot is not None
            option_ok = env._snapshot.option_mask()[:, layout.option]
            mask = np.concatenate([mask[:, :1], option_ok], axis=1)
            env._mask = mask  # the env drops actions outside its mask: let these through
        action = random_masked(mask, rng)
        chosen = np.maximum(action - 1, 0)
        offers += int(((action > 0) & (env.layout.offer[chosen] > 0)).sum())
        _, reward, *_ = env.step(action)
        events.append(env.last_events["event"].copy())
        rewards.append(reward)
    return events, np.array(rewards), offers


def count(events: list[np.ndarray], name: str) -> int:
    return int(sum((e == EVENT[name]).sum() for e in events))


def test_masked_random_treatment_actions_meet_no_block() -> None:
    env = AccountBatchEnv(num_envs=256, ruleset=RULESET, horizon=30, treatments=True)
    assert env.single_action_space.n == env.layout.n_actions > 1 + env.options.n_options
    events, _, offers = run_random(env, days=12, seed=5)
    assert offers > 500
    assert count(events, "attempt") > 1000
    assert count(events, "blocked") == 0
    assert count(events, "treatment_blocked") == 0
    # Control: without the treatment part of the mask the engine's gate does block.
    control = AccountBatchEnv(num_envs=256, ruleset=RULESET, horizon=30, treatments=True)
    events, _, _ = run_random(control, days=12, seed=5, mask_treatments=False)
    assert count(events, "treatment_blocked") > 0


def test_same_seed_same_treatment_run() -> None:
    runs = [
        run_random(AccountBatchEnv(num_envs=64, horizon=10, treatments=True), 8, seed=2)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    for a, b in zip(runs[0][0], runs[1][0], strict=True):
        np.testing.assert_array_equal(a, b)
    other = run_random(AccountBatchEnv(num_envs=64, horizon=10, treatments=True), 8, seed=3)
    assert not np.array_equal(runs[0][1], other[1])


def test_plain_env_is_channel_by_slot() -> None:
    env = AccountBatchEnv(num_envs=32, horizon=5)
    env.reset(seed=1)
    assert env.layout.is_plain and env.n_actions == 1 + env.options.n_options
    assert env._snapshot is not None
    mask = env.action_masks()
    assert mask[:, 0].all()
    np.testing.assert_array_equal(mask[:, 1:], env._snapshot.option_mask())


def test_layout_round_trips_and_refuses_other_treatments() -> None:
    scenario = load_scenario("default")
    layout = ActionLayout.from_scenario(scenario)
    again = ActionLayout.from_json(layout.to_json())
    for name in ("option", "offer", "variant"):
        np.testing.assert_array_equal(getattr(layout, name), getattr(again, name))
    again.check_scenario(scenario)
    # every action's treatment is supported on its channel (at some DPD)
    support = TreatmentSupport.from_scenario(scenario)
    channel = layout.options.channel[layout.option]
    assert support.tables.supported(
        layout.offer, layout.variant, channel, np.full(channel.size, 999)
    ).all()
    # a scenario whose settlement needs a higher DPD has another layout
    assert scenario.treatments is not None
    settlement = scenario.treatments.settlement.model_copy(update={"min_dpd": 120})
    treatments = scenario.treatments.model_copy(update={"settlement": settlement})
    other = scenario.model_copy(update={"treatments": treatments})
    with pytest.raises(ValueError, match="other treatments"):
        again.check_scenario(other)
    with pytest.raises(ValueError, match="invalid action layout"):
        ActionLayout.from_json(layout.to_json().replace("agent_call", "pigeon"), "m.onnx")


class FavourOffers:
    """A LogitModel with the default scenario's treatment layout that prefers offers."""

    def __init__(self, layout: ActionLayout, seed: int = 0) -> None:
        self.action_layout = layout.to_json()
        self.n_actions = layout.n_actions
        rng = np.random.default_rng(seed)
        self.weights = rng.standard_normal(layout.n_actions).astype(np.float32)
        self.weights[1:] += 2.0 * (layout.offer > 0)
        self.name = "favour_offers"

    def logits(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = np.broadcast_to(self.weights, mask.shape) + 0.01 * obs[:, :1]
        return np.where(mask, out, np.float32(MASKED_LOGIT)).astype(np.float32)


@pytest.mark.parametrize("fallbacks", [0, 4])
def test_rl_policy_plans_the_treatments_it_chose(fallbacks: int) -> None:
    scenario = load_scenario("default")
    layout = ActionLayout.from_scenario(scenario)
    model = FavourOffers(layout)
    policy = RLPolicy(model, fallbacks=fallbacks)
    policy.check_scenario(scenario)
    with pytest.raises(ValueError, match="chooses treatments itself"):
        policy.with_treatments(object())
    sim = Simulation(scenario, seed=4, n_accounts=1500, ruleset=RULESET)
    offered = contacts = 0
    for _ in range(6):
        snapshot = sim.begin_day()
        choice = policy.choose(snapshot)
        plan = policy.decide(snapshot)
        contacted = np.flatnonzero(plan.contacted())
        contacts += contacted.size
        offered += int((plan.offer[contacted] > 0).sum())
        # the plan carries the chosen action's treatment wherever the first choice fit
        first = contacted[
            snapshot.options.encode(plan.channel[contacted], plan.slot_hour[contacted])
            == layout.option[choice.action[contacted] - 1]
        ]
        np.testing.assert_array_equal(plan.offer[first], layout.offer[choice.action[first] - 1])
        np.testing.assert_array_equal(plan.variant[first], layout.variant[choice.action[first] - 1])
        assert not np.any(plan.offer[~plan.contacted()])
        sim.finish_day(plan)
    assert contacts > 1000 and offered > contacts // 2
    events = sim.ledger.columns()["event"]
    assert not np.any(events == EVENT["treatment_blocked"])
    assert not np.any(events == EVENT["blocked"])


def test_rl_policy_fallbacks_fill_capacity_with_treatments() -> None:
    scenario = load_scenario("default")
    layout = ActionLayout.from_scenario(scenario)
    sim = Simulation(scenario, seed=8, n_accounts=3000)
    snapshot = sim.begin_day()
    single = RLPolicy(FavourOffers(layout, seed=1)).decide(snapshot)
    more = RLPolicy(FavourOffers(layout, seed=1), fallbacks=6).decide(snapshot)
    assert more.contacted().sum() > single.contacted().sum()
    assert (more.offer[more.contacted()] > 0).any()


def test_wrong_width_model_is_refused() -> None:
    scenario = load_scenario("default")
    model = FavourOffers(ActionLayout.from_scenario(scenario))
    model.n_actions += 1
    model.weights = np.r_[model.weights, np.float32(0.0)]
    sim = Simulation(scenario, seed=1, n_accounts=50)
    with pytest.raises(ValueError, match="actions"):
        RLPolicy(model).decide(sim.begin_day())


COLLSIM = Path(sys.executable).with_name("collsim")
DATE = "2026-03-09"


def test_train_with_treatments_exports_a_plan_with_its_offers(tmp_path: Path) -> None:
    """``collsim train --treatments`` (tiny) → artifact → ``collsim plan``: offers it chose."""
    import pyarrow.parquet as pq

    from collsim.export.commands import make_plan, validate_plan_files
    from collsim.rl.commands import train
    from collsim.rl.logits import TorchLogits

    run = tmp_path / "run"
    overrides = {
        "steps": 4096, "n_envs": 64, "n_steps": 32, "batch_size": 512, "eval_every": 4096,
        "eval_accounts": 300, "horizon": 15, "treatments": True, "keep_checkpoints": False,
    }  # fmt: skip
    assert train(run, overrides, progress=False) == 0
    gen = tmp_path / "gen"
    args = [str(COLLSIM), "generate", "--accounts", "600", "--seed", "2", "--date", DATE]
    subprocess.run([*args, "--out", str(gen)], check=True, capture_output=True, timeout=120)
    files = {name: gen / f"{name}.parquet" for name in ("portfolio", "history")}
    files["capacity"] = gen / "capacity.yaml"
    out = tmp_path / "plan.parquet"
    assert make_plan(run / "artifact", **files, date=DATE, ruleset="us_reg_f", out=out) == 0
    assert validate_plan_files(out, **files, ruleset="us_reg_f") == 0
    plan = pq.read_table(out).to_pandas()
    offered = plan[plan["offer"] != "none"]
    assert len(offered) > 0
    portfolio = pq.read_table(files["portfolio"]).to_pandas().set_index("account_id")
    dpd = portfolio.loc[offered["account_id"], "dpd"].to_numpy()
    support = TreatmentSupport.from_scenario(load_scenario("default"))
    ok = support.tables.supported(
        np.array([OFFERS.index(o) for o in offered["offer"]]),
        np.array([["standard", "empathetic", "firm"].index(v) for v in offered["variant"]]),
        np.array([CHANNELS.index(c) for c in offered["channel"]]),
        dpd,
    )
    assert ok.all()
    assert (offered["offer"] == OFFERS[Offer.SETTLEMENT]).sum() <= (dpd >= 91).sum()
    # The .zip (layout beside it) and the ONNX artifact decide alike in simulation.
    sim = Simulation(load_scenario("default"), seed=3, n_accounts=400)
    snapshot = sim.begin_day()
    a = RLPolicy(TorchLogits(run / "best_model.zip")).decide(snapshot)
    b = RLPolicy(run / "artifact").decide(snapshot)
    np.testing.assert_array_equal(a.channel, b.channel)
    np.testing.assert_array_equal(a.offer, b.offer)
    np.testing.assert_array_equal(a.variant, b.variant)
