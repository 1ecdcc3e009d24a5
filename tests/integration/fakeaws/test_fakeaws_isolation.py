"""Several runs sharing one fake AWS: per-target-group run-time settings and event filters,
through the API process (POST/GET /_testbed/config, GET /_testbed/events[/stream])."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from typing import Any
from urllib.parse import quote

import botocore.exceptions
import pytest

from tests.waiting import wait_until

pytestmark = pytest.mark.integration

GROUP_EVENTS = ("registered", "deregistered", "target_state", "routing", "elb_error")


def _scope(fakeaws, tg_arn: str, **values: float) -> dict[str, Any]:
    return fakeaws.post("/_testbed/config", {"target_group_arn": tg_arn, **values})


def test_register_delay_per_target_group(fakeaws, make_alb, targets):
    """Two runs, two register delays: each target becomes visible (and is first checked)
    after its own group's delay; the global value stays as it was."""
    slow_alb, fast_alb = make_alb(), make_alb()
    slow, fast = targets(), targets()
    got = _scope(fakeaws, slow_alb.tg_arn, register_delay=1.5)
    assert (got["target_group_arn"], got["register_delay"], got["overrides"]) == (
        slow_alb.tg_arn, 1.5, {"register_delay": 1.5})
    assert got["port"] == int(fakeaws.url.rsplit(":", 1)[1])  # the API's values too
    _scope(fakeaws, fast_alb.tg_arn, register_delay=0.2)
    assert fakeaws.get("/_testbed/config")["register_delay"] == 0
    assert fakeaws.get(f"/_testbed/config?target_group_arn={quote(slow_alb.tg_arn)}") == got
    seq = fakeaws.last_seq()
    slow_alb.register(slow)
    fast_alb.register(fast)
    assert slow_alb.state_of(slow) == ("initial", "Elb.RegistrationInProgress")
    fast_alb.wait_state(fast, "healthy", timeout=5)
    slow_alb.wait_state(slow, "healthy", timeout=5)
    evs = fakeaws.events(seq)
    for alb, srv, delay in ((slow_alb, slow, 1.5), (fast_alb, fast, 0.2)):
        mine = [e for e in evs if e.get("tg_arn") == alb.tg_arn]
        registered = next(e for e in mine if e["kind"] == "registered")
        visible = next(e for e in mine if e["kind"] == "target_state"
                       and e["reason"] == "Elb.InitialHealthChecking")
        assert registered["visible_in"] == delay
        assert delay - 0.02 < visible["ts"] - registered["ts"] < delay + 0.5, (delay, mine)
        # The data plane's own checks start at visibility, not before.
        first_check = srv.health_checks[0].ts - registered["ts"]
        assert delay - 0.05 < first_check < delay + 1.0, (delay, first_check)


def test_scoped_config_refusals_and_lifetime(fakeaws, make_alb):
    alb = make_alb(listener=False)
    scoped = f"/_testbed/config?target_group_arn={quote(alb.tg_arn)}"
    before, glob = fakeaws.get(scoped), fakeaws.get("/_testbed/config")
    missing = alb.tg_arn.rsplit("/", 1)[0] + "/0000000000000000"
    arn = json.dumps(alb.tg_arn).encode()
    for body, status in [
        (b'{"target_group_arn": %s, "register_delay": 1}' % json.dumps(missing).encode(), 404),
        (b'{"target_group_arn": %s, "register_delay": NaN}' % arn, 400),
        (b'{"target_group_arn": %s, "register_delay": -1}' % arn, 400),
        (b'{"target_group_arn": %s, "connect_timeout": 0}' % arn, 400),
        (b'{"target_group_arn": %s, "register_delay": "5"}' % arn, 400),
        (b'{"target_group_arn": %s, "port": 1234}' % arn, 400),
        (b'{"target_group_arn": %s, "deregister_delay": 2, "register_delay": null}' % arn, 400),
        (b'{"target_group_arn": 5, "register_delay": 1}', 400),
        (b'{"target_group_arn": "", "register_delay": 1}', 400),
    ]:
        code, answer = fakeaws.post_raw("/_testbed/config", body)
        assert code == status and isinstance(answer["error"], str) and answer["error"], body
    # A scope in the query of a POST is refused, not taken as a global change.
    code, answer = fakeaws.post_raw(scoped, b'{"register_delay": 3}')
    assert code == 400 and "body" in answer["error"]
    assert fakeaws.get(scoped) == before and fakeaws.get("/_testbed/config") == glob
    code, answer = fakeaws.get_raw(f"/_testbed/config?target_group_arn={quote(missing)}")
    assert code == 404 and missing in answer["error"]
    assert not [e for e in fakeaws.events() if e["kind"] == "config"
                and e.get("target_group_arn")]
    # Set, then the group is deleted: its overrides go with it (the engine forgets it).
    seq = fakeaws.last_seq()
    assert _scope(fakeaws, alb.tg_arn, deregister_delay=4)["deregister_delay"] == 4
    (event,) = fakeaws.events(seq, kind="config")
    assert (event["target_group_arn"], event["tg_arn"], event["deregister_delay"]) == (
        alb.tg_arn, alb.tg_arn, 4)
    alb.elbv2.delete_target_group(TargetGroupArn=alb.tg_arn)
    assert fakeaws.get_raw(scoped)[0] == 404
    assert fakeaws.get("/_testbed/config") == glob


