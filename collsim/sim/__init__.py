"""The SimPy simulation engine (the only package that imports SimPy)."""

from collsim.sim.engine import DayStats, PolicyError, Simulation, history_from_ledger
from collsim.sim.ledger import EVENTS, Ledger

__all__ = ["EVENTS", "DayStats", "Ledger", "PolicyError", "Simulation", "history_from_ledger"]
