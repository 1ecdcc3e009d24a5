"""examples/go-server as a real process: its endpoints, and the SIGTERM behaviour the example
is about (http.Server.Shutdown: listener closed at once, idle keep-alive connections closed,
in-flight requests finished, /ready 503 for them, exit 0 within the drain time)."""

from __future__ import annotations

import http.client
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.waiting import wait_until

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("go") is None, reason="needs go on PATH")]

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "go-server"
DEADLINE = 15.0
DRAIN = 2.0


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("go-server") / "go-server"
    env = {**os.environ, "CGO_ENABLED": "0", "GOPROXY": "off"}
    subprocess.run(["go", "build", "-trimpath", "-o", str(out), "."], cwd=EXAMPLE, env=env,
                   check=True, timeout=300)
    return out


class Server:
    """The server on a free loopback-reachable port (PORT=0; the port comes from its start
    log line), its JSON log lines collected as they arrive."""

    def __init__(self, binary: Path, **env: str) -> None:
        self.proc = subprocess.Popen(
            [str(binary)], stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PORT": "0", "POD_NAME": "x", "VERSION": "v1",
                 "DRAIN_SECONDS": str(DRAIN), **env})
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.port = int(self.wait_log("start")["addr"].rsplit(":", 1)[1])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def wait_log(self, msg: str) -> dict[str, Any]:
        end = time.monotonic() + DEADLINE
        while not any(e["msg"] == msg for e in self.seen):
            try:
                self.seen.append(self.lines.get(timeout=max(0.01, end - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"no {msg!r} log line; saw {self.seen}") from None
        return next(e for e in self.seen if e["msg"] == msg)

    def get(self, path: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=DEADLINE)


@pytest.fixture
def server(binary: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(**env: str) -> Server:
        s = Server(binary, **env)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=DEADLINE).close()
    except ConnectionRefusedError:
        return True
    return False


def _ready_status(s: Server) -> int | str:
    try:
        return s.get("/ready")[0]
    except ConnectionError:  # refused, or caught in the backlog as the listener closed
        return "no answer"


class Slow:
    """`GET /slow?delay=...` on its own connection and thread, in the handler once built."""

    def __init__(self, s: Server, delay: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=DEADLINE)
        self.result: queue.Queue[tuple[int, str] | Exception] = queue.Queue()
        threading.Thread(target=self._run, args=(delay,), daemon=True).start()
        s.wait_log("slow request")

    def _run(self, delay: str) -> None:
        try:
            self.conn.request("GET", f"/slow?delay={delay}")
            resp = self.conn.getresponse()
            self.result.put((resp.status, resp.read().decode()))
        except Exception as exc:  # noqa: BLE001 - handed to the test thread
            self.result.put(exc)

    def response(self) -> tuple[int, str]:
        got = self.result.get(timeout=DEADLINE)
        if isinstance(got, Exception):
            raise AssertionError(f"the slow request failed: {got!r}")
        return got

    def error(self) -> Exception | None:
        got = self.result.get(timeout=DEADLINE)
        return got if isinstance(got, Exception) else None


def test_endpoints(server: Callable[..., Server]) -> None:
    s = server()
    start = s.wait_log("start")
    assert (start["pod"], start["version"], start["drain_seconds"],
            start["keepalive_seconds"]) == ("x", "v1", DRAIN, 75)
    status, body = s.get("/api/items")
    assert status == 200
    assert json.loads(body) == {"pod": "x", "version": "v1", "path": "/api/items"}
    assert s.get("/healthz")[0] == 200
    assert s.get("/ready")[0] == 200


def test_sigterm_drains_and_exits_zero(server: Callable[..., Server]) -> None:
    s = server()
    # an idle keep-alive connection, and a request in flight when SIGTERM comes
    idle = http.client.HTTPConnection("127.0.0.1", s.port, timeout=DEADLINE)
    idle.request("GET", "/")
    assert idle.getresponse().read()
    slow = Slow(s, "1s")

    sent = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    s.wait_log("sigterm")
    # the listener is closed at once, so the readinessProbe fails (503 only on a request that
    # got in before the listener closed)
    assert _ready_status(s) in (503, "no answer")
    wait_until(lambda: _refused(s.port), DEADLINE, "the listener to be closed")
    assert idle.sock is not None
    assert idle.sock.recv(1) == b"", "the idle keep-alive connection should be closed"

    status, body = slow.response()
    assert status == 200, body  # the in-flight request finished
    assert json.loads(body)["path"] == "/slow"
    assert s.proc.wait(timeout=DRAIN + 2) == 0
    assert time.monotonic() - sent < DRAIN + 2
    assert s.wait_log("shutdown done")["drained"] is True


def test_drain_timeout_cuts_and_exits_nonzero(server: Callable[..., Server]) -> None:
    s = server(DRAIN_SECONDS="0.5")
    slow = Slow(s, "30s")
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=0.5 + 2) == 1
    assert s.wait_log("shutdown done")["drained"] is False
    assert isinstance(slow.error(), http.client.RemoteDisconnected | ConnectionError)
