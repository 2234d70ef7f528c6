"""Layer rules: the core wing must not reach into the research wing or its heavy deps.

``CORE`` lists the modules that production planning and simulation share. They may
import numpy, pyarrow, ortools, onnxruntime, pydantic, yaml and the standard library,
never the simulator, the environments, the evaluation harness, the RL/research code,
or the research-only third-party packages (including the model-fitting stack:
scikit-learn, skl2onnx, onnx).  Only the research wing and the CLI entry points may
import :mod:`collsim.research`, and the package as a whole has no import cycle (lazy
imports count: a cycle through a function-level import is still a cycle).

The RL runner (``policies.rl``, ``policies.hybrid``) is core: a MaskablePPO ``.zip``
is loaded on the research side (:mod:`collsim.rl.logits`).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "collsim"

CORE = (
    "vocab", "config", "rng", "portfolio", "tables", "behaviour", "compliance", "plan",
    "snapshot", "logs",
    "capacity", "checks", "features", "ledger", "metrics", "valuation", "treatments",
    "policies.base", "policies.allocation", "policies.champion", "policies.optimised",
    "policies.baselines", "policies.registry", "policies.models",
    "policies.onnx", "policies.rl", "policies.hybrid",
    "export.artifact", "export.onnx_policies", "export.planfile", "export.daily",
    "export.commands",
)  # fmt: skip

FORBIDDEN_COLLSIM = (
    "collsim.research", "collsim.sim", "collsim.envs", "collsim.evaluation", "collsim.rl",
)  # fmt: skip
BLOCKED_THIRD_PARTY = (
    "simpy", "torch", "stable_baselines3", "sb3_contrib", "gymnasium", "dask", "distributed",
    "sklearn", "skl2onnx", "onnx",
)  # fmt: skip

RESEARCH_WING = ("research", "sim", "envs", "evaluation", "rl")
"""Packages that may import anything, :mod:`collsim.research` included."""

RESEARCH_IMPORTERS_OUTSIDE_THE_WING = (
    "cli",  # the command line wires research commands (lazily, per command)
)  # fmt: skip
"""Entry points outside the research wing allowed to import :mod:`collsim.research`."""

KNOWN_CYCLES: tuple[frozenset[str], ...] = ()
"""Import cycles tolerated for now; each must still exist (a stale allowance fails)."""


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


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module → the package's modules it imports, at any depth.

    ``from p import m`` is an edge to the submodule ``p.m`` if there is one, else to
    ``p``; the implicit import of a submodule's parent packages is not an edge.
    """
    modules = {_module_name(path, root): path for path in sorted(root.rglob("*.py"))}

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = {resolve(name) for name in _import_targets(path)}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def _import_targets(path: Path) -> list[str]:
    """What each absolute import binds: ``import a.b`` → a.b, ``from a import b`` → a.b."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def import_cycles(graph: Mapping[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        cycles.append(frozenset(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return cycles


def test_the_package_has_no_import_cycle() -> None:
    cycles = import_cycles(import_graph())
    new = [sorted(c) for c in cycles if c not in KNOWN_CYCLES]
    assert not new, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in new)
    stale = [sorted(c) for c in KNOWN_CYCLES if c not in cycles]
    assert not stale, f"allowed cycles that no longer exist (delete the allowance): {stale}"


def test_the_cycle_check_finds_a_cycle_in_a_synthetic_graph() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"a", "e"}}
    assert import_cycles(graph) == [frozenset({"a", "b", "c"})]
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_import_graph_sees_a_lazy_import_cycle(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("")
    (root / "one.py").write_text("from pkg.sub import two\n")
    (root / "sub" / "two.py").write_text("def f():\n    from pkg.one import g\n")
    graph = import_graph(root)
    assert graph["pkg.one"] == {"pkg.sub.two"} and graph["pkg.sub.two"] == {"pkg.one"}
    assert import_cycles(graph) == [frozenset({"pkg.one", "pkg.sub.two"})]


def _wing_of(module: str) -> bool:
    rest = module.removeprefix("collsim.")
    return any(rest == w or rest.startswith(w + ".") for w in RESEARCH_WING)


def test_only_the_research_wing_and_entry_points_import_research() -> None:
    allowed = {f"collsim.{m}" for m in RESEARCH_IMPORTERS_OUTSIDE_THE_WING}
    bad = sorted(
        module
        for module, targets in import_graph().items()
        if not _wing_of(module)
        and module not in allowed
        and any(t == "collsim.research" or t.startswith("collsim.research.") for t in targets)
    )
    assert not bad, f"modules outside the research wing import collsim.research: {bad}"
