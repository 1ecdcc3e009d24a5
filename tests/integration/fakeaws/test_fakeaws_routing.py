"""Routing through the real engine on loopback: forward weights (0 = no traffic), listener
changes on open keep-alive connections, target group stickiness (lb_cookie, app_cookie) and
slow start for targets already healthy."""

from __future__ import annotations

import http.client
import http.server
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.fakeaws.conftest import API_POLL, Alb
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def _group(alb: Alb, name: str, **attrs: str) -> str:
    """A second target group in the ALB's VPC, with the same fast health checks."""
    arn: str = alb.elbv2.create_target_group(
        Name=name, Protocol="HTTP", Port=80, VpcId=alb.vpc_id, TargetType="ip",
        HealthCheckPath="/health", HealthCheckIntervalSeconds=0.2,
        HealthCheckTimeoutSeconds=0.15, HealthyThresholdCount=2, UnhealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    alb.elbv2.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "0"}] + [
        {"Key": k.replace("__", "."), "Value": v} for k, v in attrs.items()])
    return arn


def _forward(alb: Alb, *weighted: tuple[str, int]) -> None:
    assert alb.listener_arn is not None
    alb.elbv2.modify_listener(ListenerArn=alb.listener_arn, DefaultActions=[{
        "Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": arn, "Weight": w} for arn, w in weighted]}}])


def _healthy_in(alb: Alb, tg_arn: str, addr: str) -> None:
    def ok() -> bool:
        for d in alb.elbv2.describe_target_health(
                TargetGroupArn=tg_arn)["TargetHealthDescriptions"]:
            if f"{d['Target']['Id']}:{d['Target']['Port']}" == addr:
                return bool(d["TargetHealth"]["State"] == "healthy")
        return False
    wait_until(ok, 10, what=f"{addr} healthy in {tg_arn}", interval=API_POLL)


def _register(alb: Alb, tg_arn: str, addr: str) -> None:
    host, port = addr.rsplit(":", 1)
    alb.elbv2.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": host, "Port": int(port)}])


class Resp:
    def __init__(self, r: http.client.HTTPResponse) -> None:
        self.status = r.status
        self.body = r.read()
        self.headers = r.getheaders()

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    def set_cookies(self) -> dict[str, str]:
        """name -> the whole Set-Cookie value."""
        out = {}
        for k, v in self.headers:
            if k.lower() == "set-cookie":
                out[v.split("=", 1)[0]] = v
        return out

    def cookie(self, name: str) -> str | None:
        v = self.set_cookies().get(name)
        return v.split("=", 1)[1].split(";", 1)[0] if v else None


def _get(port: int, path: str = "/", cookies: dict[str, str] | None = None,
         conn: http.client.HTTPConnection | None = None) -> Resp:
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}
    try:
        c.request("GET", path, headers=headers)
        return Resp(c.getresponse())
    finally:
        if conn is None:
            c.close()


def _who(r: Resp) -> str:
    assert r.status == 200, (r.status, r.header("x-testbed-elb-error"))
    return r.body.decode().split()[-1]  # targets answer "ok <port>"


def _wait_moved(send: Callable[[], Resp], to: str) -> Resp:
    """Send until a response comes from target port `to` (the move is on the next sync)."""
    def moved() -> Resp | None:
        r = send()
        return r if _who(r) == to else None
    r = wait_until(moved, 10, what=f"requests moved to the target on port {to}")
    assert r is not None
    return r


# ---- weights ---------------------------------------------------------------------------------
def _two_groups(make_alb: Any, name: str, a: Any, b: Any, weight_a: int, weight_b: int
                ) -> tuple[Any, str]:
    """A listener forwarding to its own group (target a) and a second one (target b) with
    these weights, both targets healthy -> (alb, the second group's ARN)."""
    alb = make_alb()
    tg_b = _group(alb, name)
    _forward(alb, (alb.tg_arn, weight_a), (tg_b, weight_b))
    alb.register(a)
    _register(alb, tg_b, b.addr)
    alb.wait_state(a, "healthy")
    _healthy_in(alb, tg_b, b.addr)
    return alb, tg_b


def test_weight_zero_gets_no_requests(fakeaws, make_alb, targets) -> None:
    a, b = targets(), targets()
    # tg_b in use (weight 0 still counts), healthy, yet no traffic
    alb, tg_b = _two_groups(make_alb, "routing-w0", a, b, 1, 0)
    conn = http.client.HTTPConnection("127.0.0.1", alb.port, timeout=10)
    seen = Counter(_who(_get(alb.port, "/w", conn=conn)) for _ in range(200))
    conn.close()
    assert seen == {str(a.port): 200}
    assert not [r for r in b.requests if r.path == "/w"]


