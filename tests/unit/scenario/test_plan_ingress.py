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
    # a run's group carries its id: runs side by side never share a load balancer
    assert plan.ingress_annotations(sc, 80, run_id="ab12c")[A + "group.name"] == "shared-ab12c"


def test_ingress_object() -> None:
    sc = _sc(ingress={"path": "/api", "pathType": "Exact", "host": "app.example.com"})
    ing = plan.ingress(sc, name="demo", ns="run-1", port=80, listener_port=81)
    assert ing["kind"] == "Ingress" and ing["metadata"]["namespace"] == "run-1"
    assert ing["spec"]["ingressClassName"] == plan.INGRESS_CLASS
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == "app.example.com"
    (p,) = rule["http"]["paths"]
    assert p == {"path": "/api", "pathType": "Exact",
                 "backend": {"service": {"name": "demo", "port": {"number": 80}}}}
    named = plan.ingress(_sc(), name="web", ns="n", port="http", listener_port=81)
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
    assert set(deps) == {"demo", "demo-v2"}
    canary_env = {e["name"]: e.get("value") for e in
                  deps["demo-v2"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert canary_env["APP_VERSION"] == "v2"
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "Service"} == {
        "demo", "demo-v2"}
    ing = plan.ingress(sc, name="demo", ns="n", port=80, listener_port=81)
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": plan.WEIGHTED_ACTION, "port": {"name": "use-annotation"}}
    assert _weights(ing) == [("demo", "80", 90), ("demo-v2", "80", 10)]
    first, shift = plan.ingress_steps(sc, "demo")
    shifted = plan.ingress(sc, name="demo", ns="n", port=80, listener_port=81, step=shift)
    assert _weights(shifted) == [("demo", "80", 0), ("demo-v2", "80", 100)]


def _weights(ing: dict[str, object]) -> list[tuple[str, str, int]]:
    action = json.loads(ing["metadata"]["annotations"][  # type: ignore[index]
        A + "actions." + plan.WEIGHTED_ACTION])
    assert action["type"] == "forward"
    return [(g["serviceName"], g["servicePort"], g["weight"])
            for g in action["forwardConfig"]["targetGroups"]]


def _backend(ing: dict[str, object]) -> object:
    return ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]  # type: ignore


def test_swap_by_backend_changes_the_service_name_and_waits_for_the_old_group() -> None:
    sc = _sc(ingress={"swap": {}})
    first, swap = plan.ingress_steps(sc, "demo")
    assert (first.backend, first.removes) == ("demo", None)
    assert (swap.backend, swap.removes, swap.hold_seconds) == ("demo-v2", "demo", 0)
    ing = plan.ingress(sc, name="demo", ns="n", port=80, listener_port=81, step=swap)
    assert _backend(ing) == {"name": "demo-v2", "port": {"number": 80}}
    assert A + "actions." + plan.WEIGHTED_ACTION not in ing["metadata"]["annotations"]
    assert {d["metadata"]["name"] for d in plan.manifests(sc, "img", "<tg>", ns="n")
            if d["kind"] == "Deployment"} == {"demo", "demo-v2"}


def test_swap_by_weights_follows_upstreams_migration_recipe() -> None:
    """docs/guide/use_cases/blue_green (PR #4819): 100/0, shift to 0/100, then take the old
    Service out of the action; the hold defaults to the deregistration delay."""
    sc = _sc(ingress={"swap": {"via": "weights"}}, targetGroup={"deregistrationDelaySeconds": 9})
    versions = plan.ingress_steps(sc, "demo")
    ings = [plan.ingress(sc, name="demo", ns="n", port=80, listener_port=81, step=v)
            for v in versions]
    assert [_weights(i) for i in ings] == [
        [("demo", "80", 100), ("demo-v2", "80", 0)],
        [("demo", "80", 0), ("demo-v2", "80", 100)],
        [("demo-v2", "80", 100)]]
    assert [(v.hold_seconds, v.removes) for v in versions] == [(0, None), (9, None),
                                                               (0, "demo")]
    held = _sc(ingress={"swap": {"via": "weights", "holdSeconds": 2.5}})
    assert plan.ingress_steps(held, "demo")[1].hold_seconds == 2.5


def test_second_ingress_joins_the_group_with_its_order() -> None:
    sc = _sc(ingress={"groupName": "shop", "second": {"path": "/api", "order": -5}})
    assert plan.ingress_steps(sc, "demo")[0].services == ["demo"]
    ing = plan.second_ingress(sc, name="demo", ns="n", port=80, listener_port=81,
                              run_id="x1y2z")
    ann = ing["metadata"]["annotations"]
    assert ing["metadata"]["name"] == "demo-v2"
    assert (ann[A + "group.name"], ann[A + "group.order"]) == ("shop-x1y2z", "-5")
    assert json.loads(ann[A + "listen-ports"]) == [{"HTTP": 81}]
    (p,) = ing["spec"]["rules"][0]["http"]["paths"]
    assert p == {"path": "/api", "pathType": "Prefix",
                 "backend": {"service": {"name": "demo-v2", "port": {"number": 80}}}}


@pytest.mark.parametrize(("body", "where"), [
    ("ingress: {swap: {}, canary: {}}", "ingress.swap"),
    ("ingress: {second: {}}", "ingress.second"),
    ("ingress: {swap: {holdSeconds: 3}}", "ingress.swap.holdSeconds"),
    ("ingress: {swap: {via: sideways}}", "ingress.swap.via"),
    ("ingress: {swap: {}}\nrollout: {count: 2}", "rollout.count"),
    ("ingress: {groupName: g, second: {order: 2000}}", "ingress.second.order"),
    ("ingress: {annotations: {'alb.ingress.kubernetes.io/group.name': g}}",
     "ingress.annotations"),
    ("ingress: {groupName: g, second: {}}\nworkload: {path: x.yaml}", "ingress.second"),
    (f"ingress: {{groupName: {'g' * 58}}}", "ingress.groupName"),
])
def test_bad_swap_and_second_sections(body: str, where: str) -> None:
    with pytest.raises(ScenarioError) as ei:
        parse_scenario("name: bad\n" + body + "\n", "bad.yaml")
    assert where in str(ei.value)
