"""The model builder end to end over real client models (pkg/ingress/*@v3.5.0)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from kubernetes import client as k
from test_ingress_fixtures import (
    CLUSTER,
    NS,
    OPTS,
    A,
    backend,
    conds,
    group,
    ingress,
    path,
    rule,
    service,
)

from controller.ingress import model as m
from controller.ingress import naming
from controller.ingress.build import BuildOptions, build, path_patterns, sort_paths
from controller.ingress.errors import IngressModelError, UnsupportedError
from controller.ingress.objects import ingress_from_dict, service_from_dict

WEB = service("web")
API = service("api", ports=[("http", 80, 9000), ("admin", 9090, "admin-port")])


def one(ing: k.V1Ingress, *svcs: k.V1Service, opts: BuildOptions = OPTS) -> m.Model:
    return build(group(ing), svcs or (WEB, API), opts)


def use_annotation(svc: str, p: str = "/", path_type: str = "Prefix") -> k.V1HTTPIngressPath:
    return path(p, svc, "use-annotation", path_type)


def test_minimal_ingress() -> None:
    """model_builder.go@v3.5.0 run: one LB (internal, default), listener HTTP:80 with the fixed
    404 default (model_build_actions.go build404Action), one rule, one target group."""
    model = one(ingress())
    lb = model.load_balancer
    assert model.stack_id == "shop/web" and model.members == ("shop/web",)
    assert lb.scheme == "internal" and lb.ip_address_type == "ipv4" and lb.type == "application"
    assert lb.name == naming.load_balancer_name(CLUSTER, NS, "web", "internal")
    assert lb.tags == {
        "elbv2.k8s.aws/cluster": CLUSTER,
        "ingress.k8s.aws/stack": "shop/web",
        "ingress.k8s.aws/resource": "LoadBalancer",
    }
    [ls] = model.listeners
    assert (ls.id, ls.port, ls.protocol) == ("80", 80, "HTTP")
    assert ls.default_actions == (
        m.Action("fixed-response", fixed_response=m.FixedResponseConfig("404", "text/plain")),
    )
    [r] = model.rules
    assert (r.id, r.priority, conds(r)) == ("80:1", 1, [("path-pattern", ("/*",))])
    tg_id = "shop/web-web:80"
    assert r.actions == (
        m.Action("forward", forward=m.ForwardConfig((m.TargetGroupRef(target_group_id=tg_id),))),
    )
    tg = model.target_groups[tg_id]
    assert tg.name.startswith("k8s-shop-web-") and len(tg.name) == 23
    assert (tg.target_type, tg.port, tg.protocol, tg.protocol_version) == ("ip", 8080, "HTTP",
                                                                           "HTTP1")
    assert tg.health_check == m.HealthCheck(
        port="traffic-port", protocol="HTTP", path="/", interval_seconds=15, timeout_seconds=5,
        healthy_threshold_count=2, unhealthy_threshold_count=2, matcher_http_code="200",
    )
    assert tg.tags["ingress.k8s.aws/resource"] == tg_id
    assert model.bindings[tg_id] == m.TargetGroupBinding(
        target_group_id=tg_id, name=tg.name, namespace=NS, service_name="web", service_port=80,
        target_type="ip", ip_address_type="ipv4", target_group_protocol="HTTP",
        labels={"ingress.k8s.aws/stack-namespace": NS, "ingress.k8s.aws/stack-name": "web"},
    )


def test_build_is_deterministic() -> None:
    """Names hash only their inputs (model_build_*.go@v3.5.0), so a rebuild is identical."""
    ing = ingress(rules=[rule("a.example.com", path("/x"), path("/y", "api", "http"))])
    assert one(ing) == one(ing)


def test_raw_api_dicts_build_the_same_model() -> None:
    """controller/kube.py caches raw JSON; objects.py decodes it with the client's own
    deserializer so both inputs give one model."""
    api = k.ApiClient()
    ing = ingress(rules=[rule("a.example.com", path("/x", "api", "http"))])
    from_dicts = build(
        group(ingress_from_dict(api.sanitize_for_serialization(ing))),
        [service_from_dict(api.sanitize_for_serialization(s)) for s in (WEB, API)],
        OPTS,
    )
    assert from_dicts == one(ing)


def test_explicit_group_listen_ports_union_and_rule_order() -> None:
    """model_builder.go@v3.5.0: a listener per port of any member; each listener gets the rules
    of the members listening on it, members in group.order, then their rule order, priorities
    1..N (model_build_listener_rules.go)."""
    g = {A + "group.name": "shared"}
    first = ingress("b-first", annotations={**g, A + "group.order": "-1",
                                            A + "listen-ports": '[{"HTTP": 80}, {"HTTP": 8080}]'},
                    rules=[rule("b.example.com", path("/b"))])
    second = ingress("a-second", annotations=g,
                     rules=[rule("a.example.com", path("/a1")), rule(None, path("/a2", "api", 80))])
    model = build(group(second, first), [WEB, API], OPTS)
    assert model.stack_id == "shared" and model.members == ("shop/b-first", "shop/a-second")
    assert model.load_balancer.name == naming.load_balancer_name(CLUSTER, "", "shared",
                                                                 "internal")
    assert [ls.port for ls in model.listeners] == [80, 8080]
    assert [(r.priority, conds(r)) for r in model.rules_for(80)] == [
        (1, [("host-header", ("b.example.com",)), ("path-pattern", ("/b", "/b/*"))]),
        (2, [("host-header", ("a.example.com",)), ("path-pattern", ("/a1", "/a1/*"))]),
        (3, [("path-pattern", ("/a2", "/a2/*"))]),
    ]
    assert [r.id for r in model.rules_for(8080)] == ["8080:1"]
    # one target group per (Ingress, Service, port), shared by both listeners
    assert list(model.target_groups) == ["shop/b-first-web:80", "shop/a-second-web:80",
                                         "shop/a-second-api:80"]
    assert model.bindings["shop/a-second-api:80"].labels == {"ingress.k8s.aws/stack": "shared"}


def test_paths_sorted_within_a_rule() -> None:
    """model_build_listener_rules.go@v3.5.0 sortIngressPaths: Exact first, then Prefix longest
    first (stable), then ImplementationSpecific / unset in their original order."""
    paths = [
        path("/impl/*", path_type="ImplementationSpecific"),
        path("/a", path_type="Prefix"),
        path("/none", path_type=None),
        path("/long/prefix", path_type="Prefix"),
        path("/exact", path_type="Exact"),
        path("/b", path_type="Prefix"),
    ]
    assert [p.path for p in sort_paths(paths)] == [
        "/exact", "/long/prefix", "/a", "/b", "/impl/*", "/none"
    ]
    with pytest.raises(IngressModelError, match="unknown pathType for path /x"):
        sort_paths([path("/x", path_type="Glob")])


@pytest.mark.parametrize(
    ("p", "path_type", "regex", "want"),
    [
        ("/api", "Exact", False, (["/api"], [])),
        ("/api", "Prefix", False, (["/api", "/api/*"], [])),
        ("/api/", "Prefix", False, (["/api", "/api/*"], [])),
        ("/", "Prefix", False, (["/*"], [])),
        ("/img/*.png", "ImplementationSpecific", False, (["/img/*.png"], [])),
        ("/img/*", None, False, (["/img/*"], [])),
        ("/v[0-9]+/.*", "ImplementationSpecific", True, ([], ["v[0-9]+/.*"])),
    ],
)
def test_path_patterns(p: str, path_type: str | None, regex: bool, want: Any) -> None:
    """model_build_listener_rules.go@v3.5.0 buildPathPatterns (use-regex-path-match strips the
    leading '/')."""
    assert path_patterns(p, path_type, regex) == want


def test_wildcards_rejected_in_exact_and_prefix() -> None:
    """buildPathPatternsForExactPathType / ...PrefixPathType@v3.5.0."""
    with pytest.raises(IngressModelError, match="exact path shouldn't contain wildcards: /a\\*"):
        path_patterns("/a*", "Exact")
    with pytest.raises(IngressModelError, match="prefix path shouldn't contain wildcards: /a\\?"):
        path_patterns("/a?", "Prefix")


def test_regex_path_match_annotation() -> None:
    """getUseRegexPathMatch@v3.5.0: regexValues for ImplementationSpecific paths."""
    ing = ingress(annotations={A + "use-regex-path-match": "true"},
                  rules=[rule(None, path("/v[12]/.*", path_type="ImplementationSpecific"))])
    [r] = one(ing).rules
    assert r.conditions == (m.Condition("path-pattern", regex_values=("v[12]/.*",)),)


def test_conditions_annotation_merged_in_upstream_order() -> None:
    """buildRuleConditions@v3.5.0: annotation conditions other than host/path first, then host
    values (rule host first), then path values."""
    cond = [
        {"field": "http-header", "httpHeaderConfig": {"httpHeaderName": "X-Beta",
                                                      "values": ["on"]}},
        {"field": "host-header", "hostHeaderConfig": {"values": ["b.example.com"]}},
        {"field": "path-pattern", "pathPatternConfig": {"values": ["/extra"]}},
        {"field": "source-ip", "sourceIPConfig": {"values": ["10.0.0.0/8"]}},
    ]
    ing = ingress(annotations={A + "conditions.web": json.dumps(cond)},
                  rules=[rule("a.example.com", path("/x", path_type="Exact"))])
    [r] = one(ing).rules
    assert conds(r) == [
        ("http-header", ("on",)),
        ("source-ip", ("10.0.0.0/8",)),
        ("host-header", ("a.example.com", "b.example.com")),
        ("path-pattern", ("/x", "/extra")),
    ]


def test_host_values_and_regex_cannot_mix() -> None:
    """buildRuleConditions@v3.5.0 client-side check."""
    cond = [{"field": "host-header", "hostHeaderConfig": {"regexValues": [".*"]}}]
    ing = ingress(annotations={A + "conditions.web": json.dumps(cond)},
                  rules=[rule("a.example.com", path("/"))])
    with pytest.raises(IngressModelError, match="host condition must specify exactly one"):
        one(ing)


def test_weighted_forward_via_use_annotation() -> None:
    """enhanced_backend_builder.go@v3.5.0 use-annotation + model_build_actions.go
    buildForwardAction: a target group per Service port, weights and stickiness carried."""
    fwd = {"type": "forward", "forwardConfig": {
        "targetGroups": [{"serviceName": "web", "servicePort": 80, "weight": 90},
                         {"serviceName": "api", "servicePort": "http", "weight": 10}],
        "targetGroupStickinessConfig": {"enabled": True, "durationSeconds": 300}}}
    ing = ingress(annotations={A + "actions.canary": json.dumps(fwd)},
                  rules=[rule(None, use_annotation("canary"))])
    model = one(ing)
    [r] = model.rules
    [a] = r.actions
    assert a.forward == m.ForwardConfig(
        (m.TargetGroupRef(target_group_id="shop/web-web:80", weight=90),
         m.TargetGroupRef(target_group_id="shop/web-api:http", weight=10)),
        stickiness=m.Stickiness(True, 300),
    )
    assert model.bindings["shop/web-api:http"].service_port == "http"
    assert model.target_groups["shop/web-api:http"].port == 9000
    arns = {"shop/web-web:80": "arn:web", "shop/web-api:http": "arn:api"}
    assert a.to_elbv2(lambda t: arns[t.target_group_id or ""]) == {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": "arn:web", "Weight": 90},
                             {"TargetGroupArn": "arn:api", "Weight": 10}],
            "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 300},
        },
    }


def test_fixed_response_redirect_and_existing_target_group_actions() -> None:
    """model_build_actions.go@v3.5.0 buildFixedResponseAction / buildRedirectAction; a literal
    targetGroupARN needs no target group of ours."""
    anns = {
        A + "actions.teapot": json.dumps({"type": "fixed-response", "fixedResponseConfig": {
            "statusCode": "418", "contentType": "text/plain", "messageBody": "tea"}}),
        A + "actions.moved": json.dumps({"type": "redirect", "redirectConfig": {
            "host": "new.example.com", "statusCode": "HTTP_301"}}),
        A + "actions.legacy": json.dumps({"type": "forward", "targetGroupARN": "arn:legacy"}),
    }
    ing = ingress(annotations=anns, rules=[rule(None, use_annotation("teapot", "/tea"),
                                                use_annotation("moved", "/old"),
                                                use_annotation("legacy", "/legacy"))])
    model = one(ing)
    # Prefix paths sort longest first: /legacy, /tea, /old
    assert [r.actions[0].type for r in model.rules] == ["forward", "fixed-response", "redirect"]
    assert model.rules[0].actions[0].forward == m.ForwardConfig(
        (m.TargetGroupRef(target_group_arn="arn:legacy"),)
    )
    assert model.rules[1].actions[0].fixed_response == m.FixedResponseConfig("418", "text/plain",
                                                                             "tea")
    assert model.rules[2].actions[0].redirect == m.RedirectConfig("HTTP_301",
                                                                  host="new.example.com")
    assert model.target_groups == {}


def test_missing_action_annotation() -> None:
    """enhanced_backend_builder.go@v3.5.0: a missing actions.<name> is a fixed 503 "Backend
    action does not exist" (--tolerate-non-existent-backend-action default true), else an
    error."""
    ing = ingress(rules=[rule(None, use_annotation("nothing"))])
    [r] = one(ing).rules
    assert r.actions[0].fixed_response == m.FixedResponseConfig(
        "503", "text/plain", "Backend action does not exist"
    )
    strict = dataclasses.replace(OPTS, tolerate_non_existent_backend_action=False)
    with pytest.raises(IngressModelError,
                       match="ingress: shop/web: missing actions.nothing configuration"):
        one(ing, opts=strict)


def test_missing_backend_service() -> None:
    """enhanced_backend_builder.go@v3.5.0 loadBackendServices: forwarding to one missing
    Service gives a fixed 503 when tolerated; several Services, or strict mode, error out."""
    ing = ingress(rules=[rule(None, path("/", "ghost", 80))])
    [r] = one(ing).rules
    assert r.actions[0].fixed_response == m.FixedResponseConfig(
        "503", "text/plain", "Backend service does not exist"
    )
    strict = dataclasses.replace(OPTS, tolerate_non_existent_backend_service=False)
    with pytest.raises(IngressModelError, match='ingress: shop/web: services "ghost" not found'):
        one(ing, opts=strict)
    fwd = {"type": "forward", "forwardConfig": {"targetGroups": [
        {"serviceName": "web", "servicePort": 80, "weight": 1},
        {"serviceName": "ghost", "servicePort": 80, "weight": 1}]}}
    multi = ingress(annotations={A + "actions.split": json.dumps(fwd)},
                    rules=[rule(None, use_annotation("split"))])
    with pytest.raises(IngressModelError, match='services "ghost" not found'):
        one(multi)


def test_unknown_service_port() -> None:
    """pkg/k8s/service_utils.go@v3.5.0 LookupServicePort error text."""
    with pytest.raises(IngressModelError,
                       match="ingress: shop/web: unable to find port grpc on service shop/web"):
        one(ingress(rules=[rule(None, path("/", "web", "grpc"))]))
    with pytest.raises(IngressModelError, match="unable to find port 81 on service shop/web"):
        one(ingress(rules=[rule(None, path("/", "web", 81))]))


def test_unparseable_annotations_fail_the_build() -> None:
    """parser.go@v3.5.0 errors surface from build, wrapped with the Ingress key."""
    with pytest.raises(IngressModelError, match="ingress: shop/web: failed to parse json"):
        one(ingress(annotations={A + "conditions.web": "[{"}))
    with pytest.raises(IngressModelError, match="failed to parse listen-ports configuration"):
        one(ingress(annotations={A + "listen-ports": "80"}))


def test_unsupported_values_fail_the_build() -> None:
    """HTTPS listeners, instance targets and transforms are upstream features we do not model."""
    with pytest.raises(UnsupportedError, match="HTTPS"):
        one(ingress(annotations={A + "listen-ports": '[{"HTTPS": 443}]'}))
    with pytest.raises(UnsupportedError, match="instance"):
        one(ingress(), service("web", annotations={A + "target-type": "instance"}))
    with pytest.raises(UnsupportedError, match="transforms.web"):
        one(ingress(annotations={A + "transforms.web": "[]"}))


def test_default_backend() -> None:
    """model_build_listener.go@v3.5.0 buildListenerDefaultActions: spec.defaultBackend becomes
    the listener's default action; two members with one is an error."""
    ing = ingress(rules=[], default_backend=backend("api", "http"))
    model = one(ing)
    assert model.rules == ()
    assert model.listeners[0].default_actions == (
        m.Action("forward", forward=m.ForwardConfig(
            (m.TargetGroupRef(target_group_id="shop/web-api:http"),))),
    )
    g = {A + "group.name": "g"}
    a = ingress("a", annotations=g, default_backend=backend("web", 80))
    b = ingress("b", annotations=g, default_backend=backend("web", 80))
    with pytest.raises(IngressModelError,
                       match=r"multiple ingress defined default backend: \[shop/a shop/b\]"):
        build(group(a, b), [WEB], OPTS)


