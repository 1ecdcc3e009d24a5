"""Listener rule matching of the fake ALB (engine/dataplane/rules.py): each condition type,
AND/OR semantics, priorities, redirect Location building, compilation from the wire shape,
and the API's rule validation (api/validation.py)."""

from __future__ import annotations

from typing import Any

import pytest

from testbed.fakeaws import wire
from testbed.fakeaws.api import validation
from testbed.fakeaws.api.errors import AwsError
from testbed.fakeaws.engine.dataplane import rules
from testbed.fakeaws.engine.dataplane.proxy import ListenerSpec


def req(target: str = "/", method: str = "GET", ip: str = "10.1.2.3",
        **headers: str) -> rules.RequestView:
    block = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
    return rules.RequestView(method.encode(), target.encode(), block.encode("latin-1"),
                             ip.encode())


def cond(field: str, *values: str, **extra: Any) -> rules.Condition:
    c: dict[str, Any] = {"field": field, "values": list(values), **extra}
    return rules.compile_condition(c)  # type: ignore[arg-type]


# ---- wildcards -------------------------------------------------------------------------------

@pytest.mark.parametrize(("pattern", "text", "ok"), [
    ("/a/*", "/a/", True), ("/a/*", "/a/b/c", True), ("/a/*", "/a", False),
    ("/a?c", "/abc", True), ("/a?c", "/ac", False), ("/a?c", "/abbc", False),
    ("*", "", True), ("/x.y", "/xzy", False),  # regex metacharacters are literal
    ("/(a)+", "/(a)+", True), ("/a", "/a/", False),  # whole-string match
])
def test_wildcards(pattern: str, text: str, ok: bool) -> None:
    assert bool(rules.wildcard(pattern, ignore_case=False).fullmatch(text)) is ok


def test_wildcard_escapes_only_where_asked() -> None:
    assert rules.wildcard(r"a\*", True, escapes=True).fullmatch("a*")
    assert not rules.wildcard(r"a\*", True, escapes=True).fullmatch("ab")
    assert rules.wildcard(r"a\*", True).fullmatch("a\\bcd")  # "\" literal, "*" wild


# ---- each condition type -----------------------------------------------------------------------

def test_host_header_case_insensitive_wildcards_port_ignored() -> None:
    c = cond("host-header", "*.example.com", "api.test.io")
    assert c.matches(req(Host="Shop.EXAMPLE.com"))
    assert c.matches(req(Host="a.b.example.com:8080"))
    assert c.matches(req(Host="API.test.io"))
    assert not c.matches(req(Host="example.com"))
    assert not c.matches(req(Host="api.test.io.evil"))
    assert not c.matches(req())  # no Host header
    assert cond("host-header", "ex?mple.com").matches(req(Host="example.com"))
    assert cond("host-header", "[::1]").matches(req(Host="[::1]:80"))


def test_path_pattern_case_sensitive_without_query() -> None:
    c = cond("path-pattern", "/api/*", "/img/?.png")
    assert c.matches(req("/api/users?x=/img/a.png"))
    assert c.matches(req("/img/a.png"))
    assert not c.matches(req("/API/users"))
    assert not c.matches(req("/img/ab.png"))
    assert not c.matches(req("/other?q=/api/x"))
    assert cond("path-pattern", "/p").matches(req("/p#frag"))
    assert cond("path-pattern", "/p/*").matches(req("http://h.example.com/p/x?y"))


def test_http_header_name_and_values_case_insensitive() -> None:
    c = cond("http-header", "chrome*", "*safari", header_name="User-Agent")
    assert c.matches(req(user_agent="Chrome/120"))
    assert c.matches(req(USER_AGENT="Mobile SAFARI"))
    assert not c.matches(req(user_agent="curl/8"))
    assert not c.matches(req(x_other="chrome"))
    # A header sent twice: any of its values.
    view = rules.RequestView(b"GET", b"/", b"X-A: no\r\nx-a: yes\r\n", b"1.2.3.4")
    assert cond("http-header", "yes", header_name="x-A").matches(view)


