"""Contract, determinism and smoke tests of the Gymnasium environments (collsim.envs)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import collsim.envs  # noqa: F401  (registers the ids)
from collsim.config import load_scenario
from collsim.envs.sb3 import SB3VecEnv
from collsim.envs.wrappers import EpisodeStats, VectorEpisodeStats
from collsim.features import FEATURE_NAMES
from collsim.ledger import EVENT
from collsim.portfolio import generate
from collsim.vocab import Channel

POOL = 64  # small population pools keep resets fast


@pytest.fixture(scope="module")
def scenario() -> Any:
    return load_scenario("default")


def random_masked(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random allowed action per row of ``mask`` [..., A]."""
    keys = np.where(mask, rng.random(mask.shape), -1.0)
    return keys.argmax(axis=-1)


def masked_option(env: Any) -> int:
    """An action that is never allowed: the letter channel's second slot."""
    return 1 + int(Channel.LETTER) * env.options.n_slots + 1


def account_rollout(seed: int, steps: int = 30, policy_seed: int = 0, **kwargs: Any) -> list[tuple]:
    env = gym.make("collsim/Account-v0", pool_size=POOL, horizon=15, **kwargs).unwrapped
    rng = np.random.default_rng(policy_seed)
    obs, _ = env.reset(seed=seed)
    trace: list[tuple] = [(obs, env.action_masks())]
    for _ in range(steps):
        obs, reward, term, trunc, _ = env.step(random_masked(env.action_masks(), rng))
        trace.append((obs, env.action_masks(), reward, term, trunc))
        if term or trunc:
            obs, _ = env.reset()
            trace.append((obs, env.action_masks()))
    return trace


def batch_rollout(seed: int, n: int = 16, steps: int = 25, **kwargs: Any) -> list[tuple]:
    venv = gym.make_vec("collsim/AccountBatch-v0", num_envs=n, pool_size=POOL, horizon=10, **kwargs)
    rng = np.random.default_rng(0)
    obs, _ = venv.reset(seed=seed)
    trace: list[tuple] = [(obs,)]
    for _ in range(steps):
        mask = venv.unwrapped.action_masks()
        obs, reward, term, trunc, _ = venv.step(random_masked(mask, rng))
        trace.append((obs, mask, reward, term, trunc))
    return trace


def portfolio_rollout(seed: int, steps: int = 4) -> list[tuple]:
    env = gym.make("collsim/Portfolio-v0", n_accounts=60, horizon=10).unwrapped
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=seed)
    trace: list[tuple] = [(obs["features"], obs["capacity"])]
    for _ in range(steps):
        mask = env.action_masks()
        obs, reward, term, trunc, info = env.step(rng.uniform(-1, 1, mask.shape))
        trace.append((obs["features"], mask, reward, info["contacts"]))
    return trace


def same(a: list[tuple], b: list[tuple]) -> bool:
    if len(a) != len(b):
        return False
    return all(
        len(x) == len(y)
        and all(np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(x, y, strict=True))
        for x, y in zip(a, b, strict=True)
    )


# --------------------------------------------------------------------------- contracts
def test_account_env_passes_gymnasium_and_sb3_checkers() -> None:
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make("collsim/Account-v0", pool_size=POOL)
    with pytest.warns(UserWarning):  # infinite Box bounds are reported, not errors
        gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)
    assert env.observation_space.shape == (len(FEATURE_NAMES),)
    assert env.observation_space.dtype == np.float32


def test_portfolio_env_passes_checkers_at_small_n() -> None:
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make("collsim/Portfolio-v0", n_accounts=40, horizon=5)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)
    obs, _ = env.reset(seed=0)
    assert obs["features"].shape == (40, len(FEATURE_NAMES))
    assert obs["capacity"].shape == env.observation_space["capacity"].shape


