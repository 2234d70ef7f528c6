"""Calibration check: the champion's KPIs on the bundled scenarios vs public figures.

Run: ``.venv/bin/python benchmarks/calibration.py``.  Targets (issue 3; sources in
../shared/CALIBRATION.md): right-party contact 5–10% per agent-call attempt
(Sánchez et al. 2022: 7.4%), promise to pay in 30–40% of right-party contacts
(same: ~35%), roll 31–60 → 61–90 DPD of 60–75% (US card roll-rate range).
"""

from __future__ import annotations

import argparse

from collsim.config import load_scenario
from collsim.metrics import kpis
from collsim.policies.baselines import NoContact
from collsim.policies.champion import TieredChampion
from collsim.sim import Simulation

TARGETS = {
    "rpc_rate.agent_call": (0.05, 0.10),
    "ptp_rate": (0.30, 0.40),
    "roll_rate.31-60": (0.60, 0.75),
}
SHOWN = (
    "rpc_rate.agent_call",
    "ptp_rate",
    "roll_rate.1-30",
    "roll_rate.31-60",
    "roll_rate.61-90",
    "cure_rate",
    "promise_kept_rate",
    "charge_off_rate",
    "complaints_per_1000",
    "agent_utilisation",
    "recovery_rate",
    "cost_to_collect",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    for name in ("default", "cn_consumer_finance"):
        scenario = load_scenario(name)
        rows = []
        for seed in range(args.seeds):
            sim = Simulation(scenario, TieredChampion(scenario.champion), seed)
            sim.run()
            rows.append(kpis(sim.ledger))
        base = Simulation(scenario, NoContact(), 0)
        base.run()
        cure_alone = kpis(base.ledger)["cure_rate"]
        print(
            f"## {name} (champion, {scenario.portfolio.n_accounts:,} accounts, "
            f"{scenario.sim.days} days, {args.seeds} seeds)"
        )
        for key in SHOWN:
            values = [r[key] for r in rows]
            mean = sum(values) / len(values)
            low, high = TARGETS.get(key, (None, None))
            verdict = (
                ""
                if low is None
                else ("  in target" if low <= mean <= high else f"  OUTSIDE {low}-{high}")
            )
            print(
                f"{key:24s} {mean:8.3f}  (seeds: {', '.join(f'{v:.3f}' for v in values)}){verdict}"
            )
        print(f"{'cure_rate, no contact':24s} {cure_alone:8.3f}")


if __name__ == "__main__":
    main()
