"""A workload's own Ingress (ingress mode): refused without `ingress:`, refused in a second
version, the checks a run makes before applying it (check_ingresses, _check_own_ingress) and
how the run adapts it (plan.workload_ingress)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from testbed.run.steps import _check_own_ingress
from testbed.scenario import parse_scenario, plan
from testbed.scenario.model import Scenario
from testbed.workload import rollout
from testbed.workload.ingress import check_ingresses, ingresses
from testbed.workload.manifests import INGRESS_HINT, WorkloadError, check_for_run
from testbed.workload.select import Target, select_target

A = "alb.ingress.kubernetes.io/"


def deployment(name: str = "web") -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 2, "selector": {"matchLabels": dict(labels)}, "template": {
                "metadata": {"labels": dict(labels)}, "spec": {"containers": [
                    {"name": "app", "image": f"{name}:1",
                     "ports": [{"name": "http", "containerPort": 8080}]}]}}}}


def service(name: str = "web") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def backend(svc: str, port: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"service": {"name": svc, "port": port or {"number": 80}}}


def rule(svc: str = "web", host: str | None = None, path: str = "/") -> dict[str, Any]:
    r: dict[str, Any] = {"http": {"paths": [{"path": path, "pathType": "Prefix",
                                             "backend": backend(svc)}]}}
    if host is not None:
        r["host"] = host
    return r


def ingress(name: str = "web", rules: list[dict[str, Any]] | None = None,
            annotations: dict[str, str] | None = None, namespace: str | None = None,
            spec: dict[str, Any] | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name}
    if annotations is not None:
        md["annotations"] = annotations
    if namespace is not None:
        md["namespace"] = namespace
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": md,
            "spec": spec if spec is not None else {"rules": rules if rules is not None
                                                   else [rule()]}}


def _target(docs: list[dict[str, Any]]) -> Target:
    return select_target(docs, "web", "web", None)


def _app(*ings: dict[str, Any]) -> list[dict[str, Any]]:
    return [deployment(), service(), *ings]


def _problems(docs: list[dict[str, Any]], load_host: str | None = None) -> list[str]:
    """check_ingresses' problems, one per line (asserting that it raised)."""
    with pytest.raises(WorkloadError) as info:
        check_ingresses(docs, _target(docs), load_host)
    head, *problems = str(info.value).split("\n  ")
    assert head == "the workload's Ingress cannot carry the run:"
    return problems


def _sc(**over: object) -> Scenario:
    return Scenario.model_validate({"name": "own", "workload": {"path": "k8s"},
                                    "ingress": {}, **over})


# --- check_for_run: an Ingress only in ingress mode -------------------------------------------

def test_ingress_refused_without_ingress_mode() -> None:
    with pytest.raises(WorkloadError) as info:
        check_for_run(_app(ingress("front")))
    msg = str(info.value)
    assert msg == ("the workload cannot run as is:\n  Ingress/front: an Ingress, and the "
                   "scenario has no `ingress`: " + INGRESS_HINT)
    assert "add `ingress: {}` to the scenario" in msg


def test_ingress_accepted_in_ingress_mode() -> None:
    check_for_run(_app(ingress("front")), ingress=True)


def test_ingress_mode_still_refuses_a_hard_coded_namespace() -> None:
    with pytest.raises(WorkloadError) as info:
        check_for_run(_app(ingress("front", namespace="prod")), ingress=True)
    msg = str(info.value)
    assert "Ingress/front: metadata.namespace is hard-coded ('prod')" in msg
    assert "an Ingress, and the scenario has no `ingress`" not in msg


def test_ingresses_picks_only_ingress_objects() -> None:
    ing = ingress("front")
    assert ingresses(_app(ing)) == [ing]
    assert ingresses(_app()) == []


# --- rollout.manifests: a second version's Ingress is refused with its own hint --------------

V2_WITH_INGRESS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: "web:2", ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: front}
spec:
  rules:
    - http:
        paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]
