"""Facts from manifests and scenarios: Kubernetes defaults and rounding, preStop parsing, the
readiness gate's sources, annotations, and what is called an assumption."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.check.facts import (
    DEFAULT_DEREGISTRATION_DELAY_SECONDS,
    DEFAULT_PROPAGATION_SECONDS,
    Settings,
    facts_from_manifests,
    facts_from_scenario,
    pre_stop_sleep,
    resolve_fenceposts,
    resolve_int_or_percent,
    settings_from_scenario,
)
from testbed.scenario import load_builtin, load_scenario, parse_scenario
from testbed.workload.manifests import WorkloadError

Docs = Callable[..., list[dict[str, Any]]]


@pytest.mark.parametrize(("value", "total", "up", "want"), [
    ("25%", 1, True, 1), ("25%", 1, False, 0),  # 0.25 pods: surge up to 1, unavailable down to 0
    ("25%", 10, True, 3), ("25%", 10, False, 2),  # 2.5
    ("10%", 5, True, 1), ("10%", 5, False, 0),  # 0.5
    ("100%", 3, False, 3), ("0%", 7, True, 0), ("33%", 3, True, 1), ("34%", 3, True, 2),
    (2, 10, False, 2), (0, 10, True, 0)])
def test_percent_rounding_as_kubernetes(value: Any, total: int, up: bool, want: int) -> None:
    assert resolve_int_or_percent(value, total, round_up=up) == want


@pytest.mark.parametrize("value", ["3", "abc", "25 %", "-5%", True])
def test_percent_garbage_refused(value: Any) -> None:
    with pytest.raises(WorkloadError, match="integer or a percentage"):
        resolve_int_or_percent(value, 4, round_up=True)


def test_fenceposts_both_zero_makes_unavailable_one() -> None:
    assert resolve_fenceposts("25%", "25%", 1) == (1, 0)
    assert resolve_fenceposts(0, "25%", 3) == (0, 1)  # 0.75 rounds to 0, then the fencepost
    assert resolve_fenceposts("10%", "10%", 5) == (1, 0)
    assert resolve_fenceposts(1, 0, 3) == (1, 0)


@pytest.mark.parametrize(("hook", "seconds"), [
    ({"exec": {"command": ["sleep", "10"]}}, 10.0),
    ({"exec": {"command": ["/bin/sleep", "2.5"]}}, 2.5),
    ({"exec": {"command": ["sleep", "5", "5s"]}}, 10.0),  # GNU sleep sums its arguments
    ({"exec": {"command": ["/bin/sh", "-c", "echo stopping && sleep 15"]}}, 15.0),
    ({"exec": {"command": ["sh", "-c", "sleep 1m; nginx -s quit; sleep 3"]}}, 63.0),
    ({"exec": {"command": ["bash", "-c", "kill -TERM 1"]}}, None),
    ({"exec": {"command": ["/drain.sh", "--wait"]}}, None),
    ({"exec": {"command": ["sleep", "infinity"]}}, None),
    ({"sleep": {"seconds": 7}}, 7.0),
    ({"httpGet": {"path": "/shutdown", "port": 8080}}, None),
])
def test_pre_stop_sleep_forms(hook: dict[str, Any], seconds: float | None) -> None:
    text, got = pre_stop_sleep({"name": "web", "lifecycle": {"preStop": hook}})
    assert got == seconds
    assert text is not None


def test_no_pre_stop() -> None:
    assert pre_stop_sleep({"name": "web"}) == (None, None)
    assert pre_stop_sleep({"name": "web", "lifecycle": {"postStart": {}}}) == (None, None)


def test_kubernetes_defaults_and_serving_container(make_docs: Docs) -> None:
    f = facts_from_manifests(make_docs(replicas=None, sidecar=True), settings=Settings())
    assert (f.deployment, f.container, f.namespace) == ("web", "web", "shop")
    assert (f.replicas, f.strategy, f.max_surge, f.max_unavailable) == (1, "RollingUpdate", 1, 0)
    assert (f.max_surge_raw, f.max_unavailable_raw) == ("25%", "25%")
    assert f.grace_seconds == 30.0 and f.pre_stop is None and f.pre_stop_seconds is None
    assert f.defaulted == {"replicas", "max_surge", "max_unavailable", "grace_seconds"}
    assert f.readiness_probe is True


def test_strategy_given(make_docs: Docs) -> None:
    docs = make_docs(replicas=10, grace=45, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    f = facts_from_manifests(docs)
    assert (f.max_surge, f.max_unavailable, f.grace_seconds) == (3, 2, 45.0)
    assert "grace_seconds" not in f.defaulted and "max_surge" not in f.defaulted
    f = facts_from_manifests(make_docs(strategy={"type": "Recreate"}))
    assert f.strategy == "Recreate"


def test_bad_strategy_values_are_input_errors(make_docs: Docs) -> None:
    with pytest.raises(WorkloadError, match="Deployment/web: spec.strategy.rollingUpdate"):
        facts_from_manifests(make_docs(strategy={"rollingUpdate": {"maxSurge": "lots"}}))
    with pytest.raises(WorkloadError, match="replicas"):
        facts_from_manifests(make_docs(replicas="three"))
    with pytest.raises(WorkloadError, match="terminationGracePeriodSeconds"):
        facts_from_manifests(make_docs(grace=-1))


def test_container_chosen_by_name(make_docs: Docs) -> None:
    f = facts_from_manifests(make_docs(sidecar=True), container="envoy")
    assert f.container == "envoy" and f.readiness_probe is False
    with pytest.raises(WorkloadError, match="no container 'nginx'"):
        facts_from_manifests(make_docs(sidecar=True), container="nginx")


def test_no_deployment_is_an_input_error(make_docs: Docs) -> None:
    only_service = [d for d in make_docs() if d["kind"] != "Deployment"]
    with pytest.raises(WorkloadError):
        facts_from_manifests(only_service)


@pytest.mark.parametrize(("kwargs", "settings", "want", "source"), [
    ({"namespace_label": True}, Settings(), True, "has the label"),
    ({"namespace_label": False}, Settings(), False, "lacks the label"),
    ({"namespace_label": None}, Settings(), None, "no Namespace object"),
    ({"namespace_label": None, "template_gate": True}, Settings(), True, "pod template"),
    # a run labels its own namespace as the scenario says; a Namespace object does not count
    ({"namespace_label": True}, Settings(readiness_gate=False, source="scenario x"), False,
     "scenario x: readinessGate false"),
    ({"namespace_label": None}, Settings(readiness_gate=True), True, "readinessGate true"),
    # gates written into the template are there whatever the namespace says
    ({"namespace_label": False, "template_gate": True}, Settings(readiness_gate=False), True,
     "pod template"),
])
def test_readiness_gate_sources(make_docs: Docs, kwargs: dict[str, Any], settings: Settings,
                                want: bool | None, source: str) -> None:
    f = facts_from_manifests(make_docs(**kwargs), settings=settings)
    assert f.readiness_gate is want
    assert source in f.readiness_gate_source


def test_without_settings_the_aws_side_is_assumed(make_docs: Docs) -> None:
    f = facts_from_manifests(make_docs())
    assert f.assumed == {"deregistration_delay_seconds", "propagation_seconds",
                         "idle_timeout_seconds", "drain_seconds"}
    assert f.propagation_assumed
    assert f.deregistration_delay_seconds == DEFAULT_DEREGISTRATION_DELAY_SECONDS == 300
    assert f.propagation_seconds == DEFAULT_PROPAGATION_SECONDS
    assert f.keep_alive_timeout_seconds is None and f.drain_seconds == 0


def test_an_ingress_routing_through_a_forward_action_gives_its_settings(make_docs: Docs
                                                                          ) -> None:
    """A weighted forward action (actions.<name> with serviceName) routes to the Service as
    much as a plain backend does (testbed.workload.ingress.routes, shared with the run)."""
    a = "alb.ingress.kubernetes.io/"
    docs = make_docs(ingress_annotations={
        a + "target-group-attributes": "deregistration_delay.timeout_seconds=12",
        a + "actions.split": '{"type": "forward", "forwardConfig": {"targetGroups": ['
                             '{"serviceName": "web", "servicePort": "80", "weight": 100}]}}'})
    ing = docs[-1]
    ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"] = {
        "name": "split", "port": {"name": "use-annotation"}}
    assert facts_from_manifests(docs).deregistration_delay_seconds == 12.0


def test_controller_annotations_give_the_aws_side(make_docs: Docs) -> None:
    tg = "alb.ingress.kubernetes.io/target-group-attributes"
    lb = "alb.ingress.kubernetes.io/load-balancer-attributes"
    docs = make_docs(ingress_annotations={
        tg: "stickiness.enabled=false, deregistration_delay.timeout_seconds=30",
        lb: "idle_timeout.timeout_seconds=120"})
    f = facts_from_manifests(docs)
    assert (f.deregistration_delay_seconds, f.idle_timeout_seconds) == (30.0, 120.0)
    assert "deregistration_delay_seconds" not in f.assumed
    assert "Ingress/web annotation" in f.settings_source
    # the Service's own target group attributes win over its Ingress's
    docs = make_docs(ingress_annotations={tg: "deregistration_delay.timeout_seconds=30"},
                     service_annotations={tg: "deregistration_delay.timeout_seconds=20"})
    assert facts_from_manifests(docs).deregistration_delay_seconds == 20.0
    # a scenario's settings win over both: they are what a run applies
    f = facts_from_manifests(docs, settings=Settings(deregistration_delay_seconds=3))
    assert f.deregistration_delay_seconds == 3.0
    with pytest.raises(WorkloadError, match="expected a number of seconds"):
        facts_from_manifests(make_docs(
            service_annotations={tg: "deregistration_delay.timeout_seconds=soon"}))


def test_settings_from_demo_scenarios() -> None:
    s = settings_from_scenario(load_builtin("gate-no-prestop"))
    assert s == Settings(deregistration_delay_seconds=3.0, propagation_seconds=5.0,
                         idle_timeout_seconds=60.0, readiness_gate=True, drain_seconds=1.0,
                         keep_alive_timeout_seconds=75.0, source="scenario gate-no-prestop")
    # onSigterm: exit -> the app does not drain, whatever drainSeconds says
    assert settings_from_scenario(load_builtin("prestop-exceeds-grace")).drain_seconds == 0.0
    assert settings_from_scenario(load_builtin("no-gate-fast-rollout")).readiness_gate is False


def test_settings_from_workload_scenario() -> None:
    sc = parse_scenario(
        "name: mine\n"
        "workload: {path: app.yaml, readinessGate: false, drainSeconds: 4,"
        " keepAliveTimeoutSeconds: 90}\n"
        "targetGroup: {deregistrationDelaySeconds: 20}\n"
        "alb: {deregisterDelaySeconds: 6, idleTimeoutSeconds: 75}\n")
    s = settings_from_scenario(sc)
    assert (s.readiness_gate, s.drain_seconds, s.keep_alive_timeout_seconds) == (False, 4.0, 90.0)
    assert (s.deregistration_delay_seconds, s.propagation_seconds, s.idle_timeout_seconds) == (
        20.0, 6.0, 75.0)
    unknown = settings_from_scenario(parse_scenario("name: mine\nworkload: {path: a.yaml}\n"))
    assert unknown.keep_alive_timeout_seconds is None


def test_facts_from_scenario(make_docs: Docs, tmp_path: Path) -> None:
    f = facts_from_scenario(load_builtin("full-recipe"))  # the demo app's rendered manifests
    assert (f.deployment, f.container, f.replicas) == ("demo", "app", 3)
    assert (f.pre_stop_seconds, f.grace_seconds, f.drain_seconds) == (10.0, 20.0, 2.0)
    assert (f.max_surge, f.max_unavailable, f.readiness_gate) == (1, 0, True)
    assert f.assumed == frozenset()
    (tmp_path / "app.yaml").write_text(yaml.safe_dump_all(make_docs(namespace_label=None)))
    (tmp_path / "sc.yaml").write_text("name: mine\nworkload: {path: app.yaml, deployment: web}\n")
    f = facts_from_scenario(load_scenario(tmp_path / "sc.yaml"))
    assert (f.deployment, f.container, f.readiness_gate) == ("web", "web", True)
    assert f.keep_alive_timeout_seconds is None


@pytest.mark.parametrize("name", ["ingress-canary-shift", "ingress-swap-backend",
                                  "ingress-group-shared-listener"])
def test_facts_of_a_scenario_with_a_second_demo_app_are_the_first_apps(name: str) -> None:
    """The second app (`demo-v2`) must not make the advice ask which Deployment is meant."""
    f = facts_from_scenario(load_builtin(name))
    assert (f.deployment, f.container) == ("demo", "app")