def test_http_request_method_exact_case_sensitive() -> None:
    c = cond("http-request-method", "GET", "CUSTOM_M")
    assert c.matches(req(method="GET"))
    assert c.matches(req(method="CUSTOM_M"))
    assert not c.matches(req(method="POST"))
    assert not c.matches(req(method="get"))
    assert not cond("http-request-method", "G*").matches(req(method="GET"))  # no wildcards


def test_query_string_pairs_keys_optional_decoded_case_insensitive() -> None:
    c = cond("query-string", pairs=[("version", "v1"), (None, "*example*")])
    assert c.matches(req("/?a=1&Version=V1"))
    assert c.matches(req("/?q=an%20Example%21"))  # percent-decoded, then matched
    assert c.matches(req("/?zz=my-example"))
    assert not c.matches(req("/?version=v2"))
    assert not c.matches(req("/"))
    assert not c.matches(req("/version/v1"))
    keyed = cond("query-string", pairs=[("k%", "v*")])
    assert keyed.matches(req("/?k%25=value"))
    literal = cond("query-string", pairs=[("q", r"a\*")])
    assert literal.matches(req("/?q=a*"))
    assert not literal.matches(req("/?q=ab"))
    assert cond("query-string", pairs=[("flag", "")]).matches(req("/?flag"))


def test_source_ip_cidrs_not_forwarded_for() -> None:
    c = cond("source-ip", "10.0.0.0/8", "2001:db8::/32")
    assert c.matches(req(ip="10.200.0.1"))
    assert c.matches(req(ip="2001:db8::5"))
    assert c.matches(req(ip="::ffff:10.0.0.9"))  # IPv4-mapped: its IPv4 address
    assert not c.matches(req(ip="192.168.0.1", x_forwarded_for="10.0.0.1"))
    assert not cond("source-ip", "not-a-cidr").matches(req(ip="10.0.0.1"))


def test_unknown_condition_field_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown condition"):
        cond("cookie", "x")


# ---- rules: AND within a rule, OR within a condition, first by priority ----------------------

FWD_A = rules.Forward((("A", 1),))
FWD_B = rules.Forward((("B", 1),))
NOT_FOUND = rules.FixedResponse(404, "text/plain", b"nope")


def _rules(*specs: tuple[int, list[wire.Condition], wire.Action]) -> tuple[rules.Rule, ...]:
    return rules.compile_rules([{"priority": p, "conditions": cs, "action": a}
                                for p, cs, a in specs])


def _fwd(arn: str) -> wire.ForwardAction:
    return {"type": "forward", "target_groups": [(arn, 1)], "stickiness": 0.0}


def test_all_conditions_must_match_any_value_may() -> None:
    rs = _rules((1, [{"field": "host-header", "values": ["a.example.com", "b.example.com"]},
                     {"field": "path-pattern", "values": ["/x/*"]}], _fwd("A")))
    pick = lambda r: rules.select(rs, NOT_FOUND, r)  # noqa: E731
    assert pick(req("/x/1", Host="b.example.com")) == (1, FWD_A)
    assert pick(req("/y", Host="a.example.com")) == (None, NOT_FOUND)
    assert pick(req("/x/1", Host="c.example.com")) == (None, NOT_FOUND)


def test_lowest_priority_number_wins_whatever_the_wire_order() -> None:
    rs = _rules((20, [{"field": "path-pattern", "values": ["/*"]}], _fwd("B")),
                (5, [{"field": "path-pattern", "values": ["/a*"]}], _fwd("A")))
    assert [r.priority for r in rs] == [5, 20]
    assert rules.select(rs, NOT_FOUND, req("/abc")) == (5, FWD_A)
    assert rules.select(rs, NOT_FOUND, req("/zzz")) == (20, FWD_B)


def test_listener_spec_from_wire() -> None:
    spec = ListenerSpec.from_wire({
        "arn": "l", "port": 80, "idle_timeout": 60.0,
        "default_action": {"type": "fixed-response", "status": 404,
                           "content_type": "text/plain", "body": "nope"},
        "rules": [{"priority": 3, "conditions": [
            {"field": "query-string", "values": [], "pairs": [[None, "x"]]}],  # type: ignore
            "action": {"type": "forward", "target_groups": [["A", 2], ["B", 0]],  # type: ignore
                       "stickiness": 30}}]})
    assert spec.default == NOT_FOUND
    assert spec.rules[0].action == rules.Forward((("A", 2), ("B", 0)), 30.0)
    assert spec.rules[0].matches(req("/?k=x"))
    assert ListenerSpec.from_wire({"arn": "l", "port": 80, "idle_timeout": 60.0,
                                   "default_action": _fwd("A"), "rules": []}).rules == ()


