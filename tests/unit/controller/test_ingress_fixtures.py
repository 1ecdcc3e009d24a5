"""Builders of real kubernetes client models (V1Ingress, V1Service, V1IngressClass) for the
Ingress model-layer tests. No tests here; the test_ingress_* modules import it."""

from __future__ import annotations

from typing import Any

from kubernetes import client as k

from controller.ingress.build import BuildOptions
from controller.ingress.classes import IngressGroup, group_id_for, sort_members

NS = "shop"
CLUSTER = "testbed"
OPTS = BuildOptions(cluster_name=CLUSTER)
A = "alb.ingress.kubernetes.io/"
_LAX = k.Configuration()
_LAX.client_side_validation = False


def backend(svc: str, port: int | str) -> k.V1IngressBackend:
    sbp = k.V1ServiceBackendPort(name=port) if isinstance(port, str) else k.V1ServiceBackendPort(
        number=port
    )
    return k.V1IngressBackend(service=k.V1IngressServiceBackend(name=svc, port=sbp))


def path(
    p: str | None, svc: str = "web", port: int | str = 80, path_type: str | None = "Prefix"
) -> k.V1HTTPIngressPath:
    if path_type is None:
        # networking/v1 requires pathType and the client model enforces it; the builder still
        # handles an absent one (older objects), so build that shape without client validation
        return k.V1HTTPIngressPath(
            path=p, path_type=None, backend=backend(svc, port), local_vars_configuration=_LAX
        )
    return k.V1HTTPIngressPath(path=p, path_type=path_type, backend=backend(svc, port))


def rule(host: str | None, *paths: k.V1HTTPIngressPath) -> k.V1IngressRule:
    return k.V1IngressRule(host=host, http=k.V1HTTPIngressRuleValue(paths=list(paths)))


def ingress(
    name: str = "web",
    *,
    ns: str = NS,
    annotations: dict[str, str] | None = None,
    class_name: str | None = "alb",
    rules: list[k.V1IngressRule] | None = None,
    default_backend: k.V1IngressBackend | None = None,
    deleting: bool = False,
) -> k.V1Ingress:
    import datetime as dt

    return k.V1Ingress(
        metadata=k.V1ObjectMeta(
            name=name,
            namespace=ns,
            annotations=annotations,
            deletion_timestamp=dt.datetime(2026, 1, 1, tzinfo=dt.UTC) if deleting else None,
        ),
        spec=k.V1IngressSpec(
            ingress_class_name=class_name,
            rules=rules if rules is not None else [rule(None, path("/"))],
            default_backend=default_backend,
        ),
    )


def service(
    name: str = "web",
    *,
    ns: str = NS,
    ports: list[tuple[str | None, int, int | str]] | None = None,
    annotations: dict[str, str] | None = None,
    uid: str | None = None,
    ip_families: list[str] | None = None,
) -> k.V1Service:
    ports = ports if ports is not None else [("http", 80, 8080)]
    return k.V1Service(
        metadata=k.V1ObjectMeta(
            name=name, namespace=ns, annotations=annotations, uid=uid or f"uid-{ns}-{name}"
        ),
        spec=k.V1ServiceSpec(
            ports=[k.V1ServicePort(name=n, port=p, target_port=t) for n, p, t in ports],
            ip_families=ip_families,
        ),
    )


def ingress_class(
    name: str = "alb",
    controller: str = "ingress.k8s.aws/alb",
    *,
    default: bool = False,
    params_kind: str | None = None,
) -> k.V1IngressClass:
    annotations = {"ingressclass.kubernetes.io/is-default-class": "true"} if default else None
    params = (
        k.V1IngressClassParametersReference(
            api_group="elbv2.k8s.aws", kind=params_kind, name="params"
        )
        if params_kind
        else None
    )
    return k.V1IngressClass(
        metadata=k.V1ObjectMeta(name=name, annotations=annotations),
        spec=k.V1IngressClassSpec(controller=controller, parameters=params),
    )


def group(*ings: k.V1Ingress) -> IngressGroup:
    """The IngressGroup of the given members (all must share a group id)."""
    gids = {group_id_for(i) for i in ings}
    assert len(gids) == 1, gids
    return IngressGroup(gids.pop(), sort_members(ings))


def conds(rule_: Any) -> list[tuple[str, tuple[str, ...]]]:
    """(field, values) pairs of a model Rule, compact for assertions."""
    return [(c.field, c.values or c.regex_values) for c in rule_.conditions]
