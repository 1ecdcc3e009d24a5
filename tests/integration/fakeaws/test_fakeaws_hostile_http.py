"""Hostile HTTP/1.1 against a listener: raw sockets, a real engine, real targets on loopback.

Each case asserts ALB's answer (status and `x-testbed-elb-error`, and the `elb_error` event)
and that neither the client connection nor the keep-alive pool to the target is left
desynchronised: a following request gets its own response.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

pytestmark = pytest.mark.integration

Respond = Callable[[bytes, bytes, socket.socket], bool]


def ok(head: bytes, body: bytes, conn: socket.socket) -> bool:
    """200 whose body is the request path (so a desync shows as someone else's body)."""
    path = head.split(b" ", 2)[1]
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(path), path))
    return True


class RawTarget:
    """A target server on loopback answering each request with `respond(head, body, conn)`
    (False: close the connection). /health is answered 200."""

    host = "127.0.0.1"

    def __init__(self, respond: Respond = ok) -> None:
        self.respond = respond
        self.sock = socket.socket()
        self.sock.bind((self.host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    def close(self) -> None:
        self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        buf = b""
        with c:
            try:
                while True:
                    while b"\r\n\r\n" not in buf:
                        d = c.recv(65536)
                        if not d:
                            return
                        buf += d
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    n = 0
                    for line in head.split(b"\r\n")[1:]:
                        k, _, v = line.partition(b":")
                        if k.strip().lower() == b"content-length":
                            n = int(v)
                    while len(buf) < n:
                        d = c.recv(65536)
                        if not d:
                            return
                        buf += d
                    body, buf = buf[:n], buf[n:]
                    if head.split(b" ", 2)[1] == b"/health":
                        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                  b"Connection: close\r\n\r\nok")
                        return
                    self.requests.append(head + b"\r\n\r\n" + body)
                    if not self.respond(head, body, c):
                        return
            except OSError:
                return


@dataclass
class Resp:
    status: int
    headers: dict[str, str]
    body: bytes


def read_response(f: Any) -> Resp:
    """One response head (+ Content-Length body) from a socket file; 1xx have no body."""
    line = f.readline()
    assert line, "connection closed without a response"
    status = int(line.split(b" ", 2)[1])
    headers: dict[str, str] = {}
    while (h := f.readline()) not in (b"\r\n", b""):
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", 0)) if status >= 200 else 0
    return Resp(status, headers, f.read(n) if n else b"")


class Client:
    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.sock.makefile("rb")

    def send(self, data: bytes) -> Client:
        self.sock.sendall(data)
        return self

    def response(self) -> Resp:
        return read_response(self.f)

    def get(self, path: str) -> Resp:
        return self.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode()).response()

    def closed(self) -> bool:
        self.sock.settimeout(5)
        try:
            return self.f.read(1) == b""
        except OSError:
            return True

    def close(self) -> None:
        self.f.close()
        self.sock.close()


@pytest.fixture()
def raw_alb(make_alb: Any) -> Any:
    made: list[RawTarget] = []

    def make(respond: Respond = ok, **kw: Any) -> tuple[Any, RawTarget]:
        t = RawTarget(respond)
        made.append(t)
        alb = make_alb(**kw)
        alb.elbv2.register_targets(TargetGroupArn=alb.tg_arn,
                                   Targets=[{"Id": t.host, "Port": t.port}])
        alb.wait_state(t, "healthy")
        return alb, t

    yield make
    for t in made:
        t.close()


def elb_errors(fakeaws: Any, seq: int, expect: int = 1) -> list[dict[str, Any]]:
    return list(fakeaws.elb_errors(seq, expect))


def assert_elb(resp: Resp, status: int, reason: str) -> None:
    assert (resp.status, resp.headers.get("x-testbed-elb-error")) == (status, reason), resp


