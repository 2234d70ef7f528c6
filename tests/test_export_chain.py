"""The generate → export → plan → validate-plan chain, plan contents, DST and holdout."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from collsim.compliance import validate_plan
from collsim.export import read_plan
from collsim.export.artifact import load_artifact
from collsim.export.commands import (
    Distillation,
    _Problems,
    export_policy,
    load_inputs,
    make_plan,
    plan_for_day,
    validate_plan_files,
)
from collsim.export.planfile import PlanDay, plan_table
from collsim.export.reader import PLAN_SCHEMA
from collsim.export.testing import tiny_rl_onnx, tiny_value_onnx
from collsim.features import FEATURE_NAMES
from collsim.plan import OptionSpace, Plan
from collsim.vocab import N_CHANNELS

COLLSIM = Path(sys.executable).with_name("collsim")
DATE = "2026-03-09"
HOURS = 13  # default scenario operating hours 8..20


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``collsim generate`` (the real command) of 400 accounts as of DATE."""
    out = tmp_path_factory.mktemp("generated")
    args = [str(COLLSIM), "generate", "--accounts", "400", "--seed", "2", "--date", DATE]
    subprocess.run([*args, "--out", str(out)], check=True, capture_output=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One artifact of each kind, exported through export_policy."""
    root = tmp_path_factory.mktemp("artifacts")
    (root / "rl.onnx").write_bytes(tiny_rl_onnx(len(FEATURE_NAMES), 1 + N_CHANNELS * HOURS, 3))
    (root / "value.onnx").write_bytes(tiny_value_onnx(len(FEATURE_NAMES), N_CHANNELS * HOURS, 3))
    specs = {
        "champion": "champion",
        "rl_onnx": f"rl_onnx:{root / 'rl.onnx'}",
        "value_model": f"value_model:{root / 'value.onnx'}",
    }
    for kind, spec in specs.items():
        assert export_policy(spec, root / kind, "default") == 0
    return {kind: root / kind for kind in specs}


def _inputs(folder: Path) -> dict[str, Path]:
    return {
        "portfolio": folder / "portfolio.parquet",
        "history": folder / "history.parquet",
        "capacity": folder / "capacity.yaml",
    }


@pytest.mark.parametrize("kind", ["champion", "rl_onnx", "value_model"])
def test_chain_has_no_violation_and_respects_capacity(
    kind: str, generated: Path, artifacts: dict[str, Path], tmp_path: Path
) -> None:
    files = _inputs(generated)
    out = tmp_path / "plan.parquet"
    code = make_plan(artifacts[kind], **files, date=DATE, ruleset="us_reg_f", out=out)
    assert code == 0
    table = read_plan(out)
    assert table.schema.equals(PLAN_SCHEMA)
    manifest = json.loads((tmp_path / "plan.parquet.manifest.json").read_text())
    assert manifest["violations"] == 0 and manifest["rows"] == table.num_rows
    assert manifest["artifact_kind"] == kind
    assert set(manifest["sha256"]) == {"artifact", "portfolio", "history", "capacity", "plan"}
    contacts = table.num_rows - manifest["counts_by_channel"]["none"]
    assert contacts > 0
    for name, usage in manifest["capacity"]["resources"].items():
        assert usage["used"] <= usage["available"], name
    assert validate_plan_files(out, **files, ruleset="us_reg_f") == 0


def test_chain_order_types_and_columns(
    generated: Path, artifacts: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "plan.parquet"
    assert (
        make_plan(
            artifacts["champion"], **_inputs(generated), date=DATE, ruleset="us_reg_f", out=out
        )
        == 0
    )
    table = read_plan(out)
    portfolio_ids = pq.read_table(generated / "portfolio.parquet", columns=["account_id"])
    assert table.column("account_id").equals(portfolio_ids.column("account_id"))
    rows = table.to_pylist()
    assert {r["plan_date"] for r in rows} == {dt.date(2026, 3, 9)}
    for r in rows:
        untimed = r["channel"] in {"none", "letter", "legal"}
        assert (r["slot_start_local"] == "") == untimed
        assert (r["window_start_utc"] is None) == untimed
        assert (r["agent_pool"] is not None) == (r["channel"] == "agent_call")
        assert 0 < r["propensity"] <= 1
        assert (r["priority"] >= 1) == (r["channel"] != "none")
        assert r["memo"] and r["reason"] and r["policy_id"].startswith("champion:")
        if not untimed:
            assert int(r["slot_end_local"][:2]) == int(r["slot_start_local"][:2]) + 1
            assert r["window_end_utc"] - r["window_start_utc"] == dt.timedelta(hours=1)
    # priority is 1..n within each agent pool-hour
    calls = [r for r in rows if r["channel"] == "agent_call"]
    by_slot: dict[tuple[str, dt.datetime], list[int]] = {}
    for r in calls:
        by_slot.setdefault((r["agent_pool"], r["window_start_utc"]), []).append(r["priority"])
    for ranks in by_slot.values():
        assert sorted(ranks) == list(range(1, len(ranks) + 1))


def test_csv_plan_round_trips(generated: Path, artifacts: dict[str, Path], tmp_path: Path) -> None:
    files = _inputs(generated)
    parquet, csv = tmp_path / "a.parquet", tmp_path / "b.csv"
    assert make_plan(artifacts["rl_onnx"], **files, date=DATE, ruleset="us_reg_f", out=parquet) == 0
    assert (
        make_plan(artifacts["rl_onnx"], **files, date=DATE, ruleset="us_reg_f", out=csv, csv=True)
        == 0
    )
    assert read_plan(csv).equals(read_plan(parquet))
    assert validate_plan_files(csv, **files, ruleset="us_reg_f") == 0


def test_holdout_marks_controls_with_propensities(
    generated: Path, artifacts: dict[str, Path], tmp_path: Path
) -> None:
    files = _inputs(generated)
    base, held = tmp_path / "base.parquet", tmp_path / "held.parquet"
    champion = artifacts["champion"]
    assert make_plan(champion, **files, date=DATE, ruleset="us_reg_f", out=base) == 0
    args = {"date": DATE, "ruleset": "us_reg_f", "holdout_share": 0.3, "seed": 5}
    assert make_plan(champion, **files, **args, out=held) == 0
    a, b = read_plan(base).to_pylist(), read_plan(held).to_pylist()
    contacted = [i for i, r in enumerate(a) if r["channel"] != "none"]
    holdout = [i for i in contacted if b[i]["holdout"]]
    assert 0 < len(holdout) < len(contacted)
    for i in holdout:
        assert b[i]["channel"] == "none" and b[i]["propensity"] == pytest.approx(0.3)
        assert b[i]["reason"].startswith("holdout")
    for i in set(contacted) - set(holdout):
        assert b[i]["channel"] == a[i]["channel"] and b[i]["propensity"] == pytest.approx(0.7)
    assert all(b[i]["propensity"] == 1.0 for i in range(len(a)) if i not in contacted)
    again = tmp_path / "again.parquet"
    assert make_plan(champion, **files, **args, out=again) == 0
    assert read_plan(again).column("holdout").equals(read_plan(held).column("holdout"))


def test_dst_slot_nine_maps_to_utc() -> None:
    from collsim.capacity import build_resources
    from collsim.compliance.testing import make_portfolio
    from collsim.config import load_scenario

    scenario = load_scenario("default")
    portfolio = make_portfolio(1, timezones=("America/New_York",))
    options = OptionSpace(np.arange(8, 21))
    expected = {dt.date(2026, 3, 8): 13, dt.date(2026, 3, 7): 14, dt.date(2026, 11, 1): 14}
    for date, utc_hour in expected.items():
        day = (date - dt.date(1970, 1, 1)).days
        resources = build_resources(
            scenario.capacity, options, portfolio.timezones, day, scenario.channels
        )
        plan = Plan.from_options(np.array([1]), options, "t", ["x"], np.zeros(1, np.int16))  # 09:00
        table = plan_table(plan, PlanDay(portfolio, options, resources, date), "t")
        start = table.column("window_start_utc")[0].as_py()
        assert table.column("slot_start_local")[0].as_py() == "09:00"
        assert start == dt.datetime(date.year, date.month, date.day, utc_hour, tzinfo=dt.UTC)


def test_artifact_loads_by_kind(artifacts: dict[str, Path]) -> None:
    for kind, path in artifacts.items():
        policy = load_artifact(path)
        assert policy.kind == kind and policy.policy_id.startswith(f"{kind}:")
        assert list(policy.options.slot_hours) == list(range(8, 21))
        manifest = json.loads((path / "manifest.json").read_text())
        if kind != "champion":
            assert manifest["feature_names"] == list(FEATURE_NAMES)
        else:
            assert set(manifest["files"]) == {"tree.json", "tree.yaml"}


def test_distilled_tree_is_exported_and_runs(tmp_path: Path, generated: Path) -> None:
    from collsim.research.commands import export_policy as export_researched

    out = tmp_path / "art"
    code = export_researched(
        "champion", out, "default", distill=Distillation(days=4, max_depth=3, accounts=300)
    )
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert "distilled_tree.yaml" in manifest["files"]
    assert 0.5 <= manifest["distilled"]["fidelity"] <= 1.0
    distilled = load_artifact(out, distilled=True)
    assert distilled.policy_id.endswith(":distilled")
    problems = _Problems()
    files = _inputs(generated)
    inputs = load_inputs(**files, ruleset="us_reg_f", date=DATE, problems=problems)
    assert inputs is not None
    day = plan_for_day(distilled, inputs, 0.0, 0)
    assert day.plan.contacted().any()
    assert (
        validate_plan(
            day.plan, inputs.portfolio, day.window, inputs.ruleset, distilled.options, day.resources
        )
        == []
    )
