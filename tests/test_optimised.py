"""GreedyScore / OptimisedAllocation / OraclePolicy: contracts, optimality, paired runs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats

from collsim.config import Scenario, load_scenario
from collsim.metrics import kpis
from collsim.plan import Plan, Policy, Snapshot
from collsim.policies.champion import TieredChampion
from collsim.policies.optimised import GreedyScore, OptimisedAllocation
from collsim.research.oracle import OraclePolicy
from collsim.sim.engine import Simulation
from collsim.sim.latent import LatentAware
from collsim.vocab import Channel


class RandomValues:
    """A value model with seeded random values (some negative), for contract tests."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def predict_value(self, snapshot: Snapshot) -> np.ndarray:
        shape = (snapshot.n, snapshot.options.n_options)
        return (self.rng.gamma(1.5, 10.0, shape) - 8.0).astype(np.float32)


def _option(snapshot: Snapshot, plan: Plan) -> np.ndarray:
    return snapshot.options.encode(plan.channel, plan.slot_hour)


def _check_plan(snapshot: Snapshot, plan: Plan) -> None:
    option = _option(snapshot, plan)
    rows = np.flatnonzero(option >= 0)
    allowed = snapshot.option_mask()
    assert allowed[rows, option[rows]].all(), "a masked option was chosen"
    res = snapshot.resources
    used = res.resource_by_zone[snapshot.accounts.timezone[rows], option[rows]]
    count = np.bincount(used[used >= 0], minlength=res.capacity.size)
    assert np.all(count <= res.capacity), "capacity exceeded"
    assert np.all(plan.expected_value[rows] > 0)
    assert np.all(plan.expected_value[option < 0] == 0)
    assert plan.reason.shape == (snapshot.n,)
    assert len(plan.reasons) > int(plan.reason.max())


@pytest.fixture(scope="module")
def small() -> Scenario:
    return load_scenario("default").scaled_to(800)


@pytest.mark.parametrize("kind", [GreedyScore, OptimisedAllocation])
def test_policies_respect_mask_and_capacity(small: Scenario, kind: Any) -> None:
    policy = kind(RandomValues(0))
    sim = Simulation(small, seed=2)
    for day in range(8):
        snapshot = sim.begin_day()
        policy.model.rng = np.random.default_rng(day)
        plan = policy.decide(snapshot)
        _check_plan(snapshot, plan)
        sim.finish_day(plan)
    assert kpis(sim.ledger)["blocked"] == 0


def test_optimised_value_at_least_greedy(small: Scenario) -> None:
    sim = Simulation(small, seed=3)
    sim.run(TieredChampion(small.champion), days=4)
    snapshot = sim.begin_day()
    values = RandomValues(5).predict_value(snapshot)

    class Fixed:
        def predict_value(self, snapshot: Snapshot) -> np.ndarray:
            return values

    greedy = GreedyScore(Fixed()).decide(snapshot)
    optimised = OptimisedAllocation(Fixed()).decide(snapshot)
    g, o = greedy.expected_value.sum(), optimised.expected_value.sum()
    assert o >= g - 1e-6 * abs(g)
    assert o > g  # capacity binds here, so greedy is strictly worse
    # The plan's value is the model value of the chosen option.
    option = _option(snapshot, optimised)
    rows = np.flatnonzero(option >= 0)
    assert np.allclose(optimised.expected_value[rows], values[rows, option[rows]])


def test_redial_headroom_drops_crowded_agent_calls(small: Scenario) -> None:
    sim = Simulation(small, seed=4)
    snapshot = sim.begin_day()
    agent = snapshot.options.channel == Channel.AGENT_CALL
    crowded = np.flatnonzero(snapshot.option_mask()[:, agent].any(axis=1))[:10]
    snapshot.contact.attempts_7d[crowded, Channel.AGENT_CALL] = 6
    values = np.zeros((snapshot.n, snapshot.options.n_options), dtype=np.float32)
    values[:, agent] = 100.0
    values[np.ix_(crowded, np.flatnonzero(agent))] = 200.0

    class Fixed:
        def predict_value(self, snapshot: Snapshot) -> np.ndarray:
            return values

    plan = OptimisedAllocation(Fixed()).decide(snapshot)
    assert np.all(plan.channel[crowded] == -1)
    assert np.any(plan.channel == Channel.AGENT_CALL)
    loose = OptimisedAllocation(Fixed(), redial_headroom=None).decide(snapshot)
    assert np.all(loose.channel[crowded] == Channel.AGENT_CALL)


