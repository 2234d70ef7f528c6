"""A tiny collections MDP whose optimum is computable: finite-horizon DP and a stand-in for collsim.

Why: collsim's simulator is too large to solve exactly, so "does MaskablePPO find
the optimum?" is asked on a small discrete MDP built from the same mechanics.

The general machinery (:class:`FiniteMDP`, :func:`value_iteration`,
:func:`policy_value`) works for any finite MDP with absorbing states and an action
mask; :func:`collections_mdp` builds the collections stand-in.

**States** (12 live + 2 absorbing): DPD stage ``s`` (0 = 1–30, 1 = 31–90,
2 = 91–180 days) × contacted recently ``c`` (0/1) × promise open ``p`` (0/1), then
``PAID`` and ``CHARGED_OFF``.  **Actions**: 0 = no contact, 1 = cheap message
(SMS), 2 = agent call.  **Horizon** 10 days, undiscounted.

Mapping to collsim's mechanics (:mod:`collsim.behaviour`, ``default.yaml``):

==========================  ==================================================
collsim                     tiny MDP
==========================  ==================================================
self-cure hazard falling    ``h0[s]`` = 0.04, 0.015, 0.005 per day by stage
with DPD                    (``self_cure_hazard · exp(-dpd / 40)``)
contact excites the         a contact that reaches the borrower (message read
repayment hazard            w.p. 0.35, call answered w.p. 0.25) adds a jump
(Hawkes jump)               ``J[a]·resp[s]`` to today's hazard, ``J`` = 0.05
                            (message), 0.25 (call)
willingness falls with      ``resp[s]`` = 1.0, 0.5, 0.2: late-stage accounts are
DPD (segment mix)           mostly the unwilling/unable segments
fatigue: diminishing        the jump is divided by ``1 + f·c`` with ``f`` = 1
returns                     (contacted recently halves it); ``c`` stays 1 w.p. 0.5
                            a day without contact (fatigue decay)
right-party conversation    an answered call makes a promise w.p. 0.4; an open
→ promise to pay            promise adds 0.9 to the next day's hazard (kept ≈ 60%)
                            and is resolved that day (kept = paid, else broken)
Reg F post-conversation     a call is masked while a promise is open (it follows
rule (mask)                 a conversation); no contact is always allowed
contact cost                message 0.1, call 6.0 (dialler + agent minutes)
roll / charge-off           each day the account rolls to the next stage w.p. 0.1;
                            rolling out of stage 2 is charge-off (absorbing, 0)
payment                     the amount due, 100, once (then ``PAID``, absorbing)
==========================  ==================================================

All draws of one day are independent given the state and action: reached ~
Bernoulli(reach[a]); promise (call only) ~ Bernoulli(0.4) if reached; pay ~
Bernoulli(1 − exp(−λ)) with ``λ = h0[s] + reached·J[a]·resp[s]/(1 + f·c) + 0.9·p``; if not
paid, roll ~ Bernoulli(0.1).  It is a stand-in where the optimum is computable, not
a calibrated model: magnitudes are chosen so that the optimal policy depends on the
state *and* the days left (a call early pays through promises; at the end it does not).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "TINY_HORIZON",
    "FiniteMDP",
    "TinyParams",
    "collections_mdp",
    "constant_policy",
    "expected_value",
    "live_state_index",
    "policy_value",
    "value_iteration",
]

TINY_HORIZON = 10
"""Days per episode of the tiny collections MDP."""


@dataclass(frozen=True)
class FiniteMDP:
    """A finite MDP with an action mask, solved over a finite horizon.

    Attributes:
        transition: float [A, X, X], ``transition[a, x, y]`` = P(y | x, a); rows sum to 1.
        reward: float [A, X], expected reward of action a in state x.
        mask: bool [X, A], allowed actions (every state needs one).
        initial: float [X], the initial state distribution.
        state_names: names of the states (for display).
    """

    transition: np.ndarray
    reward: np.ndarray
    mask: np.ndarray
    initial: np.ndarray
    state_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        a, x, y = self.transition.shape
        if x != y or self.reward.shape != (a, x) or self.mask.shape != (x, a):
            raise ValueError(
                f"inconsistent shapes: transition {self.transition.shape}, "
                f"reward {self.reward.shape}, mask {self.mask.shape}"
            )
        if not np.allclose(self.transition.sum(axis=2), 1.0):
            raise ValueError("transition rows must sum to 1")
        if not self.mask.any(axis=1).all():
            raise ValueError("every state needs an allowed action")
        if self.initial.shape != (x,) or not np.isclose(self.initial.sum(), 1.0):
            raise ValueError("initial must be a distribution over the states")

    @property
    def n_states(self) -> int:
        """X, the number of states."""
        return int(self.transition.shape[1])

    @property
    def n_actions(self) -> int:
        """A, the number of actions."""
        return int(self.transition.shape[0])


def value_iteration(mdp: FiniteMDP, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Finite-horizon backward induction (undiscounted).

    Args:
        mdp: the MDP.
        horizon: number of decision steps H.

    Returns:
        (value [H + 1, X], policy [H, X]): ``value[t, x]`` is the optimal expected
        total reward from state x with ``H − t`` steps to go (``value[H] = 0``);
        ``policy[t, x]`` the optimal action at step t (ties: lowest action index).
    """
    value = np.zeros((horizon + 1, mdp.n_states))
    policy = np.zeros((horizon, mdp.n_states), dtype=np.int64)
    for t in range(horizon - 1, -1, -1):
        q = mdp.reward + mdp.transition @ value[t + 1]  # [A, X]
        q = np.where(mdp.mask.T, q, -np.inf)
        policy[t] = np.argmax(q, axis=0)
        value[t] = q[policy[t], np.arange(mdp.n_states)]
    return value, policy


