"""The package is laid out by process: the API process's code never imports the engine's and
vice versa; both share only settings.py and wire.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import testbed.fakeaws

PKG = Path(testbed.fakeaws.__file__).parent


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in out if m.startswith("testbed.")}


@pytest.mark.parametrize("side, other", [("api", "engine"), ("engine", "api")])
def test_process_packages_do_not_import_each_other(side: str, other: str) -> None:
    files = sorted((PKG / side).rglob("*.py"))
    assert files
    allowed = {"testbed.fakeaws", "testbed.fakeaws.settings", "testbed.fakeaws.wire"}
    for f in files:
        for mod in _imports(f):
            assert not mod.startswith(f"testbed.fakeaws.{other}"), (f, mod)
            assert mod.startswith(f"testbed.fakeaws.{side}") or mod in allowed or \
                mod.startswith(("testbed.fakeaws.settings.", "testbed.fakeaws.wire.")), (f, mod)
