"""Read and validate a scenario; every mistake gets its path, YAML line and column, and a hint.

The model (testbed/scenario/model.py) decides what is valid; this module only turns pydantic's
errors into one readable line each, all of them at once.
"""

from __future__ import annotations

import difflib
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from testbed.declare import expected, nested_model
from testbed.scenario.model import MISPLACED, Scenario

BUILTIN_PACKAGE = "testbed.scenario.builtin"
Path_ = tuple[str | int, ...]


class ScenarioError(ValueError):
    """All the problems of one scenario file, one readable line each."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: " + "; ".join(errors) if len(errors) == 1 else
                         f"{source}: {len(errors)} problems:\n  " + "\n  ".join(errors))


def _dotted(parts: Path_) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null (empty)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _did_you_mean(key: str, allowed: list[str]) -> str:
    lower = {a.lower(): a for a in allowed}
    if key.lower() in lower:
        return f"; did you mean '{lower[key.lower()]}'?"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return "; allowed keys: " + ", ".join(allowed)


def _aliases(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {info.alias or name: info for name, info in model.model_fields.items()}


def _positions(text: str) -> dict[Path_, tuple[int, int]]:
    """(line, column), 1-based, of every key and value in the YAML document, by path."""
    out: dict[Path_, tuple[int, int]] = {}

    def walk(node: yaml.Node, path: Path_) -> None:
        out.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                # the key's own position: where the reader's eye goes for a wrong key
                out[sub] = (key.start_mark.line + 1, key.start_mark.column + 1)
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return out
    if root is not None:
        walk(root, ())
    return out


class _Where:
    """Resolves a pydantic error location to the YAML path and the field it names."""

    def __init__(self, loc: tuple[str | int, ...]) -> None:
        self.path: list[str | int] = []
        self.model: type[BaseModel] | None = Scenario
        self.parent: type[BaseModel] = Scenario
        self.field: FieldInfo | None = None
        for part in loc:
            if isinstance(part, int):  # a list index
                self.path.append(part)
            elif self.model is not None:  # a key of a mapping: known, or unknown (extra)
                fields = _aliases(self.model)
                self.path.append(part)
                self.parent = self.model
                self.field = fields.get(part)
                self.model = nested_model(self.field.annotation) if self.field else None
            # else: a tag pydantic adds below a field (union member, validator): not a key


def _messages(err: Any) -> list[tuple[Path_, str]]:
    kind = err["type"]
    where = _Where(err["loc"])
    path = tuple(where.path)
    dotted = _dotted(path)
    if kind == "scenario_rules":
        out: list[tuple[Path_, str]] = []
        for key, text in err["ctx"]["problems"]:
            rule_path = (*path, *key.split("."))
            out.append((rule_path, f"{_dotted(rule_path)}: {text}"))
        return out
    if kind == "extra_forbidden":
        key = str(path[-1])
        hint = MISPLACED.get((where.parent.__name__, key))
        if hint:
            return [(path, f"{dotted}: {hint}")]
        return [(path, f"{dotted}: unknown key{_did_you_mean(key, list(_aliases(where.parent)))}")]
    if kind == "missing":
        return [(path, f"{dotted}: required key missing")]
    if kind == "unique":
        return [(path, f"{dotted}: {err['msg']}")]
    what = expected(where.field) if where.field is not None else err["msg"]
    if path and isinstance(path[-1], int) and where.field is not None:
        # a list item: the phrase of the item type, not of the list
        item = getattr(where.field.annotation, "__args__", (None,))[0]
        what = expected(FieldInfo.from_annotation(item)) if item is not None else what
    return [(path, f"{dotted}: expected {what}, got {_show(err['input'])}")]


def _locate(path: Path_, message: str, positions: dict[Path_, tuple[int, int]]) -> str:
    while path and path not in positions:
        path = path[:-1]  # a missing key: point at its parent mapping
    pos = positions.get(path)
    return f"{message} (line {pos[0]}, column {pos[1]})" if pos and path else message


def validate_data(data: Any, text: str = "") -> tuple[Scenario | None, list[str]]:
    """(scenario, []) when valid, else (None, every problem, sorted by path)."""
    if not isinstance(data, dict):
        return None, [f"(top level): expected a mapping of scenario fields, got {_show(data)}"]
    try:
        return Scenario.model_validate(data), []
    except ValidationError as exc:
        positions = _positions(text) if text else {}
        found: dict[str, Path_] = {}
        errors = exc.errors()
        for err in errors:
            if err["type"] == "too_short" and any(
                    o is not err and o["loc"][:len(err["loc"])] == err["loc"] for o in errors):
                continue  # pydantic drops an invalid item, then finds the list short: noise
            for path, msg in _messages(err):
                found.setdefault(_locate(path, msg, positions), path)
        return None, sorted(found, key=lambda m: (m.split(":")[0], m))


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """YAML text -> Scenario, or ScenarioError listing every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(source, [f"{where}not valid YAML ({problem})"]) from None
    scenario, errors = validate_data(data, text)
    if scenario is None:
        raise ScenarioError(source, errors)
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """A scenario from a file path, or a built-in name like 'full-recipe'."""
    p = Path(path)
    if not p.exists() and re.fullmatch(r"[a-z0-9-]+", str(path)) and str(path) in builtin_names():
        return load_builtin(str(path))
    try:
        text = p.read_text()
    except OSError as exc:
        raise ScenarioError(str(path), [f"cannot read file ({exc.strerror})"]) from None
    return resolve_paths(parse_scenario(text, str(path)), p.resolve().parent)


def resolve_paths(sc: Scenario, base: Path) -> Scenario:
    """Make the workload's file paths absolute: in a scenario file they are relative to it, so
    `testbed run` works from any directory."""
    if sc.workload is None:
        return sc
    workload = sc.workload.model_copy(update={"path": str(base / sc.workload.path)})
    rollout = sc.rollout
    if rollout.manifests is not None:
        rollout = rollout.model_copy(update={"manifests": str(base / rollout.manifests)})
    return sc.model_copy(update={"workload": workload, "rollout": rollout})


def builtin_names() -> list[str]:
    files = resources.files(BUILTIN_PACKAGE)
    return sorted(f.name[:-5] for f in files.iterdir() if f.name.endswith(".yaml"))


def builtin_text(name: str) -> str:
    return (resources.files(BUILTIN_PACKAGE) / f"{name}.yaml").read_text()


def load_builtin(name: str) -> Scenario:
    if name not in builtin_names():
        hint = difflib.get_close_matches(name, builtin_names(), n=1)
        raise ScenarioError(name, ["no such built-in scenario" +
                                   (f"; did you mean '{hint[0]}'?" if hint else "")])
    return parse_scenario(builtin_text(name), f"builtin:{name}")
