"""Issue 17: the batch contract under a hostile or careless operator.

Each test is one attack; the documented behaviour is a refusal with exit 2 and
nothing written, or exit 1 naming the real rule.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import collsim.export.publish as publish
from collsim.cli import main
from collsim.compliance.testing import make_history, make_portfolio
from collsim.config import dump_yaml, load_scenario
from collsim.export.artifact import manifest_sum_line
from collsim.export.commands import export_policy, make_plan
from collsim.export.reader import PlanError, manifest_path, read_plan
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
    """A valid Parquet portfolio of 40 accounts, a history and the default capacity."""
    portfolio = make_portfolio(40, timezones=("America/New_York", "America/Chicago"))
    portfolio.dpd[:] = np.arange(40) * 3
    day = day_number(dt.date.fromisoformat(DATE))
    history = make_history([0, 2], [day - 2, day - 1], [2, 0], outcome=[3, 0])
    folder = tmp_path / "in"
    paths = {
        "portfolio": folder / "portfolio.parquet",
        "history": folder / "history.parquet",
        "capacity": folder / "capacity.yaml",
    }
    write_portfolio(portfolio, paths["portfolio"])
    write_history(history, portfolio, paths["history"])
    dump_yaml(load_scenario("default").capacity, paths["capacity"])
    return paths


def _plan(artifact: Path, files: dict[str, Path], out: Path, **kwargs: object) -> int:
    args: dict[str, object] = {"date": DATE, "ruleset": "us_reg_f", **kwargs}
    return make_plan(artifact, **files, out=out, **args)  # type: ignore[arg-type]


def _argv(artifact: Path, files: dict[str, Path], out: Path, *more: str) -> list[str]:
    argv = ["plan", "--artifact", str(artifact), "--out", str(out)]
    for name, path in files.items():
        argv += [f"--{name}", str(path)]
    defaults = {"--date": DATE, "--ruleset": "us_reg_f"}
    for flag, value in defaults.items():
        if flag not in more:
            argv += [flag, value]
    return argv + list(more)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ----------------------------------------------------------------------- 1. inputs destroyed
@pytest.mark.parametrize("target", ["portfolio", "history", "capacity", "artifact_manifest"])
def test_out_that_is_an_input_is_refused(
    target: str,
    artifact: Path,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    art = tmp_path / "art"
    shutil.copytree(artifact, art)
    out = art / "manifest.json" if target == "artifact_manifest" else files[target]
    before = {**_snapshot(files["portfolio"].parent), **_snapshot(art)}
    assert _plan(art, files, out, force=True) == 2
    assert "would overwrite input" in capsys.readouterr().err
    assert {**_snapshot(files["portfolio"].parent), **_snapshot(art)} == before


def test_existing_file_needs_force(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan.parquet"
    out.write_bytes(b"somebody's file")
    assert _plan(artifact, files, out) == 2
    assert "pass --force" in capsys.readouterr().err
    assert out.read_bytes() == b"somebody's file"
    assert _plan(artifact, files, out, force=True) == 0
    assert read_plan(out).num_rows == 40
    assert _plan(artifact, files, out) == 2  # a published plan too
    assert _plan(artifact, files, out, force=True) == 0


def test_device_is_refused(
    artifact: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _plan(artifact, files, Path("/dev/null"), force=True) == 2
    assert "refused" in capsys.readouterr().err


def test_parquet_and_csv_plans_have_their_own_manifests(
    artifact: Path, files: dict[str, Path], tmp_path: Path
) -> None:
    parquet, csv = tmp_path / "plan.parquet", tmp_path / "plan.csv"
    assert _plan(artifact, files, parquet) == 0
    assert _plan(artifact, files, csv, csv=True) == 0
    assert manifest_path(parquet) != manifest_path(csv)
    assert read_plan(parquet).num_rows == read_plan(csv).num_rows == 40


# ----------------------------------------------------------------------- 6. atomic, lock
class Crash(BaseException):
    """A crash (like a kill): not an Exception, so no clean-up handler runs."""


@pytest.mark.parametrize("step", publish.STEPS)
def test_crash_at_any_step_keeps_a_consistent_pair(
    step: str,
    artifact: Path,
    files: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "plans" / "plan.parquet"

    def crash_at(name: str) -> None:
        if name == step:
            raise Crash(name)

    # First run crashes: either no plan at all, or a complete one.
    monkeypatch.setattr(publish, "crash_point", crash_at)
    with pytest.raises(Crash):
        _plan(artifact, files, out)
    if out.exists():  # a plan is visible only with its matching manifest
        assert read_plan(out).num_rows == 40
    monkeypatch.setattr(publish, "crash_point", lambda name: None)
    assert _plan(artifact, files, out, force=True) == 0
    good = read_plan(out)
    good_manifest = manifest_path(out).read_bytes()
    # A second run crashes: the previous good plan is still there, with its manifest,
    # unless the crash came after the new pair was published.
    monkeypatch.setattr(publish, "crash_point", crash_at)
    with pytest.raises(Crash):
        _plan(artifact, files, out, force=True, seed=7, holdout_share=0.5)
    after = read_plan(out)  # checks the manifest and the plan's checksum
    published = publish.STEPS.index(step) >= publish.STEPS.index("current_swapped")
    if not published:
        assert after.equals(good)
        assert manifest_path(out).read_bytes() == good_manifest
    # The next run cleans what the killed runs left behind.
    monkeypatch.setattr(publish, "crash_point", lambda name: None)
    assert _plan(artifact, files, out, force=True) == 0
    store = publish.store_of(out)
    leftovers = [p.name for p in out.parent.iterdir() if ".tmp-" in p.name]
    leftovers += [p.name for p in store.iterdir() if ".tmp-" in p.name]
    assert leftovers == []
    generations = [p for p in store.iterdir() if p.name.startswith("g-")]
    assert len(generations) <= 2  # the current one and the previous one


def test_temporaries_of_an_older_writer_are_cleaned(
    artifact: Path, files: dict[str, Path], tmp_path: Path
) -> None:
    old = [tmp_path / ".plan.parquet.k2j3h4.tmp", tmp_path / ".plan.parquet.manifest.json.x.tmp"]
    for path in old:
        path.write_bytes(b"half a plan")
    keep = tmp_path / ".other.parquet.abc.tmp"
    keep.write_bytes(b"not ours")
    assert _plan(artifact, files, tmp_path / "plan.parquet") == 0
    assert not any(p.exists() for p in old) and keep.exists()


def test_second_writer_fails_clearly(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan.parquet"
    store = publish.store_of(out)
    store.mkdir()
    fd = os.open(store / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another writer holds the lock
    try:
        assert _plan(artifact, files, out) == 2
    finally:
        os.close(fd)
    assert "another collsim run is writing this plan" in capsys.readouterr().err
    assert not out.exists()
    assert _plan(artifact, files, out) == 0


def test_plan_files_are_fsynced(
    artifact: Path, files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    out = tmp_path / "plan.parquet"
    assert _plan(artifact, files, out) == 0
    store = str(publish.store_of(out))
    for name in ("plan.parquet", "plan.parquet.manifest.json"):  # in its generation folder
        assert any(s.startswith(store) and s.endswith(f"/{name}") for s in synced), synced
    assert str(out.resolve().parent) in synced  # the generation folder
    assert store in synced and str(tmp_path) in synced  # the folders whose entries changed


# ----------------------------------------------------------------------- 5. exit codes
def _exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return int(exc.value.code or 0)


@pytest.mark.parametrize("date", ["1969-12-31", "1900-01-01", "9999-12-31", "2100-01-01"])
def test_dates_out_of_range_exit_2(
    date: str,
    artifact: Path,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "plan.parquet"
    assert _exit_code(_argv(artifact, files, out, "--date", date)) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: --date: {date!r} is outside 2000-01-01..2099-12-31"]
    assert not out.exists()


@pytest.mark.parametrize(
    ("errno_name", "text"),
    [("ENOSPC", "No space left on device"), ("EROFS", "Read-only file system")],
)
def test_full_or_read_only_disk_exits_2_and_keeps_nothing(
    errno_name: str,
    text: str,
    artifact: Path,
    files: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import errno

    import collsim.export.planfile as planfile

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(getattr(errno, errno_name), text, str(tmp_path / "plan.parquet"))

    monkeypatch.setattr(planfile, "_write_table", full)
    out = tmp_path / "plan.parquet"
    assert _exit_code(_argv(artifact, files, out)) == 2
    err = capsys.readouterr().err
    assert text in err and "Traceback" not in err
    assert not out.exists()
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["channel_budgets"].update(sms=1e29), "channel_budgets.sms"),
        (lambda c: c["agent_pools"][0].update(attempts_per_agent_hour=float("inf")),
         "attempts_per_agent_hour"),
        (lambda c: c.update(money_budget=float("nan")), "money_budget"),
        (lambda c: c["agent_pools"].append(dict(c["agent_pools"][0])), "pool names must be unique"),
    ],
    ids=["budget_1e29", "rate_inf", "money_nan", "duplicate_pool"],
)  # fmt: skip
def test_bad_capacity_numbers_exit_2(
    edit: object,
    message: str,
    artifact: Path,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import yaml

    data = yaml.safe_load(files["capacity"].read_text())
    edit(data)  # type: ignore[operator]
    files["capacity"].write_text(yaml.safe_dump(data))
    out = tmp_path / "plan.parquet"
    assert _exit_code(_argv(artifact, files, out)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_duplicate_yaml_key_exits_2(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = files["capacity"].read_text()
    files["capacity"].write_text(text + "money_budget: 5\nmoney_budget: 50000\n")
    assert _exit_code(_argv(artifact, files, tmp_path / "plan.parquet")) == 2
    assert "duplicate key 'money_budget'" in capsys.readouterr().err


def test_many_bad_rows_print_at_most_20_lines(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(files["portfolio"])
    bad = pa.array(np.full(table.num_rows, -1.0))
    table = table.set_column(table.schema.get_field_index("balance"), "balance", bad)
    pq.write_table(table, files["portfolio"])
    assert _exit_code(_argv(artifact, files, tmp_path / "plan.parquet")) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 21, err
    assert err[-1] == "error: ... and 20 more problem(s)"


def test_deeply_nested_artifact_manifest_exits_2(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    art = tmp_path / "art"
    shutil.copytree(artifact, art)
    _save_manifest_text(art, "[" * 100_000 + "]" * 100_000)  # with a matching checksum
    assert _exit_code(_argv(art, files, tmp_path / "plan.parquet")) == 2
    err = capsys.readouterr().err
    assert "manifest.json: not readable JSON" in err and "Traceback" not in err
    plan = tmp_path / "plan.parquet"
    assert _plan(artifact, files, plan) == 0
    manifest_path(plan).write_text("{" * 100_000)
    with pytest.raises(PlanError, match="manifest is not readable JSON"):
        read_plan(plan)


def test_manifest_json_is_valid(artifact: Path, files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "plan.parquet"
    assert _plan(artifact, files, out) == 0
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["rows"] == 40


# ----------------------------------------------------------------------- 2. rule set pinned
def test_ruleset_claiming_a_bundled_id_with_other_rules_is_refused(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = tmp_path / "fake.yaml"
    fake.write_text('id: us_reg_f\nversion: "2024-01"\nrules: []\n')
    out = tmp_path / "plan.parquet"
    assert _plan(artifact, files, out, ruleset=str(fake)) == 2
    assert "claims the bundled id 'us_reg_f'" in capsys.readouterr().err
    assert _plan(artifact, files, out, ruleset=str(fake), ruleset_override=True) == 2
    assert not out.exists()


def test_other_ruleset_than_the_artifact_needs_override(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan.parquet"
    assert _plan(artifact, files, out, ruleset="cn_gbt45251") == 2
    assert "--ruleset-override" in capsys.readouterr().err
    assert not out.exists()
    assert _exit_code(_argv(artifact, files, out, "--ruleset", "cn_gbt45251")) == 2
    assert _plan(artifact, files, out, ruleset="cn_gbt45251", ruleset_override=True) == 0
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["ruleset"]["id"] == "cn_gbt45251"
    assert manifest["ruleset_override"]["artifact_ruleset"] == "us_reg_f"


def test_manifest_pins_the_ruleset_content(
    artifact: Path, files: dict[str, Path], tmp_path: Path
) -> None:
    from collsim.compliance import load_ruleset

    out = tmp_path / "plan.parquet"
    assert _plan(artifact, files, out) == 0
    manifest = json.loads(manifest_path(out).read_text())
    bundled = load_ruleset("us_reg_f")
    assert manifest["ruleset"] == {
        "id": "us_reg_f",
        "version": bundled.version,
        "content_sha256": bundled.content_sha256,
    }
    assert manifest["ruleset_override"] is None
    copy = tmp_path / "same.yaml"  # the same rules under another id: the same content
    text = (Path(__file__).parents[1] / "collsim/compliance/rulesets/us_reg_f.yaml").read_text()
    copy.write_text(text.replace("id: us_reg_f\n", "id: my_rules\n", 1))
    assert load_ruleset(copy).content_sha256 == bundled.content_sha256
    assert _plan(artifact, files, tmp_path / "p2.parquet", ruleset=str(copy)) == 0


# ----------------------------------------------------------------------- 8. privacy
def test_reason_code_is_separate_and_restrictions_are_not_named(tmp_path: Path) -> None:
    from collsim.export.planfile import public_reason

    text, code = public_reason("preferred agent_call blocked by us_reg_f.cease", False)
    assert code == "blocked.restricted" and "cease" not in text
    assert public_reason("preferred sms blocked by cn.dispute", False)[1] == "blocked.restricted"
    text, code = public_reason("preferred agent_call blocked by us_reg_f.cease", True)
    assert code == "blocked.us_reg_f.cease" and text.endswith("us_reg_f.cease")
    assert public_reason("preferred sms blocked by us_reg_f.7in7", False)[1] == (
        "blocked.us_reg_f.7in7"
    )
    assert public_reason("tier late: agent_call", False)[1] == "tier.late"
    assert public_reason("holdout (control group); policy chose: tier late: sms", False)[1] == (
        "holdout"
    )


def test_plan_does_not_reveal_cease_or_dispute_without_memo_detail(
    artifact: Path, tmp_path: Path
) -> None:
    portfolio = make_portfolio(6, timezones=("America/New_York",))
    portfolio.dpd[:] = [5, 20, 40, 70, 100, 35]
    portfolio.cease_communication[1] = True
    portfolio.dispute_open[2] = True
    portfolio.promise_due_day[3] = day_number(dt.date.fromisoformat(DATE)) + 2
    files = {
        "portfolio": tmp_path / "portfolio.parquet",
        "history": tmp_path / "history.parquet",
        "capacity": tmp_path / "capacity.yaml",
    }
    write_portfolio(portfolio, files["portfolio"])
    write_history(make_history([], [], []), portfolio, files["history"])
    dump_yaml(load_scenario("default").capacity, files["capacity"])
    out = tmp_path / "plan.parquet"
    assert _plan(artifact, files, out) == 0
    table = read_plan(out)
    text = " ".join(table.column("memo").to_pylist() + table.column("reason").to_pylist())
    for word in ("cease", "dispute", "promise"):
        assert word not in text.lower()
    assert "blocked.restricted" in table.column("reason_code").to_pylist()
    assert json.loads(manifest_path(out).read_text())["memo_detail"] is False
    detailed = tmp_path / "detailed.parquet"
    assert _plan(artifact, files, detailed, memo_detail=True) == 0
    codes = read_plan(detailed).column("reason_code").to_pylist()
    assert "blocked.us_reg_f.cease" in codes
    assert json.loads(manifest_path(detailed).read_text())["memo_detail"] is True


# ----------------------------------------------------------------------- 7. CSV hygiene
def test_formula_cells_are_neutralised_in_csv_and_restored_by_read_plan(
    artifact: Path, tmp_path: Path
) -> None:
    import csv as csvlib

    portfolio = make_portfolio(3, timezones=("America/New_York",))
    portfolio.account_id[:] = ['=HYPERLINK("http://x","pay")', "+1", "A3"]
    portfolio.dpd[:] = [10, 20, 30]
    files = {
        "portfolio": tmp_path / "portfolio.parquet",
        "history": tmp_path / "history.parquet",
        "capacity": tmp_path / "capacity.yaml",
    }
    write_portfolio(portfolio, files["portfolio"])
    write_history(make_history([], [], []), portfolio, files["history"])
    dump_yaml(load_scenario("default").capacity, files["capacity"])
    out = tmp_path / "plan.csv"
    assert _plan(artifact, files, out, csv=True) == 0
    with out.open(newline="") as handle:
        rows = list(csvlib.reader(handle))
    column = rows[0].index("account_id")
    cells = [r[column] for r in rows[1:]]
    assert cells[:2] == ['\'=HYPERLINK("http://x","pay")', "'+1"]
    assert not any(cell[:1] in "=+-@" for row in rows[1:] for cell in row if cell)
    assert read_plan(out).column("account_id").to_pylist() == list(portfolio.account_id)


# ----------------------------------------------------------------------- 3. validate-plan
def _csv_plan(artifact: Path, files: dict[str, Path], tmp_path: Path) -> tuple[Path, list]:
    import csv as csvlib

    out = tmp_path / "plan.csv"
    assert _plan(artifact, files, out, csv=True) == 0
    copy = tmp_path / "edited.csv"  # an edited copy, as a careless operator would make
    shutil.copy(out, copy)
    with copy.open(newline="") as handle:
        rows = list(csvlib.reader(handle))
    return copy, rows


def _write_rows(path: Path, rows: list) -> None:
    import csv as csvlib

    with path.open("w", newline="") as handle:
        csvlib.writer(handle).writerows(rows)


def _first(rows: list, channel: str) -> int:
    c = rows[0].index("channel")
    return next(i for i, r in enumerate(rows[1:], 1) if r[c] == channel)


def _validate(plan: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> tuple:
    from collsim.export.commands import validate_plan_files

    capsys.readouterr()
    code = validate_plan_files(plan, **files, ruleset="us_reg_f")
    lines = capsys.readouterr().out.splitlines()
    return code, {tuple(line.split(", ")[:2]) for line in lines}


def test_validate_plan_accepts_the_written_plan(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan, _ = _csv_plan(artifact, files, tmp_path)
    assert _validate(plan, files, capsys) == (0, set())


def test_utc_window_at_23_local_is_the_hours_rule(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan, rows = _csv_plan(artifact, files, tmp_path)
    r = _first(rows, "voice_bot")
    head = rows[0]
    zone = rows[r][head.index("timezone")]
    assert zone == "America/New_York"  # EDT on 2026-03-09: 23:00 local = 03:00Z next day
    rows[r][head.index("window_start_utc")] = "2026-03-10T03:00:00Z"
    rows[r][head.index("window_end_utc")] = "2026-03-10T04:00:00Z"
    _write_rows(plan, rows)
    code, found = _validate(plan, files, capsys)
    account = rows[r][head.index("account_id")]
    assert code == 1
    assert (account, "plan.window_utc") in found
    rows[r][head.index("window_start_utc")] = "2026-03-09T02:00:00Z"  # 22:00 local on 03-08
    _write_rows(plan, rows)
    assert (account, "plan.window_utc") in _validate(plan, files, capsys)[1]
    # 22:00 local on the plan date: the dialler would call at 22:00
    rows[r][head.index("window_start_utc")] = "2026-03-10T02:00:00Z"
    _write_rows(plan, rows)
    assert (account, "us_reg_f.hours") in _validate(plan, files, capsys)[1]


def test_call_at_22_local_names_the_hours_rule(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan, rows = _csv_plan(artifact, files, tmp_path)
    r = _first(rows, "agent_call")
    head = rows[0]
    rows[r][head.index("slot_start_local")] = "22:00"
    rows[r][head.index("slot_end_local")] = "23:00"
    _write_rows(plan, rows)
    code, found = _validate(plan, files, capsys)
    account = rows[r][head.index("account_id")]
    assert code == 1 and (account, "us_reg_f.hours") in found
    assert (account, "plan.slot") not in found


def test_changed_timezone_slot_end_and_pool_are_violations(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan, rows = _csv_plan(artifact, files, tmp_path)
    head = rows[0]
    call = _first(rows, "agent_call")
    rows[call][head.index("timezone")] = "Asia/Tokyo"
    rows[call][head.index("agent_pool")] = "nobody"
    email = _first(rows, "voice_bot")
    rows[email][head.index("slot_end_local")] = "23:00"
    _write_rows(plan, rows)
    code, found = _validate(plan, files, capsys)
    call_id = rows[call][head.index("account_id")]
    email_id = rows[email][head.index("account_id")]
    assert code == 1
    assert {(call_id, "plan.timezone"), (call_id, "plan.agent_pool")} <= found
    assert (email_id, "plan.slot_end") in found
    assert (email_id, "us_reg_f.hours") in found  # the window would run to 23:00


def test_plan_with_half_its_rows_deleted_fails(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan, rows = _csv_plan(artifact, files, tmp_path)
    kept = rows[: 1 + (len(rows) - 1) // 2]
    _write_rows(plan, kept)
    code, found = _validate(plan, files, capsys)
    assert code == 1
    missing = [r[rows[0].index("account_id")] for r in rows[len(kept) :]]
    assert {(a, "plan.coverage") for a in missing} <= found


@pytest.mark.parametrize(("column", "value"), [("offer", "free_money"), ("variant", "shouty")])
def test_unknown_offer_or_variant_is_bad_input(
    column: str,
    value: str,
    artifact: Path,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from collsim.export.commands import validate_plan_files

    plan, rows = _csv_plan(artifact, files, tmp_path)
    rows[1][rows[0].index(column)] = value
    _write_rows(plan, rows)
    capsys.readouterr()
    assert validate_plan_files(plan, **files, ruleset="us_reg_f") == 2
    assert f'row 1, column {column}, value "{value}"' in capsys.readouterr().err


# ----------------------------------------------------------------------- 4. artifact binding
def _save_manifest_text(art: Path, text: str) -> None:
    """Rewrite an artifact's manifest and its checksum, as a hostile operator would."""
    (art / "manifest.json").write_text(text)
    (art / "manifest.json.sha256").write_text(manifest_sum_line(text.encode()))


