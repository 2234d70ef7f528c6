"""`collsim evaluate-offline`: off-policy evaluation of an artifact from lender log files."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from collsim.cli import app
from collsim.config import load_scenario
from collsim.export.commands import export_policy
from tests.offline_logs import champion, champion_with_holdout, simulate_logs

runner = CliRunner()
ACCOUNTS, DAYS, HORIZON = 2500, 18, 7


@dataclass(frozen=True)
class Setup:
    """Logs of a deterministic champion, of a champion with a holdout, and two artifacts."""

    root: Path
    champion_logs: Path
    holdout_logs: Path
    capacity: Path
    champion: Path
    no_contact: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    root = tmp_path_factory.mktemp("offline")
    scenario = load_scenario("default")
    capacity = simulate_logs(root / "champion_logs", champion(scenario), accounts=ACCOUNTS,
                             days=DAYS)  # fmt: skip
    simulate_logs(root / "holdout_logs", champion_with_holdout(scenario, 0.3), accounts=ACCOUNTS,
                  days=DAYS, seed=1)  # fmt: skip
    for policy in ("champion", "no_contact"):
        assert export_policy(policy, root / policy, "default") == 0
    return Setup(root, root / "champion_logs", root / "holdout_logs", capacity,
                 root / "champion", root / "no_contact")  # fmt: skip


def evaluate(setup: Setup, logs: Path, policy: Path, out: Path, *extra: str) -> tuple[int, str]:
    args = ["evaluate-offline", "--logs", str(logs), "--policy", str(policy), "--out", str(out),
            "--capacity", str(setup.capacity), "--horizon-days", str(HORIZON),
            "--bootstrap", "40", *extra]  # fmt: skip
    result = runner.invoke(app, args)
    return result.exit_code, result.output


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_the_logging_policy_itself_has_weights_one_and_the_logged_value(setup: Setup) -> None:
    out = setup.root / "self"
    code, output = evaluate(setup, setup.champion_logs, setup.champion, out)
    assert code == 0, output
    r = report(out)
    d = r["diagnostics"]
    assert d["max_weight"] <= 1.05  # propensity 1 everywhere, none left alone with μ ≈ 1
    assert d["agreement"] > 0.95 and d["mean_weight"] > 0.95
    assert d["ess"] > 0.9 * d["rows"]
    for outcome in ("portfolio_value", "cure_rate", "complaints"):
        logged = r["estimates"][outcome]["logged"]
        width = logged["high"] - logged["low"]
        for name in ("snipw", "dr"):
            estimate = r["estimates"][outcome][name]["value"]
            assert abs(estimate - logged["value"]) < 0.25 * width + 1e-9, (outcome, name)
    table = pq.read_table(out / "estimates.parquet")
    assert set(table.column("estimator").to_pylist()) == {"logged", "ipw", "snipw", "dr"}
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary file


def test_no_contact_is_estimated_worse_than_the_champion(setup: Setup) -> None:
    values = {}
    for name, artifact in (("champion", setup.champion), ("no_contact", setup.no_contact)):
        out = setup.root / f"holdout_{name}"
        code, output = evaluate(setup, setup.holdout_logs, artifact, out)
        assert code == 0, output
        values[name] = report(out)["estimates"]
    for estimator in ("snipw", "dr"):
        worse = values["no_contact"]["portfolio_value"][estimator]["value"]
        assert worse < values["champion"]["portfolio_value"][estimator]["value"]
        assert worse < values["champion"]["portfolio_value"]["logged"]["value"]
        cure = values["no_contact"]["cure_rate"][estimator]["value"]
        assert cure < values["champion"]["cure_rate"][estimator]["value"]


def test_thin_support_exits_2_and_says_why(setup: Setup) -> None:
    out = setup.root / "thin"
    code, output = evaluate(setup, setup.champion_logs, setup.no_contact, out)
    assert code == 2
    assert "overlap" in output and "--min-overlap" in output
    assert report(out)["verdict"] == "thin_support"
    code, output = evaluate(setup, setup.champion_logs, setup.champion, setup.root / "ess",
                            "--min-ess", "1e9")  # fmt: skip
    assert code == 2 and "effective sample size" in output


def test_end_limits_the_decision_days_and_the_outcomes(setup: Setup) -> None:
    out = setup.root / "window"
    start = load_scenario("default").sim.start_date
    end = start + dt.timedelta(days=11)
    code, output = evaluate(setup, setup.champion_logs, setup.champion, out,
                            "--start", str(start), "--end", str(end))  # fmt: skip
    assert code == 0, output
    r = report(out)
    assert r["window"] == {"start": str(start), "end": str(end)}
    assert r["decision_days"]["count"] == 12 - HORIZON + 1
    assert r["decision_days"]["last"] == str(end - dt.timedelta(days=HORIZON - 1))


# --------------------------------------------------------------------------- bad logs
def broken_logs(setup: Setup, name: str, row: int, column: str, value: object) -> Path:
    """A copy of the holdout logs with one contacts cell replaced (0-based ``row``)."""
    folder = setup.root / f"bad_{name}"
    shutil.copytree(setup.holdout_logs, folder)
    table = pq.read_table(folder / "contacts.parquet")
    cells = table.column(column).to_pylist()
    cells[row] = value
    kind = pa.string() if isinstance(value, str) else table.schema.field(column).type
    index = table.schema.get_field_index(column)
    table = table.set_column(index, column, pa.array(cells, type=kind))
    pq.write_table(table, folder / "contacts.parquet")
    return folder


def contacted_row(setup: Setup) -> int:
    """A contact row (0-based) of the holdout logs that has a propensity."""
    table = pq.read_table(setup.holdout_logs / "contacts.parquet")
    propensity = np.asarray(table.column("propensity").to_numpy(zero_copy_only=False))
    return int(np.flatnonzero(~np.isnan(propensity))[7])


@pytest.mark.parametrize(
    ("name", "column", "value", "message"),
    [
        ("missing_propensity", "propensity", None, "missing on a contact of a collsim plan"),
        ("zero_propensity", "propensity", 0.0, "must be in (0, 1]"),
        ("holdout_contacted", "holdout", True, "held-out (control) account was contacted"),
        ("unknown_outcome", "outcome", "hung_up", "outcome"),
    ],
)
def test_bad_logs_give_one_error_naming_the_cell_and_write_nothing(
    setup: Setup, name: str, column: str, value: object, message: str
) -> None:
    row = contacted_row(setup)
    folder = broken_logs(setup, name, row, column, value)
    out = setup.root / f"out_{name}"
    code, output = evaluate(setup, folder, setup.champion, out)
    assert code == 2
    errors = [line for line in output.splitlines() if line.startswith("error")]
    assert len(errors) == 1, output
    line = " ".join(output.split())
    assert "contacts.parquet" in line and f"row {row + 1}" in line and f"column {column}" in line
    assert message in line
    shown = {None: '""', True: '"true"', 0.0: '"0.0"'}.get(value, f'"{value}"')  # type: ignore[call-overload]
    assert f"value {shown}" in line or value == 0.0
    assert not out.exists()


def test_a_contact_from_no_collsim_plan_is_refused(setup: Setup) -> None:
    row = contacted_row(setup)
    folder = broken_logs(setup, "no_plan", row, "propensity", None)
    table = pq.read_table(folder / "contacts.parquet")
    holdout = table.column("holdout").to_pylist()
    holdout[row] = None
    table = table.set_column(table.schema.get_field_index("holdout"), "holdout",
                             pa.array(holdout, type=pa.bool_()))  # fmt: skip
    pq.write_table(table, folder / "contacts.parquet")
    code, output = evaluate(setup, folder, setup.champion, setup.root / "out_no_plan")
    assert code == 2
    assert "from no collsim plan" in " ".join(output.split())
    assert not (setup.root / "out_no_plan").exists()
