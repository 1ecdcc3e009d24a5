"""Real manifest dicts for the check tests: a Namespace, a Deployment and its Service, shaped
like what platform engineers bring (kubectl-applyable objects), with the knobs the rules read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

GATE_LABEL = "elbv2.k8s.aws/pod-readiness-gate-inject"

def build_docs(*, replicas: Any = 3, strategy: Any = None, pre_stop: Any = None,
               grace: Any = None, probe: bool = True, namespace_label: bool | None = True,
               template_gate: bool = False, sidecar: bool = False,
               service_annotations: dict[str, str] | None = None,
               ingress_annotations: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """replicas, strategy, grace (terminationGracePeriodSeconds): None leaves the field out;
    pre_stop: the container's lifecycle.preStop (None: no lifecycle); namespace_label:
    True/False for a Namespace object with/without the gate label, None for none."""
    app: dict[str, Any] = {
        "name": "web", "image": "registry.example/shop/web:1.4.2",
        "ports": [{"name": "http", "containerPort": 8080}],
    }
    if probe:
        app["readinessProbe"] = {"httpGet": {"path": "/ready", "port": "http"},
                                 "periodSeconds": 2}
    if pre_stop is not None:
        app["lifecycle"] = {"preStop": pre_stop}
    containers = [app]
    if sidecar:
        containers.insert(0, {"name": "envoy", "image": "envoyproxy/envoy:v1.31.0",
                              "ports": [{"containerPort": 9901}]})
    pod_spec: dict[str, Any] = {"containers": containers}
    if grace is not None:
        pod_spec["terminationGracePeriodSeconds"] = grace
    if template_gate:
        pod_spec["readinessGates"] = [
            {"conditionType": "target-health.elbv2.k8s.aws/k8s-shop-web-0123456789"}]
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": "web"}},
                            "template": {"metadata": {"labels": {"app": "web"}},
                                         "spec": pod_spec}}
    if replicas is not None:
        spec["replicas"] = replicas
    if strategy is not None:
        spec["strategy"] = strategy
    docs: list[dict[str, Any]] = []
    if namespace_label is not None:
        labels = {GATE_LABEL: "enabled"} if namespace_label else {"team": "shop"}
        docs.append({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": "shop", "labels": labels}})
    service: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    if service_annotations:
        service["metadata"]["annotations"] = service_annotations
    docs += [service, {"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web", "namespace": "shop"}, "spec": spec}]
    if ingress_annotations is not None:
        docs.append({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "shop",
                         "annotations": ingress_annotations},
            "spec": {"ingressClassName": "alb", "rules": [{"http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}})
    return docs


@pytest.fixture
def make_docs() -> Callable[..., list[dict[str, Any]]]:
    return build_docs
