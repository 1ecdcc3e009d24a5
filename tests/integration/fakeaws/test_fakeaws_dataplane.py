"""ALB data plane: each generated error from its real cause, draining, propagation delay."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import botocore.exceptions
import pytest

from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def _elb_errors(fakeaws, since):
    return fakeaws.elb_errors(since)


def _expect(fakeaws, http_get, url, status, reason, target=None):
    seq = fakeaws.last_seq()
    code, headers, _ = http_get(url)
    assert (code, headers.get("x-testbed-elb-error")) == (status, reason)
    ev = _elb_errors(fakeaws, seq)
    assert ev and ev[-1]["status"] == status and ev[-1]["reason"] == reason, ev
    assert ev[-1]["path"] == url.split(str(ev[-1]["listener_port"]), 1)[1]
    if target is not None:
        assert ev[-1]["target"] == target
    return ev[-1]


def test_503_no_targets_and_all_initial(fakeaws, make_alb, targets, http_get):
    alb = make_alb(unhealthy=10)
    _expect(fakeaws, http_get, alb.url + "/none", 503, "no_targets")
    srv = targets(health_status=500)  # stays initial: 10 failures needed for unhealthy
    alb.register(srv)
    alb.wait_state(srv, "initial", "Elb.InitialHealthChecking")
    _expect(fakeaws, http_get, alb.url + "/initial", 503, "no_targets")
    assert srv.requests == []


def test_502_refused_via_fail_open(fakeaws, make_alb, http_get, free_port):
    """Nothing listens: checks fail, the only target is unhealthy, fail-open still routes to
    it, and the connect is refused -> 502."""
    alb = make_alb()
    port = free_port()
    alb.elbv2.register_targets(TargetGroupArn=alb.tg_arn, Targets=[
        {"Id": "127.0.0.1", "Port": port}])
    wait_until(lambda: alb.health()[f"127.0.0.1:{port}"] ==
               ("unhealthy", "Target.FailedHealthChecks"), 10, what="unhealthy", interval=0.05)
    routing = [e for e in fakeaws.events(kind="routing") if e["tg_arn"] == alb.tg_arn]
    assert routing[-1]["fail_open"] is True
    _expect(fakeaws, http_get, alb.url + "/r", 502, "target_refused", f"127.0.0.1:{port}")


@pytest.mark.single_node  # the pooled connection is one worker's (one ALB node's)
def test_502_closed_reset_and_keepalive_race(fakeaws, make_alb, targets, http_get):
    srv = targets()
    alb = make_alb()
    alb.register(srv)
    alb.wait_state(srv, "healthy")
    _expect(fakeaws, http_get, alb.url + "/close", 502, "target_closed", srv.addr)
    _expect(fakeaws, http_get, alb.url + "/reset", 502, "target_reset", srv.addr)
    # The target answers with keep-alive, the ALB pools the connection, then the target
    # closes it just as the next request arrives on it.
    assert http_get(alb.url + "/race")[0] == 200
    _expect(fakeaws, http_get, alb.url + "/next", 502, "keepalive_race", srv.addr)
    assert http_get(alb.url + "/after")[0] == 200  # a fresh connection works again


def test_504_idle_timeout(fakeaws, make_alb, targets, http_get):
    srv = targets()
    alb = make_alb(idle_timeout=1)
    alb.register(srv)
    alb.wait_state(srv, "healthy")
    t0 = time.monotonic()
    _expect(fakeaws, http_get, alb.url + "/slow?s=3", 504, "idle_timeout", srv.addr)
    assert 0.9 < time.monotonic() - t0 < 2.5


def test_504_connect_timeout(fakeaws, make_alb, http_get):
    """A listener whose accept queue is full drops SYNs: the connect never completes."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    try:
        alb = make_alb()
        alb.elbv2.register_targets(TargetGroupArn=alb.tg_arn, Targets=[
            {"Id": "127.0.0.1", "Port": port}])
        wait_until(lambda: alb.health()[f"127.0.0.1:{port}"][0] == "unhealthy", 10,
                   what="unhealthy", interval=0.05)
        _expect(fakeaws, http_get, alb.url + "/c", 504, "connect_timeout", f"127.0.0.1:{port}")
    finally:
        for c in fillers:
            c.close()
        lsock.close()


