"""Response parsing, error classification and vegeta-style summaries, without sockets."""

from __future__ import annotations

import errno
from typing import Any

import pytest

from testbed.loadgen.http1 import Http1Conn
from testbed.loadgen.records import (
    BadResponseError,
    ConnectionClosedError,
    Record,
    classify_exception,
    pod_from_body,
    status_class,
)
from testbed.loadgen.summary import format_vegeta, percentile, summarize
from testbed.loadgen.testing import FakeTransport


def _conn() -> tuple[Http1Conn, FakeTransport, list[tuple[int, dict[str, str], bytes, Any]]]:
    lost: list[Http1Conn] = []
    conn = Http1Conn(lost.append)
    tr = FakeTransport()
    conn.connection_made(tr)
    done: list[tuple[int, dict[str, str], bytes, Any]] = []
    conn.send(b"GET / HTTP/1.1\r\n\r\n", lambda c, s, h, b, e: done.append((s, h, b, e)))
    return conn, tr, done


def _feed(conn: Http1Conn, data: bytes, step: int) -> None:
    for i in range(0, len(data), step):
        conn.data_received(data[i:i + step])


@pytest.mark.parametrize("step", [1, 3, 1000])
def test_content_length_response_in_pieces(step: int) -> None:
    conn, tr, done = _conn()
    _feed(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n"
                b"X-Testbed-Elb-Error: no_targets\r\n\r\n{\"pod\":\"a\"}", step)
    assert done == [(200, {"content-length": "11", "x-testbed-elb-error": "no_targets"},
                     b'{"pod":"a"}', None)]
    assert conn.reusable and tr.written.startswith(b"GET /")


@pytest.mark.parametrize("step", [1, 5, 1000])
def test_chunked_response(step: int) -> None:
    conn, _, done = _conn()
    _feed(conn, b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"4\r\nabcd\r\n3;x=1\r\nefg\r\n0\r\n\r\n", step)
    assert done[0][0] == 502 and done[0][2] == b"abcdefg" and done[0][3] is None
    assert conn.reusable


def test_chunked_with_trailer() -> None:
    conn, _, done = _conn()
    conn.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n")
    assert done[0][2] == b"hi"


def test_body_until_eof_and_connection_close() -> None:
    conn, tr, done = _conn()
    conn.data_received(b"HTTP/1.0 200 OK\r\n\r\nhello ")
    conn.data_received(b"world")
    assert not done
    conn.connection_lost(None)
    assert done[0][0] == 200 and done[0][2] == b"hello world"


