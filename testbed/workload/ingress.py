"""A workload's own Ingress: what a run checks before it applies one (the controller builds the
ALB from it, as aws-load-balancer-controller does) so a mistake ends the run before anything is
created, with what to change."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from testbed.workload.manifests import WorkloadError, describe
from testbed.workload.select import Target

ANNOTATION = "alb.ingress.kubernetes.io/"


def ingresses(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == "Ingress"]


def _action_services(ing: dict[str, Any], name: str) -> set[str]:
    """The Services of the `actions.<name>` forward action (serviceName; annotations.md at
    v3.5.0); none when it is missing or malformed (the controller reports that, as an event)."""
    value = (ing["metadata"].get("annotations") or {}).get(f"{ANNOTATION}actions.{name}")
    try:
        action = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        return set()
    config = action.get("forwardConfig") if isinstance(action, dict) else None
    groups = config.get("targetGroups") if isinstance(config, dict) else None
    return {str(g["serviceName"]) for g in groups or [] if isinstance(g, dict)
            and g.get("serviceName")} if isinstance(groups, list) else set()


def _services(ing: dict[str, Any], backend: dict[str, Any]) -> set[str]:
    """What one backend routes to: its Service, or an action's Services (port
    `use-annotation`)."""
    svc = backend.get("service") or {}
    name = svc.get("name")
    if not name:
        return set()
    if (svc.get("port") or {}).get("name") == "use-annotation":
        return _action_services(ing, str(name))
    return {str(name)}


def routes(ing: dict[str, Any], service: str) -> list[str | None]:
    """The hosts under which the Ingress routes to `service` (None: any host); empty when it
    does not route to it."""
    spec = ing.get("spec") or {}
    out: list[str | None] = []
    if service in _services(ing, spec.get("defaultBackend") or {}):
        out.append(None)
    for rule in spec.get("rules") or []:
        paths = (rule.get("http") or {}).get("paths") or []
        if any(service in _services(ing, p.get("backend") or {}) for p in paths):
            out.append(str(rule["host"]).lower() if rule.get("host") else None)
    return out


def check_ingresses(docs: list[dict[str, Any]], target: Target, load_host: str | None) -> None:
    """The workload's Ingresses can carry the run: ip targets, one routes to the run's Service,
    and the load's Host matches a rule (else every request would get the listener's 404)."""
    ings = ingresses(docs)
    problems = []
    for ing in ings:
        ann = ing["metadata"].get("annotations") or {}
        if ann.get(ANNOTATION + "target-type", "ip") != "ip":
            problems.append(f"{describe(ing)}: target-type {ann[ANNOTATION + 'target-type']!r}:"
                            " the testbed registers pod IPs only; set "
                            f"{ANNOTATION}target-type: ip")
    found = {describe(ing): routes(ing, target.service_name) for ing in ings}
    if ings and not any(found.values()):
        problems.append(f"no Ingress routes to Service/{target.service_name}, the one the run "
                        f"loads and rolls ({', '.join(found)}); point a rule at it or set "
                        "workload.service")
    hosts = [h for hs in found.values() for h in hs]
    if hosts and None not in hosts:
        named = ", ".join(sorted({str(h) for h in hosts}))
        if load_host is None:
            problems.append(f"the rules to Service/{target.service_name} all have a host "
                            f"({named}); set load.host to one of them, or requests meet "
                            "another rule or the listener's default 404")
        elif not any(fnmatch.fnmatchcase(load_host.lower(), str(h)) for h in hosts):
            # ALB matches host names without regard to case (host-header conditions)
            problems.append(f"load.host {load_host!r} matches none of the hosts of the rules "
                            f"to Service/{target.service_name} ({named})")
    if problems:
        raise WorkloadError("the workload's Ingress cannot carry the run:\n  "
                            + "\n  ".join(problems))
