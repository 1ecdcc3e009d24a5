"""The `ingress` section: the Ingress a run applies instead of a TargetGroupBinding."""

from __future__ import annotations

import json

import pytest

from testbed.scenario import plan
from testbed.scenario.loader import ScenarioError, parse_scenario
from testbed.scenario.model import Scenario

A = "alb.ingress.kubernetes.io/"


def _sc(**over: object) -> Scenario:
    return Scenario.model_validate({"name": "ing", "ingress": {}, **over})


def test_annotations_carry_the_scenarios_target_group_and_alb_settings() -> None:
    sc = _sc(targetGroup={"healthCheck": {"path": "/ready", "intervalSeconds": 2,
                                          "timeoutSeconds": 1, "healthyThreshold": 3,
                                          "unhealthyThreshold": 4, "matcher": "200-299"},
                          "deregistrationDelaySeconds": 7, "slowStartSeconds": 30},
             alb={"idleTimeoutSeconds": 9, "algorithm": "round_robin"})
    ann = plan.ingress_annotations(sc, listener_port=30123)
    assert json.loads(ann[A + "listen-ports"]) == [{"HTTP": 30123}]
    assert ann[A + "target-type"] == "ip" and ann[A + "scheme"] == "internal"
    assert (ann[A + "healthcheck-path"], ann[A + "healthcheck-interval-seconds"],
            ann[A + "healthcheck-timeout-seconds"], ann[A + "healthy-threshold-count"],
            ann[A + "unhealthy-threshold-count"], ann[A + "success-codes"]) == (
        "/ready", "2", "1", "3", "4", "200-299")
    attrs = dict(kv.split("=") for kv in ann[A + "target-group-attributes"].split(","))
    assert attrs == {"deregistration_delay.timeout_seconds": "7",
                     "slow_start.duration_seconds": "30",
                     "load_balancing.algorithm.type": "round_robin"}
    assert ann[A + "load-balancer-attributes"] == "idle_timeout.timeout_seconds=9"
    assert A + "group.name" not in ann


def test_the_same_values_as_the_target_group_binding_mode() -> None:
    """Both modes must give the target group the same health check and attributes."""
    sc = _sc(targetGroup={"healthCheck": {"path": "/h", "matcher": "204"},
                          "deregistrationDelaySeconds": 11})
    ann = plan.ingress_annotations(sc, 80)
    tg = plan.aws_calls(sc)["create_target_group"]
    assert (tg["HealthCheckPath"], str(tg["HealthCheckIntervalSeconds"]),
            tg["Matcher"]["HttpCode"]) == (ann[A + "healthcheck-path"],
                                           ann[A + "healthcheck-interval-seconds"],
                                           ann[A + "success-codes"])
    attrs = {a["Key"]: a["Value"]
             for a in plan.aws_calls(sc)["modify_target_group_attributes"]["Attributes"]}
    assert ",".join(f"{k}={v}" for k, v in attrs.items()) == ann[A + "target-group-attributes"]


def test_scenario_annotations_win_and_group_name() -> None:
    sc = _sc(ingress={"groupName": "shared", "annotations": {A + "healthcheck-path": "/own",
                                                               A + "scheme": "internet-facing"}})
    ann = plan.ingress_annotations(sc, 80)
    assert ann[A + "healthcheck-path"] == "/own"
    assert ann[A + "scheme"] == "internet-facing"
    assert ann[A + "group.name"] == "shared"


def test_ingress_object() -> None:
    sc = _sc(ingress={"path": "/api", "pathType": "Exact", "host": "app.example.com"})
    ing = plan.ingress(sc, name="demo", ns="run-1", service="demo", port=80, listener_port=81)
    assert ing["kind"] == "Ingress" and ing["metadata"]["namespace"] == "run-1"
    assert ing["spec"]["ingressClassName"] == plan.INGRESS_CLASS
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == "app.example.com"
    (p,) = rule["http"]["paths"]
    assert p == {"path": "/api", "pathType": "Exact",
                 "backend": {"service": {"name": "demo", "port": {"number": 80}}}}
    named = plan.ingress(_sc(), name="d", ns="n", service="web", port="http", listener_port=81)
    assert named["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] == {
        "name": "http"}
    assert "host" not in named["spec"]["rules"][0]


@pytest.mark.parametrize(("body", "where"), [
    ("ingress: {annotations: {'alb.ingress.kubernetes.io/listen-ports': '[]'}}",
     "ingress.annotations"),
    ("ingress: {annotations: {'alb.ingress.kubernetes.io/target-type': 'instance'}}",
     "ingress.annotations"),
    ("ingress: {annotations: {'kubernetes.io/ingress.class': 'alb'}}", "ingress.annotations"),
    ("ingress: {}\ntargetGroup: {attachListener: false}", "targetGroup.attachListener"),
    ("ingress: {path: 'no-slash'}", "ingress.path"),
    ("ingress: {pathType: Regex}", "ingress.pathType"),
    ("ingress: {host: 'Not A Host'}", "ingress.host"),
    ("ingress: {canary: {}}\nrollout: {count: 2}", "rollout.count"),
    ("ingress: {canary: {weight: 101}}", "ingress.canary.weight"),
    ("ingress: {canary: {}}\nworkload: {path: x.yaml}", "ingress.canary"),
])
def test_bad_ingress_sections_are_refused_with_the_field(body: str, where: str) -> None:
    with pytest.raises(ScenarioError) as ei:
        parse_scenario("name: bad\n" + body + "\n", "bad.yaml")
    assert where in str(ei.value)


def test_canary_runs_the_app_twice_and_forwards_by_weight() -> None:
    sc = _sc(ingress={"canary": {"weight": 10, "shiftTo": 100}},
             rollout={"newApp": {"preStopSleepSeconds": 7}})
    docs = plan.manifests(sc, "img", "<tg>", name="demo", ns="n")
    deps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deps) == {"demo", "demo-canary"}
    canary_env = {e["name"]: e.get("value") for e in
                  deps["demo-canary"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert canary_env["APP_VERSION"] == "v2"
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "Service"} == {
        "demo", "demo-canary"}
    ing = plan.ingress(sc, name="demo", ns="n", service="demo", port=80, listener_port=81)
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": plan.CANARY_ACTION, "port": {"name": "use-annotation"}}
    action = json.loads(ing["metadata"]["annotations"][A + "actions." + plan.CANARY_ACTION])
    assert action["type"] == "forward"
    assert [(g["serviceName"], g["servicePort"], g["weight"])
            for g in action["forwardConfig"]["targetGroups"]] == [
        ("demo", "80", 90), ("demo-canary", "80", 10)]
    shifted = plan.ingress(sc, name="demo", ns="n", service="demo", port=80, listener_port=81,
                           canary_weight=100)
    action = json.loads(shifted["metadata"]["annotations"][A + "actions." + plan.CANARY_ACTION])
    assert [g["weight"] for g in action["forwardConfig"]["targetGroups"]] == [0, 100]


def test_no_canary_objects_without_a_canary() -> None:
    docs = plan.manifests(_sc(), "img", "<tg>", name="demo", ns="n")
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"] == ["demo"]
