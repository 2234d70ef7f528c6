"""The assumption-sensitivity spec, perturbations, flip flags, a tiny run and its plot."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest
import yaml

from collsim.config import ConfigError, load_scenario
from collsim.evaluation.sensitivity import (
    Assumption,
    SensitivityError,
    flag_flips,
    load_sensitivity,
    perturb,
    run_sensitivity,
)
from collsim.evaluation.tornado import plot_tornado

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "experiments" / "assumption_sensitivity.yaml"

TINY = {
    "name": "tiny",
    "scenario": "default",
    "n_accounts": 120,
    "days": 5,
    "seeds": 2,
    "baseline": {"label": "champion", "id": "champion"},
    "challenger": {"label": "random", "id": "random"},  # no model training: fast
    "assumptions": [
        {
            "name": "self_cure",
            "paths": ["behaviour.segments.*.self_cure_hazard"],
            "mode": "scale",
            "low": 0.5,
            "high": 1.5,
            "reason": "test",
        },
        {
            "name": "complaint_cost",
            "paths": ["valuation.complaint_cost"],
            "mode": "scale",
            "low": 0.5,
            "high": 2.0,
            "reason": "test",
        },
    ],
}


def _write(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_bundled_spec_loads_with_five_assumptions() -> None:
    loaded = load_sensitivity(BUNDLED, n_accounts=200, days=5, seeds=2)
    names = [a.name for a in loaded.spec.assumptions]
    assert names == [
        "self_cure",
        "conversation_effect",
        "risk_score_auc",
        "bot_effectiveness",
        "complaint_cost",
    ]
    assert len(loaded.cases) == 1 + 2 * len(names)
    assert loaded.spec.seed_list() == [0, 1]
    assert all(a.reason.strip() for a in loaded.spec.assumptions)


def test_unknown_field_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(SensitivityError, match=r"spec\.yaml: colour: Extra inputs"):
        load_sensitivity(_write(tmp_path, {**TINY, "colour": "red"}))
    bad = {**TINY, "assumptions": [{**TINY["assumptions"][0], "multiplier": 2}]}  # type: ignore[dict-item]
    with pytest.raises(SensitivityError, match=r"assumptions\.0\.multiplier"):
        load_sensitivity(_write(tmp_path, bad))


def test_unknown_assumption_path_is_rejected(tmp_path: Path) -> None:
    bad = {**TINY["assumptions"][0], "name": "typo", "paths": ["behaviour.self_cure"]}  # type: ignore[dict-item]
    with pytest.raises(
        SensitivityError, match=r"assumptions\[0\] \(typo\)\.low: .*no key 'self_cure'"
    ):
        load_sensitivity(_write(tmp_path, {**TINY, "assumptions": [bad]}))


def test_a_value_outside_the_field_range_is_rejected(tmp_path: Path) -> None:
    auc = {
        "name": "auc",
        "paths": ["portfolio.risk_score_auc"],
        "mode": "set",
        "low": 0.6,
        "high": 1.2,
        "reason": "too high",
    }
    with pytest.raises(SensitivityError, match=r"\(auc\)\.high: .*risk_score_auc"):
        load_sensitivity(_write(tmp_path, {**TINY, "assumptions": [auc]}))


def test_low_must_be_below_high() -> None:
    with pytest.raises(ValueError, match="must be below"):
        Assumption(name="x", paths=["a"], mode="set", low=2.0, high=1.0, reason="r")


def _diff_paths(a: object, b: object, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [p for k in a for p in _diff_paths(a[k], b[k], f"{prefix}{k}.")]
    if isinstance(a, list) and isinstance(b, list):
        pairs = enumerate(zip(a, b, strict=True))
        return [p for i, (x, y) in pairs for p in _diff_paths(x, y, f"{prefix}{i}.")]
    return [] if a == b else [prefix.rstrip(".")]


def test_scale_changes_exactly_the_named_fields() -> None:
    base = load_scenario("default")
    jumps = ["behaviour.jump.agent_call", "behaviour.jump.voice_bot", "behaviour.jump.field_visit"]
    a = Assumption(name="conv", paths=jumps, mode="scale", low=0.6, high=1.4, reason="r")
    out = perturb(base, a, 1.4)
    changed = _diff_paths(base.model_dump(mode="json"), out.model_dump(mode="json"))
    assert sorted(changed) == sorted(jumps)
    for channel in ("agent_call", "voice_bot", "field_visit"):
        assert out.behaviour.jump[channel] == pytest.approx(base.behaviour.jump[channel] * 1.4)
    assert out.behaviour.jump["sms"] == base.behaviour.jump["sms"]


def test_wildcard_scales_every_segment_and_set_sets_a_value() -> None:
    base = load_scenario("default")
    cure = Assumption(
        name="c",
        paths=["behaviour.segments.*.self_cure_hazard"],
        mode="scale",
        low=0.7,
        high=1.3,
        reason="r",
    )
    out = perturb(base, cure, 0.7)
    changed = _diff_paths(base.model_dump(mode="json"), out.model_dump(mode="json"))
    n_segments = len(base.behaviour.segments)
    assert changed == [f"behaviour.segments.{i}.self_cure_hazard" for i in range(n_segments)]
    for old, new in zip(base.behaviour.segments, out.behaviour.segments, strict=True):
        assert new.self_cure_hazard == pytest.approx(old.self_cure_hazard * 0.7)
    auc = Assumption(
        name="a", paths=["portfolio.risk_score_auc"], mode="set", low=0.62, high=0.82, reason="r"
    )
    set_out = perturb(base, auc, 0.62)
    assert set_out.portfolio.risk_score_auc == 0.62
    assert _diff_paths(base.model_dump(mode="json"), set_out.model_dump(mode="json")) == [
        "portfolio.risk_score_auc"
    ]


def test_perturbing_a_non_number_fails() -> None:
    a = Assumption(name="n", paths=["behaviour.jump"], mode="scale", low=0.5, high=2, reason="r")
    with pytest.raises(ConfigError, match="not a number"):
        perturb(load_scenario("default"), a, 2.0)


def _table(diffs: dict[tuple[str, str], float]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "assumption": a,
                "label": a,
                "side": s,
                "mode": "scale",
                "value": math.nan if s == "base" else (0.5 if s == "low" else 2.0),
                "diff": d,
                "low": d - 10.0,
                "high": d + 10.0,
            }
            for (a, s), d in diffs.items()
        ]
    )


def test_a_sign_change_is_flagged_as_a_flip() -> None:
    table = flag_flips(
        _table(
            {
                ("base", "base"): 100.0,
                ("x", "low"): 50.0,
                ("x", "high"): -5.0,
                ("y", "low"): 300.0,
                ("y", "high"): 0.0,
            }
        )
    )
    keys = zip(table["assumption"], table["side"], strict=True)
    flips = dict(zip(keys, table["flips_ranking"], strict=True))
    assert flips == {
        ("base", "base"): False,
        ("x", "low"): False,
        ("x", "high"): True,
        ("y", "low"): False,
        ("y", "high"): False,
    }
    assert table.filter(pl.col("assumption") == "y")["excludes_zero"].to_list() == [True, False]
    negative = flag_flips(
        _table({("base", "base"): -100.0, ("x", "low"): 20.0, ("x", "high"): -1.0})
    )
    assert negative["flips_ranking"].to_list() == [False, True, False]


def test_the_tornado_plot_is_written(tmp_path: Path) -> None:
    table = flag_flips(
        _table(
            {
                ("base", "base"): 100.0,
                ("x", "low"): 50.0,
                ("x", "high"): -5.0,
                ("y", "low"): 300.0,
                ("y", "high"): 90.0,
            }
        )
    )
    path = plot_tornado(table, tmp_path / "tornado.png", xlabel="diff (USD)")
    assert path.stat().st_size > 5_000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_tiny_run_is_deterministic_and_writes_everything(tmp_path: Path) -> None:
    spec = _write(tmp_path, TINY)
    first = run_sensitivity(load_sensitivity(spec), tmp_path / "a", progress=False)
    second = run_sensitivity(load_sensitivity(spec), tmp_path / "b", progress=False)
    a, b = pl.read_parquet(first["table"]), pl.read_parquet(second["table"])
    assert a.height == 1 + 2 * 2
    assert a.equals(b)
    assert pl.read_csv(first["csv"]).height == a.height
    runs = pl.read_parquet(first["runs"])
    assert runs.height == a.height * 2 * 2  # cases × policies × seeds
    assert first["tornado"].stat().st_size > 5_000
    # common random numbers: the complaint cost changes the valuation only, so the
    # champion's recovered amounts are identical across its sides and the base case
    champ = runs.filter(pl.col("policy") == "champion")
    per_case = champ.group_by("assumption", "side").agg(pl.col("amount_recovered").sort_by("seed"))
    cost_cases = per_case.filter(pl.col("assumption").is_in(["base", "complaint_cost"]))
    assert cost_cases["amount_recovered"].n_unique() == 1
    # and a higher complaint cost lowers the champion's portfolio value (if it drew complaints)
    values = {
        s: champ.filter((pl.col("assumption") == "complaint_cost") & (pl.col("side") == s))[
            "portfolio_value"
        ].sum()
        for s in ("low", "high")
    }
    assert values["high"] <= values["low"]


def test_the_command_reports_bad_input_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from collsim.evaluation.sensitivity import sensitivity_command

    spec = _write(tmp_path, {**TINY, "kpi": "no_such_kpi"})
    assert sensitivity_command(spec, tmp_path / "out", days=3) == 2
    assert "kpi: unknown KPI 'no_such_kpi'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_cli_lists_the_command() -> None:
    from typer.testing import CliRunner

    from collsim.cli import app

    result = CliRunner().invoke(app, ["sensitivity", "--help"])
    assert result.exit_code == 0
    assert "--accounts" in result.output and "--seeds" in result.output