def policy_value(mdp: FiniteMDP, policy: np.ndarray, horizon: int) -> np.ndarray:
    """Exact evaluation of a (time-dependent) policy by backward recursion.

    Args:
        mdp: the MDP.
        policy: int [H, X] deterministic actions, or float [H, X, A] action
            probabilities.  Masked actions are executed as action 0 (no contact),
            as the environments do.
        horizon: H.

    Returns:
        value [H + 1, X] of the policy.
    """
    x = np.arange(mdp.n_states)
    if policy.ndim == 2:
        probs = np.zeros((horizon, mdp.n_states, mdp.n_actions))
        probs[np.arange(horizon)[:, None], x[None, :], policy] = 1.0
    else:
        probs = np.asarray(policy, dtype=float)
    # a masked action does what action 0 does
    executed = np.where(mdp.mask[None], probs, 0.0)
    executed[..., 0] += np.where(~mdp.mask[None], probs, 0.0).sum(axis=2)
    value = np.zeros((horizon + 1, mdp.n_states))
    for t in range(horizon - 1, -1, -1):
        q = mdp.reward + mdp.transition @ value[t + 1]  # [A, X]
        value[t] = np.einsum("xa,ax->x", executed[t], q)
    return value


def expected_value(mdp: FiniteMDP, value: np.ndarray) -> float:
    """Expected total reward from the initial distribution (``value[0]``)."""
    return float(mdp.initial @ value[0])


def constant_policy(mdp: FiniteMDP, action: int, horizon: int) -> np.ndarray:
    """int [H, X]: always ``action`` where allowed, else no contact."""
    return np.where(mdp.mask[:, action], action, 0)[None, :].repeat(horizon, axis=0)


# ----------------------------------------------------------------------------- collections


@dataclass(frozen=True)
class TinyParams:
    """Parameters of the tiny collections MDP (see the module docstring for the mapping)."""

    self_cure: tuple[float, float, float] = (0.04, 0.015, 0.005)
    reach: tuple[float, float, float] = (0.0, 0.35, 0.25)
    jump: tuple[float, float, float] = (0.0, 0.05, 0.25)
    cost: tuple[float, float, float] = (0.0, 0.1, 6.0)
    response: tuple[float, float, float] = (1.0, 0.5, 0.2)
    fatigue: float = 1.0
    fatigue_stay: float = 0.5
    promise: float = 0.4
    promise_hazard: float = 0.9
    roll: float = 0.1
    amount_due: float = 100.0
    initial_stage: tuple[float, float, float] = (0.5, 0.3, 0.2)


N_STAGES = 3
N_LIVE = N_STAGES * 2 * 2
PAID = N_LIVE
CHARGED_OFF = N_LIVE + 1
CALL = 2


def live_state_index(stage: int, contacted: int, promise: int) -> int:
    """Index of the live state (stage, contacted recently, promise open)."""
    return (stage * 2 + contacted) * 2 + promise


def collections_mdp(params: TinyParams | None = None) -> FiniteMDP:
    """Build the tiny collections MDP (12 live states, PAID, CHARGED_OFF; 3 actions)."""
    p = params or TinyParams()
    n_x, n_a = N_LIVE + 2, 3
    transition = np.zeros((n_a, n_x, n_x))
    reward = np.zeros((n_a, n_x))
    mask = np.ones((n_x, n_a), dtype=bool)
    names = [""] * n_x
    for s, c, pr in itertools.product(range(N_STAGES), range(2), range(2)):
        x = live_state_index(s, c, pr)
        names[x] = f"stage{s}/contacted{c}/promise{pr}"
        mask[x, CALL] = pr == 0  # Reg F: no call right after a conversation
        for a in range(n_a):
            pay_total = 0.0
            # outcomes: reached (r) and promise (m) of today's contact
            for r, m in itertools.product(range(2), range(2)):
                p_r = p.reach[a] if r else 1.0 - p.reach[a]
                if r and a == CALL:
                    p_m = p.promise if m else 1.0 - p.promise
                else:
                    p_m = 0.0 if m else 1.0
                weight = p_r * p_m
                if weight == 0.0:
                    continue
                hazard = p.self_cure[s] + r * p.jump[a] * p.response[s] / (1.0 + p.fatigue * c)
                hazard += p.promise_hazard * pr
                pay = 1.0 - np.exp(-hazard)
                pay_total += weight * pay
                transition[a, x, PAID] += weight * pay
                stay = weight * (1.0 - pay)
                # contacted-recently: set by a reaching contact, else decays
                if r:
                    c_next = [(1, 1.0)]
                elif c:
                    c_next = [(1, p.fatigue_stay), (0, 1.0 - p.fatigue_stay)]
                else:
                    c_next = [(0, 1.0)]
                for c2, p_c in c_next:
                    for rolled, p_roll in ((1, p.roll), (0, 1.0 - p.roll)):
                        s2 = s + rolled
                        target = CHARGED_OFF if s2 >= N_STAGES else live_state_index(s2, c2, m)
                        transition[a, x, target] += stay * p_c * p_roll
            reward[a, x] = pay_total * p.amount_due - p.cost[a]
    for x, name in ((PAID, "paid"), (CHARGED_OFF, "charged_off")):
        transition[:, x, x] = 1.0
        names[x] = name
    initial = np.zeros(n_x)
    for s in range(N_STAGES):
        initial[live_state_index(s, 0, 0)] = p.initial_stage[s]
    return FiniteMDP(transition, reward, mask, initial, tuple(names))
