"""The engine process's entry point and control API.

`python -m testbed.fakeaws.engine --control-port 0 [settings flags]` prints `READY <port>` on
stdout once its control API listens on 127.0.0.1, and exits when its stdin closes (the API
process stopped or died). Its settings flags are generated from testbed/fakeaws/settings.py.
With `--restore FILE --handover PATH` it starts from an old engine's checkpoint and listening
sockets (a restart, docs/fakeaws.md "Restart with state kept").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from testbed.fakeaws import settings as declared
from testbed.fakeaws import wire
from testbed.fakeaws.engine.dataplane import sockets
from testbed.fakeaws.engine.dataplane.proxy import CookieJar, DataPlane, ListenerSpec
from testbed.fakeaws.engine.dataplane.workers import WorkerPool
from testbed.fakeaws.engine.events import EventLog, QueryError, parse_query
from testbed.fakeaws.engine.health import HealthChecker
from testbed.fakeaws.engine.loop import install_loop
from testbed.fakeaws.engine.store import TargetGroupSpec, TargetStore
from testbed.fakeaws.settings import SCOPE_KEY, FakeAwsSettings, SettingsError

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, settings: FakeAwsSettings) -> None:
        self.settings = settings
        loop = asyncio.get_running_loop()
        self.events = EventLog()
        self.store = TargetStore(loop, self.events, settings)
        self.checker = HealthChecker(self.store, settings)
        # One data plane in this process, or worker processes (started by `start`).
        self.dataplane: DataPlane | WorkerPool = (
            DataPlane(self.store, self.events, settings) if settings.worker_count == 1
            else WorkerPool(self.store, self.events, settings, settings.worker_count))
        self._lock = asyncio.Lock()
        # A restart: the thread giving the listening sockets to the new engine, and the
        # drain of this (old) engine's connections once it no longer accepts.
        self._handover: asyncio.Future[None] | None = None
        self._handover_srv: Any = None
        self._drain: asyncio.Task[None] | None = None

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
        r.add_post("/checkpoint", self.checkpoint)
        r.add_post("/thaw", self.thaw)
        r.add_post("/retire", self.retire)
        r.add_post("/drained", self.drained)
        r.add_post("/events/import", self.import_events)
        return app

    # ---- restart: the old engine's side -------------------------------------------------------
    def _cookie_key(self) -> bytes:
        if isinstance(self.dataplane, WorkerPool):
            return self.dataplane.cookie_key
        return self.dataplane.cookies.key

    async def checkpoint(self, req: web.Request) -> web.Response:
        """Freeze the state (timers, health checks; the data plane goes on serving with the
        routing it has), write it for the new engine and offer it the listening sockets."""
        body: wire.CheckpointRequest = await req.json()
        async with self._lock:
            if self._handover is not None:
                return web.json_response({"error": "a checkpoint is already under way"},
                                         status=409)
            # One synchronous block: nothing changes between the dump and the freeze.
            state: dict[str, Any] = {
                "version": 1, "pid": os.getpid(), "dumped_at": time.time(),
                "runtime": self.settings.runtime_values(),
                "cookie_key": self._cookie_key().hex(),
                "store": self.store.dump(self.checker.next_check),
                "events": self.events.dump()}
            self.checker.stop_all()
            self.store.freeze()
            self.events.detach()
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(None, _write_json, body["state_file"], state)
                self._handover_srv = sockets.serve_handover(body["handover"])
            except OSError as exc:
                self._thaw()
                return web.json_response({"error": f"checkpoint failed: {exc}"}, status=500)
            self._handover = loop.run_in_executor(
                None, sockets.give_handover, self._handover_srv,
                self.dataplane.listening_sets(), 60.0)
        answer: wire.CheckpointAnswer = {
            "pid": os.getpid(), "target_groups": len(self.store.groups),
            "targets": len(state["store"]["targets"]), "events": len(state["events"]["events"]),
            "seq": self.events.latest}
        return web.json_response(answer)

    def _thaw(self) -> None:
        if self._handover_srv is not None:
            self._handover_srv.close()
            self._handover_srv = None
        self._handover = None
        self.store.thaw()
        self.events.attach()

    async def thaw(self, req: web.Request) -> web.Response:
        """The new engine did not come up: this one goes on as if nothing happened (timers
        that expired meanwhile fire now)."""
        async with self._lock:
            self._thaw()
        return web.json_response({"ok": True})

    async def retire(self, req: web.Request) -> web.Response:
        """The new engine serves: stop accepting (it accepts on the same sockets), then
        drain in the background."""
        body: wire.RetireRequest = await req.json()
        if self._handover is None:
            return web.json_response({"error": "no checkpoint"}, status=409)
        try:
            await self._handover  # the new engine holds every socket before we let go
        except OSError as exc:
            return web.json_response({"error": f"socket handover failed: {exc}"}, status=500)
        await self.dataplane.stop_accepting()
        self._drain = asyncio.get_running_loop().create_task(
            self.dataplane.drain(float(body["grace"]), float(body["limit"])))
        return web.json_response({"ok": True})

    async def drained(self, req: web.Request) -> web.Response:
        """Wait for the drain's end -> the events emitted since the checkpoint (the API gives
        them to the new engine, which numbers them)."""
        if self._drain is None:
            return web.json_response({"error": "not retiring"}, status=409)
        await self._drain
        return web.json_response({"events": self.events.take_tail()})

    # ---- restart: the new engine's side -------------------------------------------------------
    def restore(self, state: dict[str, Any]) -> wire.Carried:
        """Take over an old engine's checkpoint (before the control API serves)."""
        elapsed = max(0.0, time.time() - float(state["dumped_at"]))
        self.settings.apply_runtime(state["runtime"])
        events = self.events.load(state["events"])
        targets = self.store.load(state["store"], elapsed)
        carried: wire.Carried = {"target_groups": len(self.store.groups), "targets": targets,
                                 "events": events, "seq": self.events.latest}
        # (the checkpoint's seq under its own name: `seq` is the event's)
        self.events.emit("restart", old_pid=state["pid"], new_pid=os.getpid(),
                         checkpoint_age=round(elapsed, 3), checkpoint_seq=carried["seq"],
                         target_groups=carried["target_groups"], targets=targets,
                         events=events)
        return carried

    async def import_events(self, req: web.Request) -> web.Response:
        """Events the old engine emitted after its checkpoint, numbered here."""
        body = await req.json()
        for ev in body["events"]:
            self.events.emit(**ev)
        return web.json_response({"ok": True, "latest": self.events.latest})

    async def sync(self, req: web.Request) -> web.Response:
        snap: wire.Snapshot = await req.json()
        try:
            groups = [TargetGroupSpec.from_wire(g) for g in snap["target_groups"]]
            listeners = [ListenerSpec.from_wire(li) for li in snap["listeners"]]
        except (KeyError, TypeError, ValueError) as exc:
            return web.json_response({"error": f"bad snapshot: {exc!r}"}, status=400)
        async with self._lock:
            self.store.sync_groups(groups)
            failures = await self.dataplane.sync(listeners, snap)
        # The API process turns a bind failure into the error of the call that caused it.
        return web.json_response({"ok": not failures, "bind_failed": [
            {"listener_arn": f.listener_arn, "port": f.port, "host": f.host, "error": f.error}
            for f in failures]})

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
            body["tg_arn"], [(t[0], t[1]) for t in asked] if asked else None,
            caller=str(body.get("caller") or "other"))
        return web.json_response({"rows": rows})

    async def events_since(self, req: web.Request) -> web.Response:
        try:
            query = parse_query(req.query.items())
        except QueryError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        evs, nxt = self.events.since(query.since or 0, query.limit, query.filter)
        return web.json_response({"events": evs, "next": nxt, "latest": self.events.latest})

    async def events_stream(self, req: web.Request) -> web.StreamResponse:
        try:
            query = parse_query(req.query.items(), stream=True)
        except QueryError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        flt = query.filter
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(req)
        q = self.events.subscribe()
        await resp.write(b"\n")  # flush headers through the API process at once
        try:
            if query.since is not None:
                backlog, last = self.events.since(query.since, 1_000_000, flt)
                for old in backlog:
                    await resp.write(json.dumps(old).encode() + b"\n")
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
                if ev["seq"] > last and flt.matches(ev):
                    await resp.write(json.dumps(ev).encode() + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.events.unsubscribe(q)
        return resp

    def _config(self, tg_arn: str | None) -> dict[str, Any]:
        """GET /config's answer: every engine setting, or for one target group the same with
        its effective run-time values, plus its ARN and its own overrides."""
        values = self.settings.values_for("engine")
        if tg_arn is None:
            return values
        return {**values, **self.store.runtime_values(tg_arn), SCOPE_KEY: tg_arn,
                "overrides": dict(self.store.overrides.get(tg_arn, {}))}

    def _unknown_group(self, tg_arn: str) -> web.Response:
        return web.json_response(
            {"error": f"{SCOPE_KEY}: unknown target group (never created, deleted, or "
                      f"reset): {tg_arn}"}, status=404)

    async def get_config(self, req: web.Request) -> web.Response:
        arns = req.query.getall(SCOPE_KEY, [])
        if len(arns) > 1 or (arns and not arns[0].strip()):
            return web.json_response(
                {"error": f"{SCOPE_KEY}: expected one target group ARN"}, status=400)
        tg_arn = arns[0] if arns else None
        if tg_arn is not None and tg_arn not in self.store.groups:
            return self._unknown_group(tg_arn)
        return web.json_response(self._config(tg_arn))

    async def set_config(self, req: web.Request) -> web.Response:
        if SCOPE_KEY in req.query:
            # A POST meant for one group must not change the global values by mistake.
            return web.json_response(
                {"error": f"POST: put {SCOPE_KEY} in the JSON body, not in the query"},
                status=400)
        try:
            payload = await req.json()
        except ValueError as exc:
            return web.json_response({"error": f"body is not JSON: {exc}"}, status=400)
        try:
            tg_arn, update = declared.scoped_runtime_update(payload)
        except SettingsError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if tg_arn is None:
            self.settings.apply_runtime(update)
            self.dataplane.push_runtime()
            self.events.emit("config", **self.settings.runtime_values())
            return web.json_response(self._config(None))
        try:
            self.store.set_overrides(tg_arn, update)
        except KeyError:
            return self._unknown_group(tg_arn)
        self.dataplane.push_runtime()
        # tg_arn as in every other event about a group, so filtered readers see it too.
        self.events.emit("config", **self.store.runtime_values(tg_arn),
                         **{SCOPE_KEY: tg_arn, "tg_arn": tg_arn})
        return web.json_response(self._config(tg_arn))

    async def reset(self, req: web.Request) -> web.Response:
        async with self._lock:
            self.checker.stop_all()
            self.store.reset()
            await self.dataplane.stop_all()
            self.events.clear()
            self.events.emit("reset")
        return web.json_response({"ok": True})

    async def healthz(self, req: web.Request) -> web.Response:
        return web.json_response({"ok": True, "listeners": len(self.dataplane.listeners),
                                  "dataplane_workers": self.settings.worker_count})

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
        plane = await self.dataplane.stats()
        return web.json_response({
            "checks": len(late), "lateness_p50": pct(0.5), "lateness_p99": pct(0.99),
            "lateness_max": late[-1] if late else None, "requests": plane["requests"],
            "workers": plane["workers"], "rss_kb": rss_kb, "pid": os.getpid(),
            "targets": sum(len(v) for v in self.store.targets.values())})


async def amain(settings: FakeAwsSettings, control_port: int, restore: str | None = None,
                handover: str | None = None) -> None:
    engine = Engine(settings)
    state: dict[str, Any] | None = None
    if restore:
        state = json.loads(Path(restore).read_text())
        key = bytes.fromhex(state["cookie_key"])  # stickiness cookies stay valid
        if isinstance(engine.dataplane, WorkerPool):
            engine.dataplane.cookie_key = key
        else:
            engine.dataplane.cookies = CookieJar(key)
    if handover:
        # Before serving: the listeners start on these sockets when the API pushes /sync.
        engine.dataplane.adopted = sockets.take_handover(handover)
    if isinstance(engine.dataplane, WorkerPool):
        await engine.dataplane.start()
    if state is not None:
        engine.restore(state)  # after the workers started: routing sets are pushed to them
    runner = web.AppRunner(engine.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", control_port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"{wire.READY} {port}", flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_stdin() -> None:
        if not os.read(sys.stdin.fileno(), 4096):
            loop.remove_reader(sys.stdin.fileno())
            done.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    await done.wait()
    engine.checker.stop_all()
    await engine.dataplane.close()
    await runner.cleanup()


def parse_args(argv: list[str] | None = None) -> tuple[FakeAwsSettings, int]:
    ns = _parse(argv)
    return declared.from_namespace(ns, "engine"), ns.control_port


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m testbed.fakeaws.engine",
                                description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--control-port", type=int, default=0,
                   help="Loopback port of the control API (0: any free port).")
    p.add_argument(wire.RESTORE_FLAG, dest="restore", default=None,
                   help="Start from this checkpoint (JSON) of an old engine (a restart).")
    p.add_argument(wire.HANDOVER_FLAG, dest="handover", default=None,
                   help="Take the old engine's listening sockets from this Unix socket.")
    declared.add_arguments(p, "engine")
    return p.parse_args(argv)


def _write_json(path: str, obj: Any) -> None:
    tmp = Path(path + ".tmp")
    tmp.write_text(json.dumps(obj, separators=(",", ":")))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> None:
    ns = _parse(argv)
    settings = declared.from_namespace(ns, "engine")
    logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install_loop(settings)
    asyncio.run(amain(settings, ns.control_port, ns.restore, ns.handover))
