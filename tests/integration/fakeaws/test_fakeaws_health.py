"""Each target state and reason appears when its cause is created and goes when it should."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def test_initial_reasons_then_healthy_one_check(fakeaws, make_alb, targets):
    """initial/RegistrationInProgress while the registration propagates, then
    InitialHealthChecking while checks fail, then healthy after ONE success."""
    fakeaws.post("/_testbed/config", {"register_delay": 1.0})
    srv = targets(health_status=503)
    alb = make_alb(interval=0.2, timeout=0.15, unhealthy=10)
    t_reg = time.time()
    alb.register(srv)
    assert alb.state_of(srv) == ("initial", "Elb.RegistrationInProgress")
    alb.wait_state(srv, "initial", "Elb.InitialHealthChecking", timeout=5)
    wait_until(lambda: srv.health_checks, 5, what="first check")
    assert srv.health_checks[0].ts - t_reg > 0.9  # nobody checks before propagation
    srv.health_status = 200
    alb.wait_state(srv, "healthy", timeout=5)
    ev = [e for e in fakeaws.events(kind="target_state") if e["port"] == srv.port]
    assert [(e["from"], e["to"], e["reason"]) for e in ev] == [
        (None, "initial", "Elb.RegistrationInProgress"),
        ("initial", "initial", "Elb.InitialHealthChecking"),
        ("initial", "healthy", None)]
    # Checks: fresh connection each, ELB user agent, no keep-alive.
    checks = srv.health_checks
    assert len({c.conn_id for c in checks}) == len(checks)
    assert all(c.headers["user-agent"] == "ELB-HealthChecker/2.0" for c in checks)


def test_unhealthy_reasons_and_recovery(fakeaws, make_alb, targets):
    srv = targets()
    alb = make_alb(interval=0.2, timeout=0.15, healthy=3, unhealthy=2)
    alb.register(srv)
    alb.wait_state(srv, "healthy")
    srv.health_status = 500
    alb.wait_state(srv, "unhealthy", "Target.ResponseCodeMismatch")
    d = alb.elbv2.describe_target_health(TargetGroupArn=alb.tg_arn)[
        "TargetHealthDescriptions"][0]["TargetHealth"]
    assert d["Description"] == "Health checks failed with these codes: [500]"
    srv.health_status = 200
    srv.health_delay = 0.5  # > timeout 0.15
    alb.wait_state(srv, "unhealthy", "Target.Timeout")
    srv.health_delay = 0
    seq = fakeaws.last_seq()
    alb.wait_state(srv, "healthy")
    # unhealthy -> healthy takes HealthyThreshold (3) consecutive successes.
    checks_after = [c for c in srv.health_checks if c.ts >= fakeaws.events(seq)[0]["ts"] - 1]
    assert len(checks_after) >= 3
    srv.stop()  # connection refused -> FailedHealthChecks
    alb.wait_state(srv, "unhealthy", "Target.FailedHealthChecks")


def test_initial_to_unhealthy_after_threshold(make_alb, targets):
    srv = targets(health_status=404)
    alb = make_alb(unhealthy=2)
    alb.register(srv)
    alb.wait_state(srv, "unhealthy", "Target.ResponseCodeMismatch")


def test_matcher_range_and_list(make_alb, targets):
    a, b = targets(health_status=202), targets(health_status=204)
    alb = make_alb(matcher="200,202")
    alb.register(a, b)
    alb.wait_state(a, "healthy")
    alb.wait_state(b, "unhealthy", "Target.ResponseCodeMismatch")
    alb.elbv2.modify_target_group(TargetGroupArn=alb.tg_arn, Matcher={"HttpCode": "200-299"})
    alb.wait_state(b, "healthy")


def test_not_in_use_then_in_use_and_checks_cannot_be_disabled(fakeaws, make_alb, targets,
                                                              free_port):
    srv = targets()
    alb = make_alb(listener=False)
    alb.register(srv)
    alb.wait_state(srv, "unused", "Target.NotInUse")
    assert srv.health_checks == []  # nobody checks a group no listener uses
    lst = alb.elbv2.create_listener(
        LoadBalancerArn=alb.lb_arn, Protocol="HTTP", Port=free_port(),
        DefaultActions=[{"Type": "forward", "TargetGroupArn": alb.tg_arn}])
    alb.wait_state(srv, "healthy")
    # "If the target type is instance, ip, or alb, health checks are always enabled and can't
    # be disabled" (API_ModifyTargetGroup): refused, and the target keeps its state
    with pytest.raises(ClientError) as refused:
        alb.elbv2.modify_target_group(TargetGroupArn=alb.tg_arn, HealthCheckEnabled=False)
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert alb.state_of(srv) == ("healthy", None)
    alb.elbv2.delete_listener(ListenerArn=lst["Listeners"][0]["ListenerArn"])
    alb.wait_state(srv, "unused", "Target.NotInUse")


def test_draining_shown_then_gone_and_checks_stop(fakeaws, make_alb, targets):
    srv = targets()
    alb = make_alb(dereg_delay=1)
    alb.register(srv)
    alb.wait_state(srv, "healthy")
    alb.deregister(srv)
    assert alb.state_of(srv) == ("draining", "Target.DeregistrationInProgress")
    n = len(srv.health_checks)
    wait_until(lambda: alb.state_of(srv) is None, 5, what="draining target disappears")
    assert len(srv.health_checks) <= n + 1  # at most one check already in flight
    ev = [e for e in fakeaws.events(kind="target_state") if e["port"] == srv.port]
    assert (ev[-2]["to"], ev[-1]["from"], ev[-1]["to"]) == ("draining", "draining", "unused")
