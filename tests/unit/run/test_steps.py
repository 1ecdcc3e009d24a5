"""The runner's steps, each on its own: what they decide and what they hand the stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from testbed.run import steps
from testbed.run.awssetup import AlbSetup
from testbed.scenario import load_builtin, parse_scenario, plan
from testbed.stack import fakeaws
from testbed.stack.controller import ControllerSettings


def test_steps_run_in_the_documented_order() -> None:
    assert [s.__name__ for s in steps.STEPS] == [
        "prepare", "configure", "deploy", "baseline", "load", "rollouts", "finish_load",
        "collect", "report"]


def test_baseline_gets_the_rollout_deadline_only_when_a_stall_is_expected() -> None:
    assert steps.baseline_timeout(load_builtin("listener-missing")) == 40
    assert steps.baseline_timeout(parse_scenario("name: x\nrollout: {timeoutSeconds: 90}")) == 150


def test_load_runs_its_duration_or_the_cap() -> None:
    assert steps.load_seconds(parse_scenario("name: x\nload: {durationSeconds: 20}")) == 20
    assert steps.load_seconds(parse_scenario("name: x\nload: {maxDurationSeconds: 99}")) == 99


class _Aws:
    endpoint_url = "http://127.0.0.1:1"
    cluster_endpoint_url = "http://172.18.0.9:4566"
    listener_port = fakeaws.FakeAws.listener_port  # the real lease, no HTTP in it

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def configure(self, target_group_arn: str | None = None, **settings: float) -> None:
        self.calls.append(("configure", {"target_group_arn": target_group_arn, **settings}))

    def cursor(self) -> int:
        return 42


class _Controller:
    deployed: list[tuple[Any, ControllerSettings]] = []

    def __init__(self, api: Any = None, names: Any = None) -> None:
        self.names = names

    def deploy(self, settings: ControllerSettings) -> None:
        self.deployed.append((self.names, settings))


def test_configure_hands_the_plan_to_controller_and_engine(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    made: list[tuple[str, int]] = []

    def create(sc: Any, url: str, name: str, port: int, *, target_port: int) -> AlbSetup:
        made.append((name, port))
        assert target_port == plan.APP_PORT
        return AlbSetup("lb", "tg", "listener", port)

    monkeypatch.setattr(steps.awssetup, "create", create)
    monkeypatch.setattr(steps.awssetup, "listener_ports_in_use", lambda url: {8000})
    applied: list[dict[str, Any]] = []
    monkeypatch.setattr(steps, "apply", lambda api, docs: applied.extend(docs))
    monkeypatch.setattr(steps, "ControllerDeployment", _Controller)
    _Controller.deployed = []
    aws = _Aws()
    stack = steps.Stack(api=None, image="img:1", aws=aws, controller=_Controller())  # type: ignore[arg-type]
    r = steps.Run(load_builtin("no-pod-watch"), stack, tmp_path, ns="sc-x-ab12c", rollouts=1)
    steps.prepare(r)  # the demo app: nothing to read, no image to load
    steps.configure(r)
    # the run's own controller, for its namespace, after the namespace exists
    assert [d["kind"] for d in applied] == ["Namespace"]
    ((names, settings),) = _Controller.deployed
    assert (names.instance, names.watch_namespace) == ("ab12c", "sc-x-ab12c")
    assert settings.flags() == ["--aws-endpoint-url=http://172.18.0.9:4566",
                                "--behave-like=v3.2.0",
                                "--targetgroupbinding-requeue-duration=15"]
    # engine settings go to the run's own target group only; no global reset
    assert aws.calls == [("configure", {"target_group_arn": "tg",
                                        **plan.engine_settings(r.sc)})]
    assert aws.calls[0][1]["deregister_delay"] == 0.0
    # a port no listener holds; a name unique to the run
    assert r.events_since == 42 and r.setup is not None
    assert made == [(f"no-pod-watch-{r.ns[-5:]}", 8001)]
    r.held.close()
    with aws.listener_port(lambda: set()) as port:
        assert port == 8000  # released: the lowest free port again


def test_rollouts_do_nothing_after_a_baseline_stall(tmp_path: Path) -> None:
    stack = steps.Stack(api=None, image="img", aws=_Aws(), controller=_Controller())  # type: ignore[arg-type]
    r = steps.Run(load_builtin("listener-missing"), stack, tmp_path, ns="ns", rollouts=1)
    steps.prepare(r)
    r.stalled = True
    steps.rollouts(r)  # would need the cluster for anything else
    assert r.rollout_seconds is None


def test_a_baseline_failure_skips_load_and_rollouts(tmp_path: Path) -> None:
    stack = steps.Stack(api=None, image="img", aws=_Aws(), controller=_Controller())  # type: ignore[arg-type]
    r = steps.Run(load_builtin("full-recipe"), stack, tmp_path, ns="ns", rollouts=1)
    steps.prepare(r)
    r.setup = AlbSetup("lb", "tg", "listener", 8000)
    r.baseline_failure = steps.diagnose.Diagnosis(True, ["target 10.0.0.1:8080: unhealthy"])
    for step in (steps.load, steps.rollouts, steps.finish_load):
        step(r)  # each would need the cluster or the fake ALB otherwise
    assert r.attack is None and r.load_result is None and r.rollout_seconds is None


def test_forwards_reads_weighted_and_plain_forward_actions() -> None:
    """What the ingress rollout compares with each Ingress version: every rule's forward as
    {target group: weight} (a plain forward counts as weight 1); other actions are skipped."""
    rules = [
        {"Actions": [{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": "tg-a", "Weight": 0}, {"TargetGroupArn": "tg-b", "Weight": 100}]}}]},
        {"Actions": [{"Type": "forward", "TargetGroupArn": "tg-c"}]},
        {"Actions": [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}]},
    ]
    assert steps._forwards(rules) == [{"tg-a": 0, "tg-b": 100}, {"tg-c": 1}]


def test_elb_names_fit_the_name_rules_when_cut() -> None:
    # readiness-all-fail-health-check cut at 26 characters ends with "-"
    assert steps.elb_name("readiness-all-fail-health-check", "a3232") == \
        "readiness-all-fail-health-a3232"
    assert len(steps.elb_name("x" * 40, "a3232")) == 32
