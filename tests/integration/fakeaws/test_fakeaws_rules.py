"""Listener rules through the real engine on loopback: every condition type, AND/OR,
priorities (SetRulePriorities, ModifyRule, DeleteRule), fixed-response and redirect actions,
weighted forwards from a rule, rule changes on an open keep-alive connection, and the
listener shape the AWS Load Balancer Controller builds (default fixed-response 404 + rules)."""

from __future__ import annotations

import http.client
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.fakeaws.conftest import API_POLL, Alb, _listening
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


class Resp:
    def __init__(self, r: http.client.HTTPResponse) -> None:
        self.status = r.status
        self.body = r.read()
        self.headers = {k.lower(): v for k, v in r.getheaders()}


def _send(port: int, path: str = "/", method: str = "GET",
          conn: http.client.HTTPConnection | None = None, **headers: str) -> Resp:
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, headers={k.replace("_", "-"): v for k, v in headers.items()})
        return Resp(c.getresponse())
    finally:
        if conn is None:
            c.close()


def _fixed(body: str, status: str = "200", ctype: str = "text/plain") -> dict[str, Any]:
    return {"Type": "fixed-response", "FixedResponseConfig": {
        "StatusCode": status, "ContentType": ctype, "MessageBody": body}}


def _redirect(**cfg: str) -> dict[str, Any]:
    return {"Type": "redirect", "RedirectConfig": {"StatusCode": "HTTP_301", **cfg}}


def _forward(*weighted: tuple[str, int]) -> dict[str, Any]:
    return {"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": arn, "Weight": w} for arn, w in weighted]}}


def _rule(alb: Alb, priority: int, conditions: list[dict[str, Any]],
          action: dict[str, Any]) -> str:
    arn: str = alb.elbv2.create_rule(ListenerArn=alb.listener_arn, Priority=priority,
                                     Conditions=conditions, Actions=[action]
                                     )["Rules"][0]["RuleArn"]
    return arn


def _path(*values: str) -> dict[str, Any]:
    return {"Field": "path-pattern", "PathPatternConfig": {"Values": list(values)}}


def _host(*values: str) -> dict[str, Any]:
    return {"Field": "host-header", "HostHeaderConfig": {"Values": list(values)}}