# ---- fixed-response and redirect ---------------------------------------------------------------

def test_fixed_response_bytes() -> None:
    fr = rules.FixedResponse(503, "application/json", b'{"down":true}')
    raw = fr.response(head_only=False, close=False)
    assert raw.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"Content-Type: application/json\r\n" in raw
    assert b"Content-Length: 13\r\n" in raw and raw.endswith(b'\r\n\r\n{"down":true}')
    assert b"x-testbed-elb-error" not in raw
    head = fr.response(head_only=True, close=True)
    assert head.endswith(b"Connection: close\r\n\r\n") and b"Content-Length: 13" in head
    assert b"Content-Type" not in rules.FixedResponse(200, "", b"").response(False, False)


def _redirect(**cfg: Any) -> rules.Redirect:
    base: dict[str, Any] = {"type": "redirect", "protocol": "#{protocol}", "port": "#{port}",
                            "host": "#{host}", "path": "/#{path}", "query": "#{query}",
                            "status": 301}
    action = rules.compile_action({**base, **cfg})  # type: ignore[arg-type]
    assert isinstance(action, rules.Redirect)
    return action


@pytest.mark.parametrize(("cfg", "target", "location"), [
    ({"protocol": "HTTPS", "port": "443"}, "/a/b?x=1",
     "https://shop.example.com:443/a/b?x=1"),
    ({"host": "new.#{host}"}, "/p", "http://new.shop.example.com:8080/p"),
    ({"port": "9000"}, "/", "http://shop.example.com:9000/"),
    ({"path": "/v2/#{path}"}, "/items/7?q", "http://shop.example.com:8080/v2/items/7?q"),
    ({"path": "/#{host}/#{port}"}, "/z", "http://shop.example.com:8080/shop.example.com/8080"),
    ({"path": "/fixed", "query": "#{query}&src=old"}, "/x?a=b",
     "http://shop.example.com:8080/fixed?a=b&src=old"),
    ({"path": "/fixed", "query": ""}, "/x?a=b", "http://shop.example.com:8080/fixed"),
    ({"protocol": "#{protocol}", "path": "/q"}, "/x", "http://shop.example.com:8080/q"),
])
def test_redirect_location(cfg: dict[str, Any], target: str, location: str) -> None:
    view = req(target, Host="shop.example.com:1234")
    assert _redirect(**cfg).location(view, 8080) == location


def test_redirect_response_status_and_head() -> None:
    r = _redirect(status=302, path="/n")
    raw = r.response("http://h.example.com:80/n", head_only=False, close=False)
    assert raw.startswith(b"HTTP/1.1 302 Found\r\n")
    assert b"Location: http://h.example.com:80/n\r\n" in raw
    assert _redirect(path="/n").response("x", False, False).startswith(
        b"HTTP/1.1 301 Moved Permanently\r\n")


# ---- API validation of rules -------------------------------------------------------------------

def _create_rule(*conditions: dict[str, str], **actions: str) -> dict[str, str]:
    form = {"Action": "CreateRule", "ListenerArn": "x", "Priority": "1"}
    for i, c in enumerate(conditions, 1):
        form.update({f"Conditions.member.{i}.{k}": v for k, v in c.items()})
    form.update({"Actions.member.1.Type": "forward", "Actions.member.1.TargetGroupArn": "t"})
    form.update({f"Actions.member.1.{k.replace('__', '.')}": v for k, v in actions.items()})
    return form


def _hosts(*values: str) -> dict[str, str]:
    out = {"Field": "host-header"}
    out.update({f"HostHeaderConfig.Values.member.{i}": v for i, v in enumerate(values, 1)})
    return out


def _paths(*values: str) -> dict[str, str]:
    out = {"Field": "path-pattern"}
    out.update({f"PathPatternConfig.Values.member.{i}": v for i, v in enumerate(values, 1)})
    return out