@pytest.mark.parametrize(
    ("suffix", "v1", "v2", "message"),
    [
        ("scheme", "internal", "internet-facing",
         r"conflicting scheme: map\[internal:\{\} internet-facing:\{\}\]"),
        ("load-balancer-name", "one", "two", "conflicting load balancer name"),
        ("ip-address-type", "ipv4", "dualstack", r"conflicting IPAddressType: \[dualstack ipv4\]"),
        ("load-balancer-attributes", "idle_timeout.timeout_seconds=60",
         "idle_timeout.timeout_seconds=30",
         "conflicting load balancer attributes idle_timeout.timeout_seconds: 60 | 30"),
        ("tags", "team=a", "team=b", "conflicting tag team: a | b"),
    ],
)
def test_group_conflicts(suffix: str, v1: str, v2: str, message: str) -> None:
    """model_build_load_balancer.go / _attributes.go / model_build_tags.go@v3.5.0: "Exclusive"
    settings must agree across the IngressGroup."""
    g = {A + "group.name": "g"}
    a = ingress("a", annotations={**g, A + suffix: v1})
    b = ingress("b", annotations={**g, A + suffix: v2})
    with pytest.raises(IngressModelError, match=message):
        build(group(a, b), [WEB], OPTS)


def test_group_settings_merge_when_compatible() -> None:
    """Same value on several members, or set on one only, is fine (model_build_*.go@v3.5.0)."""
    g = {A + "group.name": "g"}
    a = ingress("a", annotations={**g, A + "scheme": "internet-facing",
                                  A + "load-balancer-attributes": "x=1", A + "tags": "t=1"})
    b = ingress("b", annotations={**g, A + "scheme": "internet-facing",
                                  A + "load-balancer-attributes": "y=2"})
    lb = build(group(a, b), [WEB], OPTS).load_balancer
    assert lb.scheme == "internet-facing"
    assert lb.attributes == {"x": "1", "y": "2"}
    assert lb.tags["t"] == "1"


