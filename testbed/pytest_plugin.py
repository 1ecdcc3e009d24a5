"""pytest plugin: the `alb_testbed` fixture runs scenarios against the testbed from your tests.

Registered as the `pytest11` entry point `alb_testbed`, so pytest loads it in every session of
an environment where alb-testbed is installed, this project's own unit tests included. Hence
importing it costs nothing and does nothing: only pytest and the standard library at module
level; the testbed (kubernetes, boto3, the runner) is imported when a test first asks for the
fixture.

    def test_rollout(alb_testbed):
        r = alb_testbed.run("scenarios/my-service.yaml")
        assert r.report.summary.errors == 0, r.text

The fixture is session-scoped: the stack (kind cluster, project image, fake AWS, controller) is
brought up once, each already-present part reused (`testbed.run.runner.ensure_stack`), and left
running at the end like `testbed run` leaves it (`testbed cluster down` removes it). Reports go
to pytest's temporary directory, or under `--alb-testbed-reports DIR`.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from testbed.report.model import Report
    from testbed.run import runner
    from testbed.run.steps import Stack
    from testbed.scenario.model import Scenario

REPORTS_OPTION = "--alb-testbed-reports"
# What a failed bring-up needs most often; the StepFailed message above it says which.
_NEEDS = ("The testbed needs a Docker engine (or root on Debian/Ubuntu, to install and start "
          "docker.io), Python >= 3.11, and Go >= 1.24 where kind or the node image must be "
          "built (see docs/own-workload.md).")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("alb-testbed", "ALB testbed (fixture alb_testbed)")
    group.addoption(REPORTS_OPTION, dest="alb_testbed_reports", metavar="DIR", default=None,
                    help="write each scenario run's report.txt, report.json and timeline.png "
                    "under DIR/<time>-<scenario> (default: pytest's temporary directory)")


# Seams to the testbed, imported on first use only (see the module docstring). Unit tests
# replace these two, so the fixture is exercised without a cluster.
def _ensure_stack() -> Stack:
    from testbed.run.runner import ensure_stack

    return ensure_stack()


def _run_scenario(sc: Scenario, stack: Stack, out_dir: Path) -> runner.RunResult:
    from testbed.run.runner import run

    return run(sc, stack, out_dir)


@dataclass(frozen=True)
class RunResult:
    """One scenario run, as a test sees it: wraps the runner's result and adds the text."""

    result: runner.RunResult
    out_dir: Path

    @property
    def scenario(self) -> Scenario:
        return self.result.scenario

    @property
    def report(self) -> Report:
        """`.summary.errors`, `.summary.requests`, `.verdict.ok`, ... (testbed.report.model)."""
        return self.result.report

    @property
    def ok(self) -> bool:
        """The outcome matched the scenario's `expect:` (its verdict)."""
        return self.result.ok

    @property
    def paths(self) -> dict[str, Path]:
        """report files by kind: "text", "json", "png"."""
        return self.result.paths

    @property
    def text(self) -> str:
        """The rendered report (what report.txt holds): a good assertion message."""
        from testbed.report.text import render_text

        return render_text(self.report, width=120)


class AlbTestbed:
    """What the `alb_testbed` fixture gives a test: `run(scenario)` on the shared stack."""

    def __init__(self, stack: Stack, reports: Path, *, rootdir: Path) -> None:
        self.stack = stack
        self.reports = reports  # each run writes to a new directory under it
        self._rootdir = rootdir

    def resolve(self, scenario: Scenario | str | os.PathLike[str]) -> Scenario:
        """A Scenario from a Scenario, a path to a YAML file (relative to the working directory,
        else to pytest's rootdir), or a built-in name (`testbed scenario list`). Raises
        ScenarioError (a ValueError) saying what is wrong, TypeError for another type."""
        from testbed.scenario import ScenarioError, load_builtin, load_scenario
        from testbed.scenario.model import Scenario

        if isinstance(scenario, Scenario):
            return scenario
        if not isinstance(scenario, str | os.PathLike):
            raise TypeError("scenario must be a path to a YAML file, a built-in scenario name "
                            f"or a Scenario, not {type(scenario).__name__}")
        path = Path(scenario)
        for candidate in (path, self._rootdir / path):
            if candidate.is_file():
                return load_scenario(candidate)
        text = os.fspath(scenario)
        # a bare name (no directory, no .yaml) is meant as a built-in one
        if isinstance(scenario, str) and "/" not in text and not text.endswith((".yaml", ".yml")):
            return load_builtin(text)  # an unknown name raises, with a did-you-mean hint
        looked = [str(path)] if path.is_absolute() else [str(path.resolve()),
                                                         str(self._rootdir / path)]
        raise ScenarioError(text, ["no such scenario file (looked at " + ", ".join(looked)
                                   + ") and not a built-in scenario name"])

    def out_dir_for(self, sc: Scenario) -> Path:
        """A new directory for one run's report files: <reports>/<time>-<scenario>, as
        `testbed run` names them."""
        base = self.reports / f"{time.strftime('%Y%m%d-%H%M%S')}-{_safe(sc.name)}"
        out, n = base, 1
        while out.exists():  # two runs of one scenario within a second
            n += 1
            out = base.with_name(f"{base.name}-{n}")
        return out

    def run(self, scenario: Scenario | str | os.PathLike[str], *,
            out_dir: Path | None = None) -> RunResult:
        """Run one scenario end to end on the shared stack; its report lands in `out_dir`
        (default: a new directory under the reports root). A scenario that misses its
        expectation still returns (check `.ok` or the report); a scenario that cannot be read,
        or a run that breaks, fails the test with the testbed's message."""
        from testbed.console import StepFailed
        from testbed.scenario import ScenarioError

        try:
            sc = self.resolve(scenario)
        except ScenarioError as exc:
            pytest.fail(f"invalid scenario: {exc}", pytrace=False)
        out = Path(out_dir) if out_dir is not None else self.out_dir_for(sc)
        try:
            result = _run_scenario(sc, self.stack, out)
        except StepFailed as exc:
            pytest.fail(f"scenario {sc.name} did not run to its end: {exc}", pytrace=False)
        return RunResult(result, out)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name) or "scenario"


@pytest.fixture(scope="session")
def alb_testbed(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> AlbTestbed:
    """The testbed stack, brought up once per session; `.run(scenario)` runs one scenario."""
    from testbed.console import StepFailed

    option = request.config.getoption("alb_testbed_reports")
    reports = (Path(option).resolve() if option
               else tmp_path_factory.getbasetemp() / "alb-testbed")
    reports.mkdir(parents=True, exist_ok=True)
    try:
        stack = _ensure_stack()
    except StepFailed as exc:
        # The message names the missing piece and what to do; a traceback would bury it.
        pytest.fail(f"alb_testbed: could not bring up the testbed: {exc}\n{_NEEDS}",
                    pytrace=False)
    return AlbTestbed(stack, reports, rootdir=request.config.rootpath)
