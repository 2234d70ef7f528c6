"""Offline RL: learn a masked policy from lender logs alone (``collsim train --algo offline``).

Transitions come from the lender logs (:mod:`collsim.logs`) through the decision
context ``collsim evaluate-offline`` reconstructs (:mod:`collsim.evaluation.offline`):
for each decision day ``d`` and each considered account (in collection, or
contacted), the observation is :func:`collsim.features.observable_features` of the
rebuilt snapshot, the action mask is the snapshot's compliance mask
(:func:`collsim.policies.rl.snapshot_inputs`: column 0 = no contact), the action is
the logged option (0 = no contact, ``1 + option`` otherwise), the reward is the
row's ``portfolio_value`` over the next ``H`` days (the OPE outcome), the next
observation is the same account's row on ``d + 1`` and ``done`` marks its last row.

A Q-network (standardised features → MLP → one value per action, masked with
``-1e8`` where the rules forbid) is fitted with TorchRL's discrete CQL loss
(``DiscreteCQLLoss``: TD regression on the logged action plus ``cql_alpha`` × the
conservative ``logsumexp Q − Q(logged)`` term; default α = 0) and a torch Adam
optimiser, beside a behaviour network (the logging policy's action probabilities,
cross-entropy).  The default discount is 0: the reward already holds the decision's
``H``-day value and the terminal value of the account, so chaining days would count it
twice.  The policy (:func:`policy_module`) improves on the champion with baseline
bootstrapping (SPIBB): it keeps the champion's action, computed in the graph from the
observable features (:func:`champion_module`), unless an action the logs support
(estimated logging probability ≥ ``support``) has a higher Q-value.  It is exported in
the online RL ``rl_onnx`` signature (``obs``, ``mask`` → ``action``, ``score``,
``logits``), so ``collsim plan`` and ``evaluate-offline`` load it like any RL artifact.

:class:`EpsilonChampion` is the logging policy of the in-simulation check: the
champion with ε-exploration and exact plan propensities.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from collsim.config import Scenario
from collsim.features import FEATURE_NAMES
from collsim.logs import Logs
from collsim.plan import OptionSpace, Plan, Snapshot
from collsim.policies.baselines import RandomPolicy
from collsim.policies.champion import TieredChampion
from collsim.policies.rl import snapshot_inputs

__all__ = [
    "CheckSettings",
    "EpsilonChampion",
    "OfflineConfig",
    "OfflineResult",
    "Transitions",
    "check_summary",
    "honest_check",
    "logged_transitions",
    "masked_q_module",
    "policy_module",
    "train_offline",
]

MASKED_Q = -1e8
"""Q-value of a forbidden action (as the online graph's masked logit)."""
_TREE_FEATURES = ("dpd_30", "days_since_contact_30", "log_balance", "risk_score")
"""The observable features the champion's tree reads."""


# --------------------------------------------------------------------------- logging policy
class EpsilonChampion:
    """The champion, with each active account-day explored at random with probability ε.

    An explored account gets :class:`~collsim.policies.baselines.RandomPolicy`'s
    decision (a uniformly random allowed option with probability ``contact_rate``,
    else no contact).  The plan's ``propensity`` is the probability of the planned
    action before capacity: ``(1 − ε)·1[a = champion] + ε·p_random(a)``.

    Args:
        scenario: selects the champion tree.
        epsilon: share of account-days decided at random.
        contact_rate: contact probability of the random part.
    """

    policy_id = "epsilon_champion"

    def __init__(self, scenario: Scenario, epsilon: float = 0.05, contact_rate: float = 0.5):
        if not 0.0 < epsilon < 1.0:
            raise ValueError(f"epsilon must be in (0, 1), got {epsilon}")
        self.champion = TieredChampion(scenario.champion)
        self.random = RandomPolicy(contact_rate=contact_rate)
        self.epsilon = epsilon

    def decide(self, snapshot: Snapshot) -> Plan:
        """Mix the champion's and a random plan account by account."""
        explore = snapshot.rng.random(snapshot.n) < self.epsilon
        champion = self.champion.decide(snapshot)
        plan = self.random.decide(snapshot)
        options = snapshot.options
        champ_option = options.encode(champion.channel, champion.slot_hour)
        rand_option = options.encode(plan.channel, plan.slot_hour)
        n_allowed = snapshot.option_mask().sum(axis=1)
        rate = self.random.contact_rate
        chosen = np.where(explore, rand_option, champ_option)
        p_random = np.where(
            chosen >= 0, rate / np.maximum(n_allowed, 1), np.where(n_allowed > 0, 1 - rate, 1.0)
        )
        propensity = (1 - self.epsilon) * (chosen == champ_option) + self.epsilon * p_random
        for name in ("channel", "slot_hour", "priority", "expected_value"):
            mixed = np.where(explore, getattr(plan, name), getattr(champion, name))
            setattr(plan, name, mixed.astype(getattr(plan, name).dtype))
        plan.propensity = propensity
        plan.policy_id = self.policy_id
        return plan


# --------------------------------------------------------------------------- transitions
@dataclass(frozen=True)
class Transitions:
    """Logged account-day transitions (rows sorted by account, then day).

    Attributes:
        account: int [R] account row in the logs.
        day: int [R] decision day offset from the window start.
        obs: float32 [R, F] observable features (``FEATURE_NAMES``).
        mask: bool [R, 1 + K] allowed actions (column 0 = no contact).
        action: int [R] logged action (0 = no contact, 1 + option).
        champion: int [R] the champion's action on the rebuilt snapshot (same coding; 0
            where the champion's option is not allowed by ``mask``).
        reward: float [R] the row's ``portfolio_value`` over the horizon.
        next_row: int [R] the row of the same account's next day, -1 at its last row.
        dropped: considered rows left out (logged action off the slots or not allowed).
    """

    account: np.ndarray
    day: np.ndarray
    obs: np.ndarray
    mask: np.ndarray
    action: np.ndarray
    champion: np.ndarray
    reward: np.ndarray
    next_row: np.ndarray
    dropped: int

    @property
    def n(self) -> int:
        """Number of transitions."""
        return int(self.action.size)


class _DayRecorder:
    """A stand-in candidate for the reconstruction: records each day's mask and the
    champion's action on the rebuilt snapshot, plans nothing."""

    def __init__(self, scenario: Scenario) -> None:
        from collsim.export.artifact import _scenario_fields

        fields = _scenario_fields(scenario)
        self.policy_id = "offline-transitions"
        self.manifest = fields
        self.options = OptionSpace(np.asarray(scenario.sim.operating_hours, dtype=np.int64))
        self.cost_per_attempt = fields["cost_per_attempt"]
        self.champion = TieredChampion(scenario.champion)
        self.masks: list[np.ndarray] = []
        self.champion_actions: list[np.ndarray] = []

    def decide(self, snapshot: Snapshot) -> Plan:
        self.masks.append(snapshot_inputs(snapshot)[1])
        plan = self.champion.decide(snapshot)
        self.champion_actions.append(snapshot.options.encode(plan.channel, plan.slot_hour) + 1)
        none = np.full(snapshot.n, -1, dtype=np.int64)
        return Plan.from_options(none, snapshot.options, self.policy_id, ["none"],
                                 np.zeros(snapshot.n, dtype=np.int16))  # fmt: skip


def logged_transitions(
    logs: Logs, scenario: Scenario, horizon_days: int = 7, capacity: Path | None = None
) -> Transitions:
    """Build the transitions of ``logs`` (see the module docstring).

    Args:
        logs: checked lender logs with a closed window
            (:func:`collsim.evaluation.offline.load_window_logs`).
        scenario: option space, rule set, costs and valuation of the logged days.
        horizon_days: H, the reward window of a decision.
        capacity: the logged days' capacity file (None: ample).

    Raises:
        ValueError: the window is not longer than the horizon, or no row was considered.
    """
    # the reconstruction of evaluate-offline, step by step (its private helpers: one
    # reconstruction for OPE and learning; keep in step if that module changes)
    from collsim.evaluation import offline as ope_logs

    recorder = _DayRecorder(scenario)
    settings = ope_logs.OfflineSettings(horizon_days=horizon_days, capacity=capacity)
    context = ope_logs._context(logs, recorder, settings, 0)  # type: ignore[arg-type]
    n_days = ope_logs._decision_days(logs, context.days, horizon_days)
    day_masks: list[np.ndarray] = []
    day_champion: list[np.ndarray] = []

    def record(day: int, accounts: np.ndarray) -> None:
        day_masks.append(recorder.masks[day][accounts])
        day_champion.append(recorder.champion_actions[day][accounts])

    rows = ope_logs._reconstruct(logs, context, n_days, record)
    masks = np.vstack(day_masks)
    champion = np.concatenate(day_champion)
    champion = np.where(masks[np.arange(champion.size), champion], champion, 0)
    valuation = ope_logs._Valuation(scenario.valuation, float(scenario.legal.cost_per_case))
    reward = ope_logs._outcomes(logs, context.days, context, rows, horizon_days,
                                valuation)["portfolio_value"]  # fmt: skip
    logged = rows.cat("logged")
    action = np.where(logged < 0, 0, logged + 1)
    keep = (logged >= -1) & masks[np.arange(logged.size), np.maximum(action, 0)]
    return _sorted(rows.cat("account"), rows.cat("day"), rows.cat("features"), masks,
                   action, champion, reward, keep)  # fmt: skip


def _sorted(
    account: np.ndarray, day: np.ndarray, obs: np.ndarray, mask: np.ndarray,
    action: np.ndarray, champion: np.ndarray, reward: np.ndarray, keep: np.ndarray,
) -> Transitions:  # fmt: skip
    """Keep rows, sort by (account, day) and link each row to the account's next day."""
    idx = np.flatnonzero(keep)
    idx = idx[np.lexsort((day[idx], account[idx]))]
    acc, d = account[idx], day[idx]
    follows = np.zeros(idx.size, dtype=bool)
    follows[:-1] = (acc[1:] == acc[:-1]) & (d[1:] == d[:-1] + 1)
    next_row = np.where(follows, np.arange(idx.size) + 1, -1)
    return Transitions(
        account=acc, day=d, obs=obs[idx].astype(np.float32, copy=False), mask=mask[idx],
        action=action[idx].astype(np.int64), champion=champion[idx].astype(np.int64),
        reward=reward[idx].astype(np.float64),
        next_row=next_row, dropped=int(keep.size - idx.size),
    )  # fmt: skip


# --------------------------------------------------------------------------- training
@dataclass(frozen=True)
class OfflineConfig:
    """Hyper-parameters of offline training (all recorded in the manifest).

    Attributes:
        horizon_days: H, the reward window of a logged decision.
        gamma: discount between consecutive days (0: one-decision value, see module doc).
        cql_alpha: weight of the conservative term.
        steps: gradient steps.
        batch_size: transitions per step.
        learning_rate: Adam step size.
        hidden: widths of the hidden layers.
        target_tau: soft update rate of the target network.
        seed: seeds torch and the batch sampler (one SeedSequence).
        support: SPIBB's threshold on the estimated logging probability of an action
            the policy may take instead of the champion's (> 1: the champion itself,
            no deviation; None: no anchor, plain argmax of Q; see :func:`policy_module`).
        threads: torch intra-op threads (1: the machine is shared; the net is small).
    """

    horizon_days: int = 7
    gamma: float = 0.0
    cql_alpha: float = 0.0
    steps: int = 2000
    batch_size: int = 512
    learning_rate: float = 1e-3
    hidden: tuple[int, ...] = (128, 128)
    target_tau: float = 0.005
    seed: int = 0
    support: float | None = 0.05
    threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready values."""
        fields = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}


@dataclass
class OfflineResult:
    """A trained offline policy.

    Attributes:
        module: ``torch.nn.Module`` ``(obs, mask) -> (action, score, logits)``.
        losses: mean (TD, CQL) loss over each tenth of training.
        reward_scale: rewards were divided by this before fitting.
        elapsed_s: training seconds.
        fallbacks: next-best options the runner tries when a resource is full (the
            champion's ladder; 0 without an anchor); pass to ``export_artifact``.
    """

    module: Any
    losses: list[tuple[float, float]]
    reward_scale: float
    elapsed_s: float
    fallbacks: int = 0


def masked_q_module(n_features: int, n_actions: int, hidden: tuple[int, ...],
                    mean: np.ndarray, std: np.ndarray) -> Any:  # fmt: skip
    """A Q-network ``(obs, mask) -> masked Q [N, n_actions]`` with standardisation inside."""
    import torch
    from torch import nn

    class MaskedQ(nn.Module):
        """Standardise, MLP, mask forbidden actions with ``MASKED_Q``."""

        def __init__(self) -> None:
            super().__init__()
            self.mean: torch.Tensor
            self.std: torch.Tensor
            self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
            self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
            layers: list[nn.Module] = []
            width = n_features
            for h in hidden:
                layers += [nn.Linear(width, h), nn.ReLU()]
                width = h
            layers.append(nn.Linear(width, n_actions))
            self.mlp = nn.Sequential(*layers)

        def forward(self, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            q = self.mlp((obs - self.mean) / self.std)
            return torch.where(mask, q, torch.full_like(q, MASKED_Q))

    return MaskedQ()


def champion_module(scenario: Scenario) -> Any:
    """The champion's decision as a torch module ``(obs, mask) -> action`` (0 = no contact).

    :class:`~collsim.policies.champion.TieredChampion`'s tree read from the observable
    features: the first tier whose DPD, balance and risk ranges hold, contacted when the
    days since the last contact reach its cadence, with the first allowed option of its
    ladder; under ample capacity (the runner fits the plan to capacity).  So the graph
    computes the champion from the same inputs as production.
    """
    import torch

    champion = TieredChampion(scenario.champion)
    options = OptionSpace(np.asarray(scenario.sim.operating_hours, dtype=np.int64))
    table = champion._candidates(SimpleNamespace(options=options))  # type: ignore[arg-type]
    conditions = [(t.when.dpd, t.when.balance, t.when.risk) for t in champion.tree.tiers]
    low = [[-np.inf if b[0] is None else b[0] for b in c] for c in conditions]
    high = [[np.inf if b[1] is None else b[1] for b in c] for c in conditions]
    cadence = [t.cadence_days for t in champion.tree.tiers]
    column = {name: FEATURE_NAMES.index(name) for name in _TREE_FEATURES}

    class Champion(torch.nn.Module):
        """Tier, cadence and first allowed ladder option, as :class:`TieredChampion`."""

        def __init__(self) -> None:
            super().__init__()
            self.low: torch.Tensor
            self.high: torch.Tensor
            self.cadence: torch.Tensor
            self.table: torch.Tensor
            for name, values, dtype in [("low", low, torch.float32),
                                        ("high", high, torch.float32),
                                        ("cadence", cadence, torch.float32),
                                        ("table", table, torch.int64)]:  # fmt: skip
                self.register_buffer(name, torch.as_tensor(np.asarray(values), dtype=dtype))

        def ladder(self, obs: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
            """(candidate actions [N, L], usable today [N, L], exposure [N])."""
            dpd = torch.round(obs[:, column["dpd_30"]] * 30.0)
            since = torch.round(obs[:, column["days_since_contact_30"]] * 30.0)
            balance = torch.expm1(obs[:, column["log_balance"]])
            x = torch.stack([dpd, balance, obs[:, column["risk_score"]]], dim=1)[:, None, :]
            inside = (x >= self.low) & (x <= self.high)  # [N, T, 3]
            match = inside.to(torch.float32).amin(dim=2)  # [N, T]
            tier = match.argmax(dim=1)
            due = (match.amax(dim=1) > 0) & (since >= self.cadence[tier])
            candidates = self.table[tier] + 1  # [N, L] actions, 0 = no candidate
            usable = mask.gather(1, candidates) & (candidates > 0) & due[:, None]
            return candidates, usable, balance * (1.0 + dpd / 30.0)

        @staticmethod
        def first_usable(candidates: torch.Tensor, usable: torch.Tensor) -> torch.Tensor:
            """[N, 1]: the first usable candidate of each row (0 = no contact)."""
            first = usable.to(torch.float32).argmax(dim=1, keepdim=True)
            action = candidates.gather(1, first)
            return torch.where(usable.any(dim=1, keepdim=True), action, torch.zeros_like(action))

        def forward(self, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            candidates, usable, _ = self.ladder(obs, mask)
            return self.first_usable(candidates, usable)[:, 0]

    return Champion()


def policy_module(q_net: Any, behaviour: Any = None, anchor: Any = None,
                  support: float = 0.0) -> Any:  # fmt: skip
    """``(obs, mask) -> (action, score, logits)``: the ``rl_onnx`` signature over masked Q.

    Without an ``anchor``: the argmax of the masked Q-values (``logits`` = masked Q,
    ``score`` = Q(action) − Q(no contact)).

    With one (:func:`champion_module`), the policy improves on the champion with
    baseline bootstrapping (SPIBB, Laroche et al. 2019): it keeps the champion's action
    ``c`` unless an allowed action ``a`` whose estimated logging probability
    ``softmax(behaviour)(a) ≥ support`` has ``Q(a) > Q(c)``; then it takes the best such
    ``a``.  Actions the logs hold too little of are never chosen on their Q-values.
    ``logits`` make the production runner plan as the champion does: where ``c`` is
    kept, ``c`` gets ``top = log(1 + exposure) + 1`` and the ladder's next usable
    options ``0.001 · (n − rank) > 0`` in ladder order (the fallbacks of a full
    resource), so accounts compete for capacity (log-odds ``top``) and queue for agents
    (probability ``≈ 1 − n e^{−top}``, n usable options) in the champion's order of
    ``exposure = balance × (1 + dpd / 30)``; a deviation gets ``top`` on its action
    alone; no contact gets 0 and every other action
    ``MASKED_Q``.  ``score`` = log-odds of the action over no contact.  Every choice is
    among the allowed actions, so a forbidden one stays refused.
    """
    import torch

    class GreedyQ(torch.nn.Module):
        """Masked (and baseline-bootstrapped) argmax over Q; see :func:`policy_module`."""

        def __init__(self) -> None:
            super().__init__()
            self.q = q_net
            self.behaviour = behaviour
            self.anchor = anchor

        def forward(
            self, obs: torch.Tensor, mask: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            raw = self.q(obs, mask)
            if self.anchor is None:
                action = raw.argmax(dim=1)
                return action, raw.gather(1, action[:, None])[:, 0] - raw[:, 0], raw
            candidates, usable, exposure = self.anchor.ladder(obs, mask)
            champion = self.anchor.first_usable(candidates, usable)
            p = torch.softmax(self.behaviour(obs, mask), dim=1)
            eligible = (mask & (p >= support)).scatter(1, champion, True)
            action = torch.where(eligible, raw, torch.full_like(raw, MASKED_Q)).argmax(dim=1)
            return action, *_plan_logits(raw, action, champion[:, 0], candidates, usable,
                                         torch.log1p(exposure) + 1.0)  # fmt: skip

    module = GreedyQ()
    module.eval()
    return module


def _plan_logits(
    raw: Any, action: Any, champion: Any, candidates: Any, usable: Any, top: Any
) -> tuple[Any, Any]:
    """(score, logits) of :func:`policy_module` with an anchor."""
    import torch

    keep = (action == champion)[:, None]
    # the champion's action gets ``top``, the next usable options 0.001·(n − rank) > 0
    rank = torch.cumsum(usable.to(raw.dtype), dim=1)
    after = 1e-3 * (rank[:, -1:] + 1.0 - rank)
    value = torch.where(rank == 1.0, top[:, None], after)
    masked = torch.full(usable.shape, MASKED_Q, dtype=raw.dtype)
    ladder = torch.where(usable & keep, value, masked)
    # one spare column takes the empty candidates (action 0) so no contact stays 0
    spare = torch.where(candidates > 0, candidates, torch.full_like(candidates, raw.shape[1]))
    logits = torch.full((raw.shape[0], raw.shape[1] + 1), MASKED_Q, dtype=raw.dtype)
    logits = logits.scatter(1, spare, ladder)[:, : raw.shape[1]]
    deviate = (~keep[:, 0]) & (action > 0)
    at_action = torch.where(deviate, top, logits.gather(1, action[:, None])[:, 0])
    logits = logits.scatter(1, action[:, None], at_action[:, None])
    logits = torch.cat([torch.zeros_like(logits[:, :1]), logits[:, 1:]], dim=1)
    return logits.gather(1, action[:, None])[:, 0], logits


def train_offline(
    data: Transitions, config: OfflineConfig, scenario: Scenario | None = None
) -> OfflineResult:
    """Fit the masked Q-network with TorchRL's discrete CQL loss (see the module docstring).

    With ``config.support`` set, also the logging policy's action probabilities, and the
    policy improves on ``scenario``'s champion (:func:`policy_module`).

    Raises:
        ValueError: no transitions, a bad config value, or ``support`` without a scenario.
    """
    import torch
    from tensordict import TensorDict
    from torchrl.data import Categorical
    from torchrl.modules import QValueActor
    from torchrl.objectives import DiscreteCQLLoss, SoftUpdate, ValueEstimators

    _check(data, config)
    if config.support is not None and scenario is None:
        raise ValueError("support needs the scenario whose champion the policy improves on")
    seeds = np.random.SeedSequence(config.seed)
    torch_seed, sample_seed = (int(s.generate_state(1)[0]) for s in seeds.spawn(2))
    torch.manual_seed(torch_seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(sample_seed)
    n_actions = data.mask.shape[1]
    std = data.obs.std(axis=0)
    shape = (data.obs.shape[1], n_actions, config.hidden, data.obs.mean(axis=0),
             np.where(std > 1e-6, std, 1.0))  # fmt: skip
    q_net = masked_q_module(*shape)
    actor = QValueActor(q_net, in_keys=["observation", "action_mask"], spec=Categorical(n_actions),
                        action_space="categorical")  # fmt: skip
    loss = DiscreteCQLLoss(actor, action_space="categorical")
    loss.make_value_estimator(ValueEstimators.TD0, gamma=config.gamma)
    updater = SoftUpdate(loss, tau=config.target_tau)
    # SPIBB: the logging policy's action probabilities, fitted by cross-entropy
    behaviour = None if config.support is None else masked_q_module(*shape)
    parameters = [*loss.parameters(), *(behaviour.parameters() if behaviour else [])]
    optimiser = torch.optim.Adam(parameters, lr=config.learning_rate)
    scale = float(np.std(data.reward)) or 1.0
    tensors = _tensors(data, scale)
    losses: list[tuple[float, float]] = []
    window: list[tuple[float, float]] = []
    start = time.perf_counter()
    for step in range(config.steps):
        batch = torch.as_tensor(rng.integers(0, data.n, config.batch_size))
        fields = _batch(tensors, batch)
        out = loss(TensorDict(fields, [config.batch_size]))
        total = out["loss_qvalue"] + config.cql_alpha * out["loss_cql"]
        if behaviour is not None:
            logits = behaviour(fields["observation"], fields["action_mask"])
            total = total + torch.nn.functional.cross_entropy(logits, fields["action"])
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        updater.step()
        window.append((out["loss_qvalue"].item(), out["loss_cql"].item()))
        if (step + 1) % max(config.steps // 10, 1) == 0 or step + 1 == config.steps:
            td_loss, cql_loss = np.mean(window, axis=0).round(6).tolist()
            losses.append((td_loss, cql_loss))
            window = []
    elapsed = time.perf_counter() - start
    anchor = None if config.support is None or scenario is None else champion_module(scenario)
    module = policy_module(q_net, behaviour, anchor, config.support or 0.0)
    fallbacks = 0 if anchor is None else int(anchor.table.shape[1]) - 1
    return OfflineResult(module, losses, scale, elapsed, fallbacks)


def _check(data: Transitions, config: OfflineConfig) -> None:
    if data.n == 0:
        raise ValueError("the logs gave no usable transition")
    if data.obs.shape[1] != len(FEATURE_NAMES):
        columns = data.obs.shape[1]
        raise ValueError(f"observations have {columns} columns, expected {len(FEATURE_NAMES)}")
    if config.steps < 1 or config.batch_size < 1:
        sizes = f"{config.steps}, {config.batch_size}"
        raise ValueError(f"steps and batch_size must be >= 1 (got {sizes})")
    if not 0.0 <= config.gamma < 1.0:
        raise ValueError(f"gamma must be in [0, 1), got {config.gamma}")


def _tensors(data: Transitions, scale: float) -> dict[str, Any]:
    """Torch views of the transitions; the last row of an account points to itself (done)."""
    import torch

    rows = np.arange(data.n)
    return {
        "obs": torch.as_tensor(data.obs),
        "mask": torch.as_tensor(data.mask),
        "action": torch.as_tensor(data.action),
        "reward": torch.as_tensor((data.reward / scale).astype(np.float32)),
        "next": torch.as_tensor(np.where(data.next_row >= 0, data.next_row, rows)),
        "done": torch.as_tensor(data.next_row < 0),
    }


def _batch(t: dict[str, Any], rows: Any) -> dict[Any, Any]:
    nxt = t["next"][rows]
    done = t["done"][rows][:, None]
    return {
        "observation": t["obs"][rows],
        "action_mask": t["mask"][rows],
        "action": t["action"][rows],
        ("next", "observation"): t["obs"][nxt],
        ("next", "action_mask"): t["mask"][nxt],
        ("next", "reward"): t["reward"][rows][:, None],
        ("next", "done"): done,
        ("next", "terminated"): done,
    }


# --------------------------------------------------------------------------- honest check
@dataclass(frozen=True)
class CheckSettings:
    """The in-simulation check of offline learning (one seed per call).

    Attributes:
        accounts: portfolio size.
        days: simulated days of the logs and of each true-value run.
        epsilon: exploration share of the logging policy.
        holdout: random holdout share of the logging policy.
        n_boot: bootstrap resamples of the OPE intervals.
        ope_horizon_days: H of the OPE estimate and of the per-account-day truth.
        config: offline training hyper-parameters.
    """

    accounts: int = 10_000
    days: int = 30
    epsilon: float = 0.05
    holdout: float = 0.05
    n_boot: int = 100
    ope_horizon_days: int = 7
    config: OfflineConfig = OfflineConfig()


def honest_check(scenario: Scenario, seed: int, settings: CheckSettings, workdir: Path) -> dict:
    """Logs → offline training → OPE estimate, and the simulated truth, for one seed.

    1. Simulate ``days`` days under the logging policy (the champion with ε-exploration
       and a random holdout, :class:`EpsilonChampion` in
       :class:`~collsim.evaluation.logging.LoggingPolicy`) and write its lender logs.
    2. Learn from the logs alone (:func:`logged_transitions`, :func:`train_offline`) and
       export the ``rl_onnx`` artifact.
    3. OPE: :func:`collsim.evaluation.offline.evaluate_offline` of the artifact on the logs
       (DR and SNIPW of ``portfolio_value`` per considered account-day over ``H`` days).
    4. Truth: simulate the artifact on the same scenario and seed (same accounts and
       borrowers), read its ``portfolio_value``, the engine's compliance-gate blocks, and
       the same per-account-day ``H``-day value from its own logs (``logged`` mean).

    Returns:
        Flat figures: ``logging_value`` / ``learned_value`` (portfolio value per account),
        ``diff`` and its paired-over-accounts 95 % interval (``diff_low``, ``diff_high``),
        ``violations`` (gate blocks of the learned run), ``ope_dr`` (+ ``_low``/``_high``),
        ``ope_snipw``, ``logged_row_value`` (the logging policy's per-row value),
        ``true_row_value`` (the learned policy's, deployed), ``ess``, ``agreement``,
        timings.
    """
    import torch

    from collsim.evaluation.logging import LoggingPolicy
    from collsim.evaluation.offline import OfflineSettings, evaluate_offline, load_window_logs
    from collsim.evaluation.stats import t_interval
    from collsim.export import load_artifact
    from collsim.rl.export import export_artifact

    timings: dict[str, float] = {}
    clock = time.perf_counter()
    logger = LoggingPolicy(EpsilonChampion(scenario, settings.epsilon), settings.holdout)
    # each run is kept as its per-account values only (memory at 100k accounts × 60 days)
    base, capacity = _simulate(scenario, seed, settings, logger, workdir / "logging_logs")
    champion, _ = _simulate(scenario, seed, settings, TieredChampion(scenario.champion), None)
    timings["simulate_logging_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    logs = load_window_logs(workdir / "logging_logs", None, None)
    data = logged_transitions(logs, scenario, settings.config.horizon_days, capacity)
    timings["transitions_s"] = time.perf_counter() - clock
    result = train_offline(data, dataclasses.replace(settings.config, seed=seed), scenario)
    timings["train_s"] = result.elapsed_s
    with torch.no_grad():
        actions = result.module(torch.as_tensor(data.obs), torch.as_tensor(data.mask))[0].numpy()
    agreement, n_transitions = float(np.mean(actions == data.champion)), data.n
    del data, actions
    export_artifact(result.module, workdir / "artifact", scenario, "offline", result.fallbacks)
    policy = load_artifact(workdir / "artifact")
    ope_settings = OfflineSettings(
        horizon_days=settings.ope_horizon_days, n_boot=settings.n_boot, capacity=capacity,
        seed=seed,
    )  # fmt: skip
    clock = time.perf_counter()
    ope = evaluate_offline(logs, policy, ope_settings)
    del logs
    timings["ope_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    learned, _ = _simulate(scenario, seed, settings, policy, workdir / "learned_logs")
    timings["simulate_learned_s"] = time.perf_counter() - clock
    own = evaluate_offline(load_window_logs(workdir / "learned_logs", None, None), policy,
                           dataclasses.replace(ope_settings, n_boot=10))  # fmt: skip
    diff = t_interval(learned.values - base.values)
    versus_champion = t_interval(learned.values - champion.values)
    pv = ope.estimates["portfolio_value"]
    return {
        "seed": seed, "accounts": settings.accounts, "days": settings.days,
        "transitions": n_transitions, "logging_value": float(base.values.mean()),
        "learned_value": float(learned.values.mean()),
        "diff": diff.mean, "diff_low": diff.low, "diff_high": diff.high,
        "champion_value": float(champion.values.mean()), "diff_champion": versus_champion.mean,
        "diff_champion_low": versus_champion.low, "diff_champion_high": versus_champion.high,
        "champion_agreement": agreement, "violations": learned.blocked,
        "logging_violations": base.blocked,
        "ope_dr": pv["dr"].value, "ope_dr_low": pv["dr"].low, "ope_dr_high": pv["dr"].high,
        "ope_snipw": pv["snipw"].value, "ope_snipw_low": pv["snipw"].low,
        "ope_snipw_high": pv["snipw"].high, "logged_row_value": pv["logged"].value,
        "true_row_value": own.estimates["portfolio_value"]["logged"].value,
        "ess": ope.diagnostics.ess, "agreement": ope.diagnostics.agreement,
        "learned_contact_share": ope.diagnostics.candidate_contact_share,
        "logged_contact_share": ope.diagnostics.logged_contact_share,
        **{k: round(v, 1) for k, v in timings.items()},
    }  # fmt: skip


@dataclass(frozen=True)
class _Run:
    """A simulated run kept small: portfolio value per account and gate blocks."""

    values: np.ndarray
    blocked: int


def _simulate(
    scenario: Scenario, seed: int, settings: CheckSettings, policy: Any, folder: Path | None
) -> tuple[_Run, Path | None]:
    """Run ``policy`` for ``settings.days``; write its logs and capacity into ``folder``."""
    from collsim.config import dump_yaml
    from collsim.metrics import kpis
    from collsim.sim import Simulation
    from collsim.sim.logs import LogRecorder, write_simulated_logs
    from collsim.valuation import account_portfolio_values

    sim = Simulation(scenario, seed, n_accounts=settings.accounts)
    if folder is None:
        sim.run(policy, settings.days)
    else:
        recorder = LogRecorder(sim)
        sim.run(recorder.wrap(policy), settings.days,
                progress=lambda _stats: recorder.end_of_day())  # fmt: skip
        write_simulated_logs(recorder, folder, force=True)
        dump_yaml(sim.scenario.capacity, folder / "capacity.yaml")
    run = _Run(account_portfolio_values(sim.ledger, settings.accounts),
               int(kpis(sim.ledger)["blocked"]))  # fmt: skip
    return run, None if folder is None else folder / "capacity.yaml"


def check_summary(rows: list[dict]) -> dict[str, Any]:
    """Across seeds: paired interval of learned − logging, violations, OPE coverage.

    ``ope_dr_covers`` / ``ope_snipw_covers``: share of seeds whose OPE interval holds the
    learned policy's deployed per-account-day value (``true_row_value``);
    ``ope_dr_flags_worse``: share of seeds whose DR interval lies wholly below the logging
    policy's own per-account-day value (OPE would have stopped the deployment).
    """
    from collsim.evaluation.stats import paired_interval

    learned = np.array([r["learned_value"] for r in rows])
    logging = np.array([r["logging_value"] for r in rows])
    diff = paired_interval(learned, logging)
    truth = np.array([r["true_row_value"] for r in rows])

    def covers(name: str) -> float:
        low = np.array([r[f"{name}_low"] for r in rows])
        high = np.array([r[f"{name}_high"] for r in rows])
        return float(np.mean((low <= truth) & (truth <= high)))

    return {
        "seeds": len(rows), "learned_value": float(learned.mean()),
        "logging_value": float(logging.mean()), "diff": diff.mean, "diff_low": diff.low,
        "diff_high": diff.high, "violations": int(sum(r["violations"] for r in rows)),
        "ope_dr_covers": covers("ope_dr"), "ope_snipw_covers": covers("ope_snipw"),
        "ope_dr_flags_worse": float(np.mean([r["ope_dr_high"] < r["logged_row_value"]
                                             for r in rows])),
    }  # fmt: skip