def _refused(form: dict[str, str], match: str) -> None:
    with pytest.raises(AwsError, match=match) as err:
        validation.rules(form["Action"], form)
    assert err.value.code == "ValidationError"


def test_validation_accepts_the_controller_shape() -> None:
    validation.rules("CreateRule", _create_rule(_hosts("*.example.com"), _paths("/api/*")))
    validation.rules("CreateRule", _create_rule(
        {"Field": "path-pattern", "Values.member.1": "/legacy"}))
    validation.rules("CreateListener", {
        "DefaultActions.member.1.Type": "fixed-response",
        "DefaultActions.member.1.FixedResponseConfig.StatusCode": "404",
        "DefaultActions.member.1.FixedResponseConfig.ContentType": "text/plain"})


@pytest.mark.parametrize(("form", "match"), [
    (_create_rule(_hosts("a.example.com", "b.example.com", "c.example.com"),
                  _paths("/a", "/b", "/c")), "'5' condition values"),
    (_create_rule(_hosts("a.example.com", "b.example.com", "c.example.com", "d.example.com")),
     "the limit is '3'"),
    (_create_rule(_paths("/" + "a" * 128)), "too long"),
    (_create_rule(_paths("/a b")), "not allowed"),
    (_create_rule(_hosts("*.ex*.c?m"), _paths("/*/*/*")), "'5' wildcards"),
    (_create_rule(_hosts("localhost")), "host-header"),
    (_create_rule(_hosts("a.example.com"), _hosts("b.example.com")), "only have one"),
    (_create_rule({"Field": "http-header", "HttpHeaderConfig.HttpHeaderName": "Host",
                   "HttpHeaderConfig.Values.member.1": "x"}), "host header"),
    (_create_rule({"Field": "http-request-method",
                   "HttpRequestMethodConfig.Values.member.1": "Get"}), "invalid"),
    (_create_rule({"Field": "source-ip", "SourceIpConfig.Values.member.1": "10.0.0.300/8"}),
     "CIDR"),
    (_create_rule({"Field": "source-ip", "SourceIpConfig.Values.member.1": "10.0.0.1"}),
     "CIDR"),
    (_create_rule({"Field": "query-string"}), "must be specified"),
    (_create_rule({"Field": "host-header", "HostHeaderConfig.RegexValues.member.1": "^a"}),
     "not modelled"),
    (_create_rule(_paths("/a"), Type="fixed-response", FixedResponseConfig__StatusCode="302"),
     "pattern"),
    (_create_rule(_paths("/a"), Type="fixed-response", FixedResponseConfig__StatusCode="200",
                  FixedResponseConfig__ContentType="text/xml"), "content type"),
    (_create_rule(_paths("/a"), Type="redirect", RedirectConfig__StatusCode="HTTP_301",
                  RedirectConfig__Path="no-slash"), "must start with '/'"),
    (_create_rule(_paths("/a"), Type="redirect", RedirectConfig__StatusCode="HTTP_301",
                  RedirectConfig__Port="70000"), "port"),
    (_create_rule(_paths("/a"), Type="redirect", RedirectConfig__StatusCode="HTTP_301",
                  RedirectConfig__Query="a=1"), "redirect loop"),
    (_create_rule(_paths("/a"), Type="redirect", RedirectConfig__StatusCode="HTTP_301",
                  RedirectConfig__Protocol="FTP"), "pattern"),
])
def test_validation_refuses(form: dict[str, str], match: str) -> None:
    _refused(form, match)


def test_source_ip_allows_five_values() -> None:
    cidrs = {f"SourceIpConfig.Values.member.{i}": f"10.{i}.0.0/16" for i in range(1, 6)}
    validation.rules("CreateRule", _create_rule({"Field": "source-ip", **cidrs}))


def test_configured_control_characters_never_break_the_head() -> None:
    r = _redirect(path="/a\r\nSet-Cookie: x=1")
    assert r.location(req("/"), 80) == "http://:80/aSet-Cookie: x=1"
    fr = rules.compile_action({"type": "fixed-response", "status": 200,
                               "content_type": "text/plain\r\nX-Evil: 1", "body": ""})
    assert isinstance(fr, rules.FixedResponse) and fr.content_type == "text/plainX-Evil: 1"
