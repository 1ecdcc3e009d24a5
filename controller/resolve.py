"""Endpoint resolution for IP targets: which pod IP:port pairs belong in the target group.

Works on plain dicts shaped like the Kubernetes API JSON (camelCase), the same shapes the
informer caches hold. Rules follow kubernetes-sigs/aws-load-balancer-controller
pkg/backend/endpoint_resolver.go at v3.5.0; the release switches (`Rules`, set by
--behave-like) bring back what earlier releases did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
NOT_CACHED = "pod not in cache"


class BackendNotFound(Exception):
    """Service or service port missing: the TGB's targets must all be deregistered."""


class PodNotCached(Exception):
    """A ready endpoint's pod is not in the cache (--missing-pod error, ALBC v2.2.x
    pkg/backend/endpoint_resolver.go:89-90): the reconcile fails and backs off."""


class Rules(Protocol):
    """The resolver's release switches (controller/config.py Config has them all)."""

    missing_pod: str
    potential_ready: bool
    not_ready_needs_gate: bool
    ready_nil_is_ready: bool
    fail_open: bool


@dataclass(frozen=True)
class PodEndpoint:
    """One resolved target: the endpoint address and port plus the pod behind it."""

    ip: str
    port: int
    pod: Obj = field(compare=False, hash=False, repr=False)

    @property
    def key(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def pod_name(self) -> str:
        return str(self.pod.get("metadata", {}).get("name", ""))


@dataclass
class Resolution:
    """Resolver output; potential_ready asks the caller to poll (endpoints may still turn up)."""

    endpoints: list[PodEndpoint]
    potential_ready: bool = False
    # ("ip:port", pod name, why) for the log
    skipped: list[tuple[str, str, str]] = field(default_factory=list)


def find_service_port(svc: Obj | None, port_ref: int | str, svc_name: str = "") -> Obj:
    """Match serviceRef.port: a string matches ServicePort.name, an int ServicePort.port."""
    if svc is None:
        raise BackendNotFound(f'services "{svc_name}" not found')
    ports = svc.get("spec", {}).get("ports") or []
    for p in ports:
        if isinstance(port_ref, str):
            if p.get("name") == port_ref:
                return dict(p)
        elif int(p.get("port", -1)) == int(port_ref):
            return dict(p)
    name = svc.get("metadata", {}).get("name", svc_name)
    raise BackendNotFound(f"unable to find port {port_ref} on service {name}")


def endpoints_data_from_slices(slices: Iterable[Obj]) -> list[tuple[list[Obj], list[Obj]]]:
    """(ports, endpoints) per EndpointSlice, unchanged."""
    out = []
    for s in slices:
        out.append((list(s.get("ports") or []), list(s.get("endpoints") or [])))
    return out


def endpoints_data_from_legacy(eps: Obj | None) -> list[tuple[list[Obj], list[Obj]]]:
    """Convert core/v1 Endpoints: addresses -> ready, notReadyAddresses -> not ready,
    terminating always false (the legacy API cannot express it)."""
    if eps is None:
        return []
    out = []
    for subset in eps.get("subsets") or []:
        ports = [
            {k: v for k, v in p.items() if k in ("name", "port", "protocol", "appProtocol")}
            for p in subset.get("ports") or []
        ]
        endpoints = []
        for ready, key in ((True, "addresses"), (False, "notReadyAddresses")):
            for addr in subset.get(key) or []:
                endpoints.append(
                    {
                        "addresses": [addr.get("ip")],
                        "conditions": {"ready": ready, "serving": ready, "terminating": False},
                        "targetRef": addr.get("targetRef"),
                        "nodeName": addr.get("nodeName"),
                    }
                )
        out.append((ports, endpoints))
    return out


def pod_condition(pod: Obj, ctype: str) -> Obj | None:
    for c in pod.get("status", {}).get("conditions") or []:
        if c.get("type") == ctype:
            return dict(c)
    return None


def pod_containers_ready(pod: Obj) -> bool:
    c = pod_condition(pod, "ContainersReady")
    return c is not None and c.get("status") == "True"


def pod_has_gate(pod: Obj, gate: str) -> bool:
    return any(
        g.get("conditionType") == gate for g in pod.get("spec", {}).get("readinessGates") or []
    )


def node_ready_status(node: Obj | None) -> str:
    """Node Ready condition status; a missing node or condition counts as False."""
    if node is None:
        return "False"
    for c in node.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return str(c.get("status", "False"))
    return "False"


def resolve_pod_endpoints(
    svc_port: Obj,
    endpoints_data: list[tuple[list[Obj], list[Obj]]],
    namespace: str,
    get_pod: Callable[[str, str], Obj | None],
    get_node: Callable[[str], Obj | None],
    gate: str,
    rules: Rules,
) -> Resolution:
    """Apply the per-endpoint rules and fail-open.

    1. targetRef must be a Pod; use addresses[0].
    2. pod not in the cache -> skip; --missing-pod poll also asks for a poll (the pod may
       arrive later), --missing-pod error fails a ready endpoint (v2.2.x).
    3. ready true, or nil with --ready-nil-is-ready -> register.
    4. otherwise only if the pod's ContainersReady is True (else skip; with
       --potential-ready, poll if gated). v2.2.x (--not-ready-needs-gate): only with this
       binding's gate, and then registered whatever the node.
    5. for those: node Ready True -> include unless terminating; Unknown -> unknown bucket;
       False or missing -> skip.
    6. fail-open: no ready endpoints -> use the unknown bucket.
    """
    ready: list[PodEndpoint] = []
    unknown: list[PodEndpoint] = []
    res = Resolution(endpoints=[])
    svc_port_name = svc_port.get("name") or ""
    for ports, eps in endpoints_data:
        for port in ports:
            if svc_port_name and svc_port_name != (port.get("name") or ""):
                continue
            ep_port = int(port.get("port") or 0)
            for ep in eps:
                ref = ep.get("targetRef") or {}
                addrs = ep.get("addresses") or []
                if ref.get("kind") != "Pod" or not addrs:
                    continue
                addr = str(addrs[0])
                target = f"{addr}:{ep_port}"
                cond = ep.get("conditions") or {}
                is_ready = cond.get("ready") is True or (
                    cond.get("ready") is None and rules.ready_nil_is_ready
                )
                pod_name = str(ref.get("name"))
                pod = get_pod(namespace, pod_name)
                if pod is None:
                    if rules.missing_pod == "error" and is_ready:
                        raise PodNotCached(f"couldn't find podInfo for ready endpoint {addr}")
                    if rules.missing_pod != "skip":
                        res.potential_ready = True
                    res.skipped.append((target, pod_name, NOT_CACHED))
                    continue
                pe = PodEndpoint(addr, ep_port, pod)
                if is_ready:
                    ready.append(pe)
                    continue
                gated = pod_has_gate(pod, gate)
                if rules.not_ready_needs_gate and not gated:
                    res.skipped.append((target, pod_name, "not ready, no readiness gate"))
                    continue
                if not pod_containers_ready(pod):
                    if gated and rules.potential_ready:
                        res.potential_ready = True
                    res.skipped.append((target, pod_name, "not ready, containers not ready"))
                    continue
                if rules.not_ready_needs_gate:
                    ready.append(pe)
                    continue
                node_status = node_ready_status(
                    get_node(str(pod.get("spec", {}).get("nodeName") or ""))
                )
                if node_status == "True":
                    if cond.get("terminating") is True:
                        res.skipped.append((target, pod_name, "terminating"))
                    else:
                        ready.append(pe)
                elif node_status == "Unknown":
                    unknown.append(pe)
                else:
                    res.skipped.append((target, pod_name, "node not ready"))
    res.endpoints = ready
    if rules.fail_open and not ready:
        res.endpoints = unknown
    return res
