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


def cfg(release: str | None = None, **kw: Any) -> Config:
    """A Config as the latest release, or as `release` (controller/presets.py); kw win."""
    base: dict[str, Any] = {"aws_endpoint_url": "http://fake-aws:5000"}
    base.update(kw)
    return Config.behaving_like(release, **base) if release else Config(**base)


# ---- a tiny API server for the real KubeCluster (paths, content types, bodies) ------------
LISTS = {
    "/apis/elbv2.k8s.aws/v1beta1/targetgroupbindings": "TargetGroupBindingList",
    "/api/v1/services": "ServiceList",
    "/api/v1/pods": "PodList",
    "/api/v1/nodes": "NodeList",
    "/api/v1/namespaces": "NamespaceList",
    "/apis/discovery.k8s.io/v1/endpointslices": "EndpointSliceList",
    "/apis/networking.k8s.io/v1/ingresses": "IngressList",
    "/apis/networking.k8s.io/v1/ingressclasses": "IngressClassList",
}
TGBS = "/apis/elbv2.k8s.aws/v1beta1/targetgroupbindings"


class FakeAPI:
    """Lists `objects` by collection path, holds watches open until closed, records every
    write (method, path, content type, body): a PATCH of a TargetGroupBinding is merged into
    the first one listed; other PATCHes echo their metadata; POST echoes the body; DELETE
    answers 404."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        import json
        import re
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlparse

        from controller.testing import merge_patch

        self.objects = objects
        self.requests: list[tuple[str, str, str, Any]] = []
        self.lists: list[str] = []  # every list GET's path
        self.stop = threading.Event()
        api = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def _send(self, code: int, obj: Any) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _record(self, method: str) -> Any:
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n)) if n else None
                api.requests.append((method, self.path, self.headers["Content-Type"] or "",
                                     body))
                return body

            def do_GET(self) -> None:  # noqa: N802
                u = urlparse(self.path)
                if parse_qs(u.query).get("watch") == ["true"]:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    api.stop.wait(5)
                    return
                api.lists.append(u.path)
                # a namespaced list: the cluster-wide collection's items of that namespace
                m = re.match(r"^(/apis?/.+?)/namespaces/([^/]+)/([^/]+)$", u.path)
                path, ns = (f"{m[1]}/{m[3]}", m[2]) if m else (u.path, None)
                if path not in LISTS:
                    self._send(404, {"kind": "Status", "code": 404})
                    return
                items = [o for o in api.objects.get(path, [])
                         if ns is None or o.get("metadata", {}).get("namespace") == ns]
                self._send(200, {"kind": LISTS[path], "apiVersion": "v1",
                                 "metadata": {"resourceVersion": "100"}, "items": items})

            def do_PATCH(self) -> None:  # noqa: N802
                body = self._record("PATCH")
                if "/targetgroupbindings/" in self.path and api.objects.get(TGBS):
                    t = api.objects[TGBS][0]
                    merge_patch(t, dict(body))
                    t["metadata"]["resourceVersion"] = str(
                        int(t["metadata"]["resourceVersion"]) + 1)
                    self._send(200, t)
                    return
                kind = "Ingress" if "/ingresses/" in self.path else "Pod"
                name = urlparse(self.path).path.removesuffix("/status").rsplit("/", 1)[-1]
                self._send(200, {"kind": kind, "apiVersion": "v1",
                                 "metadata": {"name": name, "namespace": NS,
                                              "resourceVersion": "101",
                                              **(body.get("metadata") or {})}})

            def do_POST(self) -> None:  # noqa: N802
                body = self._record("POST")
                self._send(201, {**body, "metadata": {**body["metadata"],
                                                      "resourceVersion": "102"}})

            def do_DELETE(self) -> None:  # noqa: N802
                self._record("DELETE")
                self._send(404, {"kind": "Status", "code": 404})

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
