"""Read, validate, default-fill and type a scenario; every mistake gets a path and a hint."""

from __future__ import annotations

import copy
import difflib
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from testbed.scenario.model import Scenario, from_data
from testbed.scenario.schema import SCHEMA

BUILTIN_PACKAGE = "testbed.scenario.builtin"


class ScenarioError(ValueError):
    """All the problems of one scenario file, one readable line each."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: " + "; ".join(errors) if len(errors) == 1 else
                         f"{source}: {len(errors)} problems:\n  " + "\n  ".join(errors))


def _path(parts: Any) -> str:
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


def _messages(err: jsonschema.ValidationError) -> list[str]:
    where = _path(err.absolute_path)
    schema = err.schema if isinstance(err.schema, dict) else {}
    inst = err.instance
    if err.validator == "additionalProperties" and isinstance(inst, dict):
        allowed = list(schema.get("properties", {}))
        prefix = "" if where == "(top level)" else where + "."
        return [f"{prefix}{k}: unknown key{_did_you_mean(str(k), allowed)}"
                for k in inst if k not in allowed]
    if err.validator == "required" and isinstance(inst, dict):
        prefix = "" if where == "(top level)" else where + "."
        return [f"{prefix}{k}: required key missing" for k in schema.get("required", [])
                if k not in inst]
    if err.validator == "uniqueItems":
        return [f"{where}: entries must be unique, got {inst!r}"]
    expected = schema.get("x-expected", err.message)
    return [f"{where}: expected {expected}, got {_show(inst)}"]


def _fill(schema: dict[str, Any], data: dict[str, Any]) -> None:
    for key, sub in schema.get("properties", {}).items():
        if key not in data and "default" in sub:
            data[key] = copy.deepcopy(sub["default"])
        if sub.get("type") == "object" and isinstance(data.get(key), dict):
            _fill(sub, data[key])


def _percent_ok(v: int | str) -> bool:
    return not (isinstance(v, str) and int(v.rstrip("%")) > 100)


def _is_zero(v: int | str) -> bool:
    return v in (0, "0%")


def _cross_checks(d: dict[str, Any]) -> list[str]:
    """Rules that span fields, mirroring what AWS or Kubernetes would reject."""
    errs: list[str] = []
    hc = d["targetGroup"]["healthCheck"]
    if hc["timeoutSeconds"] >= hc["intervalSeconds"]:
        errs.append("targetGroup.healthCheck.timeoutSeconds: expected less than intervalSeconds "
                    f"({hc['intervalSeconds']}), got {hc['timeoutSeconds']} (AWS rejects it)")
    slow = d["targetGroup"]["slowStartSeconds"]
    if slow and not 30 <= slow <= 900:
        errs.append(f"targetGroup.slowStartSeconds: expected 0 or 30-900 (AWS limits), got {slow}")
    if slow and d["alb"]["algorithm"] == "least_outstanding_requests":
        errs.append("targetGroup.slowStartSeconds: expected 0 with alb.algorithm "
                    "least_outstanding_requests (AWS does not combine them), got " + str(slow))
    ro = d["rollout"]
    for key in ("maxSurge", "maxUnavailable"):
        if not _percent_ok(ro[key]):
            errs.append(f"rollout.{key}: expected a percentage 0%-100%, got {ro[key]!r}")
    if _is_zero(ro["maxSurge"]) and _is_zero(ro["maxUnavailable"]):
        errs.append("rollout.maxUnavailable: expected non-zero when maxSurge is 0 "
                    "(Kubernetes rejects both 0), got " + _show(ro["maxUnavailable"]))
    for key in ("replicas", "readinessGate"):
        if key in ro["newApp"]:
            errs.append(f"rollout.newApp.{key}: expected no such key ({key} belongs to the "
                        "Deployment, not to a version); set it under app")
    ex = d["expect"]
    if ex["errors"] == "none" and ex["classes"]:
        errs.append("expect.classes: expected an empty list when expect.errors is 'none', got "
                    f"{ex['classes']!r}")
    if ex["errors"] == "none" and ex["minErrors"]:
        errs.append("expect.minErrors: expected 0 when expect.errors is 'none', got "
                    f"{ex['minErrors']}")
    return errs


_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def validate_data(data: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """(filled data, []) when valid, else (None, messages sorted by path)."""
    if not isinstance(data, dict):
        return None, [f"(top level): expected a mapping of scenario fields, got {_show(data)}"]
    msgs: list[str] = []
    for err in _VALIDATOR.iter_errors(data):
        msgs.extend(_messages(err))
    if msgs:
        return None, sorted(dict.fromkeys(msgs))
    filled = copy.deepcopy(data)
    _fill(SCHEMA, filled)
    msgs = _cross_checks(filled)
    return (None, msgs) if msgs else (filled, [])


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """YAML text -> Scenario, or ScenarioError listing every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(source, [f"{where}not valid YAML ({problem})"]) from None
    filled, errors = validate_data(data)
    if filled is None:
        raise ScenarioError(source, errors)
    return from_data(filled)


def load_scenario(path: str | Path) -> Scenario:
    """A scenario from a file path, or a built-in name like 'full-recipe'."""
    p = Path(path)
    if not p.exists() and re.fullmatch(r"[a-z0-9-]+", str(path)) and str(path) in builtin_names():
        return load_builtin(str(path))
    try:
        text = p.read_text()
    except OSError as exc:
        raise ScenarioError(str(path), [f"cannot read file ({exc.strerror})"]) from None
    return parse_scenario(text, str(path))


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
