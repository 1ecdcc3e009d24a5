"""Runs sharing one engine: event filters and paging, the engine's scoped /config, and the
data plane's per-target-group connect timeout (no subprocess; the engine's aiohttp app runs
in this process)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from testbed.fakeaws.engine import main as engine_main
from testbed.fakeaws.engine.dataplane import proxy, rules
from testbed.fakeaws.engine.events import (
    DEFAULT_LIMIT,
    EventFilter,
    EventLog,
    QueryError,
    parse_query,
)
from testbed.fakeaws.engine.store import TargetGroupSpec
from testbed.fakeaws.settings import FakeAwsSettings

A, B = "arn:tg/a", "arn:tg/b"


# ---- event filters ---------------------------------------------------------------------
def _mixed_log() -> EventLog:
    """Two runs' events interleaved with global ones: A on listener 8001, B on 8002."""
    log = EventLog()
    log.emit("listener", action="started", listener_port=8001, listener_arn="l/a")
    log.emit("listener", action="started", listener_port=8002, listener_arn="l/b")
    for i in range(5):
        log.emit("registered", tg_arn=A, target_id=f"10.0.0.{i}", port=80)
        log.emit("registered", tg_arn=B, target_id=f"10.0.1.{i}", port=80)
        log.emit("config", register_delay=float(i))
    log.emit("elb_error", status=503, reason="no_targets", target=None, listener_port=8002,
             path="/", tg_arn=B)
    log.emit("reset")
    log.emit("routing", tg_arn=B, targets=[], fail_open=False)
    return log


def test_filter_matches_tg_arn_or_listener_port_and_nothing_else() -> None:
    flt = EventFilter(frozenset({A}), frozenset({8002}))
    assert flt.matches({"kind": "registered", "tg_arn": A})
    assert flt.matches({"kind": "listener", "listener_port": 8002})
    assert flt.matches({"kind": "elb_error", "tg_arn": None, "listener_port": 8002})
    assert not flt.matches({"kind": "registered", "tg_arn": B})
    assert not flt.matches({"kind": "listener", "listener_port": 8001})
    assert not flt.matches({"kind": "config", "register_delay": 1.0})
    assert not flt.matches({"kind": "reset"})
    assert EventFilter().matches({"kind": "reset"}) and not EventFilter()


@pytest.mark.parametrize("flt", [
    EventFilter(tg_arns=frozenset({A})), EventFilter(listener_ports=frozenset({8002})),
    EventFilter(frozenset({A}), frozenset({8002})), EventFilter(frozenset({A, B})),
])
@pytest.mark.parametrize("limit", [1, 2, 3, 7, DEFAULT_LIMIT])
def test_filtered_pages_are_the_filtered_log_and_next_moves_past_skipped(
        flt: EventFilter, limit: int) -> None:
    log = _mixed_log()
    everything, last = log.since(0)
    want = [e for e in everything if flt.matches(e)]
    got: list[dict[str, Any]] = []
    seq = 0
    for _ in range(100):
        page, nxt = log.since(seq, limit, flt)
        assert len(page) <= limit and all(flt.matches(e) for e in page)
        assert nxt >= seq and all(seq < e["seq"] <= nxt for e in page)
        got += page
        seq = nxt
        if not page:
            break
    assert got == want
    # Past the last match the cursor still reaches the newest event, so a filtered reader
    # does not scan the same skipped events again.
    assert seq == last and log.since(last, limit, flt) == ([], last)
    # A new event of another run: nothing for this filter, yet `next` advances past it.
    other = log.emit("registered", tg_arn="arn:tg/other", target_id="x", port=1)
    assert log.since(seq, limit, flt) == ([], other["seq"])


def test_filtered_listing_from_before_an_evicted_start() -> None:
    log = EventLog(maxlen=4)
    for i in range(10):
        log.emit("registered", tg_arn=A if i % 2 else B, target_id=str(i), port=80)
    page, nxt = log.since(0, 10, EventFilter(frozenset({A})))
    assert [e["target_id"] for e in page] == ["7", "9"] and nxt == 10


