"""Treatments headline (issue 11): a policy with treatments vs the same policy without.

Run::

    .venv/bin/python benchmarks/treatments_headline.py [ACCOUNTS DAYS FIRST_SEED SEEDS]

defaults ``5000 90 11 10`` (default scenario, 5,000 accounts, 90 days, seeds 11-20;
about 3 minutes on 2 shared cores).  The tree was tuned on seeds 1-7, so seeds 11-20
are fresh.

Arms, all on the same seeds (common random numbers, paired):

* ``treated``: ``champion_us_offers`` (empathetic tone on every tier, settlement
  offers from 120 DPD);
* ``none``: the **same tree restricted to no treatment** (every tier's offer ``none``
  and variant ``standard``; the same ladders, slots and cadences) -- the headline's
  comparator;
* ``offers_only`` / ``tone_only``: the tree with only its offers / only its variants
  (the decomposition);
* ``champion_us``: the bundled champion without treatments (for reference: the
  treated tree settles before suing, so its ladder differs from champion_us).

Prints per-seed figures, then mean paired differences against ``none`` with 95%
t-intervals (NPV of recoveries at the scenario's discount rate, complaints per 1,000
accounts, discount given, contact cost, charged-off balance), and the fate of the
accounts that settled under ``treated`` in the ``none`` run (cured, charged off or
still delinquent at the end): the discount is only worth giving where the account
would not have paid.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from scipy import stats

from collsim.config import load_scenario
from collsim.ledger import EVENT, Ledger
from collsim.metrics import kpis, treatment_kpis
from collsim.policies.champion import StrategyTree, TieredChampion, load_tree
from collsim.sim.engine import Simulation


def restricted(tree: StrategyTree, offers: bool, variants: bool, suffix: str) -> StrategyTree:
    """The tree with its offers and/or variants removed (``False`` = set to none/standard)."""
    tiers = [
        t.model_copy(
            update={
                "offer": t.offer if offers else "none",
                "variant": t.variant if variants else "standard",
            }
        )
        for t in tree.tiers
    ]
    return tree.model_copy(update={"id": f"{tree.id}_{suffix}", "tiers": tiers})


def settled_accounts(ledger: Ledger) -> np.ndarray:
    """Accounts with a settlement event."""
    c = ledger.columns()
    return np.unique(c["account"][c["event"] == EVENT["settlement"]])


def fate(ledger: Ledger, accounts: np.ndarray) -> dict[str, float]:
    """Share of ``accounts`` cured / charged off (or in legal) in ``ledger``."""
    c = ledger.columns()
    cured = np.unique(c["account"][c["event"] == EVENT["cure"]])
    lost = np.unique(
        c["account"][(c["event"] == EVENT["charge_off"]) | (c["event"] == EVENT["legal_filed"])]
    )
    n = max(accounts.size, 1)
    return {
        "cured": float(np.isin(accounts, cured).sum() / n),
        "charged_off_or_legal": float(np.isin(accounts, lost).sum() / n),
    }


def main(argv: list[str]) -> None:
    """Run the arms on paired seeds and print the headline."""
    n, days, first, count = (int(a) for a in (argv + ["5000", "90", "11", "10"][len(argv) :]))
    seeds = range(first, first + count)
    scenario = load_scenario("default")
    assert scenario.treatments is not None
    rate = scenario.treatments.npv_discount_rate_annual
    tree = load_tree("champion_us_offers")
    arms = {
        "treated": tree,
        "none": restricted(tree, False, False, "none"),
        "offers_only": restricted(tree, True, False, "offers_only"),
        "tone_only": restricted(tree, False, True, "tone_only"),
        "champion_us": load_tree("champion_us"),
    }
    rows: dict[tuple[int, str], dict[str, float]] = {}
    fates = []
    start = time.perf_counter()
    for seed in seeds:
        ledgers = {}
        for arm, t in arms.items():
            sim = Simulation(scenario, seed=seed, n_accounts=n)
            led = ledgers[arm] = sim.run(TieredChampion(t), days=days)
            k, tk = kpis(led), treatment_kpis(led, rate)
            rows[(seed, arm)] = {
                "portfolio_value": k["portfolio_value"],
                "npv": tk["npv_recovered"],
                "complaints_per_1000": k["complaints_per_1000"],
                "discount": tk["discount_given"],
                "contact_cost": k["total_cost"],
                "charged_off_balance": k["charged_off_balance"],
                "settlement_take_up": tk["offer_take_up.settlement"],
            }
            print(seed, arm, {a: round(b, 4) for a, b in rows[(seed, arm)].items()}, flush=True)
        fates.append(fate(ledgers["none"], settled_accounts(ledgers["treated"])))
    elapsed = time.perf_counter() - start
    print(f"\n{n} accounts x {days} days, seeds {first}-{first + count - 1}, {elapsed:.0f} s")
    for arm in ("treated", "offers_only", "tone_only", "champion_us"):
        print(f"\n{arm} - none (paired, 95% t-interval):")
        for key in (
            "portfolio_value",
            "npv",
            "complaints_per_1000",
            "discount",
            "contact_cost",
            "charged_off_balance",
        ):
            d = np.array([rows[(s, arm)][key] - rows[(s, "none")][key] for s in seeds])
            half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
            base = np.mean([rows[(s, "none")][key] for s in seeds])
            print(
                f"  {key}: {d.mean():+,.2f} [{d.mean() - half:+,.2f}, {d.mean() + half:+,.2f}]"
                f"  (none: {base:,.2f})"
            )
    print(
        "\naccounts settled under 'treated', their fate in the 'none' run: "
        + ", ".join(f"{k} {np.mean([f[k] for f in fates]):.1%}" for k in fates[0])
    )


if __name__ == "__main__":
    main(sys.argv[1:])
