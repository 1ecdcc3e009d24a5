"""Load balancer behaviours beyond routing: the `client_keep_alive.seconds` attribute and
the ALB's own 405 for TRACE. Raw sockets against a real engine and real targets.

AWS sources:
- HTTP client keepalive duration (60-604800 s, default 3600; after it elapses the ALB
  serves one more request and answers it with `Connection: close`):
  https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html#http-client-keep-alive-duration
- HTTP 405 "The client used the TRACE method, which is not supported by Application Load
  Balancers":
  https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-troubleshooting.html#http-405-issues

The session's fake AWS runs with `--min-client-keep-alive 0.5` (conftest.py), so a keep-alive
duration of 1 s is accepted; AWS's minimum is 60 s.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from testbed.fakeaws.api import validation
from testbed.fakeaws.api.errors import AwsError
from tests.integration.fakeaws.test_fakeaws_hostile_http import (
    Client,
    Resp,
    assert_elb,
    elb_errors,
)
from tests.integration.fakeaws.test_fakeaws_hostile_http import (
    raw_alb as raw_alb,  # the fixture, shared
)
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

KEY = "client_keep_alive.seconds"
KEEP_ALIVE = 1.0  # seconds; the test server accepts >= 0.5
# A keep-alive response's request reached the engine before the duration elapsed; it was sent
# after the client's connect returned, which may be a little after the engine's accept.
SLACK = 0.5


def set_keep_alive(alb: Any, value: str) -> None:
    alb.elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=alb.lb_arn, Attributes=[{"Key": KEY, "Value": value}])


def lb_attrs(alb: Any) -> dict[str, str]:
    return {a["Key"]: a["Value"] for a in alb.elbv2.describe_load_balancer_attributes(
        LoadBalancerArn=alb.lb_arn)["Attributes"]}


class TimedClient(Client):
    """A raw client connection that remembers when its connect returned."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.opened = time.monotonic()


def until_close(c: TimedClient, request: bytes, timeout: float = 10.0
                ) -> tuple[list[tuple[float, Resp]], float]:
    """Send `request` on `c` (one at a time, polling) until a response says `connection:
    close` -> ([(seconds since `c` connected when sent, response)], seconds since connect
    when the closing response arrived)."""
    seen: list[tuple[float, Resp]] = []

    def closing() -> bool:
        sent = time.monotonic() - c.opened
        resp = c.send(request).response()
        seen.append((sent, resp))
        return resp.headers.get("connection") == "close"

    wait_until(closing, timeout, what="a response with connection: close", interval=0.05,
               diag=lambda: f"responses: {seen[-3:]}")
    return seen, time.monotonic() - c.opened