def _blackhole() -> tuple[socket.socket, list[socket.socket]]:
    """A port whose accept queue is full: SYNs are dropped, a connect never completes."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(lsock.getsockname())
        fillers.append(c)
    return lsock, fillers


def test_connect_timeout_per_target_group(fakeaws, make_alb, http_get):
    """Global connect_timeout 1 s (the fixture); one run sets 0.3 s for its group only."""
    lsock, fillers = _blackhole()
    port = lsock.getsockname()[1]
    try:
        quick, default = make_alb(), make_alb()
        assert _scope(fakeaws, quick.tg_arn, connect_timeout=0.3)["connect_timeout"] == 0.3
        for alb in (quick, default):
            alb.elbv2.register_targets(TargetGroupArn=alb.tg_arn, Targets=[
                {"Id": "127.0.0.1", "Port": port}])
        def unhealthy() -> bool:
            return all(a.health()[f"127.0.0.1:{port}"][0] == "unhealthy"
                       for a in (quick, default))

        wait_until(unhealthy, 10, what="unhealthy (fail-open routes to it)", interval=0.05)
        took = {}
        for name, alb in (("quick", quick), ("default", default)):
            t0 = time.monotonic()
            code, headers, _ = http_get(alb.url + "/c")
            took[name] = time.monotonic() - t0
            assert (code, headers.get("x-testbed-elb-error")) == (504, "connect_timeout")
        assert 0.25 < took["quick"] < 0.9, took
        assert 0.95 < took["default"] < 2.0, took
    finally:
        for c in fillers:
            c.close()
        lsock.close()


def _paged(fakeaws, since: int, query: str, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Follow `next` until an empty page -> (every event, the final cursor)."""
    got: list[dict[str, Any]] = []
    seq = since
    for _ in range(1000):
        page = fakeaws.get(f"/_testbed/events?since={seq}&limit={limit}&{query}")
        assert len(page["events"]) <= limit
        assert all(seq < e["seq"] <= page["next"] for e in page["events"]), (seq, page)
        got += page["events"]
        seq = page["next"]
        if not page["events"]:
            return got, seq
    raise AssertionError("paging did not end")


