"""Off-policy evaluation: logging with a holdout, IPW / SNIPW / DR against the simulated truth."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from collsim.config import Scenario, load_scenario
from collsim.evaluation.logging import LoggingPolicy, run_logged
from collsim.evaluation.ope import LoggedData, evaluate, replay, target_truth, weights
from collsim.evaluation.spec import agents_scale, budgets_scale
from collsim.metrics import kpis
from collsim.policies.baselines import NoContact, RandomPolicy
from collsim.policies.champion import TieredChampion
from collsim.sim import Simulation

N_ACCOUNTS, DAYS, HOLDOUT = 1500, 12, 0.2


@pytest.fixture(scope="module")
def ope_scenario() -> Scenario:
    """One slot (small action space), ample capacity (no interference between accounts) and
    balances less heavy-tailed than the default's, so that 95% CLT intervals are near nominal."""
    overrides = {"sim.operating_hours": [18], "portfolio.products.card.balance.sigma": 0.4}
    scenario = load_scenario("default").with_overrides(overrides).scaled_to(N_ACCOUNTS)
    return budgets_scale(agents_scale(scenario, 20), 20)


def logged_run(
    scenario: Scenario, seed: int, target: Any
) -> tuple[LoggingPolicy, Simulation, LoggedData]:
    logger = LoggingPolicy(
        RandomPolicy(contact_rate=0.5), holdout_share=HOLDOUT, target=target, seed=seed
    )
    sim = Simulation(scenario, seed)
    run_logged(sim, logger, DAYS)
    return logger, sim, LoggedData.from_logger(logger, sim.options.n_slots)


@pytest.fixture(scope="module")
def champion_runs(
    ope_scenario: Scenario,
) -> list[tuple[LoggingPolicy, Simulation, LoggedData, np.ndarray]]:
    runs = []
    for seed in (0, 1, 2, 3):
        logger, sim, data = logged_run(ope_scenario, seed, TieredChampion(ope_scenario.champion))
        runs.append((logger, sim, data, target_truth(ope_scenario, seed, logger)))
    return runs


def test_logging_plan_holds_out_and_records_propensities(champion_runs: list[Any]) -> None:
    logger, _, data, _ = champion_runs[0]
    plan = logger.plans[3]
    assert np.all(plan.channel[plan.holdout] == -1)
    assert np.all((plan.propensity > 0) & (plan.propensity <= 1))
    assert abs(data.holdout.mean() - HOLDOUT) < 0.02
    assert np.allclose(data.arm_propensity[data.holdout], HOLDOUT)
    contacted = data.option >= 0
    assert np.all(data.arm_propensity[contacted] < 0.5)


def test_replay_reproduces_the_logged_run(ope_scenario: Scenario, champion_runs: list[Any]) -> None:
    logger, sim, _, _ = champion_runs[0]
    again = replay(ope_scenario, 0, logger.plans)
    assert kpis(again.ledger) == kpis(sim.ledger)


def test_matched_rows_have_the_truths_reward(champion_runs: list[Any]) -> None:
    """Common random numbers: where the logged arm equals the target's action, rewards agree."""
    for _, _, data, truth in champion_runs:
        matched = weights(data) > 0
        assert matched.sum() > 500
        assert np.mean(np.isclose(truth[matched], data.reward[matched])) > 0.99


def test_ope_intervals_cover_the_simulated_truth(champion_runs: list[Any]) -> None:
    """Four seeds: DR within 3 SE of the truth each time; 95% intervals cover in ≥ 3 of 4."""
    dr_covered, covered, total = 0, 0, 0
    for seed, (_, _, data, truth) in enumerate(champion_runs):
        value = float(truth.mean())
        estimates = evaluate(data, seed=seed)
        dr = estimates["dr"]
        assert abs(dr.value - value) < 3 * dr.se, (seed, value, dr)
        # informative intervals: they exclude the logging policy's own one-day value
        assert not dr.covers(float(data.reward.mean())), (seed, dr, data.reward.mean())
        dr_covered += dr.covers(value)
        covered += sum(e.covers(value) for e in estimates.values())
        total += len(estimates)
    assert dr_covered >= 3
    assert covered >= total - 3


def test_no_contact_target_uses_the_holdout(ope_scenario: Scenario) -> None:
    logger, _, data = logged_run(ope_scenario, 5, NoContact())
    truth = target_truth(ope_scenario, 5, logger).mean()
    w = weights(data)
    assert np.all((w > 0) == data.holdout)
    est = evaluate(data, seed=5, method="bootstrap", model="ridge")
    assert est["ipw"].covers(truth) and est["dr"].covers(truth)
