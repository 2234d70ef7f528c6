"""Benchmark the compliance mask: 1M accounts x 8 channels x 14 slots, 30 days of history.

Run: ``.venv/bin/python benchmarks/bench_compliance.py [--accounts N] [--repeat K]``.
Prints the time of ``ContactWindow.from_history`` and of ``RuleSet.mask`` per rule set.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import time

import numpy as np

from collsim.compliance import ContactWindow, load_ruleset
from collsim.compliance.testing import make_portfolio, random_history
from collsim.portfolio import day_number

SLOT_HOURS = np.arange(8, 22)


def _best(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--attempts-per-account-day", type=float, default=0.3)
    args = parser.parse_args()
    rng = np.random.default_rng(20260101)
    n = args.accounts
    day = day_number(dt.date(2026, 3, 10))
    flags = {
        name: rng.random(n) < p
        for name, p in {
            "has_phone": 0.9,
            "has_mobile": 0.8,
            "has_email": 0.6,
            "has_app": 0.4,
            "has_address": 0.95,
            "consent_autodial": 0.7,
            "sms_opt_out": 0.05,
            "email_opt_out": 0.05,
            "cease_communication": 0.01,
            "dispute_open": 0.02,
            "hardship_plan": 0.05,
            "vulnerable": 0.03,
        }.items()
    }
    portfolio = make_portfolio(n, **flags)
    rows = int(n * 30 * args.attempts_per_account_day)
    history = random_history(rng, n, day - 29, day, rows)
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} "
        f"python {platform.python_version()}"
    )
    print(f"accounts {n:,}, history rows {rows:,} over 30 days, slots {SLOT_HOURS.size}")
    t_window, window = _best(lambda: ContactWindow.from_history(history, n, day), args.repeat)
    print(f"ContactWindow.from_history: {t_window:.3f} s")
    assert isinstance(window, ContactWindow)
    for name in ("us_reg_f", "cn_gbt45251", "strict_example"):
        ruleset = load_ruleset(name)
        t_mask, mask = _best(lambda rs=ruleset: rs.mask(portfolio, window, SLOT_HOURS), args.repeat)
        assert isinstance(mask, np.ndarray)
        print(
            f"{name}.mask [{n:,} x 8 x {SLOT_HOURS.size}]: {t_mask:.3f} s "
            f"(allowed {mask.mean():.3f})"
        )
    ruleset = load_ruleset("us_reg_f")
    m = 100_000
    account = rng.integers(0, n, m)
    channel = rng.integers(0, 2, m)
    hour = rng.integers(8, 22, m)
    t_first, _ = _best(
        lambda: ruleset.first_violation(portfolio, window, account, channel, hour), args.repeat
    )
    print(f"us_reg_f.first_violation [{m:,} triples]: {t_first:.3f} s")


if __name__ == "__main__":
    main()
