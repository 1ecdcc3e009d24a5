"""Scenario -> manifests, AWS calls, engine settings and controller flags: each knob lands
where Kubernetes, AWS, the fake AWS engine or the controller reads it."""

from __future__ import annotations

from typing import Any

import pytest

from testbed.scenario import ScenarioError, load_builtin, parse_scenario, plan
from testbed.scenario.plan import GATE_INJECT_LABEL

IMAGE = "alb-testbed:dev"
ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/demo/abc"


def _env(dep: dict[str, Any]) -> dict[str, Any]:
    c = dep["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def test_deployment_carries_every_knob() -> None:
    sc = load_builtin("full-recipe")
    dep = plan.deployment(sc, IMAGE, name="web", ns="ns1", version="v1")
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
    assert env["DEMO_DRAIN_SECONDS"] == "2.0" and env["DEMO_HEALTH_CODE"] == "200"
    assert env["DEMO_KEEP_ALIVE_TIMEOUT_SECONDS"] == "75.0" and env["APP_VERSION"] == "v1"
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert spec["selector"]["matchLabels"] == {"app": "web"}
    assert spec["template"]["metadata"]["labels"] == {"app": "web", "version": "v1"}


def test_no_prestop_hook_when_zero() -> None:
    dep = plan.deployment(load_builtin("gate-no-prestop"), IMAGE)
    assert "lifecycle" not in dep["spec"]["template"]["spec"]["containers"][0]


def test_container_restart_scenarios_get_the_probes_and_hook_they_need() -> None:
    """A containerRestart fault needs a liveness probe (its lever) that waits for start-up;
    preStopUnready turns the hook into "fail /ready, then sleep"."""
    plain = plan.deployment(load_builtin("full-recipe"), IMAGE)["spec"]["template"]["spec"]
    assert {"livenessProbe", "startupProbe"}.isdisjoint(plain["containers"][0])
    bug = plan.deployment(load_builtin("container-restart"), IMAGE)
    c = bug["spec"]["template"]["spec"]["containers"][0]
    assert c["livenessProbe"]["httpGet"] == c["startupProbe"]["httpGet"] == {
        "path": "/live", "port": "http"}
    assert c["startupProbe"]["failureThreshold"] > c["livenessProbe"]["failureThreshold"]
    assert c["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "10"]
    fixed = plan.deployment(load_builtin("container-restart-prestop-unready"), IMAGE)
    hook = fixed["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]
    sh, flag, script = hook["exec"]["command"]
    assert (sh, flag) == ("sh", "-c") and script.endswith("; sleep 10")
    assert "http://127.0.0.1:8080/admin/ready/false" in script


def test_placement_and_disruption_budget() -> None:
    """packed: required pod affinity on the hostname; spread: a topology spread constraint
    per ReplicaSet; a budget only when asked for, over the app's pods."""
    spec = plan.deployment(load_builtin("node-drain"), IMAGE)["spec"]["template"]["spec"]
    (term,) = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term == {"labelSelector": {"matchLabels": {"app": "demo"}},
                    "topologyKey": "kubernetes.io/hostname"}
    sc = load_builtin("node-drain-spread-pdb")
    (c,) = plan.deployment(sc, IMAGE)["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert (c["maxSkew"], c["whenUnsatisfiable"], c["matchLabelKeys"]) == (
        1, "DoNotSchedule", ["pod-template-hash"])
    (pdb,) = [d for d in plan.manifests(sc, IMAGE, ARN, name="web", ns="n")
              if d["kind"] == "PodDisruptionBudget"]
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}
    full = load_builtin("full-recipe")
    assert not [d for d in plan.manifests(full, IMAGE, ARN) if d["kind"] ==
                "PodDisruptionBudget"]
    assert {"affinity", "topologySpreadConstraints"}.isdisjoint(
        plan.deployment(full, IMAGE)["spec"]["template"]["spec"])


def test_new_version_uses_overrides() -> None:
    sc = load_builtin("health-check-failing-gate")
    old = plan.deployment(sc, IMAGE, version="v1")
    new = plan.deployment(sc, IMAGE, version="v2", new_version=True)
    assert _env(old)["DEMO_HEALTH_CODE"] == "200"
    assert _env(new)["DEMO_HEALTH_CODE"] == "500" and _env(new)["APP_VERSION"] == "v2"
    assert new["spec"]["selector"] == old["spec"]["selector"]  # same Deployment, rolled


def test_percent_strategy_passes_through() -> None:
    dep = plan.deployment(parse_scenario("name: x\n"), IMAGE)
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%",
                                                        "maxUnavailable": "25%"}


def test_namespace_label_switches_the_gate() -> None:
    on = plan.namespace(load_builtin("full-recipe"), "a")
    off = plan.namespace(load_builtin("no-gate-fast-rollout"), "b")
    assert on["metadata"]["labels"][GATE_INJECT_LABEL] == "enabled"
    assert GATE_INJECT_LABEL not in off["metadata"]["labels"]


def test_service_and_tgb() -> None:
    svc = plan.service("demo", "ns")
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 8080,
                                     "protocol": "TCP"}]
    assert svc["spec"]["selector"] == {"app": "demo"}
    tgb = plan.target_group_binding(ARN, "demo", "ns")
    assert tgb["apiVersion"] == "elbv2.k8s.aws/v1beta1" and tgb["kind"] == "TargetGroupBinding"
    assert tgb["spec"] == {"targetGroupARN": ARN, "targetType": "ip",
                           "serviceRef": {"name": "demo", "port": 80}}


