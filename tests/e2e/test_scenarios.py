"""Every built-in scenario against the real cluster: each bug scenario must produce its errors
(of the classes it names) or its stall, and each fixed twin must produce zero errors.

The scenarios run side by side (`E2E_PARALLEL`, default 3; those marked runAlone alone), once
per session, in the fixture below; each test then checks one scenario's outcome. `SHARD=K/N`
runs a stable share of them (a CI matrix of N jobs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kubernetes import client

from testbed.report.text import render_text
from testbed.run.runner import Outcome, Stack, run_all, shard
from testbed.scenario import builtin_names, load_scenario
from testbed.stack import fakeaws
from testbed.stack.controller import ControllerDeployment

pytestmark = pytest.mark.e2e
REPORTS = Path("reports/e2e-scenarios")
PARALLEL = int(os.environ.get("E2E_PARALLEL") or 3)
NAMES = shard(builtin_names(), os.environ["SHARD"]) if os.environ.get("SHARD") else \
    builtin_names()


@pytest.fixture(scope="module")
def outcomes(kube: client.ApiClient, project_image: str, aws: fakeaws.FakeAws
             ) -> dict[str, Outcome]:
    stack = Stack(kube, project_image, aws, ControllerDeployment(kube))
    scenarios = [load_scenario(n) for n in NAMES]
    done = run_all(scenarios, stack, lambda sc: REPORTS / sc.name, parallel=PARALLEL)
    return {o.scenario.name: o for o in done}


@pytest.mark.parametrize("name", NAMES)
def test_builtin_scenario_meets_its_expectation(name: str, outcomes: dict[str, Outcome]
                                                ) -> None:
    sc = load_scenario(name)
    outcome = outcomes[name]
    assert outcome.result is not None, f"{name} produced no report: {outcome.error}"
    result = outcome.result
    text = render_text(result.report)
    assert result.report.verdict is not None
    assert result.ok, f"{name} did not meet its expectation:\n{text}"
    summary = result.report.summary
    if sc.expect.errors == "none":
        assert summary.errors == 0, text
    else:
        assert summary.errors >= sc.expect.min_errors, text
        if sc.expect.classes:  # the errors are of the classes the bug is known to cause
            assert set(summary.error_classes) <= set(sc.expect.classes), text
    if sc.expect.rollout_stalls:
        assert result.rollout_stalled, text
