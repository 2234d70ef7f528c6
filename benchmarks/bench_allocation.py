"""Benchmark of collsim.policies.allocation on realistic random instances.

Instances: N accounts × 8 channels × 13 local slots (K = 104) in 4 time zones
(groups).  agent_call options use the pool-hour resource of the centre hour their
local slot falls in (10 staffed centre hours; slots outside them use a zero-capacity
"unstaffed" resource), so the resource map differs by zone; voice_bot, sms, email,
app_push, letter, field_visit and legal each use one daily budget resource.  About
70% of options are allowed (untimed letter/legal only in slot 0); values are
mostly small, some negative.  The money budget of ``allocate_with_budget`` is 60%
of the unbudgeted optimum's spend.

Usage::

    .venv/bin/python benchmarks/bench_allocation.py            # 100k and 1M accounts
    .venv/bin/python benchmarks/bench_allocation.py --quick    # 20k accounts
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from collsim.policies.allocation import BudgetOptions, allocate, allocate_with_budget

CHANNELS = ("agent_call", "voice_bot", "sms", "email", "app_push", "letter", "field_visit", "legal")
N_SLOTS = 13
SLOT_HOURS = np.arange(8, 8 + N_SLOTS)  # local 08:00 .. 20:00
CENTRE_HOURS = np.arange(9, 19)  # staffed centre hours 09 .. 18 (10 resources)
ZONE_SHIFT = np.array([0, -1, -2, -3])  # centre hour = local hour - shift
COST = np.array([2.5, 0.3, 0.05, 0.01, 0.005, 1.2, 40.0, 200.0])  # money per attempt
LIFT = np.array([8.0, 1.0, 0.2, 0.05, 0.04, 3.0, 100.0, 420.0])  # relative effect
BUDGET_SHARE = np.array([0.0, 0.05, 0.2, 0.3, 0.3, 0.02, 0.0005, 0.0002])  # units per account


@dataclass(frozen=True)
class Instance:
    """One benchmark instance."""

    value: np.ndarray
    mask: np.ndarray
    resource_of: np.ndarray
    group: np.ndarray
    capacity: np.ndarray
    cost: np.ndarray


def make_instance(n: int, seed: int = 0, chunk: int = 1 << 16) -> Instance:
    """Build a random instance with ``n`` accounts (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n_ch, k = len(CHANNELS), len(CHANNELS) * N_SLOTS
    channel = np.repeat(np.arange(n_ch), N_SLOTS)
    slot = np.tile(np.arange(N_SLOTS), n_ch)
    untimed = np.isin(channel, [5, 7])
    valid = ~untimed | (slot == 0)

    # Resources: 0 = unstaffed, 1..10 = centre hours, then one budget per other channel.
    n_hours = CENTRE_HOURS.size
    budget_res = {c: 1 + n_hours + i for i, c in enumerate(range(1, n_ch))}
    resource_of = np.empty((ZONE_SHIFT.size, k), dtype=np.int32)
    for z, shift in enumerate(ZONE_SHIFT):
        centre = SLOT_HOURS[slot] - shift
        hour_res = np.where(
            (centre >= CENTRE_HOURS[0]) & (centre <= CENTRE_HOURS[-1]),
            1 + centre - CENTRE_HOURS[0],
            0,
        )
        resource_of[z] = np.where(
            channel == 0, hour_res, np.array([budget_res.get(int(c), -1) for c in channel])
        )
    capacity = np.zeros(1 + n_hours + n_ch - 1, dtype=np.int64)
    capacity[1 : 1 + n_hours] = int(0.004 * n)  # agent attempts per centre hour
    for c, r in budget_res.items():
        capacity[r] = int(BUDGET_SHARE[c] * n)

    # Values: expected recovery × channel lift × hour profile − cost, plus noise.
    group = rng.integers(0, ZONE_SHIFT.size, n)
    value = np.empty((n, k))
    mask = np.empty((n, k), dtype=bool)
    for lo in range(0, n, chunk):
        m = min(chunk, n - lo)
        base = rng.lognormal(mean=1.0, sigma=1.0, size=m) * rng.uniform(0.2, 1.0, m)
        peak = rng.uniform(9, 19, m)
        prof = np.exp(-0.5 * ((SLOT_HOURS[None, :] - peak[:, None]) / 3.0) ** 2)
        v = base[:, None, None] * LIFT[None, :, None] * (0.3 + 0.7 * prof[:, None, :]) * 0.5
        v = v.reshape(m, k) - COST[channel][None, :] + rng.normal(0, 0.02, (m, k))
        value[lo : lo + m] = v
        mask[lo : lo + m] = (rng.random((m, k)) < 0.7 * k / valid.sum()) & valid[None, :]
    return Instance(value, mask, resource_of, group, capacity, COST[channel])


def run(n: int, seed: int = 0) -> dict[str, float]:
    """Time ``allocate`` and ``allocate_with_budget`` on one instance."""
    t0 = time.perf_counter()
    inst = make_instance(n, seed)
    t_make = time.perf_counter() - t0

    t0 = time.perf_counter()
    choice = allocate(inst.value, inst.mask, inst.resource_of, inst.capacity, group=inst.group)
    t_alloc = time.perf_counter() - t0
    chosen = choice >= 0
    spend = float(inst.cost[choice[chosen]].sum())
    objective = float(inst.value[np.flatnonzero(chosen), choice[chosen]].sum())

    budget = 0.6 * spend
    t0 = time.perf_counter()
    res = allocate_with_budget(
        inst.value,
        inst.mask,
        inst.resource_of,
        inst.capacity,
        inst.cost,
        BudgetOptions(budget, group=inst.group, exact_bound=False),
    )
    t_budget = time.perf_counter() - t0
    out = {
        "n": n,
        "mask_share": float(inst.mask.mean()),
        "negative_share": float((inst.value[inst.mask] < 0).mean()),
        "make_s": t_make,
        "allocate_s": t_alloc,
        "allocate_objective": objective,
        "contacted": int(chosen.sum()),
        "budget_s": t_budget,
        "budget_objective": res.objective,
        "budget_bound": res.lp_bound,
        "budget_gap": res.gap,
        "budget_spend_share": res.spend / budget,
        "iterations": res.iterations,
    }
    return out


def main() -> None:
    """Run the benchmark and print one line per size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small instance (20k accounts)")
    parser.add_argument("--sizes", type=int, nargs="*", default=None)
    args = parser.parse_args()
    sizes = args.sizes or ([20_000] if args.quick else [100_000, 1_000_000])
    for n in sizes:
        r = run(n)
        print(
            f"N={n:>9,d} K=104 R=18 G=4 mask={r['mask_share']:.2f} neg={r['negative_share']:.2f} | "
            f"allocate {r['allocate_s']:.2f} s ({r['contacted']:,d} contacted) | "
            f"allocate_with_budget {r['budget_s']:.2f} s, {r['iterations']} flows, "
            f"gap {100 * r['budget_gap']:.4f}% (Lagrangian bound), "
            f"budget used {100 * r['budget_spend_share']:.2f}% | make {r['make_s']:.1f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
