"""Listener rules of the fake ALB: actions and conditions, compiled once per snapshot.

`compile_listener` turns a wire listener's default action and rules into `Action` objects
and `Rule`s whose conditions are precompiled (wildcards -> regular expressions, CIDRs ->
networks); `select` picks, per request, the action of the first rule (lowest priority
number) whose conditions all match, else the default action. A listener without rules
never builds a `RequestView`: the proxy goes straight to the default action.

AWS sources:
- conditions: https://docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-condition-types.html
  (several values in one condition: any may match; several conditions in one rule: all must)
- actions: https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-listeners.html#rule-action-types
- redirects: https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_RedirectActionConfig.html
"""

from __future__ import annotations

import http
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote

from testbed.fakeaws import wire

# ---- actions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Forward:
    """`forward`: target groups with weights (0: no traffic), and the group stickiness
    duration (ForwardConfig.TargetGroupStickinessConfig DurationSeconds; 0: off)."""

    groups: tuple[tuple[str, int], ...]
    stickiness: float = 0.0


@dataclass(frozen=True, slots=True)
class FixedResponse:
    """`fixed-response`: the ALB answers with this status, content type and body."""

    status: int
    content_type: str  # "" when none was configured: no Content-Type header
    body: bytes

    def response(self, head_only: bool, close: bool) -> bytes:
        phrase = _phrase(self.status)
        ctype = b"Content-Type: %s\r\n" % self.content_type.encode() if self.content_type \
            else b""
        return b"HTTP/1.1 %d %s\r\nServer: awselb/2.0\r\n%sContent-Length: %d\r\n" \
            b"Connection: %s\r\n\r\n%s" % (
                self.status, phrase, ctype, len(self.body),
                b"close" if close else b"keep-alive", b"" if head_only else self.body)


# Reserved keywords of a redirect (API_RedirectActionConfig): "#{path}" is the path without
# its leading "/".
_KEYWORD = re.compile(r"#\{(protocol|host|port|path|query)\}")


@dataclass(frozen=True, slots=True)
class Redirect:
    """`redirect`: each component may reuse the request's through the reserved keywords;
    a component not configured keeps the original ("#{...}")."""

    protocol: str = "#{protocol}"
    port: str = "#{port}"
    host: str = "#{host}"
    path: str = "/#{path}"
    query: str = "#{query}"
    status: int = 301

    def location(self, view: RequestView, listener_port: int) -> str:
        values = {"protocol": "http", "host": view.host_for_redirect(),
                  "port": str(listener_port), "path": view.path()[1:],
                  "query": view.query()}

        def fill(template: str) -> str:
            return _KEYWORD.sub(lambda m: values[m.group(1)], template)

        query = fill(self.query)
        # The port is always written: ALB's Location headers carry it (https://h:443/...).
        scheme = fill(self.protocol).lower()
        tail = "?" + query if query else ""
        location = f"{scheme}://{fill(self.host)}:{fill(self.port)}{fill(self.path)}{tail}"
        return _NO_CTL.sub("", location)  # never a header break, whatever was configured

    def response(self, location: str, head_only: bool, close: bool) -> bytes:
        phrase = _phrase(self.status)
        body = (b"<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s"
                b"</h1></center>\r\n</body>\r\n</html>\r\n" % (self.status, phrase,
                                                               self.status, phrase))
        return b"HTTP/1.1 %d %s\r\nServer: awselb/2.0\r\nContent-Type: text/html\r\n" \
            b"Content-Length: %d\r\nLocation: %s\r\nConnection: %s\r\n\r\n%s" % (
                self.status, phrase, len(body), location.encode("latin-1", "replace"),
                b"close" if close else b"keep-alive", b"" if head_only else body)


Action = Forward | FixedResponse | Redirect
_NO_CTL = re.compile(r"[\x00-\x1f\x7f]")