# ---- requests ALB refuses itself: (name, request bytes, status, reason) ---------------------
BIG = b"a" * (70 * 1024)
REFUSED = [
    ("duplicate_content_length",
     b"POST /dup HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"
     b"helloGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
    ("conflicting_content_length",
     b"POST /dup HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 41\r\n\r\n"
     b"hello", 400, "bad_request"),
    ("content_length_with_chunked",
     b"POST /te HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked"
     b"\r\n\r\n0\r\n\r\n", 400, "bad_request"),
    ("bad_chunk_size",
     b"POST /chunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n"
     b"0\r\n\r\n", 400, "bad_request"),
    ("bare_lf", b"GET /lf HTTP/1.1\nHost: x\n\n", 400, "bad_request"),
    ("header_70k", b"GET /big HTTP/1.1\r\nHost: x\r\nX-Big: " + BIG + b"\r\n\r\n",
     400, "header_too_large"),
    ("single_header_17k", b"GET /h HTTP/1.1\r\nHost: x\r\nX-Big: " + BIG[:17 * 1024] +
     b"\r\n\r\n", 400, "header_too_large"),
    ("headers_65k_total", b"GET /h HTTP/1.1\r\nHost: x\r\n" +
     b"".join(b"X-H%d: %s\r\n" % (i, BIG[:8000]) for i in range(9)) + b"\r\n",
     400, "header_too_large"),
    ("request_line_17k", b"GET /" + BIG[:17 * 1024] + b" HTTP/1.1\r\nHost: x\r\n\r\n",
     414, "uri_too_long"),
    ("unsupported_transfer_encoding",
     b"POST /gz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
     501, "unsupported_transfer_encoding"),
]


@pytest.mark.parametrize(("request_bytes", "status", "reason"),
                         [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused_requests(fakeaws: Any, raw_alb: Any, request_bytes: bytes, status: int,
                          reason: str) -> None:
    alb, target = raw_alb()
    seq = fakeaws.last_seq()
    c = Client(alb.port)
    t0 = time.monotonic()
    resp = c.send(request_bytes).response()
    assert_elb(resp, status, reason)
    assert time.monotonic() - t0 < 2  # answered, not left to the idle timeout
    assert resp.headers["connection"] == "close" and c.closed()
    ev = elb_errors(fakeaws, seq)
    assert [(e["status"], e["reason"], e["target"]) for e in ev] == [(status, reason, None)]
    assert ev[0]["listener_port"] == alb.port
    assert target.requests == []  # nothing (smuggled or not) reached the target
    c.close()
    c = Client(alb.port)  # the listener still works
    assert c.get("/after").body == b"/after"
    c.close()


def test_xff_more_than_30_addresses_463(fakeaws: Any, raw_alb: Any) -> None:
    alb, target = raw_alb()
    seq = fakeaws.last_seq()
    c = Client(alb.port)
    xff31 = b", ".join(b"10.0.0.%d" % i for i in range(31))
    resp = c.send(b"GET /xff HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: %s\r\n\r\n" % xff31
                  ).response()
    assert_elb(resp, 463, "xff_too_many")
    ev = elb_errors(fakeaws, seq)
    assert [(e["status"], e["reason"], e["path"]) for e in ev] == [(463, "xff_too_many", "/xff")]
    assert target.requests == []
    # The connection stays usable; 30 addresses are fine (the ALB appends the client's).
    xff30 = b", ".join(b"10.0.0.%d" % i for i in range(30))
    resp = c.send(b"GET /xff30 HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: %s\r\n\r\n" % xff30
                  ).response()
    assert resp.status == 200 and resp.body == b"/xff30"
    assert b"x-forwarded-for: " + xff30 + b", 127.0.0.1" in target.requests[-1]
    c.close()


# ---- 1xx from the target ---------------------------------------------------------------------
def interim(head: bytes, body: bytes, conn: socket.socket) -> bool:
    path = head.split(b" ", 2)[1]
    if b"expect: 100-continue" in head.lower():
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if path == b"/hints":
        conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n")
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(path), path))
    return True


def test_100_continue_is_interim(fakeaws: Any, raw_alb: Any) -> None:
    alb, target = raw_alb(interim)
    seq = fakeaws.last_seq()
    c = Client(alb.port)
    c.send(b"POST /post HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n"
           b"\r\ndata")
    assert c.response().status == 100
    final = c.response()
    assert (final.status, final.body) == (200, b"/post")
    for i in range(3):  # no desync: each later request gets its own answer
        assert c.get(f"/n{i}").body == f"/n{i}".encode()
    assert elb_errors(fakeaws, seq, expect=0) == []
    c.close()


def test_103_early_hints_do_not_leak_through_the_pool(fakeaws: Any, raw_alb: Any) -> None:
    alb, target = raw_alb(interim)
    a = Client(alb.port)
    a.send(b"GET /hints HTTP/1.1\r\nHost: x\r\n\r\n")
    hint = a.response()
    assert hint.status == 103 and hint.headers["link"] == "</s.css>; rel=preload"
    assert a.response().body == b"/hints"
    b = Client(alb.port)  # reuses the pooled target connection
    for i in range(3):
        assert b.get(f"/b{i}").body == f"/b{i}".encode()
        assert a.get(f"/a{i}").body == f"/a{i}".encode()
    a.close()
    b.close()


# ---- a target that sends less body than announced ------------------------------------------
def short_body(head: bytes, body: bytes, conn: socket.socket) -> bool:
    path = head.split(b" ", 2)[1]
    if path.startswith(b"/short"):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        if path == b"/short-hang":
            # stay silent until the ALB gives up on us and closes (its idle timeout), at most 5 s
            conn.settimeout(5)
            with contextlib.suppress(OSError):
                conn.recv(1)
        return False
    if path == b"/big-short":
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n" + b"x" * 100000)
        return False
    return ok(head, body, conn)


@pytest.mark.parametrize(("path", "status", "reason"), [
    ("/short-close", 502, "truncated_response"),
    ("/short-hang", 504, "idle_timeout"),
])
def test_short_body_gets_a_status(fakeaws: Any, raw_alb: Any, path: str, status: int,
                                  reason: str) -> None:
    alb, target = raw_alb(short_body, idle_timeout=1)
    seq = fakeaws.last_seq()
    c = Client(alb.port)
    assert_elb(c.get(path), status, reason)
    ev = elb_errors(fakeaws, seq)
    assert [(e["status"], e["reason"], e["target"]) for e in ev] == [
        (status, reason, target.addr)]
    assert c.get("/next").body == b"/next"  # the client connection goes on
    c.close()


def test_short_body_after_head_forwarded_is_cut(fakeaws: Any, raw_alb: Any) -> None:
    alb, target = raw_alb(short_body)
    seq = fakeaws.last_seq()
    c = Client(alb.port)
    c.send(b"GET /big-short HTTP/1.1\r\nHost: x\r\n\r\n")
    line = c.f.readline()
    assert line.startswith(b"HTTP/1.1 200")
    rest = c.f.read()  # until the ALB closes: the head, then only the part the target sent
    assert b"content-length: 200000" in rest.lower()
    assert len(rest.partition(b"\r\n\r\n")[2]) == 100000
    ev = elb_errors(fakeaws, seq)
    assert ev and ev[-1]["truncated"] is True and ev[-1]["reason"] == "target_closed"
    c.close()
    c = Client(alb.port)
    assert c.get("/after").body == b"/after"
    c.close()


# ---- a client that trickles (idle timeout is inactivity) -----------------------------------
def test_trickling_client_is_served(fakeaws: Any, raw_alb: Any) -> None:
    alb, target = raw_alb(idle_timeout=1)
    c = Client(alb.port)
    req = b"POST /trickle HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabcdef"
    t0 = time.monotonic()
    for i in range(0, len(req), 6):  # ~2.6 s in all, never 1 s without a byte
        c.send(req[i:i + 6])
        if i + 6 < len(req):
            # the gap before the next piece: the ALB must neither answer nor close meanwhile
            readable, _, _ = select.select([c.sock], [], [], 0.25)
            assert not readable, f"the ALB answered or closed after {i + 6} of {len(req)} bytes"
    assert time.monotonic() - t0 > 1.5
    resp = c.response()
    assert (resp.status, resp.body) == (200, b"/trickle")
    assert target.requests[-1].endswith(b"\r\n\r\nabcdef")
    c.close()


@pytest.mark.parametrize("partial", [
    b"GET /stall HTTP/1.1\r\nHost: x\r\n",  # head never finished
    b"POST /stall HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",  # body stops
])
def test_stalled_request_408(fakeaws: Any, raw_alb: Any, partial: bytes) -> None:
    alb, target = raw_alb(idle_timeout=1)
    seq = fakeaws.last_seq()
    c = Client(alb.port)
    t0 = time.monotonic()
    resp = c.send(partial).response()
    assert_elb(resp, 408, "request_timeout")
    assert 0.9 < time.monotonic() - t0 < 2.5
    assert c.closed()
    ev = elb_errors(fakeaws, seq)
    assert [(e["status"], e["reason"], e["path"]) for e in ev] == [
        (408, "request_timeout", "/stall")]
    assert target.requests == []
    c.close()


# ---- WebSocket upgrade ---------------------------------------------------------------------
def websocket(head: bytes, body: bytes, conn: socket.socket) -> bool:
    lower = head.lower()
    if b"upgrade: websocket" not in lower or b"connection: upgrade" not in lower:
        return ok(head, body, conn)
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\nhello")
    while data := conn.recv(65536):  # echo, upper-cased
        conn.sendall(data.upper())
    return False


def test_websocket_upgrade_is_spliced(fakeaws: Any, raw_alb: Any) -> None:
    alb, target = raw_alb(websocket)
    c = Client(alb.port)
    c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: k\r\nSec-WebSocket-Version: 13\r\n\r\nearly")
    resp = c.response()
    assert resp.status == 101 and resp.headers["upgrade"] == "websocket"
    assert resp.headers["connection"].lower() == "upgrade"
    assert c.f.read(5) == b"hello"
    assert c.f.read(5) == b"EARLY"  # bytes sent right after the head reach the target too
    for msg in (b"one", b"two" * 30000):
        c.send(msg)
        assert c.f.read(len(msg)) == msg.upper()
    assert b"upgrade: websocket" in target.requests[0].lower()
    c.close()
    c = Client(alb.port)
    assert c.get("/after").body == b"/after"
    c.close()
