"""The Ingress a run applies, read by the controller's model builder: the target group and
listener the controller would make carry the same settings the run gives its own ALB in
TargetGroupBinding mode (testbed and controller meet only through the Kubernetes objects, so
this test reads both sides)."""

from __future__ import annotations

from typing import Any

import pytest

from controller.ingress.build import BuildOptions, build
from controller.ingress.classes import load_groups
from controller.ingress.objects import (
    ingress_class_from_dict,
    ingress_from_dict,
    service_from_dict,
)
from testbed.scenario import plan
from testbed.scenario.model import Scenario

CLASS = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
         "metadata": {"name": plan.INGRESS_CLASS},
         "spec": {"controller": "ingress.k8s.aws/alb"}}


def _model(sc: Scenario, listener_port: int = 30555, step: plan.IngressStep | None = None
           ) -> Any:
    docs = plan.manifests(sc, "img", "<tg>", name="demo", ns="run")
    ings = [plan.ingress(sc, name="demo", ns="run", port=plan.SERVICE_PORT,
                         listener_port=listener_port, step=step, run_id="r1")]
    if sc.ingress is not None and sc.ingress.second is not None:
        ings.append(plan.second_ingress(sc, name="demo", ns="run", port=plan.SERVICE_PORT,
                                        listener_port=listener_port, run_id="r1"))
    services = [service_from_dict(d) for d in docs if d["kind"] == "Service"]
    result = load_groups([ingress_from_dict(i) for i in ings], [ingress_class_from_dict(CLASS)])
    assert not result.ingress_errors and not result.group_errors
    (group,) = result.groups.values()
    return build(group, services, BuildOptions(cluster_name="alb-testbed"))


@pytest.mark.parametrize("scenario", [
    {"name": "a", "ingress": {}},
    {"name": "b", "ingress": {"path": "/api", "pathType": "Exact", "host": "x.example.com"},
     "targetGroup": {"healthCheck": {"path": "/ready", "intervalSeconds": 3,
                                     "timeoutSeconds": 2, "healthyThreshold": 4,
                                     "unhealthyThreshold": 5, "matcher": "200-204"},
                     "deregistrationDelaySeconds": 9, "slowStartSeconds": 30},
     "alb": {"idleTimeoutSeconds": 17}},
])
def test_controller_model_has_the_runs_settings(scenario: dict[str, Any]) -> None:
    sc = Scenario.model_validate(scenario)
    model = _model(sc)
    calls = plan.aws_calls(sc)
    want_tg = calls["create_target_group"]
    (tg,) = model.target_groups.values()
    hc = tg.health_check
    assert (tg.target_type, tg.protocol) == ("ip", "HTTP")
    assert (hc.path, hc.interval_seconds, hc.timeout_seconds, hc.healthy_threshold_count,
            hc.unhealthy_threshold_count, hc.matcher_http_code, hc.port, hc.protocol) == (
        want_tg["HealthCheckPath"], want_tg["HealthCheckIntervalSeconds"],
        want_tg["HealthCheckTimeoutSeconds"], want_tg["HealthyThresholdCount"],
        want_tg["UnhealthyThresholdCount"], want_tg["Matcher"]["HttpCode"],
        want_tg["HealthCheckPort"], want_tg["HealthCheckProtocol"])
    want_attrs = {a["Key"]: a["Value"]
                  for a in calls["modify_target_group_attributes"]["Attributes"]}
    assert tg.attributes == want_attrs
    want_lb = {a["Key"]: a["Value"]
               for a in calls["modify_load_balancer_attributes"]["Attributes"]}
    assert model.load_balancer.attributes == want_lb
    assert model.load_balancer.scheme == "internal"
    (listener,) = model.listeners
    assert (listener.port, listener.protocol) == (30555, "HTTP")
    (binding,) = model.bindings.values()
    assert (binding.service_name, binding.service_port) == ("demo", plan.SERVICE_PORT)


def test_canary_model_forwards_to_both_services_by_weight() -> None:
    sc = Scenario.model_validate({"name": "c", "ingress": {"canary": {"weight": 10}}})
    model = _model(sc)
    assert {b.service_name for b in model.bindings.values()} == {"demo", "demo-v2"}
    (rule,) = model.rules
    (action,) = rule.actions
    weights = {model.target_groups[ref.target_group_id].name: ref.weight
               for ref in action.forward.target_groups}
    by_service = {b.service_name: weights[model.target_groups[b.target_group_id].name]
                  for b in model.bindings.values()}
    assert by_service == {"demo": 90, "demo-v2": 10}


def _forward_by_service(model: Any) -> dict[str, int | None]:
    (rule,) = model.rules
    (action,) = rule.actions
    name_of = {b.target_group_id: b.service_name for b in model.bindings.values()}
    return {name_of[ref.target_group_id]: ref.weight for ref in action.forward.target_groups}


@pytest.mark.parametrize("via", ["backend", "weights"])
def test_every_swap_version_builds_and_ends_on_the_second_service(via: str) -> None:
    sc = Scenario.model_validate({"name": "s", "ingress": {"swap": {"via": via}}})
    versions = plan.ingress_steps(sc, "demo")
    models = [_model(sc, step=v) for v in versions]
    assert {b.service_name for b in models[0].bindings.values()} == set(versions[0].services)
    last = models[-1]
    assert {b.service_name for b in last.bindings.values()} == {"demo-v2"}
    assert list(_forward_by_service(last)) == ["demo-v2"]
    if via == "weights":
        assert _forward_by_service(models[1]) == {"demo": 0, "demo-v2": 100}


def test_second_ingress_shares_the_load_balancer_and_listener_rules_by_order() -> None:
    sc = Scenario.model_validate({"name": "g", "ingress": {
        "groupName": "shop", "second": {"path": "/api", "order": -1}}})
    model = _model(sc)
    (listener,) = model.listeners
    assert listener.port == 30555
    assert {b.service_name for b in model.bindings.values()} == {"demo", "demo-v2"}
    # the lower group.order comes first: /api is matched before the catch-all /
    paths = [c.values for r in sorted(model.rules, key=lambda r: r.priority)
             for c in r.conditions if c.field == "path-pattern"]
    assert paths[0] == ("/api", "/api/*") and paths[-1][0] == "/*"
