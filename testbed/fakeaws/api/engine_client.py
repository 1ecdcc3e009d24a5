"""Blocking client the API process (WSGI threads) uses to talk to the engine process."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

# A call held by a restart waits at most this long, then goes ahead (and fails if there is
# no engine): a restart that hangs must not hang every API thread with it.
HOLD_MAX = 120.0


class EngineClient:
    """A pool of persistent HTTP/1.1 connections to the engine's control port.

    A pool, not one connection per thread: werkzeug starts a thread per client connection,
    so thread-local connections would be opened (and leaked to the GC) per API connection.
    """

    POOL_MAX = 32

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        # A restart holds calls (`held`) while the engine is replaced, so they wait rather
        # than fail; `_busy` counts the calls under way it waits for.
        self._gate = threading.Condition()
        self._held = False
        self._busy = 0

    @contextlib.contextmanager
    def _call(self) -> Iterator[None]:
        with self._gate:
            self._gate.wait_for(lambda: not self._held, timeout=HOLD_MAX)
            self._busy += 1
        try:
            yield
        finally:
            with self._gate:
                self._busy -= 1
                self._gate.notify_all()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold every later call until the block ends; enter once the calls under way are
        over."""
        with self._gate:
            self._held = True
            self._gate.wait_for(lambda: self._busy == 0, timeout=HOLD_MAX)
        try:
            yield
        finally:
            with self._gate:
                self._held = False
                self._gate.notify_all()

    def switch(self, port: int) -> None:
        """Talk to another engine (a restart) from now on."""
        with self._lock:
            idle, self._idle = self._idle, []
            self.port = port
        for c in idle:
            c.close()

    def _get(self) -> http.client.HTTPConnection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _put(self, c: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.POOL_MAX:
                self._idle.append(c)
                return
        c.close()

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        with self._call():
            return self._request(method, path, body)

    def _request(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in (0, 1):
            c = self._get()
            try:
                c.request(method, path, body=data, headers=headers)
                resp = c.getresponse()
                raw = resp.read()
            except (ConnectionError, http.client.HTTPException, OSError):
                c.close()
                if attempt:
                    raise
                continue
            self._put(c)
            return resp.status, json.loads(raw) if raw else None
        raise RuntimeError("unreachable")

    def raw(self, method: str, path: str, body: bytes | None = None
            ) -> tuple[int, bytes]:
        with self._call():
            c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                c.request(method, path, body=body,
                          headers={"Content-Type": "application/json"} if body else {})
                resp = c.getresponse()
                return resp.status, resp.read()
            finally:
                c.close()

    def open_stream(self, path: str) -> tuple[int, bytes | LineStream]:
        """Open a streaming endpoint (own connection, no timeout) -> (200, its lines), or
        (status, body) when the engine refused it (e.g. 400 for a bad filter)."""
        with self._call():
            c = http.client.HTTPConnection(self.host, self.port, timeout=None)
            try:
                c.request("GET", path)
                resp = c.getresponse()
            except BaseException:
                c.close()
                raise
        try:
            if resp.status != 200:
                body = resp.read()
                c.close()
                return resp.status, body
        except BaseException:
            c.close()
            raise
        return 200, LineStream(c, resp)


class LineStream:
    """A WSGI response body relaying an engine stream line by line; the server's close()
    closes the engine connection even when iteration never started."""

    def __init__(self, conn: http.client.HTTPConnection,
                 resp: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._resp = resp

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self._resp.readline()
            if not line:
                return
            yield line

    def close(self) -> None:
        self._conn.close()