def test_make_vec_builds_the_batched_env_with_same_step_autoreset() -> None:
    venv = gym.make_vec("collsim/AccountBatch-v0", num_envs=4, pool_size=POOL)
    assert venv.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (4, len(FEATURE_NAMES)) and obs.dtype == np.float32
    assert venv.unwrapped.action_masks().shape == (4, venv.single_action_space.n)
    assert venv.unwrapped.action_masks()[:, 0].all()


# --------------------------------------------------------------------------- determinism
def test_account_env_same_seed_same_trajectory_other_seed_differs() -> None:
    a, b, c = account_rollout(3), account_rollout(3), account_rollout(4)
    assert same(a, b)
    assert not same(a, c)
    assert any(len(t) > 2 and t[2] != 0.0 for t in a)  # rewards happen


def test_batch_env_same_seed_same_trajectory_other_seed_differs() -> None:
    a, b, c = batch_rollout(5), batch_rollout(5), batch_rollout(6)
    assert same(a, b)
    assert not same(a, c)
    assert any(np.any(t[3] | t[4]) for t in a[1:])  # autoreset was exercised


def test_portfolio_env_same_seed_same_trajectory_other_seed_differs() -> None:
    a, b, c = portfolio_rollout(7), portfolio_rollout(7), portfolio_rollout(8)
    assert same(a, b)
    assert not same(a, c)
    assert sum(t[3] for t in a[1:]) > 0  # some contacts were made


# --------------------------------------------------------------------------- masks
def test_account_env_masked_action_is_not_executed() -> None:
    env = gym.make("collsim/Account-v0", pool_size=POOL).unwrapped
    env.reset(seed=0)
    action = masked_option(env)
    assert not env.action_masks()[action]
    _, _, _, _, info = env.step(action)
    assert info["masked_action"] is True and info["contacts"] == 0
    events = env.last_events["event"]
    assert not np.any(events == EVENT["attempt"]) and not np.any(events == EVENT["blocked"])
    _, _, _, _, info = env.step(10_000)  # out of range: also no contact, flagged
    assert info["masked_action"] is True


def test_batch_env_masked_actions_are_not_executed() -> None:
    venv = gym.make_vec("collsim/AccountBatch-v0", num_envs=8, pool_size=POOL).unwrapped
    venv.reset(seed=0)
    action = np.full(8, masked_option(venv))
    action[0] = 0
    _, _, _, _, info = venv.step(action)
    assert info["masked_action"][1:].all() and not info["masked_action"][0]
    events = venv.last_events["event"]
    assert not np.any(events == EVENT["attempt"]) and not np.any(events == EVENT["blocked"])


def test_portfolio_env_scores_on_masked_options_are_dropped() -> None:
    env = gym.make("collsim/Portfolio-v0", n_accounts=40, horizon=5).unwrapped
    env.reset(seed=0)
    mask = env.action_masks()
    assert (~mask).any()
    scores = np.where(mask, -1.0, 1.0)
    _, _, _, _, info = env.step(scores)
    assert info["masked_action"] and info["masked_scores"] == int((~mask).sum())
    assert info["planned"] == 0 and info["contacts"] == 0
    events = env.last_events["event"]
    assert not np.any(events == EVENT["attempt"]) and not np.any(events == EVENT["blocked"])


@pytest.mark.parametrize("allocator", ["greedy", "exact"])
def test_portfolio_plans_respect_capacity(allocator: str) -> None:
    env = gym.make("collsim/Portfolio-v0", n_accounts=300, horizon=5, allocator=allocator).unwrapped
    env.reset(seed=1)
    snapshot = env._snapshot
    scores = np.random.default_rng(0).uniform(0.01, 1.0, (300, env.options.n_options))
    option = env.decode(scores, snapshot, snapshot.option_mask())
    chosen = option >= 0
    assert chosen.any()
    assert snapshot.option_mask()[np.flatnonzero(chosen), option[chosen]].all()
    res = snapshot.resources
    used = res.resource_by_zone[snapshot.accounts.timezone[chosen], option[chosen]]
    counts = np.bincount(used[used >= 0], minlength=len(res.names))
    assert np.all(counts <= res.capacity)