def test_explicit_load_balancer_name() -> None:
    """buildLoadBalancerName@v3.5.0: load-balancer-name wins, at most 32 characters."""
    assert one(ingress(annotations={A + "load-balancer-name": "my-alb"})).load_balancer.name == (
        "my-alb"
    )
    with pytest.raises(IngressModelError, match="cannot be longer than 32 characters"):
        one(ingress(annotations={A + "load-balancer-name": "x" * 33}))


def test_scheme_default_and_option() -> None:
    """controller_config.go@v3.5.0 --default-load-balancer-scheme=internal; the scheme is part of
    the LB name hash."""
    internal = one(ingress()).load_balancer
    public = one(ingress(), opts=dataclasses.replace(OPTS, default_scheme="internet-facing"))
    assert internal.scheme == "internal" and public.load_balancer.scheme == "internet-facing"
    assert internal.name != public.load_balancer.name


def test_tags_precedence() -> None:
    """model_build_tags.go@v3.5.0 MergeStringMap(defaultTags, annotation tags): --default-tags
    win (feature gate EnableDefaultTagsLowPriority is off by default, feature_gates.go); Service
    tags beat Ingress tags on target groups; tracking/provider.go ResourceTags: tracking tags
    beat everything."""
    opts = dataclasses.replace(OPTS, default_tags={"cost": "lab"})
    ing = ingress(annotations={A + "tags": "team=ing,cost=mine,ingress.k8s.aws/stack=spoof"})
    svc = service("web", annotations={A + "tags": "team=svc"})
    model = build(group(ing), [svc], opts)
    assert model.load_balancer.tags == {
        "elbv2.k8s.aws/cluster": CLUSTER, "ingress.k8s.aws/stack": "shop/web",
        "ingress.k8s.aws/resource": "LoadBalancer", "team": "ing", "cost": "lab",
    }
    tg = model.target_groups["shop/web-web:80"]
    assert tg.tags["team"] == "svc" and tg.tags["cost"] == "lab"
    assert tg.tags["ingress.k8s.aws/stack"] == "shop/web"
    assert model.rules[0].tags["ingress.k8s.aws/resource"] == "80:1"
    assert model.listeners[0].tags["ingress.k8s.aws/resource"] == "80"