def test_draining_finishes_in_flight_and_takes_no_new(fakeaws, make_alb, targets, http_get):
    a, b = targets(), targets()
    alb = make_alb(dereg_delay=5)
    alb.register(a, b)
    alb.wait_state(a, "healthy")
    alb.wait_state(b, "healthy")
    result = {}
    th = threading.Thread(target=lambda: result.update(r=http_get(alb.url + "/slow?s=1.5")))
    th.start()
    busy = wait_until(lambda: next((s for s in (a, b) if s.in_flight), None), 5,
                      what="slow request in flight")
    other = b if busy is a else a
    n_busy = len(busy.requests)
    alb.deregister(busy)
    for _ in range(10):
        assert http_get(alb.url + "/new")[0] == 200
    th.join(5)
    assert result["r"][0] == 200  # the in-flight request finished normally
    assert len(busy.requests) == n_busy  # no new request reached the draining target
    assert sum(r.path == "/new" for r in other.requests) == 10
    assert alb.state_of(busy) == ("draining", "Target.DeregistrationInProgress")


def test_502_when_drain_expires_mid_request(fakeaws, make_alb, targets, http_get):
    srv = targets()
    alb = make_alb(dereg_delay=1)
    alb.register(srv)
    alb.wait_state(srv, "healthy")
    result = {}
    seq = fakeaws.last_seq()
    th = threading.Thread(target=lambda: result.update(r=http_get(alb.url + "/slow?s=5")))
    th.start()
    wait_until(lambda: srv.in_flight, 5, what="in flight")
    t0 = time.monotonic()
    alb.deregister(srv)
    th.join(6)
    assert result["r"][0] == 502
    assert result["r"][1]["x-testbed-elb-error"] == "drain_expired"
    assert 0.8 < time.monotonic() - t0 < 3
    ev = _elb_errors(fakeaws, seq)
    assert ev[-1]["reason"] == "drain_expired" and ev[-1]["target"] == srv.addr


def test_deregister_propagation_delay(fakeaws, make_alb, targets, http_get):
    """With deregister propagation D, a deregistered target keeps getting requests ~D."""
    d = 1.0
    fakeaws.post("/_testbed/config", {"deregister_delay": d})
    a, b = targets(), targets()
    alb = make_alb(dereg_delay=5)
    alb.register(a, b)
    alb.wait_state(a, "healthy")
    alb.wait_state(b, "healthy")
    seq = fakeaws.last_seq()
    t_client = time.time()
    alb.deregister(a)
    while time.time() < t_client + d + 0.6:
        assert http_get(alb.url + "/p")[0] == 200
    # Times relative to when the engine took the deregistration (same host clock).
    t_dereg = fakeaws.events(seq, kind="deregistered")[0]["ts"]
    late = [r.ts - t_dereg for r in a.requests if r.path == "/p"]
    assert late and max(late) > d - 0.3, late  # still routed for about D
    assert max(late) < d + 0.1, late  # and not after
    routing = [e for e in fakeaws.events(seq, kind="routing") if e["tg_arn"] == alb.tg_arn]
    assert routing[-1]["targets"] == [b.addr]
    assert abs(routing[-1]["ts"] - t_dereg - d) < 0.1


@pytest.mark.single_node  # round-robin turns are per ALB node (per data-plane worker)
def test_forwarded_headers_round_robin_and_fail_open(fakeaws, make_alb, targets, http_get):
    a, b = targets(), targets()
    alb = make_alb()
    alb.register(a, b)
    alb.wait_state(a, "healthy")
    alb.wait_state(b, "healthy")
    for _ in range(6):
        assert http_get(alb.url + "/h")[0] == 200
    assert len(a.requests) == len(b.requests) == 3
    h = a.requests[0].headers
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-forwarded-proto"] == "http" and h["x-forwarded-port"] == str(alb.port)
    a.health_status = b.health_status = 500
    alb.wait_state(a, "unhealthy", "Target.ResponseCodeMismatch")
    alb.wait_state(b, "unhealthy", "Target.ResponseCodeMismatch")
    assert http_get(alb.url + "/open")[0] == 200  # fail-open