def test_event_filters_isolate_runs_and_page(fakeaws, make_alb, targets, http_get):
    start = fakeaws.last_seq()
    run_a, run_b = make_alb(), make_alb()
    a_arn, b_arn = run_a.tg_arn, run_b.tg_arn
    sa, sb = targets(), targets()
    assert http_get(run_b.url + "/early")[0] == 503  # no_targets names B's group too
    run_a.register(sa)
    run_b.register(sb)
    run_a.wait_state(sa, "healthy")
    run_b.wait_state(sb, "healthy")
    fakeaws.post("/_testbed/config", {"deregister_delay": 0})  # global: no run's event
    _scope(fakeaws, a_arn, connect_timeout=2)
    assert http_get(run_a.url + "/close")[0] == 502
    run_b.deregister(sb)  # B's events come last
    wait_until(lambda: [e for e in fakeaws.events(start, kind="target_state")
                        if e["tg_arn"] == b_arn and e["to"] == "unused"], 5,
               what="B's target removed", interval=0.05)
    full = fakeaws.get(f"/_testbed/events?since={start}")
    evs, last = full["events"], full["next"]
    for e in evs:  # every event about a group or a listener names it
        if e["kind"] in GROUP_EVENTS:
            assert e["tg_arn"] in (a_arn, b_arn), e
        if e["kind"] in ("listener", "elb_error"):
            assert e["listener_port"] in (run_a.port, run_b.port), e
    assert [e["tg_arn"] for e in evs if e["kind"] == "elb_error"
            and e["reason"] == "no_targets"] == [b_arn]

    def listing(query: str) -> list[dict[str, Any]]:
        page = fakeaws.get(f"/_testbed/events?since={start}&{query}")
        assert page["next"] == last  # moved past the other run's later events
        return page["events"]

    of_a = [e for e in evs if e.get("tg_arn") == a_arn]
    assert listing(f"target_group_arn={quote(a_arn)}") == of_a
    assert {"registered", "target_state", "routing", "elb_error", "config"} <= {
        e["kind"] for e in of_a}
    on_a = [e for e in evs if e.get("listener_port") == run_a.port]
    assert listing(f"listener_port={run_a.port}") == on_a
    assert {e["kind"] for e in on_a} == {"listener", "elb_error"}
    assert listing(f"target_group_arn={quote(a_arn)}&listener_port={run_a.port}") == [
        e for e in evs if e in of_a or e in on_a]
    both = [e for e in evs if e.get("tg_arn") in (a_arn, b_arn)]
    assert listing(f"target_group_arn={quote(a_arn)}&target_group_arn={quote(b_arn)}") == \
        both == listing(f"target_group_arn={quote(a_arn + ',' + b_arn)}")
    # The global config change concerns no run: in no filtered listing.
    unscoped = [e for e in evs if e["kind"] == "config" and "tg_arn" not in e]
    assert len(unscoped) == 1 and unscoped[0] not in both + on_a
    # Paging with a filter: pages of 2 give the same events, and the cursor ends past B's
    # later events, not at A's last one.
    for query, want in ((f"target_group_arn={quote(a_arn)}", of_a),
                        (f"listener_port={run_a.port}", on_a)):
        got, end = _paged(fakeaws, start, query, 2)
        assert got == want and end == last > want[-1]["seq"]

    # The stream takes the same filters: the backlog, then only A's live events.
    stream = urllib.request.urlopen(
        fakeaws.url + f"/_testbed/events/stream?since={start}&target_group_arn={quote(a_arn)}",
        timeout=10)
    try:
        def next_event() -> dict[str, Any]:
            while True:
                line = stream.readline()
                if line.strip():
                    return dict(json.loads(line))

        assert [next_event() for _ in of_a] == of_a
        assert http_get(run_b.url + "/b-live")[0] == 503
        assert http_get(run_a.url + "/close")[0] == 502
        live = next_event()
        assert (live["kind"], live["tg_arn"], live["path"]) == ("elb_error", a_arn, "/close")
    finally:
        stream.close()


@pytest.mark.parametrize("query", [
    "listener_port=abc", "since=abc", "limit=abc", "limit=0", "listener_port=0",
    "listener_port=70000", "since=1&since=2", "tg_arn=x", "target_group_arn=",
])
@pytest.mark.parametrize("path", ["/_testbed/events", "/_testbed/events/stream"])
def test_bad_event_queries_get_400_json(fakeaws, path, query):
    if path.endswith("stream") and query.startswith("limit"):
        query = "limit=5"  # the stream has no limit at all
    code, answer = fakeaws.get_raw(f"{path}?{query}")
    assert code == 400 and isinstance(answer["error"], str) and answer["error"], answer
    assert fakeaws.get("/_testbed/healthz")["ok"] is True


def test_listener_bind_failed_names_its_port_and_listener(fakeaws, make_alb):
    """The CreateListener fails (ValidationError naming the port) and the event log has the
    bind failure under that port, so a run filtering by its listener port sees it."""
    alb = make_alb(listener=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        seq = fakeaws.last_seq()
        with pytest.raises(botocore.exceptions.ClientError) as ei:
            alb.elbv2.create_listener(
                LoadBalancerArn=alb.lb_arn, Protocol="HTTP", Port=port,
                DefaultActions=[{"Type": "forward", "TargetGroupArn": alb.tg_arn}])
        evs = fakeaws.get(f"/_testbed/events?since={seq}&listener_port={port}")["events"]
    assert ei.value.response["Error"]["Code"] == "ValidationError"
    assert f":{port}" in ei.value.response["Error"]["Message"]
    assert [(e["kind"], e["action"], e["listener_port"]) for e in evs] == [
        ("listener", "bind_failed", port)]
