"""Champion vs RL policies on paired seeds: portfolio value, paired differences, violations.

Every policy runs the same scenario on the same seeds; under common random
numbers the same seed means the same borrowers and behaviour draws, so the
difference to the baseline is estimated from seed-matched pairs (paired t, 95%).

Violations are counted two ways:

* ``plan_violations`` — planned contacts outside the day's compliance mask (checked
  by :class:`AuditedPolicy` against the Snapshot before the engine sees the plan);
  zero for every mask-respecting policy;
* ``gate blocks`` — the engine's ``blocked`` ledger events: planned contacts refused
  by the compliance gate (at the day's gate or in-day, before the hour's call);
* ``redials blocked`` — the engine's ``redial_blocked`` events: the dialler's own
  same-day redials of an unanswered agent call refused in-day (e.g. the 8th call in
  seven days under ``us_reg_f.7in7``); not planned contacts.

Run: ``.venv/bin/python -m collsim.rl.compare --model runs/rl/best_model.zip``; further
learned policies with ``--rl LABEL=PATH`` / ``--hybrid LABEL=PATH`` (a ``.zip``, ``.onnx``
or ensemble ``.json``), default ones left out with ``--skip LABEL ...``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from collsim.config import Scenario, load_scenario
from collsim.plan import Plan, Policy, Snapshot

__all__ = ["AuditedPolicy", "RunRecord", "compare", "comparison_markdown", "default_policies"]


class AuditedPolicy:
    """Wraps a policy and counts the planned contacts its plans put outside the mask.

    Args:
        inner: the policy.
    """

    def __init__(self, inner: Policy) -> None:
        self.inner = inner
        self.policy_id = inner.policy_id
        self.plan_violations = 0
        self.planned = 0
        self.decide_s = 0.0

    def decide(self, snapshot: Snapshot) -> Plan:
        """Decide with the inner policy; count planned options outside ``snapshot.mask``."""
        started = time.perf_counter()
        plan = self.inner.decide(snapshot)
        self.decide_s += time.perf_counter() - started
        option = snapshot.options.encode(plan.channel, plan.slot_hour)
        rows = np.flatnonzero(option >= 0)
        allowed = snapshot.option_mask()[rows, option[rows]]
        self.plan_violations += int((~allowed).sum())
        self.planned += int(rows.size)
        return plan


@dataclass
class RunRecord:
    """One policy on one seed."""

    policy: str
    seed: int
    kpis: dict[str, float]
    plan_violations: int
    planned: int
    decide_s: float
    run_s: float
    extra: dict[str, float] = field(default_factory=dict)


def run_policy(policy: Policy, scenario: Scenario, seed: int, days: int) -> RunRecord:
    """Simulate ``policy`` for ``days`` days on ``seed``; return its KPIs and audit counts."""
    from collsim.metrics import kpis
    from collsim.sim.engine import Simulation

    audited = AuditedPolicy(policy)
    started = time.perf_counter()
    sim = Simulation(scenario, seed)
    sim.run(audited, days)
    return RunRecord(
        policy=policy.policy_id,
        seed=seed,
        kpis=kpis(sim.ledger),
        plan_violations=audited.plan_violations,
        planned=audited.planned,
        decide_s=audited.decide_s,
        run_s=time.perf_counter() - started,
    )


def default_policies(
    model: Path | None, scenario: Scenario, priority: str = "log_odds"
) -> dict[str, Callable[[], Policy]]:
    """Label → factory: champion, no contact, optimised (if present), RL (plain and with
    8 fallback options per account, serving accounts by ``priority``) and hybrid."""
    from collsim.policies.baselines import NoContact
    from collsim.policies.champion import TieredChampion
    from collsim.research.registry import make_policy

    out: dict[str, Callable[[], Policy]] = {
        "champion": lambda: TieredChampion(scenario.champion),
        "no_contact": NoContact,
    }
    try:
        make_policy("optimised", scenario)
        out["optimised"] = lambda: make_policy("optimised", scenario)
    except (ValueError, ImportError):
        optimised = _optimised(scenario)
        if optimised is not None:
            out["optimised"] = optimised
    if model is not None:
        from collsim.policies.hybrid import HybridPolicy
        from collsim.policies.rl import RLPolicy
        from collsim.rl.logits import load_logit_model

        loaded = load_logit_model(model)
        out["rl"] = lambda: RLPolicy(loaded, priority=priority)
        out["rl+fallbacks"] = lambda: RLPolicy(loaded, fallbacks=8, priority=priority)
        out["hybrid"] = lambda: HybridPolicy(loaded)
    return out


def _optimised(scenario: Scenario) -> Callable[[], Policy] | None:
    """OptimisedAllocation over the scenario's cached value model, if that code is present."""
    try:
        from collsim.policies.optimised import OptimisedAllocation
        from collsim.research.training import load_or_train

        model = load_or_train(load_scenario(scenario.name))
    except Exception as exc:  # another engineer's module, still in progress
        print(f"optimised policy skipped: {exc}")
        return None
    return lambda: OptimisedAllocation(model)


