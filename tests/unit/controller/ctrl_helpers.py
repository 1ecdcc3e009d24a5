"""Builders of real Kubernetes object shapes (client models -> API JSON dicts) for the tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubernetes import client as k

from controller.config import Config
from controller.gates import gate_type

_api = k.ApiClient()
NS = "shop"
ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"
T0 = dt.datetime(2026, 11, 25, 10, 0, 0, tzinfo=dt.UTC)


def to_dict(model: Any) -> dict[str, Any]:
    """Serialise a client model exactly as the API server sends it (camelCase JSON)."""
    return _api.sanitize_for_serialization(model)


def pod(
    name: str,
    ip: str | None,
    *,
    ns: str = NS,
    labels: dict[str, str] | None = None,
    containers_ready: bool = True,
    ready: bool | None = None,
    gates: list[str] | None = None,
    node: str = "node-1",
    uid: str | None = None,
    created: dt.datetime = T0,
    extra_conditions: list[k.V1PodCondition] | None = None,
) -> dict[str, Any]:
    conds = [
        k.V1PodCondition(type="ContainersReady", status="True" if containers_ready else "False"),
        k.V1PodCondition(
            type="Ready",
            status="True" if (ready if ready is not None else containers_ready) else "False",
        ),
    ] + list(extra_conditions or [])
    p = k.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=k.V1ObjectMeta(
            name=name,
            namespace=ns,
            uid=uid or f"uid-{name}",
            labels=labels or {"app": "web"},
            creation_timestamp=created,
        ),
        spec=k.V1PodSpec(
            containers=[k.V1Container(name="app", image="alb-testbed:dev")],
            node_name=node,
            readiness_gates=[k.V1PodReadinessGate(condition_type=gate_type(g)) for g in gates or []]
            or None,
        ),
        status=k.V1PodStatus(phase="Running", pod_ip=ip, conditions=conds),
    )
    return to_dict(p)


def node(name: str = "node-1", ready: str | None = "True") -> dict[str, Any]:
    conds = [k.V1NodeCondition(type="Ready", status=ready)] if ready else []
    return to_dict(
        k.V1Node(
            api_version="v1",
            kind="Node",
            metadata=k.V1ObjectMeta(name=name),
            status=k.V1NodeStatus(conditions=conds),
        )
    )


def service(
    name: str = "web",
    *,
    ns: str = NS,
    selector: dict[str, str] | None = None,
    ports: list[tuple[str | None, int, int]] | None = None,
) -> dict[str, Any]:
    ports = ports or [("http", 80, 8080)]
    return to_dict(
        k.V1Service(
            api_version="v1",
            kind="Service",
            metadata=k.V1ObjectMeta(name=name, namespace=ns),
            spec=k.V1ServiceSpec(
                selector=selector if selector is not None else {"app": "web"},
                ports=[
                    k.V1ServicePort(name=n, port=p, target_port=t, protocol="TCP")
                    for n, p, t in ports
                ],
            ),
        )
    )


def ep(
    ip: str,
    pod_name: str,
    ready: bool | None = True,
    terminating: bool | None = False,
    serving: bool | None = None,
    kind: str = "Pod",
    node_name: str = "node-1",
) -> Any:
    return k.V1Endpoint(
        addresses=[ip],
        conditions=k.V1EndpointConditions(
            ready=ready, serving=ready if serving is None else serving, terminating=terminating
        ),
        target_ref=k.V1ObjectReference(kind=kind, name=pod_name, namespace=NS),
        node_name=node_name,
    )


def endpoint_slice(
    svc: str = "web",
    endpoints: list[Any] | None = None,
    *,
    ns: str = NS,
    name: str | None = None,
    port_name: str | None = "http",
    port: int = 8080,
) -> dict[str, Any]:
    return to_dict(
        k.V1EndpointSlice(
            api_version="discovery.k8s.io/v1",
            kind="EndpointSlice",
            address_type="IPv4",
            metadata=k.V1ObjectMeta(
                name=name or f"{svc}-abcde",
                namespace=ns,
                labels={"kubernetes.io/service-name": svc},
            ),
            endpoints=endpoints or [],
            ports=[k.DiscoveryV1EndpointPort(name=port_name, port=port, protocol="TCP")],
        )
    )


def legacy_endpoints(
    svc: str = "web",
    ready: list[tuple[str, str]] | None = None,
    not_ready: list[tuple[str, str]] | None = None,
    *,
    ns: str = NS,
    port_name: str | None = "http",
    port: int = 8080,
) -> dict[str, Any]:
    def addr(ip: str, p: str) -> Any:
        return k.V1EndpointAddress(
            ip=ip,
            node_name="node-1",
            target_ref=k.V1ObjectReference(kind="Pod", name=p, namespace=ns),
        )

    return to_dict(
        k.V1Endpoints(
            api_version="v1",
            kind="Endpoints",
            metadata=k.V1ObjectMeta(name=svc, namespace=ns),
            subsets=[
                k.V1EndpointSubset(
                    addresses=[addr(*a) for a in ready or []] or None,
                    not_ready_addresses=[addr(*a) for a in not_ready or []] or None,
                    ports=[k.CoreV1EndpointPort(name=port_name, port=port, protocol="TCP")],
                )
            ],
        )
    )


def tgb(
    name: str = "web-tgb",
    *,
    ns: str = NS,
    svc: str = "web",
    port: int | str = 80,
    arn: str = ARN,
    target_type: str = "ip",
    created: str = "2026-11-25T10:00:00Z",
) -> dict[str, Any]:
    """A TargetGroupBinding as the API returns it (a CRD: no client model exists)."""
    return {
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "TargetGroupBinding",
        "metadata": {
            "name": name,
            "namespace": ns,
            "generation": 1,
            "creationTimestamp": created,
            "uid": f"uid-{name}",
        },
        "spec": {
            "targetGroupARN": arn,
            "targetType": target_type,
            "serviceRef": {"name": svc, "port": port},
        },
    }


def namespace(name: str = NS, inject: bool = True) -> dict[str, Any]:
    labels = {"elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"} if inject else {}
    return to_dict(
        k.V1Namespace(
            api_version="v1", kind="Namespace", metadata=k.V1ObjectMeta(name=name, labels=labels)
        )
    )


def cfg(**kw: Any) -> Config:
    base: dict[str, Any] = {"aws_endpoint_url": "http://fake-aws:5000"}
    base.update(kw)
    return Config(**base)
