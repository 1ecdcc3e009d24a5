"""The module graph of the whole project: no import cycle (function-level imports count too),
and controller/ and testbed/ never import each other (they meet only through the Kubernetes
and AWS APIs and the controller's CLI)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("controller", "testbed")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Project modules that the module imports anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        for t in targets:
            # the module itself, or the deepest package of it that is a project module
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    graph = {name: _imports(path, name, known) for name, path in mods.items()}
    # a package's __init__ importing its own modules is how packages re-export: not an edge
    # that can close a cycle through the package name itself
    for name in graph:
        graph[name] = {d for d in graph[name] if not name.startswith(d + ".")}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}

    def visit(mod: str, path: list[str]) -> list[str] | None:
        state[mod] = "open"
        for dep in sorted(graph.get(mod, ())):
            if state.get(dep) == "open":
                return [*path[path.index(dep):], dep] if dep in path else [mod, dep]
            if dep not in state:
                found = visit(dep, [*path, dep])
                if found:
                    return found
        state[mod] = "done"
        return None

    for mod in sorted(graph):
        if mod not in state:
            found = visit(mod, [mod])
            if found:
                return found
    return None


def test_no_import_cycle() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(("a", "b"), [("controller", "testbed"), ("testbed", "controller")])
def test_controller_and_testbed_stay_apart(a: str, b: str) -> None:
    crossing = sorted(f"{m} -> {d}" for m, deps in _graph().items() if m.split(".")[0] == a
                      for d in deps if d.split(".")[0] == b)
    assert not crossing, crossing


def test_the_checker_sees_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
