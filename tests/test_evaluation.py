"""Experiments: spec validation, runner (resume, Dask parity), statistics, reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from collsim.evaluation.commands import compare
from collsim.evaluation.runner import plan_cells, run_experiment
from collsim.evaluation.spec import ExperimentError, load_experiment
from collsim.evaluation.stats import (
    frontier,
    paired_differences,
    paired_interval,
    pareto_front,
    t_interval,
    welch_interval,
)

ROOT = Path(__file__).resolve().parents[1]

TINY = """\
name: tiny
scenario: default
n_accounts: 250
days: 8
seeds: 8
policies:
  - {label: champion, id: champion}
  - {label: random, id: random}
baseline: champion
"""


def write_spec(folder: Path, text: str, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """The tiny experiment run once, uninterrupted, in this process."""
    folder = tmp_path_factory.mktemp("tiny")
    experiment = load_experiment(write_spec(folder, TINY))
    run_experiment(experiment, folder / "out", workers=1, progress=False)
    return experiment, folder / "out"


# ---------------------------------------------------------------------------- spec
@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"old": "days: 8", "new": "days: 8\ncolour: red"}, "colour"),
        ({"old": "baseline: champion", "new": "baseline: nobody"}, "baseline"),
        ({"old": "seeds: 8", "new": "seeds: 0"}, "seeds"),
        ({"old": "id: random}", "new": "id: no_such_policy}"}, "policies[1] (random)"),
        (
            {
                "old": "baseline: champion",
                "new": "baseline: champion\naxes:\n  - {name: x, path: sim.nope.deep, values: [1]}",
            },
            "axes[0] (x).values[0]",
        ),
        (
            {
                "old": "baseline: champion",
                "new": "baseline: champion\naxes:\n  - {name: x, transform: squash, values: [1]}",
            },
            "axes.0",
        ),
        (
            {"old": "baseline: champion", "new": "baseline: champion\noverrides: {sim.days: -3}"},
            "overrides.sim.days",
        ),
    ],
)
def test_spec_errors_name_file_and_key(
    tmp_path: Path, patch: dict[str, str], expected: str
) -> None:
    path = write_spec(tmp_path, TINY.replace(patch["old"], patch["new"]))
    with pytest.raises(ExperimentError) as info:
        load_experiment(path)
    message = str(info.value)
    assert str(path) in message
    assert expected in message


def test_compare_bad_spec_exits_2_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = TINY.replace("baseline: champion", "baseline: nobody\nkpis: [net_recovery, made_up]")
    path = write_spec(tmp_path, text)
    assert compare(path, tmp_path / "out", None, 1) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 2
    assert all(str(path) in line for line in err)
    assert not (tmp_path / "out" / "runs.parquet").exists()


@pytest.mark.parametrize(
    "name", ["champion_vs_challengers", "capacity_what_if", "compliance_impact"]
)
def test_bundled_experiments_load(name: str) -> None:
    experiment = load_experiment(ROOT / "experiments" / f"{name}.yaml")
    cells = plan_cells(experiment)
    assert len(cells) == len(experiment.variants) * len(experiment.spec.policies) * len(
        experiment.spec.seed_list()
    )
    assert len({c.key for c in cells}) == len(cells)
    assert experiment.days <= 90 and all(v.n_accounts <= 5000 for v in experiment.variants)


def test_agents_scale_axis_scales_every_hour(tmp_path: Path) -> None:
    text = TINY.replace("n_accounts: 250", "n_accounts: 20000").replace(
        "baseline: champion",
        "baseline: champion\naxes:\n  - {name: hc, transform: agents_scale, values: [1, 2]}",
    )
    experiment = load_experiment(write_spec(tmp_path, text))
    one, two = (v.scenario.capacity.agent_pools[0].agents_by_hour for v in experiment.variants)
    assert all(two[h] == 2 * one[h] for h in one)


# ---------------------------------------------------------------------------- statistics
def test_t_interval_known_values() -> None:
    iv = t_interval(np.array([1.0, 2.0, 3.0]))
    assert iv.mean == pytest.approx(2.0)
    assert iv.half_width == pytest.approx(4.302653 / np.sqrt(3), rel=1e-5)
    assert pareto_front(
        np.array([1.0, 2.0, 3.0, 1.0]), np.array([5.0, 4.0, 6.0, 4.0])
    ).tolist() == [True, False, True, False]


def test_predictive_interval_covers_one_more_replication_and_keeps_its_width() -> None:
    """The mean's interval narrows to nothing; one more draw's interval keeps the spread."""
    rng = np.random.default_rng(0)
    values = rng.normal(0.0, 1.0, (2000, 20))
    fresh = rng.normal(0.0, 1.0, 2000)
    ivs = [t_interval(v, predictive=True) for v in values]
    covered = np.mean([iv.low <= x <= iv.high for iv, x in zip(ivs, fresh, strict=True)])
    assert 0.93 < covered < 0.97
    mean_only = np.mean(
        [t_interval(v).low <= x <= t_interval(v).high for v, x in zip(values, fresh, strict=True)]
    )
    assert mean_only < 0.5
    wide = t_interval(rng.normal(0.0, 1.0, 400), predictive=True).half_width
    assert 1.8 < wide < 2.2


def test_ci_half_width_shrinks_with_replications(tiny_run: tuple[Any, Path]) -> None:
    _, out = tiny_run
    runs = pl.read_parquet(out / "runs.parquet").filter(pl.col("policy") == "champion").sort("seed")
    values = runs["net_recovery"].to_numpy()
    widths = [t_interval(values[:k]).half_width for k in (3, 5, 8)]
    assert widths[0] > widths[1] > widths[2] > 0


def test_paired_differences_beat_unpaired_under_crn(tiny_run: tuple[Any, Path]) -> None:
    _, out = tiny_run
    runs = pl.read_parquet(out / "runs.parquet")
    a = runs.filter(pl.col("policy") == "random").sort("seed")["net_recovery"].to_numpy()
    b = runs.filter(pl.col("policy") == "champion").sort("seed")["net_recovery"].to_numpy()
    assert np.var(a - b, ddof=1) < np.var(a, ddof=1) + np.var(b, ddof=1)
    assert paired_interval(a, b).half_width < welch_interval(a, b).half_width
    diff = paired_differences(runs, "net_recovery", "champion").row(0, named=True)
    assert diff["diff"] == pytest.approx(float(np.mean(a - b)))
    assert diff["high"] - diff["low"] < diff["unpaired_high"] - diff["unpaired_low"]


# ---------------------------------------------------------------------------- runner
def test_results_are_queryable_with_polars(tiny_run: tuple[Any, Path]) -> None:
    experiment, out = tiny_run
    runs = pl.read_parquet(out / "runs.parquet")
    assert runs.height == 16 and {"experiment", "policy", "seed", "net_recovery"} <= set(
        runs.columns
    )
    daily = pl.read_parquet(out / "daily.parquet")
    assert daily.height == 16 * 8
    last = daily.filter(pl.col("day") == 8).sort("policy", "seed")
    joined = last.join(runs, on=["policy", "seed"])
    np.testing.assert_allclose(
        joined["cum_net"].to_numpy(), joined["net_recovery"].to_numpy(), rtol=1e-9
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["spec_hash"] == experiment.spec.spec_hash()
    assert len(manifest["scenario_config_hashes"]) == 1 and "versions" in manifest
    points = frontier(runs)
    assert points.height == 2 and points["pareto"].any()


def test_interrupted_run_resumes_to_identical_results(
    tmp_path: Path, tiny_run: tuple[Any, Path]
) -> None:
    experiment, reference = tiny_run
    done: list[str] = []

    def stop_after_five(result: dict[str, Any]) -> None:
        done.append(result["key"])
        if len(done) == 5:
            raise KeyboardInterrupt("test interruption")

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(experiment, out, workers=1, progress=False, on_cell_done=stop_after_five)
    assert len(list((out / "cells").glob("*.json"))) == 5
    assert not (out / "runs.parquet").exists()
    resumed: list[str] = []
    run_experiment(
        experiment, out, workers=2, progress=False, on_cell_done=lambda r: resumed.append(r["key"])
    )
    assert len(resumed) == 11 and not set(resumed) & set(done)
    for name in ("runs", "daily", "channel_mix"):
        assert_frame_equal(
            pl.read_parquet(out / f"{name}.parquet"), pl.read_parquet(reference / f"{name}.parquet")
        )


def test_dask_local_cluster_gives_identical_results(
    tmp_path: Path, tiny_run: tuple[Any, Path]
) -> None:
    pytest.importorskip("distributed")
    experiment, reference = tiny_run
    out = tmp_path / "dask"
    run_experiment(
        experiment,
        out,
        workers=2,
        scheduler="local-cluster-threads",
        progress=False,
    )
    for name in ("runs", "daily", "channel_mix"):
        assert_frame_equal(
            pl.read_parquet(out / f"{name}.parquet"), pl.read_parquet(reference / f"{name}.parquet")
        )


def test_compare_writes_report_with_headline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        TINY.replace("seeds: 8", "seeds: 2")
        .replace("n_accounts: 250", "n_accounts: 150")
        .replace(
            "baseline: champion",
            "baseline: champion\naxes:\n  - {name: sms_cost, path: channels.sms.cost_per_attempt, "
            "values: [0.008, 0.1]}",
        )
    )
    path = write_spec(tmp_path, text)
    out = tmp_path / "out"
    assert compare(path, out, None, 1) == 0
    report = (out / "report.md").read_text()
    assert "Headline: sms_cost=0.1" in report and "diff vs baseline" in report
    html = (out / "report.html").read_text()
    assert "portfolio_value [95% CI]" in report
    for png in (
        "headline.png",
        "cumulative_recovery.png",
        "frontier.png",
        "channel_mix.png",
        "blocked_by_rule.png",
    ):
        assert (out / png).stat().st_size > 1000
        assert f'src="{png}"' in html
    runs = pl.read_parquet(out / "runs.parquet")
    assert runs.schema["sms_cost"] == pl.Float64 and runs.height == 8
    assert "champion" in capsys.readouterr().out