def test_target_group_annotations_service_wins() -> None:
    """model_build_target_group.go@v3.5.0 buildTargetGroupSpec reads
    MergeStringMap(svc.Annotations, ing.Annotations): the Service's value wins."""
    ing = ingress(annotations={A + "healthcheck-path": "/ing", A + "healthcheck-interval-seconds":
                               "30", A + "target-group-attributes": "deregistration_delay."
                               "timeout_seconds=5"})
    svc = service("web", annotations={A + "healthcheck-path": "/svc"})
    tg = one(ing, svc).target_groups["shop/web-web:80"]
    assert tg.health_check.path == "/svc"
    assert tg.health_check.interval_seconds == 30
    assert tg.attributes == {"deregistration_delay.timeout_seconds": "5"}


def test_health_check_port_resolution() -> None:
    """buildTargetGroupHealthCheckPort@v3.5.0: a number is kept, a Service port name resolves
    to its numeric targetPort, a named targetPort cannot be used with ip targets."""
    def hc_port(value: str) -> str:
        ing = ingress(annotations={A + "healthcheck-port": value},
                      rules=[rule(None, path("/", "api", "http"))])
        return one(ing).target_groups["shop/web-api:http"].health_check.port

    assert hc_port("8081") == "8081"
    assert hc_port("http") == "9000"
    assert hc_port("traffic-port") == "traffic-port"
    with pytest.raises(IngressModelError, match="cannot use named healthCheckPort"):
        hc_port("admin")
    with pytest.raises(IngressModelError,
                       match="failed to resolve healthCheckPort: unable to find port nope"):
        hc_port("nope")


