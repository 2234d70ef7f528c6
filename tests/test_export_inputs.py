"""Bad inputs: exit 2, one readable line per problem naming file/row/column/value, no file."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from collsim.compliance.testing import make_history, make_portfolio
from collsim.config import dump_yaml, load_scenario
from collsim.export.commands import export_policy, make_plan, validate_plan_files
from collsim.portfolio import day_number
from collsim.tables import write_history, write_portfolio

DATE = "2026-03-09"


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("art") / "champion"
    assert export_policy("champion", out, "default") == 0
    return out


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A valid CSV portfolio of 6 accounts, a CSV history and the default capacity."""
    import datetime as dt

    portfolio = make_portfolio(6, timezones=("America/New_York",))
    portfolio.dpd[:] = np.array([5, 20, 40, 70, 100, 0])
    day = day_number(dt.date.fromisoformat(DATE))
    history = make_history([0, 2], [day - 2, day - 1], [2, 0], outcome=[3, 0])
    paths = {
        "portfolio": tmp_path / "portfolio.csv",
        "history": tmp_path / "history.csv",
        "capacity": tmp_path / "capacity.yaml",
    }
    write_portfolio(portfolio, paths["portfolio"])
    write_history(history, portfolio, paths["history"])
    dump_yaml(load_scenario("default").capacity, paths["capacity"])
    return paths


def _edit(path: Path, row: int, column: str, value: str) -> None:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    rows[row][rows[0].index(column)] = value
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def _drop_column(path: Path, column: str) -> None:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    i = rows[0].index(column)
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([r[:i] + r[i + 1 :] for r in rows])


def _first_timed(rows: list[list[str]]) -> int:
    """Row number (1-based, header excluded) of the first timed contact of a CSV plan."""
    c = rows[0].index("channel")
    return next(i for i, r in enumerate(rows[1:], 1) if r[c] not in {"none", "letter", "legal"})


def _plan(artifact: Path, files: dict[str, Path], out: Path, date: str = DATE) -> int:
    return make_plan(artifact, **files, date=date, ruleset="us_reg_f", out=out)


def test_valid_inputs_give_a_plan(artifact: Path, files: dict[str, Path], tmp_path: Path) -> None:
    assert _plan(artifact, files, tmp_path / "out" / "plan.parquet") == 0


CASES = [
    ("missing column", lambda f: _drop_column(f["portfolio"], "balance"),
     "portfolio.csv: column balance: required column is missing"),
    ("wrongly typed cell", lambda f: _edit(f["portfolio"], 2, "dpd", "ten"),
     'portfolio.csv: row 2, column dpd, value "ten": is not a number'),
    ("duplicate id", lambda f: _edit(f["portfolio"], 3, "account_id", "A00000000"),
     'portfolio.csv: row 3, column account_id, value "A00000000": duplicate account_id'),
    ("unknown time zone", lambda f: _edit(f["portfolio"], 1, "timezone", "Mars/Olympus"),
     'portfolio.csv: row 1, column timezone, value "Mars/Olympus": is not a valid IANA'),
    ("negative balance", lambda f: _edit(f["portfolio"], 4, "balance", "-5"),
     'portfolio.csv: row 4, column balance, value "-5": must be >= 0'),
    ("unknown channel in history", lambda f: _edit(f["history"], 1, "channel", "fax"),
     'history.csv: row 1, column channel, value "fax"'),
    ("history for an unknown account", lambda f: _edit(f["history"], 2, "account_id", "Z9"),
     'history.csv: row 2, column account_id, value "Z9": is not an account in the portfolio'),
    ("capacity with unknown key", lambda f: f["capacity"].write_text(
        f["capacity"].read_text() + "overtime: 3\n"),
     "capacity.yaml: overtime: Extra inputs are not permitted"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "breaks", "line"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_the_line_and_no_file(
    name: str,
    breaks: object,
    line: str,
    artifact: Path,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    breaks(files)  # type: ignore[operator]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert _plan(artifact, files, out_dir / "plan.parquet") == 2
    err = capsys.readouterr().err.splitlines()
    assert any(line in e for e in err), err
    assert all(e.startswith("error: ") for e in err)
    assert list(out_dir.iterdir()) == []
    assert validate_plan_files(out_dir / "plan.parquet", **files, ruleset="us_reg_f") == 2


def test_date_in_wrong_format(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for bad in ("2026/03/09", "20260309", "2026-02-30"):
        assert _plan(artifact, files, tmp_path / "plan.parquet", date=bad) == 2
        assert f"--date: {bad!r} is not a" in capsys.readouterr().err
    assert not (tmp_path / "plan.parquet").exists()


def test_several_problems_are_all_reported(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(files["portfolio"], 1, "balance", "-1")
    _edit(files["portfolio"], 2, "balance", "-2")
    assert _plan(artifact, files, tmp_path / "plan.parquet", date="tomorrow") == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3, err


def test_tampered_artifact_is_refused(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    copy = tmp_path / "art"
    shutil.copytree(artifact, copy)
    (copy / "tree.json").write_text((copy / "tree.json").read_text().replace("18", "23"))
    assert _plan(copy, files, tmp_path / "plan.parquet") == 2
    assert "tree.json: checksum mismatch" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("channel", "fax", 'column channel, value "fax": is not a channel'),
        ("slot_start_local", "9:30", 'column slot_start_local, value "9:30": must be a slot'),
        ("account_id", "nobody", 'column account_id, value "nobody": is not an account'),
    ],
)
def test_validate_plan_names_bad_plan_cells(
    column: str,
    value: str,
    message: str,
    artifact: Path,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = tmp_path / "plan.csv"
    assert make_plan(artifact, **files, date=DATE, ruleset="us_reg_f", out=plan, csv=True) == 0
    with plan.open(newline="") as handle:
        rows = list(csv.reader(handle))
    target = _first_timed(rows)
    _edit(plan, target, column, value)
    capsys.readouterr()
    assert validate_plan_files(plan, **files, ruleset="us_reg_f") == 2
    assert f"plan.csv: row {target}, {message}" in capsys.readouterr().err


def test_validate_plan_lists_violations(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.csv"
    assert make_plan(artifact, **files, date=DATE, ruleset="us_reg_f", out=plan, csv=True) == 0
    with plan.open(newline="") as handle:
        rows = list(csv.reader(handle))
    target = _first_timed(rows)
    _edit(plan, target, "slot_start_local", "21:00")
    _edit(plan, target, "slot_end_local", "22:00")
    capsys.readouterr()
    assert validate_plan_files(plan, **files, ruleset="us_reg_f") == 1
    out = capsys.readouterr().out.splitlines()
    account = rows[target][rows[0].index("account_id")]
    assert any(line.startswith(f"{account}, ") for line in out), out
