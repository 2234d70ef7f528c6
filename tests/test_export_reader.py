"""read_plan refusals, write_plan refusing violations, and production-only imports."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collsim.capacity import build_resources
from collsim.compliance import ContactWindow, load_ruleset
from collsim.config import load_scenario
from collsim.export import PlanError, read_plan
from collsim.export.commands import export_policy
from collsim.export.planfile import PlanDay, PlanWriteOptions, write_plan
from collsim.export.reader import manifest_path, sha256_of
from collsim.export.testing import tiny_rl_onnx
from collsim.features import FEATURE_NAMES
from collsim.history import History
from collsim.plan import OptionSpace, Plan
from collsim.portfolio import day_number, generate
from collsim.tables import write_history, write_portfolio
from collsim.vocab import N_CHANNELS, Channel

DATE = dt.date(2026, 3, 9)
OPTIONS = OptionSpace(np.arange(8, 21))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A generated portfolio (no simulation), an empty history and the default capacity."""
    from collsim.config import dump_yaml

    folder = tmp_path_factory.mktemp("inputs")
    scenario = load_scenario("default").scaled_to(300)
    portfolio, _ = generate(scenario, seed=4)
    write_portfolio(portfolio, folder / "portfolio.parquet")
    write_history(History.empty(), portfolio, folder / "history.parquet")
    dump_yaml(scenario.capacity, folder / "capacity.yaml")
    return {
        "portfolio": folder / "portfolio.parquet",
        "history": folder / "history.parquet",
        "capacity": folder / "capacity.yaml",
    }


def _small_plan(tmp_path: Path, channel: Channel = Channel.EMAIL, **flags: bool) -> Path:
    from collsim.compliance.testing import make_portfolio

    portfolio = make_portfolio(3, **flags)  # type: ignore[arg-type]
    scenario = load_scenario("default")
    day = day_number(DATE)
    resources = build_resources(
        scenario.capacity, OPTIONS, portfolio.timezones, day, scenario.channels
    )
    option = np.array([int(channel) * OPTIONS.n_slots + 4, -1, -1])  # 12:00
    plan = Plan.from_options(option, OPTIONS, "p", ["r"], np.zeros(3, np.int16))
    out = tmp_path / "plan.parquet"
    (tmp_path / "in.txt").write_text("x")
    write_plan(
        plan,
        PlanDay(portfolio, OPTIONS, resources, DATE, ContactWindow.empty(3, day)),
        load_ruleset("us_reg_f"),
        out,
        PlanWriteOptions(policy_id="p", inputs={"portfolio": tmp_path / "in.txt"}),
    )
    return out


def test_read_plan_accepts_a_written_plan(tmp_path: Path) -> None:
    table = read_plan(_small_plan(tmp_path))
    assert table.num_rows == 3 and table.column("channel").to_pylist()[0] == "email"


def test_read_plan_refuses_missing_manifest(tmp_path: Path) -> None:
    out = _small_plan(tmp_path)
    manifest_path(out).unlink()
    with pytest.raises(PlanError, match="manifest plan.parquet.manifest.json is missing"):
        read_plan(out)


def test_read_plan_refuses_tampered_bytes(tmp_path: Path) -> None:
    out = _small_plan(tmp_path)
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x01
    out.write_bytes(bytes(data))
    with pytest.raises(PlanError, match="checksum mismatch"):
        read_plan(out)


def _rewrite(out: Path, table: pa.Table) -> None:
    pq.write_table(table, out)
    manifest = json.loads(manifest_path(out).read_text())
    manifest["sha256"]["plan"] = sha256_of(out)
    manifest_path(out).write_text(json.dumps(manifest))


