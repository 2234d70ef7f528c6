"""Tests of collsim.tables: portfolio and contact-history files, validation and round trips."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collsim import tables
from collsim.history import History
from collsim.portfolio import FLAG_COLUMNS, Portfolio, day_number
from collsim.tables import InputError, Problem
from collsim.vocab import CHANNELS, OUTCOMES, Channel, Outcome

HEADER = list(tables.PORTFOLIO_COLUMNS)
NY = "America/New_York"


def account(i: int, **changes: str) -> dict[str, str]:
    """Return one valid portfolio row as text, with ``changes`` applied."""
    row = {
        "account_id": f"A{i}",
        "product": ("card", "bnpl", "personal_loan")[i % 3],
        "balance": f"{100 + i}.25",
        "amount_due": "10",
        "dpd": str(i),
        "timezone": (NY, "Asia/Shanghai", "America/Chicago")[i % 3],
        **{name: ("true", "0", "FALSE", "1")[(i + k) % 4] for k, name in enumerate(FLAG_COLUMNS)},
        "risk_score": "" if i % 2 else "0.25",
        "promise_due_date": "2026-03-10" if i == 1 else "",
        "promise_amount": "50" if i == 1 else "",
        "segment": "early" if i % 2 else "",
    }
    row.update(changes)
    return row


def write_rows(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    """Write text rows as CSV, or as a Parquet file of string columns, by extension."""
    columns = columns or list(rows[0])
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    else:
        data = {c: pa.array([r[c] for r in rows], type=pa.string()) for c in columns}
        pq.write_table(pa.table(data), path)
    return path


def problems_of(path: Path, load: Any = tables.load_portfolio, *args: Any) -> list[Problem]:
    with pytest.raises(InputError) as info:
        load(path, *args)
    return info.value.problems


@pytest.fixture(params=["csv", "parquet"])
def ext(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --------------------------------------------------------------------------- portfolio: good
def test_load_valid_csv_portfolio(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "portfolio.csv", [account(i) for i in range(4)])
    p = tables.load_portfolio(path)
    assert p.n == 4
    assert list(p.account_id) == ["A0", "A1", "A2", "A3"]
    assert p.products == ("bnpl", "card", "personal_loan")
    assert [p.products[c] for c in p.product] == ["card", "bnpl", "personal_loan", "card"]
    assert p.timezones == ("America/Chicago", NY, "Asia/Shanghai")
    assert [p.timezones[c] for c in p.timezone] == [NY, "Asia/Shanghai", "America/Chicago", NY]
    assert p.balance.tolist() == [100.25, 101.25, 102.25, 103.25]
    assert p.dpd.dtype == np.int32 and p.dpd.tolist() == [0, 1, 2, 3]
    assert p.has_phone.tolist() == [True, False, False, True]  # true, 0, FALSE, 1
    assert np.isnan(p.risk_score[1]) and p.risk_score[0] == 0.25
    assert p.promise_due_day.tolist() == [-1, day_number(dt.date(2026, 3, 10)), -1, -1]
    assert p.promise_amount.tolist() == [0.0, 50.0, 0.0, 0.0]
    assert list(p.segment_label) == ["", "early", "", "early"]


def test_optional_columns_may_be_absent_and_extra_columns_are_ignored(tmp_path: Path) -> None:
    rows = [account(i, notes="anything") for i in range(2)]
    required = [c for c in HEADER if c not in tables.PORTFOLIO_OPTIONAL] + ["notes"]
    p = tables.load_portfolio(write_rows(tmp_path / "p.csv", rows, required))
    assert np.isnan(p.risk_score).all()
    assert (p.promise_due_day == -1).all() and (p.promise_amount == 0).all()
    assert list(p.segment_label) == ["", ""]


def test_parquet_native_types(tmp_path: Path) -> None:
    n = 3
    data: dict[str, pa.Array] = {
        "account_id": pa.array(["X1", "X2", "X3"]).dictionary_encode(),
        "product": pa.array(["card"] * n),
        "balance": pa.array([1.5, 0.0, 2.0]),
        "amount_due": pa.array([1, 0, 2], type=pa.int64()),
        "dpd": pa.array([3.0, 0.0, 12.0]),
        "timezone": pa.array([NY] * n, type=pa.large_string()),
        "risk_score": pa.array([0.5, None, 1.0]),
        "promise_due_date": pa.array([None, 20600, None], type=pa.date32()),
        "promise_amount": pa.array([None, 5.0, None]),
        "segment": pa.array([None, "s", None]),
    }
    for k, name in enumerate(FLAG_COLUMNS):
        data[name] = (
            pa.array([True, False, k % 2 == 0]) if k % 2 else pa.array([1, 0, 1], pa.int8())
        )
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table(data), path)
    p = tables.load_portfolio(path)
    assert list(p.account_id) == ["X1", "X2", "X3"]
    assert p.amount_due.tolist() == [1.0, 0.0, 2.0]
    assert p.dpd.tolist() == [3, 0, 12]
    assert p.has_phone.tolist() == [True, False, True]
    assert p.has_mobile.tolist() == [True, False, False]
    assert p.promise_due_day.tolist() == [-1, 20600, -1]
    assert p.promise_amount.tolist() == [0.0, 5.0, 0.0]
    assert list(p.segment_label) == ["", "s", ""]


# --------------------------------------------------------------------------- portfolio: bad
BAD_CELLS = [
    # (column, bad value, fragment of the message)
    ("balance", "-5", "must be >= 0"),
    ("balance", "nan", "must be a finite number"),
    ("amount_due", "inf", "must be a finite number"),
    ("balance", "12,50", "is not a number"),
    ("balance", "", "is missing"),
    ("timezone", "Mars/Olympus_Mons", "not a valid IANA time zone"),
    ("timezone", "america/new_york", "not a valid IANA time zone"),
    ("has_email", "yes", "must be true, false, 1 or 0"),
    ("vulnerable", "", "must be true, false, 1 or 0"),
    ("account_id", "", "must not be empty"),
    ("account_id", "  ", "must not be empty"),
    ("dpd", "3.5", "must be an integer"),
    ("dpd", "-1", "must be >= 0"),
    ("dpd", "three", "is not a number"),
    ("risk_score", "1.5", "must be in [0, 1]"),
    ("risk_score", "-0.1", "must be in [0, 1]"),
    ("promise_due_date", "2026-02-30", "is not an ISO date"),
    ("promise_due_date", "03/08/2026", "is not an ISO date"),
    ("promise_amount", "-1", "must be >= 0"),
    ("product", "", "must not be empty"),
]


@pytest.mark.parametrize(("column", "value", "message"), BAD_CELLS)
def test_each_bad_cell_is_named(
    tmp_path: Path, ext: str, column: str, value: str, message: str
) -> None:
    rows = [account(i) for i in range(4)]
    rows[2][column] = value
    path = write_rows(tmp_path / f"portfolio.{ext}", rows)
    [problem] = problems_of(path)
    assert problem == Problem(str(path), 3, column, value, problem.message)
    assert message in problem.message
    assert f'{path}: row 3, column {column}, value "{value}": ' in str(problem)


def test_missing_column(tmp_path: Path, ext: str) -> None:
    columns = [c for c in HEADER if c != "dpd"]
    path = write_rows(tmp_path / f"portfolio.{ext}", [account(i) for i in range(3)], columns)
    [problem] = problems_of(path)
    assert (problem.file, problem.row, problem.column, problem.value) == (
        str(path),
        None,
        "dpd",
        None,
    )
    assert str(problem) == f"{path}: column dpd: required column is missing"


def test_missing_column_hint_for_a_near_name(tmp_path: Path) -> None:
    rows = [dict(account(0), Balance="1")]
    columns = ["Balance" if c == "balance" else c for c in HEADER]
    [problem] = problems_of(write_rows(tmp_path / "p.csv", rows, columns))
    assert problem.column == "balance" and "found 'Balance'" in problem.message


def test_duplicate_account_id_reported_after_first(tmp_path: Path, ext: str) -> None:
    rows = [account(i) for i in range(5)]
    rows[2]["account_id"] = "A0"
    rows[4]["account_id"] = "A0"
    path = write_rows(tmp_path / f"portfolio.{ext}", rows)
    found = problems_of(path)
    assert [(p.row, p.column, p.value) for p in found] == [
        (3, "account_id", "A0"),
        (5, "account_id", "A0"),
    ]
    assert all("duplicate account_id (first on row 1)" in p.message for p in found)


def test_several_problems_are_all_reported(tmp_path: Path, ext: str) -> None:
    rows = [account(i) for i in range(5)]
    rows[0]["balance"] = "-1"
    rows[1]["timezone"] = "Nowhere/City"
    rows[1]["has_app"] = "maybe"
    rows[4]["dpd"] = "2.5"
    path = write_rows(tmp_path / f"portfolio.{ext}", rows, [c for c in HEADER if c != "product"])
    found = problems_of(path)
    where = [(p.row, p.column, p.value) for p in found]
    assert where == [
        (None, "product", None),
        (1, "balance", "-1"),
        (2, "timezone", "Nowhere/City"),
        (2, "has_app", "maybe"),
        (5, "dpd", "2.5"),
    ]


def test_more_than_twenty_problems_are_summarised(tmp_path: Path) -> None:
    rows = [account(i, balance="-1") for i in range(25)]
    with pytest.raises(InputError) as info:
        tables.load_portfolio(write_rows(tmp_path / "p.csv", rows))
    assert len(info.value.problems) == 25
    lines = str(info.value).splitlines()
    assert len(lines) == 21 and lines[-1] == "... and 5 more"
    assert lines[0].endswith('p.csv: row 1, column balance, value "-1": must be >= 0')
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("balance", pa.array([1.0, -2.0, 3.0]), "must be >= 0"),
        ("balance", pa.array([1.0, float("nan"), 3.0]), "must be a finite number"),
        ("balance", pa.array([1.0, None, 3.0]), "is missing"),
        ("has_phone", pa.array([1, 2, 0], pa.int64()), "must be true, false, 1 or 0"),
        ("has_phone", pa.array([True, None, False]), "is missing"),
        ("dpd", pa.array([1.0, 2.5, 3.0]), "must be an integer"),
        ("risk_score", pa.array([0.1, 7.0, 0.3]), "must be in [0, 1]"),
    ],
)
def test_parquet_native_bad_values(
    tmp_path: Path, column: str, values: pa.Array, message: str
) -> None:
    path = write_rows(tmp_path / "p.parquet", [account(i) for i in range(3)])
    table = pq.read_table(path)
    table = table.set_column(table.column_names.index(column), column, values)
    pq.write_table(table, path)
    [problem] = problems_of(path)
    assert (problem.row, problem.column) == (2, column)
    assert message in problem.message


def test_parquet_column_of_wrong_type(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "p.parquet", [account(i) for i in range(2)])
    table = pq.read_table(path)
    table = table.set_column(2, "balance", pa.array([[1.0], [2.0]]))
    pq.write_table(table, path)
    [problem] = problems_of(path)
    assert (problem.row, problem.column) == (
        None,
        "balance",
    ) and "expected numbers" in problem.message


# --------------------------------------------------------------------------- read_table
def test_read_table_file_errors(tmp_path: Path) -> None:
    for path, message in [
        (tmp_path / "p.xlsx", "unknown file extension '.xlsx'"),
        (tmp_path / "absent.csv", "file not found"),
    ]:
        [problem] = problems_of(path, tables.read_table)
        assert problem.file == str(path) and message in problem.message
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    [problem] = problems_of(garbage, tables.read_table)
    assert problem.file == str(garbage) and "cannot read as PARQUET" in problem.message
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert "cannot read as CSV" in str(problems_of(empty, tables.read_table)[0])


def test_read_table_csv_is_all_text_and_ragged_rows_are_named(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3\n4,5\n")
    [problem] = problems_of(path, tables.read_table)
    assert problem.row == 2 and "expected 2 fields, found 1" in problem.message
    path.write_text("a,b\n1,x\n007,\n")
    table = tables.read_table(path)
    assert table.schema.types == [pa.string(), pa.string()]
    assert table.column("a").to_pylist() == ["1", "007"] and table.column("b").to_pylist() == [
        "x",
        "",
    ]


# --------------------------------------------------------------------------- history
def small_portfolio(tmp_path: Path) -> Portfolio:
    return tables.load_portfolio(
        write_rows(tmp_path / "portfolio.csv", [account(i) for i in range(3)])
    )


def contact(account_id: str = "A0", **changes: str) -> dict[str, str]:
    row = {
        "account_id": account_id,
        "timestamp_utc": "2026-03-02T15:04:05Z",
        "channel": "agent_call",
        "outcome": "right_party",
        "conversation": "true",
    }
    row.update(changes)
    return row


def test_load_history_sorted_and_local(tmp_path: Path, ext: str) -> None:
    p = small_portfolio(tmp_path)  # A0 New York, A1 Shanghai, A2 Chicago
    rows = [
        contact(
            "A1", timestamp_utc="2026-03-02T17:00:00+01:00", channel="sms", outcome="delivered"
        ),
        contact("A0", timestamp_utc="2026-03-03T01:30:00Z", conversation="0"),
        contact("A0", timestamp_utc="2026-03-02T15:04:05.999Z", outcome="no_answer"),
    ]
    h = tables.load_history(write_rows(tmp_path / f"history.{ext}", rows), p)
    march_2 = day_number(dt.date(2026, 3, 2))
    assert h.account.tolist() == [0, 0, 1]
    assert h.local_day.tolist() == [march_2, march_2, march_2 + 1]  # 16:00Z = 00:00 +08:00
    assert h.local_hour.tolist() == [10, 20, 0]
    assert h.channel.tolist() == [Channel.AGENT_CALL, Channel.AGENT_CALL, Channel.SMS]
    assert h.outcome.tolist() == [Outcome.NO_ANSWER, Outcome.RIGHT_PARTY, Outcome.DELIVERED]
    assert h.conversation.tolist() == [True, False, True]
    assert (h.local_day.dtype, h.local_hour.dtype, h.channel.dtype) == (np.int64, np.int8, np.int8)


@pytest.mark.parametrize(
    ("change", "column", "value", "message"),
    [
        ({"account_id": "ZZ9"}, "account_id", "ZZ9", "is not an account in the portfolio"),
        ({"channel": "carrier_pigeon"}, "channel", "carrier_pigeon", "unknown channel"),
        ({"channel": "none"}, "channel", "none", "unknown channel"),
        ({"outcome": "happy"}, "outcome", "happy", "unknown outcome"),
        ({"timestamp_utc": "2026-03-02 15:04"}, "timestamp_utc", "2026-03-02 15:04", "ISO 8601"),
        (
            {"timestamp_utc": "2026-03-02T15:04:05"},
            "timestamp_utc",
            "2026-03-02T15:04:05",
            "Z or an offset",
        ),
        ({"timestamp_utc": "2026-02-30T15:04Z"}, "timestamp_utc", "2026-02-30T15:04Z", "ISO 8601"),
        ({"timestamp_utc": "yesterday"}, "timestamp_utc", "yesterday", "ISO 8601"),
        ({"conversation": "yes"}, "conversation", "yes", "must be true, false, 1 or 0"),
    ],
)
def test_history_bad_cells(
    tmp_path: Path, ext: str, change: dict[str, str], column: str, value: str, message: str
) -> None:
    p = small_portfolio(tmp_path)
    rows = [contact("A0"), {**contact("A1"), **change}, contact("A2")]
    path = write_rows(tmp_path / f"history.{ext}", rows)
    [problem] = problems_of(path, tables.load_history, p)
    assert (problem.file, problem.row, problem.column, problem.value) == (
        str(path),
        2,
        column,
        value,
    )
    assert message in problem.message


def test_history_missing_column_and_several_problems(tmp_path: Path) -> None:
    p = small_portfolio(tmp_path)
    rows = [contact("nobody", outcome="meh"), contact("A1")]
    path = write_rows(
        tmp_path / "h.csv", rows, ["account_id", "timestamp_utc", "channel", "outcome"]
    )
    found = problems_of(path, tables.load_history, p)
    assert [(q.row, q.column) for q in found] == [
        (None, "conversation"),
        (1, "account_id"),
        (1, "outcome"),
    ]


def test_history_parquet_timestamps(tmp_path: Path) -> None:
    p = small_portfolio(tmp_path)
    instant = dt.datetime(2026, 11, 1, 5, 30, tzinfo=dt.UTC)
    for kind in (
        pa.timestamp("ms", tz="UTC"),
        pa.timestamp("us", tz="Asia/Tokyo"),
        pa.timestamp("ns"),
    ):
        naive = kind.tz is None
        stamp = instant.replace(tzinfo=None) if naive else instant
        table = pa.table(
            {
                "account_id": ["A0"],
                "timestamp_utc": pa.array([stamp], type=kind),
                "channel": ["voice_bot"],
                "outcome": ["voicemail"],
                "conversation": [False],
            }
        )
        path = tmp_path / "h.parquet"
        pq.write_table(table, path)
        if naive:  # a naive timestamp is refused, not taken as UTC
            with pytest.raises(tables.InputError, match="without a time zone"):
                tables.load_history(path, p)
            continue
        h = tables.load_history(path, p)
        assert (h.local_day[0], h.local_hour[0]) == (day_number(dt.date(2026, 11, 1)), 1), kind


@pytest.mark.parametrize(
    ("stamp", "day", "hour"),
    [
        ("2026-11-01T05:30:00Z", dt.date(2026, 11, 1), 1),  # 01:30 EDT, first pass of hour 1
        ("2026-11-01T06:30:00Z", dt.date(2026, 11, 1), 1),  # 01:30 EST, second pass
        ("2026-11-01T07:30:00Z", dt.date(2026, 11, 1), 2),
        ("2026-03-08T06:30:00Z", dt.date(2026, 3, 8), 1),  # 01:30 EST
        ("2026-03-08T07:30:00Z", dt.date(2026, 3, 8), 3),  # 03:30 EDT: 02:xx does not exist
        ("2026-03-08T04:59:59Z", dt.date(2026, 3, 7), 23),
    ],
)
def test_dst_local_day_and_hour(tmp_path: Path, stamp: str, day: dt.date, hour: int) -> None:
    p = small_portfolio(tmp_path)
    assert p.timezones[p.timezone[0]] == NY
    h = tables.load_history(write_rows(tmp_path / "h.csv", [contact("A0", timestamp_utc=stamp)]), p)
    assert (h.local_day[0], h.local_hour[0]) == (day_number(day), hour)


# --------------------------------------------------------------------------- round trips
def generated_portfolio(n: int = 200) -> Portfolio:
    rng = np.random.default_rng(7)
    zones = ("America/Chicago", NY, "Asia/Shanghai", "Europe/London")
    risk = np.round(rng.random(n), 4)
    risk[::5] = np.nan
    promise = np.full(n, -1, dtype=np.int32)
    promise[::7] = day_number(dt.date(2026, 3, 1)) + np.arange(len(promise[::7]), dtype=np.int32)
    return Portfolio(
        account_id=np.array([f"ID-{i:05d}" for i in range(n)], dtype=object),
        product=rng.integers(0, 3, n).astype(np.int16),
        products=("bnpl", "card", "personal_loan"),
        balance=np.round(rng.lognormal(7, 1, n), 2) + rng.random(n) / 3,  # full precision
        amount_due=np.round(rng.random(n) * 100, 2),
        dpd=rng.integers(0, 181, n).astype(np.int32),
        timezone=rng.integers(0, len(zones), n).astype(np.int16),
        timezones=zones,
        **{name: rng.random(n) < 0.5 for name in FLAG_COLUMNS},
        risk_score=risk,
        promise_due_day=promise,
        promise_amount=np.where(promise >= 0, 25.5, 0.0),
        segment_label=np.array(["", "a, b", 'say "hi"'] * (n // 3) + [""] * (n % 3), dtype=object),
    )


def assert_same_portfolio(a: Portfolio, b: Portfolio) -> None:
    for f in dataclasses.fields(Portfolio):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype, f.name
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f.name
        else:
            assert x == y, f.name


def test_portfolio_round_trip(tmp_path: Path, ext: str) -> None:
    p = generated_portfolio()
    path = tmp_path / f"out.{ext}"
    tables.write_portfolio(p, path)
    assert tables.read_table(path).column_names == HEADER
    assert_same_portfolio(p, tables.load_portfolio(path))


def test_portfolio_parquet_schema(tmp_path: Path) -> None:
    tables.write_portfolio(generated_portfolio(10), tmp_path / "p.parquet")
    schema = pq.read_schema(tmp_path / "p.parquet")
    assert schema.names == HEADER
    assert schema.field("promise_due_date").type == pa.date32()
    assert all(schema.field(name).type == pa.bool_() for name in FLAG_COLUMNS)


def test_history_round_trip(tmp_path: Path, ext: str) -> None:
    p = generated_portfolio()
    rng = np.random.default_rng(3)
    m = 500
    first = day_number(dt.date(2026, 2, 20))  # spans the US spring-forward day
    local_day = rng.integers(first, first + 20, m)
    local_hour = rng.choice([0, 1, 3, 8, 12, 20, 23], m).astype(np.int8)  # 02:xx can not round trip
    history = History(
        account=rng.integers(0, p.n, m),
        local_day=local_day,
        local_hour=local_hour,
        channel=rng.integers(0, len(CHANNELS), m).astype(np.int8),
        outcome=rng.integers(0, len(OUTCOMES), m).astype(np.int8),
        conversation=rng.random(m) < 0.3,
    )
    path = tmp_path / f"history.{ext}"
    tables.write_history(history, p, path)
    back = tables.load_history(path, p)
    # Loading sorts by (account, instant), file order within ties: a stable sort of the input.
    order = np.lexsort((history.local_hour, history.local_day, history.account))
    for name in ("account", "local_day", "local_hour", "channel", "outcome", "conversation"):
        assert np.array_equal(getattr(back, name), getattr(history, name)[order]), name


def test_history_write_uses_local_hour_start(tmp_path: Path) -> None:
    p = small_portfolio(tmp_path)  # A0 is in New York
    history = History(
        account=np.array([0, 0]),
        local_day=np.array([day_number(dt.date(2026, 11, 1)), day_number(dt.date(2026, 3, 8))]),
        local_hour=np.array([1, 3], dtype=np.int8),
        channel=np.array([Channel.SMS, Channel.EMAIL], dtype=np.int8),
        outcome=np.array([Outcome.DELIVERED, Outcome.DELIVERED], dtype=np.int8),
        conversation=np.array([False, False]),
    )
    tables.write_history(history, p, tmp_path / "h.csv")
    stamps = tables.read_table(tmp_path / "h.csv").column("timestamp_utc").to_pylist()
    assert stamps == [
        "2026-11-01T05:00:00Z",
        "2026-03-08T07:00:00Z",
    ]  # EDT first pass; EDT after gap


# --------------------------------------------------------------------------- atomic writes
def test_write_leaves_nothing_when_the_writer_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(table: pa.Table, where: Any, **kwargs: Any) -> None:
        Path(where).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken)
    target = tmp_path / "portfolio.parquet"
    with pytest.raises(OSError, match="disk full"):
        tables.write_portfolio(generated_portfolio(5), target)
    assert list(tmp_path.iterdir()) == []

    target.write_bytes(b"previous version")
    with pytest.raises(OSError, match="disk full"):
        tables.write_history(History.empty(), generated_portfolio(5), target)
    assert list(tmp_path.iterdir()) == [target] and target.read_bytes() == b"previous version"


def test_write_unknown_extension_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown file extension"):
        tables.write_portfolio(generated_portfolio(5), tmp_path / "p.xlsx")
    assert list(tmp_path.iterdir()) == []


def test_parse_falls_back_to_finding_values_the_cast_rejects() -> None:
    text = pa.array(["2026-02-30", "2026-02-28", "x"])
    values, bad = tables._parse(text, tables._DATE_RE, pa.date32(), "1970-01-01")
    assert bad.tolist() == [True, False, True]
    assert values.to_pylist() == [dt.date(1970, 1, 1), dt.date(2026, 2, 28), dt.date(1970, 1, 1)]


def test_history_for_accounts_keeps_and_renumbers_the_listed_rows() -> None:
    history = History(
        account=np.array([0, 2, 1, 2, 3], dtype=np.int64),
        local_day=np.arange(5, dtype=np.int64),
        local_hour=np.full(5, 9, dtype=np.int8),
        channel=np.arange(5, dtype=np.int8),
        outcome=np.zeros(5, dtype=np.int8),
        conversation=np.array([True, False, True, False, True]),
    )
    subset = history.for_accounts(np.array([2, 0]), n_accounts=4)
    np.testing.assert_array_equal(subset.account, [1, 0, 0])
    np.testing.assert_array_equal(subset.local_day, [0, 1, 3])
    np.testing.assert_array_equal(subset.conversation, [True, False, False])