# --------------------------------------------------------------------------- no latent state
def test_observations_do_not_depend_on_latent_traits(scenario: Any) -> None:
    portfolio, latent_a = generate(scenario, 11, 30)
    _, latent_b = generate(scenario, 12, 30)
    assert not np.array_equal(latent_a.ability, latent_b.ability)
    first = []
    for latent in (latent_a, latent_b):
        single = gym.make("collsim/Account-v0", population=(portfolio, latent)).unwrapped
        batch = gym.make_vec(
            "collsim/AccountBatch-v0", num_envs=30, population=(portfolio, latent)
        ).unwrapped
        whole = gym.make("collsim/Portfolio-v0", population=(portfolio, latent)).unwrapped
        first.append(
            (single.reset(seed=0)[0], batch.reset(seed=0)[0], whole.reset(seed=0)[0]["features"])
        )
    for x, y in zip(*first, strict=True):
        assert x.shape[-1] == len(FEATURE_NAMES)
        np.testing.assert_array_equal(x, y)


# --------------------------------------------------------------------------- batch vs single
def test_batch_row_zero_follows_single_env_first_episode() -> None:
    """Same seed and pool: row 0 = the single env's first episode (others do not contact).

    Rows 1..N-1 start with the accounts of the single env's episodes 2..N.
    """
    seed, n = 21, 6
    single = gym.make("collsim/Account-v0", pool_size=POOL, horizon=40).unwrapped
    batch = gym.make_vec(
        "collsim/AccountBatch-v0", num_envs=n, pool_size=POOL, horizon=40
    ).unwrapped
    obs_s, _ = single.reset(seed=seed)
    obs_b, _ = batch.reset(seed=seed)
    np.testing.assert_array_equal(obs_s, obs_b[0])
    rng = np.random.default_rng(1)
    steps = 0
    while True:
        np.testing.assert_array_equal(single.action_masks(), batch.action_masks()[0])
        a = int(random_masked(single.action_masks(), rng))
        action = np.zeros(n, dtype=np.int64)
        action[0] = a
        obs_s, r_s, term_s, trunc_s, info_s = single.step(a)
        obs_b, r_b, term_b, trunc_b, info_b = batch.step(action)
        steps += 1
        assert (term_s, trunc_s) == (bool(term_b[0]), bool(trunc_b[0]))
        assert r_s == pytest.approx(r_b[0], abs=1e-9)
        if term_s or trunc_s:
            np.testing.assert_array_equal(obs_s, info_b["final_obs"][0])
            break
        np.testing.assert_array_equal(obs_s, obs_b[0])
    assert steps > 1
    for row in range(1, n):
        np.testing.assert_array_equal(single.reset()[0], batch_first_obs(seed, n)[row])


def batch_first_obs(seed: int, n: int) -> np.ndarray:
    venv = gym.make_vec("collsim/AccountBatch-v0", num_envs=n, pool_size=POOL).unwrapped
    return venv.reset(seed=seed)[0]


def test_batch_autoreset_final_obs_and_fresh_rows() -> None:
    venv = gym.make_vec("collsim/AccountBatch-v0", num_envs=8, pool_size=POOL, horizon=3).unwrapped
    venv.reset(seed=2)
    for _ in range(3):
        obs, _, term, trunc, info = venv.step(np.zeros(8, dtype=np.int64))
    done = term | trunc
    assert trunc.any() and done.all()
    assert info["_final_obs"].all() and info["_final_info"].all()
    assert info["final_obs"][0].shape == (len(FEATURE_NAMES),)
    assert venv.sim is not None and np.all(venv.sim.state.status == 0)
    assert np.all(venv.action_masks()[:, 1:].any(axis=1) | ~venv._snapshot.active)


