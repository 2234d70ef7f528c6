"""Every notebook in notebooks/ runs end to end (tiny sizes) and draws at least one plot.

Each notebook reads ``COLLSIM_NB_SMALL=1`` in its parameters cell and shrinks its
portfolio, days and seeds; it is executed with nbclient in a temporary working
directory (its result files land there), so the committed notebooks stay untouched.
The committed notebooks must be output-free (no outputs, no execution counts).
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
SMALL_ENV = "COLLSIM_NB_SMALL"
TIMEOUT_S = 300  # per cell; a small-mode notebook takes well under a minute in total


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def test_there_are_notebooks() -> None:
    names = {p.name[:2] for p in NOTEBOOKS}
    assert {"01", "02", "03", "04", "05", "06"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_notebook_is_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name}: no code cell"
    for i, cell in enumerate(code):
        assert cell.get("outputs") == [], f"{path.name}: code cell {i} has outputs; clear them"
        assert cell.get("execution_count") is None, f"{path.name}: code cell {i} has a count"
    first = code[0]
    assert "parameters" in first.metadata.get("tags", []), f"{path.name}: no parameters cell"
    assert SMALL_ENV in first.source, f"{path.name}: parameters cell ignores {SMALL_ENV}"
    assert any("%matplotlib inline" in c.source for c in code), f"{path.name}: no inline plots"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_and_plots(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbclient import NotebookClient

    monkeypatch.setenv(SMALL_ENV, "1")  # the kernel inherits this process's environment
    monkeypatch.setenv("COLLSIM_CACHE", str(tmp_path / "cache"))  # trained models stay in tmp
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=TIMEOUT_S,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError naming the cell on any error
    elapsed = time.perf_counter() - start
    images = [
        output
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    print(f"{path.name}: {elapsed:.1f} s, {len(images)} plot(s)")
    assert images, f"{path.name}: produced no image/png output"
    nbformat.write(nb, tmp_path / path.name)  # the executed copy, for inspection on failure
