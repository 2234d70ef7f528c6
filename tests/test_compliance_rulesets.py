"""Rule sets as data: bundled files, custom YAML with extends, caps, quiet days, errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from collsim.compliance import ContactWindow, RuleSet, RulesetError, bundled_rulesets, load_ruleset
from collsim.compliance.testing import make_history, make_portfolio
from collsim.portfolio import day_number
from collsim.vocab import Channel

WEDNESDAY = day_number(dt.date(2026, 3, 11))
SUNDAY = day_number(dt.date(2026, 3, 15))
CALL, SMS, LETTER = int(Channel.AGENT_CALL), int(Channel.SMS), int(Channel.LETTER)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def ids(
    ruleset: RuleSet, window: ContactWindow, channel: int, hour: int = 10, **flags: bool
) -> list[str]:
    portfolio = make_portfolio(window.n, **flags)
    return [r for r, _ in ruleset.explain(portfolio, window, 0, channel, hour)]


def test_bundled_rulesets() -> None:
    names = bundled_rulesets()
    assert {"us_reg_f", "cn_gbt45251", "strict_example"} <= set(names)
    for name in names:
        ruleset = load_ruleset(name)
        assert ruleset.id == name and ruleset.version
    assert load_ruleset("us_reg_f").rule_ids[:1] == ("reach",)


def test_load_by_path_equals_by_name() -> None:
    from collsim.compliance import ruleset as module

    path = module._bundled_path("us_reg_f")
    assert load_ruleset(path).describe() == load_ruleset("us_reg_f").describe()
    assert load_ruleset(str(path)).rule_ids == load_ruleset("us_reg_f").rule_ids


def test_extends_by_name_and_by_relative_path(tmp_path: Path) -> None:
    write(
        tmp_path,
        "base.yaml",
        """
id: base
extends: us_reg_f
rules:
  - {id: base.sms_per_day, type: attempts_cap, channels: [sms], days: 1, max: 1}
""",
    )
    child = write(
        tmp_path,
        "child.yaml",
        """
id: child
version: 2026.1
extends: base.yaml
rules:
  - {id: child.hours, type: hours, min_hour: 9, max_hour: 17}
""",
    )
    ruleset = load_ruleset(child)
    us = load_ruleset("us_reg_f")
    assert ruleset.rule_ids == (*us.rule_ids, "base.sms_per_day", "child.hours")
    assert ruleset.version == "2026.1"
    assert ruleset.allowed_hours.tolist() == list(range(9, 18))
    window = ContactWindow.empty(1, WEDNESDAY)
    assert ids(ruleset, window, CALL, 18) == ["child.hours"]
    assert ids(ruleset, window, CALL, 21) == ["us_reg_f.hours", "child.hours"]
    assert ids(ruleset, window, LETTER, -1) == []
    sentence = dict(ruleset.describe())["child.hours"]
    assert "09:00" in sentence and "17:00" in sentence


def test_caps_per_day_and_per_week(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "caps.yaml",
        """
id: caps
extends: us_reg_f
rules:
  - {id: caps.sms_day, type: attempts_cap, channels: [sms], days: 1, max: 2}
  - {id: caps.phone_week, type: attempts_cap, channels: [telephone], days: 7, max: 3}
""",
    )
    ruleset = load_ruleset(path)
    sms_today = make_history([0, 0], [WEDNESDAY] * 2, [SMS, SMS])
    sms_yesterday = make_history([0, 0], [WEDNESDAY - 1] * 2, [SMS, SMS])
    assert ids(ruleset, ContactWindow.from_history(sms_today, 1, WEDNESDAY), SMS) == [
        "caps.sms_day"
    ]
    assert ids(ruleset, ContactWindow.from_history(sms_yesterday, 1, WEDNESDAY), SMS) == []
    window = ContactWindow.empty(1, WEDNESDAY)
    window.record(np.array([0]), np.array([SMS]), np.array([False]))
    assert ids(ruleset, window, SMS) == []
    window.record(np.array([0]), np.array([SMS]), np.array([False]))
    assert ids(ruleset, window, SMS) == ["caps.sms_day"]
    assert ids(ruleset, window, CALL) == []

    calls = make_history([0, 0, 0], [WEDNESDAY - 6, WEDNESDAY - 3, WEDNESDAY], [0, 1, 0])
    three = ContactWindow.from_history(calls, 1, WEDNESDAY)
    assert ids(ruleset, three, CALL) == ["caps.phone_week"]
    assert ids(ruleset, three, int(Channel.VOICE_BOT)) == ["caps.phone_week"]
    assert ids(ruleset, three, SMS) == []
    old = make_history([0, 0, 0], [WEDNESDAY - 7, WEDNESDAY - 3, WEDNESDAY], [0, 1, 0])
    assert ids(ruleset, ContactWindow.from_history(old, 1, WEDNESDAY), CALL) == []


def test_quiet_days_weekday_and_dates(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "quiet.yaml",
        """
id: quiet
extends: cn_gbt45251
rules:
  - id: quiet.sunday
    type: quiet_days
    weekdays: [sunday]
  - id: quiet.holiday
    type: quiet_days
    dates: [2026-03-11, "2026-10-01"]
    channels: [telephone, field_visit]
