"""Demo app handlers and readiness logic, in-process (no sockets beyond aiohttp's test server)."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from typer.testing import CliRunner

from testbed.demoapp.cli import app as cli_app
from testbed.demoapp.config import DemoBehaviour, DemoConfig, DemoServe, env_for
from testbed.demoapp.server import DemoApp, log_event


def _with_client(cfg: DemoConfig, body: Callable[[DemoApp, TestClient], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        demo = DemoApp(cfg, hard_exit=lambda code: None)
        demo.listening_at = 0.0  # as if listening since the epoch of the monotonic clock
        async with TestClient(TestServer(demo.make_app())) as client:
            return await body(demo, client)
    return asyncio.run(go())


def test_root_reports_pod_and_version() -> None:
    async def body(demo: DemoApp, c: TestClient) -> None:
        r = await c.get("/")
        assert r.status == 200
        assert await r.json() == {"pod": "p-1", "version": "v7"}
    _with_client(DemoConfig(pod="p-1", version="v7"), body)


def test_api_paths_answer_as_root_other_paths_stay_404() -> None:
    """Ingress path rules can route /api to the app; a path it lacks (the wrong health check
    path of e2e's wrong-health-path) stays 404; /ready stays the probe."""
    async def body(demo: DemoApp, c: TestClient) -> None:
        for path in ("/api", "/api/items?x=1"):
            r = await c.get(path)
            assert r.status == 200 and await r.json() == {"pod": "p-2", "version": "v1"}
        assert (await c.get("/health")).status == 404
        assert (await c.get("/apix")).status == 404
        await c.post("/admin/ready?value=false")
        assert (await c.get("/ready")).status == 503
        assert demo.served == 2
    _with_client(DemoConfig(pod="p-2", version="v1"), body)


def test_pod_and_version_come_from_env(monkeypatch: Any) -> None:
    monkeypatch.setenv("POD_NAME", "demo-abc")
    monkeypatch.setenv("APP_VERSION", "v2")
    cfg = DemoConfig()
    assert (cfg.pod, cfg.version) == ("demo-abc", "v2")


def test_ready_toggles_at_runtime() -> None:
    async def body(demo: DemoApp, c: TestClient) -> None:
        assert (await c.get("/ready")).status == 200
        assert (await c.post("/admin/ready?value=false")).status == 200
        assert (await c.get("/ready")).status == 503
        assert (await c.post("/admin/ready?value=auto")).status == 200
        assert (await c.get("/ready")).status == 200
        assert (await c.post("/admin/ready?value=maybe")).status == 400
    _with_client(DemoConfig(), body)


def test_ready_after_delay_and_terminating() -> None:
    demo = DemoApp(DemoConfig(DemoServe(readyAfterSeconds=600)))
    assert not demo.is_ready()  # not listening yet
    demo.listening_at = 1e12  # listening "now" in the far future: ready_after not elapsed
    assert not demo.is_ready()
    demo.ready_override = True
    assert demo.is_ready()
    demo.terminating = True
    assert not demo.is_ready()


def test_health_code_flag_and_admin() -> None:
    async def body(demo: DemoApp, c: TestClient) -> None:
        assert (await c.get("/healthz")).status == 503
        assert (await c.post("/admin/health?code=200")).status == 200
        assert (await c.get("/healthz")).status == 200
        assert (await c.post("/admin/health?code=abc")).status == 400
        assert (await c.post("/admin/health?code=999")).status == 400
        state = await (await c.get("/admin/state")).json()
        assert state["health_code"] == 200
    _with_client(DemoConfig(DemoServe(healthCode=503)), body)


def test_latency_is_applied_per_request() -> None:
    async def body(demo: DemoApp, c: TestClient) -> float:
        loop = asyncio.get_running_loop()
        t = loop.time()
        assert (await c.get("/?latency_ms=50")).status == 200
        return loop.time() - t
    assert _with_client(DemoConfig(), body) >= 0.05


def test_sigterm_modes_in_process() -> None:
    exits: list[int] = []
    demo = DemoApp(DemoConfig(DemoServe(onSigterm="exit")), hard_exit=exits.append)
    demo.on_sigterm()
    assert exits == [0]
    demo = DemoApp(DemoConfig(DemoServe(onSigterm="ignore")), hard_exit=exits.append)
    demo.on_sigterm()
    assert exits == [0] and not demo._stop.is_set()
    demo = DemoApp(DemoConfig(DemoServe(onSigterm="drain")), hard_exit=exits.append)
    demo.on_sigterm()
    assert demo._stop.is_set() and exits == [0]


def test_log_event_is_one_json_line_with_timestamp() -> None:
    buf = io.StringIO()
    log_event("listening", stream=buf, port=8080)
    rec = json.loads(buf.getvalue())
    assert rec["event"] == "listening" and rec["port"] == 8080
    assert rec["ts"] > 1e9 and rec["time"].endswith("+00:00")


def test_every_knob_has_an_env_var() -> None:
    out = CliRunner().invoke(cli_app, ["serve", "--help"], env={"COLUMNS": "200"}).output
    for name in DemoServe.model_fields:
        assert "--" + name.replace("_", "-") in out
        assert "DEMO_" + name.upper() in out


def test_cli_refuses_out_of_range_values() -> None:
    r = CliRunner().invoke(cli_app, ["serve", "--health-code", "700"])
    assert r.exit_code == 2 and "health_code" in r.output.replace("healthCode", "health_code")


def test_env_for_covers_every_behaviour_knob() -> None:
    env = env_for(DemoBehaviour(keepAliveTimeoutSeconds=3))
    assert set(env) == {"DEMO_" + n.upper() for n in DemoBehaviour.model_fields}
    assert env["DEMO_KEEP_ALIVE_TIMEOUT_SECONDS"] == "3.0" and env["DEMO_ON_SIGTERM"] == "drain"


def test_ready_turns_unready_after_unready_after_seconds() -> None:
    demo = DemoApp(DemoConfig(DemoServe(unreadyAfterSeconds=30)))
    demo.listening_at = time.monotonic() - 29
    assert demo.is_ready()
    demo.listening_at = time.monotonic() - 31
    assert not demo.is_ready()


def test_healthz_fails_after_unhealthy_after_seconds_while_ready_stays() -> None:
    demo = DemoApp(DemoConfig(DemoServe(unhealthyAfterSeconds=30)))

    def code() -> int:
        return asyncio.run(demo.healthz(None)).status  # type: ignore[arg-type]

    demo.listening_at = time.monotonic() - 29
    assert code() == 200
    demo.listening_at = time.monotonic() - 31
    assert code() == 503 and demo.is_ready()


def test_liveness_toggles_and_crash_exits_after_answering() -> None:
    """/admin/live/false makes /live fail (a liveness probe then has the kubelet restart the
    container); /admin/crash answers, then exits 137 like a killed process."""
    exits: list[int] = []

    async def body(demo: DemoApp, c: TestClient) -> None:
        demo._hard_exit = exits.append
        assert (await c.get("/live")).status == 200
        assert (await c.post("/admin/live/false")).status == 200
        assert (await c.get("/live")).status == 503
        assert (await (await c.get("/admin/state")).json())["live"] is False
        assert (await c.post("/admin/live/maybe")).status == 400
        assert (await c.post("/admin/live/auto")).status == 200
        assert (await c.get("/live")).status == 200
        assert (await c.post("/admin/crash")).status == 200
        assert exits == []  # not before the answer
        for _ in range(100):
            if exits:
                break
            await asyncio.sleep(0.01)
        assert exits == [137]
    _with_client(DemoConfig(), body)
