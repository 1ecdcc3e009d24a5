"""Methods, headers, Host, bodies and weighted mixes as a real HTTP server receives them."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from aiohttp import web

from testbed.loadgen.attack import AttackConfig, AttackResult, RequestSpec, attack, make_chooser

pytestmark = pytest.mark.integration
T = TypeVar("T")


@dataclass
class Seen:
    method: str
    path: str  # path and query as sent
    headers: list[tuple[str, str]]  # raw order and case
    body: bytes
    peer_port: int

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


async def _with_server(fn: Callable[[str, list[Seen]], Awaitable[T]]) -> tuple[T, list[Seen]]:
    """Run fn(base_url, seen) against an aiohttp server on 127.0.0.1 that records every request
    and answers 200 with a JSON body (which aiohttp leaves out, Content-Length kept, for HEAD)."""
    seen: list[Seen] = []

    async def handler(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        seen.append(Seen(request.method, request.path_qs,
                         [(k.decode("latin-1"), v.decode("latin-1"))
                          for k, v in request.raw_headers],
                         await request.read(), peer[1] if peer else 0))
        return web.json_response({"pod": "p1"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        return await fn(f"http://127.0.0.1:{runner.addresses[0][1]}", seen), seen
    finally:
        await runner.cleanup()


def _run(url_path: str = "/", **kw: object) -> tuple[AttackResult, list[Seen], str]:
    async def go(base: str, seen: list[Seen]) -> tuple[AttackResult, str]:
        cfg = AttackConfig(url=base + url_path, **{"rate": 100, "duration": 0.1, "timeout": 2,
                                                    **kw})  # type: ignore[arg-type]
        return await attack(cfg), base
    (res, base), seen = asyncio.run(_with_server(go))
    return res, seen, base


def test_default_get_is_the_url_path() -> None:
    res, seen, base = _run("/x/y?z=1")
    assert len(seen) == len(res.records) == 10 and all(r.ok for r in res.records)
    s = seen[0]
    assert (s.method, s.path, s.body) == ("GET", "/x/y?z=1", b"")
    assert s.header("Host") == [base.removeprefix("http://")]
    assert s.header("User-Agent") == ["testbed-loadgen"] and s.header("Content-Length") == []
    assert {r.req for r in res.records} == {0} and {r.pod for r in res.records} == {"p1"}


def test_post_with_body_headers_and_host() -> None:
    body = json.dumps({"item": "x" * 5000}).encode()  # more than one segment's worth
    res, seen, _ = _run("/ignored", host="api.example.com", requests=(RequestSpec(
        path="/items?v=2", method="POST", body=body,
        headers=(("Content-Type", "application/json"), ("X-Tenant", "t1"))),))
    assert all(r.ok for r in res.records) and len(seen) == 10
    for s in seen:
        assert (s.method, s.path, s.body) == ("POST", "/items?v=2", body)
        assert s.header("Host") == ["api.example.com"]
        assert s.header("Content-Length") == [str(len(body))]
        assert s.header("Content-Type") == ["application/json"]
        assert s.header("X-Tenant") == ["t1"]


def test_post_with_empty_body_announces_zero_length() -> None:
    res, seen, _ = _run(requests=(RequestSpec(path="/e", method="POST"),))
    assert all(r.ok for r in res.records)
    assert {(s.method, s.body, tuple(s.header("Content-Length"))) for s in seen} == {
        ("POST", b"", ("0",))}


def test_head_does_not_wait_for_a_body_and_keeps_the_connection() -> None:
    # aiohttp answers HEAD with the GET's Content-Length and no body: a client that waited for
    # the body would time out every request after 2 s
    res, seen, _ = _run(rate=50, duration=0.4, requests=(RequestSpec(path="/h", method="HEAD"),))
    assert len(res.records) == 20 and {r.cls for r in res.records} == {"ok"}
    assert max(r.latency for r in res.records) < 1.0
    assert {(s.method, s.path) for s in seen} == {("HEAD", "/h")}
    # sequential requests at 50 rps against a fast server reuse the connection
    assert len({s.peer_port for s in seen}) < len(seen)


def test_weighted_mix_sends_the_seeded_sequence() -> None:
    mix = (RequestSpec(path="/a", weight=3),
           RequestSpec(path="/b", method="POST", body=b"payload", weight=1))
    res, seen, _ = _run(rate=400, duration=1.0, seed=5, requests=mix)
    assert len(res.records) == len(seen) == 400 and all(r.ok for r in res.records)
    # exactly the chooser's sequence for this seed, in seq order
    choose = make_chooser([3.0, 1.0], 5)
    assert [r.req for r in res.records] == [choose() for _ in range(400)]
    by_path = Counter(s.path for s in seen)
    by_req = Counter(r.req for r in res.records)
    assert by_path == {"/a": by_req[0], "/b": by_req[1]}
    assert by_req[0] / 400 == pytest.approx(0.75, abs=0.07)  # ~3.3 binomial sd at n=400
    assert {(s.method, s.body) for s in seen if s.path == "/b"} == {("POST", b"payload")}
    assert {(s.method, s.body) for s in seen if s.path == "/a"} == {("GET", b"")}
    assert res.requests == mix


def test_cli_mix_with_headers_and_json(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from testbed.loadgen.cli import app
    body_file = tmp_path / "item.json"
    body_file.write_bytes(b'{"name":"n"}')
    out = tmp_path / "a.json"

    async def go(base: str, seen: list[Seen]) -> str:
        # the CLI runs its own event loop: give it a thread so this loop keeps serving
        r = await asyncio.to_thread(CliRunner().invoke, app, [
            "attack", "--url", base + "/ignored", "--rate", "100", "--duration", "0.5",
            "--timeout", "5", "-H", "Authorization: Bearer tok", "--host", "svc.local",
            "-r", "3 GET /list", "-r", f"1 PUT /item @{body_file}", "--json", str(out)])
        assert r.exit_code == 0, r.output
        return r.output

    output, seen = asyncio.run(_with_server(go))
    assert len(seen) == 50
    assert {(s.method, s.path) for s in seen} == {("GET", "/list"), ("PUT", "/item")}
    assert all(s.header("Authorization") == ["Bearer tok"] for s in seen)
    assert all(s.header("Host") == ["svc.local"] for s in seen)
    assert {s.body for s in seen if s.method == "PUT"} == {b'{"name":"n"}'}
    data = json.loads(out.read_text())
    assert [(q["method"], q["path"], q["weight"]) for q in data["requests"]] == [
        ("GET", "/list", 3.0), ("PUT", "/item", 1.0)]
    n_put = sum(s.method == "PUT" for s in seen)
    assert Counter(r["req"] for r in data["records"]) == {0: 50 - n_put, 1: n_put}
    assert "Requests by kind" in output and f"1 PUT /item: {n_put}, 0" in output
