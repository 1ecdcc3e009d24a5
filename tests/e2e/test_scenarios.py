"""Every built-in scenario against the real cluster: each bug scenario must produce its errors
(of the classes it names) or its stall, and each fixed twin must produce zero errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from testbed.report.text import render_text
from testbed.run.runner import Stack, run
from testbed.scenario import builtin_names, load_scenario
from testbed.scenario.plan import controller_args
from testbed.stack import fakeaws
from testbed.stack.controller import ControllerDeployment

pytestmark = pytest.mark.e2e
REPORTS = Path("reports/e2e-scenarios")


@pytest.fixture(scope="session")
def stack(kube: client.ApiClient, project_image: str, aws: fakeaws.FakeAws) -> Stack:
    return Stack(kube, project_image, aws, ControllerDeployment(kube))


def _by_controller_settings() -> list[str]:
    """Scenarios sharing controller flags run back to back: each change of flags redeploys
    the controller (and waits for it), so this order redeploys it least often."""
    def key(name: str) -> tuple[list[str], str]:
        return sorted(controller_args(load_scenario(name))), name
    return sorted(builtin_names(), key=key)


@pytest.mark.parametrize("name", _by_controller_settings())
def test_builtin_scenario_meets_its_expectation(name: str, stack: Stack) -> None:
    sc = load_scenario(name)
    result = run(sc, stack, REPORTS / name)
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
