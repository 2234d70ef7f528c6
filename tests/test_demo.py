"""`collsim demo` at a tiny size: table order, portfolio_value first, PNGs, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from collsim.cli import app
from collsim.evaluation.demo import DEMO_KPIS, DEMO_POLICIES, DemoSize, demo_tables, verdict

TINY = [
    "--accounts", "200", "--days", "15", "--seeds", "2", "--seed", "3",
    "--train-accounts", "150", "--train-days", "30", "--workers", "1",
]  # fmt: skip
PNGS = ("portfolio_value.png", "difference_vs_champion.png", "cumulative_cash.png")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """The tiny demo twice with the same seeds (the second reuses the cached model)."""
    root = tmp_path_factory.mktemp("demo")
    env = {"COLLSIM_CACHE": str(root / "cache")}
    runner = CliRunner()
    outputs = []
    for name in ("a", "b"):
        result = runner.invoke(app, ["demo", "--out", str(root / name), *TINY], env=env)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert "training the value model on 3 exploration runs" in outputs[0]
    assert "value model: cached" in outputs[1]
    return root / "a", root / "b", outputs[0]


def test_table_lists_the_policies_in_order_with_portfolio_value_first(
    two_runs: tuple[Path, Path, str],
) -> None:
    out, _, printed = two_runs
    lines = (out / "kpis.md").read_text(encoding="utf-8").splitlines()
    header = next(line for line in lines if line.startswith("| KPI |"))
    assert header == "| KPI | no_contact | champion | optimised |"
    first_row = lines[lines.index(header) + 2]
    assert first_row.startswith("| portfolio_value (USD) |")
    assert "| KPI | no_contact − champion | optimised − champion |" in lines
    positions = [printed.index(p) for p in DEMO_POLICIES]
    assert positions == sorted(positions)
    assert printed.index("portfolio_value (USD)") < printed.index("net_recovery (USD)")
    assert "On portfolio value, optimised" in printed


def test_pngs_and_tables_are_written(two_runs: tuple[Path, Path, str]) -> None:
    out, _, _ = two_runs
    for name in (*PNGS, "channel_mix.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    runs = pl.read_parquet(out / "runs.parquet")
    assert runs["policy"].to_list() == list(DEMO_POLICIES) * 2
    assert sorted(set(runs["seed"].to_list())) == [3, 4]


def test_same_seeds_give_the_same_numbers(two_runs: tuple[Path, Path, str]) -> None:
    a, b, _ = two_runs
    runs_a, runs_b = pl.read_parquet(a / "runs.parquet"), pl.read_parquet(b / "runs.parquet")
    for kpi in DEMO_KPIS:
        np.testing.assert_array_equal(runs_a[kpi].to_numpy(), runs_b[kpi].to_numpy())
    assert (a / "kpis.md").read_text(encoding="utf-8") == (b / "kpis.md").read_text(
        encoding="utf-8"
    )


def _runs(optimised_minus_champion: list[float]) -> pl.DataFrame:
    """A runs table: champion 1,000 + seed noise, optimised = champion + the given deltas."""
    rows = []
    for seed, delta in enumerate(optimised_minus_champion):
        base = 1000.0 + 50.0 * seed
        for policy, value in (("no_contact", 100.0), ("champion", base), ("optimised", base)):
            value = value + (delta if policy == "optimised" else 0.0)
            rows.append(
                {"variant": 0, "policy": policy, "seed": seed, **dict.fromkeys(DEMO_KPIS, value)}
            )
    return pl.DataFrame(rows)


@pytest.mark.parametrize(
    ("deltas", "expected"),
    [
        ([90.0, 110.0, 100.0], "optimised beats the champion by 100 USD per run"),
        ([-90.0, -110.0, -100.0], "optimised falls short of the champion by 100 USD per run"),
        ([-100.0, 100.0, 5.0], "optimised shows no significant difference from the champion"),
    ],
)
def test_verdict_follows_the_interval(deltas: list[float], expected: str) -> None:
    size = DemoSize(accounts=10, days=5, seeds=len(deltas))
    _, diff_table, text = demo_tables(_runs(deltas), size, "USD")
    assert expected in text
    assert "no_contact falls short of the champion" in text
    assert diff_table.rows[0][0] == "portfolio_value (USD)"


def test_verdict_says_one_seed_gives_no_interval() -> None:
    from collsim.evaluation.demo import differences
    from collsim.evaluation.stats import summarise

    runs = _runs([10.0])
    summary = summarise(runs, list(DEMO_KPIS), by=("policy",))
    text = verdict(summary, differences(runs), DemoSize(seeds=1), "USD")
    assert "One seed gives no interval" in text
