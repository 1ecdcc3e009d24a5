"""Test double: a small programmable HTTP/1.1 target server for the fake AWS's integration
tests (tests/integration/fakeaws) and benchmark (bench/fakeaws_bench.py). Not used by the
fake AWS itself.

Real sockets, real TCP behaviour; the path picks the behaviour so a test can create each
failure's actual cause:
  /health        200, or `health_status`, after `health_delay` seconds
  /slow?s=X      answer after X seconds
  /close         read the request, then close (FIN) without answering
  /reset         read the request, then reset the connection (RST)
  /race          answer 200 keep-alive, then close this connection when the NEXT request on it
                 arrives: the keep-alive race a target with a short keep-alive timeout creates
  anything else  200 "ok <port>"
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    ts: float
    conn_id: int


@dataclass
class TargetServer:
    host: str = "127.0.0.1"
    port: int = 0
    health_status: int = 200
    health_delay: float = 0.0
    requests: list[Seen] = field(default_factory=list)
    health_checks: list[Seen] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.base_events.Server | None = None
    _thread: threading.Thread | None = None
    _conn_ids: int = 0
    in_flight: int = 0
    record: bool = True

    def start(self) -> TargetServer:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, self.port, backlog=1024))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name=f"target-{self.port}")
        self._thread.start()
        ready.wait(10)
        return self

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self) -> None:
        if self._loop is None or self._server is None:
            return
        loop, server = self._loop, self._server

        async def close() -> None:
            server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread:
            self._thread.join(5)
        self._loop = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conn_ids += 1
        cid = self._conn_ids
        doomed = False
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                n = int(headers.get("content-length", "0") or 0)
                if n:
                    await reader.readexactly(n)
                path, _, query = target.partition("?")
                seen = Seen(path, headers, time.time(), cid)
                if doomed:
                    return  # close as the next request arrives (keep-alive race)
                if path == "/health":
                    if self.record:
                        self.health_checks.append(seen)
                    if self.health_delay:
                        await asyncio.sleep(self.health_delay)
                    self._reply(writer, self.health_status, b"health", close=True)
                    await writer.drain()
                    return
                if self.record:
                    self.requests.append(seen)
                if path == "/close":
                    return
                if path == "/reset":
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                if path == "/slow":
                    secs = float(query.split("=", 1)[1]) if "=" in query else 1.0
                    self.in_flight += 1
                    try:
                        await asyncio.sleep(secs)
                    finally:
                        self.in_flight -= 1
                if path == "/race":
                    doomed = True
                close = headers.get("connection", "").lower() == "close"
                self._reply(writer, 200, b"ok %d" % self.port, close)
                await writer.drain()
                if close:
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()

    @staticmethod
    def _reply(writer: asyncio.StreamWriter, status: int, body: bytes, close: bool) -> None:
        writer.write(b"HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                     b"Connection: %s\r\n\r\n%s"
                     % (status, len(body), b"close" if close else b"keep-alive", body))


def serve_many(host: str, count: int) -> None:
    """Benchmark helper: `count` plain targets on one event loop in this process, on free
    ports printed as one JSON line; runs until stdin closes."""
    import json
    import sys

    async def main() -> None:
        noop = TargetServer(host=host, record=False)
        servers = [await asyncio.start_server(noop._handle, host, 0, backlog=64)
                   for _ in range(count)]
        ports = [srv.sockets[0].getsockname()[1] for srv in servers]
        print(json.dumps(ports), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for srv in servers:
            srv.close()

    asyncio.run(main())
