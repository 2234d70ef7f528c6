"""``collsim backtest``: replay lender logs in simulation and compare by week.

Logs are simulated (default scenario, champion, 2,000 accounts, 28 days).  A
back-test with the scenario that made them passes; one against logs of a
deliberately different book (answer rates × 0.4, self-cure hazards × 3) fails and
names the failing metrics.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from collsim.cli import app
from collsim.config import Scenario, dump_yaml, load_scenario
from collsim.evaluation.backtest import (
    METRICS,
    BacktestOptions,
    ReplayPolicy,
    ReplaySchedule,
    aligned_scenario,
    log_period,
    replicate,
    slot_hours_for,
    weekly_metrics,
)
from collsim.logs import Logs
from collsim.policies.registry import make_policy
from collsim.portfolio import Latent
from collsim.sim import Simulation
from collsim.sim.logs import LogRecorder, simulated_logs, write_simulated_logs
from collsim.vocab import IS_CONVERSATION, IS_TELEPHONE

ACCOUNTS = 2_000
DAYS = 28
GENERATING_SEED = 1
START = "2026-01-05"  # the default scenario's start date

runner = CliRunner()


@dataclass(frozen=True)
class Book:
    """Simulated lender logs, where they were written, and the latent truth behind them."""

    logs: Logs
    folder: Path
    latent: Latent


def _simulate_book(scenario: Scenario, folder: Path) -> Book:
    sim = Simulation(scenario, GENERATING_SEED, n_accounts=ACCOUNTS)
    recorder = LogRecorder(sim)
    sim.run(recorder.wrap(make_policy("champion", scenario)), DAYS, progress=recorder.end_of_day)
    write_simulated_logs(recorder, folder)
    return Book(simulated_logs(recorder), folder, sim.latent)


def _mismatched(scenario: Scenario) -> Scenario:
    """Borrowers who answer far less and pay unprompted far more."""
    segments = [
        s.model_copy(update={"answer_rate": s.answer_rate * 0.4,
                             "self_cure_hazard": s.self_cure_hazard * 3.0})
        for s in scenario.behaviour.segments
    ]  # fmt: skip
    behaviour = scenario.behaviour.model_copy(update={"segments": segments})
    return scenario.model_copy(update={"behaviour": behaviour})


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Book:
    """Logs of the default scenario."""
    return _simulate_book(load_scenario("default"), tmp_path_factory.mktemp("book") / "logs")


@pytest.fixture(scope="module")
def other_book(tmp_path_factory: pytest.TempPathFactory) -> Book:
    """Logs of a mismatched book."""
    scenario = _mismatched(load_scenario("default"))
    return _simulate_book(scenario, tmp_path_factory.mktemp("other") / "logs")


def _backtest(book: Book, out: Path, *extra: str) -> tuple[int, str]:
    args = ["backtest", "--logs", str(book.folder), "--start", START, "--out", str(out), *extra]
    result = runner.invoke(app, args)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


# --------------------------------------------------------------------------- metrics
def test_weekly_metrics_agree_with_the_logs_counted_directly(book: Book) -> None:
    logs = book.logs
    period = log_period(logs)
    table = weekly_metrics(logs, period)
    assert period.days == DAYS and period.weeks == 4
    assert table["metric"].unique(maintain_order=True).to_list() == list(METRICS)

    def values(metric: str) -> np.ndarray:
        return table.filter(pl.col("metric") == metric)["value"].to_numpy()

    assert values("cash_collected").sum() == pytest.approx(logs.payments.amount.sum())
    h = logs.contacts.history
    phone = IS_TELEPHONE[h.channel]
    first_week = phone & (h.local_day < period.first_day + 7)
    rpc = first_week & IS_CONVERSATION[h.outcome]
    assert values("rpc_rate")[0] == pytest.approx(rpc.sum() / first_week.sum())
    owed = logs.accounts.amount_due > 0
    paid = np.bincount(logs.payments.account, logs.payments.amount, minlength=logs.accounts.n)
    cured = owed & (paid >= logs.accounts.amount_due - 0.005)
    assert values("cure_rate")[-1] == pytest.approx(cured.sum() / owed.sum())
    assert np.all(np.diff(values("cure_rate")) >= 0) and np.all(np.diff(values("roll_rate")) >= 0)


def test_replay_with_the_true_borrowers_and_seed_reproduces_the_logs(book: Book) -> None:
    """The replay itself is faithful: same borrowers, same draws, the same weeks."""
    period = log_period(book.logs)
    scenario = aligned_scenario(load_scenario("default"), period, book.logs.accounts.n)
    simulated, refusals = replicate(
        scenario, book.logs, book.latent, GENERATING_SEED, period, substitute=False
    )
    actual = weekly_metrics(book.logs, period)
    for metric in ("cure_rate", "roll_rate", "rpc_rate"):
        a = actual.filter(pl.col("metric") == metric)["value"].to_numpy()
        s = simulated.filter(pl.col("metric") == metric)["value"].to_numpy()
        assert np.abs(a - s).max() < 0.02, metric
    assert refusals.planned == ReplaySchedule.from_logs(book.logs, period).planned
    assert refusals.not_made < 0.05 * refusals.planned


def test_an_end_date_shortens_the_period(book: Book) -> None:
    period = log_period(book.logs, dt.date(2026, 1, 18))
    assert (period.days, period.weeks) == (14, 2)
    assert weekly_metrics(book.logs, period).height == 2 * len(METRICS)


# --------------------------------------------------------------------------- replay
def test_the_schedule_replays_the_first_contact_of_each_account_day(book: Book) -> None:
    logs = book.logs
    period = log_period(logs)
    schedule = ReplaySchedule.from_logs(logs, period)
    h = logs.contacts.history
    key = h.local_day * logs.accounts.n + h.account
    assert schedule.planned == np.unique(key).size < h.m  # agent calls are redialled
    assert schedule.logged == h.m
    order = np.lexsort((logs.contacts.timestamp_utc_s, key))
    _, first = np.unique(key[order], return_index=True)
    earliest = order[first]
    assert np.array_equal(np.sort(h.channel[earliest]), np.sort(schedule.channel))
    by_key = dict(zip(key[earliest].tolist(), h.local_hour[earliest].tolist(), strict=True))
    planned_key = schedule.day * logs.accounts.n + schedule.account
    assert [by_key[k] for k in planned_key.tolist()] == schedule.hour.tolist()


def test_logged_hours_go_to_the_slot_starting_at_or_before_them() -> None:
    slots = np.arange(8, 21)
    hour = np.array([0, 7, 8, 13, 20, 23, 0])
    channel = np.array([0, 0, 0, 1, 2, 0, 5])  # 5 = letter, untimed
    assert slot_hours_for(hour, channel, slots).tolist() == [8, 8, 8, 13, 20, 20, -1]


def test_accounts_cured_in_the_logs_but_owing_in_simulation_get_donor_contacts(
    book: Book,
) -> None:
    period = log_period(book.logs)
    scenario = aligned_scenario(load_scenario("default"), period, book.logs.accounts.n)
    policy = ReplayPolicy(ReplaySchedule.from_logs(book.logs, period))
    sim = Simulation(scenario, 7, portfolio=book.logs.accounts, latent=book.latent)
    sim.run(policy, 10)
    snapshot = sim.begin_day()
    plan = policy.decide(snapshot)
    cure_day = policy.schedule.cure_day
    orphan = snapshot.active & (cure_day < 10) & (plan.reason != 0)
    assert orphan.sum() > 50
    assert np.all(plan.reason[orphan] == 2)
    assert plan.contacted()[orphan].mean() > 0.2  # donors owing in the logs are worked
    assert policy.substituted > 0


# --------------------------------------------------------------------------- command
def test_backtest_of_the_generating_scenario_passes(book: Book, tmp_path: Path) -> None:
    code, output = _backtest(book, tmp_path, "--replications", "5")
    assert code == 0, output
    assert "back-test passed" in output
    table = pl.read_parquet(tmp_path / "backtest.parquet")
    assert table.height == 4 * len(METRICS)
    assert set(table["verdict"]) <= {"pass", "n/a"}
    assert pl.read_csv(tmp_path / "backtest.csv").height == table.height
    assert (tmp_path / "backtest.png").stat().st_size > 0
    assert (tmp_path / "backtest.json").exists()


def test_backtest_against_a_different_book_fails_naming_the_metrics(
    other_book: Book, tmp_path: Path
) -> None:
    code, output = _backtest(other_book, tmp_path, "--replications", "5")
    assert code == 1, output
    assert "FAILED" in output and "back-test failed" in output
    failed = pl.read_csv(tmp_path / "backtest.csv").filter(pl.col("verdict") == "fail")
    assert "rpc_rate" in set(failed["metric"])  # answer rates × 0.4
    assert "cure_rate" in set(failed["metric"])  # self-cure × 3: early cures
    assert "rpc_rate" in output.split("FAILED")[1]


def test_same_seed_same_output_and_a_scenario_file_works(book: Book, tmp_path: Path) -> None:
    scenario_file = tmp_path / "my_book.yaml"
    dump_yaml(load_scenario("default"), scenario_file)
    runs = []
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        code, output = _backtest(
            book, tmp_path / name, "--scenario", str(scenario_file), "--replications", "2",
            "--seed", seed,
        )  # fmt: skip
        assert code in (0, 1), output
        runs.append((tmp_path / name / "backtest.csv").read_bytes())
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_bad_settings_are_exit_2(book: Book, tmp_path: Path) -> None:
    code, _ = _backtest(book, tmp_path, "--replications", "1")
    assert code == 2
    code, _ = _backtest(book, tmp_path, "--end", "2025-01-01")
    assert code == 2


def test_options_refuse_a_band_from_one_replication() -> None:
    with pytest.raises(ValueError, match="replications"):
        BacktestOptions(replications=1)
