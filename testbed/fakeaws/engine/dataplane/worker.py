"""A data-plane worker process (one ALB node); the engine's WorkerPool (workers.py) runs them.

    python -m testbed.fakeaws.engine.dataplane.worker --index I --fd-channel FD [flags]

Commands arrive as JSON lines on stdin (see workers.py for each `op`); acks and events leave
as JSON lines on stdout; listening sockets arrive on the Unix socket FD (SCM_RIGHTS), each
message before the `sync` line that uses it. The process exits when stdin closes (the
engine stopped or died).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
import time
from dataclasses import asdict
from typing import Any

from testbed.fakeaws import settings as declared
from testbed.fakeaws.engine.dataplane import sockets
from testbed.fakeaws.engine.dataplane.proxy import CookieJar, DataPlane, ListenerSpec
from testbed.fakeaws.engine.dataplane.replica import Replica
from testbed.fakeaws.engine.loop import install_loop
from testbed.fakeaws.settings import FakeAwsSettings

log = logging.getLogger(__name__)
LINE_LIMIT = 256 * 1024 * 1024  # one sync line carries every listener and target group


class PipeEvents:
    """The data plane's event log in a worker: each event goes to the engine, which numbers
    it in its own log (the time stays the worker's)."""

    def __init__(self, out: asyncio.WriteTransport) -> None:
        self.out = out

    def emit(self, kind: str, **fields: Any) -> None:
        send(self.out, {"ev": {"kind": kind, "ts": time.time(), **fields}})


def send(out: asyncio.WriteTransport, msg: dict[str, Any]) -> None:
    out.write(json.dumps(msg, separators=(",", ":")).encode() + b"\n")


def rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Worker:
    def __init__(self, settings: FakeAwsSettings, index: int, cookie_key: bytes,
                 out: asyncio.WriteTransport, chan: socket.socket) -> None:
        self.replica = Replica()
        self.out = out
        self.chan = chan
        self.given: dict[str, tuple[sockets.SocketSet, bool]] = {}
        self.plane = DataPlane(self.replica, PipeEvents(out), settings, reuse_port=True,
                               announce=index == 0)
        self.plane.sockets_for = self._sockets_for
        # One key for all workers: a stickiness cookie made by one is read by the others.
        self.plane.cookies = CookieJar(cookie_key)

    def _sockets_for(self, arn: str, host: str, port: int) -> tuple[sockets.SocketSet, bool]:
        for meta, socks in sockets.receive_ready(self.chan):
            assert isinstance(meta, dict)
            self.given[str(meta["arn"])] = (socks, bool(meta["adopted"]))
        got = self.given.pop(arn, None)
        if got is None:
            raise OSError(f"no listening socket from the engine for {host}:{port}")
        return got

    async def handle(self, msg: dict[str, Any]) -> None:
        op = msg["op"]
        r = self.replica
        if op == "routing":
            r.set_routing(msg["tg"], msg["targets"])
        elif op == "removed":
            r.removed(tuple(msg["key"]))  # type: ignore[arg-type]
        elif op == "abort":
            r.abort(tuple(msg["key"]), msg["reason"])  # type: ignore[arg-type]
        elif op == "runtime":
            r.set_runtime(msg["values"], msg["overrides"])
        elif op == "sync":
            r.set_groups(msg["groups"])
            failures = await self.plane.sync(
                [ListenerSpec.from_wire(li) for li in msg["listeners"]])
            send(self.out, {"ack": msg["id"], "failures": [asdict(f) for f in failures]})
        elif op == "stop_all":
            await self.plane.stop_all()
            r.set_groups([])
            send(self.out, {"ack": msg["id"]})
        elif op == "retire":
            await self.plane.stop_accepting()
            send(self.out, {"ack": msg["id"]})
        elif op == "drained":
            await self.plane.drain(float(msg["grace"]), float(msg["limit"]))
            send(self.out, {"ack": msg["id"]})
        elif op == "stats":
            send(self.out, {"ack": msg["id"], "requests": self.plane.requests,
                            "rss_kb": rss_kb(), "pid": os.getpid()})
        else:
            log.error("unknown op from the engine: %r", op)


async def amain(settings: FakeAwsSettings, index: int, cookie_key: bytes, chan_fd: int
                ) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(1, "wb", buffering=0))
    chan = socket.socket(fileno=chan_fd)
    chan.setblocking(False)
    worker = Worker(settings, index, cookie_key, out, chan)
    send(out, {"ready": os.getpid()})
    while line := await reader.readline():
        await worker.handle(json.loads(line))
    await worker.plane.stop_all()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m testbed.fakeaws.engine.dataplane.worker",
                                description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--index", type=int, default=0, help="Worker number (0 announces "
                   "listener events).")
    p.add_argument("--fd-channel", type=int, required=True,
                   help="Inherited Unix socket the engine sends listening sockets on.")
    p.add_argument("--cookie-key", default=os.urandom(16).hex(),
                   help="Hex key signing stickiness cookies (the same in every worker).")
    declared.add_arguments(p, "engine")
    ns = p.parse_args(argv)
    settings = declared.from_namespace(ns, "engine")
    logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s worker{ns.index} %(name)s "
                               "%(message)s")
    install_loop(settings)
    asyncio.run(amain(settings, ns.index, bytes.fromhex(ns.cookie_key), ns.fd_channel))


if __name__ == "__main__":
    main()
