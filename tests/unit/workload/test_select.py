"""Picking the Deployment, Service, port and container a run binds its target group to."""

from __future__ import annotations

from typing import Any

import pytest

from testbed.workload.manifests import WorkloadError
from testbed.workload.select import Target, select_target, selects


def deployment(name: str = "web", labels: dict[str, str] | None = None,
               containers: list[dict[str, Any]] | None = None,
               replicas: int | None = 2) -> dict[str, Any]:
    labels = {"app": name} if labels is None else labels
    spec: dict[str, Any] = {
        "selector": {"matchLabels": dict(labels)},
        "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": containers if
                     containers is not None else [
                         {"name": "app", "image": f"{name}:1",
                          "ports": [{"name": "http", "containerPort": 8080}]}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": spec}


def service(name: str = "web", selector: dict[str, str] | None = None,
            ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": ports if ports is not None else
                            [{"name": "http", "port": 80, "targetPort": "http"}]}
    if selector != {}:
        spec["selector"] = {"app": name} if selector is None else selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def configmap(name: str = "cfg") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}


def test_the_one_deployment_and_its_service_are_found() -> None:
    dep, svc = deployment(), service()
    t = select_target([configmap(), svc, dep])
    assert isinstance(t, Target)
    assert t.deployment is dep and t.service is svc
    assert (t.deployment_name, t.service_name, t.replicas) == ("web", "web", 2)
    assert t.service_port == {"name": "http", "port": 80, "targetPort": "http"}
    assert t.port_ref == 80
    assert t.container["name"] == "app"
    assert t.target_port == 8080


def test_replicas_default_to_one() -> None:
    assert select_target([deployment(replicas=None), service()]).replicas == 1


def test_several_deployments_need_a_name() -> None:
    docs = [deployment("web"), deployment("worker"), service("web")]
    with pytest.raises(WorkloadError) as info:
        select_target(docs)
    assert str(info.value) == ("the workload has 2 Deployments (web, worker); name one with "
                               "workload.deployment")
    assert select_target(docs, deployment="web").deployment_name == "web"


def test_wrong_deployment_name_suggests_the_close_one() -> None:
    with pytest.raises(WorkloadError) as info:
        select_target([deployment("web"), deployment("worker"), service()], deployment="wbe")
    assert str(info.value) == "workload.deployment: no Deployment named 'wbe'; did you mean 'web'?"


def test_wrong_deployment_name_without_a_close_one_lists_them() -> None:
    with pytest.raises(WorkloadError) as info:
        select_target([deployment("web"), deployment("worker"), service()],
                      deployment="database")
    assert str(info.value) == ("workload.deployment: no Deployment named 'database'; the "
                               "workload has web, worker")


def test_no_deployment() -> None:
    with pytest.raises(WorkloadError) as info:
        select_target([service(), configmap()])
    assert str(info.value) == "the workload has no Deployment"


def test_service_is_found_by_selector_not_by_name() -> None:
    other = service("other", selector={"app": "other"})
    front = service("front", selector={"app": "web"})
    t = select_target([other, front, deployment("web")])
    assert t.service_name == "front"


def test_selector_must_match_every_label_and_pods_may_have_more() -> None:
    pods = {"app": "web", "tier": "frontend", "version": "v1"}
    assert selects(service(selector={"app": "web", "tier": "frontend"}), pods)
    assert not selects(service(selector={"app": "web", "tier": "backend"}), pods)
    assert not selects(service(selector={}), pods)  # no selector: selects nothing


def test_named_service_that_selects_nothing_shows_selector_and_labels() -> None:
    docs = [deployment("web"), service("web"), service("api", selector={"app": "api"})]
    with pytest.raises(WorkloadError) as info:
        select_target(docs, service="api")
    assert str(info.value) == ("Service/api selects nothing of Deployment/web: its selector "
                               "{'app': 'api'} does not match the pod labels {'app': 'web'}")


def test_named_service_without_selector() -> None:
    with pytest.raises(WorkloadError) as info:
        select_target([deployment("web"), service("ext", selector={})], service="ext")
    assert "its selector (none) does not match the pod labels {'app': 'web'}" in str(info.value)


def test_wrong_service_name_suggests_the_close_one() -> None:
    with pytest.raises(WorkloadError) as info:
        select_target([deployment("web"), service("web-svc", selector={"app": "web"})],
                      service="web-scv")
    assert str(info.value) == ("workload.service: no Service named 'web-scv'; did you mean "
                               "'web-svc'?")


def test_no_service_selects_the_pods() -> None:
    docs = [deployment("web"), service("api", selector={"app": "api"})]
    with pytest.raises(WorkloadError) as info:
        select_target(docs)
    assert str(info.value) == ("no Service selects the pods of Deployment/web (pod labels "
                               "{'app': 'web'}; Services: Service/api selector {'app': 'api'})")


def test_no_service_at_all() -> None:
    with pytest.raises(WorkloadError) as info:
        select_target([deployment("web")])
    assert str(info.value) == ("no Service selects the pods of Deployment/web (pod labels "
                               "{'app': 'web'}; Services: none)")


def test_several_services_selecting_the_pods_need_a_name() -> None:
    docs = [deployment("web"), service("a", selector={"app": "web"}),
            service("b", selector={"app": "web"})]
    with pytest.raises(WorkloadError) as info:
        select_target(docs)
    assert str(info.value) == ("the workload has 2 Services selecting the Deployment's pods "
                               "(a, b); name one with workload.service")
    assert select_target(docs, service="b").service_name == "b"


TWO_PORTS = [{"name": "http", "port": 80, "targetPort": 8080},
             {"name": "metrics", "port": 9090, "targetPort": "metrics"}]
TWO_CONTAINER_PORTS = [{"name": "app", "image": "web:1", "ports": [
    {"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9100}]}]


def test_port_by_number_and_by_name() -> None:
    docs = [deployment(containers=TWO_CONTAINER_PORTS), service(ports=TWO_PORTS)]
    by_number = select_target(docs, port=9090)
    assert by_number.service_port["name"] == "metrics" and by_number.port_ref == 9090
    assert by_number.target_port == 9100
    by_name = select_target(docs, port="http")
    assert by_name.port_ref == 80 and by_name.target_port == 8080


def test_several_ports_need_a_name() -> None:
    docs = [deployment(), service(ports=TWO_PORTS)]
    with pytest.raises(WorkloadError) as info:
        select_target(docs)
    assert str(info.value) == ("Service/web has 2 ports (http:80, metrics:9090); name one with "
                               "workload.port")


def test_several_unnamed_ports_need_a_number() -> None:
    docs = [deployment(), service(ports=[{"port": 80}, {"port": 81}])]
    with pytest.raises(WorkloadError) as info:
        select_target(docs)
    assert str(info.value) == ("Service/web has 2 ports (-:80, -:81); name one with "
                               "workload.port")
    assert select_target(docs, port=81).target_port == 81


def test_unknown_port() -> None:
    docs = [deployment(), service(ports=TWO_PORTS)]
    with pytest.raises(WorkloadError) as info:
        select_target(docs, port="grpc")
    assert str(info.value) == ("workload.port: Service/web has no port 'grpc' (ports: http:80, "
                               "metrics:9090)")
    with pytest.raises(WorkloadError, match=r"has no port 443 \("):
        select_target(docs, port=443)


def test_service_without_ports() -> None:
    with pytest.raises(WorkloadError) as info:
        select_target([deployment(), service(ports=[])])
    assert str(info.value) == "Service/web has 0 ports (none); name one with workload.port"


def test_named_target_port_resolves_to_the_container_declaring_it() -> None:
    sidecar = {"name": "proxy", "image": "envoy:1",
               "ports": [{"name": "admin", "containerPort": 9901}]}
    app = {"name": "app", "image": "web:1", "ports": [{"name": "web", "containerPort": 3000}]}
    docs = [deployment(containers=[sidecar, app]),
            service(ports=[{"port": 80, "targetPort": "web"}])]
    t = select_target(docs)
    assert t.container is app and t.target_port == 3000


def test_named_target_port_that_no_container_declares() -> None:
    docs = [deployment(), service(ports=[{"port": 80, "targetPort": "htp"}])]
    with pytest.raises(WorkloadError) as info:
        select_target(docs)
    assert str(info.value) == ("Service/web port 80 targets the named port 'htp', which no "
                               "container of Deployment/web declares")


def test_numeric_target_port_picks_the_container_declaring_it() -> None:
    sidecar = {"name": "proxy", "image": "envoy:1", "ports": [{"containerPort": 9901}]}
    app = {"name": "app", "image": "web:1", "ports": [{"containerPort": 3000}]}
    docs = [deployment(containers=[sidecar, app]),
            service(ports=[{"port": 80, "targetPort": 3000}])]
    t = select_target(docs)
    assert t.container is app and t.target_port == 3000


def test_numeric_target_port_undeclared_is_the_first_container() -> None:
    first = {"name": "app", "image": "web:1"}
    second = {"name": "log", "image": "fluent:1"}
    docs = [deployment(containers=[first, second]),
            service(ports=[{"port": 80, "targetPort": 5000}])]
    t = select_target(docs)
    assert t.container is first and t.target_port == 5000


def test_target_port_defaults_to_the_port() -> None:
    app = {"name": "app", "image": "web:1", "ports": [{"containerPort": 8000}]}
    docs = [deployment(containers=[app]), service(ports=[{"name": "http", "port": 8000}])]
    t = select_target(docs)
    assert t.target_port == 8000 and t.port_ref == 8000
    assert "targetPort" not in t.service_port


def test_deployment_without_containers() -> None:
    with pytest.raises(WorkloadError) as info:
        select_target([deployment(containers=[]), service()])
    assert str(info.value) == "Deployment/web has no containers"
