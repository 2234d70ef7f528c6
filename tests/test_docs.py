"""The generated reference pages in docs/ match the code, and cover all of it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

import collsim.config as config
from collsim import docs
from collsim.compliance import bundled_rulesets, load_ruleset
from collsim.config import bundled_scenarios
from collsim.evaluation.spec import ExperimentSpec
from collsim.export.reader import PLAN_SCHEMA
from collsim.metrics import KPI_DESCRIPTIONS

REPO = Path(__file__).resolve().parents[1]
GUIDES = ("strategy_teams.md", "researchers.md", "production.md", "architecture.md")


def config_models() -> list[type[BaseModel]]:
    """Every public pydantic model defined in collsim/config.py (found independently of the
    walker); private bases such as ``_OfferConfig`` appear through their subclasses."""
    return [
        obj
        for name, obj in vars(config).items()
        if isinstance(obj, type)
        and issubclass(obj, BaseModel)
        and obj.__module__ == config.__name__
        and obj.model_fields
        and not name.startswith("_")
    ]


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return {path.name: text for path, text in docs.generate(REPO / "docs").items()}


def test_committed_docs_match_the_code() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "collsim.docs", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        "docs/ is stale; run `python -m collsim.docs` and commit the result:\n" + result.stderr
    )


def test_check_reports_a_stale_page(tmp_path: Path) -> None:
    docs.write(tmp_path)
    assert docs.main(["--check", "--docs", str(tmp_path)]) == 0
    page = tmp_path / "kpis.md"
    page.write_text(page.read_text(encoding="utf-8") + "hand edit\n", encoding="utf-8")
    assert docs.main(["--check", "--docs", str(tmp_path)]) == 1
    (tmp_path / "rulesets.md").unlink()
    assert set(docs.stale(tmp_path)) == {page, tmp_path / "rulesets.md"}


def test_scenario_reference_sees_every_model_and_field(pages: dict[str, str]) -> None:
    text = pages["scenario_reference.md"]
    models = config_models()
    assert set(docs.walk_models(config.Scenario)) == set(models), "a config model is unreachable"
    fields = sum(len(m.model_fields) for m in models)
    assert f"{len(models)} scenario models with {fields} fields" in text
    experiment = docs.walk_models(ExperimentSpec)
    assert f"{len(experiment)} experiment-spec models with {docs.count_fields(experiment)}" in text
    for model in [*models, *experiment]:
        section = text.split(f"### `{model.__name__}`\n", 1)[1].split("\n### ", 1)[0]
        rows = re.findall(r"^\| `([a-z_0-9]+)` \|", section, flags=re.MULTILINE)
        assert rows == list(model.model_fields), model.__name__
        for name, field in model.model_fields.items():
            if field.description:
                assert docs._cell(field.description) in section, (model.__name__, name)


def test_scenario_reference_lists_each_bundled_scenario(pages: dict[str, str]) -> None:
    text = pages["scenario_reference.md"]
    header = text.split("## Bundled scenarios", 1)[1].split("\n\n")[1].splitlines()[0]
    for name in bundled_scenarios():
        assert f"`{name}`" in header
        assert config.load_scenario(name).ruleset in text


def test_rulesets_page_has_every_rule_sentence(pages: dict[str, str]) -> None:
    text = pages["rulesets.md"]
    for name in bundled_rulesets():
        rules = load_ruleset(name)
        section = text.split(f"## {rules.id}\n", 1)[1].split("\n## ", 1)[0]
        assert f"Version `{rules.version}`" in section
        for rule_id, sentence in rules.describe():
            assert f"| `{rule_id}` | {docs._cell(sentence)} |" in section


def test_plan_schema_and_kpi_pages(pages: dict[str, str]) -> None:
    schema = pages["plan_schema.md"]
    for field in PLAN_SCHEMA:
        assert f"| `{field.name}` | `{field.type}` |" in schema
    kpi_page = pages["kpis.md"]
    for name, meaning in KPI_DESCRIPTIONS.items():
        assert f"| `{name}` | {docs._cell(meaning)} |" in kpi_page


@pytest.mark.parametrize("guide", GUIDES)
def test_guides_exist_and_link_to_files_that_exist(guide: str) -> None:
    path = REPO / "docs" / guide
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
        assert (path.parent / target).exists(), f"{guide}: broken link {target}"


def test_docs_do_not_point_outside_the_repository() -> None:
    pages = sorted((REPO / "docs").glob("*.md"))
    for page in [*pages, REPO / "README.md"]:
        text = page.read_text(encoding="utf-8")
        assert "SCHEMAS.md" not in text, page
        assert "../shared" not in text, page


OUTSIDE_REFERENCES = ("SCHEMAS.md", "DESIGN.md", "CALIBRATION.md", "../shared", "shared/")
KNOWN_OUTSIDE = {"collsim/policies/allocation.py"}
"""Files still naming a document outside the repository (owned elsewhere; fix, then remove)."""


def test_docstrings_and_notebooks_do_not_point_outside_the_repository() -> None:
    files = [*(REPO / "collsim").rglob("*.py"), *(REPO / "notebooks").glob("*.ipynb")]
    found = {
        str(path.relative_to(REPO))
        for path in files
        if any(ref in path.read_text(encoding="utf-8") for ref in OUTSIDE_REFERENCES)
    }
    assert found <= KNOWN_OUTSIDE, f"references outside the repository in {found - KNOWN_OUTSIDE}"


def test_input_formats_cover_every_column(pages: dict[str, str]) -> None:
    from collsim import tables

    assert tuple(tables.PORTFOLIO_COLUMN_RULES) == tables.PORTFOLIO_COLUMNS
    assert tuple(tables.HISTORY_COLUMN_RULES) == tables.HISTORY_COLUMNS
    page = pages["input_formats.md"]
    for name in (*tables.PORTFOLIO_COLUMNS, *tables.HISTORY_COLUMNS, "attempts_per_agent_hour"):
        assert f"`{name}`" in page, name


def test_input_formats_cover_the_lender_logs(pages: dict[str, str]) -> None:
    from collsim import logs

    page = pages["input_formats.md"].split("## Lender logs", 1)[1].split("## Capacity", 1)[0]
    assert tuple(logs.OUTCOME_MEANINGS) == logs.LOG_OUTCOMES
    assert tuple(logs.PAYMENT_CHANNEL_MEANINGS) == logs.PAYMENT_CHANNELS
    codes = (*logs.CONTACT_COLUMNS, *logs.PAYMENT_COLUMNS, *logs.LOG_OUTCOMES)
    for name in (*codes, *logs.PAYMENT_CHANNELS, *logs.LOG_FILES):
        assert f"`{name}`" in page, name
