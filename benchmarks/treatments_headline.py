"""Treatments headline: champion_us_offers vs champion_us on paired seeds (issue 11).

Run: ``.venv/bin/python benchmarks/treatments_headline.py ACCOUNTS DAYS SEEDS``,
e.g. ``5000 60 5`` (about 1.5 minutes).  Prints per-seed figures and the mean paired
differences with 95% t-intervals.
"""

import sys

import numpy as np
from scipy import stats

from collsim.config import load_scenario
from collsim.metrics import kpis, treatment_kpis
from collsim.policies.champion import TieredChampion
from collsim.sim.engine import Simulation

n, days, seeds = int(sys.argv[1]), int(sys.argv[2]), range(1, int(sys.argv[3]) + 1)
scenario = load_scenario("default")
rate = scenario.treatments.npv_discount_rate_annual
rows = {}
for seed in seeds:
    for tree in ("champion_us", "champion_us_offers"):
        led = Simulation(scenario, TieredChampion(tree), seed=seed, n_accounts=n).run(days=days)
        k, t = kpis(led), treatment_kpis(led, rate)
        rows[(seed, tree)] = {
            "npv": t["npv_recovered"],
            "complaints": k["complaints_per_1000"],
            "discount": t["discount_given"],
            "cost": k["total_cost"],
            "take_up_plan": t["offer_take_up.instalment_plan"],
            "take_up_settle": t["offer_take_up.settlement"],
            "plan_completion": t["offered_plan_completion_rate"],
        }
        print(seed, tree, {a: round(b, 3) for a, b in rows[(seed, tree)].items()}, flush=True)
for key in ("npv", "complaints", "discount", "cost"):
    d = np.array(
        [rows[(s, "champion_us_offers")][key] - rows[(s, "champion_us")][key] for s in seeds]
    )
    half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
    base = np.mean([rows[(s, "champion_us")][key] for s in seeds])
    print(
        f"{key}: mean diff {d.mean():.2f} "
        f"(95% CI {d.mean() - half:.2f} .. {d.mean() + half:.2f}); baseline mean {base:.2f}"
    )
