"""`collsim monitor`: realised vs expected contact rates, exit 1 when a cell leaves its band."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from collsim.cli import app
from collsim.config import Scenario, load_scenario
from tests.offline_logs import champion, simulate_logs

runner = CliRunner()
ACCOUNTS, DAYS = 3000, 14


def halved_answer_rates(scenario: Scenario) -> Scenario:
    """The scenario with every latent segment's answer rate halved."""
    segments = scenario.model_dump(mode="json")["behaviour"]["segments"]
    for segment in segments:
        segment["answer_rate"] /= 2.0
    return scenario.with_overrides({"behaviour.segments": segments})


@dataclass(frozen=True)
class Folders:
    """Reference logs, logs of the same behaviour (another seed), perturbed logs."""

    root: Path
    reference: Path
    same: Path
    perturbed: Path


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Folders:
    root = tmp_path_factory.mktemp("monitor")
    base = load_scenario("default")
    perturbed = halved_answer_rates(base)
    simulate_logs(root / "reference", champion(base), base, ACCOUNTS, DAYS, seed=0)
    simulate_logs(root / "same", champion(base), base, ACCOUNTS, DAYS, seed=1)
    simulate_logs(root / "perturbed", champion(perturbed), perturbed, ACCOUNTS, DAYS, seed=1)
    return Folders(root, root / "reference", root / "same", root / "perturbed")


def monitor(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["monitor", *args])
    return result.exit_code, result.output


def test_unchanged_behaviour_stays_in_band(folders: Folders) -> None:
    out = folders.root / "same.html"
    code, output = monitor("--logs", str(folders.same), "--reference", str(folders.reference),
                           "--out", str(out))  # fmt: skip
    assert code == 0, output
    page = out.read_text()
    assert "data:image/png;base64," in page and "<table>" in page
    assert "answer_rate" in page and "agent_call" in page
    assert "all cells within their bands" in page
    judged = int(output.split(" of ")[1].split()[0])
    assert judged >= 10  # enough cells were actually judged


def test_reference_days_of_the_same_logs(folders: Folders) -> None:
    out = folders.root / "days.html"
    code, output = monitor("--logs", str(folders.reference), "--reference-days", "7",
                           "--window-days", "7", "--out", str(out))  # fmt: skip
    assert code == 0, output
    assert "first 7 day(s) of the logs" in out.read_text()


def test_halved_answer_rates_leave_the_band(folders: Folders) -> None:
    out = folders.root / "perturbed.html"
    code, output = monitor("--logs", str(folders.perturbed), "--reference", str(folders.reference),
                           "--out", str(out), "--artifact", "champion-label")  # fmt: skip
    assert code == 1, output
    flagged = [line for line in output.splitlines() if line.startswith("out of band")]
    assert any("agent_call" in line and "answer_rate" in line for line in flagged), output
    page = out.read_text()
    assert "out of band" in page and "champion-label" in page


def test_a_wide_tolerance_accepts_the_perturbation(folders: Folders) -> None:
    wide = str(folders.root / "wide.html")
    code, output = monitor("--logs", str(folders.perturbed), "--reference", str(folders.reference),
                           "--tolerance", "0.5", "--out", wide)  # fmt: skip
    assert code == 0, output


def test_bad_options_exit_2_and_write_nothing(folders: Folders) -> None:
    out = folders.root / "bad.html"
    code, output = monitor("--logs", str(folders.same), "--reference", str(folders.reference),
                           "--reference-days", "3", "--out", str(out))  # fmt: skip
    assert code == 2 and "not both" in output
    code, output = monitor("--logs", str(folders.same), "--window-days", "40", "--out", str(out))
    assert code == 2 and "--window-days" in output
    assert not out.exists()
