"""Scenario -> manifests and fake-AWS calls: each knob lands where Kubernetes/AWS reads it."""

from __future__ import annotations

from typing import Any

from testbed.scenario import load_builtin, parse_scenario
from testbed.scenario.render import (
    GATE_INJECT_LABEL,
    render_aws,
    render_controller_settings,
    render_deployment,
    render_manifests,
    render_namespace,
    render_service,
    render_target_group_binding,
)

IMAGE = "alb-testbed:dev"
ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/demo/abc"


def _env(dep: dict[str, Any]) -> dict[str, Any]:
    c = dep["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def test_deployment_carries_every_knob() -> None:
    sc = load_builtin("full-recipe")
    dep = render_deployment(sc, IMAGE, name="web", namespace="ns1", version="v1")
    assert dep["apiVersion"] == "apps/v1" and dep["kind"] == "Deployment"
    assert dep["metadata"] == {"name": "web", "namespace": "ns1", "labels": {"app": "web"}}
    spec = dep["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert spec["progressDeadlineSeconds"] == sc.rollout.timeout_seconds
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 20
    c = pod["containers"][0]
    assert c["image"] == IMAGE and c["command"] == ["testbed", "demoapp", "serve"]
    assert c["ports"] == [{"name": "http", "containerPort": 8080}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert c["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "10"]
    env = _env(dep)
    assert env["DEMO_PORT"] == "8080" and env["DEMO_ON_SIGTERM"] == "drain"
    assert env["DEMO_DRAIN_SECONDS"] == "2" and env["DEMO_HEALTH_CODE"] == "200"
    assert env["DEMO_KEEPALIVE_TIMEOUT"] == "75" and env["APP_VERSION"] == "v1"
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert spec["selector"]["matchLabels"] == {"app": "web"}
    assert spec["template"]["metadata"]["labels"] == {"app": "web", "version": "v1"}


def test_no_prestop_hook_when_zero() -> None:
    dep = render_deployment(load_builtin("gate-no-prestop"), IMAGE)
    assert "lifecycle" not in dep["spec"]["template"]["spec"]["containers"][0]


def test_new_version_uses_overrides() -> None:
    sc = load_builtin("health-check-failing-gate")
    old = render_deployment(sc, IMAGE, version="v1")
    new = render_deployment(sc, IMAGE, version="v2", new_version=True)
    assert _env(old)["DEMO_HEALTH_CODE"] == "200"
    assert _env(new)["DEMO_HEALTH_CODE"] == "500" and _env(new)["APP_VERSION"] == "v2"
    assert new["spec"]["selector"] == old["spec"]["selector"]  # same Deployment, rolled


def test_percent_strategy_passes_through() -> None:
    dep = render_deployment(parse_scenario("name: x\n"), IMAGE)
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%",
                                                        "maxUnavailable": "25%"}


def test_namespace_label_switches_the_gate() -> None:
    on = render_namespace(load_builtin("full-recipe"), "a")
    off = render_namespace(load_builtin("no-gate-fast-rollout"), "b")
    assert on["metadata"]["labels"][GATE_INJECT_LABEL] == "enabled"
    assert GATE_INJECT_LABEL not in off["metadata"]["labels"]


def test_service_and_tgb() -> None:
    svc = render_service("demo", "ns")
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 8080,
                                     "protocol": "TCP"}]
    assert svc["spec"]["selector"] == {"app": "demo"}
    tgb = render_target_group_binding(ARN, "demo", "ns")
    assert tgb["apiVersion"] == "elbv2.k8s.aws/v1beta1" and tgb["kind"] == "TargetGroupBinding"
    assert tgb["spec"] == {"targetGroupARN": ARN, "targetType": "ip",
                           "serviceRef": {"name": "demo", "port": 80}}


def test_manifests_in_apply_order() -> None:
    kinds = [m["kind"] for m in render_manifests(load_builtin("full-recipe"), IMAGE, ARN,
                                                 namespace="ns")]
    assert kinds == ["Namespace", "Service", "TargetGroupBinding", "Deployment"]


def test_aws_calls() -> None:
    sc = load_builtin("full-recipe")
    aws = render_aws(sc, tg_arn=ARN, lb_arn="lb-arn")
    tg = aws["create_target_group"]
    assert tg["TargetType"] == "ip" and tg["Port"] == 8080 and tg["Protocol"] == "HTTP"
    assert (tg["HealthCheckPath"], tg["HealthCheckIntervalSeconds"],
            tg["HealthCheckTimeoutSeconds"], tg["HealthyThresholdCount"],
            tg["UnhealthyThresholdCount"], tg["Matcher"]) == ("/healthz", 2, 1, 2, 2,
                                                              {"HttpCode": "200"})
    attrs = {a["Key"]: a["Value"] for a in aws["modify_target_group_attributes"]["Attributes"]}
    assert attrs == {"deregistration_delay.timeout_seconds": "3",
                     "slow_start.duration_seconds": "0",
                     "load_balancing.algorithm.type": "round_robin"}
    assert aws["modify_target_group_attributes"]["TargetGroupArn"] == ARN
    lb_attrs = aws["modify_load_balancer_attributes"]["Attributes"]
    assert lb_attrs == [{"Key": "idle_timeout.timeout_seconds", "Value": "60"}]
    assert aws["create_listener"]["DefaultActions"] == [{"Type": "forward",
                                                        "TargetGroupArn": ARN}]
    assert aws["create_listener"]["LoadBalancerArn"] == "lb-arn"
    assert aws["testbed"] == {"registerDelaySeconds": 1, "deregisterDelaySeconds": 5}
    assert aws["create_load_balancer"]["Type"] == "application"


def test_no_listener_when_detached() -> None:
    assert render_aws(load_builtin("listener-missing"))["create_listener"] is None


def test_controller_settings() -> None:
    assert render_controller_settings(load_builtin("no-pod-watch")) == {
        "requeueSeconds": 15, "podWatch": False, "backoffRequeue": False,
        "legacyEndpoints": False}