@pytest.mark.single_node  # counts are per ALB node (per data-plane worker)
def test_least_outstanding_requests_via_attribute(fakeaws, make_alb, targets, http_get):
    a, b = targets(), targets()
    alb = make_alb()
    alb.set_attrs(load_balancing__algorithm__type="least_outstanding_requests")
    alb.register(a, b)
    alb.wait_state(a, "healthy")
    alb.wait_state(b, "healthy")
    th = threading.Thread(target=lambda: http_get(alb.url + "/slow?s=1"))
    th.start()
    busy = wait_until(lambda: next((s for s in (a, b) if s.in_flight), None), 5,
                      what="slow request in flight")
    idle = b if busy is a else a
    for _ in range(5):
        assert http_get(alb.url + "/lor")[0] == 200
    th.join(5)
    assert sum(r.path == "/lor" for r in idle.requests) == 5


def test_weighted_random_spreads_in_random_order(make_alb, targets, http_get):
    """weighted_random without anomaly mitigation: every target equally likely, in random
    order (round robin would alternate strictly)."""
    a, b = targets(), targets()
    alb = make_alb()
    alb.set_attrs(load_balancing__algorithm__type="weighted_random",
                  load_balancing__algorithm__anomaly_mitigation="off")
    alb.register(a, b)
    alb.wait_state(a, "healthy")
    alb.wait_state(b, "healthy")
    for _ in range(60):
        assert http_get(alb.url + "/wr")[0] == 200
    order = sorted((r.ts, s.port) for s in (a, b) for r in s.requests if r.path == "/wr")
    ports = [p for _, p in order]
    assert 10 <= ports.count(a.port) <= 50  # P(outside) ~ 1e-7 for a fair coin
    # 60 draws without two equal neighbours: probability 2**-59 for a fair coin.
    assert any(x == y for x, y in zip(ports, ports[1:], strict=False))


