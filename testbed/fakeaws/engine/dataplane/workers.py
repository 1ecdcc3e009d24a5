"""Data-plane worker processes, run and fed by the engine (setting `dataplane_workers` > 1).

The engine binds every listener port once per worker with SO_REUSEPORT (so the kernel
spreads client connections over the workers) and hands each worker its sockets over a Unix
socket (SCM_RIGHTS; holding them lets a restarted engine take them over, sockets.py); each
worker and proxies with its own routing state (replica.py),
like the several nodes of one ALB. The engine keeps the single source of truth (store.py:
registrations, health checks, draining timers) and pushes changes to every worker as JSON
lines on its stdin, in order:

  sync {id, groups, listeners}   target groups (wire form) and listeners (their sockets
                                 came first on the worker's fd channel); acked with the
                                 listeners that could not start
  routing {tg, targets}          a group's routing set: [id, port, slow_start_since]
  removed {key} / abort {key, reason}   key = [tg_arn, id, port]
  runtime {values, overrides}    run-time settings (connect_timeout)
  stop_all {id} / stats {id}     acked; stats with requests, rss_kb, pid
  retire {id, grace, limit}      stop accepting (acked), then drain (engine restart)
  drained {id}                   acked once the drain is over

Workers send back acks and their events (elb_error, listener) as JSON lines on stdout; the
engine numbers the events in its own log.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
import sys
import time
from typing import Any

from testbed.fakeaws import wire
from testbed.fakeaws.engine.dataplane import sockets
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
    def __init__(self, index: int, proc: asyncio.subprocess.Process,
                 chan: socket.socket) -> None:
        self.index = index
        self.proc = proc
        self.chan = chan  # SOCK_SEQPACKET: listening sockets to the worker
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
        # One key for all workers (and kept over a restart): a stickiness cookie made by one
        # is read by the others.
        self.cookie_key = os.urandom(16)
        # Per listener: where it binds and each worker's sockets (by worker index).
        self.socks: dict[str, tuple[sockets.Where, dict[int, sockets.SocketSet]]] = {}
        # Sockets a restarted engine got from the old one (one set per old worker).
        self.adopted: dict[sockets.Where, list[sockets.SocketSet]] = {}
        store.on_routing = self._on_routing
        store.on_target_removed = self._on_removed
        store.on_abort = self._on_abort

    async def start(self) -> None:
        argv = ["--cookie-key", self.cookie_key.hex(), *engine_argv(self.settings)]
        for i in range(self.count):
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", WORKER_MODULE, "--index", str(i),
                    "--fd-channel", str(theirs.fileno()), *argv,
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    limit=64 * 1024 * 1024, pass_fds=(theirs.fileno(),))
            finally:
                theirs.close()
            assert proc.stdout is not None
            line = await proc.stdout.readline()
            if not line.startswith(b'{"ready"'):
                raise WorkerGone(f"data-plane worker {i} did not start: {line!r}")
            w = _Worker(i, proc, mine)
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
        w.chan.close()
        if w in self.workers:  # not a shutdown: the others go on without it
            self.workers.remove(w)
            # Its sockets closed, the kernel stops giving it connections.
            for _, per in self.socks.values():
                sockets.close(per.pop(w.index, []))
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

    async def _ask(self, msg: dict[str, Any], timeout: float = ACK_TIMEOUT
                   ) -> list[dict[str, Any]]:
        """Send to every worker and wait for every ack."""
        n = next(self._ids)
        loop = asyncio.get_running_loop()
        futs = {w.index: loop.create_future() for w in self.workers}
        self._acks[n] = futs
        try:
            self._push({**msg, "id": n})
            async with asyncio.timeout(timeout):
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
        want = {s.arn: s for s in specs}
        for arn, (where, _) in list(self.socks.items()):
            if arn not in want or self._where(want[arn]) != where:
                self._close_listener(arn)
        # Every load balancer on one address (listener_addresses shared): a port is one
        # listener's; SO_REUSEPORT would otherwise let two share it.
        taken = {where: arn for arn, (where, _) in self.socks.items()}
        failures: dict[str, BindFailure] = {}
        for arn, spec in want.items():
            if arn in self.socks:
                continue
            host, port = where = self._where(spec)
            if where in taken:
                failures[arn] = BindFailure(arn, port, host, wire.PORT_TAKEN + taken[where])
                continue
            try:
                per, adopted = self._sockets(where)
            except (OSError, OverflowError) as exc:
                log.error("listener bind failed port=%s err=%s", port, exc)
                failures[arn] = BindFailure(arn, port, host, str(exc))
                self.events.emit("listener", action="bind_failed", listener_port=port,
                                 listener_arn=arn, host=host, error=str(exc))
                continue
            self.socks[arn] = (where, per)
            taken[where] = arn
            for w in self.workers:
                try:
                    sockets.send(w.chan, {"arn": arn, "adopted": adopted}, per[w.index])
                except OSError:
                    log.warning("worker %d took no sockets (gone?)", w.index)
        acks = await self._ask({"op": "sync", "groups": snap["target_groups"],
                                "listeners": [li for li in snap["listeners"]
                                              if li["arn"] not in failures]})
        # The same listener failing in several workers is one failure.
        for a in acks:
            for f in a["failures"]:
                failures.setdefault(f["listener_arn"], BindFailure(**f))
        for arn in failures:
            if arn in self.socks:
                self._close_listener(arn)
        self.listeners = {s.arn: s for s in specs if s.arn not in failures}
        self.push_runtime()
        return list(failures.values())

    def _where(self, spec: ListenerSpec) -> sockets.Where:
        return spec.host or self.settings.listen_on, spec.port

    def _sockets(self, where: sockets.Where) -> tuple[dict[int, sockets.SocketSet], bool]:
        """Each worker's sockets for a listener: the old engine's (a restart), else new
        ones -> (by worker index, adopted)."""
        old = self.adopted.pop(where, [])
        per: dict[int, sockets.SocketSet] = {}
        try:
            for i, w in enumerate(self.workers):
                per[w.index] = old[i] if i < len(old) else sockets.bind(*where, reuse_port=True)
        except BaseException:
            sockets.close(s for socks in per.values() for s in socks)
            raise
        sockets.close(s for extra in old[len(self.workers):] for s in extra)
        return per, bool(old)

    def _close_listener(self, arn: str) -> None:
        _, per = self.socks.pop(arn)
        sockets.close(s for socks in per.values() for s in socks)

    def listening_sets(self) -> dict[sockets.Where, list[sockets.SocketSet]]:
        return {where: [per[i] for i in sorted(per)] for where, per in self.socks.values()}

    async def stop_accepting(self) -> None:
        await self._ask({"op": "retire"})
        for arn in list(self.socks):  # the new engine has its own copies
            self._close_listener(arn)

    async def drain(self, grace: float, limit: float) -> None:
        await self._ask({"op": "drained", "grace": grace, "limit": limit},
                        timeout=limit + ACK_TIMEOUT)

    async def stop_all(self) -> None:
        self._routing.clear()
        self.listeners.clear()
        if self.workers:
            await self._ask({"op": "stop_all"})
        for arn in list(self.socks):
            self._close_listener(arn)

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
        for arn in list(self.socks):
            self._close_listener(arn)