def _group(alb: Alb, name: str) -> str:
    arn: str = alb.elbv2.create_target_group(
        Name=name, Protocol="HTTP", Port=80, VpcId=alb.vpc_id, TargetType="ip",
        HealthCheckPath="/health", HealthCheckIntervalSeconds=0.2,
        HealthCheckTimeoutSeconds=0.15, HealthyThresholdCount=2, UnhealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    return arn


def _healthy(alb: Alb, tg_arn: str, *servers: Any) -> None:
    alb.elbv2.register_targets(TargetGroupArn=tg_arn, Targets=[
        {"Id": s.host, "Port": s.port} for s in servers])

    def ok() -> bool:
        states = {f"{d['Target']['Id']}:{d['Target']['Port']}": d["TargetHealth"]["State"]
                  for d in alb.elbv2.describe_target_health(
                      TargetGroupArn=tg_arn)["TargetHealthDescriptions"]}
        return all(states.get(s.addr) == "healthy" for s in servers)
    wait_until(ok, 10, what=f"targets healthy in {tg_arn}", interval=API_POLL)


def _events(fakeaws: Any, since: int, kind: str, expect: int) -> list[dict[str, Any]]:
    """`kind` events after `since` once there are `expect` (workers send them just after
    the response)."""
    return list(wait_until(
        lambda: evs if len(evs := fakeaws.events(since, kind)) >= expect else None,
        5, what=f"{expect} {kind} events", interval=API_POLL))


def _albc_listener(alb: Alb) -> None:
    """The AWS Load Balancer Controller's listener: default action fixed-response 404."""
    alb.listener_arn = alb.elbv2.create_listener(
        LoadBalancerArn=alb.lb_arn, Protocol="HTTP", Port=alb.port,
        DefaultActions=[_fixed("", status="404")])["Listeners"][0]["ListenerArn"]
    wait_until(lambda: _listening(alb.port), 5, what="listener bound")


# ---- the controller's shape ------------------------------------------------------------------

def test_listener_with_default_fixed_404_and_host_path_rules(fakeaws, make_alb,
                                                             targets) -> None:
    a, b = targets(), targets()
    alb = make_alb(listener=False)
    since = fakeaws.last_seq()
    _albc_listener(alb)
    started = _events(fakeaws, since, "listener", 1)
    assert started[0]["action"] == "started" and started[0]["listener_port"] == alb.port
    tg_b = _group(alb, "rules-albc-b")
    _rule(alb, 1, [_host("app.example.com"), _path("/api/*")], _forward((alb.tg_arn, 1)))
    _rule(alb, 2, [_host("other.example.com")], _forward((tg_b, 1)))
    # Groups used only by rules are "in use": checked, and they become healthy.
    _healthy(alb, alb.tg_arn, a)
    _healthy(alb, tg_b, b)
    r = _send(alb.port, "/api/users", Host="app.example.com")
    assert (r.status, r.body) == (200, b"ok %d" % a.port)
    assert _send(alb.port, "/x", Host="other.example.com").body == b"ok %d" % b.port
    since = fakeaws.last_seq()
    r = _send(alb.port, "/web", Host="app.example.com")
    assert (r.status, r.body, r.headers.get("x-testbed-elb-error")) == (404, b"", None)
    assert r.headers["content-type"] == "text/plain"
    ev = _events(fakeaws, since, "fixed_response", 1)[0]
    assert (ev["listener_port"], ev["priority"], ev["status"], ev["path"]) == (
        alb.port, None, 404, "/web")
    assert [s.path for s in a.requests] == ["/api/users"]


# ---- every condition type, AND within a rule, OR within a condition --------------------------

def test_every_condition_type(fakeaws, make_alb) -> None:
    alb = make_alb()
    alb.elbv2.modify_listener(ListenerArn=alb.listener_arn,
                              DefaultActions=[_fixed("default", status="404")])
    _rule(alb, 1, [_host("*.host.example.com", "exact.example.org")], _fixed("host"))
    _rule(alb, 2, [{"Field": "path-pattern", "Values": ["/Path/?/*"]}], _fixed("path"))
    _rule(alb, 3, [{"Field": "http-header", "HttpHeaderConfig": {
        "HttpHeaderName": "X-Route", "Values": ["blue*", "green"]}}], _fixed("header"))
    _rule(alb, 4, [{"Field": "http-request-method",
                    "HttpRequestMethodConfig": {"Values": ["PUT", "PATCH"]}}], _fixed("method"))
    _rule(alb, 5, [{"Field": "query-string", "QueryStringConfig": {"Values": [
        {"Key": "mode", "Value": "t?st"}, {"Value": "*magic*"}]}}], _fixed("query"))
    _rule(alb, 6, [{"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}}],
          _fixed("wrong-source"))
    _rule(alb, 7, [{"Field": "source-ip", "SourceIpConfig": {"Values": ["127.0.0.0/8"]}},
                   _path("/src")], _fixed("source"))
    _rule(alb, 8, [_host("and.example.com"), _path("/both")], _fixed("and"))
    cases = [
        # host-header: wildcards, case-insensitive, port ignored; two values = OR
        ({"Host": "a.host.example.com"}, "/", "GET", "host"),
        ({"Host": "A.HOST.Example.COM:99"}, "/", "GET", "host"),
        ({"Host": "EXACT.example.org"}, "/", "GET", "host"),
        ({"Host": "host.example.com"}, "/", "GET", "default"),
        # path-pattern: case-sensitive, "?" exactly one character, query not part of it
        ({}, "/Path/x/y", "GET", "path"),
        ({}, "/Path/x/y?z=/other", "GET", "path"),
        ({}, "/path/x/y", "GET", "default"),
        ({}, "/Path/xx/y", "GET", "default"),
        ({}, "/other?p=/Path/x/y", "GET", "default"),
        # http-header: name and values case-insensitive, wildcards
        ({"x-route": "BLUE-2"}, "/", "GET", "header"),
        ({"X-Route": "green"}, "/", "GET", "header"),
        ({"X-Route": "greenish"}, "/", "GET", "default"),
        ({"X-Other": "blue"}, "/", "GET", "default"),
        # http-request-method: exact
        ({}, "/", "PUT", "method"),
        ({}, "/", "PATCH", "method"),
        ({}, "/", "POST", "default"),
        # query-string: key/value or value only, case-insensitive, wildcards, decoded
        ({}, "/?MODE=TEST", "GET", "query"),
        ({}, "/?a=1&mode=tost", "GET", "query"),
        ({}, "/?mode=toast", "GET", "default"),
        ({}, "/?x=a%20MAGIC%20b", "GET", "query"),
        ({}, "/magic", "GET", "default"),
        # source-ip: the connection's address, not X-Forwarded-For
        ({"X-Forwarded-For": "10.1.1.1"}, "/src", "GET", "source"),
        # AND: every condition of a rule
        ({"Host": "and.example.com"}, "/both", "GET", "and"),
        ({"Host": "and.example.com"}, "/neither", "GET", "default"),
        ({"Host": "or.example.com"}, "/both", "GET", "default"),
    ]
    conn = http.client.HTTPConnection("127.0.0.1", alb.port, timeout=10)
    got = [(h, p, m, _send(alb.port, p, m, conn=conn, **h).body.decode())
           for h, p, m, _ in cases]
    conn.close()
    assert got == [(h, p, m, want) for h, p, m, want in cases]


# ---- priorities --------------------------------------------------------------------------------

def test_priorities_set_rule_priorities_modify_and_delete(fakeaws, make_alb) -> None:
    alb = make_alb()
    alb.elbv2.modify_listener(ListenerArn=alb.listener_arn,
                              DefaultActions=[_fixed("default", status="404")])
    late = _rule(alb, 20, [_path("/p/*")], _fixed("twenty"))
    early = _rule(alb, 10, [_path("/p/*", "/q")], _fixed("ten"))
    assert _send(alb.port, "/p/1").body == b"ten"  # the lower number wins
    alb.elbv2.set_rule_priorities(RulePriorities=[{"RuleArn": late, "Priority": 5}])
    assert _send(alb.port, "/p/1").body == b"twenty"
    alb.elbv2.modify_rule(RuleArn=late, Conditions=[_path("/r")])
    assert _send(alb.port, "/p/1").body == b"ten"
    assert _send(alb.port, "/r").body == b"twenty"
    alb.elbv2.delete_rule(RuleArn=early)
    r = _send(alb.port, "/p/1")
    assert (r.status, r.body) == (404, b"default")


# ---- fixed-response ------------------------------------------------------------------------------

def test_fixed_response_answers_without_a_target(fakeaws, make_alb, targets) -> None:
    a = targets()
    alb = make_alb()
    alb.register(a)
    alb.wait_state(a, "healthy")
    _rule(alb, 7, [_path("/maintenance")],
          _fixed('{"down": true}', status="503", ctype="application/json"))
    since = fakeaws.last_seq()
    r = _send(alb.port, "/maintenance")
    assert (r.status, r.body) == (503, b'{"down": true}')
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-length"] == "14"
    assert "x-testbed-elb-error" not in r.headers
    head = _send(alb.port, "/maintenance", "HEAD")
    assert (head.status, head.body) == (503, b"")
    assert _send(alb.port, "/else").body == b"ok %d" % a.port  # the default action
    assert [s.path for s in a.requests] == ["/else"]
    evs = _events(fakeaws, since, "fixed_response", 2)
    assert [(e["priority"], e["status"], e["path"], e["listener_port"]) for e in evs] == [
        (7, 503, "/maintenance", alb.port)] * 2
    assert fakeaws.events(since, "elb_error") == []


# ---- redirect ------------------------------------------------------------------------------------

def test_redirect_placeholders_and_status(fakeaws, make_alb) -> None:
    alb = make_alb()
    _rule(alb, 1, [_path("/old/*")], _redirect(Path="/new/#{path}"))
    _rule(alb, 2, [_path("/secure")], _redirect(Protocol="HTTPS", Port="443",
                                                StatusCode="HTTP_302"))
    _rule(alb, 3, [_path("/host")], _redirect(Host="new.#{host}", Query="#{query}&from=fake"))
    _rule(alb, 4, [_path("/port")], _redirect(Port="8443", Path="/p/#{port}/#{host}",
                                              Query=""))
    since = fakeaws.last_seq()
    cases = [
        ("/old/a/b?q=1", 301, f"http://www.example.com:{alb.port}/new/old/a/b?q=1"),
        ("/secure?a=b", 302, "https://www.example.com:443/secure?a=b"),
        ("/host?z=9", 301, f"http://new.www.example.com:{alb.port}/host?z=9&from=fake"),
        ("/port?dropped=1", 301, f"http://www.example.com:8443/p/{alb.port}/www.example.com"),
    ]
    for path, status, location in cases:
        r = _send(alb.port, path, Host="www.example.com:1234")
        assert (r.status, r.headers.get("location")) == (status, location), path
        assert "x-testbed-elb-error" not in r.headers
    evs = _events(fakeaws, since, "redirect", len(cases))
    assert [(e["priority"], e["status"], e["path"], e["location"]) for e in evs] == [
        (i, s, p, loc) for i, (p, s, loc) in enumerate(cases, 1)]


# ---- weighted forward from a rule ----------------------------------------------------------------

def test_rule_forwards_to_two_groups_by_weight(fakeaws, make_alb, targets) -> None:
    a, b, c = targets(), targets(), targets()
    alb = make_alb()
    tg_a, tg_b = _group(alb, "rules-w-a"), _group(alb, "rules-w-b")
    rule = _rule(alb, 3, [_path("/w/*")], _forward((tg_a, 1), (tg_b, 1)))
    alb.register(c)
    _healthy(alb, tg_a, a)
    _healthy(alb, tg_b, b)
    alb.wait_state(c, "healthy")
    conn = http.client.HTTPConnection("127.0.0.1", alb.port, timeout=10)
    seen = Counter(_send(alb.port, "/w/x", conn=conn).body.decode() for _ in range(60))
    assert set(seen) == {f"ok {a.port}", f"ok {b.port}"}, seen
    assert _send(alb.port, "/", conn=conn).body == b"ok %d" % c.port  # default action
    alb.elbv2.modify_rule(RuleArn=rule, Actions=[_forward((tg_a, 0), (tg_b, 1))])
    seen = Counter(_send(alb.port, "/w/x", conn=conn).body.decode() for _ in range(30))
    assert seen == {f"ok {b.port}": 30}
    alb.elbv2.modify_rule(RuleArn=rule, Actions=[_forward((tg_a, 0), (tg_b, 0))])
    since = fakeaws.last_seq()
    r = _send(alb.port, "/w/x", conn=conn)
    conn.close()
    assert (r.status, r.headers.get("x-testbed-elb-error")) == (503, "all_weights_zero")
    assert fakeaws.elb_errors(since)[0]["reason"] == "all_weights_zero"


# ---- rule changes on an open keep-alive connection -----------------------------------------------

def test_rule_changes_apply_to_the_next_request_on_a_kept_connection(fakeaws, make_alb,
                                                                     targets) -> None:
    a = targets()
    alb = make_alb()
    alb.register(a)
    alb.wait_state(a, "healthy")
    conn = http.client.HTTPConnection("127.0.0.1", alb.port, timeout=10)
    assert _send(alb.port, "/k", conn=conn).body == b"ok %d" % a.port
    sock = conn.sock
    rule = _rule(alb, 1, [_path("/k")], _fixed("rule"))
    assert _send(alb.port, "/k", conn=conn).body == b"rule"
    alb.elbv2.modify_rule(RuleArn=rule, Actions=[_redirect(Path="/moved")])
    r = _send(alb.port, "/k", conn=conn)
    assert (r.status, r.headers["location"]) == (301, f"http://127.0.0.1:{alb.port}/moved")
    alb.elbv2.delete_rule(RuleArn=rule)
    assert _send(alb.port, "/k", conn=conn).body == b"ok %d" % a.port
    assert conn.sock is sock  # one connection throughout
    conn.close()


def test_listener_default_changed_to_fixed_response(fakeaws, make_alb, targets) -> None:
    a = targets()
    alb = make_alb()
    alb.register(a)
    alb.wait_state(a, "healthy")
    assert _send(alb.port).body == b"ok %d" % a.port
    alb.elbv2.modify_listener(ListenerArn=alb.listener_arn,
                              DefaultActions=[_fixed("gone", status="410")])
    r = _send(alb.port)
    assert (r.status, r.body) == (410, b"gone")
    # The group is no longer used by any action: its targets become unused.
    alb.wait_state(a, "unused", "Target.NotInUse")


# ---- API refusals --------------------------------------------------------------------------------

def test_rule_api_refusals(fakeaws, make_alb) -> None:
    alb = make_alb()
    _rule(alb, 1, [_path("/a")], _fixed("a"))
    with pytest.raises(ClientError) as err:
        _rule(alb, 1, [_path("/b")], _fixed("b"))
    assert err.value.response["Error"]["Code"] == "PriorityInUse"
    with pytest.raises(ClientError) as err:
        _rule(alb, 2, [_host("a.example.com", "b.example.com", "c.example.com"),
                       _path("/a", "/b", "/c")], _fixed("x"))
    assert err.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as err:
        _rule(alb, 50001, [_path("/a")], _fixed("x"))
    assert err.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as err:
        _rule(alb, 3, [_path("/a")], _redirect(Path="relative"))
    assert err.value.response["Error"]["Code"] == "ValidationError"
    rules = alb.elbv2.describe_rules(ListenerArn=alb.listener_arn)["Rules"]
    assert sorted(r["Priority"] for r in rules) == ["1", "default"]