def test_target_group_port_for_named_target_port() -> None:
    """buildTargetGroupPort@v3.5.0: a named targetPort gives port 1 (not in the data path)."""
    ing = ingress(rules=[rule(None, path("/", "api", "admin"))])
    assert one(ing).target_groups["shop/web-api:admin"].port == 1


def test_same_service_in_two_ingresses_gets_two_target_groups() -> None:
    """buildTargetGroupResourceID@v3.5.0 includes the Ingress: "<ns>/<ing>-<svc>:<port>"."""
    g = {A + "group.name": "g"}
    a = ingress("a", annotations=g, rules=[rule("a.example.com", path("/"))])
    b = ingress("b", annotations=g, rules=[rule("b.example.com", path("/"))])
    model = build(group(a, b), [WEB], OPTS)
    assert list(model.target_groups) == ["shop/a-web:80", "shop/b-web:80"]
    names = {tg.name for tg in model.target_groups.values()}
    assert len(names) == 2


def test_ipv6_service_needs_dualstack() -> None:
    """buildTargetGroupIPAddressType@v3.5.0."""
    v6 = service("web", ip_families=["IPv6"])
    with pytest.raises(IngressModelError, match="unsupported IPv6 configuration, lb not dual"):
        one(ingress(), v6)
    model = one(ingress(annotations={A + "ip-address-type": "dualstack"}), v6)
    assert model.target_groups["shop/web-web:80"].ip_address_type == "ipv6"
    assert model.bindings["shop/web-web:80"].ip_address_type == "ipv6"


