"""The one mutable state of a running simulation, shared by the engine's stages.

Every stage in :mod:`collsim.sim.stages` is a function of a :class:`SimState` (plus
the day's arrays); the :class:`~collsim.sim.engine.Simulation` builds the state and
calls the stages in a fixed order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from collsim.behaviour import BorrowerModel, BorrowerState
from collsim.compliance import ContactWindow, RuleSet
from collsim.config import AgentPool as AgentPoolConfig
from collsim.config import Scenario
from collsim.ledger import Ledger
from collsim.plan import OptionSpace
from collsim.portfolio import ContactState, Latent, Portfolio
from collsim.rng import RunRandom
from collsim.sim.centre import AgentPool, Courts, FieldTeam, Post
from collsim.treatments import TreatmentTables


@dataclass(eq=False)
class SimState:
    """Portfolio, borrowers, contact history, ledger, queues and counters of one run.

    Attributes:
        scenario: the (scaled) scenario.
        random: the run's keyed random streams.
        policy_rng: the policy's generator (handed out in each Snapshot).
        portfolio: observable account state.
        latent: latent borrower parameters (never shown to policies).
        treatments: offer/variant effects and support per segment.
        model: the borrower response model.
        borrowers: behavioural state (status, excitation, plans, holidays).
        ruleset: the compliance rule set (with the litigation floor).
        options: the (channel, slot) option space.
        first_day: day number of the first simulated day.
        day: the current day number.
        window: the contact window the rules read (attempts, conversations).
        contact: the contact summary policies see.
        ledger: the event ledger.
        env: the SimPy environment (hours since the first day's midnight).
        pools: agent pools by name (SimPy queues).
        call_pool: configuration of the pool that takes agent calls (None: none).
        generation: int64 [N], bumped when a row gets a new account.
        post: letters in the post.
        courts: court cases and garnishment timers.
        field: the field team.
        garnish_amount: float [N] money per garnishment instalment.
        garnish_left: int64 [N] garnishment instalments still to come.
        cost_per_attempt: float [channels] cost of an attempt.
        cost_per_minute: float [channels] cost of a minute of handle time.
        handle_s: float [channels, 4] mean handle time (s) by call result kind.
        offer: int8 [N] today's offers (None: no treatment today).
        variant: int8 [N] today's variants (None: no treatment today).
        recovered: money recovered so far.
        attempts: contact attempts made so far.
        agent_call_stage: the stage running the day's agent calls (None: the hourly
            SimPy stage :func:`collsim.sim.stages.calls.agent_calls`; fast training
            environments opt in to :func:`collsim.sim.stages.rounds.agent_calls_by_round`).
    """

    scenario: Scenario
    random: RunRandom
    policy_rng: np.random.Generator
    portfolio: Portfolio
    latent: Latent
    treatments: TreatmentTables
    model: BorrowerModel
    borrowers: BorrowerState
    ruleset: RuleSet
    options: OptionSpace
    first_day: int
    day: int
    window: ContactWindow
    contact: ContactState
    ledger: Ledger
    env: simpy.Environment
    pools: dict[str, AgentPool]
    call_pool: AgentPoolConfig | None
    generation: np.ndarray
    post: Post
    courts: Courts
    field: FieldTeam
    garnish_amount: np.ndarray
    garnish_left: np.ndarray
    cost_per_attempt: np.ndarray
    cost_per_minute: np.ndarray
    handle_s: np.ndarray
    offer: np.ndarray | None = None
    variant: np.ndarray | None = None
    recovered: float = 0.0
    attempts: int = 0
    agent_call_stage: Callable[..., None] | None = None

    @property
    def n(self) -> int:
        """Number of accounts."""
        return self.portfolio.n

    @property
    def day_index(self) -> int:
        """Days simulated so far."""
        return self.day - self.first_day

    def run_clock(self, until_h: float) -> None:
        """Advance the SimPy clock to ``until_h`` (no-op if already there)."""
        if until_h > self.env.now:
            self.env.run(until=until_h)

    def due_fraction(self) -> np.ndarray:
        """float [products]: the minimum due per cycle as a share of the balance."""
        products = self.scenario.portfolio.products
        return np.array(
            [
                products[name].due_fraction if name in products else 0.0
                for name in self.portfolio.products
            ]
        )


__all__ = ["SimState"]
