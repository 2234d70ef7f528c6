"""Small simulated lender logs for the offline-evaluation and monitoring tests."""

from __future__ import annotations

from pathlib import Path

from collsim.config import Scenario, dump_yaml, load_scenario
from collsim.evaluation.logging import LoggingPolicy
from collsim.plan import Policy
from collsim.policies.champion import TieredChampion
from collsim.sim import Simulation
from collsim.sim.logs import LogRecorder, write_simulated_logs


def champion(scenario: Scenario) -> Policy:
    """The scenario's champion (deterministic: every plan propensity is 1)."""
    return TieredChampion(scenario.champion)


def champion_with_holdout(scenario: Scenario, share: float = 0.3) -> Policy:
    """The champion with a random holdout: contacts logged with propensity 1 - share."""
    return LoggingPolicy(TieredChampion(scenario.champion), holdout_share=share)


def simulate_logs(
    folder: Path,
    policy: Policy,
    scenario: Scenario | str = "default",
    accounts: int = 3000,
    days: int = 20,
    seed: int = 0,
) -> Path:
    """Simulate ``days`` days under ``policy``, write its logs into ``folder``.

    Returns:
        The run's (scaled) capacity written as YAML beside the logs (``capacity.yaml``).
    """
    scen = load_scenario(scenario) if isinstance(scenario, str) else scenario
    sim = Simulation(scen, seed, n_accounts=accounts)
    recorder = LogRecorder(sim)
    sim.run(recorder.wrap(policy), days, progress=lambda _stats: recorder.end_of_day())
    write_simulated_logs(recorder, folder)
    capacity = folder / "capacity.yaml"
    dump_yaml(sim.scenario.capacity, capacity)
    return capacity
