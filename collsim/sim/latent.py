"""RESEARCH ONLY: explicit access to the simulator's hidden truth.

Policies never see latent state: they decide from a :class:`~collsim.plan.Snapshot`.
Research references (the oracle upper bound) need the true borrower parameters; they
implement :class:`LatentAware`, and :meth:`collsim.sim.engine.Simulation.step` hands
them a :class:`LatentView` of the running simulation before each decision.  The view
is live (it always shows the current day) and exposes no method that changes the
simulation; the arrays of its ``latent``, ``state`` and ``portfolio`` are read-only
views (writing to one raises ``ValueError``).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from collsim.behaviour import BorrowerModel, BorrowerState
    from collsim.config import Scenario
    from collsim.portfolio import Latent, Portfolio
    from collsim.sim.state import SimState


T = TypeVar("T")


def read_only(record: T) -> T:
    """A shallow copy of a dataclass whose numpy arrays are read-only views of the original."""
    out = copy.copy(record)
    for item in dataclasses.fields(record):  # type: ignore[arg-type]
        value = getattr(record, item.name)
        if isinstance(value, np.ndarray):
            frozen = value.view()
            frozen.flags.writeable = False
            object.__setattr__(out, item.name, frozen)
    return out


class LatentView:
    """Read-only view of a running simulation's latent and behavioural state.

    Args:
        state: the state of the simulation viewed.
    """

    __slots__ = ("_state",)

    research_only = True

    def __init__(self, state: SimState) -> None:
        self._state = state

    @property
    def n(self) -> int:
        """Number of accounts."""
        return self._state.n

    @property
    def day(self) -> int:
        """The current day number."""
        return self._state.day

    @property
    def day_index(self) -> int:
        """Days simulated so far."""
        return self._state.day_index

    @property
    def scenario(self) -> Scenario:
        """The scenario simulated."""
        return self._state.scenario

    @property
    def model(self) -> BorrowerModel:
        """The borrower model (true response probabilities)."""
        return self._state.model

    @property
    def latent(self) -> Latent:
        """The latent borrower parameters (read-only arrays)."""
        return read_only(self._state.latent)

    @property
    def state(self) -> BorrowerState:
        """The borrowers' behavioural state (status, excitation, plans; read-only arrays)."""
        return read_only(self._state.borrowers)

    @property
    def portfolio(self) -> Portfolio:
        """The observable account state (read-only arrays)."""
        return read_only(self._state.portfolio)


@runtime_checkable
class LatentAware(Protocol):
    """RESEARCH ONLY: a policy that reads latent state through a :class:`LatentView`."""

    def observe_latent(self, view: LatentView) -> None:
        """Receive the view of the simulation about to ask for a decision."""
        ...


__all__ = ["LatentAware", "LatentView"]
