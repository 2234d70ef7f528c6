"""Layer rules: the core wing must not reach into the research wing or its heavy deps.

``CORE`` lists the modules that production planning and simulation share. They may
import numpy, pyarrow, ortools, onnxruntime, pydantic, yaml and the standard library,
never the simulator, the environments, the evaluation harness, the RL/research code,
or the research-only third-party packages.

``collsim.policies.rl`` is not in the list yet: it still loads SB3 ``.zip`` models
(sb3_contrib, torch) lazily and must first be split into a core ONNX runner and a
research-side loader (issue 16).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "collsim"

CORE = (
    "vocab", "config", "rng", "portfolio", "tables", "behaviour", "compliance", "plan",
    "capacity", "checks", "features", "ledger", "metrics", "valuation", "treatments",
    "policies.base", "policies.allocation", "policies.champion", "policies.optimised",
    "policies.models.value", "export.artifact", "export.onnx_policies",
    "export.planfile", "export.daily",
)  # fmt: skip

FORBIDDEN_COLLSIM = (
    "collsim.research", "collsim.sim", "collsim.envs", "collsim.evaluation", "collsim.rl",
)  # fmt: skip
BLOCKED_THIRD_PARTY = (
    "simpy", "torch", "stable_baselines3", "sb3_contrib", "gymnasium", "dask", "distributed",
)  # fmt: skip


def _files(module: str) -> list[Path]:
    """The source files of a core module (a package contributes all its files)."""
    path = PACKAGE.joinpath(*module.split("."))
    if path.is_dir():
        return sorted(path.rglob("*.py"))
    return [path.with_suffix(".py")]


def _imported_names(path: Path) -> list[tuple[int, str]]:
    """Every absolute import in a file, at any depth (lazy imports count too)."""
    names: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append((node.lineno, node.module))
            names += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return names


def _is_forbidden(name: str) -> bool:
    if name.split(".")[0] in BLOCKED_THIRD_PARTY:
        return True
    return any(name == p or name.startswith(p + ".") for p in FORBIDDEN_COLLSIM)


def test_core_sources_import_nothing_from_the_research_side() -> None:
    bad = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
        for module in CORE
        for path in _files(module)
        for line, name in _imported_names(path)
        if _is_forbidden(name)
    ]
    assert not bad, "core → research imports:\n" + "\n".join(bad)


def test_the_scanner_sees_a_forbidden_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from collsim.sim.engine import Simulation\n    import torch\n")
    found = [name for _, name in _imported_names(probe) if _is_forbidden(name)]
    assert "collsim.sim.engine" in found and "torch" in found


_BLOCKER = """
import importlib, sys
BLOCKED = set({blocked!r})
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked research-only package: {{name}}")
        return None
sys.meta_path.insert(0, Blocker())
for module in {modules!r}:
    importlib.import_module("collsim." + module)
leaked = sorted(m for m in sys.modules if m.startswith({forbidden!r}))
assert not leaked, f"core import loaded research modules: {{leaked}}"
print("ok")
"""


@pytest.mark.parametrize("modules", [CORE], ids=["core"])
def test_core_imports_with_research_packages_blocked(modules: tuple[str, ...]) -> None:
    code = _BLOCKER.format(
        blocked=BLOCKED_THIRD_PARTY, modules=modules, forbidden=FORBIDDEN_COLLSIM
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_blocker_blocks() -> None:
    code = _BLOCKER.format(
        blocked=BLOCKED_THIRD_PARTY, modules=("sim.engine",), forbidden=FORBIDDEN_COLLSIM
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "blocked research-only package" in done.stderr
