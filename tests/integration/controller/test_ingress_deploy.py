"""controller.ingress.deploy against the real fake AWS (`testbed fakeaws serve`, moto) over HTTP:
models built from real V1Ingress/V1Service objects, checked with boto3 Describe* calls (ELBv2 API
state only; no traffic through the rules)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k

from controller.aws import AWSError
from controller.ingress import model as m
from controller.ingress.build import BuildOptions, build
from controller.ingress.deploy import Deployer
from tests.integration.fakeaws.conftest import FakeAws, free_port, running_fakeaws
from tests.unit.controller.test_ingress_fixtures import group, ingress, path, rule, service

pytestmark = pytest.mark.integration

A = "alb.ingress.kubernetes.io/"
OPTS = BuildOptions(cluster_name="it-cluster")
WEB = service("web")
API = service("api", ports=[("http", 80, 9000)])


@pytest.fixture(scope="module")
def fa() -> Iterator[FakeAws]:
    with running_fakeaws("--dataplane-workers", "1") as server:
        yield server


@pytest.fixture()
def env(fa: FakeAws) -> tuple[FakeAws, Any, Deployer]:
    fa.post("/_testbed/reset")
    elbv2 = fa.client("elbv2")
    return fa, elbv2, Deployer(elbv2, OPTS.cluster_name, ec2_client=fa.client("ec2"))


def make_ingress(port: int, *, hc_path: str = "/healthz", weights: tuple[int, int] = (90, 10),
                 with_api_rule: bool = True) -> k.V1Ingress:
    canary = {"type": "forward", "forwardConfig": {"targetGroups": [
        {"serviceName": "web", "servicePort": 80, "weight": weights[0]},
        {"serviceName": "api", "servicePort": "http", "weight": weights[1]}]}}
    paths = [path("/shop", "canary", "use-annotation")]
    if with_api_rule:
        paths.append(path("/api", "api", "http"))
    return ingress(
        annotations={
            A + "listen-ports": json.dumps([{"HTTP": port}]),
            A + "healthcheck-path": hc_path,
            A + "healthcheck-interval-seconds": "10",
            A + "success-codes": "200-299",
            A + "target-group-attributes": "deregistration_delay.timeout_seconds=5",
            A + "load-balancer-attributes": "idle_timeout.timeout_seconds=30",
            A + "actions.canary": json.dumps(canary),
        },
        rules=[rule("shop.example.com", *paths), rule(None, path("/", "web", 80))],
    )


def model_of(ing: k.V1Ingress) -> m.Model:
    return build(group(ing), [WEB, API], OPTS)


def rules_of(elbv2: Any, listener_arn: str) -> list[dict[str, Any]]:
    rules = elbv2.describe_rules(ListenerArn=listener_arn)["Rules"]
    return sorted((r for r in rules if not r["IsDefault"]), key=lambda r: int(r["Priority"]))


def conditions(r: dict[str, Any]) -> list[tuple[str, list[str]]]:
    out = []
    for c in r["Conditions"]:
        cfg = c.get("HostHeaderConfig") or c.get("PathPatternConfig") or {}
        out.append((c["Field"], cfg.get("Values") or c.get("Values") or []))
    return sorted(out)


def forward(r: dict[str, Any], names: dict[str, str]) -> list[tuple[str, int]]:
    [a] = r["Actions"]
    tgs = (a.get("ForwardConfig") or {}).get("TargetGroups") or [
        {"TargetGroupArn": a["TargetGroupArn"], "Weight": 1}]
    return sorted((names[t["TargetGroupArn"]], int(t.get("Weight", 1))) for t in tgs)


def tags_of(elbv2: Any, arn: str) -> dict[str, str]:
    [d] = elbv2.describe_tags(ResourceArns=[arn])["TagDescriptions"]
    return {t["Key"]: t["Value"] for t in d["Tags"]}


def test_deploy_redeploy_delete(env: tuple[FakeAws, Any, Deployer]) -> None:
    fa, elbv2, dep = env
    port = free_port()
    model = model_of(make_ingress(port))
    res = dep.deploy(model)

    # load balancer: name, scheme, attributes, stack tags; DNS name handed back
    [lb] = elbv2.describe_load_balancers()["LoadBalancers"]
    assert lb["LoadBalancerArn"] == res.load_balancer_arn and lb["DNSName"] == res.dns_name
    assert (lb["LoadBalancerName"], lb["Scheme"], lb["Type"]) == (
        model.load_balancer.name, "internal", "application")
    attrs = {a["Key"]: a["Value"] for a in elbv2.describe_load_balancer_attributes(
        LoadBalancerArn=lb["LoadBalancerArn"])["Attributes"]}
    assert attrs["idle_timeout.timeout_seconds"] == "30"
    assert tags_of(elbv2, lb["LoadBalancerArn"]) == {
        "elbv2.k8s.aws/cluster": "it-cluster", "ingress.k8s.aws/stack": "shop/web",
        "ingress.k8s.aws/resource": "LoadBalancer"}

    # target groups: one per (Ingress, Service, port), health check from the annotations
    tgs = {t["TargetGroupArn"]: t for t in elbv2.describe_target_groups()["TargetGroups"]}
    assert set(res.target_group_arns) == {"shop/web-web:80", "shop/web-api:http"}
    names = {arn: tid for tid, arn in res.target_group_arns.items()}
    assert set(tgs) == set(names)
    web_tg = tgs[res.target_group_arns["shop/web-web:80"]]
    assert (web_tg["TargetType"], web_tg["Protocol"], web_tg["Port"]) == ("ip", "HTTP", 8080)
    assert (web_tg["HealthCheckPath"], web_tg["HealthCheckIntervalSeconds"],
            web_tg["HealthCheckTimeoutSeconds"], web_tg["Matcher"]["HttpCode"],
            web_tg["HealthCheckPort"]) == ("/healthz", 10, 5, "200-299", "traffic-port")
    assert web_tg["VpcId"] == dep.network()[0]
    tg_attrs = {a["Key"]: a["Value"] for a in elbv2.describe_target_group_attributes(
        TargetGroupArn=web_tg["TargetGroupArn"])["Attributes"]}
    assert tg_attrs["deregistration_delay.timeout_seconds"] == "5"
    assert tags_of(elbv2, web_tg["TargetGroupArn"])["ingress.k8s.aws/resource"] == (
        "shop/web-web:80")

    # listener: the port asked for, fixed-response 404 default
    [ls] = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    assert (ls["Port"], ls["Protocol"]) == (port, "HTTP")
    [default] = ls["DefaultActions"]
    assert default["Type"] == "fixed-response"
    assert default["FixedResponseConfig"]["StatusCode"] == "404"
    assert default["FixedResponseConfig"]["ContentType"] == "text/plain"

    # rules: conditions, priorities 1..N, forward weights
    rules = rules_of(elbv2, ls["ListenerArn"])
    assert [int(r["Priority"]) for r in rules] == [1, 2, 3]
    assert conditions(rules[0]) == [("host-header", ["shop.example.com"]),
                                    ("path-pattern", ["/shop", "/shop/*"])]
    assert forward(rules[0], names) == [("shop/web-api:http", 10), ("shop/web-web:80", 90)]
    assert conditions(rules[1]) == [("host-header", ["shop.example.com"]),
                                    ("path-pattern", ["/api", "/api/*"])]
    assert forward(rules[1], names) == [("shop/web-api:http", 1)]
    assert conditions(rules[2]) == [("path-pattern", ["/*"])]
    assert forward(rules[2], names) == [("shop/web-web:80", 1)]
    rule_arns = [r["RuleArn"] for r in rules]

    # a second deploy of the same model changes nothing
    again = dep.deploy(model)
    assert again.target_group_arns == res.target_group_arns
    assert [r["RuleArn"] for r in rules_of(elbv2, ls["ListenerArn"])] == rule_arns
    assert again.stale_target_groups == []

    # change: health-check path, the /api rule removed, weights 90/10 -> 0/100
    model2 = model_of(make_ingress(port, hc_path="/ready", weights=(0, 100), with_api_rule=False))
    res2 = dep.deploy(model2)
    assert res2.load_balancer_arn == res.load_balancer_arn
    assert res2.target_group_arns == res.target_group_arns  # modified in place, not replaced
    tgs2 = {t["TargetGroupArn"]: t for t in elbv2.describe_target_groups()["TargetGroups"]}
    assert {t["HealthCheckPath"] for t in tgs2.values()} == {"/ready"}
    [ls2] = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    assert ls2["ListenerArn"] == ls["ListenerArn"]
    rules2 = rules_of(elbv2, ls["ListenerArn"])
    assert [int(r["Priority"]) for r in rules2] == [1, 2]
    assert forward(rules2[0], names) == [("shop/web-api:http", 100), ("shop/web-web:80", 0)]
    assert rules2[0]["RuleArn"] == rule_arns[0]  # modified in place at its priority
    # the catch-all kept its settings: re-prioritised 3 -> 2, same rule
    assert rules2[1]["RuleArn"] == rule_arns[2]
    assert conditions(rules2[1]) == [("path-pattern", ["/*"])]

    # delete_stack removes everything of the stack
    dep.delete_stack("shop/web")
    assert elbv2.describe_load_balancers()["LoadBalancers"] == []
    assert elbv2.describe_target_groups()["TargetGroups"] == []


def test_target_group_replaced_when_protocol_version_changes(
    env: tuple[FakeAws, Any, Deployer]
) -> None:
    """target_group_synthesizer.go@v3.5.0 isSDKTargetGroupRequiresReplacement: a new target group
    is made; the old one is left to the caller when delete_stale=False."""
    _, elbv2, dep = env
    port = free_port()
    ing = ingress(annotations={A + "listen-ports": json.dumps([{"HTTP": port}])})
    first = dep.deploy(model_of(ing))
    ing2 = ingress(annotations={A + "listen-ports": json.dumps([{"HTTP": port}]),
                                A + "backend-protocol-version": "HTTP2"})
    second = dep.deploy(model_of(ing2), delete_stale=False)
    old, new = first.target_group_arns["shop/web-web:80"], second.target_group_arns[
        "shop/web-web:80"]
    assert old != new and second.stale_target_groups == [old]
    [r] = rules_of(elbv2, elbv2.describe_listeners(
        LoadBalancerArn=second.load_balancer_arn)["Listeners"][0]["ListenerArn"])
    assert forward(r, {new: "new"}) == [("new", 1)]
    dep.delete_target_groups(second.stale_target_groups)
    assert [t["TargetGroupArn"] for t in elbv2.describe_target_groups()["TargetGroups"]] == [new]
    dep.delete_stack("shop/web")
    assert elbv2.describe_target_groups()["TargetGroups"] == []


def test_other_stacks_untouched_and_errors_are_aws_errors(
    env: tuple[FakeAws, Any, Deployer]
) -> None:
    _, elbv2, dep = env
    port = free_port()
    a = ingress("a", annotations={A + "listen-ports": json.dumps([{"HTTP": port}])})
    b = ingress("b", annotations={A + "listen-ports": json.dumps([{"HTTP": free_port()}])})
    dep.deploy(build(group(a), [WEB], OPTS))
    dep.deploy(build(group(b), [WEB], OPTS))
    dep.delete_stack("shop/a")
    [lb] = elbv2.describe_load_balancers()["LoadBalancers"]
    assert tags_of(elbv2, lb["LoadBalancerArn"])["ingress.k8s.aws/stack"] == "shop/b"
    assert len(elbv2.describe_target_groups()["TargetGroups"]) == 1
    # the same listener port on a second load balancer: the fake cannot bind it twice
    c = ingress("c", annotations={A + "listen-ports": json.dumps([{"HTTP": port + 0}])})
    dep.deploy(build(group(c), [WEB], OPTS))  # port freed by stack a: fine
    d = ingress("d", annotations={A + "listen-ports": json.dumps([{"HTTP": port}])})
    with pytest.raises(AWSError) as e:
        dep.deploy(build(group(d), [WEB], OPTS))
    assert e.value.operation == "CreateListener"


def test_group_reconciler_with_the_real_deployer(env: tuple[FakeAws, Any, Deployer]) -> None:
    """GroupReconciler (FakeKube) + Deployer (fake AWS): the bindings name the target groups
    that exist, the status carries the load balancer's DNS name, deletion empties the stack."""
    from controller.ingress.classes import GroupID
    from controller.ingress.reconcile import GroupReconciler
    from controller.testing import FakeKube
    from tests.unit.controller.test_ingress_fixtures import ingress_class

    api = k.ApiClient()

    def raw(obj: Any, kind: str) -> dict[str, Any]:
        return {**api.sanitize_for_serialization(obj), "kind": kind}

    _, elbv2, dep = env
    kube = FakeKube(notify_on_write=False)
    kube.put("ingressclass", raw(ingress_class("alb"), "IngressClass"))
    kube.put("service", raw(WEB, "Service"))
    kube.put("service", raw(API, "Service"))
    kube.put("ingress", raw(make_ingress(free_port()), "Ingress"))
    rec = GroupReconciler(kube, dep, OPTS)
    gid = GroupID.implicit("shop", "web")
    rec.reconcile(gid)
    [lb] = elbv2.describe_load_balancers()["LoadBalancers"]
    ing = kube.get("ingress", "shop", "web")
    assert ing["status"]["loadBalancer"]["ingress"][0]["hostname"] == lb["DNSName"].lower()
    tg_arns = {t["TargetGroupArn"] for t in elbv2.describe_target_groups()["TargetGroups"]}
    assert {t["spec"]["targetGroupARN"] for t in kube.list("tgb")} == tg_arns
    assert len(tg_arns) == 2

    kube.delete("ingress", "shop", "web")
    rec.reconcile(gid)
    assert kube.list("tgb") == [] and kube.get("ingress", "shop", "web") is None
    assert elbv2.describe_load_balancers()["LoadBalancers"] == []
    assert elbv2.describe_target_groups()["TargetGroups"] == []


