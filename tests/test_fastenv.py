"""The fast batched env (agent calls in rounds) is equal in distribution to the full engine."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import collsim.envs
from collsim.config import Scenario, load_scenario
from collsim.envs.batch import AccountBatchEnv
from collsim.envs.fast import FastAccountBatchEnv
from collsim.ledger import EVENT
from collsim.vocab import Outcome

KPIS = ("reward", "recovered", "cost", "right_party", "promises", "ended")
"""Per account-step KPIs compared: reward (portfolio-value step), payments, costs,
right-party contacts, promises to pay, episodes ended by cure or charge-off."""

SEEDS = range(6)
N_ACCOUNTS = 4096
STEPS = 10
Z_MAX = 3.0
"""Two-sided two-sample z bound per KPI (99.7% each; about 98% for all six together)."""


def _random_masked(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.where(mask, rng.random(mask.shape), -1.0).argmax(axis=-1)


def _kpis(env: AccountBatchEnv, seed: int) -> np.ndarray:
    """float [len(KPIS)]: per account-step KPIs of uniformly random masked actions."""
    env.reset(seed=seed)
    rng = np.random.default_rng([seed, 1])
    total = np.zeros(len(KPIS))
    for _ in range(STEPS):
        _, reward, terminated, _, _ = env.step(_random_masked(env.action_masks(), rng))
        ev = env.last_events
        attempt = ev["event"] == EVENT["attempt"]
        total += [
            reward.sum(),
            ev["amount"][ev["event"] == EVENT["payment"]].sum(),
            ev["cost"][ev["account"] >= 0].sum(),
            (attempt & (ev["outcome"] >= Outcome.RIGHT_PARTY)).sum(),
            (attempt & (ev["outcome"] == Outcome.PROMISE_TO_PAY)).sum(),
            terminated.sum(),
        ]
    return total / (env.num_envs * STEPS)


def _samples(cls: type[AccountBatchEnv], scenario: Scenario) -> np.ndarray:
    env = cls(num_envs=N_ACCOUNTS, scenario=scenario)
    return np.array([_kpis(env, seed) for seed in SEEDS])


def _z_scores(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two-sample z of the difference of the per-seed means, per KPI (columns)."""
    se = np.sqrt(a.var(axis=0, ddof=1) / len(a) + b.var(axis=0, ddof=1) / len(b))
    return (b.mean(axis=0) - a.mean(axis=0)) / se


@pytest.fixture(scope="module")
def full_samples() -> np.ndarray:
    return _samples(AccountBatchEnv, load_scenario("default"))


def test_fast_env_kpis_match_full_engine(full_samples: np.ndarray) -> None:
    fast = _samples(FastAccountBatchEnv, load_scenario("default"))
    z = _z_scores(full_samples, fast)
    assert np.all(np.abs(z) < Z_MAX), dict(zip(KPIS, z.round(2), strict=True))


def test_equivalence_check_detects_a_changed_borrower_parameter(full_samples: np.ndarray) -> None:
    """The same check fails when the fast env's promise rate is 25% higher."""
    base = load_scenario("default")
    conversation = base.behaviour.conversation
    changed = conversation.model_copy(update={"promise": conversation.promise * 1.25})
    behaviour = base.behaviour.model_copy(update={"conversation": changed})
    fast = _samples(FastAccountBatchEnv, base.model_copy(update={"behaviour": behaviour}))
    z = _z_scores(full_samples, fast)
    assert np.abs(z[KPIS.index("promises")]) >= Z_MAX, dict(zip(KPIS, z.round(2), strict=True))


def test_fast_env_is_reproducible_and_registered() -> None:
    env = gym.make_vec(collsim.envs.FAST_BATCH_ID, num_envs=64).unwrapped
    assert isinstance(env, FastAccountBatchEnv)
    first = _kpis(env, 3)
    np.testing.assert_array_equal(first, _kpis(env, 3))


def test_fast_env_equals_full_engine_without_redials() -> None:
    """With no redials the round stage dispatches exactly the engine's calls."""
    base = load_scenario("default")
    scenario = base.model_copy(update={"sim": base.sim.model_copy(update={"max_redials": 0})})
    full = _kpis(AccountBatchEnv(num_envs=256, scenario=scenario), 5)
    fast = _kpis(FastAccountBatchEnv(num_envs=256, scenario=scenario), 5)
    np.testing.assert_allclose(fast, full, rtol=1e-9)