# --------------------------------------------------------------------------- rewards and wrappers
def test_episode_stats_sum_step_infos() -> None:
    env = EpisodeStats(gym.make("collsim/Account-v0", pool_size=POOL, horizon=8))
    env.reset(seed=4)
    rng = np.random.default_rng(0)
    recovered = cost = ret = 0.0
    while True:
        _, reward, term, trunc, info = env.step(random_masked(env.unwrapped.action_masks(), rng))
        recovered, cost, ret = (
            recovered + info["recovered"],
            cost + info["cost"],
            ret + float(reward),
        )
        if term or trunc:
            break
    stats = info["episode_stats"]
    assert stats["recovered"] == pytest.approx(recovered) and stats["cost"] == pytest.approx(cost)
    assert stats["return"] == pytest.approx(ret) and stats["net"] == pytest.approx(recovered - cost)


def test_vector_episode_stats_in_final_info() -> None:
    venv = VectorEpisodeStats(
        gym.make_vec("collsim/AccountBatch-v0", num_envs=4, pool_size=POOL, horizon=2)
    )
    venv.reset(seed=0)
    venv.step(np.zeros(4, dtype=np.int64))
    _, _, term, trunc, info = venv.step(np.zeros(4, dtype=np.int64))
    stats = info["final_info"]["episode_stats"]
    done = term | trunc
    assert np.array_equal(stats["_length"], done) and np.all(stats["length"][done] >= 1)


def test_shadow_prices_are_charged_per_planned_resource() -> None:
    env = gym.make(
        "collsim/Account-v0", pool_size=POOL, shadow_prices={"pool:": 7.0, "budget:": 3.0}
    ).unwrapped
    env.reset(seed=0)
    mask = env.action_masks()
    assert mask[1:].any()
    _, reward, _, _, info = env.step(int(np.flatnonzero(mask)[-1]))
    assert info["shadow_cost"] in (0.0, 3.0, 7.0)
    assert reward == pytest.approx(info["value"] - info["shadow_cost"])
    _, _, _, _, info = env.step(0)
    assert info["shadow_cost"] == 0.0


def test_account_rewards_telescope_to_the_portfolio_value_terms() -> None:
    from collsim.treatments import daily_discount_factors
    from collsim.valuation import account_values

    env = gym.make("collsim/Account-v0", pool_size=POOL, horizon=20).unwrapped
    env.reset(seed=3)
    start = float(account_values(env.sim)[0])
    valuation = env.scenario.valuation
    assert start > 0 and valuation.complaint_cost > 0
    rng = np.random.default_rng(3)
    rewards, flows, t, done = [], 0.0, 0, False
    while not done:
        _, reward, term, trunc, info = env.step(
            int(random_masked(env.action_masks()[None], rng)[0])
        )
        rewards.append(reward)
        flow = info["recovered"] - info["cost"] - valuation.complaint_cost * info["complaints"]
        flows += flow * float(daily_discount_factors(np.array(t), valuation.npv_rate_annual))
        t, done = t + 1, term or trunc
    end = float(account_values(env.sim)[0]) * float(
        daily_discount_factors(np.array(t), valuation.npv_rate_annual)
    )
    assert sum(rewards) == pytest.approx(flows + end - start, rel=1e-9, abs=1e-6)


def test_ledger_stays_small_in_long_batched_runs() -> None:
    venv = gym.make_vec("collsim/AccountBatch-v0", num_envs=32, pool_size=POOL, horizon=5).unwrapped
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(12):
        venv.step(random_masked(venv.action_masks(), rng))
    assert venv.sim is not None and len(venv.sim.ledger) == 0