def test_all_weights_zero_answer_503(fakeaws, make_alb, targets) -> None:
    """Both groups have a healthy target, yet no request reaches either. (Before, weight 0
    was replaced by 0.0001, so with every weight 0 all requests went to 0-weight groups.)"""
    a, b = targets(), targets()
    alb, tg_b = _two_groups(make_alb, "routing-all0", a, b, 0, 0)
    seq = fakeaws.last_seq()
    for _ in range(10):
        r = _get(alb.port, "/zero")
        assert (r.status, r.header("x-testbed-elb-error")) == (503, "all_weights_zero")
    ev = fakeaws.elb_errors(seq, expect=10)
    assert len(ev) == 10 and ev[-1]["reason"] == "all_weights_zero" and ev[-1]["status"] == 503
    assert ev[-1]["listener_port"] == alb.port and ev[-1]["tg_arn"] is None
    assert not [r for s in (a, b) for r in s.requests if r.path == "/zero"]


# ---- listener changes ------------------------------------------------------------------------

def test_modify_listener_applies_to_next_request_on_an_open_connection(
        fakeaws, make_alb, targets) -> None:
    """Before: the connection kept the listener config it had when it started waiting for
    its next request, so its first request after ModifyListener went to the old group."""
    a, b = targets(), targets()
    # tg_b in use (checked) but without traffic
    alb, tg_b = _two_groups(make_alb, "routing-mod", a, b, 1, 0)
    conn = http.client.HTTPConnection("127.0.0.1", alb.port, timeout=10)
    assert _who(_get(alb.port, "/before", conn=conn)) == str(a.port)
    sock = conn.sock
    assert sock is not None  # kept alive; idle now, waiting for its next request
    _forward(alb, (alb.tg_arn, 0), (tg_b, 1))
    assert _who(_get(alb.port, "/after", conn=conn)) == str(b.port)
    assert conn.sock is sock  # the same client connection (http.client did not reconnect)
    assert not [s for s in a.requests if s.path == "/after"]
    conn.close()


# ---- stickiness ------------------------------------------------------------------------------

def test_lb_cookie_round_trip(fakeaws, make_alb, targets) -> None:
    a, b = targets(), targets()
    alb = make_alb()
    alb.set_attrs(stickiness__enabled="true", stickiness__type="lb_cookie",
                  stickiness__lb_cookie__duration_seconds="120")
    alb.register(a, b)
    alb.wait_state(a, "healthy")
    alb.wait_state(b, "healthy")
    first = _get(alb.port, "/s")
    cookie = first.cookie("AWSALB")
    assert cookie and first.cookie("AWSALBCORS") == cookie
    sc = first.set_cookies()
    assert "Expires=" in sc["AWSALB"] and "Path=/" in sc["AWSALB"]
    assert "SameSite=None" in sc["AWSALBCORS"] and "Secure" in sc["AWSALBCORS"]
    stuck = _who(first)
    assert {_who(_get(alb.port, "/s", {"AWSALB": cookie})) for _ in range(20)} == {stuck}
    # Without the cookie round robin spreads the requests again.
    assert len({_who(_get(alb.port, "/n")) for _ in range(4)}) == 2
    # A tampered cookie is ignored (new pick, new cookie), never an error.
    assert _get(alb.port, "/t", {"AWSALB": cookie[:-3] + "xyz"}).cookie("AWSALB")
    gone, other = (a, b) if stuck == str(a.port) else (b, a)
    alb.deregister(gone)
    r = _wait_moved(lambda: _get(alb.port, "/s", {"AWSALB": cookie}), str(other.port))
    new_cookie = r.cookie("AWSALB")
    assert new_cookie and new_cookie != cookie
    assert {_who(_get(alb.port, "/s", {"AWSALB": new_cookie})) for _ in range(5)} == {
        str(other.port)}


class _AppHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = f"ok {self.connection.getsockname()[1]}".encode()
        self.send_response(200)
        if self.path == "/login":
            self.send_header("Set-Cookie", "session=s1; Path=/; HttpOnly")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def app_servers() -> Iterator[Callable[[], http.server.ThreadingHTTPServer]]:
    made: list[http.server.ThreadingHTTPServer] = []

    def make() -> http.server.ThreadingHTTPServer:
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AppHandler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        made.append(srv)
        return srv

    yield make
    for s in made:
        s.shutdown()
        s.server_close()


