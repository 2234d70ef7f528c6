"""Benchmark: the daily plan of 1M accounts with the champion artifact, end to end.

Builds a synthetic portfolio with :func:`collsim.portfolio.generate` (no simulation),
a random contact history of the 7 days before the plan date, and the default
scenario's capacity scaled to the portfolio; writes them as Parquet/YAML; exports
the champion artifact; then times :func:`collsim.export.commands.make_plan` (load
files, snapshot and mask, decide, validate, write plan and manifest) and
``read_plan``.  Target: ≤ 60 s for 1M accounts.

    .venv/bin/python benchmarks/bench_plan.py --accounts 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from collsim.compliance.testing import random_history
from collsim.config import dump_yaml, load_scenario
from collsim.export import read_plan
from collsim.export.commands import export_policy, make_plan
from collsim.portfolio import day_number, generate
from collsim.tables import write_history, write_portfolio

DATE = dt.date(2026, 3, 9)


def build_inputs(folder: Path, n: int, history_rows: int, seed: int) -> dict[str, Path]:
    """Write portfolio.parquet, history.parquet and capacity.yaml for ``n`` accounts."""
    scenario = load_scenario("default").scaled_to(n)
    portfolio, _ = generate(scenario, seed=seed)
    day = day_number(DATE)
    rng = np.random.default_rng(seed)
    history = random_history(rng, n, day - 7, day - 1, history_rows)
    order = np.lexsort((history.local_day, history.account))
    for name in ("account", "local_day", "local_hour", "channel", "outcome", "conversation"):
        setattr(history, name, getattr(history, name)[order])
    files = {
        "portfolio": folder / "portfolio.parquet",
        "history": folder / "history.parquet",
        "capacity": folder / "capacity.yaml",
    }
    write_portfolio(portfolio, files["portfolio"])
    write_history(history, portfolio, files["history"])
    dump_yaml(scenario.capacity, files["capacity"])
    return files


def main() -> None:
    """Run the benchmark and print a JSON line of figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--history-rows", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        t0 = time.perf_counter()
        files = build_inputs(folder, args.accounts, args.history_rows, args.seed)
        assert export_policy("champion", folder / "champion", "default") == 0
        prepare_s = time.perf_counter() - t0
        out = folder / "plan.parquet"
        t0 = time.perf_counter()
        code = make_plan(
            folder / "champion", **files, date=DATE.isoformat(), ruleset="us_reg_f", out=out,
            holdout_share=0.05, seed=args.seed,
        )  # fmt: skip
        plan_s = time.perf_counter() - t0
        assert code == 0, code
        t0 = time.perf_counter()
        table = read_plan(out)
        read_s = time.perf_counter() - t0
        manifest = json.loads((folder / "plan.parquet.manifest.json").read_text())
        figures = {
            "accounts": args.accounts,
            "history_rows": args.history_rows,
            "prepare_s": round(prepare_s, 1),
            "make_plan_s": round(plan_s, 2),
            "read_plan_s": round(read_s, 2),
            "plan_mb": round(out.stat().st_size / 1e6, 1),
            "portfolio_mb": round(files["portfolio"].stat().st_size / 1e6, 1),
            "contacts": table.num_rows - manifest["counts_by_channel"]["none"],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