# ---- client_keep_alive.seconds -------------------------------------------------------------
def test_keep_alive_duration_closes_after_the_next_response(fakeaws: Any, raw_alb: Any
                                                            ) -> None:
    alb, target = raw_alb()
    c = TimedClient(alb.port)
    # Default 3600 s: an ordinary keep-alive connection.
    first = c.get("/before")
    assert first.status == 200 and first.headers["connection"] == "keep-alive"
    # The change reaches connections already open (their age counts from their accept).
    set_keep_alive(alb, f"{KEEP_ALIVE:g}")
    seen, closed_at = until_close(c, b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
    *kept, (_, last) = seen
    assert last.status == 200 and last.body == b"/poll"  # the request is still served
    assert closed_at >= KEEP_ALIVE
    assert kept, "requests before the duration keep the connection"
    assert all(r.status == 200 and r.headers["connection"] == "keep-alive" for _, r in kept)
    assert all(sent < KEEP_ALIVE + SLACK for sent, _ in kept)
    assert c.closed()  # ... and the ALB closes it after that response
    c.close()
    # Every request reached the target, the closing one included; a new connection works.
    assert len(target.requests) == 1 + len(seen)
    c = TimedClient(alb.port)
    resp = c.get("/fresh")
    assert (resp.status, resp.body, resp.headers["connection"]) == (200, b"/fresh",
                                                                     "keep-alive")
    c.close()


def test_keep_alive_duration_also_closes_after_alb_made_answers(fakeaws: Any, raw_alb: Any
                                                                ) -> None:
    alb, target = raw_alb()
    set_keep_alive(alb, f"{KEEP_ALIVE:g}")
    seq = fakeaws.last_seq()
    c = TimedClient(alb.port)
    seen, closed_at = until_close(c, b"TRACE /t HTTP/1.1\r\nHost: x\r\n\r\n")
    assert closed_at >= KEEP_ALIVE
    assert all(r.status == 405 for _, r in seen)
    assert [r.headers["connection"] for _, r in seen[:-1]] == ["keep-alive"] * (len(seen) - 1)
    assert c.closed()
    c.close()
    assert target.requests == []
    assert len(elb_errors(fakeaws, seq, expect=len(seen))) == len(seen)


def test_keep_alive_attribute_is_validated_and_described(fakeaws: Any, raw_alb: Any) -> None:
    alb, _ = raw_alb()
    set_keep_alive(alb, "604800")  # the AWS maximum
    assert lb_attrs(alb)[KEY] == "604800"
    set_keep_alive(alb, "60")
    assert lb_attrs(alb)[KEY] == "60"
    # Above the maximum, below the server's minimum (0.5 here; AWS 60), not a number.
    for bad in ("604801", "0.25", "0", "-1", "abc", "nan", "inf", ""):
        with pytest.raises(ClientError) as err:
            set_keep_alive(alb, bad)
        e = err.value.response
        assert (e["ResponseMetadata"]["HTTPStatusCode"], e["Error"]["Code"]) == (
            400, "ValidationError"), bad
        assert lb_attrs(alb)[KEY] == "60", bad  # refused before moto: nothing changed
    c = TimedClient(alb.port)
    assert c.get("/ok").headers["connection"] == "keep-alive"  # 60 s: not expired
    c.close()


@pytest.mark.parametrize("value", ["59", "0.5", "60.5", "604801", "abc", "1e3"])
def test_keep_alive_outside_aws_range_refused_at_aws_minimum(value: str) -> None:
    # The server's default (--min-client-keep-alive 60): AWS's integer range 60-604800.
    form = {"Attributes.member.1.Key": KEY, "Attributes.member.1.Value": value}
    with pytest.raises(AwsError) as err:
        validation.lb_attributes(form)
    assert err.value.code == "ValidationError"


@pytest.mark.parametrize("value", ["60", "3600", "604800"])
def test_keep_alive_aws_range_accepted(value: str) -> None:
    form = {"Attributes.member.1.Key": KEY, "Attributes.member.1.Value": value}
    assert validation.lb_attributes(form) == {KEY: value}


# ---- TRACE -----------------------------------------------------------------------------------
def test_trace_is_answered_405_by_the_alb(fakeaws: Any, raw_alb: Any) -> None:
    alb, target = raw_alb()
    seq = fakeaws.last_seq()
    c = TimedClient(alb.port)
    resp = c.send(b"TRACE /trace HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc").response()
    assert_elb(resp, 405, "method_not_allowed")
    assert resp.headers["connection"] == "keep-alive"
    ev = elb_errors(fakeaws, seq)
    assert [(e["status"], e["reason"], e["path"], e["target"], e["tg_arn"], e["listener_port"])
            for e in ev] == [(405, "method_not_allowed", "/trace", None, None, alb.port)]
    assert target.requests == []  # nothing reached the target
    # The connection stays usable (the body was consumed, nothing left over).
    resp = c.get("/after")
    assert (resp.status, resp.body) == (200, b"/after")
    assert len(target.requests) == 1 and target.requests[0].startswith(b"GET /after ")
    c.close()


def test_trace_with_connection_close_closes(fakeaws: Any, raw_alb: Any) -> None:
    alb, target = raw_alb()
    c = TimedClient(alb.port)
    resp = c.send(b"TRACE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").response()
    assert_elb(resp, 405, "method_not_allowed")
    assert resp.headers["connection"] == "close" and c.closed()
    c.close()
    assert target.requests == []