def compare(
    policies: dict[str, Callable[[], Policy]],
    scenario: Scenario,
    seeds: list[int],
    days: int,
    progress: Callable[[str], None] | None = None,
) -> list[RunRecord]:
    """Run every policy on every seed (a fresh policy object per run)."""
    records = []
    for seed in seeds:
        for label, factory in policies.items():
            record = run_policy(factory(), scenario, seed, days)
            record.policy = label
            records.append(record)
            if progress is not None:
                progress(
                    f"seed {seed} {label}: value {record.kpis['portfolio_value']:,.0f} "
                    f"({record.run_s:.1f} s)"
                )
    return records


def _total(rows: list[RunRecord], key: str) -> float:
    """Sum of a KPI over runs (0 where a run does not report it)."""
    return float(sum(r.kpis.get(key, 0.0) for r in rows))


def _fmt(x: float) -> str:
    return f"{x:,.0f}"


def comparison_markdown(
    records: list[RunRecord],
    baseline: str,
    scenario: Scenario,
    days: int,
    notes: list[str] | None = None,
) -> str:
    """The comparison table (markdown) with paired 95% CIs vs ``baseline``."""
    from collsim.evaluation.stats import paired_interval, t_interval

    labels = list(dict.fromkeys(r.policy for r in records))
    seeds = sorted({r.seed for r in records})

    def column(label: str, key: str) -> np.ndarray:
        by_seed = {r.seed: r for r in records if r.policy == label}
        return np.array([by_seed[s].kpis[key] for s in seeds])

    base = column(baseline, "portfolio_value")
    lines = [
        f"Scenario `{scenario.name}` ({scenario.ruleset}), {scenario.portfolio.n_accounts:,} "
        f"accounts × {days} days, seeds {seeds} (paired: same seed = same borrowers and "
        f"behaviour draws). Portfolio value = the objective (docs/kpis.md: discounted "
        f"cash − every cost − complaint cost + value of what is open at the horizon); net "
        f"recovery = amount recovered − every cost (staffed agent hours included); whole "
        f"portfolio, currency units. 95% intervals: Student t over seeds "
        f"(paired differences for Δ).",
        "",
        "| policy | portfolio value (mean ± 95% CI) | Δ vs "
        f"{baseline} (paired, 95% CI) | Δ % | net recovery | recovered | cost | attempts | "
        "plan violations | gate blocks | redials blocked | overflow | decide s/day |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label in labels:
        rows = [r for r in records if r.policy == label]
        value = column(label, "portfolio_value")
        iv = t_interval(value)
        diff = paired_interval(value, base)
        pct = 100.0 * diff.mean / float(np.mean(base)) if np.mean(base) else float("nan")
        delta = (
            "—" if label == baseline else f"{_fmt(diff.mean)} [{_fmt(diff.low)}, {_fmt(diff.high)}]"
        )
        lines.append(
            f"| {label} | {_fmt(iv.mean)} ± {_fmt(iv.half_width)} | {delta} | "
            f"{'—' if label == baseline else f'{pct:+.1f}%'} | "
            f"{_fmt(column(label, 'net_recovery').mean())} | "
            f"{_fmt(column(label, 'amount_recovered').mean())} | "
            f"{_fmt(column(label, 'total_cost').mean())} | "
            f"{_fmt(column(label, 'attempts').mean())} | "
            f"{sum(r.plan_violations for r in rows)} | "
            f"{_fmt(column(label, 'blocked').sum())} | "
            f"{_fmt(_total(rows, 'redials_blocked'))} | "
            f"{_fmt(column(label, 'overflow').sum())} | "
            f"{np.mean([r.decide_s for r in rows]) / days:.3f} |"
        )
    lines += [
        "",
        "Plan violations: planned contacts outside the day's compliance mask, summed over "
        "seeds. Gate blocks: planned contacts refused by the engine's compliance gate "
        "(`blocked` events), summed over seeds. Redials blocked: the dialler's same-day "
        "redials refused in-day (`redial_blocked` events; rules: "
        + ", ".join(
            sorted(
                {
                    k.split(".", 1)[1]
                    for r in records
                    for k in r.kpis
                    if k.startswith(("blocked.", "redials_blocked."))
                }
            )
            or ["none"]
        )
        + "), not plan violations. Overflow: planned contacts that did not fit agent "
        "capacity in the SimPy day.",
    ]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def _labelled(spec: str) -> tuple[str, Path]:
    label, sep, path = spec.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {spec!r}")
    return label, Path(path)


def main(argv: list[str] | None = None) -> int:
    """Command line: run the comparison and write the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        type=Path,
        help="MaskablePPO .zip, ONNX or ensemble .json: adds rl, rl+fallbacks and hybrid",
    )
    parser.add_argument(
        "--rl",
        type=_labelled,
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="adds RLPolicy(PATH, fallbacks=8, priority=PRIORITY) as LABEL (repeatable)",
    )
    parser.add_argument(
        "--priority",
        default="log_odds",
        help="RLPolicy priority of rl, rl+fallbacks, --rl (confidence, log_odds, value)",
    )
    parser.add_argument(
        "--hybrid",
        type=_labelled,
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="adds HybridPolicy(PATH) as LABEL (repeatable)",
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], help="labels of default policies not to run"
    )
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("COMPARISON.md"))
    parser.add_argument("--title", default="RL vs champion on the default scenario")
    parser.add_argument("--note", action="append", default=[])
    args = parser.parse_args(argv)
    import torch

    from collsim.policies.hybrid import HybridPolicy
    from collsim.policies.rl import RLPolicy
    from collsim.rl.logits import load_logit_model

    torch.set_num_threads(1)
    scenario = load_scenario(args.scenario).scaled_to(args.accounts)
    policies = default_policies(args.model, scenario, args.priority)
    for label in args.skip:
        if label == "champion":
            parser.error("the champion is the baseline and cannot be skipped")
        policies.pop(label, None)
    for label, path in args.rl:
        policies[label] = functools.partial(
            RLPolicy, load_logit_model(path), fallbacks=8, priority=args.priority
        )
    for label, path in args.hybrid:
        policies[label] = functools.partial(HybridPolicy, load_logit_model(path))
    started = time.perf_counter()
    records = compare(policies, scenario, args.seeds, args.days, print)
    elapsed = time.perf_counter() - started
    models = [str(args.model)] if args.model else []
    models += [f"{label} = `{path}`" for label, path in args.rl + args.hybrid]
    header = [
        f"# {args.title}",
        "",
        f"Generated by `python -m collsim.rl.compare` on {dt.date.today().isoformat()} "
        f"({elapsed:.0f} s on 2 shared cores). Models: {', '.join(models) or 'none'}.",
        "",
    ]
    text = "\n".join(header) + comparison_markdown(
        records, "champion", scenario, args.days, args.note
    )
    from collsim.io import atomic_write_text

    atomic_write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
