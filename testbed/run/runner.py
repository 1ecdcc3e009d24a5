"""Run one scenario: the steps of testbed/run/steps.py in order, cleanup always.

Every wait has a deadline; Ctrl-C (KeyboardInterrupt) or any failure still tears the scenario's
namespace and ALB down, so the next run starts clean.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from testbed.cluster import kindconfig, lifecycle
from testbed.images import build
from testbed.report import Report
from testbed.run import steps
from testbed.run.steps import Run, Stack
from testbed.scenario.model import Scenario
from testbed.stack import fakeaws
from testbed.stack.controller import ControllerDeployment

__all__ = ["RunResult", "Stack", "ensure_stack", "run"]


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


def ensure_stack(workers: int = kindconfig.DEFAULT_WORKERS) -> Stack:
    """Cluster, project image, fake AWS and controller; each reused when already there."""
    lifecycle.up(workers)
    api = lifecycle.api()
    image = build.project_image()
    lifecycle.load_image(image)
    aws = fakeaws.start(api, image)
    return Stack(api, image, aws, ControllerDeployment(api))


def run(sc: Scenario, stack: Stack, out_dir: Path, rollouts: int | None = None) -> RunResult:
    """Run `sc`; `rollouts` overrides sc.rollout.count (0: steady load only, for soak runs)."""
    r = Run(sc, stack, out_dir, ns=f"sc-{sc.name[:40]}-{uuid.uuid4().hex[:5]}",
            rollouts=sc.rollout.count if rollouts is None else rollouts)
    try:
        for do in steps.STEPS:
            do(r)
    finally:
        steps.cleanup(r)
    assert r.report is not None
    return RunResult(sc, r.report, r.paths, r.stalled, r.rollout_seconds)