def test_connection_close_header_makes_it_not_reusable() -> None:
    conn, tr, done = _conn()
    conn.data_received(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert done[0][0] == 200 and not conn.reusable and tr.closed


def test_informational_response_is_skipped() -> None:
    conn, _, done = _conn()
    conn.data_received(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    assert done[0][0] == 204


def test_bad_status_line() -> None:
    conn, tr, done = _conn()
    conn.data_received(b"SSH-2.0-OpenSSH\r\n\r\n")
    assert isinstance(done[0][3], BadResponseError) and tr.aborted


def test_peer_close_before_response_is_conn_closed() -> None:
    conn, _, done = _conn()
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Le")
    conn.connection_lost(None)
    assert done[0][0] == 0 and classify_exception(done[0][3]) == "conn_closed"


def test_reset_during_request() -> None:
    conn, _, done = _conn()
    conn.connection_lost(ConnectionResetError(errno.ECONNRESET, "reset"))
    assert classify_exception(done[0][3]) == "conn_reset"


def test_timeout_fails_the_request_once() -> None:
    conn, tr, done = _conn()
    conn.fail(TimeoutError("late"))
    conn.connection_lost(None)
    assert len(done) == 1 and classify_exception(done[0][3]) == "timeout" and tr.aborted


@pytest.mark.parametrize(("exc", "cls"), [
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "conn_refused"),
    (OSError(errno.ECONNREFUSED, "multiple"), "conn_refused"),
    (ConnectionResetError(errno.ECONNRESET, "reset"), "conn_reset"),
    (BrokenPipeError(errno.EPIPE, "pipe"), "conn_reset"),
    (TimeoutError(), "timeout"),
    (OSError(errno.ETIMEDOUT, "timed out"), "timeout"),
    (ConnectionClosedError("x"), "conn_closed"),
    (BadResponseError("x"), "bad_response"),
    (OSError(errno.EHOSTUNREACH, "unreachable"), "conn_error"),
])
def test_classify(exc: BaseException, cls: str) -> None:
    assert classify_exception(exc) == cls


def test_status_class_follows_vegeta() -> None:
    assert [status_class(s) for s in (200, 302, 399, 400, 502)] == ["ok", "ok", "ok", "400",
                                                                    "502"]


def test_pod_from_body() -> None:
    assert pod_from_body(b'{"pod": "p1", "version": "v1"}') == "p1"
    assert pod_from_body(b"not json") is None
    assert pod_from_body(b"{broken") is None
    assert pod_from_body(b'{"pod": 3}') is None
    assert pod_from_body(b"{" + b" " * 600 + b"}") is None


def _rec(i: int, cls: str = "ok", status: int = 200, lat: float = 0.01, **kw: Any) -> Record:
    return Record(seq=i, intended=1000.0 + i * 0.01, started=1000.0 + i * 0.01, latency=lat,
                  status=status, cls=cls, **kw)


def test_percentile_nearest_rank() -> None:
    v = [float(x) for x in range(1, 101)]
    assert (percentile(v, 50), percentile(v, 99), percentile(v, 100)) == (50.0, 99.0, 100.0)
    assert percentile([], 50) == 0.0


def test_summary_counts_and_durations() -> None:
    recs = [_rec(i, pod="a") for i in range(100)]
    recs[10] = _rec(10, "502", 502, elb_error="target_refused")
    recs[20] = _rec(20, "conn_refused", 0, error="ConnectionRefusedError: x")
    s = summarize(recs)
    assert s.requests == 100 and s.errors == 2 and s.success_ratio == 0.98
    assert s.status_codes == {"0": 1, "200": 98, "502": 1}
    assert s.classes["502"] == 1 and s.classes["conn_refused"] == 1
    assert s.elb_errors == {"target_refused": 1} and s.pods == {"a": 98}
    assert s.duration_attack == pytest.approx(0.99)
    assert s.duration_wait == pytest.approx(0.01)
    assert s.rate == pytest.approx(100.0)
    assert s.first_error == pytest.approx(1000.1) and s.last_error == pytest.approx(1000.2)
    assert "ConnectionRefusedError: x" in s.error_set and "502 target_refused" in s.error_set
    text = format_vegeta(s)
    for row in ("Requests      [total, rate, throughput]", "Duration      [total, attack, wait]",
                "Latencies     [min, mean, 50, 90, 95, 99, max]", "Success       [ratio]",
                "Status Codes  [code:count]", "Error Set:"):
        assert row in text
    assert "98.00%" in text and "0:1  200:98  502:1" in text


def test_empty_summary() -> None:
    s = summarize([])
    assert s.requests == 0 and s.errors == 0
    format_vegeta(s)


def test_record_roundtrip() -> None:
    r = _rec(1, "502", 502, elb_error="x")
    assert Record.from_dict(r.to_dict()) == r


def test_send_on_connection_lost_before_send_fails_at_once() -> None:
    conn = Http1Conn(lambda c: None)
    conn.connection_made(FakeTransport())
    conn.connection_lost(ConnectionResetError(errno.ECONNRESET, "reset"))
    done: list[Any] = []
    conn.send(b"GET / HTTP/1.1\r\n\r\n", lambda c, s, h, b, e: done.append(e))
    assert len(done) == 1 and classify_exception(done[0]) == "conn_reset"