@pytest.mark.parametrize("pairs, since, limit, arns, ports", [
    ([], None, DEFAULT_LIMIT, set(), set()),
    ([("since", "5"), ("limit", "2")], 5, 2, set(), set()),
    ([("target_group_arn", A), ("target_group_arn", f"{B}, arn:tg/c")], None, DEFAULT_LIMIT,
     {A, B, "arn:tg/c"}, set()),
    ([("listener_port", "8001,8002"), ("listener_port", "65535")], None, DEFAULT_LIMIT, set(),
     {8001, 8002, 65535}),
])
def test_parse_query(pairs: list[tuple[str, str]], since: int | None, limit: int,
                     arns: set[str], ports: set[int]) -> None:
    q = parse_query(pairs)
    assert (q.since, q.limit, set(q.filter.tg_arns), set(q.filter.listener_ports)) == (
        since, limit, arns, ports)


@pytest.mark.parametrize("pairs", [
    [("since", "abc")], [("since", "-1")], [("since", "1.5")], [("since", "")],
    [("since", "1"), ("since", "2")], [("limit", "0")], [("limit", "x")],
    [("listener_port", "abc")], [("listener_port", "0")], [("listener_port", "65536")],
    [("listener_port", "80,")], [("listener_port", " +80")], [("target_group_arn", "")],
    [("target_group_arn", f"{A},")], [("tg_arn", A)], [("kind", "routing")],
])
def test_parse_query_refuses(pairs: list[tuple[str, str]]) -> None:
    with pytest.raises(QueryError):
        parse_query(pairs)


def test_the_stream_takes_no_limit() -> None:
    assert parse_query([("since", "3"), ("listener_port", "80")], stream=True).since == 3
    with pytest.raises(QueryError, match="limit"):
        parse_query([("limit", "3")], stream=True)


# ---- the engine's control API (in process) ------------------------------------------------
def _with_engine(body: Callable[[engine_main.Engine, TestClient[Any, Any]], Awaitable[None]],
                 **settings: Any) -> None:
    async def run() -> None:
        # The data plane in this process (no worker processes in unit tests).
        engine = engine_main.Engine(FakeAwsSettings(**{"dataplane_workers": 1, **settings}))
        engine.store.sync_groups([TargetGroupSpec(arn=A), TargetGroupSpec(arn=B)])
        async with TestClient(TestServer(engine.app())) as client:
            await body(engine, client)
        await engine.dataplane.stop_all()

    asyncio.run(run())


async def _call(client: TestClient[Any, Any], method: str, path: str, body: Any = None
                ) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body)
    resp = await client.request(method, path, data=data)
    return resp.status, await resp.json()


def test_engine_scoped_config() -> None:
    async def body(engine: engine_main.Engine, client: TestClient[Any, Any]) -> None:
        code, glob = await _call(client, "GET", "/config")
        assert code == 200 and glob["register_delay"] == 1.0 and "target_group_arn" not in glob
        code, got = await _call(client, "POST", "/config",
                                {"target_group_arn": A, "register_delay": 4, "connect_timeout": 2})
        assert code == 200
        assert (got["target_group_arn"], got["register_delay"], got["connect_timeout"],
                got["deregister_delay"]) == (A, 4.0, 2.0, 0.0)
        assert got["overrides"] == {"register_delay": 4.0, "connect_timeout": 2.0}
        assert await _call(client, "GET", f"/config?target_group_arn={A}") == (200, got)
        # The global values and the other group are untouched.
        assert await _call(client, "GET", "/config") == (200, glob)
        code, other = await _call(client, "GET", f"/config?target_group_arn={B}")
        assert (other["register_delay"], other["overrides"]) == (1.0, {})
        config = [e for e in engine.events.since(0)[0] if e["kind"] == "config"]
        assert config == [{**config[0], "target_group_arn": A, "tg_arn": A,
                           "register_delay": 4.0, "deregister_delay": 0.0,
                           "connect_timeout": 2.0}]
        # Unscoped: as before, no scope in the answer or the event.
        code, got = await _call(client, "POST", "/config", {"deregister_delay": 3})
        assert code == 200 and got == {**glob, "deregister_delay": 3.0}
        last = engine.events.since(0)[0][-1]
        assert "target_group_arn" not in last and "tg_arn" not in last
        assert last["deregister_delay"] == 3.0
        # The group follows the global value for what it does not override.
        code, got = await _call(client, "GET", f"/config?target_group_arn={A}")
        assert (got["deregister_delay"], got["register_delay"]) == (3.0, 4.0)

    _with_engine(body, register_delay=1.0)


