"""The engine process: target store, health checker, data plane and event log on one asyncio
loop, controlled by the API process over a loopback HTTP/JSON interface.

Run as `python -m testbed.fakeaws.engine --control-port 0 ...`; prints `READY <port>` on
stdout once serving, and exits when its stdin closes (the API process died or stopped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from typing import Any

from aiohttp import web

from testbed.fakeaws.config import EngineConfig
from testbed.fakeaws.dataplane.proxy import DataPlane, listener_specs
from testbed.fakeaws.events import EventLog
from testbed.fakeaws.health import HealthChecker
from testbed.fakeaws.store import HealthSettings, TargetGroupSpec, TargetStore

log = logging.getLogger("testbed.fakeaws.engine")


def group_specs(raw: list[dict[str, Any]]) -> list[TargetGroupSpec]:
    out = []
    for r in raw:
        h = r["health"]
        out.append(TargetGroupSpec(
            arn=r["arn"], name=r.get("name", ""), port=int(r.get("port") or 80),
            health=HealthSettings(
                enabled=bool(h["enabled"]), protocol=h["protocol"], port=str(h["port"]),
                path=h["path"], interval=float(h["interval"]), timeout=float(h["timeout"]),
                healthy_threshold=int(h["healthy_threshold"]),
                unhealthy_threshold=int(h["unhealthy_threshold"]), matcher=h["matcher"]),
            deregistration_delay=float(r.get("deregistration_delay", 300)),
            slow_start=float(r.get("slow_start", 0)),
            algorithm=r.get("algorithm", "round_robin"), in_use=bool(r.get("in_use"))))
    return out


class Engine:
    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        loop = asyncio.get_running_loop()
        self.events = EventLog(config.event_buffer)
        self.store = TargetStore(loop, self.events, config)
        self.checker = HealthChecker(self.store, config)
        self.dataplane = DataPlane(self.store, self.events, config)
        self._lock = asyncio.Lock()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        r = app.router
        r.add_post("/sync", self.sync)
        r.add_post("/register", self.register)
        r.add_post("/deregister", self.deregister)
        r.add_post("/describe", self.describe)
        r.add_get("/events", self.events_since)
        r.add_get("/events/stream", self.events_stream)
        r.add_get("/config", self.get_config)
        r.add_post("/config", self.set_config)
        r.add_post("/reset", self.reset)
        r.add_get("/healthz", self.healthz)
        r.add_get("/stats", self.stats)
        return app

    async def sync(self, req: web.Request) -> web.Response:
        body = await req.json()
        async with self._lock:
            self.store.sync_groups(group_specs(body["target_groups"]))
            await self.dataplane.sync(listener_specs(body["listeners"]))
        return web.json_response({"ok": True})

    async def register(self, req: web.Request) -> web.Response:
        body = await req.json()
        try:
            self.store.register(body["tg_arn"], [(t[0], int(t[1]), t[2]) for t in body["targets"]])
        except KeyError:
            return web.json_response({"error": "TargetGroupNotFound"}, status=404)
        return web.json_response({"ok": True})

    async def deregister(self, req: web.Request) -> web.Response:
        body = await req.json()
        try:
            self.store.deregister(body["tg_arn"], [(t[0], int(t[1])) for t in body["targets"]])
        except KeyError:
            return web.json_response({"error": "TargetGroupNotFound"}, status=404)
        return web.json_response({"ok": True})

    async def describe(self, req: web.Request) -> web.Response:
        body = await req.json()
        asked = body.get("targets")
        rows = self.store.describe(
            body["tg_arn"], [(t[0], t[1]) for t in asked] if asked else None)
        return web.json_response({"rows": rows})

    async def events_since(self, req: web.Request) -> web.Response:
        since = int(req.query.get("since", "0"))
        limit = int(req.query.get("limit", "10000"))
        evs, nxt = self.events.since(since, limit)
        return web.json_response({"events": evs, "next": nxt})

    async def events_stream(self, req: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(req)
        q = self.events.subscribe()
        await resp.write(b"\n")  # flush headers through the API process at once
        since = req.query.get("since")
        try:
            if since is not None:
                backlog, _ = self.events.since(int(since), 1_000_000)
                for old in backlog:
                    await resp.write(json.dumps(old).encode() + b"\n")
                last = backlog[-1]["seq"] if backlog else int(since)
            else:
                last = 0
            while True:
                ev: dict[str, Any] | None
                try:
                    async with asyncio.timeout(15):
                        ev = await q.get()
                except TimeoutError:
                    await resp.write(b"\n")  # keep-alive blank line; readers skip it
                    continue
                if ev is None:
                    break
                if ev["seq"] > last:
                    await resp.write(json.dumps(ev).encode() + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.events.unsubscribe(q)
        return resp

    async def get_config(self, req: web.Request) -> web.Response:
        return web.json_response(self.config.to_dict())

    async def set_config(self, req: web.Request) -> web.Response:
        try:
            self.config.update(await req.json())
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.events.emit("config", **{k: getattr(self.config, k) for k in
                                      ("register_delay", "deregister_delay", "connect_timeout")})
        return web.json_response(self.config.to_dict())

    async def reset(self, req: web.Request) -> web.Response:
        async with self._lock:
            self.checker.stop_all()
            self.store.reset()
            await self.dataplane.stop_all()
            self.events.clear()
            self.events.emit("reset")
        return web.json_response({"ok": True})

    async def healthz(self, req: web.Request) -> web.Response:
        return web.json_response({"ok": True, "listeners": len(self.dataplane.listeners)})

    async def stats(self, req: web.Request) -> web.Response:
        late = sorted(self.checker.lateness)
        if req.query.get("clear"):
            self.checker.lateness.clear()
        def pct(p: float) -> float | None:
            return late[min(len(late) - 1, int(p * len(late)))] if late else None
        rss_kb = 0
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss_kb = int(line.split()[1])
        return web.json_response({
            "checks": len(late), "lateness_p50": pct(0.5), "lateness_p99": pct(0.99),
            "lateness_max": late[-1] if late else None, "requests": self.dataplane.requests,
            "rss_kb": rss_kb, "pid": os.getpid(),
            "targets": sum(len(v) for v in self.store.targets.values())})


async def amain(args: argparse.Namespace) -> None:
    config = EngineConfig(listener_host=args.listener_host, register_delay=args.register_delay,
                          deregister_delay=args.deregister_delay,
                          min_health_check_interval=args.min_health_check_interval,
                          connect_timeout=args.connect_timeout)
    engine = Engine(config)
    runner = web.AppRunner(engine.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.control_port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"READY {port}", flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    if args.watch_stdin:
        def on_stdin() -> None:
            if not os.read(sys.stdin.fileno(), 4096):
                loop.remove_reader(sys.stdin.fileno())
                done.set()
        loop.add_reader(sys.stdin.fileno(), on_stdin)
    await done.wait()
    engine.checker.stop_all()
    await engine.dataplane.stop_all()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="testbed.fakeaws.engine")
    p.add_argument("--control-port", type=int, default=0)
    p.add_argument("--listener-host", default="127.0.0.1")
    p.add_argument("--register-delay", type=float, default=0.0)
    p.add_argument("--deregister-delay", type=float, default=0.0)
    p.add_argument("--min-health-check-interval", type=float, default=5.0)
    p.add_argument("--connect-timeout", type=float, default=10.0)
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="asyncio",
                   help="event loop: uvloop when installed (auto), or force one")
    p.add_argument("--no-watch-stdin", dest="watch_stdin", action="store_false")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.loop in ("auto", "uvloop"):
        try:
            import uvloop  # optional: roughly halves the data plane's per-request CPU
        except ImportError:
            if args.loop == "uvloop":
                raise
        else:
            uvloop.install()
    log.info("engine event loop policy=%s", type(asyncio.get_event_loop_policy()).__module__)
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