class _Counting:
    """A boto3 client proxy counting the write calls (anything not Describe*)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.writes: list[str] = []

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._client, name)
        if not name.startswith("describe_"):
            self.writes.append(name)
        return fn


def test_all_action_and_condition_shapes_are_accepted_and_stable(
    env: tuple[FakeAws, Any, Deployer]
) -> None:
    """fixed-response, redirect, forward with stickiness; http-header, http-request-method,
    query-string, source-ip conditions: moto takes them, and a redeploy writes nothing."""
    fa, elbv2, _ = env
    counting = _Counting(elbv2)
    dep = Deployer(counting, OPTS.cluster_name, ec2_client=fa.client("ec2"))
    port = free_port()
    fixed = {"type": "fixed-response", "fixedResponseConfig": {
        "statusCode": "503", "contentType": "text/plain", "messageBody": "down"}}
    redir = {"type": "redirect", "redirectConfig": {"protocol": "HTTPS", "port": "443",
                                                    "statusCode": "HTTP_301"}}
    sticky = {"type": "forward", "forwardConfig": {
        "targetGroups": [{"serviceName": "web", "servicePort": 80, "weight": 1}],
        "targetGroupStickinessConfig": {"enabled": True, "durationSeconds": 60}}}
    conds = [{"field": "http-header", "httpHeaderConfig": {"httpHeaderName": "X-Canary",
                                                            "values": ["on"]}},
             {"field": "http-request-method", "httpRequestMethodConfig": {"values": ["GET"]}},
             {"field": "query-string", "queryStringConfig": {"values": [
                 {"key": "v", "value": "2"}]}},
             {"field": "source-ip", "sourceIpConfig": {"values": ["10.0.0.0/8"]}}]
    ing = ingress(
        annotations={
            A + "listen-ports": json.dumps([{"HTTP": port}]),
            A + "actions.fixed": json.dumps(fixed),
            A + "actions.redir": json.dumps(redir),
            A + "actions.sticky": json.dumps(sticky),
            A + "conditions.sticky": json.dumps(conds),
        },
        rules=[rule(None, path("/down", "fixed", "use-annotation"),
                    path("/old", "redir", "use-annotation"),
                    # Exact: one path value; ELBv2 allows 5 condition values per rule
                    path("/s", "sticky", "use-annotation", "Exact"))],
    )
    model = model_of(ing)
    res = dep.deploy(model)
    [ls] = elbv2.describe_listeners(LoadBalancerArn=res.load_balancer_arn)["Listeners"]
    rules = rules_of(elbv2, ls["ListenerArn"])
    assert len(rules) == 3
    types = sorted(r["Actions"][0]["Type"] for r in rules)
    assert types == ["fixed-response", "forward", "redirect"]
    fields = {c["Field"] for r in rules for c in r["Conditions"]}
    assert {"http-header", "http-request-method", "query-string", "source-ip"} <= fields
    counting.writes.clear()
    dep.deploy(model)
    assert counting.writes == []  # nothing differs, nothing written
    dep.delete_stack("shop/web")
