"""A minimal HTTP/1.1 client connection built on asyncio.Protocol, and the request encoder.

aiohttp's client costs too much CPU per request to hold 2,000 rps on a shared 2-core machine;
a callback-driven protocol does, and it sees the transport errors (RST, FIN, refused) directly,
which is what the error classification needs. Requests are encoded once per distinct request
(encode_request) and the same bytes are written every time.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence

from testbed.loadgen.records import BadResponseError, ConnectionClosedError

# on_done(conn, status, headers-of-interest, body, exception-or-None)
DoneCallback = Callable[["Http1Conn", int, dict[str, str], bytes, BaseException | None], None]
_WANTED = (b"content-length", b"transfer-encoding", b"connection", b"x-testbed-elb-error")
_HEAD, _BODY_LEN, _BODY_CHUNKED, _BODY_EOF, _IDLE = range(5)

# RFC 9110 5.6.2 token: methods and header names
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# origin-form request target: visible ASCII only, so nothing can end the request line early
_TARGET = re.compile(r"/[\x21-\x22\x24-\x7e]*\Z")
# RFC 9110 5.5 field value: visible chars, SP, HTAB, obs-text; no CR/LF/NUL (injection)
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*\Z")
# the host header value (reg-name, IPv4, [IPv6], optional :port): visible ASCII, no "/"
_HOST = re.compile(r"[\x21-\x2e\x30-\x7e]+\Z")
# framing and connection handling belong to this client, not to the user's headers
_RESERVED_HEADERS = {
    "host": "set the Host header with AttackConfig.host (--host), not in headers",
    "content-length": "Content-Length is computed from the body; do not set it in headers",
    "transfer-encoding": "request bodies are sent with Content-Length; Transfer-Encoding is "
                         "not supported",
    "connection": "connection reuse is controlled by AttackConfig.keepalive, not a Connection "
                  "header",
}
# methods whose requests a server expects to carry a body: an empty one is still announced
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def check_method(method: str) -> None:
    """ValueError unless `method` is an RFC 9110 token (methods are case-sensitive)."""
    if not isinstance(method, str) or not _TOKEN.match(method):
        raise ValueError(f"HTTP method {method!r} is not a token (letters, digits and "
                         f"!#$%&'*+-.^_`|~ only)")


def check_target(path: str) -> None:
    """ValueError unless `path` is an origin-form request target ("/..." plus query)."""
    if not isinstance(path, str) or not _TARGET.match(path):
        raise ValueError(f"request path {path!r} must start with '/' and contain only visible "
                         f"ASCII (no spaces, CR/LF, '#' or non-ASCII: percent-encode them)")


def check_header(name: str, value: str) -> None:
    """ValueError for a header this client cannot send as given (or must not: framing)."""
    if not isinstance(name, str) or not _TOKEN.match(name):
        raise ValueError(f"header name {name!r} is not a token (letters, digits and "
                         f"!#$%&'*+-.^_`|~ only, no spaces or colons)")
    reason = _RESERVED_HEADERS.get(name.lower())
    if reason is not None:
        raise ValueError(f"header {name!r} not allowed: {reason}")
    if not isinstance(value, str) or not _FIELD_VALUE.match(value):
        raise ValueError(f"header {name!r}: value {value!r} must not contain CR, LF or other "
                         f"control characters, and must be Latin-1")


def check_host(host: str) -> None:
    """ValueError unless `host` can be a Host header value."""
    if not isinstance(host, str) or not _HOST.match(host):
        raise ValueError(f"host {host!r} must be a non-empty host[:port] of visible ASCII "
                         f"(no spaces, '/' or control characters)")


def encode_request(method: str, target: str, host: str, headers: Sequence[tuple[str, str]],
                   body: bytes, keepalive: bool = True) -> bytes:
    """The whole request as bytes. Arguments must have passed the check_* functions.

    Default User-Agent and Accept headers are sent unless `headers` has its own."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    given = {name.lower() for name, _ in headers}
    if "user-agent" not in given:
        lines.append("User-Agent: testbed-loadgen")
    if "accept" not in given:
        lines.append("Accept: */*")
    lines.extend(f"{name}: {value}" for name, value in headers)
    if body or method in _BODY_METHODS:
        lines.append(f"Content-Length: {len(body)}")
    if not keepalive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Http1Conn(asyncio.Protocol):
    """One keep-alive connection; one request at a time (no pipelining)."""

    def __init__(self, on_lost: Callable[[Http1Conn], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = True
        self._on_lost = on_lost
        self._on_done: DoneCallback | None = None
        self._buf = bytearray()
        self._state = _IDLE
        self._status = 0
        self._headers: dict[str, str] = {}
        self._need = 0
        self._body = bytearray()
        self._bodiless = False  # the request was HEAD: its response never has a body
        self.lost_exc: BaseException | None = None

    # ---- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost_exc = exc
        self.reusable = False
        if self._on_done is not None:
            if self._state == _BODY_EOF and exc is None:
                self._finish(None)
            else:
                self._finish(exc or ConnectionClosedError("connection closed by peer"))
        self._on_lost(self)

    def data_received(self, data: bytes) -> None:
        if self._on_done is None:
            return  # unsolicited bytes on an idle connection: ignore, it will be closed
        self._buf += data
        try:
            self._parse()
        except BadResponseError as exc:
            self.reusable = False
            self._finish(exc)
            self.abort()

    # ---- API ----------------------------------------------------------------------------
    def send(self, request: bytes, on_done: DoneCallback, head: bool = False) -> None:
        """Write one request; on_done runs exactly once (it may run before send returns).
        `head`: the request is a HEAD, so the response ends after its header block."""
        assert self.transport is not None
        self._on_done = on_done
        self._bodiless = head
        if self.closed:  # lost between connect and send (e.g. RST right after accept)
            self._finish(self.lost_exc or ConnectionClosedError("closed before the request"))
            return
        self._state = _HEAD
        self._buf.clear()
        self._body = bytearray()
        self._headers = {}
        self.transport.write(request)

    def abort(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    def fail(self, exc: BaseException) -> None:
        """Give up on the current request (timeout) and drop the connection."""
        self.reusable = False
        if self._on_done is not None:
            self._finish(exc)
        self.abort()

    # ---- parsing ------------------------------------------------------------------------
    def _finish(self, exc: BaseException | None) -> None:
        cb, self._on_done = self._on_done, None
        self._state = _IDLE
        if cb is not None:
            cb(self, self._status if exc is None else 0, self._headers, bytes(self._body), exc)

    def _parse(self) -> None:
        while True:
            if self._state == _HEAD:
                end = self._buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._buf) > 65536:
                        raise BadResponseError("response head too large")
                    return
                head = bytes(self._buf[:end])
                del self._buf[:end + 4]
                if not self._parse_head(head):
                    continue  # 1xx: another head follows
            elif self._state == _BODY_LEN:
                if len(self._buf) < self._need:
                    return
                self._body += self._buf[:self._need]
                del self._buf[:self._need]
                self._complete()
                return
            elif self._state == _BODY_CHUNKED:
                if not self._parse_chunk():
                    return
                if self._state == _IDLE:
                    return
            elif self._state == _BODY_EOF:
                self._body += self._buf
                self._buf.clear()
                return
            else:
                return

    def _parse_head(self, head: bytes) -> bool:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise BadResponseError(f"bad status line {lines[0][:60]!r}")
        try:
            self._status = int(parts[1])
        except ValueError:
            raise BadResponseError(f"bad status code {parts[1][:10]!r}") from None
        if 100 <= self._status < 200:
            return False
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise BadResponseError("bad header line")
            lname = name.strip().lower()
            if lname in _WANTED:
                headers[lname.decode()] = value.strip().decode("latin-1")
        self._headers = headers
        conn = headers.get("connection", "").lower()
        if conn == "close" or (parts[0] == b"HTTP/1.0" and conn != "keep-alive"):
            self.reusable = False
        # RFC 9112 6.3: these responses end at the header block whatever their framing headers
        # say (a HEAD or 304 response carries the Content-Length a GET would have had)
        if self._bodiless or self._status in (204, 304):
            self._need = 0
            self._state = _BODY_LEN
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._state = _BODY_CHUNKED
            self._need = -1
        elif "content-length" in headers:
            try:
                self._need = int(headers["content-length"])
            except ValueError:
                raise BadResponseError("bad content-length") from None
            self._state = _BODY_LEN
        else:
            self.reusable = False
            self._state = _BODY_EOF
        return True

    def _parse_chunk(self) -> bool:
        """Consume one chunk (or the trailer); False when more bytes are needed."""
        if self._need < 0:
            end = self._buf.find(b"\r\n")
            if end < 0:
                return False
            try:
                self._need = int(bytes(self._buf[:end]).split(b";")[0], 16)
            except ValueError:
                raise BadResponseError("bad chunk size") from None
            del self._buf[:end + 2]
        if self._need == 0:
            end = self._buf.find(b"\r\n\r\n") if not self._buf.startswith(b"\r\n") else -2
            if end == -1:
                return False
            del self._buf[:end + 4]
            self._complete()
            return True
        if len(self._buf) < self._need + 2:
            return False
        self._body += self._buf[:self._need]
        del self._buf[:self._need + 2]
        self._need = -1
        return True

    def _complete(self) -> None:
        self._finish(None)
        if not self.reusable:
            self.abort() if self._buf else self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()
