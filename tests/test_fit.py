"""`collsim fit`: identification on logs from a known scenario, the YAML it writes, bad input."""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.special import logsumexp
from typer.testing import CliRunner

from collsim.cli import app
from collsim.config import dump_yaml, load_scenario
from collsim.evaluation.runner import plan_cells
from collsim.evaluation.spec import ExperimentError, load_experiment
from collsim.logs import PAYMENT_CHANNELS, LogWindow, load_logs
from collsim.research.fit import FitOptions, draw_scenario, simulated_loglik, value_at
from collsim.research.fitcheck import IdentificationResult, identification_run, perturbed_scenario
from collsim.research.fitdata import fit_tables
from tests.offline_logs import champion_with_holdout, simulate_logs

runner = CliRunner()
START = "2026-01-05"


@pytest.fixture(scope="module")
def identified() -> IdentificationResult:
    """Logs from a perturbed default (6,000 accounts × 45 days), fitted against the default."""
    return identification_run(
        load_scenario("default"), seed=1, size=(6000, 45), options=FitOptions(draws=64)
    )


def test_true_values_fall_inside_the_intervals(identified: IdentificationResult) -> None:
    misses = [f"{r.path}: z={r.z:.1f}" for r in identified.rows if not r.inside()]
    assert len(identified.rows) >= 35
    assert identified.covered_share >= 0.9, misses


def test_the_fit_moves_perturbed_numbers_towards_the_truth(
    identified: IdentificationResult,
) -> None:
    base = load_scenario("default")
    closer = [
        abs(r.value - r.true_value) < abs(value_at(base, r.path) - r.true_value)
        for r in identified.rows
        if abs(value_at(base, r.path) - r.true_value) > 3 * r.se
    ]
    assert len(closer) >= 5
    assert np.mean(closer) >= 0.9


def test_unidentified_numbers_keep_the_base_value(identified: IdentificationResult) -> None:
    report = identified.fitted.fit
    assert report is not None
    assert "behaviour.messages.opt_out" in report.unidentified
    base = load_scenario("default").behaviour
    assert identified.fitted.behaviour.messages.opt_out == base.messages.opt_out
    assert identified.fitted.behaviour.excitation_decay_days == base.excitation_decay_days


def test_perturbation_is_seeded() -> None:
    base = load_scenario("default")
    one = perturbed_scenario(base, np.random.default_rng(5))
    again = perturbed_scenario(base, np.random.default_rng(5))
    other = perturbed_scenario(base, np.random.default_rng(6))
    assert one == again
    assert one != other


@pytest.fixture(scope="module")
def small_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fitlogs")
    simulate_logs(folder, champion_with_holdout(load_scenario("default")), accounts=1500, days=20)
    return folder


def _fit(logs: Path, out: Path, *extra: str) -> object:
    args = ["fit", "--logs", str(logs), "--start", START, "--out", str(out), "--draws", "16"]
    args += extra
    return runner.invoke(app, args)


