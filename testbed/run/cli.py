"""`testbed run FILE|NAME...` and `testbed demo`: scenarios on the real cluster."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from testbed.cluster.kindconfig import DEFAULT_WORKERS
from testbed.console import StepFailed, err
from testbed.report.text import print_report
from testbed.run.runner import RunResult, ensure_stack, run
from testbed.scenario import ScenarioError, load_scenario

DEMO_PAIR = ("no-gate-fast-rollout", "gated-fast-rollout")


def run_many(names: list[str], out: Path, workers: int) -> list[RunResult]:
    try:
        scenarios = [load_scenario(n) for n in names]
    except ScenarioError as exc:
        err.print(f"[red]invalid scenario:[/] {exc}")
        raise typer.Exit(2) from exc
    results = []
    try:
        stack = ensure_stack(workers)
        for sc in scenarios:
            result = run(sc, stack, out / f"{time.strftime('%Y%m%d-%H%M%S')}-{sc.name}")
            print_report(result.report)
            err.print(f"report: {result.paths.get('text')}  timeline: {result.paths.get('png')}")
            results.append(result)
    except StepFailed as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    except KeyboardInterrupt as exc:
        err.print("[yellow]interrupted; the scenario's resources were cleaned up[/]")
        raise typer.Exit(130) from exc
    return results


def run_cmd(scenarios: list[str] = typer.Argument(..., help="Scenario files or built-in names "
                                                  "(`testbed scenario list`)."),
            out: Path = typer.Option(Path("reports"), help="Where reports are written."),
            workers: int = typer.Option(DEFAULT_WORKERS,
                                        help="Worker nodes if the cluster must be made.")
            ) -> None:
    """Run scenarios against the cluster; exit 1 if any outcome differs from its expectation."""
    results = run_many(scenarios, out, workers)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def demo_cmd(out: Path = typer.Option(Path("reports"))) -> None:
    """The main job: the bug (no readiness gate) and its fix (gate), one after the other."""
    start = time.monotonic()
    results = run_many(list(DEMO_PAIR), out, workers=DEFAULT_WORKERS)
    err.rule("demo summary")
    for r in results:
        s = r.report.summary
        err.print(f"{r.scenario.name:28} requests {s.requests:6}  errors {s.errors:5}  "
                  f"verdict {'as expected' if r.ok else 'NOT as expected'}")
        err.print(f"  timeline: {r.paths.get('png')}")
    err.print(f"demo took {time.monotonic() - start:.0f}s")
    if not all(r.ok for r in results):
        raise typer.Exit(1)