# --------------------------------------------------------------------------- SB3
def test_sb3_adapter_contract_and_maskable_ppo_smoke() -> None:
    from sb3_contrib import MaskablePPO

    venv = SB3VecEnv(
        gym.make_vec("collsim/AccountBatch-v0", num_envs=32, pool_size=POOL, horizon=4)
    )
    assert venv.has_attr("action_masks") and not venv.has_attr("no_such_attribute")
    with pytest.raises(AttributeError):
        venv.get_attr("no_such_attribute")
    venv.seed(0)
    obs = venv.reset()
    masks = np.stack(venv.env_method("action_masks"))
    assert obs.shape == (32, len(FEATURE_NAMES)) and masks.shape == (32, venv.action_space.n)
    seen_terminal = False
    for _ in range(4):
        venv.step_async(np.zeros(32, dtype=np.int64))
        _, _, dones, infos = venv.step_wait()
        for done, info in zip(dones, infos, strict=True):
            if done:
                seen_terminal = True
                assert info["terminal_observation"].shape == (len(FEATURE_NAMES),)
                assert "TimeLimit.truncated" in info
    assert seen_terminal
    model = MaskablePPO(
        "MlpPolicy", venv, n_steps=8, batch_size=128, n_epochs=1, seed=0, device="cpu"
    )
    model.learn(total_timesteps=512)


def _evaluate(policy: Any, n: int, days: int, seed: int) -> float:
    """Mean net recovery per finished episode on AccountBatch-v0 (same accounts per seed)."""
    venv = gym.make_vec("collsim/AccountBatch-v0", num_envs=n, horizon=30).unwrapped
    obs, _ = venv.reset(seed=seed)
    rng = np.random.default_rng(seed)
    net = np.zeros(n)
    finished: list[float] = []
    for _ in range(days):
        mask = venv.action_masks()
        action = (
            random_masked(mask, rng)
            if policy is None
            else policy.predict(obs, action_masks=mask, deterministic=True)[0]
        )
        obs, reward, term, trunc, _ = venv.step(action)
        net += reward
        done = term | trunc
        finished.extend(net[done].tolist())
        net[done] = 0.0
    return float(np.mean(finished))


@pytest.mark.slow
def test_maskable_ppo_beats_random_masked_policy() -> None:
    from sb3_contrib import MaskablePPO

    venv = SB3VecEnv(gym.make_vec("collsim/AccountBatch-v0", num_envs=256, horizon=30))
    venv.seed(0)
    model = MaskablePPO(
        "MlpPolicy",
        venv,
        n_steps=32,
        batch_size=2048,
        n_epochs=4,
        learning_rate=3e-4,
        seed=0,
        device="cpu",
    )
    model.learn(total_timesteps=256 * 32 * 12)
    scores = [
        (_evaluate(model, 256, 90, seed), _evaluate(None, 256, 90, seed))
        for seed in (101, 102, 103)
    ]
    print("MaskablePPO vs random (mean net recovery per episode):", scores)
    assert all(ppo > rnd for ppo, rnd in scores)


def test_public_ids_are_the_four_documented_ones() -> None:
    ids = {i for i in gym.envs.registration.registry if i.startswith("collsim/")}
    assert ids == {
        collsim.envs.ACCOUNT_ID,
        collsim.envs.BATCH_ID,
        collsim.envs.FAST_BATCH_ID,
        collsim.envs.PORTFOLIO_ID,
    }


def test_module_qualified_id_makes_the_env_in_a_fresh_interpreter() -> None:
    """``gymnasium.make("collsim.envs:collsim/Account-v0")`` needs no prior collsim import."""
    import subprocess
    import sys

    code = (
        "import sys, gymnasium as gym\n"
        "assert 'collsim' not in sys.modules\n"
        "assert 'collsim/Account-v0' not in gym.envs.registration.registry\n"
        "env = gym.make('collsim.envs:collsim/Account-v0', pool_size=16, horizon=3)\n"
        "obs, _ = env.reset(seed=0)\n"
        "venv = gym.make_vec('collsim.envs:collsim/AccountBatch-v0', num_envs=2, pool_size=16)\n"
        "print(type(env.unwrapped).__name__, type(venv).__name__, obs.shape[0] > 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["AccountEnv", "AccountBatchEnv", "True"]