def test_cli_writes_a_loadable_fitted_scenario_and_refuses_to_overwrite(
    small_logs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "my_book.yaml"
    result = _fit(small_logs, out)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    fitted = load_scenario(out)
    assert fitted.name == "my_book"
    assert fitted.fit is not None and fitted.fit.fitted
    for value in fitted.fit.fitted:
        assert value_at(fitted, value.path) == pytest.approx(value.value)
        assert value.se >= 0 and value.n > 0
    again = _fit(small_logs, out)
    assert again.exit_code == 2  # type: ignore[attr-defined]
    assert "--force" in again.output  # type: ignore[attr-defined]
    repeat = tmp_path / "repeat.yaml"
    assert _fit(small_logs, repeat).exit_code == 0  # type: ignore[attr-defined]
    assert repeat.read_text().replace("repeat", "my_book") == out.read_text()


def test_cli_bad_logs_write_nothing(small_logs: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("accounts", "payments"):
        (bad / f"{name}.parquet").write_bytes((small_logs / f"{name}.parquet").read_bytes())
    table = pq.read_table(small_logs / "contacts.parquet")
    outcomes = table.column("outcome").to_pylist()
    outcomes[3] = "hung_up"
    table = table.set_column(table.schema.get_field_index("outcome"), "outcome", [outcomes])
    pq.write_table(table, bad / "contacts.parquet")
    out = tmp_path / "never.yaml"
    result = _fit(bad, out)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "hung_up" in result.output and "outcome" in result.output  # type: ignore[attr-defined]
    assert not out.exists()


def test_cli_needs_logs_or_the_three_files(small_logs: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.yaml"
    args = ["fit", "--start", START, "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 2
    partial = [*args, "--portfolio", str(small_logs / "accounts.parquet")]
    assert runner.invoke(app, partial).exit_code == 2
    assert not out.exists()


def test_a_draw_moves_fitted_numbers_within_their_errors(identified: IdentificationResult) -> None:
    fitted = identified.fitted
    report = fitted.fit
    assert report is not None
    one = draw_scenario(fitted, np.random.default_rng(3))
    assert one == draw_scenario(fitted, np.random.default_rng(3))
    moved = [(value_at(one, v.path) - v.value) / v.se for v in report.fitted if v.se > 0]
    assert 0.3 < float(np.std(moved)) < 3.0
    answer = [v for v in report.fitted if v.group == "answer_scale"]
    ratios = {round(value_at(one, v.path) / v.value, 9) for v in answer}
    assert len(ratios) == 1  # the segments' levels move together
    assert draw_scenario(load_scenario("default"), np.random.default_rng(3)) == load_scenario(
        "default"
    )


def test_compare_with_model_uncertainty_runs_each_seed_on_its_own_draw(
    identified: IdentificationResult, tmp_path: Path
) -> None:
    dump_yaml(identified.fitted, tmp_path / "book.yaml")
    spec = {
        "name": "book", "scenario": "book.yaml", "n_accounts": 300, "days": 5, "seeds": 3,
        "policies": [{"label": "champion", "id": "champion"},
                     {"label": "none", "id": "no_contact"}],
        "baseline": "champion", "model_uncertainty": True,
    }  # fmt: skip
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(spec))
    cells = plan_cells(load_experiment(tmp_path / "exp.yaml"))
    hashes = {s: {c.scenario.config_hash() for c in cells if c.seed == s} for s in (0, 1, 2)}
    assert all(len(h) == 1 for h in hashes.values())  # policies of a seed share its draw
    assert len({next(iter(h)) for h in hashes.values()}) == 3  # seeds differ
    without = {**spec, "scenario": "default"}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(without))
    with pytest.raises(ExperimentError, match="model_uncertainty"):
        load_experiment(tmp_path / "bad.yaml")


def test_a_spell_ends_with_its_first_payment_whatever_comes_later(small_logs: Path) -> None:
    """A hazard payment stays the spell's event when the account later pays an agent."""
    logs = load_logs(small_logs, LogWindow(dt.date.fromisoformat(START)))
    base = load_scenario("default")
    spells = fit_tables(logs, base).spells
    hazard = np.flatnonzero(spells.event)
    assert hazard.size >= 20
    p = logs.payments
    a_day_later = np.full(hazard.size, p.timestamp_utc_s.max() + 86_400)
    later = dataclasses.replace(
        p,
        account=np.concatenate([p.account, hazard]),
        timestamp_utc_s=np.concatenate([p.timestamp_utc_s, a_day_later]),
        amount=np.concatenate([p.amount, np.ones(hazard.size)]),
        channel=np.concatenate(
            [p.channel, np.full(hazard.size, PAYMENT_CHANNELS.index("agent"), dtype=np.int8)]
        ),
    )
    again = fit_tables(dataclasses.replace(logs, payments=later), base).spells
    assert np.array_equal(again.event, spells.event)
    assert np.array_equal(again.days, spells.days)


def test_simulated_loglik_removes_most_of_the_log_of_a_mean_bias() -> None:
    """Lognormal likelihoods (sigma 1): log E[w] = 0.5; a 16-draw log-mean is ~0.046 low."""
    n, k = 20_000, 16
    per_draw = np.random.default_rng(0).normal(0.0, 1.0, (n, k))
    plain = float((logsumexp(per_draw, axis=1) - np.log(k)).mean()) - 0.5
    corrected = (simulated_loglik(per_draw) / n - np.log(k) - 1.0 / (2 * k)) - 0.5
    assert plain < -0.03
    assert abs(corrected) < abs(plain) / 3


def test_cli_fit_defaults_are_the_fits_own() -> None:
    from collsim.cli import fit_cmd
    from collsim.research.fit import DRAWS, MAX_ACCOUNTS

    defaults = {p.name: p.default for p in inspect.signature(fit_cmd).parameters.values()}
    assert (defaults["draws"], defaults["max_accounts"]) == (DRAWS, MAX_ACCOUNTS)