""",
    )
    ruleset = load_ruleset(path)
    portfolio = make_portfolio(2)
    sunday = ruleset.mask(portfolio, ContactWindow.empty(2, SUNDAY), np.arange(8, 22))
    assert not sunday.any()
    assert ids(ruleset, ContactWindow.empty(1, SUNDAY), LETTER, -1) == ["quiet.sunday"]
    monday = ContactWindow.empty(1, SUNDAY + 1)
    assert ids(ruleset, monday, CALL) == []
    holiday = ContactWindow.empty(1, WEDNESDAY)
    assert ids(ruleset, holiday, CALL) == ["quiet.holiday"]
    assert ids(ruleset, holiday, int(Channel.FIELD_VISIT)) == ["quiet.holiday"]
    assert ids(ruleset, holiday, SMS) == []
    assert ids(ruleset, ContactWindow.empty(1, day_number(dt.date(2026, 10, 1))), CALL) == [
        "quiet.holiday"
    ]


def test_strict_example() -> None:
    strict = load_ruleset("strict_example")
    assert "us_reg_f.7in7" in strict.rule_ids
    sunday = ContactWindow.empty(1, SUNDAY)
    assert ids(strict, sunday, CALL) == ["strict.no_sunday"]
    calls = make_history([0, 0, 0], [WEDNESDAY - 2] * 3, [0, 0, 1])
    assert ids(strict, ContactWindow.from_history(calls, 1, WEDNESDAY), CALL) == [
        "strict.telephone_per_week"
    ]
    empty = ContactWindow.empty(1, WEDNESDAY)
    assert ids(strict, empty, int(Channel.FIELD_VISIT), 10, vulnerable=True) == [
        "strict.vulnerable"
    ]
    assert ids(strict, empty, SMS, 10, hardship_plan=True) == ["strict.hardship"]
    assert ids(strict, empty, LETTER, -1, hardship_plan=True, vulnerable=True) == []


def test_flag_rule_with_value_false_and_flag_map(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "flags.yaml",
        """
id: flags
rules:
  - {id: f.no_app_without_email, type: flag, flag: has_email, value: false, forbid: [app_push]}
  - {id: f.map, type: flag_map, flags: {vulnerable: [legal], hardship_plan: [field_visit, legal]}}
""",
    )
    ruleset = load_ruleset(path)
    window = ContactWindow.empty(1, WEDNESDAY)
    assert ids(ruleset, window, int(Channel.APP_PUSH), 10, has_email=False) == [
        "f.no_app_without_email"
    ]
    assert ids(ruleset, window, int(Channel.FIELD_VISIT), 10, hardship_plan=True) == ["f.map"]
    assert ids(ruleset, window, int(Channel.FIELD_VISIT), 10, vulnerable=True) == []
    sentence = dict(ruleset.describe())["f.map"]
    assert "vulnerable forbids legal" in sentence


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "id: x\nrules:\n  - {id: a, type: attempts_cap, channels: [sms], days: 1, maxx: 1}\n",
            "rules.0.attempts_cap.maxx",
        ),
        (
            "id: x\nrules:\n  - {id: a, type: attempts_cap, channels: [sms], days: 1}\n",
            "rules.0.attempts_cap.max",
        ),
        (
            "id: x\nrules:\n  - {id: a, type: attempts_cap, channels: [fax], max: 1}\n",
            "rules.0.attempts_cap.channels.0",
        ),
        (
            "id: x\nrules:\n  - {id: a, type: attempts_cap, channels: [sms], days: 3, max: 1}\n",
            "rules.0.attempts_cap.days",
        ),
        ("id: x\nrules:\n  - {id: a, type: curfew}\n", "rules.0"),
        (
            "id: x\nrules:\n  - {id: a, type: hours, min_hour: 9, max_hour: 25}\n",
            "rules.0.hours.max_hour",
        ),
        ("id: x\nrules:\n  - {id: a, type: hours, min_hour: 19, max_hour: 9}\n", "rules.0.hours"),
        ("id: x\nrules:\n  - {id: a, type: flag, flag: vip, forbid: [sms]}\n", "rules.0.flag.flag"),
        ("id: x\nrules:\n  - {id: a, type: flag, flag: vulnerable}\n", "rules.0.flag"),
        (
            "id: x\nrules:\n  - {id: a, type: quiet_days, weekdays: [caturday]}\n",
            "rules.0.quiet_days.weekdays.0",
        ),
        (
            "id: x\nrules:\n  - {id: a, type: quiet_days, dates: ['2026-02-30']}\n",
            "rules.0.quiet_days.dates.0",
        ),
        ("id: x\nrules:\n  - {id: a, type: quiet_days, dates: [2026-02-30]}\n", "cannot read"),
        ("id: x\nrulez: []\n", "rulez"),
        ("rules: []\n", "id"),
        ("- just a list\n", "mapping"),
        ("id: x\nrules: [\n", "cannot read"),
        ("id: x\nextends: no_such_set\n", "extends"),
        (
            "id: x\nextends: us_reg_f\nrules:\n  - {id: us_reg_f.hours, type: reach}\n",
            "duplicate rule ids us_reg_f.hours",
        ),
    ],
)
def test_bad_yaml_raises_ruleset_error_naming_file_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, "bad_rules.yaml", text)
    with pytest.raises(RulesetError) as info:
        load_ruleset(path)
    message = str(info.value)
    assert "bad_rules.yaml" in message
    assert expected in message


def test_extends_cycle_and_missing_file(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "id: a\nextends: b.yaml\n")
    write(tmp_path, "b.yaml", "id: b\nextends: a.yaml\n")
    with pytest.raises(RulesetError, match="cycle"):
        load_ruleset(tmp_path / "a.yaml")
    with pytest.raises(RulesetError, match="no_such"):
        load_ruleset("no_such_ruleset")
    with pytest.raises(RulesetError, match="missing.yaml"):
        load_ruleset(tmp_path / "missing.yaml")


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    path = write(tmp_path, "unsafe.yaml", "id: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(RulesetError, match="unsafe.yaml"):
        load_ruleset(path)
