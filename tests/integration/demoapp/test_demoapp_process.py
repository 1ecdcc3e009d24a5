"""The demo app as a real process: SIGTERM modes and keep-alive closing seen from a client."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.waiting import wait_until

pytestmark = pytest.mark.integration

DEADLINE = 15.0


class DemoProc:
    """A demo app subprocess whose JSON log lines are collected as they arrive."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "testbed.demoapp", "serve", "--host", "127.0.0.1",
             "--port", "0", *args], stdout=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})})
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.port = int(self.wait_event("listening")["port"])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.events.put(json.loads(line))

    def wait_event(self, name: str, timeout: float = DEADLINE) -> dict[str, Any]:
        for ev in self.seen:
            if ev["event"] == name:
                return ev
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                ev = self.events.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(ev)
            if ev["event"] == name:
                return ev
        raise AssertionError(f"no {name!r} event within {timeout}s; saw {self.seen}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=DEADLINE)


@pytest.fixture
def demo() -> Iterator[Callable[..., DemoProc]]:
    procs: list[DemoProc] = []

    def start(*args: str, env: dict[str, str] | None = None) -> DemoProc:
        p = DemoProc(*args, env=env)
        procs.append(p)
        return p
    yield start
    for p in procs:
        p.stop()


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    return s


def _request(s: socket.socket, path: str = "/") -> None:
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())


def _read_response(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n")
                  if h.lower().startswith(b"content-length"))
    while len(body) < length:
        body += s.recv(65536)
    return head + b"\r\n\r\n" + body


def _get(port: int, path: str = "/") -> tuple[int, bytes]:
    with _connect(port) as s:
        _request(s, path)
        resp = _read_response(s)
    return int(resp.split(b" ", 2)[1]), resp.partition(b"\r\n\r\n")[2]


def _wait_until(cond: Callable[[], bool], timeout: float = DEADLINE) -> None:
    wait_until(cond, timeout, interval=0.02)


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def _closed_by_peer(s: socket.socket, timeout: float) -> bool:
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_serves_pod_version_and_readiness(demo: Callable[..., DemoProc]) -> None:
    p = demo("--ready-after-seconds", "0.3", env={"POD_NAME": "pod-a", "APP_VERSION": "v3"})
    status, body = _get(p.port)
    assert status == 200 and json.loads(body) == {"pod": "pod-a", "version": "v3"}
    _wait_until(lambda: _get(p.port, "/ready")[0] == 200)
    p.wait_event("ready_after_elapsed")


def test_env_vars_configure_the_app(demo: Callable[..., DemoProc]) -> None:
    p = demo(env={"DEMO_HEALTH_CODE": "500", "DEMO_ON_SIGTERM": "ignore"})
    assert _get(p.port, "/healthz")[0] == 500
    assert p.wait_event("starting")["config"]["on_sigterm"] == "ignore"


def test_startup_delay_logs_before_listening(demo: Callable[..., DemoProc]) -> None:
    p = demo("--startup-delay-seconds", "0.3")
    starting, listening = p.wait_event("starting"), p.wait_event("listening")
    assert listening["ts"] - starting["ts"] >= 0.3


def test_drain_finishes_in_flight_and_refuses_new(demo: Callable[..., DemoProc]) -> None:
    p = demo("--on-sigterm", "drain", "--drain-seconds", "10")
    slow = _connect(p.port)
    _request(slow, "/?latency_ms=1500")
    _wait_until(lambda: json.loads(_get(p.port, "/admin/state")[1])["in_flight"] == 1)
    p.proc.send_signal(signal.SIGTERM)
    p.wait_event("listener_closed")
    assert _refused(p.port)
    resp = _read_response(slow)
    assert resp.startswith(b"HTTP/1.1 200")
    assert p.proc.wait(timeout=DEADLINE) == 0
    assert p.wait_event("exit")["reason"] == "sigterm"


def test_drain_closes_idle_keepalive_connections(demo: Callable[..., DemoProc]) -> None:
    p = demo("--on-sigterm", "drain", "--keep-alive-timeout-seconds", "60")
    idle = _connect(p.port)
    _request(idle)
    assert _read_response(idle).startswith(b"HTTP/1.1 200")
    p.proc.send_signal(signal.SIGTERM)
    assert _closed_by_peer(idle, DEADLINE)
    assert p.proc.wait(timeout=DEADLINE) == 0


def test_exit_cuts_in_flight_requests(demo: Callable[..., DemoProc]) -> None:
    p = demo("--on-sigterm", "exit")
    slow = _connect(p.port)
    _request(slow, "/?latency_ms=5000")
    _wait_until(lambda: json.loads(_get(p.port, "/admin/state")[1])["in_flight"] == 1)
    p.proc.send_signal(signal.SIGTERM)
    assert p.proc.wait(timeout=DEADLINE) == 0
    assert _closed_by_peer(slow, DEADLINE)  # no response: FIN or RST, never a 200


def test_ignore_keeps_serving_after_sigterm(demo: Callable[..., DemoProc]) -> None:
    p = demo("--on-sigterm", "ignore")
    p.proc.send_signal(signal.SIGTERM)
    p.wait_event("sigterm")
    assert _get(p.port)[0] == 200
    assert p.proc.poll() is None


def test_keepalive_timeout_closes_idle_connections(demo: Callable[..., DemoProc]) -> None:
    p = demo("--keep-alive-timeout-seconds", "0.3")
    s = _connect(p.port)
    _request(s)
    assert _read_response(s).startswith(b"HTTP/1.1 200")
    t = time.monotonic()
    assert _closed_by_peer(s, DEADLINE)
    assert time.monotonic() - t >= 0.25


def test_long_keepalive_keeps_connection_reusable(demo: Callable[..., DemoProc]) -> None:
    p = demo("--keep-alive-timeout-seconds", "30")
    s = _connect(p.port)
    _request(s)
    assert _read_response(s).startswith(b"HTTP/1.1 200")
    assert not _closed_by_peer(s, 0.5)  # still open past a short keep-alive
    _request(s)
    assert _read_response(s).startswith(b"HTTP/1.1 200")


def test_sigterm_during_startup_delay_exits_without_listening() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "testbed.demoapp", "serve", "--host", "127.0.0.1", "--port", "0",
         "--startup-delay-seconds", "30"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["event"] == "starting"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=DEADLINE) == 0
        rest = [json.loads(line) for line in proc.stdout if line.startswith("{")]
        assert [e["event"] for e in rest] == ["sigterm", "exit"]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=DEADLINE)