def _edit_manifest(art: Path, edit: object) -> None:
    manifest = json.loads((art / "manifest.json").read_text())
    edit(manifest)  # type: ignore[operator]
    _save_manifest_text(art, json.dumps(manifest, indent=2))


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree_edited_with_checksums(m: dict, art: Path) -> None:
    for name in ("tree.json", "tree.yaml"):
        (art / name).write_text((art / name).read_text().replace("18", "19"))
        m["files"][name] = _sha(art / name)


ARTIFACT_ATTACKS = [
    ("tree edited, checksums recomputed", _tree_edited_with_checksums,
     "does not match the content"),
    ("forged id with a newline", lambda m, a: m.update(artifact_id="champion:x:0123456789ab\nA"),
     "is malformed"),
    ("forged well-formed id", lambda m, a: m.update(artifact_id="champion:x:0123456789ab"),
     "does not match the content"),
    ("missing artifact_id", lambda m, a: m.pop("artifact_id"), "artifact_id is missing"),
    ("missing cost", lambda m, a: m["cost_per_attempt"].pop("sms"),
     "cost_per_attempt.sms is missing"),
    ("NaN cost", lambda m, a: m["cost_per_attempt"].update(sms=float("nan")),
     "cost_per_attempt.sms nan is not a finite number"),
    ("missing operating hours", lambda m, a: m.pop("option_space"), "operating_hours"),
    ("missing ruleset pin", lambda m, a: m.pop("ruleset_sha256"), "ruleset_sha256 is missing"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "edit", "message"), ARTIFACT_ATTACKS, ids=[a[0] for a in ARTIFACT_ATTACKS]
)
def test_altered_artifact_is_refused(
    name: str,
    edit: object,
    message: str,
    artifact: Path,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    art = tmp_path / "art"
    shutil.copytree(artifact, art)
    _edit_manifest(art, lambda m: edit(m, art))  # type: ignore[operator]
    out = tmp_path / "plan.parquet"
    assert _exit_code(_argv(art, files, out)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not out.exists()


def test_manifest_is_covered_by_its_own_checksum(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    art = tmp_path / "art"
    shutil.copytree(artifact, art)
    manifest = json.loads((art / "manifest.json").read_text())
    manifest["cost_per_attempt"]["agent_call"] = 0.0
    (art / "manifest.json").write_text(json.dumps(manifest, indent=2))
    assert _plan(art, files, tmp_path / "plan.parquet") == 2
    assert "checksum mismatch with manifest.json.sha256" in capsys.readouterr().err
    (art / "manifest.json.sha256").unlink()
    assert _plan(art, files, tmp_path / "plan.parquet") == 2
    assert "manifest.json.sha256: missing" in capsys.readouterr().err


def test_symlink_in_artifact_is_refused(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    art = tmp_path / "art"
    shutil.copytree(artifact, art)
    outside = tmp_path / "elsewhere.json"
    shutil.copy(art / "tree.json", outside)  # same bytes: the checksum would match
    (art / "tree.json").unlink()
    (art / "tree.json").symlink_to(outside)
    assert _plan(art, files, tmp_path / "plan.parquet") == 2
    assert "tree.json: is a symbolic link" in capsys.readouterr().err


# ----------------------------------------------------------------------- 7. silent acceptances
def _portfolio_csv(tmp_path: Path, ids: list[str]) -> dict[str, Path]:
    portfolio = make_portfolio(len(ids), timezones=("America/New_York",))
    portfolio.account_id[:] = ids
    files = {
        "portfolio": tmp_path / "portfolio.csv",
        "history": tmp_path / "history.csv",
        "capacity": tmp_path / "capacity.yaml",
    }
    write_portfolio(portfolio, files["portfolio"])
    write_history(make_history([], [], []), portfolio, files["history"])
    dump_yaml(load_scenario("default").capacity, files["capacity"])
    return files


def test_ids_differing_only_by_spaces_are_duplicates(
    artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _portfolio_csv(tmp_path, ["A1", "A1  ", "B2"])
    assert _plan(artifact, files, tmp_path / "plan.parquet") == 2
    assert 'value "A1  ": duplicate account_id (first on row 1)' in capsys.readouterr().err


def test_ids_with_control_characters_are_refused(
    artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _portfolio_csv(tmp_path, ["A1", "B\x072", "C\x1b[31m"])
    assert _plan(artifact, files, tmp_path / "plan.parquet") == 2
    err = capsys.readouterr().err
    assert err.count("contains a control character") == 2


def test_naive_history_timestamps_are_refused(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(files["history"])
    i = table.schema.get_field_index("timestamp_utc")
    naive = table.column(i).cast(pa.timestamp("us"))
    pq.write_table(table.set_column(i, "timestamp_utc", naive), files["history"])
    assert _plan(artifact, files, tmp_path / "plan.parquet") == 2
    assert "without a time zone" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("stamp", "message"),
    [("2026-03-10T18:00:00Z", "is after the plan date 2026-03-09"),
     ("1999-12-31T12:00:00Z", "is before 2000-01-01")],
)  # fmt: skip
def test_history_outside_the_dates_is_refused(
    stamp: str,
    message: str,
    artifact: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = _portfolio_csv(tmp_path, ["A1", "A2"])
    files["history"].write_text(
        "account_id,timestamp_utc,channel,outcome,conversation\n"
        f"A1,2026-03-08T15:00:00Z,sms,delivered,false\nA2,{stamp},sms,delivered,false\n"
    )
    assert _plan(artifact, files, tmp_path / "plan.parquet") == 2
    err = capsys.readouterr().err
    assert f'row 2, column timestamp_utc, value "{stamp}": {message}' in err


def test_duplicate_keys_in_a_ruleset_are_refused(
    artifact: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text('id: mine\nid: us_reg_f\nversion: "1"\nextends: us_reg_f\nrules: []\n')
    assert _plan(artifact, files, tmp_path / "plan.parquet", ruleset=str(rules)) == 2
    assert "duplicate key 'id'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.set_column(1, "account_id", t.column(1).take([0] * t.num_rows)),
         "account_id is not unique"),
        (lambda t: _set(t, "channel", "fax"), "column channel: unknown value 'fax'"),
        (lambda t: _set(t, "variant", "shouty"), "column variant: unknown value 'shouty'"),
        (lambda t: _set(t, "memo", None), "column memo has 1 null(s) (first at row 1)"),
    ],
    ids=["duplicate_rows", "unknown_channel", "unknown_variant", "null_memo"],
)  # fmt: skip
def test_read_plan_checks_values_not_only_checksums(
    edit: object, message: str, artifact: Path, files: dict[str, Path], tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "plan.parquet"
    assert _plan(artifact, files, out) == 0
    real = out.resolve()
    table = edit(pq.read_table(real))  # type: ignore[operator]
    pq.write_table(table, real)
    manifest = json.loads(manifest_path(out).read_text())
    manifest["sha256"]["plan"] = _sha(real)  # a consistent but wrong pair
    manifest_path(out).write_text(json.dumps(manifest))
    with pytest.raises(PlanError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_plan(out)


def _set(table: object, name: str, value: object) -> object:
    import pyarrow as pa

    i = table.schema.get_field_index(name)  # type: ignore[attr-defined]
    column = table.column(i).to_pylist()  # type: ignore[attr-defined]
    column[0] = value
    return table.set_column(i, name, pa.array(column, pa.string()))  # type: ignore[attr-defined]


def test_reader_enumerations_match_the_vocabulary() -> None:
    from collsim.export import reader
    from collsim.vocab import CHANNELS, OFFERS, VARIANTS

    assert (*CHANNELS, "none") == reader.CHANNEL_VALUES
    assert reader.OFFER_VALUES == OFFERS and reader.VARIANT_VALUES == VARIANTS


def test_generate_says_why_it_wrote_fewer_accounts(tmp_path: Path) -> None:
    import subprocess
    import sys

    argv = ["generate", "--accounts", "300", "--history-days", "10", "--out", str(tmp_path)]
    env = {**os.environ, "COLUMNS": "300"}
    result = subprocess.run(
        [sys.executable, "-m", "collsim.cli", *argv], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    written = int(out.split("portfolio.parquet (")[1].split(" accounts")[0].replace(",", ""))
    assert written < 300
    assert f"{300 - written:,} of the 300 simulated accounts left collection" in out


# ----------------------------------------------------------------------- 9. optimised via CLI
def test_fit_value_model_refuses_bad_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _exit_code(["fit-value-model", "--out", str(tmp_path / "model.bin")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err
    (tmp_path / "model.onnx").write_bytes(b"x")
    assert _exit_code(["fit-value-model", "--out", str(tmp_path / "model.onnx")]) == 2
    assert "pass --force" in capsys.readouterr().err


@pytest.mark.slow
def test_optimised_policy_from_the_command_line_to_a_plan(
    files: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COLLSIM_CACHE", str(tmp_path / "cache"))
    small = ["--train-accounts", "500", "--train-days", "35", "--train-seeds", "1"]
    art = tmp_path / "optimised"
    assert _exit_code(["export", "--policy", "optimised", "--out", str(art), *small]) == 0
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["kind"] == "value_model" and manifest["name"] == "optimised"
    model = tmp_path / "model.onnx"  # the same model, as a file (loaded from the cache)
    assert _exit_code(["fit-value-model", "--out", str(model), *small]) == 0
    assert model.read_bytes() == (art / "model.onnx").read_bytes()
    out = tmp_path / "plan.parquet"
    assert _exit_code(_argv(art, files, out)) == 0
    table = read_plan(out)
    assert table.column("policy_id")[0].as_py() == manifest["artifact_id"]
    from collsim.export.commands import validate_plan_files

    assert validate_plan_files(out, **files, ruleset="us_reg_f") == 0


def test_a_writer_killed_between_steps_leaves_the_previous_plan(
    artifact: Path, files: dict[str, Path], tmp_path: Path
) -> None:
    import subprocess
    import sys

    out = tmp_path / "plan.parquet"
    assert _plan(artifact, files, out) == 0
    good = read_plan(out)
    script = (
        "import os, signal, sys\n"
        "import collsim.export.publish as publish\n"
        "from collsim.export.commands import make_plan\n"
        "def kill(step):\n"
        "    if step == 'generation_synced':\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "publish.crash_point = kill\n"
        "a = sys.argv[1:]\n"
        "make_plan(a[0], portfolio=a[1], history=a[2], capacity=a[3], date=a[4],\n"
        "          ruleset='us_reg_f', out=a[5], holdout_share=0.5, seed=3, force=True)\n"
    )
    store = publish.store_of(out)
    before = [p.name for p in store.iterdir() if p.name.startswith("g-")]
    args = [str(artifact), *(str(files[k]) for k in ("portfolio", "history", "capacity"))]
    killed = subprocess.run([sys.executable, "-c", script, *args, DATE, str(out)], check=False)
    assert killed.returncode == -9  # SIGKILL: no clean-up ran
    assert read_plan(out).equals(good)
    after = [p.name for p in store.iterdir() if p.name.startswith("g-")]
    assert len(after) == len(before) + 1  # the killed run's complete, unpublished generation
    assert _plan(artifact, files, out, force=True) == 0
    assert len([p for p in store.iterdir() if p.name.startswith("g-")]) <= 2
