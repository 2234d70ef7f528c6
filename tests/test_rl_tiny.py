"""The tiny exact collections MDP: DP by hand, the env contract, MaskablePPO vs the DP optimum."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

from collsim.rl.tiny import (
    CHARGED_OFF,
    N_LIVE,
    PAID,
    TINY_HORIZON,
    FiniteMDP,
    collections_mdp,
    constant_policy,
    expected_value,
    live_state_index,
    policy_value,
    value_iteration,
)
from collsim.rl.tiny_env import TinyCollectionsEnv, learned_policy

torch = pytest.importorskip("torch")
torch.set_num_threads(1)


# --------------------------------------------------------------------------- DP by hand
def test_one_state_two_actions_horizon_two_closed_form() -> None:
    """One state that stays put: V_2 = 2 · max(r0, r1); the better action both days."""
    mdp = FiniteMDP(
        transition=np.ones((2, 1, 1)),
        reward=np.array([[1.0], [3.0]]),
        mask=np.ones((1, 2), dtype=bool),
        initial=np.array([1.0]),
    )
    value, policy = value_iteration(mdp, 2)
    np.testing.assert_allclose(value[:, 0], [6.0, 3.0, 0.0])
    assert policy.tolist() == [[1], [1]]
    masked = FiniteMDP(mdp.transition, mdp.reward, np.array([[True, False]]), mdp.initial)
    value, policy = value_iteration(masked, 2)
    np.testing.assert_allclose(value[:, 0], [2.0, 1.0, 0.0])
    assert policy.tolist() == [[0], [0]]


def test_pay_or_call_horizon_two_closed_form() -> None:
    """One live state + PAID: wait (pay w.p. p0) or call at cost c (pay w.p. p1).

    V1 = max(p0·B, p1·B − c);  V2 = max(p0·B + (1 − p0)·V1, p1·B − c + (1 − p1)·V1).
    With B = 100, p0 = 0.1, p1 = 0.3, c = 15: V1 = max(10, 15) = 15 (call on the last
    day); V2 = max(10 + 0.9·15, 15 + 0.7·15) = max(23.5, 25.5) = 25.5 (call first too).
    With c = 21: V1 = max(10, 9) = 10 (wait); V2 = max(10 + 9, 9 + 7) = 19 (wait).
    """
    b, p0, p1 = 100.0, 0.1, 0.3
    for c, v2, v1, first, last in ((15.0, 25.5, 15.0, 1, 1), (21.0, 19.0, 10.0, 0, 0)):
        transition = np.array([[[1 - p0, p0], [0, 1]], [[1 - p1, p1], [0, 1]]])
        reward = np.array([[p0 * b, 0.0], [p1 * b - c, 0.0]])
        mdp = FiniteMDP(transition, reward, np.ones((2, 2), bool), np.array([1.0, 0.0]))
        value, policy = value_iteration(mdp, 2)
        assert value[0, 0] == pytest.approx(v2) and value[1, 0] == pytest.approx(v1)
        assert policy[:, 0].tolist() == [first, last]
        np.testing.assert_allclose(policy_value(mdp, policy, 2), value)


def test_mixed_closed_form_policy_switches_with_days_left() -> None:
    """c = 17: V1 = max(10, 13) = 13 (call); V2 = max(10 + 11.7, 13 + 9.1) = 22.1 (call)."""
    b, p0, p1, c = 100.0, 0.1, 0.3, 17.0
    transition = np.array([[[1 - p0, p0], [0, 1]], [[1 - p1, p1], [0, 1]]])
    reward = np.array([[p0 * b, 0.0], [p1 * b - c, 0.0]])
    mdp = FiniteMDP(transition, reward, np.ones((2, 2), bool), np.array([1.0, 0.0]))
    value, _ = value_iteration(mdp, 2)
    assert value[0, 0] == pytest.approx(22.1)
    wait_then_call = np.array([[0, 0], [1, 0]])
    assert expected_value(mdp, policy_value(mdp, wait_then_call, 2)) == pytest.approx(10 + 0.9 * 13)


def test_stochastic_policy_evaluation_is_the_mixture() -> None:
    mdp = collections_mdp()
    h = TINY_HORIZON
    never = policy_value(mdp, constant_policy(mdp, 0, h), h)
    message = policy_value(mdp, constant_policy(mdp, 1, h), h)
    probs = np.zeros((h, mdp.n_states, mdp.n_actions))
    probs[..., 0] = 1.0
    np.testing.assert_allclose(policy_value(mdp, probs, h), never)
    probs[..., 0], probs[..., 1] = 0.0, 1.0
    np.testing.assert_allclose(policy_value(mdp, probs, h), message)


# --------------------------------------------------------------------------- the collections MDP
def test_collections_mdp_structure_and_optimum() -> None:
    mdp = collections_mdp()
    assert mdp.n_states == N_LIVE + 2 and mdp.n_actions == 3
    np.testing.assert_allclose(mdp.transition.sum(axis=2), 1.0)
    assert mdp.mask[:, 0].all()
    call = 2
    assert not mdp.mask[live_state_index(0, 1, 1), call]  # promise open: no call (Reg F)
    assert mdp.mask[live_state_index(0, 1, 0), call]
    for absorbing in (PAID, CHARGED_OFF):
        assert mdp.transition[:, absorbing, absorbing].min() == 1.0
        assert not mdp.reward[:, absorbing].any()
    value, policy = value_iteration(mdp, TINY_HORIZON)
    optimum = expected_value(mdp, value)
    np.testing.assert_allclose(policy_value(mdp, policy, TINY_HORIZON), value)
    constants = [
        expected_value(mdp, policy_value(mdp, constant_policy(mdp, a, TINY_HORIZON), TINY_HORIZON))
        for a in range(3)
    ]
    # the optimum beats every constant policy by more than 5%: the 95% test has teeth
    assert max(constants) < 0.95 * optimum
    # and it depends on the days left (no call on the last day from the first live state)
    x = live_state_index(0, 0, 0)
    assert len(set(policy[:, x].tolist())) > 1
    assert np.all(mdp.mask[np.arange(mdp.n_states)[None, :], policy])


def test_contact_raises_and_fatigue_lowers_the_payment_probability() -> None:
    mdp = collections_mdp()
    fresh, tired = live_state_index(0, 0, 0), live_state_index(0, 1, 0)
    pay = mdp.transition[:, :, PAID]
    assert pay[2, fresh] > pay[1, fresh] > pay[0, fresh]  # call > message > nothing
    assert pay[2, tired] < pay[2, fresh]  # diminishing returns
    late = live_state_index(2, 0, 0)
    assert pay[0, late] < pay[0, fresh]  # self-cure falls with DPD


# --------------------------------------------------------------------------- env
def test_tiny_env_contract_and_determinism() -> None:
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = TinyCollectionsEnv()
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=False)

    def rollout(seed: int) -> list[tuple[int, float]]:
        e = TinyCollectionsEnv()
        e.reset(seed=seed)
        out = []
        rng = np.random.default_rng(0)
        for _ in range(40):
            a = int(rng.choice(np.flatnonzero(e.action_masks())))
            _, r, term, _, info = e.step(a)
            out.append((info["state"], r))
            if term:
                e.reset()
        return out

    assert rollout(1) == rollout(1) and rollout(1) != rollout(2)


def test_tiny_env_masked_action_is_no_contact() -> None:
    env = TinyCollectionsEnv()
    env.reset(seed=0)
    env._state = live_state_index(0, 1, 1)  # promise open: call masked
    assert not env.action_masks()[2]
    _, reward, _, _, info = env.step(2)
    assert info["masked_action"]
    assert reward == pytest.approx(env.mdp.reward[0, live_state_index(0, 1, 1)])


def test_tiny_env_sampled_transitions_match_the_mdp() -> None:
    env = TinyCollectionsEnv()
    env.reset(seed=3)
    x, a, draws = live_state_index(0, 0, 0), 2, 20_000
    counts = np.zeros(env.mdp.n_states)
    for _ in range(draws):
        env._state, env._t = x, 0
        _, _, _, _, info = env.step(a)
        counts[info["state"]] += 1
    expected = env.mdp.transition[a, x]
    assert np.abs(counts / draws - expected).max() < 0.015


def test_learned_policy_reads_every_day_and_state() -> None:
    class Fixed:
        def predict(self, obs: np.ndarray, action_masks: np.ndarray, deterministic: bool) -> tuple:
            return np.where(action_masks[:, 2], 2, 1), None

    mdp = collections_mdp()
    policy = learned_policy(Fixed(), mdp)
    assert policy.shape == (TINY_HORIZON, mdp.n_states)
    assert np.all(mdp.mask[np.arange(mdp.n_states)[None, :], policy])


# --------------------------------------------------------------------------- learning
def test_observation_has_the_day_one_hot() -> None:
    env = TinyCollectionsEnv()
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    day = obs[N_LIVE + 1 :]
    assert day.tolist() == [1.0] + [0.0] * (TINY_HORIZON - 1)
    obs, *_ = env.step(0)
    assert obs[N_LIVE + 1 :].tolist() == [0.0, 1.0] + [0.0] * (TINY_HORIZON - 2)


def _report(result: dict[str, Any], label: str) -> None:
    print(
        f"tiny MDP {label}: optimum {result['optimum']:.3f}, learned {result['learned']:.3f} "
        f"({100 * result['ratio']:.2f}%), constant policies {result['baselines']}"
    )


def test_maskable_ppo_short_run_beats_every_constant_policy() -> None:
    """Fast check: the recipe's settings with small rollouts, 40k steps, seed 0 (98.0 %)."""
    from collsim.rl.tiny_env import TinyRecipe, train_tiny

    result = train_tiny(TinyRecipe(steps=40_000, n_envs=16, batch_size=2048), seed=0)
    _report(result, "40k steps")
    assert result["learned"] >= 0.97 * result["optimum"]
    assert result["learned"] > max(result["baselines"].values())


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_maskable_ppo_reaches_99_percent_of_the_dp_optimum(seed: int) -> None:
    """Exact: the learned masked-argmax policy is evaluated by DP, not by sampling.

    The recipe reached 99.13 / 99.29 / 99.42 % on seeds 0 / 1 / 2
    (benchmarks/RESULTS.md, "RL, tiny exact MDP").
    """
    from collsim.rl.tiny_env import train_tiny

    result = train_tiny(seed=seed)
    _report(result, f"seed {seed}")
    assert result["learned"] >= 0.99 * result["optimum"]
