"""Lender logs (collsim.logs, collsim.sim.logs): simulated logs read back, bad files refused."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from collsim.cli import app
from collsim.config import load_scenario
from collsim.evaluation.logging import LoggingPolicy
from collsim.ledger import EVENT
from collsim.logs import (
    CONTACT_COLUMNS,
    LOG_OUTCOMES,
    PAYMENT_CHANNELS,
    PAYMENT_COLUMNS,
    Logs,
    LogWindow,
    load_contacts,
    load_logs,
    load_payments,
    write_logs,
)
from collsim.policies.baselines import RandomPolicy
from collsim.portfolio import date_of
from collsim.sim import Simulation
from collsim.sim.logs import (
    PAYMENT_CHANNEL_OF_CONTACT,
    LogRecorder,
    simulated_logs,
    write_simulated_logs,
)
from collsim.tables import InputError, load_portfolio
from collsim.vocab import CHANNELS, Offer, Outcome, Variant
from tests.fixed_policies import OfferEveryone

ACCOUNTS, DAYS = 300, 20
START = load_scenario("default").sim.start_date
WINDOW = LogWindow(START, START + dt.timedelta(days=DAYS - 1))
runner = CliRunner()


@dataclass
class Run:
    """A simulated run, its recorder and the logs read back from its folder."""

    sim: Simulation
    recorder: LogRecorder
    logs: Logs
    folder: Path


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The champion through `collsim simulate --logs`, read back with the readers."""
    root = tmp_path_factory.mktemp("champion")
    folder = root / "logs"
    args = ["simulate", "--accounts", str(ACCOUNTS), "--days", str(DAYS), "--out", str(root)]
    result = runner.invoke(app, [*args, "--logs", str(folder)])
    assert result.exit_code == 0, result.output
    sim = Simulation(load_scenario("default"), 0, n_accounts=ACCOUNTS)  # the same run again
    recorder = LogRecorder(sim)
    from collsim.research.registry import make_policy

    policy = recorder.wrap(make_policy("champion", sim.scenario))
    sim.run(policy, DAYS, progress=recorder.end_of_day)
    return Run(sim, recorder, load_logs(folder, WINDOW), folder)


@pytest.fixture(scope="module")
def randomised(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, LoggingPolicy]:
    """A random policy with a 20% holdout, logs written as CSV and read back."""
    folder = tmp_path_factory.mktemp("random")
    sim = Simulation(load_scenario("default"), 3, n_accounts=ACCOUNTS)
    recorder = LogRecorder(sim)
    logger = LoggingPolicy(RandomPolicy(contact_rate=0.5), holdout_share=0.2)
    sim.run(recorder.wrap(logger), DAYS, progress=recorder.end_of_day)
    write_simulated_logs(recorder, folder, csv=True)
    return Run(sim, recorder, load_logs(folder, WINDOW), folder), logger


# ---------------------------------------------------------------------------- round trip
def _attempts(sim: Simulation) -> dict[str, np.ndarray]:
    cols = sim.ledger.columns()
    sel = cols["event"] == EVENT["attempt"]
    return {name: col[sel] for name, col in cols.items()}