def test_manifests_in_apply_order() -> None:
    kinds = [m["kind"] for m in plan.manifests(load_builtin("full-recipe"), IMAGE, ARN, ns="ns")]
    assert kinds == ["Namespace", "Service", "TargetGroupBinding", "Deployment"]


def test_aws_calls() -> None:
    sc = load_builtin("full-recipe")
    aws = plan.aws_calls(sc, tg_arn=ARN, lb_arn="lb-arn")
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
    assert aws["create_load_balancer"]["Type"] == "application"


def test_no_listener_when_detached() -> None:
    assert plan.aws_calls(load_builtin("listener-missing"))["create_listener"] is None


def test_engine_settings() -> None:
    assert plan.engine_settings(load_builtin("full-recipe")) == {
        "register_delay": 1.0, "deregister_delay": 5.0, "connect_timeout": 10.0}
    sc = parse_scenario("name: x\nalb: {connectTimeoutSeconds: 2.5}")
    assert plan.engine_settings(sc)["connect_timeout"] == 2.5


def test_controller_args_come_from_the_flag_markers() -> None:
    assert plan.controller_args(load_builtin("no-pod-watch")) == [
        "--behave-like=v3.2.0", "--targetgroupbinding-requeue-duration=15"]
    assert plan.controller_args(load_builtin("full-recipe")) == [
        "--targetgroupbinding-requeue-duration=2"]
    # a switch given wins over the release both ways; one left null is the release's
    sc = parse_scenario("name: x\ncontroller: {version: v2.6.0, requeueSeconds: 0.5, "
                        "backoffRequeue: false, legacyEndpoints: true, podWatch: true}")
    assert plan.controller_args(sc) == [
        "--behave-like=v2.6.0", "--targetgroupbinding-requeue-duration=0.5", "--pod-watch",
        "--fixed-requeue", "--legacy-endpoints"]


@pytest.mark.parametrize(("version", "problem"), [("v2.1.0", "(v2.2.0 or later)"),
                                                  ("latest", "a release like v2.4.1")])
def test_controller_version_must_be_a_modelled_release(version: str, problem: str) -> None:
    with pytest.raises(ScenarioError) as e:
        parse_scenario(f"name: x\ncontroller: {{version: {version}}}")
    assert problem in str(e.value)


def test_every_app_knob_reaches_the_pod_env() -> None:
    sc = parse_scenario("name: x\napp: {latencyMs: 7, healthyAfterSeconds: 4, "
                        "startupDelaySeconds: 1.5}")
    env = _env(plan.deployment(sc, IMAGE))
    assert env["DEMO_LATENCY_MS"] == "7.0" and env["DEMO_HEALTHY_AFTER_SECONDS"] == "4.0"
    assert env["DEMO_STARTUP_DELAY_SECONDS"] == "1.5"


def test_engine_setting_markers_name_settings_the_engine_takes_at_run_time() -> None:
    from testbed.declare import marker
    from testbed.fakeaws.settings import RUNTIME_KEYS
    from testbed.scenario.model import Alb, EngineSetting
    keys = {m.key for info in Alb.model_fields.values()
            if (m := marker(info, EngineSetting)) is not None}
    assert keys and keys <= set(RUNTIME_KEYS)
