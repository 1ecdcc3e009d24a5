"""`testbed run FILE|NAME...` and `testbed demo`: scenarios on the real cluster."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from testbed.cluster.kindconfig import DEFAULT_WORKERS
from testbed.console import StepFailed, err
from testbed.report.text import print_report
from testbed.run.runner import Outcome, ensure_stack, run_all, shard
from testbed.scenario import ScenarioError, builtin_names, load_scenario

DEMO_PAIR = ("no-gate-fast-rollout", "gated-fast-rollout")


def _print_outcome(o: Outcome) -> None:
    if o.result is None:
        err.print(f"[red]✗ {o.scenario.name}: no result:[/] {o.error}")
        return
    print_report(o.result.report)
    err.print(f"report: {o.result.paths.get('text')}  timeline: {o.result.paths.get('png')}")


def run_many(names: list[str], out: Path, workers: int, parallel: int = 1) -> list[Outcome]:
    try:
        scenarios = [load_scenario(n) for n in names]
    except ScenarioError as exc:
        err.print(f"[red]invalid scenario:[/] {exc}")
        raise typer.Exit(2) from exc
    try:
        stack = ensure_stack(workers)
        stamp = time.strftime('%Y%m%d-%H%M%S')
        return run_all(scenarios, stack, lambda sc: out / f"{stamp}-{sc.name}", parallel,
                       on_done=_print_outcome)
    except StepFailed as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    except KeyboardInterrupt as exc:
        err.print("[yellow]interrupted; the scenarios' resources were cleaned up[/]")
        raise typer.Exit(130) from exc


def run_cmd(scenarios: list[str] = typer.Argument(
                None, help="Scenario files or built-in names (`testbed scenario list`); "
                "none: every built-in scenario."),
            out: Path = typer.Option(Path("reports"), help="Where reports are written."),
            workers: int = typer.Option(DEFAULT_WORKERS,
                                        help="Worker nodes if the cluster must be made."),
            parallel: int = typer.Option(
                1, min=1, max=8, help="Scenarios to run side by side (those marked runAlone "
                "still run alone)."),
            shard_: str | None = typer.Option(
                None, "--shard", help="Run only the share K/N of the scenarios (stable across "
                "machines, for a CI matrix of N jobs).")) -> None:
    """Run scenarios against the cluster; exit 1 if any outcome differs from its expectation."""
    names = list(scenarios or builtin_names())
    if shard_ is not None:
        try:
            names = shard(names, shard_)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--shard") from None
        err.print(f"shard {shard_}: {len(names)} scenario(s): {', '.join(names) or 'none'}")
        if not names:
            return
    outcomes = run_many(names, out, workers, parallel)
    _summary(outcomes)
    if not all(o.ok for o in outcomes):
        raise typer.Exit(1)


def _summary(outcomes: list[Outcome]) -> None:
    err.rule("summary")
    for o in outcomes:
        if o.result is None:
            err.print(f"{o.scenario.name:30} [red]no result[/] ({o.error})")
            continue
        s = o.result.report.summary
        err.print(f"{o.scenario.name:30} requests {s.requests:6}  errors {s.errors:5}  "
                  f"verdict {'as expected' if o.ok else '[red]NOT as expected[/]'}")
        err.print(f"  timeline: {o.result.paths.get('png')}")


def demo_cmd(out: Path = typer.Option(Path("reports"))) -> None:
    """The main job: the bug (no readiness gate) and its fix (gate), side by side."""
    start = time.monotonic()
    outcomes = run_many(list(DEMO_PAIR), out, workers=DEFAULT_WORKERS, parallel=2)
    _summary(outcomes)
    err.print(f"demo took {time.monotonic() - start:.0f}s")
    if not all(o.ok for o in outcomes):
        raise typer.Exit(1)
