"""Data-plane worker processes (--dataplane-workers 2): connections spread over both, each
worker's events reach the engine's log, listener events appear once, a worker that dies
leaves the other serving. Behaviour through the
workers (forwarding, draining, stickiness, hostile input) is covered by running the
dataplane, routing and hostile-input modules against two workers too (conftest.py)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.fakeaws.conftest import FakeAws, running_fakeaws
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fakeaws_server() -> Iterator[FakeAws]:
    """This module's own server with two workers (its last test kills one)."""
    with running_fakeaws("--dataplane-workers", "2") as fa:
        yield fa


def _get(port: int, path: str) -> int:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # a new connection each
    try:
        c.request("GET", path)
        resp = c.getresponse()
        resp.read()
        return resp.status
    finally:
        c.close()


def test_connections_spread_over_workers(fakeaws: Any, make_alb: Any, targets: Any) -> None:
    srv = targets()
    alb = make_alb()
    alb.register(srv)
    alb.wait_state(srv, "healthy")
    before = {w["pid"]: w["requests"] for w in fakeaws.get("/_testbed/stats")["engine"]["workers"]}
    assert len(before) == 2
    for i in range(40):
        assert _get(alb.port, f"/spread/{i}") == 200
    after = {w["pid"]: w["requests"] for w in fakeaws.get("/_testbed/stats")["engine"]["workers"]}
    served = {pid: after[pid] - before[pid] for pid in before}
    assert sum(served.values()) == 40
    # The kernel hashes each new connection to one of the two sockets: both get some
    # (all 40 on one worker: probability 2**-39).
    assert all(n > 0 for n in served.values()), served


def test_worker_events_reach_the_engine_log(fakeaws: Any, make_alb: Any) -> None:
    seq = fakeaws.last_seq()
    alb = make_alb()  # no targets registered: every request is a 503 no_targets
    for i in range(10):
        assert _get(alb.port, f"/none/{i}") == 503
    errors = [e for e in fakeaws.elb_errors(seq, expect=10)
              if e["listener_port"] == alb.port]
    # the two workers' events interleave as they arrive: one each, in no fixed order
    assert sorted(e["path"] for e in errors) == sorted(f"/none/{i}" for i in range(10))
    assert {e["reason"] for e in errors} == {"no_targets"}
    assert len({e["seq"] for e in errors}) == 10
    started = [e for e in fakeaws.events(seq, "listener")
               if e["listener_arn"] == alb.listener_arn and e["action"] == "started"]
    assert len(started) == 1  # announced by one worker, not by each


def test_a_worker_that_dies_leaves_the_others_serving(fakeaws_server: Any, make_alb: Any,
                                                       targets: Any) -> None:
    """Last in the module: it leaves the module's server with one worker."""
    import os
    import signal

    import boto3
    from botocore.config import Config

    workers = fakeaws_server.get("/_testbed/stats")["engine"]["workers"]
    assert len(workers) == 2
    seq = fakeaws_server.last_seq()
    os.kill(workers[1]["pid"], signal.SIGKILL)
    exited = wait_until(lambda: fakeaws_server.events(seq, "worker_exited"), 10,
                        what="worker_exited event")
    assert exited[0]["pid"] == workers[1]["pid"]
    # Every ELBv2 change waits for each worker's ack; not for the dead one's (a 10 s read
    # timeout here, against the engine's 30 s ack timeout).
    elbv2 = boto3.client("elbv2", region_name="us-east-1", endpoint_url=fakeaws_server.url,
                         aws_access_key_id="t", aws_secret_access_key="t",
                         config=Config(read_timeout=10, retries={"max_attempts": 1}))
    srv = targets()
    alb = make_alb()
    elbv2.modify_target_group_attributes(TargetGroupArn=alb.tg_arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "1"}])
    alb.register(srv)
    alb.wait_state(srv, "healthy")
    assert all(_get(alb.port, f"/after/{i}") == 200 for i in range(10))
    assert [w["pid"] for w in fakeaws_server.get("/_testbed/stats")["engine"]["workers"]] == [
        workers[0]["pid"]]