def test_money_budget_reports_price_and_gap(small: Scenario) -> None:
    scenario = small.with_overrides({"capacity.money_budget": 20.0})
    policy = OptimisedAllocation(RandomValues(1))
    sim = Simulation(scenario, seed=5)
    snapshot = sim.begin_day()
    plan = policy.decide(snapshot)
    report = policy.last_report
    assert {"price", "gap", "objective", "spend"} <= set(report)
    assert report["spend"] <= 20.0 + 1e-9
    assert report["price"] > 0
    option = _option(snapshot, plan)
    cost = snapshot.resources.cost_per_attempt[option[option >= 0] // snapshot.options.n_slots]
    assert cost.sum() <= 20.0 + 1e-9


def test_oracle_policy_needs_the_latent_view_and_step_hands_it_over(small: Scenario) -> None:
    unseeing = OraclePolicy()
    snapshot = Simulation(small, seed=1).begin_day()
    with pytest.raises(RuntimeError, match="observe_latent"):
        unseeing.decide(snapshot)
    oracle = OraclePolicy()
    assert isinstance(oracle, LatentAware)
    assert Simulation(small, seed=1).step(oracle).planned > 0


def test_core_registry_builds_value_ids_over_a_given_model_and_never_trains(
    small: Scenario,
) -> None:
    from collsim.policies import registry

    model = RandomValues(0)
    assert isinstance(registry.make_policy("optimised", small, model), OptimisedAllocation)
    assert isinstance(registry.make_policy("greedy", small, model), GreedyScore)
    assert isinstance(registry.make_policy("champion", small), TieredChampion)
    with pytest.raises(ValueError, match="fit-value-model"):
        registry.make_policy("optimised", small)
    with pytest.raises(ValueError, match="research-only"):
        registry.make_policy("oracle", small)


def test_research_registry_trains_value_ids_and_builds_the_oracle(
    small: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collsim.research import registry

    trained: list[Any] = []

    def fake_training(scenario: Scenario, settings: Any) -> RandomValues:
        trained.append(settings)
        return RandomValues(0)

    monkeypatch.setattr(registry, "load_or_train", fake_training)
    assert isinstance(registry.make_policy("optimised", small), OptimisedAllocation)
    assert isinstance(registry.make_policy("greedy", small), GreedyScore)
    assert len(trained) == 2
    assert isinstance(registry.make_policy("oracle", small), OraclePolicy)
    assert isinstance(registry.make_policy("champion", small), TieredChampion)
    assert len(trained) == 2


def _value(scenario: Scenario, policy: Policy, seed: int, days: int) -> float:
    """The run's portfolio_value (the objective)."""
    sim = Simulation(scenario, seed=seed)
    ledger = sim.run(policy, days=days)
    figures = kpis(ledger)
    if isinstance(policy, OraclePolicy):
        assert figures["blocked"] == 0
    return figures["portfolio_value"]


def test_oracle_beats_champion_paired() -> None:
    # The oracle plans for the scenario's run length: simulate exactly sim.days.
    scenario = load_scenario("default").with_overrides({"sim.days": 45}).scaled_to(1500)
    diff = [
        _value(scenario, OraclePolicy(), seed, 45)
        - _value(scenario, TieredChampion(scenario.champion), seed, 45)
        for seed in (11, 12, 13)
    ]
    # Since messages carry opt-out and complaint risk and open rates fall with fatigue
    # (issue 15), the one-step oracle, which does not see those future costs, no longer
    # wins on every seed (seed 11: -1.3k of ~326k); it still wins on average.
    assert np.mean(diff) > 0 and sorted(diff)[1] > 0, diff


@pytest.mark.slow
@pytest.mark.xfail(
    reason="on the recalibrated borrower model (issue 15) the portfolio_value-trained value "
    "model does not beat the champion (README, Results); kept to flag when it does again",
    strict=False,
)
def test_learned_optimised_beats_champion_paired() -> None:
    """Direction of the headline on a smaller size (3,000 accounts × 90 days, 3 seeds)."""
    from collsim.research.training import TrainingSettings, train_value_model

    scenario = load_scenario("default").scaled_to(3000)
    model = train_value_model(scenario, TrainingSettings())
    diff = np.array(
        [
            _value(scenario, OptimisedAllocation(model), seed, 90)
            - _value(scenario, TieredChampion(scenario.champion), seed, 90)
            for seed in (21, 22, 23)
        ]
    )
    assert diff.mean() > 0, diff
    assert stats.ttest_1samp(diff, 0.0).statistic > 0
