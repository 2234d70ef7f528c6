"""RLPolicy decides in row blocks: the same plan, probabilities and priorities as one batch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from collsim.config import load_scenario
from collsim.features import FEATURE_NAMES
from collsim.plan import Snapshot
from collsim.policies import rl
from collsim.policies.rl import MASKED_LOGIT, RLPolicy, chosen_probability, masked_softmax
from collsim.sim.engine import Simulation


class LinearLogits:
    """A random linear model: logits = obs @ W (masked), float32 like the ONNX graph."""

    name = "linear"

    def __init__(self, n_actions: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.n_actions = n_actions
        self.weight = rng.standard_normal((len(FEATURE_NAMES), n_actions)).astype(np.float32)

    def logits(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.where(mask, obs @ self.weight, np.float32(MASKED_LOGIT))


@pytest.fixture(scope="module")
def snap() -> Snapshot:
    return Simulation(load_scenario("default").scaled_to(1500), seed=0).begin_day()


def test_chosen_probability_is_the_masked_softmax_entry_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    logits = (5 * rng.standard_normal((500, 40))).astype(np.float32)
    mask = rng.random((500, 40)) < 0.4
    mask[:, 0] = True
    logits = np.where(mask, logits, np.float32(MASKED_LOGIT))
    for action in (np.argmax(logits, axis=1), np.zeros(500, dtype=np.int64)):
        expected = masked_softmax(logits)[np.arange(500), action]
        assert np.array_equal(chosen_probability(logits, action), expected)


@pytest.mark.parametrize(
    "settings",
    [{}, {"fallbacks": 2}, {"priority": "confidence"}, {"deterministic": False}],
)
def test_blocks_give_the_plan_of_one_batch(
    monkeypatch: pytest.MonkeyPatch, snap: Snapshot, settings: dict[str, object]
) -> None:
    model = LinearLogits(1 + snap.options.n_options)

    def decide(block: int) -> tuple[object, np.ndarray]:
        monkeypatch.setattr(rl, "BLOCK", block)
        policy = RLPolicy(model, **settings)  # type: ignore[arg-type]
        plan = policy.decide(dataclasses.replace(snap, rng=np.random.default_rng(7)))
        return plan, policy.last_probability

    whole, whole_p = decide(1 << 20)
    blocks, blocks_p = decide(256)  # 6 blocks, the last one partial
    assert np.array_equal(whole_p, blocks_p)
    for column in ("channel", "slot_hour", "priority", "propensity", "reason"):
        assert np.array_equal(getattr(whole, column), getattr(blocks, column)), column
    assert np.count_nonzero(whole.channel >= 0) > 0
