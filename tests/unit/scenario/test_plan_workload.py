"""A workload's plan: the user's objects applied unchanged into the run's namespace, with the
run's Namespace first and its TargetGroupBinding before the pods; the target group on the
container's port."""

from __future__ import annotations

import copy
from typing import Any

from testbed.scenario import parse_scenario, plan
from testbed.scenario.plan import GATE_INJECT_LABEL, POD_MAKERS
from testbed.workload.select import select_target

ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/mine/abc"
NS = "tb-mine-1a2b3"


def _docs() -> list[dict[str, Any]]:
    labels = {"app": "shop"}
    pod = {"metadata": {"labels": dict(labels)}, "spec": {"containers": [
        {"name": "web", "image": "shop:1", "ports": [{"name": "http", "containerPort": 3000}],
         "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}}}]}}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "shop", "labels": {"team": "blue"},
                      "annotations": {"note": "keep me"}},
         "spec": {"replicas": 4, "selector": {"matchLabels": dict(labels)},
                  "strategy": {"rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}},
                  "template": copy.deepcopy(pod)}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shop-config"},
         "data": {"LOG": "debug"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "shop-svc"},
         "spec": {"selector": dict(labels),
                  "ports": [{"name": "web", "port": 8080, "targetPort": "http"}]}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cleanup"},
         "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
             "restartPolicy": "Never",
             "containers": [{"name": "c", "image": "shop-cleanup:1"}]}}}}}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
         "metadata": {"name": "shop-pdb"},
         "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(labels)}}},
    ]


def _plan(scenario: str = "name: mine\nworkload: {path: k8s}\n") -> tuple[
        list[dict[str, Any]], list[dict[str, Any]]]:
    docs = _docs()
    target = select_target(docs)
    return docs, plan.workload_manifests(parse_scenario(scenario), docs, target, ARN, ns=NS)


def test_order_namespace_then_objects_then_binding_then_pod_makers() -> None:
    _, objs = _plan()
    assert [(o["kind"], o["metadata"]["name"]) for o in objs] == [
        ("Namespace", NS), ("ConfigMap", "shop-config"), ("Service", "shop-svc"),
        ("PodDisruptionBudget", "shop-pdb"), ("TargetGroupBinding", "shop-svc"),
        ("Deployment", "shop"), ("CronJob", "cleanup")]
    kinds = [o["kind"] for o in objs]
    first_pod_maker = min(i for i, k in enumerate(kinds) if k in POD_MAKERS)
    assert kinds.index("TargetGroupBinding") < first_pod_maker
    assert all(k in POD_MAKERS for k in kinds[first_pod_maker:])


def test_namespace_is_labelled_for_gate_injection_only_with_the_gate() -> None:
    _, objs = _plan()
    assert objs[0] == {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": NS, "labels": {"testbed/scenario": "mine", GATE_INJECT_LABEL: "enabled"}}}
    _, objs = _plan("name: mine\nworkload: {path: k8s, readinessGate: false}\n")
    assert objs[0]["metadata"]["labels"] == {"testbed/scenario": "mine"}


def test_binding_is_named_after_the_service_and_names_its_port_number() -> None:
    _, objs = _plan()
    tgb = next(o for o in objs if o["kind"] == "TargetGroupBinding")
    assert tgb == {
        "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
        "metadata": {"name": "shop-svc", "namespace": NS},
        "spec": {"targetGroupARN": ARN, "targetType": "ip",
                 "serviceRef": {"name": "shop-svc", "port": 8080}}}


def test_every_object_but_the_namespace_is_in_the_run_namespace() -> None:
    _, objs = _plan()
    assert "namespace" not in objs[0]["metadata"]
    assert [o["metadata"]["namespace"] for o in objs[1:]] == [NS] * (len(objs) - 1)


def test_user_objects_are_otherwise_unchanged_and_the_input_untouched() -> None:
    docs, objs = _plan()
    before = copy.deepcopy(docs)
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objs}
    for doc in before:
        out = copy.deepcopy(by_name[(doc["kind"], doc["metadata"]["name"])])
        assert out["metadata"].pop("namespace") == NS
        assert out == doc
    assert docs == before  # the plan copied, it did not write into the user's objects
    assert len(objs) == len(docs) + 2


def test_the_strategy_and_replicas_are_the_users() -> None:
    _, objs = _plan("name: mine\nworkload: {path: k8s}\nrollout: {timeoutSeconds: 42}\n")
    dep = next(o for o in objs if o["kind"] == "Deployment")
    assert dep["spec"]["replicas"] == 4
    assert dep["spec"]["strategy"] == {"rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}}
    assert "progressDeadlineSeconds" not in dep["spec"]


def test_target_group_port_is_the_container_port() -> None:
    sc = parse_scenario("name: mine\nworkload: {path: k8s}\n")
    target = select_target(_docs())
    assert target.target_port == 3000
    calls = plan.aws_calls(sc, target_port=target.target_port)
    assert calls["create_target_group"]["Port"] == 3000
    assert plan.aws_calls(sc)["create_target_group"]["Port"] == plan.APP_PORT
