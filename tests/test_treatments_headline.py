"""The treatments headline in small (issue 11): treatments vs the same tree without, paired."""

from __future__ import annotations

import numpy as np
from scipy import stats

from collsim.config import load_scenario
from collsim.metrics import kpis, treatment_kpis
from collsim.policies.champion import StrategyTree, TieredChampion, load_tree
from collsim.sim.engine import Simulation


def _without_treatments(tree: StrategyTree) -> StrategyTree:
    tiers = [t.model_copy(update={"offer": "none", "variant": "standard"}) for t in tree.tiers]
    return tree.model_copy(update={"id": f"{tree.id}_none", "tiers": tiers})


def test_champion_with_treatments_beats_itself_without_on_npv_and_complaints() -> None:
    """champion_us_offers vs the same tree with offer none / variant standard:
    2,000 accounts × 90 days, seeds 31-33 (not used to tune the tree), paired t-intervals."""
    scenario = load_scenario("default")
    assert scenario.treatments is not None
    rate = scenario.treatments.npv_discount_rate_annual
    tree = load_tree("champion_us_offers")
    assert any(t.offer != "none" for t in tree.tiers)
    npv, complaints = [], []
    for seed in (31, 32, 33):
        figures = []
        for t in (tree, _without_treatments(tree)):
            ledger = Simulation(scenario, seed=seed, n_accounts=2000).run(
                TieredChampion(t), days=90
            )
            figures.append(
                (treatment_kpis(ledger, rate)["npv_recovered"], kpis(ledger)["complaints_per_1000"])
            )
        npv.append(figures[0][0] - figures[1][0])
        complaints.append(figures[0][1] - figures[1][1])

    def interval(d: list[float]) -> tuple[float, float]:
        x = np.asarray(d)
        half = stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
        return x.mean() - half, x.mean() + half

    assert interval(npv)[0] > 0, npv
    assert interval(complaints)[1] < 0, complaints
