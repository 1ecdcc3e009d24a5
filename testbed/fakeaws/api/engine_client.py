"""Blocking client the API process (WSGI threads) uses to talk to the engine process."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any


class EngineClient:
    """A pool of persistent HTTP/1.1 connections to the engine's control port.

    A pool, not one connection per thread: werkzeug starts a thread per client connection,
    so thread-local connections would be opened (and leaked to the GC) per API connection.
    """

    POOL_MAX = 32

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _get(self) -> http.client.HTTPConnection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def _put(self, c: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.POOL_MAX:
                self._idle.append(c)
                return
        c.close()

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
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
        c = http.client.HTTPConnection(self.host, self.port, timeout=30)
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
        c = http.client.HTTPConnection(self.host, self.port, timeout=None)
        try:
            c.request("GET", path)
            resp = c.getresponse()
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