"""


def test_second_version_with_an_ingress_is_refused(tmp_path: Path) -> None:
    v2 = tmp_path / "v2.yaml"
    v2.write_text(V2_WITH_INGRESS)
    ro = parse_scenario(f"name: x\nworkload: {{path: app.yaml}}\ningress: {{}}\n"
                        f"rollout: {{manifests: '{v2}'}}\n").rollout
    with pytest.raises(WorkloadError) as info:
        rollout.second_version(ro, _target(_app()))
    msg = str(info.value)
    assert "Ingress/front: an Ingress, and the scenario has no `ingress`: the second " \
           "version's Ingress is not applied (the run keeps the first version's); leave it " \
           "out of rollout.manifests" in msg
    assert "ingress: {}" not in msg  # not the first version's hint


def test_second_version_without_the_ingress_is_accepted(tmp_path: Path) -> None:
    v2 = tmp_path / "v2.yaml"
    v2.write_text(V2_WITH_INGRESS.split("---\n")[0])
    ro = parse_scenario(f"name: x\nworkload: {{path: app.yaml}}\n"
                        f"rollout: {{manifests: '{v2}'}}\n").rollout
    docs = rollout.second_version(ro, _target(_app()))
    assert [d["kind"] for d in docs] == ["Deployment"]


# --- check_ingresses --------------------------------------------------------------------------

def test_an_ingress_routing_to_the_target_is_accepted() -> None:
    check_ingresses(_app(ingress()), _target(_app()), None)


def test_no_ingress_nothing_to_check() -> None:
    check_ingresses(_app(), _target(_app()), "app.example.com")


def test_target_type_instance_refused() -> None:
    docs = _app(ingress(annotations={A + "target-type": "instance"}))
    assert _problems(docs) == [
        f"Ingress/web: target-type 'instance': the testbed registers pod IPs only; set "
        f"{A}target-type: ip"]


def test_target_type_ip_accepted() -> None:
    docs = _app(ingress(annotations={A + "target-type": "ip"}))
    check_ingresses(docs, _target(docs), None)


def test_no_ingress_routing_to_the_target_service_refused() -> None:
    docs = _app(service("other"), ingress("a", [rule("other")]), ingress("b", [rule("else")]))
    assert _problems(docs) == [
        "no Ingress routes to Service/web, the one the run loads and rolls (Ingress/a, "
        "Ingress/b); point a rule at it or set workload.service"]


def test_one_of_several_ingresses_routing_to_the_target_is_enough() -> None:
    docs = _app(service("other"), ingress("a", [rule("other")]), ingress("b", [rule("web")]))
    check_ingresses(docs, _target(docs), None)


def test_default_backend_routes_to_the_target() -> None:
    docs = _app(ingress(spec={"defaultBackend": backend("web")}))
    check_ingresses(docs, _target(docs), None)


def test_routing_only_through_a_forward_action_annotation_is_accepted() -> None:
    action = {"type": "forward", "forwardConfig": {"targetGroups": [
        {"serviceName": "web", "servicePort": "80", "weight": 100}]}}
    ing = ingress(rules=[{"http": {"paths": [{
        "path": "/", "pathType": "Prefix",
        "backend": backend("weighted", {"name": "use-annotation"})}]}}],
        annotations={A + "actions.weighted": json.dumps(action)})
    docs = _app(ing)
    check_ingresses(docs, _target(docs), None)


def test_a_forward_action_to_another_service_does_not_count() -> None:
    action = {"type": "forward", "forwardConfig": {"targetGroups": [
        {"serviceName": "other", "servicePort": "80"}]}}
    ing = ingress(rules=[{"http": {"paths": [{
        "path": "/", "pathType": "Prefix",
        "backend": backend("weighted", {"name": "use-annotation"})}]}}],
        annotations={A + "actions.weighted": json.dumps(action),
                     A + "conditions.web": json.dumps([{"serviceName": "web"}])})
    docs = _app(ing)
    (problem,) = _problems(docs)
    assert problem.startswith("no Ingress routes to Service/web")


def test_a_bad_action_annotation_is_left_to_the_controller() -> None:
    docs = _app(ingress(rules=[rule("web")], annotations={A + "actions.bad": "{not json"}))
    check_ingresses(docs, _target(docs), None)


@pytest.mark.parametrize("value", ["[1]", '"str"', '{"forwardConfig": "x"}',
                                   '{"forwardConfig": {"targetGroups": 3}}', "7"])
def test_malformed_actions_are_left_to_the_controller_not_a_traceback(value: str) -> None:
    ing = ingress(rules=[rule("weighted")], annotations={A + "actions.weighted": value})
    ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] = {
        "name": "use-annotation"}
    docs = _app(ing)
    (problem,) = _problems(docs)
    assert problem.startswith("no Ingress routes to Service/web")


def test_hosts_count_only_for_the_rules_to_the_target() -> None:
    """A host that routes elsewhere does not carry the run's load."""
    docs = _app(service("other"), ingress(rules=[rule("web", host="a.example.com"),
                                                 rule("other", host="b.example.com")]))
    assert _problems(docs, "b.example.com") == [
        "load.host 'b.example.com' matches none of the hosts of the rules to Service/web "
        "(a.example.com)"]
    hostless_other = _app(service("other"), ingress(rules=[rule("web", host="a.example.com"),
                                                           rule("other")]))
    assert _problems(hostless_other, None)[0].startswith("the rules to Service/web all have")


