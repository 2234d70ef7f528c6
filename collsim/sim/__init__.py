"""The SimPy simulation engine (the only package that imports SimPy)."""

from collsim.ledger import EVENTS, Ledger
from collsim.sim.engine import DayStats, PolicyError, Simulation, history_from_ledger

__all__ = ["EVENTS", "DayStats", "Ledger", "PolicyError", "Simulation", "history_from_ledger"]