def test_redirect_loops_and_shadowed_rules_are_dropped() -> None:
    """rule_optimizer.go@v3.5.0: a redirect onto the same listener/path is omitted, and rules
    after a redirect whose conditions cover theirs are omitted."""
    loop = {"type": "redirect", "redirectConfig": {"protocol": "HTTP", "port": "80",
                                                   "statusCode": "HTTP_301"}}
    away = {"type": "redirect", "redirectConfig": {"host": "new.example.com",
                                                   "statusCode": "HTTP_302"}}
    ing = ingress(
        annotations={A + "actions.loop": json.dumps(loop), A + "actions.away": json.dumps(away)},
        rules=[rule(None, use_annotation("loop", "/loop", "Exact")),
               rule(None, use_annotation("away", "/")),
               rule("x.example.com", path("/shadowed"))],
    )
    model = one(ing)
    assert [(r.priority, conds(r)) for r in model.rules] == [(1, [("path-pattern", ("/*",))])]
    assert model.rules[0].actions[0].redirect is not None
    # the shadowed rule's target group is still built, as upstream builds actions first
    assert list(model.target_groups) == ["shop/web-web:80"]


def test_rule_without_http_is_skipped_and_empty_path_matches_all() -> None:
    """buildListenerRules@v3.5.0 skips rules without http; buildRuleConditions falls back to
    path-pattern /* when nothing else constrains the rule."""
    ing = ingress(rules=[k.V1IngressRule(host="nohttp.example.com"),
                         rule(None, path(None, path_type="ImplementationSpecific"))])
    [r] = one(ing).rules
    assert conds(r) == [("path-pattern", ("/*",))]


def test_empty_group_is_a_programming_error() -> None:
    """An IngressGroup without members is deleted by the caller, not built."""
    from controller.ingress.classes import GroupID, IngressGroup

    with pytest.raises(ValueError, match="no members"):
        build(IngressGroup(GroupID.explicit("g"), ()), [], OPTS)
