"""The load generator against real loopback servers, including misbehaving ones."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from aiohttp import web

from testbed.loadgen.attack import AttackConfig, attack, run_attack
from testbed.loadgen.summary import summarize
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def server() -> Iterator[Callable[[str], int]]:
    procs: list[subprocess.Popen[str]] = []

    def start(mode: str) -> int:
        p = subprocess.Popen([sys.executable, "-m", "testbed.loadgen.testing", "--mode", mode],
                             stdout=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stdout is not None
        return int(p.stdout.readline())
    yield start
    for p in procs:
        p.kill()
        p.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ok_server_all_succeed_at_rate(server: Callable[[str], int]) -> None:
    port = server("ok")
    res = run_attack(AttackConfig(url=f"http://127.0.0.1:{port}/", rate=200, duration=1.0,
                                  timeout=5))
    s = summarize(res.records)
    assert s.requests == 200 and s.errors == 0 and s.pods == {"bench": 200}
    assert [r.seq for r in res.records] == list(range(200))
    gaps = {round(b.intended - a.intended, 6) for a, b in zip(res.records, res.records[1:],
                                                              strict=False)}
    assert gaps == {0.005}  # scheduled by intended time, never by completion
    assert all(r.started >= r.intended - 1e-6 for r in res.records)


def test_refused(server: Callable[[str], int]) -> None:
    res = run_attack(AttackConfig(url=f"http://127.0.0.1:{_free_port()}/", rate=50,
                                  duration=0.2, timeout=5))
    assert {r.cls for r in res.records} == {"conn_refused"}
    assert {r.status for r in res.records} == {0}


@pytest.mark.parametrize(("mode", "cls"), [("reset", "conn_reset"), ("close", "conn_closed"),
                                           ("status:503", "503")])
def test_error_classes(server: Callable[[str], int], mode: str, cls: str) -> None:
    port = server(mode)
    res = run_attack(AttackConfig(url=f"http://127.0.0.1:{port}/", rate=50, duration=0.2,
                                  timeout=5))
    assert {r.cls for r in res.records} == {cls}


def test_timeout(server: Callable[[str], int]) -> None:
    port = server("hang")
    res = run_attack(AttackConfig(url=f"http://127.0.0.1:{port}/", rate=20, duration=0.2,
                                  timeout=0.3))
    assert {r.cls for r in res.records} == {"timeout"}
    assert min(r.latency for r in res.records) >= 0.3


def test_chunked_body_header_and_stop_event() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=502, headers={"x-testbed-elb-error": "target_reset"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(b'{"pod": ')
        await resp.write(b'"p9"}')
        await resp.write_eof()
        return resp

    async def go() -> tuple[int, set[str], set[str | None], set[str | None]]:
        app = web.Application()
        app.router.add_get("/", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        stop = asyncio.Event()
        seen: list[int] = []

        def on_record(r: object) -> None:
            seen.append(1)
            if len(seen) >= 5:
                stop.set()
        try:
            res = await attack(AttackConfig(url=f"http://127.0.0.1:{port}/?x=1", rate=100,
                                            duration=30, timeout=5), stop=stop,
                               on_record=on_record)
        finally:
            await runner.cleanup()
        return (len(res.records), {r.cls for r in res.records},
                {r.elb_error for r in res.records}, {r.pod for r in res.records})

    n, classes, elb, pods = asyncio.run(go())
    assert n < 3000  # the stop event ended a 30 s attack early
    assert classes == {"502"} and elb == {"target_reset"} and pods == {"p9"}


def test_cli_attack_writes_json(server: Callable[[str], int], tmp_path: object) -> None:
    import json
    from pathlib import Path

    from typer.testing import CliRunner

    from testbed.loadgen.cli import app
    port = server("ok")
    out = Path(str(tmp_path)) / "a.json"
    r = CliRunner().invoke(app, ["attack", "--url", f"http://127.0.0.1:{port}/", "--rate", "50",
                                 "--duration", "0.2", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "Requests      [total, rate, throughput]         10," in r.output
    data = json.loads(out.read_text())
    assert data["summary"]["requests"] == 10 and len(data["records"]) == 10


def test_background_attack_stops_on_request(server: Callable[[str], int]) -> None:

    from testbed.loadgen.attack import BackgroundAttack
    port = server("ok")
    n: list[int] = []
    bg = BackgroundAttack(AttackConfig(url=f"http://127.0.0.1:{port}/", rate=100, duration=60,
                                       timeout=5), on_record=lambda r: n.append(1)).start()
    wait_until(lambda: len(n) >= 10, 10, "10 responses")
    bg.stop()
    res = bg.result(timeout=10)
    assert 0 < len(res.records) < 6000 and all(r.ok for r in res.records)


def test_background_attack_reports_bad_config() -> None:
    from testbed.loadgen.attack import BackgroundAttack
    bg = BackgroundAttack(AttackConfig(url="https://x/", rate=1, duration=1)).start()
    with pytest.raises(ValueError, match="only http://"):
        bg.result(timeout=10)


@pytest.mark.parametrize(("mode", "allowed"), [
    ("exit", {"ok", "conn_refused", "conn_reset", "conn_closed"}),
    ("drain", {"ok", "conn_refused", "conn_closed", "conn_reset"}),
])
def test_demo_app_sigterm_under_load(mode: str, allowed: set[str]) -> None:
    """Load through a SIGTERM: errors start only after the signal and are classified."""
    import json
    import signal
    import time

    from testbed.loadgen.attack import BackgroundAttack
    proc = subprocess.Popen(
        [sys.executable, "-m", "testbed.demoapp", "serve", "--host", "127.0.0.1", "--port", "0",
         "--on-sigterm", mode, "--drain-seconds", "1", "--latency-ms", "20"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = next(json.loads(line)["port"] for line in proc.stdout
                    if '"listening"' in line)
        oks: list[int] = []
        bg = BackgroundAttack(AttackConfig(url=f"http://127.0.0.1:{port}/", rate=100,
                                           duration=3, timeout=5),
                              on_record=lambda r: oks.append(1) if r.ok else None).start()
        wait_until(lambda: len(oks) >= 30, 10, "load flowing before the signal")
        t_sig = time.time()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        res = bg.result(timeout=20)
        classes = {r.cls for r in res.records}
        assert classes <= allowed, sorted(classes)
        assert "conn_refused" in classes  # the listener is gone after exit/drain
        assert all(r.intended + r.latency >= t_sig - 0.05 for r in res.records if not r.ok)
        assert sum(r.ok for r in res.records) > 20
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