def test_engine_scoped_config_refusals() -> None:
    async def body(engine: engine_main.Engine, client: TestClient[Any, Any]) -> None:
        seq = engine.events.since(0)[1]
        for path, payload, status in [
            ("/config", {"target_group_arn": "arn:tg/gone", "register_delay": 1}, 404),
            ("/config", {"target_group_arn": A, "register_delay": -1}, 400),
            ("/config", {"target_group_arn": A, "register_delay": 1, "nope": 2}, 400),
            ("/config", b'{"target_group_arn": "arn:tg/a", "register_delay": NaN}', 400),
            ("/config", {"target_group_arn": 7, "register_delay": 1}, 400),
            ("/config", {"target_group_arn": None}, 400),
            (f"/config?target_group_arn={A}", {"register_delay": 1}, 400),
        ]:
            code, answer = await _call(client, "POST", path, payload)
            assert code == status and isinstance(answer["error"], str), (payload, answer)
        assert engine.store.overrides == {}
        assert engine.settings == FakeAwsSettings(dataplane_workers=1)
        assert engine.events.since(seq)[0] == []
        for query, status in [("target_group_arn=arn:tg/gone", 404), ("target_group_arn=", 400),
                              (f"target_group_arn={A}&target_group_arn={B}", 400)]:
            code, answer = await _call(client, "GET", f"/config?{query}")
            assert code == status and "target_group_arn" in answer["error"], query

    _with_engine(body)


def test_engine_events_endpoints_filter_and_refuse_bad_queries() -> None:
    async def body(engine: engine_main.Engine, client: TestClient[Any, Any]) -> None:
        engine.events.emit("registered", tg_arn=A, target_id="1", port=80)
        engine.events.emit("registered", tg_arn=B, target_id="2", port=80)
        code, page = await _call(client, "GET", f"/events?target_group_arn={B}&limit=5")
        assert code == 200 and [e["target_id"] for e in page["events"]] == ["2"]
        for query in ("since=abc", "limit=abc", "listener_port=abc", "tg_arn=x"):
            for path in ("/events", "/events/stream"):
                code, answer = await _call(client, "GET", f"{path}?{query}")
                assert code == 400 and answer["error"], (path, query)

    _with_engine(body)


def test_connect_timeout_is_the_target_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """The data plane gives up connecting after the target's group's connect_timeout."""
    async def never(*args: Any, **kwargs: Any) -> Any:
        await asyncio.Event().wait()

    monkeypatch.setattr(proxy.asyncio, "open_connection", never)

    async def run() -> None:
        engine = engine_main.Engine(FakeAwsSettings(connect_timeout=300, dataplane_workers=1))
        engine.store.sync_groups([TargetGroupSpec(arn=A, in_use=True)])
        engine.store.set_overrides(A, {"connect_timeout": 0.05})
        engine.store.register(A, [("10.0.0.1", 80, None)])
        target = engine.store.targets[A][("10.0.0.1", 80)]
        listener = proxy.ListenerSpec(arn="l", port=1, default=rules.Forward(((A, 1),)))
        with pytest.raises(proxy.ElbError) as err:
            # Bounded by far less than the global 300 s: only the override ends it.
            await asyncio.wait_for(engine.dataplane._acquire(target, listener), 5)
        assert (err.value.status, err.value.reason) == (504, "connect_timeout")

    asyncio.run(run())


def test_latest_is_the_newest_seq_whatever_page_was_asked() -> None:
    log = _mixed_log()
    everything, _ = log.since(0)
    page, nxt = log.since(0, 2)
    assert nxt == everything[1]["seq"] < log.latest == everything[-1]["seq"]
    assert log.since(log.latest) == ([], log.latest)
    assert EventLog().latest == 0