# ---- listener ports: one address for every load balancer ----------------------------------
def _listener_error(call: Any) -> tuple[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        call()
    err = ei.value.response["Error"]
    return err["Code"], err["Message"]


def test_listener_port_of_another_load_balancer_is_refused(fakeaws, make_alb, targets,
                                                           http_get):
    srv = targets()
    first = make_alb()
    first.register(srv)
    first.wait_state(srv, "healthy")
    second = make_alb(listener=False)
    code, msg = _listener_error(lambda: second.elbv2.create_listener(
        LoadBalancerArn=second.lb_arn, Protocol="HTTP", Port=first.port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": second.tg_arn}]))
    assert code == "DuplicateListener"
    assert first.listener_arn in msg
    # Rolled back: the second load balancer has no listener; the first still serves.
    assert second.elbv2.describe_listeners(LoadBalancerArn=second.lb_arn)["Listeners"] == []
    assert http_get(first.url + "/still-mine")[0] == 200
    assert srv.requests[-1].path == "/still-mine"


def test_modify_listener_to_a_taken_port_keeps_the_old_port(fakeaws, make_alb, http_get):
    a, b = make_alb(), make_alb()
    code, _ = _listener_error(lambda: b.elbv2.modify_listener(ListenerArn=b.listener_arn,
                                                              Port=a.port))
    assert code == "DuplicateListener"
    ls = b.elbv2.describe_listeners(ListenerArns=[b.listener_arn])["Listeners"]
    assert ls[0]["Port"] == b.port
    assert http_get(b.url + "/")[0] == 503  # still listening there (no targets)


def test_port_held_by_another_process_fails_create_listener(fakeaws, make_alb, free_port):
    alb = make_alb(listener=False)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        code, msg = _listener_error(lambda: alb.elbv2.create_listener(
            LoadBalancerArn=alb.lb_arn, Protocol="HTTP", Port=port,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": alb.tg_arn}]))
    assert code == "ValidationError"
    assert f"127.0.0.1:{port}" in msg and "in use" in msg
    assert alb.elbv2.describe_listeners(LoadBalancerArn=alb.lb_arn)["Listeners"] == []


# ---- target group deleted with requests in flight -----------------------------------------
def _move_listener_to_new_group(alb: Any, srv: Any = None) -> str:
    """A second target group with the listener's default action pointed at it (and `srv`
    registered in it, healthy), as the controller does before deleting a group: AWS refuses
    DeleteTargetGroup while a listener references it, and deleting the listener would close
    the client connections itself."""
    tg2 = alb.elbv2.create_target_group(
        Name=f"tg2-{alb.port}", Protocol="HTTP", Port=80, VpcId=alb.vpc_id, TargetType="ip",
        HealthCheckPath="/health", HealthCheckIntervalSeconds=0.2,
        HealthCheckTimeoutSeconds=0.15, HealthyThresholdCount=2, UnhealthyThresholdCount=2,
        Matcher={"HttpCode": "200"})["TargetGroups"][0]["TargetGroupArn"]
    alb.elbv2.modify_listener(ListenerArn=alb.listener_arn, DefaultActions=[
        {"Type": "forward", "TargetGroupArn": tg2}])
    if srv is not None:  # registered once the group is in use (else its targets are unused)
        alb.elbv2.register_targets(TargetGroupArn=tg2, Targets=[
            {"Id": srv.host, "Port": srv.port}])
        wait_until(lambda: alb.elbv2.describe_target_health(TargetGroupArn=tg2)[
            "TargetHealthDescriptions"][0]["TargetHealth"]["State"] == "healthy", 10,
            what=f"{srv.addr} healthy in the second group", interval=0.05)
    return str(tg2)


def test_503_when_target_group_deleted_mid_request(fakeaws, make_alb, targets, http_get):
    srv = targets()
    alb = make_alb()
    alb.register(srv)
    alb.wait_state(srv, "healthy")
    result: dict[str, Any] = {}
    seq = fakeaws.last_seq()
    th = threading.Thread(target=lambda: result.update(r=http_get(alb.url + "/slow?s=5")))
    th.start()
    wait_until(lambda: srv.in_flight, 5, what="in flight")
    _move_listener_to_new_group(alb)
    assert srv.in_flight  # moving the listener did not end the request
    t0 = time.monotonic()
    alb.elbv2.delete_target_group(TargetGroupArn=alb.tg_arn)
    th.join(6)
    assert not th.is_alive()
    assert result["r"][0] == 503
    assert result["r"][1]["x-testbed-elb-error"] == "target_group_deleted"
    assert time.monotonic() - t0 < 2  # ended by the deletion, not by the target's answer
    ev = _elb_errors(fakeaws, seq)
    assert ev[-1]["reason"] == "target_group_deleted" and ev[-1]["status"] == 503, ev
    assert ev[-1]["target"] == srv.addr and ev[-1]["tg_arn"] == alb.tg_arn
    assert ev[-1]["path"] == "/slow?s=5"
    (deleted,) = fakeaws.events(seq, "target_group_deleted")
    assert deleted["tg_arn"] == alb.tg_arn and deleted["targets"] == [srv.addr]


def test_target_group_deletion_spares_finished_and_other_groups_requests(
        fakeaws, make_alb, targets, http_get):
    """A request answered before the deletion stays a 200, and a request in flight to the
    group the listener now forwards to finishes normally: only the deleted group's requests
    end."""
    a, b = targets(), targets()
    alb = make_alb()
    alb.register(a)
    alb.wait_state(a, "healthy")
    seq = fakeaws.last_seq()
    before = http_get(alb.url + "/before")
    assert before[0] == 200 and before[2] == b"ok %d" % a.port
    _move_listener_to_new_group(alb, b)
    result: dict[str, Any] = {}
    th = threading.Thread(target=lambda: result.update(r=http_get(alb.url + "/slow?s=1.5")))
    th.start()
    wait_until(lambda: b.in_flight, 5, what="in flight to the second group")
    alb.elbv2.delete_target_group(TargetGroupArn=alb.tg_arn)
    th.join(5)
    assert not th.is_alive()
    assert result["r"][0] == 200 and "x-testbed-elb-error" not in result["r"][1]
    assert result["r"][2] == b"ok %d" % b.port
    assert http_get(alb.url + "/after")[0] == 200
    assert fakeaws.elb_errors(seq, expect=0) == []
