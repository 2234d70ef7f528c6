"""RL choosing treatments itself vs channel-only RL (+ the treatment chooser) vs the champion.

Run::

    nice -n 10 .venv/bin/python benchmarks/rl_treatments.py [--steps 300000]
        [--train-seed 0] [--accounts 5000] [--days 60] [--seeds 1 5]
        [--out runs/rl_treatments]

Trains two MaskablePPO models with the same budget and seed (``collsim train``
defaults otherwise: N = 256, horizon 60, deploy evaluations on 5,000 accounts, seed
1,000,003): ``plain`` (channel × slot actions) and ``treat`` (``--treatments``:
channel × slot × offer × variant actions).  An existing run folder (with
``best_model.zip``) is reused.  Fits the treatment-effect model
(:func:`collsim.research.treatment.train_with_treatments`, exploration seeds 101-103,
3,000 accounts, 90 days) for the ``plain+chooser`` arm.  Then simulates on paired
seeds (default 1-5, ``accounts`` × ``days``, the scenario's rule set):

* ``champion``: the scenario's strategy tree;
* ``plain``: ``RLPolicy(plain, fallbacks=8)`` (no treatments);
* ``plain+chooser``: the same with ``with_treatments(TreatmentChooser(effects))``;
* ``treat``: ``RLPolicy(treat, fallbacks=8)``, offers and variants its own.

Prints per seed and arm: portfolio_value and its parts (NPV of recoveries and costs,
terminal value), contacts, the share of contacts carrying each offer, each offer's
take-up and acceptances, complaints per 1,000 accounts, gate blocks; then the paired
differences (95 % t-intervals) of portfolio_value, NPV recovered and terminal value
against ``champion`` and of ``treat`` against ``plain`` and ``plain+chooser``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from collsim.config import load_scenario
from collsim.evaluation.stats import t_interval
from collsim.ledger import EVENT
from collsim.metrics import kpis, treatment_kpis
from collsim.plan import Policy
from collsim.policies.champion import TieredChampion
from collsim.policies.models.treatment import TreatmentChooser, TreatmentSupport
from collsim.policies.rl import RLPolicy
from collsim.research.training import TrainingSettings
from collsim.research.treatment import train_with_treatments
from collsim.rl.commands import train
from collsim.rl.logits import load_logit_model
from collsim.sim.engine import Simulation
from collsim.valuation import portfolio_value_parts
from collsim.vocab import OFFERS

ARMS = ("champion", "plain", "plain+chooser", "treat")
PARTS = ("npv_recovered", "npv_cost", "complaint_cost", "terminal_value")
"""The terms of portfolio_value (collsim.valuation.portfolio_value_parts)."""


def train_both(out: Path, steps: int, seed: int) -> dict[str, Path]:
    """Train (or reuse) the plain and the treatment model; return their best .zip files."""
    models = {}
    for name, extra in (("plain", {}), ("treat", {"treatments": True})):
        folder = out / name
        if not (folder / "best_model.zip").exists():
            started = time.perf_counter()
            overrides = {"steps": steps, "seed": seed, "eval_every": 65_536, **extra}
            assert train(folder, overrides, progress=False) == 0
            print(f"trained {name}: {time.perf_counter() - started:.0f} s", flush=True)
        models[name] = folder / "best_model.zip"
    return models


def row(ledger: object, rate: float) -> dict[str, float]:
    """The figures printed per seed and arm."""
    k, t = kpis(ledger), treatment_kpis(ledger, rate)  # type: ignore[arg-type]
    parts = portfolio_value_parts(ledger)  # type: ignore[arg-type]
    c = ledger.columns()  # type: ignore[attr-defined]
    attempts = max(1.0, float((c["event"] == EVENT["attempt"]).sum()))
    accepted = c["event"] == EVENT["offer_accepted"]
    out = {
        "portfolio_value": k["portfolio_value"],
        "npv_recovered": parts["npv_recovered"],
        "npv_cost": parts["npv_cost"],
        "complaint_cost": parts["complaint_cost"],
        "terminal_value": parts["terminal_value"],
        "contacts": attempts,
        "complaints_per_1000": k["complaints_per_1000"],
        "blocked": float((c["event"] == EVENT["blocked"]).sum()),
        "treatment_blocked": float((c["event"] == EVENT["treatment_blocked"]).sum()),
    }
    for name in OFFERS[1:]:
        out[f"share.{name}"] = t[f"offers_made.{name}"] / attempts
        out[f"take_up.{name}"] = t[f"offer_take_up.{name}"]
        out[f"accepted.{name}"] = float((accepted & (c["offer"] == OFFERS.index(name))).sum())
    return out


def interval(d: np.ndarray) -> str:
    """Mean and 95% t-interval of paired differences ``d``, as printed."""
    iv = t_interval(d)
    return f"{iv.mean:+,.0f} [{iv.low:+,.0f}, {iv.high:+,.0f}]"


def main() -> None:
    """Train, simulate the arms on paired seeds and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs=2, default=(1, 5))
    parser.add_argument("--out", type=Path, default=Path("runs/rl_treatments"))
    args = parser.parse_args()
    scenario = load_scenario("default")
    assert scenario.treatments is not None
    rate = scenario.treatments.npv_discount_rate_annual
    models = train_both(args.out, args.steps, args.train_seed)
    started = time.perf_counter()
    _, effects = train_with_treatments(scenario, TrainingSettings(seeds=(101, 102, 103)))
    print(f"treatment-effect model: {time.perf_counter() - started:.0f} s", flush=True)
    chooser = TreatmentChooser(effects, TreatmentSupport.from_scenario(scenario))
    plain = RLPolicy(load_logit_model(models["plain"]), fallbacks=8, policy_id="rl_plain")
    treat = RLPolicy(load_logit_model(models["treat"]), fallbacks=8, policy_id="rl_treat")
    treat.check_scenario(scenario)
    arms: dict[str, Policy] = {
        "champion": TieredChampion(scenario.champion),
        "plain": plain,
        "plain+chooser": plain.with_treatments(chooser),
        "treat": treat,
    }
    seeds = range(args.seeds[0], args.seeds[1] + 1)
    rows: dict[tuple[int, str], dict[str, float]] = {}
    started = time.perf_counter()
    for seed in seeds:
        for arm, policy in arms.items():
            sim = Simulation(scenario, seed=seed, n_accounts=args.accounts)
            rows[(seed, arm)] = row(sim.run(policy, days=args.days), rate)
            shown = {k: round(v, 4) for k, v in rows[(seed, arm)].items()}
            print(seed, arm, shown, flush=True)
    print(f"\n{args.accounts} accounts x {args.days} days, seeds {list(seeds)}, "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    for arm in ARMS:
        mean = {k: np.mean([rows[(s, arm)][k] for s in seeds]) for k in rows[(seeds[0], arm)]}
        shares = ", ".join(
            f"{o} {100 * mean[f'share.{o}']:.1f}% (take-up {100 * mean[f'take_up.{o}']:.1f}%)"
            for o in OFFERS[1:]
        )
        blocks = f"{mean['blocked']:.0f} / {mean['treatment_blocked']:.0f}"
        money = ", ".join(f"{k} {mean[k]:,.0f}" for k in PARTS)
        accepted = ", ".join(f"{o} {mean[f'accepted.{o}']:.0f}" for o in OFFERS[1:])
        print(f"{arm}: {money}; offers accepted: {accepted}")
        print(f"{arm}: portfolio_value {mean['portfolio_value']:,.0f}, contacts "
              f"{mean['contacts']:,.0f}, complaints/1000 {mean['complaints_per_1000']:.2f}, "
              f"blocks {blocks}; {shares}")  # fmt: skip

    def paired(a: str, b: str, key: str) -> np.ndarray:
        return np.array([rows[(s, a)][key] - rows[(s, b)][key] for s in seeds])

    print("\npaired differences (95% t-interval):")
    for key in ("portfolio_value", "npv_recovered", "terminal_value"):
        for a, b in (("plain", "champion"), ("plain+chooser", "champion"), ("treat", "champion"),
                     ("treat", "plain+chooser"), ("treat", "plain")):  # fmt: skip
            print(f"  {key}: {a} - {b}: {interval(paired(a, b, key))}")


if __name__ == "__main__":
    main()
