"""The demo HTTP server and its lifecycle (start-up delay, readiness, SIGTERM handling).

It binds its own listening socket rather than using aiohttp's sites so that "stop accepting"
during a drain is a plain close of the listener while open connections keep being served.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from aiohttp import web

from testbed.demoapp.config import DemoConfig, OnSigterm


def log_event(event: str, stream: TextIO | None = None, **fields: Any) -> None:
    """One JSON line per lifecycle step, so a runner can line them up with ALB events."""
    now = time.time()
    iso = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
    record = {"ts": round(now, 4), "time": iso, "event": event, **fields}
    out = stream or sys.stdout
    out.write(json.dumps(record) + "\n")
    out.flush()


class DemoApp:
    """State shared by the handlers and the lifecycle code."""

    def __init__(self, cfg: DemoConfig, hard_exit: Callable[[int], None] = os._exit) -> None:
        self.cfg = cfg
        self.health_code = cfg.settings.health_code
        self.ready_override: bool | None = None
        self.live = True
        self.listening_at: float | None = None
        self.terminating = False
        self.in_flight = 0
        self.served = 0
        self._hard_exit = hard_exit
        self._stop = asyncio.Event()
        self._sigterm = asyncio.Event()
        self._idle = asyncio.Event()
        self.bound_port: int | None = None

    # ---- request handlers -------------------------------------------------------------
    def is_ready(self) -> bool:
        """Ready once ready_after has passed since listening, unless overridden or stopping."""
        if self.terminating or self.listening_at is None:
            return False
        if self.ready_override is not None:
            return self.ready_override
        up = time.monotonic() - self.listening_at
        unready_after = self.cfg.settings.unready_after_seconds
        if unready_after and up >= unready_after:
            return False
        return up >= self.cfg.settings.ready_after_seconds

    async def root(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        try:
            latency = float(request.query.get("latency_ms", self.cfg.settings.latency_ms))
            if latency > 0:
                await asyncio.sleep(latency / 1000.0)
            self.served += 1
            return web.json_response({"pod": self.cfg.pod, "version": self.cfg.version})
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self._idle.set()

    async def ready(self, request: web.Request) -> web.Response:
        ok = self.is_ready()
        return web.json_response({"ready": ok}, status=200 if ok else 503)

    async def healthz(self, request: web.Request) -> web.Response:
        warm_up = self.cfg.settings.healthy_after_seconds
        up = None if self.listening_at is None else time.monotonic() - self.listening_at
        warming = up is None or up < warm_up
        fail_after = self.cfg.settings.unhealthy_after_seconds
        failed = fail_after > 0 and up is not None and up >= fail_after
        code = 503 if (warming and warm_up > 0) or failed else self.health_code
        return web.json_response({"code": code}, status=code)

    async def admin_ready(self, request: web.Request) -> web.Response:
        value = (request.match_info.get("value") or request.query.get("value", "true")).lower()
        if value not in ("true", "false", "auto"):
            raise web.HTTPBadRequest(text="value must be true, false or auto")
        self.ready_override = None if value == "auto" else value == "true"
        log_event("admin_ready", value=value)
        return web.json_response({"ready": self.is_ready()})

    async def liveness(self, request: web.Request) -> web.Response:
        return web.json_response({"live": self.live}, status=200 if self.live else 503)

    async def admin_live(self, request: web.Request) -> web.Response:
        """`false`: /live answers 503, so a liveness probe has the kubelet restart the
        container (preStop hook, SIGTERM, grace period; no deletion timestamp)."""
        value = request.match_info["value"].lower()
        if value not in ("false", "auto"):
            raise web.HTTPBadRequest(text="value must be false or auto")
        self.live = value == "auto"
        log_event("admin_live", value=value)
        return web.json_response({"live": self.live})

    async def admin_crash(self, request: web.Request) -> web.Response:
        """The process dies at once, as on an OOM kill or a crash: no preStop hook, no SIGTERM,
        in-flight requests cut. Exits just after this answer, so the caller learns it worked."""
        log_event("exit", code=137, reason="crash", in_flight=self.in_flight)
        asyncio.get_running_loop().call_later(0.05, self._hard_exit, 137)
        return web.json_response({"crashing": True})

    async def admin_health(self, request: web.Request) -> web.Response:
        try:
            code = int(request.query.get("code", "200"))
        except ValueError:
            raise web.HTTPBadRequest(text="code must be an integer") from None
        if not 100 <= code <= 599:
            raise web.HTTPBadRequest(text="code must be 100-599")
        self.health_code = code
        log_event("admin_health", code=code)
        return web.json_response({"code": code})

    async def admin_state(self, request: web.Request) -> web.Response:
        return web.json_response({
            "ready": self.is_ready(), "live": self.live, "health_code": self.health_code,
            "terminating": self.terminating, "in_flight": self.in_flight, "served": self.served,
        })

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.root)
        app.router.add_get("/ready", self.ready)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_post("/admin/ready", self.admin_ready)
        # the value in the path too: the API server's pod proxy passes no query string
        app.router.add_post("/admin/ready/{value}", self.admin_ready)
        app.router.add_post("/admin/health", self.admin_health)
        app.router.add_get("/live", self.liveness)
        app.router.add_post("/admin/live/{value}", self.admin_live)
        app.router.add_post("/admin/crash", self.admin_crash)
        app.router.add_get("/admin/state", self.admin_state)
        # /api and below answer as / does, so Ingress path rules have a second path to aim
        # at; any other path stays 404 (scenarios rely on a health check path it lacks)
        app.router.add_get("/api", self.root)
        app.router.add_get("/api/{path:.*}", self.root)
        return app

    # ---- lifecycle ----------------------------------------------------------------------
    def request_stop(self) -> None:
        """Clean stop (SIGINT, tests): drain with the configured timeout."""
        self._stop.set()

    def on_sigterm(self) -> None:
        mode = OnSigterm(self.cfg.settings.on_sigterm)
        log_event("sigterm", mode=mode.value, in_flight=self.in_flight)
        if mode is OnSigterm.ignore:
            return
        if mode is OnSigterm.exit:
            log_event("exit", code=0, reason="sigterm", in_flight=self.in_flight)
            self._hard_exit(0)
            return
        self._sigterm.set()
        self._stop.set()

    async def run(self) -> int:
        """Serve until stopped; returns the process exit code."""
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        # handlers first: as PID 1 in a container an unhandled SIGTERM would be ignored
        for sig, cb in ((signal.SIGTERM, self.on_sigterm), (signal.SIGINT, self.request_stop)):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, cb)  # fails off the main thread (tests)
        log_event("starting", pod=cfg.pod, version=cfg.version, config=_cfg_dict(cfg))
        if cfg.settings.startup_delay_seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), cfg.settings.startup_delay_seconds)
            if self._stop.is_set():
                log_event("exit", code=0, reason="stopped during start-up")
                return 0
        runner = web.AppRunner(self.make_app(), access_log=None,
                               keepalive_timeout=cfg.settings.keep_alive_timeout_seconds)
        await runner.setup()
        assert runner.server is not None
        server = await loop.create_server(runner.server, cfg.settings.host, cfg.settings.port,
                                          reuse_address=True, backlog=1024)
        self.bound_port = server.sockets[0].getsockname()[1]
        self.listening_at = time.monotonic()
        log_event("listening", port=self.bound_port,
                  ready_after=cfg.settings.ready_after_seconds)
        if cfg.settings.ready_after_seconds > 0 and self.ready_override is None:
            loop.call_later(cfg.settings.ready_after_seconds, self._log_ready)
        await self._stop.wait()
        self.terminating = True
        server.close()
        log_event("listener_closed", in_flight=self.in_flight)
        started = time.monotonic()
        # Ask every connection to close once idle: idle keep-alive ones close now (like Go's
        # Server.Shutdown), busy ones right after their response.
        for conn in list(runner.server.connections):
            conn.close()
        if self.in_flight:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), cfg.settings.drain_seconds)
        await runner.server.shutdown(0.1)
        log_event("drained", in_flight=self.in_flight,
                  seconds=round(time.monotonic() - started, 3))
        await runner.cleanup()
        log_event("exit", code=0, reason="sigterm" if self._sigterm.is_set() else "stop")
        return 0

    def _log_ready(self) -> None:
        if self.is_ready():
            log_event("ready_after_elapsed")


def _cfg_dict(cfg: DemoConfig) -> dict[str, Any]:
    return cfg.settings.model_dump()