def test_read_plan_refuses_schema_mismatch(tmp_path: Path) -> None:
    out = _small_plan(tmp_path)
    table = pq.read_table(out)
    i = table.schema.get_field_index("priority")
    _rewrite(out, table.set_column(i, "priority", table.column(i).cast(pa.int64())))
    with pytest.raises(PlanError, match="column priority has type int64, expected int32"):
        read_plan(out)
    _rewrite(out, table.drop_columns(["memo"]))
    with pytest.raises(PlanError, match="schema mismatch: missing memo"):
        read_plan(out)


def test_read_plan_refuses_other_schema_version(tmp_path: Path) -> None:
    out = _small_plan(tmp_path)
    manifest = json.loads(manifest_path(out).read_text())
    manifest["schema_version"] = 1
    manifest_path(out).write_text(json.dumps(manifest))
    with pytest.raises(PlanError, match="schema_version 1 is not supported"):
        read_plan(out)


def test_plan_with_violation_is_not_written(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"A00000000, us_reg_f.cease"):
        _small_plan(tmp_path, cease_communication=True)
    with pytest.raises(PlanError, match=r"A00000000, us_reg_f.opt_out"):
        _small_plan(tmp_path, Channel.SMS, sms_opt_out=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


BLOCKER = """
import sys
BLOCKED = {blocked!r}
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError("blocked in this test: " + name)
        return None
sys.meta_path.insert(0, Blocker())
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_reader_needs_only_pyarrow(tmp_path: Path) -> None:
    out = _small_plan(tmp_path)
    blocked = ["simpy", "torch", "stable_baselines3", "sb3_contrib", "gymnasium", "ortools",
               "onnxruntime", "pydantic", "yaml", "sklearn", "scipy"]  # fmt: skip
    code = BLOCKER.format(blocked=blocked) + textwrap.dedent(f"""
        from collsim.export import read_plan
        import collsim.export.reader
        table = read_plan({str(out)!r})
        loaded = sorted(m for m in sys.modules if m.startswith("collsim"))
        assert loaded == ["collsim", "collsim.export", "collsim.export.reader"], loaded
        print(table.num_rows)
    """)
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"


def test_artifact_and_plan_run_without_research_stack(
    tmp_path: Path, inputs: dict[str, Path]
) -> None:
    (tmp_path / "rl.onnx").write_bytes(tiny_rl_onnx(len(FEATURE_NAMES), 1 + N_CHANNELS * 13, 1))
    assert export_policy("champion", tmp_path / "champion", "default") == 0
    assert export_policy(f"rl_onnx:{tmp_path / 'rl.onnx'}", tmp_path / "rl", "default") == 0
    blocked = ["torch", "stable_baselines3", "sb3_contrib", "simpy", "gymnasium", "sklearn", "onnx",
               "scipy"]  # fmt: skip
    files = {k: str(v) for k, v in inputs.items()}
    code = BLOCKER.format(blocked=blocked) + textwrap.dedent(f"""
        from collsim.export import load_artifact, make_plan, validate_plan_files, read_plan
        files = {files!r}
        for kind in ("champion", "rl"):
            policy = load_artifact({str(tmp_path)!r} + "/" + kind)
            out = {str(tmp_path)!r} + "/" + kind + ".parquet"
            assert make_plan({str(tmp_path)!r} + "/" + kind, **files, date="2026-03-09",
                             ruleset="us_reg_f", out=out) == 0
            assert validate_plan_files(out, **files, ruleset="us_reg_f") == 0
            assert read_plan(out).num_rows == 300
        print("ok")
    """)
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_failed_write_keeps_the_previous_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import collsim.export.planfile as planfile

    real = planfile.sha256_of

    def broken(path: Path) -> str:
        if "/.tmp-" in str(path):  # the new plan, once written in its generation folder
            assert Path(path).stat().st_size > 0
            raise OSError("disk full")
        return real(path)

    out = _small_plan(tmp_path)  # a previous consistent pair
    before = read_plan(out)
    monkeypatch.setattr(planfile, "sha256_of", broken)
    with pytest.raises(OSError, match="disk full"):
        _small_plan(tmp_path)
    assert read_plan(out).equals(before)
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]
