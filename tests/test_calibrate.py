"""``collsim calibrate``: targets files, measurement machinery, CRN pairing, end to end.

Nothing here asserts that a band passes (the model is being recalibrated): the tests
check that the machinery measures what it says, on hand-made ledgers and on
quantities computed independently.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from collsim.cli import app
from collsim.config import ConfigError, bundled_scenarios, load_scenario
from collsim.evaluation.calibrate import (
    HOUR_SPREAD_MIN_ACCOUNTS,
    MEASURES,
    Arm,
    CalibrationSettings,
    cross_fit_ratio,
    default_champion_days,
    effect_subset,
    experiment_scenario,
    measure_all,
    paired_effect,
    plan_cure_redefaults,
    run_experiment,
)
from collsim.evaluation.calibration_targets import METRICS, Target, TargetsFile, load_targets
from collsim.ledger import COLUMNS, EVENT
from collsim.metrics import kpis
from collsim.policies.champion import TieredChampion
from collsim.sim import Simulation
from collsim.vocab import Channel, Outcome

ACCOUNTS, DAYS = 1_500, 40
runner = CliRunner()


# ---------------------------------------------------------------------------- targets files
@pytest.mark.parametrize("scenario", bundled_scenarios())
def test_every_bundled_scenario_has_valid_targets(scenario: str) -> None:
    targets = load_targets(scenario)
    assert targets.scenario == scenario
    assert {t.metric for t in targets.targets} <= set(MEASURES)
    segments = {s.name for s in load_scenario(scenario).behaviour.segments}
    assert all(t.segment in segments for t in targets.targets if t.segment is not None)


def test_every_metric_has_a_measure() -> None:
    assert set(METRICS) == set(MEASURES)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


BAD_FILES = {
    "unknown metric": (
        "scenario: default\ntargets:\n  - {id: a, metric: cure_rate, band: [0, 1], "
        "source: s, trust: H}\n",
        "unknown metric 'cure_rate'",
    ),
    "band and expect": (
        "scenario: default\ntargets:\n  - {id: a, metric: cure_30d.no_contact, band: [0, 1], "
        "expect: yes, source: s, trust: H}\n",
        "give exactly one of band or expect",
    ),
    "reversed band": (
        "scenario: default\ntargets:\n  - {id: a, metric: cure_30d.no_contact, "
        "band: [0.5, 0.1], source: s, trust: H}\n",
        "band low 0.5 is above high 0.1",
    ),
    "bad trust": (
        "scenario: default\ntargets:\n  - {id: a, metric: cure_30d.no_contact, band: [0, 1], "
        "source: s, trust: high}\n",
        "targets.0.trust",
    ),
    "unknown key": (
        "scenario: default\ntargets:\n  - {id: a, metric: cure_30d.no_contact, band: [0, 1], "
        "source: s, trust: H, colour: red}\n",
        "targets.0.colour",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_targets_file_gives_a_clear_error(tmp_path: Path, case: str) -> None:
    text, expected = BAD_FILES[case]
    path = _write(tmp_path / "targets.yaml", text)
    with pytest.raises(ConfigError, match="targets.yaml") as info:
        load_targets(path)
    assert expected in str(info.value)


def test_the_cli_reports_a_bad_targets_file_on_stderr_with_exit_2(tmp_path: Path) -> None:
    text, expected = BAD_FILES["unknown metric"]
    path = _write(tmp_path / "targets.yaml", text)
    result = runner.invoke(app, ["calibrate", "--targets", str(path), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert expected in result.output
    assert not (tmp_path / "calibration.json").exists()


def test_an_unknown_segment_is_refused_before_running(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "t.yaml",
        "scenario: default\ntargets:\n  - {id: a, metric: cure_90d.champion, segment: rich, "
        "band: [0, 1], source: s, trust: H}\n",
    )
    result = runner.invoke(app, ["calibrate", "--targets", str(path), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown segment 'rich'" in result.output


# ---------------------------------------------------------------------------- hand-made ledgers
def make_arm(
    n: int, events: list[dict[str, Any]], name: str = "champion", days: int = 60, **extra: Any
) -> Arm:
    """An Arm from hand-written ledger rows (missing columns take the ledger defaults)."""
    defaults = {"hour": -1, "channel": -1, "outcome": -1, "bucket": -1, "rule": -1}
    cols = {
        col: np.array([e.get(col, defaults.get(col, 0)) for e in events], dtype=dtype)
        for col, dtype in COLUMNS.items()
        if col != "event"
    }
    cols["event"] = np.array([EVENT[e["event"]] for e in events], dtype=np.int8)
    cols["day"] = cols["day"].astype(np.int64)
    fields: dict[str, Any] = {
        "start_dpd": np.full(n, 10),
        "start_due": np.full(n, 100.0),
        "segment": np.zeros(n, dtype=np.int64),
        "segments": ("a", "b"),
        "operating_hours": (8, 9),
    }
    fields.update(extra)
    return Arm(name=name, days=days, cols=cols, **fields)


def _target(metric: str, **fields: Any) -> Target:
    data = {"id": "t", "metric": metric, "band": [0.0, 1.0], "source": "s", "trust": "H"}
    return Target.model_validate({**data, **fields})


def _measure(target: Target, runs: list[dict[str, Arm]]) -> Any:
    return measure_all(TargetsFile(scenario="x", targets=[target]), runs, seed=0)[0][1]


def test_cure_share_counts_accounts_cured_within_the_window_in_the_dpd_range() -> None:
    n = 40
    start_dpd = np.where(np.arange(n) < 30, 10, 45)  # 30 accounts at 1-30 DPD, 10 at 31-60
    events = [{"event": "cure", "day": 5, "account": a} for a in range(9)]  # cured in time
    events += [{"event": "cure", "day": 30, "account": a} for a in range(9, 15)]  # too late
    events += [{"event": "cure", "day": 1, "account": a} for a in range(30, 40)]  # other bucket
    events += [{"event": "cure", "day": 29, "account": 0}]  # cured twice: counts once
    arm = make_arm(n, events, name="no_contact", start_dpd=start_dpd)
    target = _target("cure_30d.no_contact", start_dpd=[1, 30])
    measured = _measure(target, [{"no_contact": arm}])
    assert measured.value == pytest.approx(9 / 30)
    assert measured.n == 30
    assert measured.low <= measured.value <= measured.high


def test_effect_subsets_follow_the_day0_outcome() -> None:
    n = 6
    outcomes = [Outcome.PROMISE_TO_PAY, Outcome.RIGHT_PARTY, Outcome.NO_ANSWER, Outcome.VOICEMAIL]
    events = [
        {"event": "attempt", "day": 0, "account": a, "channel": Channel.AGENT_CALL, "outcome": o}
        for a, o in enumerate(outcomes)
    ]
    events.append(  # a wrong party is neither a conversation nor voicemail/no answer
        {"event": "attempt", "day": 0, "account": 4, "channel": 0, "outcome": Outcome.WRONG_PARTY}
    )
    call = make_arm(n, events, name="one_call")
    assert effect_subset("effect.conversation", call).tolist() == [1, 1, 0, 0, 0, 0]
    assert effect_subset("effect.no_answer", call).tolist() == [0, 0, 1, 1, 0, 0]
    sms = [
        {"event": "attempt", "day": 0, "account": a, "channel": Channel.SMS, "outcome": o}
        for a, o in ((0, Outcome.DELIVERED), (1, Outcome.NOT_DELIVERED), (2, Outcome.DELIVERED))
    ]
    assert effect_subset("effect.sms", make_arm(n, sms)).tolist() == [1, 0, 1, 0, 0, 0]


def test_paired_effect_is_the_difference_of_cures_on_the_same_accounts() -> None:
    n = 30
    control = make_arm(n, [{"event": "cure", "day": 3, "account": a} for a in range(10)])
    treated_events = [{"event": "cure", "day": 3, "account": a} for a in range(5, 25)]
    treated = make_arm(n, treated_events)
    subset = np.arange(n) < 20
    diff = paired_effect(treated, control, subset, 30)
    assert diff.sum() == 10 - 5  # accounts 10-19 gained, 0-4 lost
    with pytest.raises(RuntimeError, match="same accounts"):
        paired_effect(make_arm(n, [], start_dpd=np.full(n, 50)), control, subset, 30)


def test_hour_ratio_is_best_over_worst_answer_rate() -> None:
    n = 60  # every account: 10 calls at 8h (2 answered), 10 at 9h (3 answered)
    events = []
    for account in range(n):
        for k in range(20):
            hour, answered = (8, k < 2) if k < 10 else (9, k < 13)
            outcome = Outcome.WRONG_PARTY if answered else Outcome.NO_ANSWER
            events.append(
                {
                    "event": "attempt",
                    "day": k,
                    "account": account,
                    "channel": 0,
                    "hour": hour,
                    "outcome": outcome,
                }
            )
    arm = make_arm(n, events, name="hour_spread", days=20)
    measured = _measure(_target("answer_ratio.best_worst_hour"), [{"hour_spread": arm}])
    assert measured.value == pytest.approx(1.5)
    assert measured.low == pytest.approx(1.5) and measured.high == pytest.approx(1.5)


def test_cross_fitting_removes_the_bias_of_picking_the_extreme_hours() -> None:
    rng = np.random.default_rng(2024)
    n, hours = 3_000, 13
    attempts = np.zeros((n, hours))
    attempts[np.arange(n), rng.integers(hours, size=n)] = 1.0
    answers = attempts * (rng.random((n, 1)) < 0.12)  # the same 12% at every hour
    rate = answers.sum(axis=0) / attempts.sum(axis=0)
    half = rng.random(n) < 0.5
    cross = cross_fit_ratio(attempts, answers, half, np.ones((1, n)))[0]
    assert rate.max() / rate.min() > 1.4  # the plain ratio sees a spread that is not there
    assert abs(cross - 1.0) < 0.25


def test_rolls_within_30_days_of_accounts_starting_in_the_bucket() -> None:
    n = 60
    start_dpd = np.where(np.arange(n) < 30, 10, 40)
    events = [{"event": "roll", "day": 20, "account": a, "bucket": 2} for a in range(6)]
    events += [{"event": "roll", "day": 30, "account": a, "bucket": 2} for a in range(6, 12)]
    events += [{"event": "roll", "day": 10, "account": a, "bucket": 3} for a in range(30, 54)]
    arm = make_arm(n, events, start_dpd=start_dpd)
    runs = [{"champion": arm}]
    assert _measure(_target("roll_rate_30d.1-30"), runs).value == pytest.approx(6 / 30)
    assert _measure(_target("roll_rate_30d.31-60"), runs).value == pytest.approx(24 / 30)
    shape = _measure(_target("roll_shape.1-30_below_31-60", band=None, expect=True), runs)
    assert shape.value == pytest.approx(24 / 30 - 6 / 30)


def test_redefaults_count_plan_cures_with_full_follow_up(monkeypatch: pytest.MonkeyPatch) -> None:
    if "redefault" not in EVENT:  # the lead's ledger event; measured the same way once it exists
        monkeypatch.setitem(EVENT, "redefault", 99)
    events = []
    for account, cure_day in ((0, 10), (1, 10), (2, 10), (3, 150)):
        events.append({"event": "plan_completed", "day": cure_day, "account": account})
        events.append({"event": "cure", "day": cure_day, "account": account})
    events.append({"event": "cure", "day": 12, "account": 4})  # no plan: not a plan cure
    events.append({"event": "redefault", "day": 100, "account": 0})  # within 180 days
    events.append({"event": "redefault", "day": 195, "account": 1})  # 185 days later
    events.append({"event": "redefault", "day": 160, "account": 3})  # cure not followed
    events.append({"event": "redefault", "day": 50, "account": 4})
    followed, redefaulted = plan_cure_redefaults(make_arm(5, events, days=200), 180)
    assert followed.tolist() == [True, True, True, False]
    assert redefaulted.tolist() == [True, False, False, True]
    too_few = _measure(_target("redefault_180d.plan_cure"), [{"champion": make_arm(5, events)}])
    assert too_few.value is None and too_few.note.startswith("not measurable: 0 of 4 plan cures")


def test_champion_rates_ignore_days_beyond_the_rate_window() -> None:
    n = 30
    events = [
        {"event": "attempt", "day": day, "account": a, "channel": 0, "outcome": outcome}
        for a in range(n)
        for day, outcome in ((1, Outcome.RIGHT_PARTY), (2, Outcome.NO_ANSWER), (95, 0), (96, 0))
    ]
    arm = make_arm(n, events, days=200, rate_days=90)
    measured = _measure(_target("rpc_per_attempt.agent_call"), [{"champion": arm}])
    assert measured.value == pytest.approx(0.5)


def test_the_champion_runs_long_enough_for_redefault_once_the_event_exists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario = load_scenario("default")
    targets = load_targets("default")
    short = TargetsFile(scenario="default", targets=targets.targets[:1])
    monkeypatch.delitem(EVENT, "redefault", raising=False)
    assert default_champion_days(scenario, targets, 60) == scenario.sim.days
    monkeypatch.setitem(EVENT, "redefault", 99)
    assert default_champion_days(scenario, targets, 60) >= 180 + 30
    assert default_champion_days(scenario, short, 120) == 120


def test_collection_rate_caps_each_account_at_its_amount_due() -> None:
    n = 30
    events = [{"event": "payment", "day": 2, "account": a, "amount": 50.0} for a in range(20)]
    events += [{"event": "payment", "day": 2, "account": 0, "amount": 500.0}]  # capped at 100
    events += [{"event": "payment", "day": 31, "account": 25, "amount": 100.0}]  # too late
    arm = make_arm(n, events)
    measured = _measure(_target("collection_rate_30d.champion"), [{"champion": arm}])
    assert measured.value == pytest.approx((100.0 + 19 * 50.0) / (30 * 100.0))


# ---------------------------------------------------------------------------- simulated runs
@pytest.fixture(scope="module")
def scenario() -> Any:
    return load_scenario("default")


def test_rpc_and_promise_rates_match_the_kpis_of_the_champion_ledger(scenario: Any) -> None:
    sim = Simulation(scenario, 3, n_accounts=800)
    sim.run(TieredChampion(scenario.champion), days=40)
    values = kpis(sim.ledger)
    cols = dict(sim.ledger.columns())
    cols["day"] = cols["day"].astype(np.int64) - sim.first_day
    runs = [{"champion": dataclasses.replace(make_arm(800, []), cols=cols)}]
    rpc = _measure(_target("rpc_per_attempt.agent_call"), runs)
    promise = _measure(_target("promise_per_rpc.agent_call"), runs)
    assert rpc.value == pytest.approx(values["rpc_rate.agent_call"], rel=1e-12)
    assert promise.value == pytest.approx(values["ptp_rate.agent_call"], rel=1e-12)


def test_no_contact_arm_is_identical_across_runs_and_its_self_effect_is_zero(
    scenario: Any,
) -> None:
    first = run_experiment("no_contact", scenario, 600, 5, 30)
    again = run_experiment("no_contact", scenario, 600, 5, 30)
    assert np.array_equal(first.first_day("cure"), again.first_day("cure"))
    everyone = np.ones(600, dtype=bool)
    assert np.all(paired_effect(again, first, everyone, 30) == 0.0)


def test_accounts_the_one_touch_run_did_not_contact_live_exactly_as_without_contact(
    scenario: Any,
) -> None:
    control = run_experiment("no_contact", scenario, 600, 5, 30)
    treated = run_experiment("one_sms", scenario, 600, 5, 30)
    attempts = treated.events("attempt")
    contacted = np.zeros(600, dtype=bool)
    contacted[treated.cols["account"][attempts]] = True
    assert 0 < contacted.sum() < 600
    assert np.all(treated.cols["day"][attempts] == 0)  # one touch, day 0 only
    assert np.bincount(treated.cols["account"][attempts]).max() == 1
    same = treated.first_day("cure")[~contacted] == control.first_day("cure")[~contacted]
    assert same.all()


def test_experiment_scenario_makes_every_planned_call_once(scenario: Any) -> None:
    arm = run_experiment("one_call", scenario, 600, 2, 2)
    assert not arm.events("overflow").any()
    calls = arm.events("attempt") & (arm.cols["channel"] == Channel.AGENT_CALL)
    assert np.bincount(arm.cols["account"][calls]).max() == 1  # no redial
    sized = experiment_scenario(scenario, 600)
    assert sized.sim.max_redials == 0 and sized.capacity.channel_budgets == {}


def test_the_hour_spread_run_is_large_unless_told() -> None:
    settings = CalibrationSettings(n_accounts=1_000, days=30, champion_days=30, seeds=(0,))
    assert settings.accounts_of("one_call") == 1_000
    assert settings.accounts_of("hour_spread") == HOUR_SPREAD_MIN_ACCOUNTS
    assert dataclasses.replace(settings, hour_accounts=500).accounts_of("hour_spread") == 500


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    outs = []
    for name in ("first", "second"):
        out = tmp_path_factory.mktemp(name)
        args = ["calibrate", "--accounts", str(ACCOUNTS), "--days", str(DAYS)]
        args += ["--champion-days", str(DAYS), "--hour-accounts", "3000"]
        args += ["--seed", "7", "--out", str(out)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        outs.append(out)
    return outs


def test_end_to_end_writes_valid_json_and_png(two_runs: list[Path]) -> None:
    document = json.loads((two_runs[0] / "calibration.json").read_text())
    ids = [t.id for t in load_targets("default").targets]
    assert [t["id"] for t in document["targets"]] == ids
    assert document["accounts"] == ACCOUNTS and document["seeds"] == [7]
    assert document["hour_accounts"] == 3000
    assert document["experiments"]["one_call"]["overflow"] == 0
    for row in document["targets"]:
        if row["value"] is None:
            assert row["pass"] is None and row["note"].startswith("not measurable")
        else:
            low, high = row["ci95"]
            assert low <= high  # a percentile interval need not contain a biased point (max/min)
            assert isinstance(row["pass"], bool)
    hardship = next(r for r in document["targets"] if r["id"] == "hardship_cure90")
    assert hardship["value"] is None  # a 40-day champion cannot measure a 90-day cure
    png = (two_runs[0] / "calibration.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_same_seed_gives_identical_json(two_runs: list[Path]) -> None:
    first, second = (p / "calibration.json" for p in two_runs)
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize(("band", "code"), [("[0.0, 1.0]", 0), ("[2.0, 3.0]", 1)])
def test_strict_exits_1_only_when_a_band_fails(tmp_path: Path, band: str, code: int) -> None:
    path = _write(
        tmp_path / "t.yaml",
        "scenario: default\ntargets:\n  - {id: a, metric: cure_30d.no_contact, "
        f"band: {band}, source: s, trust: H}}\n",
    )
    args = ["calibrate", "--targets", str(path), "--accounts", "300", "--days", "30"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path), "--strict"])
    assert result.exit_code == code, result.output
    loose = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert loose.exit_code == 0