def _phrase(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


# ---- the request as conditions see it ------------------------------------------------------


class RequestView:
    """What conditions read from one request, parsed lazily (only what a rule asks for)."""

    __slots__ = ("method", "target", "block", "client_ip", "_headers", "_query_pairs",
                 "_addr")

    def __init__(self, method: bytes, target: bytes, block: bytes, client_ip: bytes) -> None:
        self.method = method
        self.target = target  # the request-target as sent (path and query)
        self.block = block  # header lines, CRLF-terminated (http1.Head.block)
        self.client_ip = client_ip
        self._headers: dict[str, list[str]] | None = None
        self._query_pairs: list[tuple[str, str]] | None = None
        self._addr: ipaddress.IPv4Address | ipaddress.IPv6Address | None | bool = False

    def path(self) -> str:
        """The path of the request-target, without the query string."""
        raw = self.target.decode("latin-1")
        if "://" in raw.partition("?")[0]:  # absolute-form: http://host/path
            raw = "/" + raw.partition("://")[2].partition("/")[2]
        return raw.partition("?")[0].partition("#")[0]

    def query(self) -> str:
        """The raw query string (after the first "?", without a "#fragment")."""
        return self.target.decode("latin-1").partition("?")[2].partition("#")[0]

    def headers(self) -> dict[str, list[str]]:
        """lower-case name -> the values in the order sent."""
        if self._headers is None:
            out: dict[str, list[str]] = {}
            for line in self.block.decode("latin-1").split("\r\n"):
                name, sep, value = line.partition(":")
                if sep:
                    out.setdefault(name.strip().lower(), []).append(value.strip())
            self._headers = out
        return self._headers

    def host(self) -> str | None:
        """The host name of the Host header, without a port; None without a Host header."""
        values = self.headers().get("host")
        if not values:
            return None
        return _strip_port(values[0])

    def host_for_redirect(self) -> str:
        return self.host() or ""

    def query_pairs(self) -> list[tuple[str, str]]:
        """(key, value) per parameter, percent-decoded; a parameter without "=" is a key with
        an empty value."""
        if self._query_pairs is None:
            pairs = []
            for part in self.query().split("&"):
                if part:
                    k, _, v = part.partition("=")
                    pairs.append((unquote(k), unquote(v)))
            self._query_pairs = pairs
        return self._query_pairs

    def addr(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        if self._addr is False:
            try:
                a = ipaddress.ip_address(self.client_ip.decode())
            except ValueError:
                a = None
            if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
                a = a.ipv4_mapped
            self._addr = a
        return self._addr  # type: ignore[return-value]


def _strip_port(host: str) -> str:
    if host.startswith("["):  # IPv6 literal
        return host.partition("]")[0] + "]"
    name, sep, port = host.rpartition(":")
    return name if sep and port.isdigit() else host


# ---- conditions ------------------------------------------------------------------------------


def wildcard(pattern: str, ignore_case: bool, escapes: bool = False) -> re.Pattern[str]:
    """A rule value with `*` (0 or more characters) and `?` (exactly one) as a regex that
    must match the whole string. `escapes`: `\\*` and `\\?` are literal (query-string)."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if escapes and c == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*?":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


class Condition(Protocol):
    def matches(self, req: RequestView) -> bool: ...


@dataclass(frozen=True, slots=True)
class HostHeader:
    """host-header: the Host header's name (port removed), case-insensitive, wildcards."""

    patterns: tuple[re.Pattern[str], ...]

    def matches(self, req: RequestView) -> bool:
        host = req.host()
        return host is not None and any(p.fullmatch(host) for p in self.patterns)


@dataclass(frozen=True, slots=True)
class PathPattern:
    """path-pattern: the path (not the query string), case-sensitive, wildcards."""

    patterns: tuple[re.Pattern[str], ...]

    def matches(self, req: RequestView) -> bool:
        path = req.path()
        return any(p.fullmatch(path) for p in self.patterns)


@dataclass(frozen=True, slots=True)
class HttpHeader:
    """http-header: a header (name case-insensitive) whose value matches one pattern
    (case-insensitive, wildcards); a header sent several times: any of its values."""

    name: str  # lower-case
    patterns: tuple[re.Pattern[str], ...]

    def matches(self, req: RequestView) -> bool:
        return any(p.fullmatch(v) for v in req.headers().get(self.name, ())
                   for p in self.patterns)


@dataclass(frozen=True, slots=True)
class Method:
    """http-request-method: exact, case-sensitive."""

    methods: frozenset[bytes]

    def matches(self, req: RequestView) -> bool:
        return req.method in self.methods


@dataclass(frozen=True, slots=True)
class QueryString:
    """query-string: one (key, value) pattern pair matching one parameter (key None: any
    key); case-insensitive, wildcards, `\\*`/`\\?` literal; percent-decoded parameters."""

    pairs: tuple[tuple[re.Pattern[str] | None, re.Pattern[str]], ...]

    def matches(self, req: RequestView) -> bool:
        return any((kp is None or kp.fullmatch(k)) and vp.fullmatch(v)
                   for k, v in req.query_pairs() for kp, vp in self.pairs)


@dataclass(frozen=True, slots=True)
class SourceIp:
    """source-ip: the address of the connection's peer (never X-Forwarded-For)."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    def matches(self, req: RequestView) -> bool:
        a = req.addr()
        return a is not None and any(a in n for n in self.networks)


@dataclass(frozen=True, slots=True)
class Rule:
    priority: int
    conditions: tuple[Condition, ...]
    action: Action

    def matches(self, req: RequestView) -> bool:
        return all(c.matches(req) for c in self.conditions)


def select(rules: Sequence[Rule], default: Action, req: RequestView
           ) -> tuple[int | None, Action]:
    """-> (priority of the first matching rule or None for the default, its action)."""
    for rule in rules:
        if rule.matches(req):
            return rule.priority, rule.action
    return None, default


# ---- from the wire -----------------------------------------------------------------------


def compile_condition(c: wire.Condition) -> Condition:
    field = c["field"]
    values = [str(v) for v in c.get("values", [])]
    if field == "host-header":
        return HostHeader(tuple(wildcard(v, ignore_case=True) for v in values))
    if field == "path-pattern":
        return PathPattern(tuple(wildcard(v, ignore_case=False) for v in values))
    if field == "http-header":
        return HttpHeader(str(c.get("header_name", "")).lower(),
                          tuple(wildcard(v, ignore_case=True) for v in values))
    if field == "http-request-method":
        return Method(frozenset(v.encode() for v in values))
    if field == "query-string":
        return QueryString(tuple(
            (wildcard(k, True, escapes=True) if k is not None else None,
             wildcard(v, True, escapes=True)) for k, v in c.get("pairs", [])))
    if field == "source-ip":
        nets = []
        for v in values:
            try:
                nets.append(ipaddress.ip_network(v, strict=False))
            except ValueError:
                continue  # never matches (the API refuses such values)
        return SourceIp(tuple(nets))
    raise ValueError(f"unknown condition field {field!r}")


def compile_action(a: wire.Action) -> Action:
    if a["type"] == "forward":
        return Forward(tuple((str(g[0]), int(g[1])) for g in a["target_groups"]),
                       float(a.get("stickiness") or 0.0))
    if a["type"] == "fixed-response":
        return FixedResponse(int(a["status"]), _NO_CTL.sub("", str(a.get("content_type") or "")),
                             str(a.get("body") or "").encode())
    if a["type"] == "redirect":
        return Redirect(protocol=a.get("protocol") or "#{protocol}",
                        port=a.get("port") or "#{port}", host=a.get("host") or "#{host}",
                        path=a.get("path") or "/#{path}",
                        query=a["query"] if a.get("query") is not None else "#{query}",
                        status=int(a.get("status") or 301))
    raise ValueError(f"unknown action type {a['type']!r}")


def compile_rules(rules: Sequence[wire.Rule]) -> tuple[Rule, ...]:
    """Compiled rules, lowest priority number first."""
    out = [Rule(int(r["priority"]), tuple(compile_condition(c) for c in r["conditions"]),
                compile_action(r["action"])) for r in rules]
    return tuple(sorted(out, key=lambda r: r.priority))
