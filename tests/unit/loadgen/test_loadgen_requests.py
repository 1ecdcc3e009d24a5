"""Request specs, their encoding and validation, the weighted choice and the CLI's parsing,
without sockets."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from testbed.loadgen.attack import AttackConfig, RequestSpec, _Engine, make_chooser
from testbed.loadgen.cli import app, build_config, parse_header, parse_request
from testbed.loadgen.http1 import Http1Conn
from testbed.loadgen.records import Record
from testbed.loadgen.testing import FakeTransport, _Proto


def _wire(cfg: AttackConfig) -> list[bytes]:
    async def build() -> list[bytes]:
        return _Engine(cfg, None).wire
    return asyncio.run(build())


def _one(spec: RequestSpec, **kw: Any) -> bytes:
    return _wire(AttackConfig(url="http://h:8080/ignored", rate=1, duration=1,
                              requests=(spec,), **kw))[0]


# ---- encoding ---------------------------------------------------------------------------

def test_default_request_is_unchanged_get_of_the_url() -> None:
    # byte for byte what the generator sent before request specs existed
    assert _wire(AttackConfig(url="http://h:8080/p/q?x=1&y=2", rate=1, duration=1)) == [
        b"GET /p/q?x=1&y=2 HTTP/1.1\r\nHost: h:8080\r\nUser-Agent: testbed-loadgen\r\n"
        b"Accept: */*\r\n\r\n"]
    assert _wire(AttackConfig(url="http://h", rate=1, duration=1, keepalive=False)) == [
        b"GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: testbed-loadgen\r\nAccept: */*\r\n"
        b"Connection: close\r\n\r\n"]


def test_url_userinfo_is_not_sent_as_host() -> None:
    assert b"\r\nHost: h:81\r\n" in _wire(AttackConfig(url="http://u:pw@h:81/", rate=1,
                                                       duration=1))[0]


def test_post_with_body_headers_and_host() -> None:
    wire = _one(RequestSpec(path="/items?a=1", method="POST", body=b'{"n":1}',
                            headers=(("Content-Type", "application/json"),
                                     ("X-Trace", "a b\tc"), ("X-Trace", "second"))),
                host="api.example.com")
    assert wire == (b"POST /items?a=1 HTTP/1.1\r\nHost: api.example.com\r\n"
                    b"User-Agent: testbed-loadgen\r\nAccept: */*\r\n"
                    b"Content-Type: application/json\r\nX-Trace: a b\tc\r\nX-Trace: second\r\n"
                    b'Content-Length: 7\r\n\r\n{"n":1}')


@pytest.mark.parametrize(("method", "body", "length"), [
    ("POST", b"", b"0"), ("PUT", b"", b"0"), ("PATCH", b"", b"0"),
    ("GET", b"", None), ("HEAD", b"", None), ("DELETE", b"", None), ("OPTIONS", b"", None),
    ("GET", b"abc", b"3"), ("DELETE", b"x" * 70000, b"70000"),
])
def test_content_length_only_when_there_is_a_body_or_the_method_expects_one(
        method: str, body: bytes, length: bytes | None) -> None:
    head, _, rest = _one(RequestSpec(method=method, body=body)).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == method.encode() + b" / HTTP/1.1"
    cl = [line for line in lines if line.lower().startswith(b"content-length:")]
    assert cl == ([] if length is None else [b"Content-Length: " + length])
    assert rest == body


def test_user_agent_and_accept_given_replace_the_defaults() -> None:
    head = _one(RequestSpec(headers=(("user-agent", "svc-client/2"), ("Accept", "text/html"))))
    assert head.count(b"User-Agent") + head.count(b"user-agent") == 1
    assert b"user-agent: svc-client/2\r\n" in head and b"Accept: text/html\r\n" in head
    assert b"*/*" not in head


def test_each_spec_is_encoded_once_in_order() -> None:
    wire = _wire(AttackConfig(url="http://h/", rate=1, duration=1, requests=(
        RequestSpec("/a"), RequestSpec("/b", method="HEAD"))))
    assert [w.split(b"\r\n")[0] for w in wire] == [b"GET /a HTTP/1.1", b"HEAD /b HTTP/1.1"]


# ---- validation -------------------------------------------------------------------------

@pytest.mark.parametrize(("kw", "match"), [
    ({"method": ""}, "not a token"),
    ({"method": "GE T"}, "not a token"),
    ({"method": "GET\r\nX: y"}, "not a token"),
    ({"method": "GET/"}, "not a token"),
    ({"path": "items"}, "must start with '/'"),
    ({"path": ""}, "must start with '/'"),
    ({"path": "/a b"}, "no spaces"),
    ({"path": "/a\r\nX-Injected: 1"}, "CR/LF"),
    ({"path": "/a\tb"}, "must start with '/'"),
    ({"path": "/caf\u00e9"}, "percent-encode"),
    ({"path": "/a#frag"}, "'#'"),
    ({"path": "http://other/"}, "must start with '/'"),
    ({"headers": (("Host", "x"),)}, "AttackConfig.host"),
    ({"headers": (("content-length", "3"),)}, "computed from the body"),
    ({"headers": (("Transfer-Encoding", "chunked"),)}, "not supported"),
    ({"headers": (("CONNECTION", "close"),)}, "keepalive"),
    ({"headers": (("Bad Name", "x"),)}, "not a token"),
    ({"headers": (("X-A:", "x"),)}, "not a token"),
    ({"headers": (("", "x"),)}, "not a token"),
    ({"headers": (("X-A", "1\r\nX-Injected: 1"),)}, "CR, LF"),
    ({"headers": (("X-A", "1\nb"),)}, "CR, LF"),
    ({"headers": (("X-A", "a\x00b"),)}, "control characters"),
    ({"headers": (("X-A", "\u20ac"),)}, "Latin-1"),
    ({"weight": 0}, "positive"),
    ({"weight": -1.0}, "positive"),
    ({"weight": float("nan")}, "positive"),
    ({"weight": float("inf")}, "positive"),
    ({"body": "text"}, "body must be bytes"),
])
def test_invalid_request_specs_are_refused_when_created(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RequestSpec(**kw)


def test_valid_unusual_specs_are_accepted() -> None:
    s = RequestSpec(path="/a/b;p=1?q=%20&r=[x]", method="PROPFIND",
                    headers=[("X-Empty", ""), ("X-Latin", "caf\u00e9")],  # type: ignore[arg-type]
                    body=bytearray(b"xy"), weight=2)  # type: ignore[arg-type]
    assert s.headers == (("X-Empty", ""), ("X-Latin", "caf\u00e9")) and s.body == b"xy"
    assert hash(s) == hash(RequestSpec(path="/a/b;p=1?q=%20&r=[x]", method="PROPFIND",
                                       headers=(("X-Empty", ""), ("X-Latin", "caf\u00e9")),
                                       body=b"xy", weight=2))
    assert b"X-Latin: caf\xe9\r\n" in _one(s)


@pytest.mark.parametrize("host", ["", "a b", "h\r\nX: 1", "h/x", "h\x00"])
def test_invalid_host_is_refused_when_configured(host: str) -> None:
    with pytest.raises(ValueError, match="host"):
        AttackConfig(url="http://h/", rate=1, duration=1, host=host)


def test_config_normalizes_and_checks_requests() -> None:
    cfg = AttackConfig(url="http://h/", rate=1, duration=1,
                       requests=[RequestSpec("/a")])  # type: ignore[arg-type]
    assert cfg.requests == (RequestSpec("/a"),) and hash(cfg)
    with pytest.raises(ValueError, match="RequestSpec"):
        AttackConfig(url="http://h/", rate=1, duration=1,
                     requests=("/a",))  # type: ignore[arg-type]


def test_url_path_is_the_request_only_without_specs() -> None:
    assert AttackConfig(url="http://h/x?y", rate=1, duration=1).request_specs() == (
        RequestSpec("/x?y"),)
    mix = (RequestSpec("/a", weight=2), RequestSpec("/b"))
    assert AttackConfig(url="http://h/x?y", rate=1, duration=1,
                        requests=mix).request_specs() == mix


def test_bad_url_path_is_refused_when_the_attack_starts() -> None:
    with pytest.raises(ValueError, match="no spaces"):
        _wire(AttackConfig(url="http://h/a b", rate=1, duration=1))


# ---- weighted choice --------------------------------------------------------------------

def test_weights_three_to_one() -> None:
    choose = make_chooser([3.0, 1.0], seed=0)
    counts = Counter(choose() for _ in range(4000))
    # binomial sd at n=4000 is 0.7 %; 3 % is a wide margin yet catches a swapped or
    # ignored weight (50 %) and an off-by-one cumulative sum (100 %/0 %)
    assert set(counts) == {0, 1}
    assert counts[0] / 4000 == pytest.approx(0.75, abs=0.03)


def test_weights_three_kinds_and_fractions() -> None:
    choose = make_chooser([0.5, 0.25, 0.25], seed=7)
    counts = Counter(choose() for _ in range(4000))
    assert [counts[i] / 4000 for i in range(3)] == pytest.approx([0.5, 0.25, 0.25], abs=0.03)


def test_choice_is_deterministic_per_seed() -> None:
    def draws(seed: int) -> list[int]:
        choose = make_chooser([1.0, 1.0, 2.0], seed)
        return [choose() for _ in range(200)]
    assert draws(1) == draws(1)
    assert draws(1) != draws(2)


def test_single_spec_is_always_index_zero() -> None:
    choose = make_chooser([5.0], seed=3)
    assert {choose() for _ in range(100)} == {0}


def test_engine_draws_follow_the_seed() -> None:
    cfg = AttackConfig(url="http://h/", rate=1, duration=1, seed=42,
                       requests=(RequestSpec("/a", weight=3), RequestSpec("/b")))

    async def draws() -> list[int]:
        eng = _Engine(cfg, None)
        return [eng.choose() for _ in range(50)]
    expected = make_chooser([3.0, 1.0], 42)
    assert asyncio.run(draws()) == [expected() for _ in range(50)]


# ---- records ----------------------------------------------------------------------------

def test_record_req_roundtrip_and_old_dicts() -> None:
    r = Record(seq=1, intended=1.0, started=1.0, latency=0.1, status=200, cls="ok", req=2)
    assert Record.from_dict(r.to_dict()) == r
    old = {"seq": 1, "intended": 1.0, "started": 1.0, "latency": 0.1, "status": 200,
           "cls": "ok", "error": "", "elb_error": None, "pod": "p"}
    assert Record.from_dict(old).req == 0


# ---- responses without a body -----------------------------------------------------------

def _sent(head: bool) -> tuple[Http1Conn, FakeTransport, list[tuple[int, bytes, Any]]]:
    conn = Http1Conn(lambda c: None)
    tr = FakeTransport()
    conn.connection_made(tr)
    done: list[tuple[int, bytes, Any]] = []
    conn.send(b"X / HTTP/1.1\r\n\r\n", lambda c, s, h, b, e: done.append((s, b, e)), head)
    return conn, tr, done


@pytest.mark.parametrize("framing", [b"Content-Length: 1234\r\n", b"Transfer-Encoding: chunked\r\n",
                                     b""])
def test_head_response_ends_at_its_header_block(framing: bytes) -> None:
    conn, tr, done = _sent(head=True)
    conn.data_received(b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n")
    assert done == [(200, b"", None)]
    assert conn.reusable and not tr.closed and not tr.aborted
    # the connection then serves a GET with a body normally
    conn.send(b"GET / HTTP/1.1\r\n\r\n", lambda c, s, h, b, e: done.append((s, b, e)))
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    assert done[1] == (200, b"hi", None)


@pytest.mark.parametrize("status", [204, 304])
def test_204_and_304_with_content_length_have_no_body(status: int) -> None:
    conn, _, done = _sent(head=False)
    conn.data_received(f"HTTP/1.1 {status} X\r\nContent-Length: 42\r\n\r\n".encode())
    assert done == [(status, b"", None)] and conn.reusable


def test_get_response_with_content_length_still_waits_for_the_body() -> None:
    conn, _, done = _sent(head=False)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
    assert done == []
    conn.data_received(b"cd")
    assert done == [(200, b"abcd", None)]


# ---- the benchmark's test server reads request bodies -----------------------------------

def test_test_server_skips_request_bodies_and_answers_head_without_body() -> None:
    proto = _Proto("ok")
    tr = FakeTransport()
    proto.connection_made(tr)
    body = b"a\r\n\r\nb" * 3  # a blank line inside the body must not look like a new request
    req = (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " + str(len(body)).encode()
           + b"\r\n\r\n" + body + b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    for i in range(0, len(req), 5):
        proto.data_received(req[i:i + 5])
    assert tr.written.count(b"HTTP/1.1 200") == 2
    assert tr.written.endswith(b"\r\n\r\n")  # the HEAD answer: headers only


# ---- CLI parsing ------------------------------------------------------------------------

def test_parse_header() -> None:
    assert parse_header("X-A:  b: c ") == ("X-A", "b: c")
    assert parse_header("X-Empty:") == ("X-Empty", "")
    with pytest.raises(ValueError, match="Name: value"):
        parse_header("no colon")


def test_parse_request(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_bytes(b'{"a":1}')
    assert parse_request("3 GET /a?x=1") == RequestSpec("/a?x=1", weight=3.0)
    assert parse_request(f"0.5  POST /b @{tmp_path / 'b.json'}", (("X", "y"),)) == RequestSpec(
        "/b", method="POST", body=b'{"a":1}', weight=0.5, headers=(("X", "y"),))
    for bad, match in [("GET /a", "WEIGHT METHOD PATH"), ("3 GET /a b", "WEIGHT METHOD PATH"),
                       ("x GET /a", "not a number"), ("0 GET /a", "positive"),
                       ("1 GET a", "must start with '/'"),
                       (f"1 POST /a @{tmp_path / 'missing'}", "cannot read")]:
        with pytest.raises(ValueError, match=match):
            parse_request(bad)


def _cfg(**kw: Any) -> AttackConfig:
    return build_config("http://h:1/path?q=1", 10.0, 1.0, 5.0, 8, **kw)


def test_build_config_without_request_options_is_todays_get() -> None:
    cfg = _cfg()
    assert cfg.requests == () and cfg.host is None and cfg.seed == 0
    assert cfg.request_specs() == (RequestSpec("/path?q=1"),)


def test_build_config_single_request(tmp_path: Path) -> None:
    cfg = _cfg(method="PUT", header=["Content-Type: text/plain"], body="h\u00e9", host="svc",
               seed=3)
    assert cfg.requests == (RequestSpec("/path?q=1", method="PUT", body="h\u00e9".encode(),
                                        headers=(("Content-Type", "text/plain"),)),)
    assert cfg.host == "svc" and cfg.seed == 3
    f = tmp_path / "body.bin"
    f.write_bytes(b"\x00\x01")
    assert _cfg(method="POST", body_file=f).requests[0].body == b"\x00\x01"
    assert _cfg(header=["X: 1"]).requests == (RequestSpec("/path?q=1", headers=(("X", "1"),)),)


def test_build_config_mix_shares_headers() -> None:
    cfg = _cfg(request=["3 GET /a", "1 DELETE /b"], header=["Authorization: Bearer t"])
    auth = (("Authorization", "Bearer t"),)
    assert cfg.requests == (RequestSpec("/a", weight=3, headers=auth),
                            RequestSpec("/b", method="DELETE", headers=auth))


@pytest.mark.parametrize(("kw", "match"), [
    ({"request": ["1 GET /a"], "method": "POST"}, "with --request"),
    ({"request": ["1 GET /a"], "body": "x"}, "with --request"),
    ({"body": "x", "body_file": Path("/dev/null")}, "not both"),
    ({"header": ["Host: x"]}, "AttackConfig.host"),
    ({"method": "B AD"}, "not a token"),
])
def test_build_config_refuses_inconsistent_options(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _cfg(**kw)


@pytest.mark.parametrize(("args", "match"), [
    (["--header", "Content-Length: 3"], "computed from the body"),
    (["--request", "GET /a"], "WEIGHT METHOD PATH"),
    (["--host", "a b"], "host"),
])
def test_cli_reports_bad_options_as_usage_errors(args: list[str], match: str) -> None:
    r = CliRunner().invoke(app, ["attack", "--url", "http://127.0.0.1:1/", "--duration", "0.1",
                                 *args])
    assert r.exit_code == 2, r.output
    assert match in " ".join(r.output.replace("│", " ").split())  # unwrap the error box


def test_cli_reports_a_bad_url_as_a_usage_error() -> None:
    r = CliRunner().invoke(app, ["attack", "--url", "https://x/", "--duration", "0.1"])
    assert r.exit_code == 2 and "only http://" in r.output
