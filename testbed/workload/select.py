"""Pick, from a workload's objects, what the target group binds to: the Deployment, the Service
that selects its pods, the Service port, and the container serving that port. Every mistake
that would make a run fail later (a Service selecting nothing, a port that does not exist) is
an error here, before anything is applied."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from testbed.workload.manifests import WorkloadError, describe


@dataclass(frozen=True)
class Target:
    deployment: dict[str, Any]
    service: dict[str, Any]
    service_port: dict[str, Any]  # the Service's port entry the TargetGroupBinding names
    container: dict[str, Any]  # the container whose port is the Service port's targetPort
    target_port: int  # the container port number the targets are registered with

    @property
    def deployment_name(self) -> str:
        return str(self.deployment["metadata"]["name"])

    @property
    def service_name(self) -> str:
        return str(self.service["metadata"]["name"])

    @property
    def replicas(self) -> int:
        # an absent (or null) replicas defaults to 1, as the API server does
        return int((self.deployment.get("spec") or {}).get("replicas") or 1)

    @property
    def port_ref(self) -> int | str:
        """How the TargetGroupBinding's serviceRef names the port: its number."""
        return int(self.service_port["port"])


def _named(objs: list[dict[str, Any]], kind: str, name: str | None, field: str,
           plural: str | None = None) -> dict[str, Any]:
    names = [o["metadata"]["name"] for o in objs]
    if name is not None:
        for o in objs:
            if o["metadata"]["name"] == name:
                return o
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else \
            (f"; the workload has {', '.join(names)}" if names else "")
        raise WorkloadError(f"workload.{field}: no {kind} named {name!r}{hint}")
    if not objs:
        raise WorkloadError(f"the workload has no {kind}")
    if len(objs) > 1:
        raise WorkloadError(f"the workload has {len(objs)} {plural or kind + 's'} "
                            f"({', '.join(names)}); "
                            f"name one with workload.{field}")
    return objs[0]


def _pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return dict(deployment.get("spec", {}).get("template", {}).get("metadata", {})
                .get("labels") or {})


def selects(service: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Service selects a pod when every selector label matches; an empty selector selects
    nothing the endpoints controller manages (https://kubernetes.io/docs/concepts/services-networking/service/#services-without-selectors)."""
    selector = service.get("spec", {}).get("selector") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _service(docs: list[dict[str, Any]], deployment: dict[str, Any], name: str | None
             ) -> dict[str, Any]:
    services = [d for d in docs if d["kind"] == "Service"]
    labels = _pod_labels(deployment)
    if name is not None:
        svc = _named(services, "Service", name, "service")
        if not selects(svc, labels):
            selector = svc.get("spec", {}).get("selector") or {}
            raise WorkloadError(
                f"{describe(svc)} selects nothing of {describe(deployment)}: its selector "
                f"{selector or '(none)'} does not match the pod labels {labels or '(none)'}")
        return svc
    matching = [s for s in services if selects(s, labels)]
    if not matching:
        raise WorkloadError(
            f"no Service selects the pods of {describe(deployment)} (pod labels "
            f"{labels or '(none)'}; Services: " +
            (", ".join(f"{describe(s)} selector {s.get('spec', {}).get('selector') or '(none)'}"
                       for s in services) or "none") + ")")
    return _named(matching, "Service", None, "service",
                  plural="Services selecting the Deployment's pods")


def _service_port(svc: dict[str, Any], port: int | str | None) -> dict[str, Any]:
    ports = svc.get("spec", {}).get("ports") or []
    shown = ", ".join(f"{p.get('name') or '-'}:{p.get('port')}" for p in ports) or "none"
    if port is None:
        if len(ports) != 1:
            raise WorkloadError(f"{describe(svc)} has {len(ports)} ports ({shown}); name one "
                                "with workload.port")
        return dict(ports[0])
    for p in ports:
        if p.get("port") == port or (p.get("name") and p.get("name") == port):
            return dict(p)
    raise WorkloadError(f"workload.port: {describe(svc)} has no port {port!r} (ports: {shown})")


def _container(deployment: dict[str, Any], svc: dict[str, Any], sport: dict[str, Any]
               ) -> tuple[dict[str, Any], int]:
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}) \
        .get("containers") or []
    if not containers:
        raise WorkloadError(f"{describe(deployment)} has no containers")
    # targetPort defaults to port (https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/#ServiceSpec)
    target = sport.get("targetPort", sport.get("port"))
    for c in containers:
        for cp in c.get("ports") or []:
            if cp.get("containerPort") == target or (cp.get("name") and cp.get("name") == target):
                return c, int(cp["containerPort"])
    if isinstance(target, int):
        # a numeric targetPort need not be declared on a container; the first container is
        # the one serving it unless another declares it
        return containers[0], target
    raise WorkloadError(f"{describe(svc)} port {sport.get('port')} targets the named port "
                        f"{target!r}, which no container of {describe(deployment)} declares")


def select_target(docs: list[dict[str, Any]], deployment: str | None = None,
                  service: str | None = None, port: int | str | None = None) -> Target:
    """The Deployment, Service, port and container a run binds its target group to."""
    dep = _named([d for d in docs if d["kind"] == "Deployment"], "Deployment", deployment,
                 "deployment")
    svc = _service(docs, dep, service)
    sport = _service_port(svc, port)
    container, target_port = _container(dep, svc, sport)
    replicas = (dep.get("spec") or {}).get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or isinstance(replicas, bool)):
        raise WorkloadError(f"{describe(dep)}: spec.replicas must be an integer, got "
                            f"{replicas!r}")
    if replicas is not None and replicas < 1:
        raise WorkloadError(f"{describe(dep)} has replicas {replicas}: a rollout of no pods "
                            "shows nothing; set replicas to 1 or more")
    return Target(dep, svc, sport, container, target_port)
