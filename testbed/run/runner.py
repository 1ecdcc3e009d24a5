"""Run scenarios: one (the steps of testbed/run/steps.py in order, cleanup always), or many,
side by side on the shared cluster, fake AWS and controller.

Every wait has a deadline; Ctrl-C (KeyboardInterrupt) or any failure still tears each
scenario's namespace and ALB down, so the next run starts clean.

Side by side: runs share one controller, so scenarios are batched by the controller flags
they need (one deployment per batch); inside a batch up to `parallel` run at once, each in its
own namespace with its own load balancer, target group, listener port and engine settings;
scenarios marked `runAlone` (timing expectations) run after, apart from the rest and at most
QUIET_WIDTH at a time, and those whose faults hit what runs share (plan.runs_alone) one at a
time.
"""

from __future__ import annotations

import threading
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client

from testbed.cluster import kindconfig, lifecycle, network
from testbed.console import Board, StepFailed, err
from testbed.images import build
from testbed.report import Report
from testbed.run import steps
from testbed.run.steps import Run, Stack
from testbed.scenario import plan
from testbed.scenario.model import Scenario
from testbed.stack import fakeaws
from testbed.stack.controller import ControllerDeployment

__all__ = ["Outcome", "RunResult", "Stack", "clear_controllers", "ensure_stack", "run", "run_all",
           "shard", "split"]


@dataclass
class RunResult:
    scenario: Scenario
    report: Report
    paths: dict[str, Path]
    rollout_stalled: bool
    rollout_seconds: float | None

    @property
    def ok(self) -> bool:
        return bool(self.report.verdict and self.report.verdict.ok)


@dataclass
class Outcome:
    """One scenario's end: its result, or why it produced none."""

    scenario: Scenario
    result: RunResult | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok


def ensure_stack(workers: int = kindconfig.DEFAULT_WORKERS) -> Stack:
    """Cluster, project image and fake AWS, each reused when already there; no controller
    (each run deploys its own)."""
    lifecycle.up(workers)
    api = lifecycle.api()
    image = build.project_image()
    lifecycle.load_image(image)
    aws = fakeaws.start(api, image)
    stack = Stack(api, image, aws, ControllerDeployment(api))
    clear_controllers(stack)
    return stack


def run(sc: Scenario, stack: Stack, out_dir: Path, rollouts: int | None = None, *,
        cancel: threading.Event | None = None, wait_cleanup: bool = True) -> RunResult:
    """Run `sc` with a controller of its own; `rollouts` overrides sc.rollout.count (0: steady
    load only, for soak runs)."""
    grow(stack, sc.cluster.workers)  # run_all grew it before the batch; alone, here
    r = Run(sc, stack, out_dir, ns=f"sc-{sc.name[:40]}-{uuid.uuid4().hex[:5]}",
            rollouts=sc.rollout.count if rollouts is None else rollouts)
    if cancel is not None:
        r.cancel = cancel
    try:
        for do in steps.STEPS:
            do(r)
    finally:
        steps.cleanup(r, wait=wait_cleanup)
    assert r.report is not None
    return RunResult(sc, r.report, r.paths, r.stalled, r.rollout_seconds)


# runAlone scenarios side by side with each other only: the built-in ones are light (one
# replica, 20 requests/s) and their duration bounds held two at a time (docs/scenarios.md)
QUIET_WIDTH = 2


def split(scenarios: list[Scenario]
          ) -> tuple[list[Scenario], list[Scenario], list[Scenario]]:
    """(side by side, quiet, alone): every run has its own controller, so only a run that asks
    to (a duration expectation: quiet) or hurts what runs share (the fake AWS's engine, a node:
    plan.runs_alone) runs apart."""
    return ([sc for sc in scenarios if not (plan.runs_alone(sc) or plan.runs_quiet(sc))],
            [sc for sc in scenarios if plan.runs_quiet(sc)],
            [sc for sc in scenarios if plan.runs_alone(sc)])


def workers(stack: Stack) -> int:
    """Worker nodes of the stack's cluster."""
    return len(client.CoreV1Api(stack.api).list_node(
        label_selector="!node-role.kubernetes.io/control-plane").items)


