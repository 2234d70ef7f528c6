"""Property: every plan make_plan writes passes validate_plan_files (rules and capacity).

Random portfolios and histories on DST days, with accounts near every rule boundary
(6-8 telephone attempts in the window, conversations on D-7..D, attempts on day D,
opt-outs, cease, disputes, missing consent/reach), random tight capacities and
money budgets, both rule sets, and champion and rl_onnx artifacts.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collsim.export import read_plan
from collsim.export.commands import export_policy, make_plan, validate_plan_files
from collsim.export.testing import tiny_rl_onnx
from collsim.features import FEATURE_NAMES
from collsim.history import History
from collsim.portfolio import FLAG_COLUMNS, Portfolio, day_number
from collsim.tables import write_history, write_portfolio
from collsim.vocab import N_CHANNELS, Outcome

ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Asia/Shanghai",
    "Europe/London",
)
DATES = (dt.date(2026, 3, 8), dt.date(2026, 11, 1), dt.date(2026, 3, 29), dt.date(2026, 3, 9))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("artifacts")
    out = []
    for scenario, hours in (("default", 13), ("cn_consumer_finance", 14)):
        out.append(root / f"champion_{scenario}")
        assert export_policy("champion", out[-1], scenario) == 0
        for seed in (0, 1):
            model = root / f"rl_{scenario}_{seed}.onnx"
            model.write_bytes(
                tiny_rl_onnx(len(FEATURE_NAMES), 1 + N_CHANNELS * hours, seed, seed == 1)
            )
            out.append(root / f"rl_{scenario}_{seed}")
            assert export_policy(f"rl_onnx:{model}", out[-1], scenario) == 0
    return out


def _portfolio(draw: st.DrawFn, n: int) -> Portfolio:
    flags = {
        name: np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        for name in FLAG_COLUMNS
    }
    for name in ("has_phone", "has_mobile", "consent_autodial"):
        flags[name] |= np.arange(n) % 3 == 0  # enough reachable accounts to contact
    risk = draw(st.lists(st.one_of(st.none(), st.floats(0, 1)), min_size=n, max_size=n))
    return Portfolio(
        account_id=np.array([f"X{i:04d}" for i in range(n)], dtype=object),
        product=np.zeros(n, dtype=np.int16),
        products=("card",),
        balance=np.array(draw(st.lists(st.floats(0, 20000), min_size=n, max_size=n))).round(2),
        amount_due=np.full(n, 50.0),
        dpd=np.array(draw(st.lists(st.integers(0, 200), min_size=n, max_size=n)), dtype=np.int32),
        timezone=np.array(
            draw(st.lists(st.integers(0, len(ZONES) - 1), min_size=n, max_size=n)), dtype=np.int16
        ),
        timezones=ZONES,
        risk_score=np.array([np.nan if r is None else r for r in risk]),
        promise_due_day=np.full(n, -1, dtype=np.int32),
        promise_amount=np.zeros(n),
        segment_label=np.full(n, "", dtype=object),
        **flags,
    )


def _history(draw: st.DrawFn, n: int, day: int) -> History:
    """Near-boundary contact patterns per account (see the module docstring)."""
    rows: list[tuple[int, int, int, int, int, bool]] = []
    for account in range(n):
        calls = draw(st.sampled_from([0, 2, 5, 6, 7, 8]))
        for i in range(calls):
            rows.append(
                (account, day - 6 + i % 7, 9 + i % 10, i % 2, int(Outcome.NO_ANSWER), False)
            )
        talk = draw(st.sampled_from([None, -7, -6, -1, 0]))
        if talk is not None:
            rows.append((account, day + talk, 10, 0, int(Outcome.RIGHT_PARTY), True))
        today = draw(st.integers(0, 7))  # attempts on day D (CN per-day limits)
        for i in range(today):
            rows.append((account, day, 8 + i, 1, int(Outcome.NO_ANSWER), i < 3 and today > 5))
        if draw(st.booleans()):
            rows.append(
                (account, day - 3, 12, draw(st.integers(2, 7)), int(Outcome.DELIVERED), False)
            )
    if not rows:
        return History.empty()
    a, d, h, c, o, t = (np.array(col) for col in zip(*rows, strict=True))
    return History(
        account=a.astype(np.int64),
        local_day=d.astype(np.int64),
        local_hour=h.astype(np.int8),
        channel=c.astype(np.int8),
        outcome=o.astype(np.int8),
        conversation=t.astype(bool),
    )


def _capacity(draw: st.DrawFn) -> dict[str, object]:
    agents = {h: draw(st.integers(0, 2)) for h in range(7, 21)}
    budgets = {
        c: draw(st.integers(0, 4)) for c in ("voice_bot", "sms", "letter", "field_visit", "legal")
    }
    capacity: dict[str, object] = {
        "centre_timezone": draw(st.sampled_from(["America/Chicago", "Asia/Shanghai"])),
        "agent_pools": [{"name": "pool", "channels": ["agent_call"], "agents_by_hour": agents,
                         "attempts_per_agent_hour": draw(st.sampled_from([1, 2, 3]))}],
        "channel_budgets": budgets,
    }  # fmt: skip
    if draw(st.booleans()):
        capacity["money_budget"] = draw(st.sampled_from([0.0, 0.5, 60.0]))
    return capacity


@st.composite
def cases(draw: st.DrawFn) -> dict[str, object]:
    n = draw(st.integers(1, 30))
    date = draw(st.sampled_from(DATES))
    return {
        "portfolio": _portfolio(draw, n),
        "date": date,
        "history": _history(draw, n, day_number(date)),
        "capacity": _capacity(draw),
        "ruleset": draw(st.sampled_from(["us_reg_f", "cn_gbt45251"])),
        "artifact": draw(st.integers(0, 5)),
        "holdout": draw(st.sampled_from([0.0, 0.25])),
        "csv": draw(st.booleans()),
    }


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=cases())
def test_every_written_plan_validates(case: dict, artifacts: list[Path]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        portfolio = case["portfolio"]
        files = {
            "portfolio": root / "portfolio.parquet",
            "history": root / "history.csv",
            "capacity": root / "capacity.yaml",
        }
        write_portfolio(portfolio, files["portfolio"])
        write_history(case["history"], portfolio, files["history"])
        files["capacity"].write_text(yaml.safe_dump(case["capacity"]))
        out = root / ("plan.csv" if case["csv"] else "plan.parquet")
        args = {"ruleset": case["ruleset"], "holdout_share": case["holdout"], "csv": case["csv"],
                "ruleset_override": True}  # any rule set with any artifact  # fmt: skip
        artifact = artifacts[case["artifact"]]
        code = make_plan(artifact, **files, date=case["date"].isoformat(), out=out, seed=1, **args)
        assert code == 0
        assert read_plan(out).num_rows == portfolio.n
        assert validate_plan_files(out, **files, ruleset=case["ruleset"]) == 0
