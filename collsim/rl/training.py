"""Training MaskablePPO on ``collsim/AccountBatch-v0``: config, evaluation, callbacks, curve.

The agent learns the single-account problem (one account per episode, ``horizon``
days, reward = the day's ``portfolio_value`` contribution of the account, see
:class:`collsim.envs.account.AccountEnv`) on N accounts stepped together in one
Simulation (:class:`collsim.envs.batch.AccountBatchEnv` through
:class:`collsim.envs.sb3.SB3VecEnv`).  Rewards are multiplied by ``reward_scale``
for the optimiser only, or normalised by a running return std (default; values
are in currency units, often hundreds); evaluations report unscaled money.

**Evaluation.**  By default (``eval_mode="deploy"``, :func:`evaluate_deployment`) the
policy is evaluated the way it is deployed and compared: ``RLPolicy(model,
fallbacks=8)`` decides a whole Simulation of ``eval_accounts`` (5,000) accounts, with
the scenario's capacity scaled to that size, for ``horizon`` days on seed
``eval_seed`` (1,000,003, not one of the comparison's seeds 1–5); the figure is
the mean portfolio value per account (``collsim.valuation.account_portfolio_values``).
``eval_mode="env"``
(:func:`evaluate_first_episodes`): a fresh batch env reset with ``eval_seed``, masked
deterministic actions, and the return (value added) of each row's *first* episode
(``horizon`` days or until the account leaves collection), averaged; its capacity is
the env's (``eval_envs`` rows) and it ranks checkpoints poorly for deployment (the
agent's single choice, no fallbacks).  :class:`MaskedEvalCallback` evaluates every
``eval_every`` steps (default 32,768: evaluations swing by ±10 % between
checkpoints) and keeps the best model.

**Reproducibility.**  :func:`train_model` runs with ``torch.set_num_threads(1)`` and
``torch.use_deterministic_algorithms(True)`` (both restored afterwards), seeds
MaskablePPO and the env with ``seed`` and uses no other randomness, so the same
config gives the same weights and evaluations bit for bit on the same machine and
library versions (checked by ``tests/test_rl.py``).  Across machines or library
versions, floating-point reductions may differ; the documented tolerance for the
final evaluation is 1% of its absolute value.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict

from collsim.config import Scenario, load_scenario

__all__ = [
    "ALGOS",
    "CHECKPOINT_DIR",
    "Algo",
    "EvalMode",
    "EvalPriority",
    "LrSchedule",
    "EvalPoint",
    "TrainConfig",
    "TrainResult",
    "evaluate_deployment",
    "evaluate_first_episodes",
    "make_train_env",
    "plot_curve",
    "train_model",
]

CHECKPOINT_DIR = "checkpoints"
"""Sub-directory of a training run holding the model of every evaluation."""

Algo = Literal["maskable_ppo"]
"""Algorithms :func:`train_model` knows."""

EvalMode = Literal["env", "deploy"]
"""How a checkpoint is evaluated (:attr:`TrainConfig.eval_mode`)."""

LrSchedule = Literal["constant", "linear"]
"""The learning-rate schedule (:attr:`TrainConfig.lr_schedule`)."""

EvalPriority = Literal["confidence", "log_odds", "value"]
"""``RLPolicy`` priorities (:data:`collsim.policies.rl.PRIORITIES`)."""

ALGOS: tuple[str, ...] = get_args(Algo)
"""Algorithms :func:`train_model` knows."""


class TrainConfig(BaseModel):
    """Everything that determines a training run (hashed into the manifest).

    Immutable and validated at construction: an unknown field or a mode outside its
    choices (``algo``, ``lr_schedule``, ``eval_mode``, ``eval_priority``) raises a
    ``pydantic.ValidationError`` (a ``ValueError``) naming the field.  Derive a changed
    config with :meth:`replace`.

    Attributes:
        scenario: bundled scenario name or YAML path.
        algo: ``maskable_ppo``.
        steps: total environment (account-day) steps.
        seed: seeds the model, the env and nothing else.
        n_envs: N, rows of the batched env.
        horizon: days per account episode.
        pool_size: accounts per generated population pool.
        n_steps, batch_size, n_epochs, learning_rate, gamma, gae_lambda, ent_coef,
            clip_range: MaskablePPO hyper-parameters.
        net_arch: hidden layer sizes (policy and value networks).
        reward_scale: multiplies the reward seen by the optimiser.
        normalize_reward: divide rewards by a running std of the discounted return
            (SB3 ``VecNormalize(norm_obs=False)``) instead of ``reward_scale``.
            Observations are not normalised, so the policy needs no statistics at
            inference (the ONNX graph takes raw features).
        eval_every: steps between evaluations (0: five evaluations over the run).
        eval_envs: accounts per evaluation.
        eval_seed: env seed of every evaluation.
        lr_schedule: ``constant`` or ``linear`` (from ``learning_rate`` down to 0 at
            the end of the run).
        shadow_prices: (resource-name prefix, price) pairs charged in the *training*
            reward per unit of resource used (``AccountBatch-v0``'s ``shadow_prices``);
            evaluations are always in money, without them.
        eval_mode: ``env`` (:func:`evaluate_first_episodes`: ``eval_envs`` accounts'
            first episodes, masked argmax, env capacity) or ``deploy``
            (:func:`evaluate_deployment`: a whole Simulation of ``eval_accounts``
            accounts, capacity scaled to it, decided by
            ``RLPolicy(model, fallbacks=eval_fallbacks)`` for ``horizon`` days on
            seed ``eval_seed``, i.e. the way the policy is deployed and compared).
        eval_accounts: portfolio size of ``deploy`` evaluations.
        eval_fallbacks: ``RLPolicy`` fallbacks of ``deploy`` evaluations.
        eval_priority: ``RLPolicy`` priority of ``deploy`` evaluations.
        treatments: the agent chooses treatments too: actions are (option, offer,
            variant) triples (``AccountBatch-v0(treatments=True)``); evaluations and
            the export decode them with the scenario's layout.  Left out of
            :meth:`to_dict` (and the config hash) when False, so runs without it keep
            their hashes.
        keep_checkpoints: also save the model of every evaluation as
            ``checkpoints/step_<steps>.zip`` next to ``best_model.zip`` (for selection
            on further validation seeds and ensembles, :mod:`collsim.rl.select`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenario: str = "default"
    algo: Algo = "maskable_ppo"
    steps: int = 300_000
    seed: int = 0
    n_envs: int = 256
    horizon: int = 60
    pool_size: int = 4096
    n_steps: int = 64
    batch_size: int = 2048
    n_epochs: int = 4
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    ent_coef: float = 0.01
    clip_range: float = 0.2
    net_arch: tuple[int, ...] = (128, 128)
    reward_scale: float = 0.01
    normalize_reward: bool = True
    eval_every: int = 32_768
    eval_envs: int = 1024
    eval_seed: int = 1_000_003
    lr_schedule: LrSchedule = "constant"
    shadow_prices: tuple[tuple[str, float], ...] = ()
    eval_mode: EvalMode = "deploy"
    eval_accounts: int = 5000
    eval_fallbacks: int = 8
    eval_priority: EvalPriority = "log_odds"
    keep_checkpoints: bool = True
    treatments: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``treatments`` only when True)."""
        data = self.model_dump()
        if not self.treatments:
            del data["treatments"]
        data["net_arch"] = list(self.net_arch)
        data["shadow_prices"] = [list(p) for p in self.shadow_prices]
        return data

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied, validated like a new config.

        Raises:
            pydantic.ValidationError: an unknown field or a bad value.
        """
        return type(self).model_validate({**self.model_dump(), **changes})

    def config_hash(self, scenario: Scenario | None = None) -> str:
        """sha256 (16 hex) of the config and the scenario's own config hash."""
        scenario = scenario or load_scenario(self.scenario)
        payload = json.dumps(
            {"train": self.to_dict(), "scenario": scenario.config_hash()}, sort_keys=True
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def eval_interval(self) -> int:
        """Steps between evaluations (a multiple of one rollout)."""
        rollout = self.n_envs * self.n_steps
        every = self.eval_every or max(rollout, self.steps // 5)
        return max(rollout, (every // rollout) * rollout)


@dataclass(frozen=True)
class EvalPoint:
    """One evaluation: steps trained, mean value per account and its standard error.

    ``mean_net`` (the field name of ``evaluations.json``) is the mean portfolio value per
    account (:func:`evaluate_deployment`) or portfolio-value contribution per
    episode (:func:`evaluate_first_episodes`).
    """

    steps: int
    mean_net: float
    sem: float


@dataclass
class TrainResult:
    """What :func:`train_model` returns.

    Attributes:
        model: the final MaskablePPO.
        best_model: the MaskablePPO with the best evaluation (may be ``model``).
        evaluations: every evaluation, in order.
        elapsed_s: wall-clock training time (evaluations included).
        steps: environment steps trained.
    """

    model: Any
    best_model: Any
    evaluations: list[EvalPoint] = field(default_factory=list)
    elapsed_s: float = 0.0
    steps: int = 0

    @property
    def best(self) -> EvalPoint:
        """The best evaluation."""
        return max(self.evaluations, key=lambda e: e.mean_net)

    @property
    def final(self) -> EvalPoint:
        """The last evaluation."""
        return self.evaluations[-1]


@contextmanager
def deterministic_torch(threads: int = 1) -> Iterator[None]:
    """Single-threaded, deterministic torch inside the block (restored after)."""
    import torch

    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


def _batch_env(cfg: TrainConfig, n: int, scenario: Scenario, shadow: bool = False) -> Any:
    from collsim.envs import make_account_batch

    kwargs: dict[str, Any] = {}
    if cfg.treatments:
        kwargs["treatments"] = True
    if shadow and cfg.shadow_prices:
        kwargs["shadow_prices"] = dict(cfg.shadow_prices)
    return make_account_batch(
        n,
        scenario=scenario,
        horizon=cfg.horizon,
        pool_size=cfg.pool_size,
        **kwargs,
    )


def make_train_env(cfg: TrainConfig, scenario: Scenario | None = None) -> Any:
    """Return the SB3 VecEnv the agent trains on (rewards normalised or scaled)."""
    from stable_baselines3.common.vec_env import VecEnvWrapper, VecNormalize

    from collsim.envs.sb3 import SB3VecEnv

    class ScaledReward(VecEnvWrapper):
        """Multiplies rewards by a constant (masks and attributes pass through)."""

        def __init__(self, venv: Any, scale: float) -> None:
            super().__init__(venv)
            self.scale = scale

        def reset(self) -> Any:
            return self.venv.reset()

        def step_wait(self) -> Any:
            obs, reward, done, info = self.venv.step_wait()
            return obs, reward * np.float32(self.scale), done, info

    scenario = scenario or load_scenario(cfg.scenario)
    venv = SB3VecEnv(_batch_env(cfg, cfg.n_envs, scenario, shadow=True))
    if cfg.normalize_reward:
        return VecNormalize(venv, norm_obs=False, norm_reward=True, gamma=cfg.gamma)
    return ScaledReward(venv, cfg.reward_scale)


Predict = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(obs [N, F], mask [N, A]) → actions [N]."""


def evaluate_first_episodes(
    predict: Predict, cfg: TrainConfig, scenario: Scenario | None = None
) -> np.ndarray:
    """Return of each row's first episode on a batch env reset with ``cfg.eval_seed``.

    The batch env's reward is the step's ``portfolio_value`` contribution, so the
    return is the account's value added over its start value.

    Args:
        predict: masked action choice, e.g. ``lambda o, m: model.predict(o,
            action_masks=m, deterministic=True)[0]``.
        cfg: gives ``eval_envs``, ``eval_seed``, ``horizon``, ``pool_size``.
        scenario: the scenario (default: ``cfg.scenario``).

    Returns:
        float [eval_envs]: portfolio-value contribution per account.
    """
    scenario = scenario or load_scenario(cfg.scenario)
    venv = _batch_env(cfg, cfg.eval_envs, scenario).unwrapped
    obs, _ = venv.reset(seed=cfg.eval_seed)
    n = cfg.eval_envs
    total = np.zeros(n)
    open_ = np.ones(n, dtype=bool)
    for _ in range(cfg.horizon):
        action = np.asarray(predict(obs, venv.action_masks()))
        obs, reward, term, trunc, _ = venv.step(action)
        total += np.where(open_, reward, 0.0)
        open_ &= ~(np.asarray(term) | np.asarray(trunc))
        if not open_.any():
            break
    venv.close()
    return total


def evaluate_deployment(
    model: Any, cfg: TrainConfig, scenario: Scenario | None = None
) -> np.ndarray:
    """Portfolio value per account of ``RLPolicy(model, fallbacks=cfg.eval_fallbacks,
    priority=cfg.eval_priority)`` deciding a
    whole portfolio (``cfg.eval_accounts`` accounts, scenario capacity scaled to it) for
    ``cfg.horizon`` days on Simulation seed ``cfg.eval_seed``.

    Keep ``eval_seed`` away from the seeds a comparison reports (checkpoints are selected
    on it).  With ``cfg.treatments`` the model's actions are decoded with the scenario's
    treatment layout (the plan carries the offers and variants it chose).

    Returns:
        float [eval_accounts]: each account's share of the run's ``portfolio_value``
        (:func:`collsim.valuation.account_portfolio_values`; they sum to it).
    """
    from collsim.policies.rl import RLPolicy
    from collsim.rl.logits import load_logit_model
    from collsim.sim.engine import Simulation
    from collsim.valuation import account_portfolio_values

    scenario = (scenario or load_scenario(cfg.scenario)).scaled_to(cfg.eval_accounts)
    policy = RLPolicy(
        load_logit_model(model, action_layout(cfg, scenario)),
        fallbacks=cfg.eval_fallbacks,
        priority=cfg.eval_priority,
    )
    policy.check_scenario(scenario)
    sim = Simulation(scenario, cfg.eval_seed)
    sim.run(policy, cfg.horizon)
    return account_portfolio_values(sim.ledger, cfg.eval_accounts)


def action_layout(cfg: TrainConfig, scenario: Scenario) -> str | None:
    """The layout JSON of ``cfg``'s models (None: plain actions, no treatments)."""
    if not cfg.treatments:
        return None
    from collsim.policies.action_layout import ActionLayout

    return ActionLayout.from_scenario(scenario).to_json()


def model_predict(model: Any) -> Predict:
    """The masked deterministic action choice of a MaskablePPO."""

    def predict(obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(obs, action_masks=mask, deterministic=True)[0])

    return predict


def _callbacks(
    cfg: TrainConfig,
    scenario: Scenario,
    result: TrainResult,
    best_path: Path | None,
    progress: Callable[[int, EvalPoint | None], None] | None,
) -> list[Any]:
    from stable_baselines3.common.callbacks import BaseCallback

    class MaskedEvalCallback(BaseCallback):
        """Evaluates the masked deterministic policy every ``cfg.eval_interval`` steps;
        keeps (and saves) the best model."""

        def __init__(self) -> None:
            super().__init__()
            self.best = -np.inf
            self.next_eval = cfg.eval_interval

        def evaluate(self) -> None:
            if cfg.eval_mode == "deploy":
                net = evaluate_deployment(self.model, cfg, scenario)
            else:
                net = evaluate_first_episodes(model_predict(self.model), cfg, scenario)
            point = EvalPoint(int(self.num_timesteps), float(net.mean()), _sem(net))
            result.evaluations.append(point)
            self.logger.record("eval/mean_net", point.mean_net)
            if cfg.keep_checkpoints and best_path is not None:
                folder = best_path.parent / CHECKPOINT_DIR
                folder.mkdir(parents=True, exist_ok=True)
                self.model.save(str(folder / f"step_{point.steps:09d}.zip"))
            if point.mean_net > self.best:
                self.best = point.mean_net
                if best_path is not None:
                    self.model.save(str(best_path))
                result.best_model = _copy_model(self.model)
            if progress is not None:
                progress(int(self.num_timesteps), point)

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            if progress is not None:
                progress(int(self.num_timesteps), None)
            if self.num_timesteps >= self.next_eval:
                self.next_eval += cfg.eval_interval
                self.evaluate()

        def _on_training_end(self) -> None:
            if not result.evaluations or result.evaluations[-1].steps != self.num_timesteps:
                self.evaluate()

    return [MaskedEvalCallback()]


def _sem(values: np.ndarray) -> float:
    return float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else float("nan")


def _copy_model(model: Any) -> Any:
    """A detached copy of a MaskablePPO model (for the best model in memory).

    Saved to memory and loaded back: ``copy.deepcopy`` of the policy fails when the
    last rollout left non-leaf tensors on it (at the end of training).
    """
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    return type(model).load(buffer, device="cpu")


def _linear(start: float) -> Callable[[float], float]:
    """SB3 schedule: ``start`` at the beginning of the run, 0 at the end."""

    def rate(progress_remaining: float) -> float:
        return start * progress_remaining

    return rate


def build_model(cfg: TrainConfig, venv: Any) -> Any:
    """A fresh MaskablePPO for ``cfg`` on ``venv``."""
    from sb3_contrib import MaskablePPO

    learning_rate: Any = cfg.learning_rate
    if cfg.lr_schedule == "linear":
        learning_rate = _linear(cfg.learning_rate)
    return MaskablePPO(
        "MlpPolicy",
        venv,
        n_steps=cfg.n_steps,
        batch_size=cfg.batch_size,
        n_epochs=cfg.n_epochs,
        learning_rate=learning_rate,
        gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        ent_coef=cfg.ent_coef,
        clip_range=cfg.clip_range,
        policy_kwargs={"net_arch": list(cfg.net_arch)},
        seed=cfg.seed,
        device="cpu",
        verbose=0,
    )


def train_model(
    cfg: TrainConfig,
    best_path: Path | None = None,
    progress: Callable[[int, EvalPoint | None], None] | None = None,
) -> TrainResult:
    """Train MaskablePPO per ``cfg`` (deterministic, single-threaded torch).

    Args:
        cfg: the run's config.
        best_path: where the callback saves the best model (``.zip``), if anywhere.
        progress: called with (steps, evaluation or None) after every rollout.

    Returns:
        The final and best models and the evaluations.

    Raises:
        ValueError: bad sizes.
    """
    if cfg.steps < 1 or cfg.n_envs < 1 or cfg.horizon < 1:
        raise ValueError("steps, n_envs and horizon must be >= 1")
    scenario = load_scenario(cfg.scenario)
    with deterministic_torch():
        venv = make_train_env(cfg, scenario)
        model = build_model(cfg, venv)
        result = TrainResult(model=model, best_model=model)
        started = time.perf_counter()
        model.learn(
            total_timesteps=cfg.steps,
            callback=_callbacks(cfg, scenario, result, best_path, progress),
        )
        result.elapsed_s = time.perf_counter() - started
        result.steps = int(model.num_timesteps)
        venv.close()
    return result


def plot_curve(evaluations: list[EvalPoint], path: Path, title: str = "") -> Path:
    """Write the training curve (mean net recovery per account vs steps, ±2 s.e.) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from collsim.io import atomic_path

    steps = np.array([e.steps for e in evaluations], dtype=float)
    mean = np.array([e.mean_net for e in evaluations])
    sem = np.nan_to_num(np.array([e.sem for e in evaluations]))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, mean, marker="o")
    ax.fill_between(steps, mean - 2 * sem, mean + 2 * sem, alpha=0.2)
    ax.set_xlabel("environment steps (account-days)")
    ax.set_ylabel("net recovery per account (eval)")
    ax.set_title(title or "MaskablePPO on collsim/AccountBatch-v0")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as temp:
        fig.savefig(temp, format="png", dpi=100)
    plt.close(fig)
    return path