def grow(stack: Stack, want: int) -> None:
    """At least `want` worker nodes, each holding the project image, the fake AWS routing to
    their pods. Called before every batch and every run: one API call when nothing is
    missing, not a docker inspect per node."""
    if workers(stack) >= want:
        return
    if lifecycle.add_workers(want):
        lifecycle.load_image(stack.image)
        network.install_routes(stack.aws.container.name, network.pod_routes(stack.api))


def batches(scenarios: list[Scenario], parallel: int, have: int
            ) -> list[tuple[list[Scenario], int, int]]:
    """(scenarios, how many side by side, worker nodes they need), in the order they run:
    what the cluster fits as it is first, then, once it is grown, what needs more nodes."""
    side_by_side, quiet, alone = split(scenarios)
    out = []
    for need in sorted({have, *(sc.cluster.workers for sc in scenarios)}):
        for group, width in ((side_by_side, parallel), (quiet, min(QUIET_WIDTH, parallel)),
                             (alone, 1)):
            mine = [sc for sc in group if max(sc.cluster.workers, have) == need]
            if mine:
                out.append((mine, width, need))
    return out


def clear_controllers(stack: Stack) -> None:
    """No controller but the runs' own: the shared one (watching every namespace, e.g. left
    by the controller e2e tests) and the instances of runs that crashed are removed."""
    stack.controller.remove()
    for names in stack.controller.stale_instances():
        ControllerDeployment(stack.api, names).remove()


def shard(names: list[str], spec: str) -> list[str]:
    """The share `K/N` of `names` (1 <= K <= N), in their given order: every Nth name in an
    order fixed by a checksum of the names, so the shares are the same on every machine
    whatever order the names come in, differ in size by at most one, and a CI matrix of N
    jobs runs each scenario exactly once."""
    try:
        k, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise ValueError(f"shard must look like K/N (e.g. 2/3), got {spec!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"shard K/N needs 1 <= K <= N, got {spec!r}")
    mine = set(sorted(names, key=lambda s: (zlib.crc32(s.encode()), s))[k - 1::n])
    return [name for name in names if name in mine]


def run_all(scenarios: list[Scenario], stack: Stack, out: Callable[[Scenario], Path],
            parallel: int = 1, on_done: Callable[[Outcome], None] | None = None
            ) -> list[Outcome]:
    """Run every scenario, `parallel` at a time; outcomes in input order.
    A scenario that fails to run (not one that misses its expectation) does not stop the
    others; Ctrl-C cancels every run, waits for their clean-up and re-raises."""
    if parallel < 1:
        raise ValueError("parallel must be >= 1")
    done: dict[int, Outcome] = {}
    index = {id(sc): i for i, sc in enumerate(scenarios)}
    cancel = threading.Event()

    def one(sc: Scenario, board: Board) -> None:
        with board.lane(sc.name):
            try:
                # the run's controller is removed in the background once its namespace is gone
                outcome = Outcome(sc, run(sc, stack, out(sc), cancel=cancel,
                                          wait_cleanup=False))
            except StepFailed as exc:
                outcome = Outcome(sc, None, str(exc))
            except Exception as exc:  # one run's broken infrastructure must not lose the rest
                outcome = Outcome(sc, None, f"{type(exc).__name__}: {exc}")
        done[index[id(sc)]] = outcome
        if on_done is not None:
            on_done(outcome)

    clear_controllers(stack)
    try:
        for group, width, need in batches(scenarios, parallel, workers(stack)):
            grow(stack, need)
            with Board() as board, ThreadPoolExecutor(max_workers=width) as pool:
                futures = [pool.submit(one, sc, board) for sc in group]
                try:
                    wait(futures)
                except KeyboardInterrupt:
                    cancel.set()
                    err.print("[yellow]interrupted: cancelling every run, cleaning up[/]")
                    wait(futures)
                    raise
    finally:
        steps.join_reapers()
    return [done[i] for i in range(len(scenarios))]