def test_host_match_ignores_case_as_alb_does() -> None:
    docs = _app(ingress(rules=[rule(host="App.Example.com")]))
    check_ingresses(docs, _target(docs), "app.EXAMPLE.com")


def test_host_rules_without_load_host_refused() -> None:
    docs = _app(ingress(rules=[rule(host="a.example.com"), rule(host="b.example.com")]))
    assert _problems(docs, None) == [
        "the rules to Service/web all have a host (a.example.com, b.example.com); set "
        "load.host to one of them, or requests meet another rule or the listener's default 404"]


def test_load_host_matching_a_rule_host_accepted() -> None:
    docs = _app(ingress(rules=[rule(host="a.example.com"), rule(host="b.example.com")]))
    check_ingresses(docs, _target(docs), "b.example.com")


def test_load_host_matching_a_wildcard_host_accepted() -> None:
    docs = _app(ingress(rules=[rule(host="*.example.com")]))
    check_ingresses(docs, _target(docs), "app.example.com")


@pytest.mark.parametrize("load_host", ["example.com", "app.example.org", "other.com"])
def test_load_host_not_matching_refused(load_host: str) -> None:
    docs = _app(ingress(rules=[rule(host="*.example.com"), rule(host="api.example.org")]))
    assert _problems(docs, load_host) == [
        f"load.host {load_host!r} matches none of the hosts of the rules to Service/web "
        "(*.example.com, api.example.org)"]


@pytest.mark.parametrize("load_host", [None, "anything.example.net"])
def test_rules_without_host_accept_any_load_host(load_host: str | None) -> None:
    docs = _app(ingress(rules=[rule(), rule(host="a.example.com", path="/a")]))
    check_ingresses(docs, _target(docs), load_host)


def test_default_backend_matches_any_host() -> None:
    docs = _app(ingress(spec={"defaultBackend": backend("web"),
                              "rules": [rule(host="a.example.com")]}))
    check_ingresses(docs, _target(docs), None)


def test_hosts_of_an_ingress_not_routing_to_the_target_are_not_checked() -> None:
    docs = _app(service("other"), ingress("a", [rule("web")]),
                ingress("b", [rule("other", host="b.example.com")]))
    check_ingresses(docs, _target(docs), None)


def test_several_problems_are_reported_at_once() -> None:
    docs = _app(service("other"),
                ingress("a", [rule("web", host="a.example.com")],
                        annotations={A + "target-type": "instance"}),
                ingress("b", [rule("other")], annotations={A + "target-type": "instance"}))
    problems = _problems(docs, "x.example.net")
    assert problems == [
        f"Ingress/a: target-type 'instance': the testbed registers pod IPs only; set "
        f"{A}target-type: ip",
        f"Ingress/b: target-type 'instance': the testbed registers pod IPs only; set "
        f"{A}target-type: ip",
        "load.host 'x.example.net' matches none of the hosts of the rules to Service/web "
        "(a.example.com)"]


def test_no_routing_and_target_type_reported_together() -> None:
    docs = _app(service("other"),
                ingress("a", [rule("other")], annotations={A + "target-type": "instance"}))
    problems = _problems(docs)
    assert len(problems) == 2
    assert problems[0].startswith("Ingress/a: target-type 'instance'")
    assert problems[1].startswith("no Ingress routes to Service/web")


# --- plan.workload_ingress: how the run applies it ------------------------------------------

