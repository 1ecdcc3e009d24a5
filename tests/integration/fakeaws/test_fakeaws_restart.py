"""POST /_testbed/restart: a new engine process takes over the old one's state and listening
sockets while HTTP load runs through a listener; nothing fails, nothing is forgotten."""

from __future__ import annotations

import http.client
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.integration.fakeaws.conftest import API_POLL, FakeAws, running_fakeaws
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
DRAIN = 10  # the draining target's deregistration delay (s)


@pytest.fixture(scope="module", params=[1, 2], ids=["1w", "2w"])
def fakeaws_server(request: pytest.FixtureRequest) -> Iterator[FakeAws]:
    """Own servers: these tests replace their engine."""
    with running_fakeaws("--dataplane-workers", str(request.param)) as fa:
        yield fa


def restart(fa: FakeAws, method: str = "POST", body: bytes | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(fa.url + "/_testbed/restart", method=method, data=body)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@dataclass
class Load:
    """HTTP GETs through a listener from two threads: one keep-alive connection (reopened
    when the ALB says `Connection: close`) and a new connection per request."""

    port: int
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for keep in (True, False):
            t = threading.Thread(target=self._run, args=(keep,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def _run(self, keep: bool) -> None:
        conn: http.client.HTTPConnection | None = None
        n = 0
        while not self.stop.is_set():
            n += 1
            if conn is None or not keep:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("GET", f"/load/{'k' if keep else 'n'}/{n}")
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    self.failed.append(f"{resp.status} {resp.getheader('x-testbed-elb-error')}")
                else:
                    self.ok += 1
                if resp.will_close or not keep:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                self.failed.append(repr(exc))
                conn.close()
                conn = None

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(15)


def _all_events(fa: FakeAws, since: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = fa.get(f"/_testbed/events?since={since}")
        if not page["events"]:
            return out
        out += page["events"]
        since = page["next"]


def _nice(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[16])


def test_restart_keeps_state_and_drops_no_request(fakeaws: FakeAws, make_alb: Any,
                                                  targets: Any) -> None:
    # Checks with room (1 s timeout): a check timing out on a loaded machine would change
    # the sick target's reason, which this test reads as a transition caused by the restart.
    alb = make_alb(dereg_delay=DRAIN, interval=1.0, timeout=0.9, healthy=2, unhealthy=2)
    a, b, d = targets(), targets(), targets()
    sick = targets(health_status=500)
    alb.register(a, b, d, sick)
    for s in (a, b, d):
        alb.wait_state(s, "healthy")
    alb.wait_state(sick, "unhealthy", "Target.ResponseCodeMismatch")
    alb.deregister(d)
    alb.wait_state(d, "draining")
    dereg = fakeaws.events(0, "deregistered")[-1]
    first_pid = fakeaws.get("/_testbed/stats")["engine"]["pid"]
    load = Load(alb.port).start()
    try:
        wait_until(lambda: load.ok >= 50, 10, what="load running")
        before = alb.health()
        seq0 = fakeaws.last_seq()
        answers = []
        for _ in range(2):
            served = load.ok
            code, ans = restart(fakeaws)
            assert code == 200, ans
            answers.append(ans)
            # requests keep being served by the new engine (before the next restart)
            wait_until(lambda served=served: load.ok >= served + 50, 10,
                       what="requests after the restart")
        assert alb.health() == before
        # the draining target ends when it would have without restarts
        gone = wait_until(lambda: [e for e in fakeaws.events(seq0, "target_state")
                                   if e["to"] == "unused" and e["port"] == d.port],
                          DRAIN + 10, what="drain end", interval=API_POLL)
        assert abs(gone[0]["ts"] - (dereg["ts"] + DRAIN)) < 1.0, (gone, dereg)
        assert alb.health() == {k: v for k, v in before.items() if k != d.addr}
    finally:
        load.finish()
    # the numbers docs/fakeaws.md quotes (pytest -s shows them)
    print(f"\nrestart: handover_ms={[r['handover_ms'] for r in answers]} "
          f"api_wait_ms={[r['api_wait_ms'] for r in answers]} "
          f"accept_overlap_ms={[r['accept_overlap_ms'] for r in answers]} "
          f"listener_gap_ms={[r['listener_gap_ms'] for r in answers]} "
          f"requests={load.ok} failed={len(load.failed)}")
    assert not load.failed, load.failed[:10]
    assert load.ok > 200
    (r1, r2) = answers
    assert r1["old_pid"] == first_pid and r2["old_pid"] == r1["new_pid"]
    assert fakeaws.get("/_testbed/stats")["engine"]["pid"] == r2["new_pid"]
    assert _nice(r2["new_pid"]) == os.nice(0)  # as the first engine's, not the API's (+10)
    for r in answers:
        assert r["target_groups"] == 1 and r["targets"] == 4 and r["listener_gap_ms"] == 0
        assert r["handover_ms"] > 0 and r["events"] >= 1
    # the event log goes on: every seq once, no gap, the old engines' last events included
    evs = _all_events(fakeaws, seq0)
    seqs = [e["seq"] for e in evs]
    assert seqs == list(range(seq0 + 1, seqs[-1] + 1)), (seq0, evs)
    restarts = [e for e in evs if e["kind"] == "restart"]
    assert [(e["old_pid"], e["new_pid"]) for e in restarts] == [
        (r["old_pid"], r["new_pid"]) for r in answers]
    # health checks went on from the same counters: still unhealthy, no new transition
    changed = [e for e in evs if e["kind"] == "target_state" and e["port"] != d.port]
    assert not changed, changed


def test_restart_refuses_bad_requests(fakeaws: FakeAws) -> None:
    assert restart(fakeaws, "GET")[0] == 405
    code, ans = restart(fakeaws, body=b'{"now": true}')
    assert code == 400 and "error" in ans
    code, ans = restart(fakeaws)  # with no load balancer at all
    assert code == 200 and ans["targets"] == 0


def test_elbv2_calls_during_a_restart_wait_and_succeed(fakeaws: FakeAws, make_alb: Any,
                                                       targets: Any) -> None:
    alb = make_alb()
    srv = targets()
    results: list[Any] = []

    def call() -> None:
        try:
            alb.register(srv)
            results.append(alb.health())
        except Exception as exc:  # noqa: BLE001 - recorded, asserted below
            results.append(exc)

    t = threading.Thread(target=call)
    t.start()
    code, ans = restart(fakeaws)
    t.join(30)
    assert code == 200, ans
    assert results and not isinstance(results[0], Exception), results
    alb.wait_state(srv, "healthy")


def _listening(port: int) -> set[str]:
    """Inodes of the sockets listening on `port` (Linux /proc/net/tcp)."""
    out = set()
    with open("/proc/net/tcp") as fh:
        for line in fh.readlines()[1:]:
            f = line.split()
            if f[3] == "0A" and int(f[1].split(":")[1], 16) == port:
                out.add(f[9])
    return out


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="Linux only")
def test_no_listening_socket_outlives_its_listener_after_a_restart(
        fakeaws: FakeAws, make_alb: Any) -> None:
    """Received descriptors must not leak into the workers a restored engine starts: a copy
    nobody accepts on would stay in the port's SO_REUSEPORT group, and the next listener on
    that port would queue connections on it that hang."""
    alb = make_alb()
    assert _listening(alb.port)
    code, ans = restart(fakeaws)
    assert code == 200, ans
    alb.elbv2.delete_listener(ListenerArn=alb.listener_arn)
    wait_until(lambda: not _listening(alb.port), 10.0,
               f"sockets still listening on {alb.port} after its listener was deleted")
