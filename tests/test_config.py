"""Scenario configuration: bundled scenarios load, bad input is refused clearly."""

from __future__ import annotations

import pytest

from collsim.config import ConfigError, bundled_scenarios, load_capacity, load_scenario


def test_bundled_scenarios_load_and_are_listed():
    assert {"default", "cn_consumer_finance"} <= set(bundled_scenarios())
    default = load_scenario("default")
    assert default.portfolio.n_accounts == 20_000 and default.sim.days == 90
    assert default.ruleset == "us_reg_f"
    assert load_scenario("cn_consumer_finance").ruleset == "cn_gbt45251"


def test_every_behavioural_number_has_a_source_comment():
    from importlib import resources

    for name in bundled_scenarios():
        text = (resources.files("collsim") / "scenarios" / f"{name}.yaml").read_text()
        section = text.split("behaviour:")[1].split("channels:")[0]
        numeric = [
            line
            for line in section.splitlines()
            if ":" in line
            and any(ch.isdigit() for ch in line.split(":", 1)[1].split("#")[0])
            and not line.strip().startswith(("-", "#", "["))
        ]
        # Segment blocks carry their sources in the first segment; elsewhere every line does.
        unsourced = [line for line in numeric if "#" not in line and not line.startswith("      ")]
        assert not unsourced, f"{name}: numbers without unit/source comment: {unsourced}"


def test_unknown_key_is_rejected_with_its_path(tmp_path):
    data = load_scenario("default").model_dump(mode="json")
    data["sim"]["dayz"] = 3
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as error:
        load_scenario(path)
    assert "bad.yaml" in str(error.value) and "sim.dayz" in str(error.value)


def test_bad_time_zone_in_capacity(tmp_path):
    path = tmp_path / "capacity.yaml"
    path.write_text("centre_timezone: Mars/Olympus\nagent_pools: []\n")
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        load_capacity(path)


def test_unknown_scenario_lists_bundled():
    with pytest.raises(ConfigError, match="default"):
        load_scenario("nope")


def test_overrides_and_scaling_are_validated():
    s = load_scenario("default")
    assert s.with_overrides({"sim.days": 5}).sim.days == 5
    with pytest.raises(ConfigError):
        s.with_overrides({"sim.days": -1})
    small = s.scaled_to(2_000)
    assert small.portfolio.n_accounts == 2_000
    assert small.capacity.channel_budgets["sms"] == 800
    assert small.config_hash() != s.config_hash()
