"""`collsim evaluate-offline`: off-policy evaluation of an artifact from lender log files."""

from __future__ import annotations

import dataclasses
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
from collsim.evaluation.offline import _Events
from collsim.evaluation.ope import (
    RIDGE_ALPHA,
    Interval,
    LoggedData,
    cluster_codes,
    outcome_predictions,
    ratio_estimate,
    ratio_estimates,
)
from collsim.export.commands import export_policy
from collsim.vocab import N_CHANNELS
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


def _sklearn_per_channel_ridge(data: LoggedData, fold: np.ndarray) -> tuple[np.ndarray, ...]:
    """The per-channel sklearn ridges the closed-form model replaced (2 folds)."""
    from sklearn.linear_model import Ridge

    channel = np.where(data.option < 0, N_CHANNELS, data.option // data.n_slots)
    target = np.where(data.target_option < 0, N_CHANNELS, data.target_option // data.n_slots)
    q_logged, q_target = np.zeros(data.n), np.zeros(data.n)
    for k in range(2):
        train, test = fold != k, fold == k
        X, y = data.features[train].astype(float), data.reward[train]
        models = {c: Ridge(alpha=RIDGE_ALPHA).fit(X[channel[train] == c], y[channel[train] == c])
                  for c in np.unique(channel[train])}  # fmt: skip
        for q, ch in ((q_logged, channel), (q_target, target)):
            for row in np.flatnonzero(test):
                model = models.get(int(ch[row]))
                q[row] = model.predict(data.features[row : row + 1].astype(float))[0] if model \
                    else y.mean()  # fmt: skip
    return q_logged, q_target


def test_the_closed_form_ridge_matches_sklearn_per_channel_ridges() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    features = (rng.normal(size=(n, 4)) * [1.0, 50.0, 1e3, 0.1] + [0, 100, 5e3, 0]).astype(
        np.float32
    )
    option = rng.integers(-1, 3 * 4, n)  # channels 0..2 and none; channel 3 only as a target
    target = rng.integers(-1, 4 * 4, n)
    reward = features.astype(float) @ [1.0, -0.02, 0.001, 3.0] + rng.normal(size=n)
    data = LoggedData(
        day=np.zeros(n), account=rng.integers(0, 800, n), features=features, option=option,
        holdout=np.zeros(n, bool), arm_propensity=np.ones(n), target_option=target,
        reward=reward, holdout_share=0.0, n_slots=4,
    )  # fmt: skip
    q_logged, q_target = outcome_predictions(data, "ridge", 2, seed=9)
    index = np.unique(data.account, return_inverse=True)[1]
    fold = (np.random.default_rng(9).permutation(index.max() + 1) % 2)[index]
    want_logged, want_target = _sklearn_per_channel_ridge(data, fold)
    np.testing.assert_allclose(q_logged, want_logged, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(q_target, want_target, rtol=1e-9, atol=1e-9)


def test_pooled_ratio_estimates_equal_one_at_a_time_and_codes_equal_unique() -> None:
    rng = np.random.default_rng(4)
    cluster = rng.integers(5, 400, 5000)
    np.testing.assert_array_equal(
        cluster_codes(cluster), np.unique(cluster, return_inverse=True)[1]
    )
    r, w = rng.normal(size=5000), rng.random(5000)
    interval = Interval(0.9, "bootstrap", 50, 7)
    pooled = ratio_estimates(
        {"ipw": (w * r, np.ones(5000)), "snipw": (w * r, w)}, cluster, interval
    )
    alone = ratio_estimate("snipw", w * r, w, cluster, interval)
    assert dataclasses.astuple(pooled["snipw"])[1:] == pytest.approx(
        dataclasses.astuple(alone)[1:], rel=1e-12
    )
    assert pooled["ipw"].value == pytest.approx(float(np.mean(w * r)), rel=1e-12)


def test_window_sums_are_exact_per_account_whatever_the_other_accounts_paid() -> None:
    # 33.14 + 71.41 pays an amount due of 104.55; a prefix sum over the whole book
    # (1e9 paid by account 0 first) lost the cents and missed such cures.
    account = np.array([0, 0, 1, 1])
    offset = np.array([0, 1, 2, 3])
    amount = np.array([1e9 + 0.37, 2e9 + 0.11, 33.14, 71.41])
    events = _Events.of(account, offset, amount, n_accounts=2, span=6)
    paid = events.between(np.array([1]), np.array([0]), np.array([5]))
    assert paid[0] == 33.14 + 71.41
    assert paid[0] >= 104.55
