"""Time `collsim fit` on a logs folder: reading and validating, event tables, likelihood.

    .venv/bin/collsim simulate --policy champion --accounts 1000000 --days 90 --seed 7 \
        --out runs/big --logs runs/big/logs
    .venv/bin/python benchmarks/bench_fit.py runs/big/logs --start 2026-01-05
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import time

from collsim.config import load_scenario
from collsim.logs import LogWindow, load_logs
from collsim.research.fit import FitOptions, fit_logs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder")
    parser.add_argument("--start", required=True)
    parser.add_argument("--end", default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    end = dt.date.fromisoformat(args.end) if args.end else None
    logs = load_logs(args.folder, LogWindow(dt.date.fromisoformat(args.start), end))
    read_s = time.perf_counter() - started
    print(
        f"read and validated {logs.accounts.n:,} accounts, {logs.contacts.m:,} contacts, "
        f"{logs.payments.m:,} payments in {read_s:.1f} s",
        flush=True,
    )

    def step(message: str) -> None:
        print(f"  {time.perf_counter() - started:7.1f} s  {message}", flush=True)

    fitted = fit_logs(logs, load_scenario("default"), FitOptions(), progress=step)
    total_s = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    assert fitted.fit is not None
    print(
        f"total {total_s:.1f} s (read {read_s:.1f} s, fit {total_s - read_s:.1f} s), "
        f"{len(fitted.fit.fitted)} numbers fitted, peak memory {peak_gb:.1f} GB"
    )


if __name__ == "__main__":
    main()
