"""Data-plane worker processes, run and fed by the engine (setting `dataplane_workers` > 1).

Each worker (worker.py) binds every listener port with SO_REUSEPORT, so the kernel spreads
client connections over the workers, and proxies with its own routing state (replica.py),
like the several nodes of one ALB. The engine keeps the single source of truth (store.py:
registrations, health checks, draining timers) and pushes changes to every worker as JSON
lines on its stdin, in order:

  sync {id, groups, listeners}   target groups (wire form) and listeners; acked with the
                                 listeners that could not bind
  routing {tg, targets}          a group's routing set: [id, port, slow_start_since]
  removed {key} / abort {key, reason}   key = [tg_arn, id, port]
  runtime {values, overrides}    run-time settings (connect_timeout)
  stop_all {id} / stats {id}     acked; stats with requests, rss_kb, pid

Workers send back acks and their events (elb_error, listener) as JSON lines on stdout; the
engine numbers the events in its own log.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import sys
import time
from typing import Any

from testbed.fakeaws import wire
from testbed.fakeaws.engine.dataplane.proxy import BindFailure, ListenerSpec
from testbed.fakeaws.engine.events import EventLog
from testbed.fakeaws.engine.store import Target, TargetStore
from testbed.fakeaws.settings import FakeAwsSettings, engine_argv

log = logging.getLogger(__name__)
WORKER_MODULE = "testbed.fakeaws.engine.dataplane.worker"
ACK_TIMEOUT = 30.0


class WorkerGone(RuntimeError):
    pass


class _Worker:
    def __init__(self, index: int, proc: asyncio.subprocess.Process) -> None:
        self.index = index
        self.proc = proc
        self.reader: asyncio.Task[None] | None = None


class WorkerPool:
    """The engine's handle on its data-plane workers (same interface as DataPlane)."""

    def __init__(self, store: TargetStore, events: EventLog, settings: FakeAwsSettings,
                 count: int) -> None:
        self.store = store
        self.events = events
        self.settings = settings
        self.count = count
        self.workers: list[_Worker] = []
        self.listeners: dict[str, ListenerSpec] = {}
        self._ids = itertools.count(1)
        # per request id, per worker index: the ack awaited
        self._acks: dict[int, dict[int, asyncio.Future[dict[str, Any]]]] = {}
        self._routing: dict[str, list[tuple[str, int, float | None]]] = {}
        store.on_routing = self._on_routing
        store.on_target_removed = self._on_removed
        store.on_abort = self._on_abort

    async def start(self) -> None:
        argv = ["--cookie-key", os.urandom(16).hex(), *engine_argv(self.settings)]
        for i in range(self.count):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", WORKER_MODULE, "--index", str(i), *argv,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                limit=64 * 1024 * 1024)
            assert proc.stdout is not None
            line = await proc.stdout.readline()
            if not line.startswith(b'{"ready"'):
                raise WorkerGone(f"data-plane worker {i} did not start: {line!r}")
            w = _Worker(i, proc)
            w.reader = asyncio.get_running_loop().create_task(self._read(w))
            self.workers.append(w)
        self.push_runtime()
        log.info("data-plane workers started count=%d pids=%s", self.count,
                 [w.proc.pid for w in self.workers])

    # ---- from workers --------------------------------------------------------------------
    async def _read(self, w: _Worker) -> None:
        assert w.proc.stdout is not None
        while line := await w.proc.stdout.readline():
            msg = json.loads(line)
            ev = msg.get("ev")
            if ev is not None:
                self.events.emit(ev.pop("kind"), **ev)
                continue
            fut = self._acks.get(msg.get("ack", -1), {}).get(w.index)
            if fut is not None and not fut.done():
                fut.set_result(msg)
        code = await w.proc.wait()
        if w in self.workers:  # not a shutdown: the others go on without it
            self.workers.remove(w)
            for futs in self._acks.values():  # what it will never answer
                fut = futs.get(w.index)
                if fut is not None and not fut.done():
                    fut.set_result({"failures": [], "requests": 0, "rss_kb": 0,
                                    "pid": w.proc.pid})
            log.error("data-plane worker exited index=%d pid=%d code=%s", w.index,
                      w.proc.pid, code)
            self.events.emit("worker_exited", index=w.index, pid=w.proc.pid, code=code)

    # ---- to workers ----------------------------------------------------------------------
    def _push(self, msg: dict[str, Any]) -> None:
        line = json.dumps(msg, separators=(",", ":")).encode() + b"\n"
        for w in self.workers:
            if w.proc.stdin is not None and not w.proc.stdin.is_closing():
                w.proc.stdin.write(line)

    async def _ask(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        """Send to every worker and wait for every ack."""
        n = next(self._ids)
        loop = asyncio.get_running_loop()
        futs = {w.index: loop.create_future() for w in self.workers}
        self._acks[n] = futs
        try:
            self._push({**msg, "id": n})
            async with asyncio.timeout(ACK_TIMEOUT):
                return list(await asyncio.gather(*futs.values()))
        finally:
            self._acks.pop(n, None)

    def _on_routing(self, tg_arn: str, chosen: list[Target]) -> None:
        # Slow-start starts in time.monotonic(), the clock the workers' pickers read (the
        # engine's loop clock may be uvloop's).
        shift = time.monotonic() - self.store.clock.time()
        entries = [(t.id, t.port, None if t.slow_start_since is None
                    else t.slow_start_since + shift) for t in chosen]
        if self._routing.get(tg_arn) == entries:
            return
        self._routing[tg_arn] = entries
        self._push({"op": "routing", "tg": tg_arn, "targets": entries})

    def _on_removed(self, t: Target) -> None:
        self._push({"op": "removed", "key": [t.tg_arn, t.id, t.port]})

    def _on_abort(self, t: Target, reason: str) -> None:
        self._push({"op": "abort", "key": [t.tg_arn, t.id, t.port], "reason": reason})

    def push_runtime(self) -> None:
        self._push({"op": "runtime", "values": self.settings.runtime_values(),
                    "overrides": self.store.overrides})

    # ---- the DataPlane interface ---------------------------------------------------------
    async def sync(self, specs: list[ListenerSpec], snap: wire.Snapshot) -> list[BindFailure]:
        for arn in [a for a in self._routing if a not in self.store.groups]:
            del self._routing[arn]
        acks = await self._ask({"op": "sync", "groups": snap["target_groups"],
                                "listeners": snap["listeners"]})
        # The same listener failing in several workers is one failure.
        failures = {f["listener_arn"]: BindFailure(**f) for a in acks for f in a["failures"]}
        self.listeners = {s.arn: s for s in specs if s.arn not in failures}
        self.push_runtime()
        return list(failures.values())

    async def stop_all(self) -> None:
        self._routing.clear()
        self.listeners.clear()
        if self.workers:
            await self._ask({"op": "stop_all"})

    async def stats(self) -> dict[str, Any]:
        acks = await self._ask({"op": "stats"}) if self.workers else []
        return {"requests": sum(a["requests"] for a in acks),
                "workers": [{k: a[k] for k in ("pid", "rss_kb", "requests")} for a in acks]}

    async def close(self) -> None:
        workers, self.workers = self.workers, []
        for w in workers:
            if w.proc.stdin is not None:
                w.proc.stdin.close()
        for w in workers:
            try:
                async with asyncio.timeout(10):
                    await w.proc.wait()
            except TimeoutError:
                w.proc.kill()
            if w.reader is not None:
                w.reader.cancel()

