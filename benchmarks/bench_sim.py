"""Simulator speed: account-days per second, and the SimPy contact centre at 100k × 90 days.

Run: ``.venv/bin/python benchmarks/bench_sim.py [--quick]``.  Prints the figures; copy
them into benchmarks/RESULTS.md with the date and machine.
Targets (2-core machine): 1M accounts × 30 days ≤ 60 s; 100k × 90 days with the
contact centre ≤ 30 s.
"""

from __future__ import annotations

import argparse
import os
import time

from collsim.config import load_scenario
from collsim.ledger import EVENT
from collsim.policies.champion import TieredChampion
from collsim.sim import Simulation


def run(n_accounts: int, days: int) -> tuple[float, float, float, Simulation]:
    """(set-up s, run s, run CPU s, simulation) for the champion on the default scenario."""
    started = time.perf_counter()
    sim = Simulation(load_scenario("default"), seed=1, n_accounts=n_accounts)
    setup_s = time.perf_counter() - started
    started, cpu_started = time.perf_counter(), time.process_time()
    sim.run(TieredChampion(), days)
    return setup_s, time.perf_counter() - started, time.process_time() - cpu_started, sim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    cases = (
        [(20_000, 10), (20_000, 30)]
        if args.quick
        else [(100_000, 30), (1_000_000, 30), (100_000, 90)]
    )
    for n, days in cases:
        setup_s, run_s, cpu_s, sim = run(n, days)
        c = sim.ledger.columns()
        calls = int(((c["event"] == EVENT["attempt"]) & (c["channel"] == 0)).sum())
        print(
            f"{n:>9,} accounts x {days:>2} days: set-up {setup_s:6.1f} s, run {run_s:6.1f} s "
            f"(CPU {cpu_s:6.1f} s), "
            f"{n * days / run_s:>12,.0f} account-days/s, {calls:,} agent calls "
            f"({calls / run_s:,.0f}/s), {len(sim.ledger):,} ledger events"
            f"; load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
