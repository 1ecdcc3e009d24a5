"""`testbed check [PATH] [--scenario FILE|NAME]`: the rollout rules over your manifests, no
cluster. Exit 1 on any violation (for CI), 0 otherwise, 2 when the input cannot be read."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from testbed.check.facts import (
    Facts,
    Settings,
    facts_from_manifests,
    scenario_manifests,
    scenario_selection,
    scenario_view,
)
from testbed.check.rules import SEVERITIES, Finding, evaluate, failed
from testbed.scenario import ScenarioError, load_scenario
from testbed.scenario.model import Scenario
from testbed.workload.manifests import WorkloadError, load_manifests

EXIT_OK, EXIT_VIOLATION, EXIT_BAD_INPUT = 0, 1, 2

MARKS = {"ok": ("✓", "green"), "violation": ("✗", "red"), "warning": ("!", "yellow"),
         "unknown": ("?", "cyan")}


class BadInput(Exception):
    """Input the check cannot read: the message says what and where (exit 2)."""


@dataclass
class Inputs:
    docs: list[dict[str, Any]]
    settings: Settings
    what: str  # what was read, for the header
    deployment: str | None = None
    service: str | None = None
    port: int | str | None = None


def _is_scenario_file(p: Path) -> bool:
    """A YAML file whose first document is a mapping without apiVersion/kind is a scenario
    (every Kubernetes object has both)."""
    if not p.is_file() or p.suffix not in (".yaml", ".yml"):
        return False
    try:
        first = next((d for d in yaml.safe_load_all(p.read_text()) if d is not None), None)
    except (OSError, yaml.YAMLError):
        return False  # load_manifests says what is wrong with it
    return isinstance(first, dict) and "kind" not in first and "apiVersion" not in first


def _load_scenario(ref: str | Path) -> Scenario:
    try:
        return load_scenario(ref)
    except ScenarioError as exc:
        raise BadInput(str(exc)) from None


def _scenario_inputs(sc: Scenario) -> Inputs:
    """A scenario alone: its workload's manifests, or the demo app it deploys."""
    workload = getattr(sc, "workload", None)
    try:
        docs = scenario_manifests(sc)
    except WorkloadError as exc:
        raise BadInput(str(exc)) from None
    what = (f"scenario {sc.name}: workload {workload.path}" if workload is not None else
            f"scenario {sc.name}: the demo app's manifests")
    docs, settings = scenario_view(sc, docs)
    return Inputs(docs, settings, what, **scenario_selection(sc))


def _load(path: str | Path) -> list[dict[str, Any]]:
    try:
        return load_manifests(path)
    except WorkloadError as exc:
        raise BadInput(str(exc)) from None


def gather(path: str | None, scenario: str | None) -> Inputs:
    """Manifests and settings from the command line's PATH and --scenario."""
    if path is None and scenario is None:
        raise BadInput("give manifests (PATH), a scenario with a workload: section (PATH), or "
                       "--scenario FILE|NAME")
    if path is not None and _is_scenario_file(Path(path)):
        if scenario is not None:
            raise BadInput(f"{path} is a scenario; --scenario goes with manifests, not with "
                           "another scenario")
        return _scenario_inputs(_load_scenario(path))
    sc = None if scenario is None else _load_scenario(scenario)
    if path is None:
        assert sc is not None
        return _scenario_inputs(sc)
    docs = _load(path)
    docs, settings = (docs, Settings()) if sc is None else scenario_view(sc, docs)
    return Inputs(docs, settings, str(path) + ("" if sc is None else
                                                f" with scenario {sc.name}"))


def _print(console: Console, facts: Facts, findings: list[Finding], what: str) -> None:
    console.print(f"[bold]Deployment {escape(facts.deployment)}[/], container "
                  f"{escape(facts.container)} ({escape(what)})")
    if facts.settings_source:
        console.print(f"settings: {escape(facts.settings_source)}")
    width = max(len(f.rule) for f in findings)
    for f in findings:
        mark, colour = MARKS[f.severity]
        console.print(f"[{colour}]{mark} {f.rule:<{width}}[/]  {escape(f.verdict)}")
    todo = [f for f in findings if f.severity != "ok"]
    for f in todo:
        console.print()
        console.print(f"[bold]{f.rule}[/] ({f.severity}): {escape(f.reason)}")
        for ref in f.references:
            console.print(f"  see {ref}")
    if facts.assumed:
        console.print()
        console.print("note: numbers marked 'assumed' are defaults, not your settings; give "
                      "--scenario FILE (targetGroup, alb and workload sections) or the "
                      "controller's target-group-attributes / load-balancer-attributes "
                      "annotations to check with yours (docs/check.md)")
    counts = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}
    console.print()
    summary = ", ".join(f"{n} {s}" + ("s" if n > 1 and s in ("violation", "warning") else "")
                        for s, n in counts.items() if n)
    if failed(findings):
        console.print(f"[bold red]FAIL[/]: {summary}")
    else:
        console.print(f"[bold green]OK[/]: {summary}")


def check_cmd(
        path: str | None = typer.Argument(
            None, help="Kubernetes manifests (file, directory or kustomization), or a scenario "
            "YAML with a workload: section."),
        scenario: str | None = typer.Option(
            None, "--scenario", "-s", help="Scenario file or built-in name for the target "
            "group, ALB and app settings; without PATH, check its workload or the demo app it "
            "deploys."),
        deployment: str | None = typer.Option(
            None, help="The Deployment to check when there are several."),
        container: str | None = typer.Option(
            None, help="The serving container (default: the one the Service's target port "
            "points at)."),
        json_: bool = typer.Option(False, "--json", help="Print JSON for machines.")) -> None:
    """Check manifests for a rollout behind an ALB that drops no request (no cluster needed).

    Rules: readiness gate, preStop sleep, grace period, readiness probe, maxUnavailable,
    keep-alive. Exit 1 on any violation, 2 on input that cannot be read."""
    console = Console(highlight=False, soft_wrap=True)
    try:
        inputs = gather(path, scenario)
        facts = facts_from_manifests(inputs.docs, deployment=deployment or inputs.deployment,
                                     container=container, settings=inputs.settings,
                                     service=inputs.service, port=inputs.port)
    except (BadInput, WorkloadError) as exc:
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    findings = evaluate(facts)
    if json_:
        typer.echo(json.dumps({"input": inputs.what, "facts": facts.to_dict(),
                               "findings": [f.to_dict() for f in findings],
                               "ok": not failed(findings)}, indent=1))
    else:
        _print(console, facts, findings, inputs.what)
    raise typer.Exit(EXIT_VIOLATION if failed(findings) else EXIT_OK)