def test_app_cookie(fakeaws, make_alb, app_servers) -> None:
    a, b = app_servers(), app_servers()
    addrs = {str(s.server_address[1]): f"127.0.0.1:{s.server_address[1]}" for s in (a, b)}
    alb = make_alb()
    alb.set_attrs(stickiness__enabled="true", stickiness__type="app_cookie",
                  stickiness__app_cookie__cookie_name="session",
                  stickiness__app_cookie__duration_seconds="120")
    for addr in addrs.values():
        _register(alb, alb.tg_arn, addr)
    for addr in addrs.values():
        _healthy_in(alb, alb.tg_arn, addr)
    # No application cookie in the response: no ALB cookie either.
    plain = _get(alb.port, "/plain")
    assert plain.status == 200 and not plain.set_cookies()
    login = _get(alb.port, "/login")
    app = login.cookie("AWSALBAPP-0")
    assert app and login.cookie("session") == "s1"
    assert "Expires=" in login.set_cookies()["AWSALBAPP-0"]
    stuck = _who(login)
    jar = {"session": "s1", "AWSALBAPP-0": app}
    assert {_who(_get(alb.port, "/x", jar)) for _ in range(20)} == {stuck}
    # AWS: clients send back both cookies; the ALB cookie alone does not stick.
    assert len({_who(_get(alb.port, "/x", {"AWSALBAPP-0": app})) for _ in range(6)}) == 2
    # The stuck target goes away: a new one is picked and the session is stuck to it.
    other = next(p for p in addrs if p != stuck)
    host, port = addrs[stuck].split(":")
    alb.elbv2.deregister_targets(TargetGroupArn=alb.tg_arn,
                                 Targets=[{"Id": host, "Port": int(port)}])
    r = _wait_moved(lambda: _get(alb.port, "/x", jar), other)
    assert r.cookie("AWSALBAPP-0") and r.cookie("AWSALBAPP-0") != app


# ---- slow start ------------------------------------------------------------------------------

def test_slow_start_not_applied_to_already_healthy_targets(fakeaws, make_alb, targets) -> None:
    """a and b are healthy when slow start (30 s) is enabled: they keep full weight; c,
    healthy afterwards, ramps from 0 (a second or two into 30 s: a few percent). Before, every
    target healthy for less than 30 s ramped, so all three (all ramping) took equal turns."""
    a, b, c = targets(), targets(), targets()
    alb = make_alb()
    alb.register(a, b)
    alb.wait_state(a, "healthy")
    alb.wait_state(b, "healthy")
    alb.set_attrs(slow_start__duration_seconds="30")
    conn = http.client.HTTPConnection("127.0.0.1", alb.port, timeout=10)
    before = Counter(_who(_get(alb.port, "/p", conn=conn)) for _ in range(40))
    assert before == {str(a.port): 20, str(b.port): 20}  # round robin, no ramp
    alb.register(c)
    alb.wait_state(c, "healthy")
    after = Counter(_who(_get(alb.port, "/q", conn=conn)) for _ in range(300))
    conn.close()
    assert after[str(c.port)] < 45, after  # equal turns would be ~100
    assert min(after[str(a.port)], after[str(b.port)]) > 100, after


def test_group_stickiness_of_a_weighted_forward(fakeaws, make_alb, targets) -> None:
    a, b = targets(), targets()
    alb = make_alb()
    tg_b = _group(alb, "routing-tgs")
    assert alb.listener_arn is not None
    alb.elbv2.modify_listener(ListenerArn=alb.listener_arn, DefaultActions=[{
        "Type": "forward", "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": alb.tg_arn, "Weight": 1},
                             {"TargetGroupArn": tg_b, "Weight": 1}],
            "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 60}}}])
    alb.register(a)
    _register(alb, tg_b, b.addr)
    alb.wait_state(a, "healthy")
    _healthy_in(alb, tg_b, b.addr)
    first = _get(alb.port, "/g")
    tg_cookie = first.cookie("AWSALBTG")
    assert tg_cookie and first.cookie("AWSALBTGCORS") == tg_cookie
    stuck = _who(first)
    assert {_who(_get(alb.port, "/g", {"AWSALBTG": tg_cookie})) for _ in range(20)} == {stuck}
    assert len({_who(_get(alb.port, "/n")) for _ in range(40)}) == 2  # weights 1:1 without