def _own(annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return ingress("front", spec={"rules": [rule(host="a.example.com")], **spec},
                   annotations=annotations)


def test_workload_ingress_namespace_class_and_listen_ports() -> None:
    doc = _own({"kubernetes.io/ingress.class": "alb", A + "listen-ports": '[{"HTTPS": 443}]',
                A + "scheme": "internet-facing"}, ingressClassName="nginx")
    ing = plan.workload_ingress(_sc(), doc, ns="run-ab12c", listener_port=30123)
    md = ing["metadata"]
    assert md["namespace"] == "run-ab12c"
    assert md["name"] == "front"
    assert ing["spec"]["ingressClassName"] == plan.INGRESS_CLASS == "alb"
    assert "kubernetes.io/ingress.class" not in md["annotations"]
    assert json.loads(md["annotations"][A + "listen-ports"]) == [{"HTTP": 30123}]
    assert md["annotations"][A + "scheme"] == "internet-facing"  # the user's own, kept
    assert ing["spec"]["rules"] == doc["spec"]["rules"]


def test_workload_ingress_without_annotations_or_spec() -> None:
    doc = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": "front"}}
    ing = plan.workload_ingress(_sc(), doc, ns="n", listener_port=81)
    assert ing["spec"] == {"ingressClassName": "alb"}
    assert ing["metadata"]["annotations"] == {A + "listen-ports": '[{"HTTP": 81}]'}


def test_workload_ingress_group_name_gets_the_run_id() -> None:
    doc = _own({A + "group.name": "shop"})
    ing = plan.workload_ingress(_sc(), doc, ns="n", listener_port=81, run_id="ab12c")
    assert ing["metadata"]["annotations"][A + "group.name"] == "shop-ab12c"
    # no run id: the name as given; no group: none added
    ing = plan.workload_ingress(_sc(), doc, ns="n", listener_port=81)
    assert ing["metadata"]["annotations"][A + "group.name"] == "shop"
    ing = plan.workload_ingress(_sc(), _own(), ns="n", listener_port=81, run_id="ab12c")
    assert A + "group.name" not in ing["metadata"]["annotations"]


@pytest.mark.parametrize(("group", "expected"), [
    ("g" * 63, "g" * 57 + "-ab12c"),
    ("g" * 57, "g" * 57 + "-ab12c"),
    ("g" * 56 + "-x", "g" * 56 + "-ab12c"),  # cut at a '-': no "--" in the name
    ("g" * 55 + ".-xyz", "g" * 55 + "-ab12c"),
], ids=["63-chars", "57-chars", "cut-at-dash", "cut-at-dot-dash"])
def test_workload_ingress_group_name_stays_within_63_characters(group: str,
                                                                 expected: str) -> None:
    ing = plan.workload_ingress(_sc(), _own({A + "group.name": group}), ns="n",
                                listener_port=81, run_id="ab12c")
    name = ing["metadata"]["annotations"][A + "group.name"]
    assert name == expected
    assert len(name) <= 63


def test_workload_ingress_scenario_annotations_win() -> None:
    doc = _own({A + "scheme": "internet-facing", A + "healthcheck-path": "/mine"})
    sc = _sc(ingress={"annotations": {A + "healthcheck-path": "/ready",
                                      A + "ssl-redirect": "443"}})
    ann = plan.workload_ingress(sc, doc, ns="n", listener_port=81)["metadata"]["annotations"]
    assert ann[A + "healthcheck-path"] == "/ready"
    assert ann[A + "ssl-redirect"] == "443"
    assert ann[A + "scheme"] == "internet-facing"


def test_workload_ingress_does_not_change_the_given_doc() -> None:
    doc = _own({"kubernetes.io/ingress.class": "alb", A + "group.name": "shop",
                A + "listen-ports": '[{"HTTP": 80}]'}, ingressClassName="nginx")
    before = copy.deepcopy(doc)
    sc = _sc(ingress={"annotations": {A + "scheme": "internal"}})
    ing = plan.workload_ingress(sc, doc, ns="n", listener_port=81, run_id="ab12c")
    assert doc == before
    assert ing is not doc and ing["metadata"] is not doc["metadata"]
    ing["spec"]["rules"][0]["host"] = "changed"  # a deep copy: nested objects not shared
    assert doc == before


# --- _check_own_ingress: the scenario's `ingress` may only add annotations -------------------

@pytest.mark.parametrize(("section", "named"), [
    ({"path": "/x"}, "ingress.path"),
    ({"pathType": "Exact"}, "ingress.pathType"),
    ({"groupName": "shop"}, "ingress.groupName"),
    ({"host": "a.example.com", "pathType": "Exact",
      "annotations": {A + "scheme": "internal"}}, "ingress.host, ingress.pathType"),
])
def test_own_ingress_refuses_the_scenarios_ingress_fields(section: dict[str, Any],
                                                          named: str) -> None:
    sc = _sc(ingress=section)
    docs = _app(ingress())
    with pytest.raises(WorkloadError) as info:
        _check_own_ingress(sc, docs, _target(docs))
    assert str(info.value) == (
        f"{named}: the workload brings its own Ingress, so only ingress.annotations applies "
        "(over its annotations); set the rest in the workload's Ingress")


def test_own_ingress_accepts_annotations_only() -> None:
    docs = _app(ingress())
    _check_own_ingress(_sc(ingress={"annotations": {A + "scheme": "internet-facing"}}), docs,
                       _target(docs))
    _check_own_ingress(_sc(), docs, _target(docs))


def test_own_ingress_then_checks_the_ingresses_with_load_host() -> None:
    docs = _app(ingress(rules=[rule(host="a.example.com")]))
    with pytest.raises(WorkloadError, match="all have a host"):
        _check_own_ingress(_sc(), docs, _target(docs))
    _check_own_ingress(_sc(load={"host": "a.example.com"}), docs, _target(docs))
    with pytest.raises(WorkloadError, match="load.host 'b.example.com' matches none"):
        _check_own_ingress(_sc(load={"host": "b.example.com"}), docs, _target(docs))
