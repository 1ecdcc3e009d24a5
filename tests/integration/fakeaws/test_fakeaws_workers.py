"""Data-plane worker processes (--dataplane-workers 2): connections spread over both, each
worker's events reach the engine's log, listener events appear once. Behaviour through the
workers (forwarding, draining, stickiness, hostile input) is covered by running the
dataplane, routing and hostile-input modules against two workers too (conftest.py)."""

from __future__ import annotations

import http.client
from typing import Any

import pytest

pytestmark = pytest.mark.integration


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
    errors = [e for e in fakeaws.events(seq, "elb_error") if e["listener_port"] == alb.port]
    assert [e["path"] for e in errors] == [f"/none/{i}" for i in range(10)]
    assert {e["reason"] for e in errors} == {"no_targets"}
    seqs = [e["seq"] for e in errors]
    assert seqs == sorted(seqs) and len(set(seqs)) == 10
    started = [e for e in fakeaws.events(seq, "listener")
               if e["listener_arn"] == alb.listener_arn and e["action"] == "started"]
    assert len(started) == 1  # announced by one worker, not by each
