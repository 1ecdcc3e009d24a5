"""The report package's modules import each other without a cycle, lazy imports included."""

from __future__ import annotations

import ast
from pathlib import Path

import testbed.report

PACKAGE = "testbed.report"
PACKAGE_DIR = Path(testbed.report.__file__).parent


def _imports(path: Path) -> set[str]:
    """Sibling modules that `path` imports anywhere (a function-level import is an edge too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(f"{PACKAGE}."):
                found.add(node.module.split(".")[2])
            elif node.module == PACKAGE:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[2] for a in node.names
                         if a.name.startswith(f"{PACKAGE}."))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {p.stem for p in PACKAGE_DIR.glob("*.py") if p.stem != "__init__"}
    return {m: _imports(PACKAGE_DIR / f"{m}.py") & modules for m in modules}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}  # "open" while on the DFS stack, "done" after

    def visit(mod: str, path: list[str]) -> list[str] | None:
        state[mod] = "open"
        for dep in sorted(graph[mod]):
            if state.get(dep) == "open":
                return [*path, mod, dep]
            if dep not in state and (found := visit(dep, [*path, mod])):
                return found
        state[mod] = "done"
        return None

    for mod in sorted(graph):
        if mod not in state and (found := visit(mod, [])):
            return found
    return None


def test_cycle_finder_sees_a_lazy_back_edge() -> None:
    assert _cycle({"build": {"text"}, "text": {"build"}}) == ["build", "text", "build"]
    assert _cycle({"build": {"model"}, "text": {"model"}, "model": set()}) is None


def test_report_modules_import_without_cycle() -> None:
    graph = _graph()
    assert {"model", "build", "text", "plot", "write"} <= graph.keys()
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph) or [])}"


def test_renderers_depend_on_the_model_not_the_builder() -> None:
    graph = _graph()
    for renderer in ("text", "plot"):
        assert "model" in graph[renderer]
        assert "build" not in graph[renderer]
        assert "write" not in graph[renderer]


def test_public_names_stay_importable_from_the_package() -> None:
    from testbed.report import Report, Verdict, build_report, evaluate, write_report
    from testbed.report.build import build_report as built
    from testbed.report.model import Report as ModelReport
    from testbed.report.verdict import Verdict as VerdictClass
    from testbed.report.verdict import evaluate as evaluated
    from testbed.report.write import write_report as written

    assert (Report, Verdict, build_report, evaluate, write_report) == (
        ModelReport, VerdictClass, built, evaluated, written)
    assert sorted(testbed.report.__all__) == sorted(
        ["Report", "Verdict", "build_report", "evaluate", "write_report"])