def _cells(channel: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    return np.bincount(
        channel.astype(np.int64) * len(LOG_OUTCOMES) + outcome,
        minlength=len(CHANNELS) * len(LOG_OUTCOMES),
    )


@pytest.mark.parametrize("which", ["champion", "randomised"])
def test_contacts_agree_with_the_ledger_by_channel_and_outcome(
    which: str, request: pytest.FixtureRequest
) -> None:
    run = request.getfixturevalue(which)
    run = run[0] if isinstance(run, tuple) else run
    attempts = _attempts(run.sim)
    contacts = run.logs.contacts
    assert contacts.m == attempts["day"].size > 100
    assert np.array_equal(
        _cells(contacts.history.channel, contacts.outcome),
        _cells(attempts["channel"], attempts["outcome"]),
    )
    assert set(np.unique(contacts.history.local_day)) <= set(attempts["day"].tolist())


@pytest.mark.parametrize("which", ["champion", "randomised"])
def test_payments_total_the_ledger_amount_recovered(
    which: str, request: pytest.FixtureRequest
) -> None:
    run = request.getfixturevalue(which)
    run = run[0] if isinstance(run, tuple) else run
    cols = run.sim.ledger.columns()
    paid = cols["event"] == EVENT["payment"]
    payments = run.logs.payments
    assert payments.m == int(paid.sum()) > 10
    assert payments.amount.sum() == pytest.approx(cols["amount"][paid].sum(), abs=1e-6)
    by_channel = np.bincount(payments.channel, weights=payments.amount, minlength=6)
    mapped = PAYMENT_CHANNEL_OF_CONTACT[cols["channel"][paid].astype(np.int64) + 1]
    expected = np.bincount(mapped, weights=cols["amount"][paid], minlength=6)
    assert by_channel == pytest.approx(expected, abs=1e-6)
    assert by_channel[PAYMENT_CHANNELS.index("other")] > 0


def test_the_account_snapshot_is_the_portfolio_at_the_start(champion: Run) -> None:
    cols = champion.sim.ledger.columns()
    start = cols["event"] == EVENT["start"]
    accounts = champion.logs.accounts
    assert accounts.n == ACCOUNTS
    assert accounts.balance.sum() == pytest.approx(cols["amount"][start].sum())
    assert not np.allclose(accounts.balance, champion.sim.portfolio.balance)  # the run moved on


def test_kept_promises_are_the_promises_logged_on_contacts(champion: Run) -> None:
    contacts, accounts = champion.logs.contacts, champion.logs.accounts
    made = contacts.promise_day >= 0
    assert np.all(contacts.outcome[made] == Outcome.PROMISE_TO_PAY)
    assert made.sum() >= 0.7 * (contacts.outcome == Outcome.PROMISE_TO_PAY).sum() > 0
    assert np.all(contacts.promise_amount[made] > 0)
    assert np.all(contacts.promise_day[made] > contacts.history.local_day[made])
    logged = set(
        zip(
            contacts.history.account[made].tolist(),
            contacts.promise_day[made].tolist(),
            np.round(contacts.promise_amount[made], 2).tolist(),
            strict=True,
        )
    )
    cols = champion.sim.ledger.columns()
    kept = cols["event"] == EVENT["promise_kept"]
    from_snapshot = accounts.promise_due_day[cols["account"][kept]] == cols["day"][kept]
    kept_promises = set(
        zip(
            cols["account"][kept][~from_snapshot].tolist(),
            cols["day"][kept][~from_snapshot].tolist(),
            np.round(cols["amount"][kept][~from_snapshot], 2).tolist(),
            strict=True,
        )
    )
    assert kept_promises and kept_promises <= logged


def test_champion_contacts_carry_the_plan_propensity(champion: Run) -> None:
    contacts = champion.logs.contacts
    assert np.all(contacts.propensity == 1.0)
    assert np.all(contacts.holdout == 0)


def test_random_policy_with_holdout_logs_propensities_and_holdouts(
    randomised: tuple[Run, LoggingPolicy],
) -> None:
    run, logger = randomised
    contacts = run.logs.contacts
    first = run.recorder.first_day
    day_index = contacts.history.local_day - first
    propensity = np.stack([p.propensity for p in logger.plans])
    holdout = np.stack([p.holdout for p in logger.plans])
    assert holdout.sum() > 50
    assert np.all((contacts.propensity > 0) & (contacts.propensity < 1))
    assert contacts.propensity == pytest.approx(propensity[day_index, contacts.history.account])
    assert np.all(contacts.holdout == 0)
    contacted = np.zeros_like(holdout)
    contacted[day_index, contacts.history.account] = True
    assert not np.any(contacted & holdout)  # a held-out account-day has no contact


def test_csv_and_parquet_logs_read_back_the_same(champion: Run, tmp_path: Path) -> None:
    write_logs(simulated_logs(champion.recorder), tmp_path, csv=True)
    again = load_logs(tmp_path, WINDOW)
    for name in ("timestamp_utc_s", "outcome", "promise_day", "offer", "propensity", "holdout"):
        assert np.array_equal(
            getattr(again.contacts, name), getattr(champion.logs.contacts, name), equal_nan=True
        ), name
    assert np.array_equal(again.payments.amount, champion.logs.payments.amount)
    assert pq.read_schema(champion.folder / "contacts.parquet").names == list(CONTACT_COLUMNS)
    assert pq.read_schema(champion.folder / "payments.parquet").names == list(PAYMENT_COLUMNS)


# ---------------------------------------------------------------------------- overwrite
def test_writing_logs_refuses_to_overwrite_unless_forced(champion: Run, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    shutil.copytree(champion.folder, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    logs = simulated_logs(champion.recorder)
    one = {n: getattr(logs.payments, n)[:1] for n in ("account", "timestamp_utc_s", "amount")}
    short = replace(logs, payments=replace(logs.payments, channel=logs.payments.channel[:1], **one))
    with pytest.raises(FileExistsError, match="--force"):
        write_logs(short, folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    write_logs(short, folder, force=True)
    assert load_logs(folder, WINDOW).payments.m == 1
    with pytest.raises(FileExistsError, match="payments.parquet"):
        write_logs(short, folder, csv=True)  # the other format counts too
    assert not (folder / "payments.csv").exists()
    write_logs(logs, folder, force=True, csv=True)
    assert sorted(p.name for p in folder.iterdir()) == [
        "accounts.csv",
        "contacts.csv",
        "payments.csv",
    ]
    assert load_logs(folder, WINDOW).payments.m == logs.payments.m


def test_simulate_refuses_existing_logs_without_force(champion: Run, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    shutil.copytree(champion.folder, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    args = ["simulate", "--accounts", "50", "--days", "2", "--out", str(tmp_path / "run")]
    result = runner.invoke(app, [*args, "--logs", str(folder)])
    assert result.exit_code == 2
    assert "--force" in result.output
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert not (tmp_path / "run").exists()
    result = runner.invoke(app, [*args, "--logs", str(folder), "--force"])
    assert result.exit_code == 0, result.output
    assert load_logs(folder, LogWindow(START)).accounts.n == 50


# ---------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def csv_logs(champion: Run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("csv")
    write_logs(simulated_logs(champion.recorder), folder, csv=True)
    return folder


def _edited(source: Path, target: Path, edit: Callable[[dict[str, list[str]]], None]) -> Path:
    """Copy a CSV file with every column as text, changed by ``edit``."""
    names = pacsv.open_csv(source).schema.names
    convert = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
    columns = pacsv.read_csv(source, convert_options=convert).to_pydict()
    edit(columns)
    pacsv.write_csv(pa.table(columns), target)
    return target


def _set(column: str, row: int, value: str) -> Callable[[dict[str, list[str]]], None]:
    def edit(columns: dict[str, list[str]]) -> None:
        columns[column][row - 1] = value

    return edit


def _drop(column: str) -> Callable[[dict[str, list[str]]], None]:
    def edit(columns: dict[str, list[str]]) -> None:
        del columns[column]

    return edit


BAD_CONTACTS = [
    ("missing column", _drop("outcome"), None, "outcome", None, "required column is missing"),
    ("unknown outcome", _set("outcome", 3, "answered"), 3, "outcome", "answered",
     "unknown outcome"),
    ("naive timestamp", _set("timestamp_utc", 4, "2026-01-06T10:00:00"), 4, "timestamp_utc",
     "2026-01-06T10:00:00", "no time zone"),
    ("unknown account", _set("account_id", 5, "Z999"), 5, "account_id", "Z999",
     "is not an account in the portfolio"),
    ("before the window", _set("timestamp_utc", 6, "2025-12-31T18:00:00Z"), 6, "timestamp_utc",
     "2025-12-31T18:00:00Z", f"is before the window start {START}"),
    ("bad propensity", _set("propensity", 7, "0"), 7, "propensity", "0", "must be in (0, 1]"),
]  # fmt: skip

BAD_PAYMENTS = [
    ("missing column", _drop("amount"), None, "amount", None, "required column is missing"),
    ("before the window", _set("timestamp_utc", 2, "2026-01-04T18:00:00Z"), 2, "timestamp_utc",
     "2026-01-04T18:00:00Z", f"is before the window start {START}"),
    ("negative amount", _set("amount", 3, "-12.5"), 3, "amount", "-12.5", "must be > 0"),
    ("zero amount", _set("amount", 4, "0"), 4, "amount", "0", "must be > 0"),
    ("naive timestamp", _set("timestamp_utc", 5, "2026-01-06 10:00"), 5, "timestamp_utc",
     "2026-01-06 10:00", "no time zone"),
    ("unknown account", _set("account_id", 6, "Z999"), 6, "account_id", "Z999",
     "is not an account in the portfolio"),
    ("unknown channel", _set("channel", 7, "cash"), 7, "channel", "cash",
     "unknown payment channel"),
]  # fmt: skip


def _assert_one_problem(
    error: InputError, path: Path, row: int | None, column: str, value: str | None, text: str
) -> None:
    assert len(error.problems) == 1, str(error)
    problem = error.problems[0]
    assert (problem.file, problem.row, problem.column, problem.value) == (
        str(path),
        row,
        column,
        value,
    )
    assert text in problem.message
    line = str(error)
    assert str(path) in line and f"column {column}" in line
    if row is not None:
        assert f"row {row}," in line and f'value "{value}"' in line


@pytest.mark.parametrize(
    ("case", "edit", "row", "column", "value", "text"),
    BAD_CONTACTS,
    ids=[c[0] for c in BAD_CONTACTS],
)
def test_a_bad_contacts_file_gives_one_clear_error(
    csv_logs: Path, tmp_path: Path, case: str, edit: Callable[..., None],
    row: int | None, column: str, value: str | None, text: str,
) -> None:  # fmt: skip
    accounts = load_portfolio(csv_logs / "accounts.csv")
    good = load_contacts(csv_logs / "contacts.csv", accounts, WINDOW)
    assert good.m > 10
    path = _edited(csv_logs / "contacts.csv", tmp_path / "contacts.csv", edit)
    result = None
    with pytest.raises(InputError) as caught:
        result = load_contacts(path, accounts, WINDOW)
    assert result is None
    _assert_one_problem(caught.value, path, row, column, value, text)


@pytest.mark.parametrize(
    ("case", "edit", "row", "column", "value", "text"),
    BAD_PAYMENTS,
    ids=[c[0] for c in BAD_PAYMENTS],
)
def test_a_bad_payments_file_gives_one_clear_error(
    csv_logs: Path, tmp_path: Path, case: str, edit: Callable[..., None],
    row: int | None, column: str, value: str | None, text: str,
) -> None:  # fmt: skip
    accounts = load_portfolio(csv_logs / "accounts.csv")
    assert load_payments(csv_logs / "payments.csv", accounts, WINDOW).m > 10
    path = _edited(csv_logs / "payments.csv", tmp_path / "payments.csv", edit)
    result = None
    with pytest.raises(InputError) as caught:
        result = load_payments(path, accounts, WINDOW)
    assert result is None
    _assert_one_problem(caught.value, path, row, column, value, text)


def test_a_bad_file_in_a_logs_folder_loads_nothing(csv_logs: Path, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    shutil.copytree(csv_logs, folder)
    _edited(csv_logs / "payments.csv", folder / "payments.csv", _set("amount", 2, "-1"))
    result = None
    with pytest.raises(InputError, match="payments.csv: row 2, column amount"):
        result = load_logs(folder, WINDOW)
    assert result is None


def test_naive_parquet_timestamps_are_refused(champion: Run, tmp_path: Path) -> None:
    table = pq.read_table(champion.folder / "payments.parquet")
    i = table.column_names.index("timestamp_utc")
    naive = table.set_column(i, "timestamp_utc", table.column(i).cast(pa.timestamp("s")))
    pq.write_table(naive, tmp_path / "payments.parquet")
    with pytest.raises(InputError) as caught:
        load_payments(tmp_path / "payments.parquet", champion.logs.accounts, WINDOW)
    assert len(caught.value.problems) == 1
    assert "without a time zone" in str(caught.value)


def test_promise_columns_only_on_promises(csv_logs: Path, tmp_path: Path) -> None:
    accounts = load_portfolio(csv_logs / "accounts.csv")
    contacts = load_contacts(csv_logs / "contacts.csv", accounts, WINDOW)
    assert np.any(contacts.promise_day >= 0)
    rows = pacsv.read_csv(csv_logs / "contacts.csv").column("outcome").to_pylist()
    row = rows.index("no_answer") + 1
    path = _edited(csv_logs / "contacts.csv", tmp_path / "c.csv", _set("promise_amount", row, "5"))
    with pytest.raises(InputError) as caught:
        load_contacts(path, accounts, WINDOW)
    _assert_one_problem(
        caught.value,
        path,
        row,
        "promise_amount",
        "5",
        "only allowed when outcome is promise_to_pay",
    )


def test_read_is_a_detailed_outcome_that_the_history_sees_as_delivered(
    csv_logs: Path, tmp_path: Path
) -> None:
    accounts = load_portfolio(csv_logs / "accounts.csv")
    rows = pacsv.read_csv(csv_logs / "contacts.csv").column("outcome").to_pylist()
    row = rows.index("delivered") + 1
    path = _edited(csv_logs / "contacts.csv", tmp_path / "c.csv", _set("outcome", row, "read"))
    contacts = load_contacts(path, accounts, WINDOW)
    read = contacts.outcome == LOG_OUTCOMES.index("read")
    assert read.sum() == 1
    assert contacts.history.outcome[read][0] == Outcome.DELIVERED
    assert date_of(int(contacts.history.local_day.min())) >= START


def test_a_logs_folder_needs_each_file_once(csv_logs: Path, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    shutil.copytree(csv_logs, folder)
    (folder / "payments.csv").unlink()
    with pytest.raises(InputError, match=r"payments\.\*: not found"):
        load_logs(folder, WINDOW)
    shutil.copy(csv_logs / "contacts.csv", folder / "payments.csv")
    shutil.copy(csv_logs / "accounts.csv", folder / "accounts.parquet")
    with pytest.raises(InputError, match=r"accounts\.\*: several files"):
        load_logs(folder, WINDOW)


def test_simulate_random_policy_logs_agree_with_its_own_ledger(tmp_path: Path) -> None:
    args = ["simulate", "--policy", "random", "--accounts", str(ACCOUNTS), "--days", str(DAYS)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path), "--logs", str(tmp_path / "logs")])
    assert result.exit_code == 0, result.output
    logs = load_logs(tmp_path / "logs", WINDOW)
    ledger = pq.read_table(tmp_path / "ledger.parquet").to_pydict()
    event = np.array(ledger["event"], dtype=object)
    attempt, paid = event == "attempt", event == "payment"
    pairs = zip(
        np.array(ledger["channel"], dtype=object)[attempt],
        np.array(ledger["outcome"], dtype=object)[attempt],
        strict=True,
    )
    channel = np.array([CHANNELS.index(c) for c, _ in pairs], dtype=np.int64)
    outcome = np.array(
        [LOG_OUTCOMES.index(o) for o in np.array(ledger["outcome"], dtype=object)[attempt]]
    )
    contacts = logs.contacts
    assert np.array_equal(
        _cells(contacts.history.channel, contacts.outcome), _cells(channel, outcome)
    )
    assert np.all((contacts.propensity > 0) & (contacts.propensity < 1))
    amount = np.array(ledger["amount"])[paid]
    assert logs.payments.amount.sum() == pytest.approx(amount.sum(), abs=1e-6)


def test_the_recorder_keeps_a_latent_aware_policy_latent_aware() -> None:
    from collsim.policies.baselines import NoContact
    from collsim.sim.latent import LatentAware, LatentView

    class Peeking(NoContact):
        seen: list[LatentView] = []

        def observe_latent(self, view: LatentView) -> None:
            self.seen.append(view)

    sim = Simulation(load_scenario("default"), 0, n_accounts=50)
    recorder = LogRecorder(sim)
    peeking, plain = Peeking(), NoContact()
    assert isinstance(recorder.wrap(peeking), LatentAware)
    assert not isinstance(recorder.wrap(plain), LatentAware)
    sim.run(recorder.wrap(peeking), 2, progress=recorder.end_of_day)
    assert len(peeking.seen) == 2 and len(recorder.propensity) == 2
    with pytest.raises(ValueError, match="before its first day"):
        LogRecorder(sim)


def test_offers_and_variants_are_logged_on_contacts(tmp_path: Path) -> None:
    sim = Simulation(load_scenario("default"), 4, n_accounts=ACCOUNTS)
    recorder = LogRecorder(sim)
    sim.run(
        recorder.wrap(OfferEveryone(Offer.SETTLEMENT, Variant.EMPATHETIC)),
        5,
        progress=recorder.end_of_day,
    )
    write_simulated_logs(recorder, tmp_path)
    contacts = load_logs(tmp_path, WINDOW).contacts
    attempts = _attempts(sim)
    assert np.array_equal(
        np.bincount(contacts.offer * 3 + contacts.variant, minlength=12),
        np.bincount(np.maximum(attempts["offer"], 0) * 3 + np.maximum(attempts["variant"], 0),
                    minlength=12),
    )  # fmt: skip
    treated = (contacts.offer == Offer.SETTLEMENT) & (contacts.variant == Variant.EMPATHETIC)
    assert treated.sum() > 50


def test_validate_logs_accepts_good_logs_and_lists_problems_of_bad_ones(
    champion: Run, tmp_path: Path
) -> None:
    good = ["validate-logs", str(champion.folder), "--start", str(START)]
    result = runner.invoke(app, [*good, "--end", str(WINDOW.end)])
    assert result.exit_code == 0, result.output
    assert f"{ACCOUNTS} accounts" in result.output and "valid" in result.output
    late = START + dt.timedelta(days=1)
    result = runner.invoke(app, ["validate-logs", str(champion.folder), "--start", str(late)])
    assert result.exit_code == 2
    assert "contacts.parquet: row 1, column timestamp_utc" in result.output
    assert f"is before the window start {late}" in result.output
    result = runner.invoke(app, [*good, "--end", "2026-02-30"])
    assert result.exit_code == 2 and "--end: '2026-02-30' is not a date" in result.output
