"""Policy ids on the command line and in experiment specs → Policy objects."""

from __future__ import annotations

from pathlib import Path

from collsim.config import Scenario
from collsim.plan import Policy
from collsim.policies.baselines import NoContact, RandomPolicy
from collsim.policies.champion import TieredChampion

POLICY_IDS = ("no_contact", "random", "champion")
"""Built-in policy ids (a strategy-tree YAML path is accepted too)."""


def make_policy(spec: str, scenario: Scenario) -> Policy:
    """Build a policy from its command-line id.

    Args:
        spec: ``no_contact``, ``random``, ``champion`` (the scenario's tree), or a
            path to a strategy-tree YAML.
        scenario: the scenario (selects the champion tree).

    Raises:
        ValueError: unknown id; the message lists the known ones.
    """
    if spec == "no_contact":
        return NoContact()
    if spec == "random":
        return RandomPolicy()
    if spec == "champion":
        return TieredChampion(scenario.champion)
    path = Path(spec)
    if path.suffix in {".yaml", ".yml"}:
        if not path.exists():
            raise ValueError(f"{path}: strategy tree file not found")
        return TieredChampion(path)
    raise ValueError(
        f"unknown policy {spec!r}; expected one of {', '.join(POLICY_IDS)} or a tree YAML path"
    )
