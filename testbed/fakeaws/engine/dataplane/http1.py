"""HTTP/1.1 framing for the fake ALB on llhttp (httptools): request and response readers,
ALB-made error pages.

The readers feed raw socket bytes to llhttp and hand the proxy whole heads (`Head`) and body
pieces. What llhttp rejects (duplicate Content-Length, Content-Length with Transfer-Encoding,
bad chunk sizes, bare-LF line endings, obs-fold...) becomes an `HttpError` with ALB's status;
ALB's size limits and its other request checks are enforced here too (see docs/fakeaws.md,
"HTTP handling"). httptools cannot tell its response parser that the request was HEAD (llhttp's
"skip body" return value is not exposed), so `ResponseReader` ends such a response at its head
and starts a fresh parser for the next one.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import httptools

REASONS = {400: b"Bad Request", 405: b"Method Not Allowed", 408: b"Request Timeout",
           414: b"Request-URI Too Large", 463: b"", 500: b"Internal Server Error",
           501: b"Not Implemented", 502: b"Bad Gateway", 503: b"Service Temporarily Unavailable",
           504: b"Gateway Time-out"}
# AWS ALB quotas, "HTTP headers": request line 16 K, single header 16 K, whole request
# header 64 K, whole response header 32 K.
REQUEST_LINE_MAX = 16 * 1024
HEADER_MAX = 16 * 1024
REQUEST_HEAD_MAX = 64 * 1024
RESPONSE_HEAD_MAX = 32 * 1024
XFF_MAX = 30  # AWS: more than 30 X-Forwarded-For addresses -> 463
READ = 65536
# Header names the proxy drops: hop-by-hop ones, plus (requests) framing it re-adds and the
# X-Forwarded-* set it rewrites.
_HOP = frozenset((b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                  b"upgrade", b"transfer-encoding"))
_REQ_DROP = _HOP | {b"content-length", b"x-forwarded-for", b"x-forwarded-proto",
                    b"x-forwarded-port"}
_RESP_DROP = frozenset((b"connection", b"keep-alive", b"proxy-connection"))
_TE_OK = frozenset((b"chunked", b"identity"))


_VERSIONS = {"1.1": b"HTTP/1.1", "1.0": b"HTTP/1.0"}


def _version(parser: httptools.HttpRequestParser | httptools.HttpResponseParser) -> bytes:
    v: str = parser.get_http_version()
    return _VERSIONS.get(v) or b"HTTP/" + v.encode()


class HttpError(Exception):
    """A request ALB answers itself (status, reason for x-testbed-elb-error)."""

    def __init__(self, status: int, reason: str, path: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.path = path


class BadMessage(Exception):
    """An unusable response from a target."""


@dataclass(slots=True)
class Head:
    """A parsed request or response head.

    `block` holds the header lines to forward (hop-by-hop ones removed, each ending in CRLF,
    without the blank line).
    """

    first: list[bytes]  # request: method, target, version; response: version, code, reason
    block: bytes
    length: int | None  # Content-Length, if any
    chunked: bool
    close: bool  # the connection ends after this message
    xff: bytes | None = None  # incoming X-Forwarded-For (requests, all lines joined)
    xff_count: int = 0
    upgrade: bool = False  # requests: Upgrade + Connection: upgrade; responses: 101
    status: int = 0  # responses


class RequestReader:
    """Reads requests from a client connection: `await next()` -> (head, whole body)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.parser = httptools.HttpRequestParser(self)
        self.ready: deque[tuple[Head, bytes]] = deque()
        self.failed: HttpError | None = None
        self.leftover = b""  # bytes after an upgrade request's head
        self.in_message = False  # a request has begun and is not complete: idle -> 408
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.parts: list[bytes] = []  # forwarded header lines, in pieces
        self.special: list[tuple[bytes, bytes]] = []  # (lower-case name, value) of the rest
        self.head_size = 0
        self.head_bytes = 0
        self.head: Head | None = None
        self.body: list[bytes] = []
        self.error: HttpError | None = None

    # -- llhttp callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.url = b""  # as _reset(), inlined: this runs for every request
        self.parts = []
        self.special = []
        self.head_size = self.head_bytes = 0
        self.head = None
        self.body = []
        self.error = None
        self.in_message = True

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > REQUEST_LINE_MAX:
            self._stop(414, "uri_too_long")

    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value) + 4
        if size > HEADER_MAX:
            self._stop(400, "header_too_large")
        self.head_size += size
        if self.head_size > REQUEST_HEAD_MAX:
            self._stop(400, "header_too_large")
        low = name.lower()
        if low in _REQ_DROP:
            self.special.append((low, value))
        else:
            self.parts += (name, b": ", value, b"\r\n")

    def on_headers_complete(self) -> None:
        p = self.parser
        method = p.get_method()
        if len(method) + len(self.url) + 11 > REQUEST_LINE_MAX:
            self._stop(414, "uri_too_long")
        keep = self.parts
        length: int | None = None
        chunked = False
        xff: list[bytes] = []
        conn_upgrade = False
        upgrade_to = b""
        for low, value in self.special:
            if low == b"content-length":
                length = int(value)  # llhttp validated it (digits, no duplicates)
            elif low == b"transfer-encoding":
                codings = [c.strip().lower() for c in value.split(b",")]
                if any(c not in _TE_OK for c in codings):
                    self._stop(501, "unsupported_transfer_encoding")
                chunked = chunked or b"chunked" in codings
            elif low == b"x-forwarded-for":
                xff.append(value.strip())
            elif low == b"upgrade":
                upgrade_to = value
            elif low == b"connection":
                conn_upgrade = conn_upgrade or b"upgrade" in value.lower()
        # WebSocket & co.: the Upgrade header is forwarded (with Connection: upgrade).
        upgrade = bool(upgrade_to) and conn_upgrade
        if upgrade:
            keep.append(b"upgrade: %s\r\n" % upgrade_to)
        joined = b", ".join(x for x in xff if x) or None
        self.head = Head([method, self.url, _VERSIONS.get(p.get_http_version()) or _version(p)],
                         b"".join(keep), length, chunked, not p.should_keep_alive(),
                         joined, joined.count(b",") + 1 if joined else 0, upgrade)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.head is not None
        self.ready.append((self.head, b"".join(self.body)))
        self.in_message = False
        self.head = None
        self.body = []

    def _stop(self, status: int, reason: str) -> None:
        self.error = HttpError(status, reason)
        raise self.error  # httptools stops parsing (HttpParserCallbackError)

    # -- reading ----------------------------------------------------------------------------
    def _feed(self, data: bytes) -> None:
        if self.in_message and self.head is None:
            # Not past the head yet: bound what llhttp buffers before a header completes.
            self.head_bytes += len(data)
            if self.head_bytes > REQUEST_HEAD_MAX + REQUEST_LINE_MAX + READ:
                raise HttpError(400, "header_too_large", self.path())
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.leftover = data[exc.args[0]:]
            self.parser = httptools.HttpRequestParser(self)
        except httptools.HttpParserError as exc:
            err = self.error or _te_error(data, exc) or HttpError(400, "bad_request")
            err.path = self.path()
            self.in_message = False
            raise err from exc

    def path(self) -> str | None:
        return self.url.decode("latin-1") if self.url else None

    async def next(self, on_data: Callable[[], None] | None = None) -> tuple[Head, bytes] | None:
        """The next complete request; None when the client closed between requests.

        Raises HttpError for requests ALB answers itself (the connection must close after the
        answer). `on_data()` is called for each chunk read (inactivity timeout).
        """
        while not self.ready:
            if self.failed is not None:
                raise self.failed
            if self.leftover:
                data, self.leftover = self.leftover, b""
            else:
                data = await self.reader.read(READ)
                if not data:
                    return None  # closed (mid-request too: nobody to answer)
                if on_data is not None:
                    on_data()
            try:
                self._feed(data)
            except HttpError as err:
                if not self.ready:
                    raise
                self.failed = err  # answer the requests before the bad one first
        return self.ready.popleft()


_TE_LINE = re.compile(rb"(?im)^transfer-encoding[ \t]*:[ \t]*([^\r\n]*)")


def _te_error(data: bytes, exc: Exception) -> HttpError | None:
    """llhttp refuses "chunked, gzip" (chunked not the last coding) while reading the header
    value, before on_header sees it; AWS answers 501 to any coding other than
    chunked/identity, so look at the header line in the bytes that failed."""
    if "Transfer-Encoding" not in str(exc):
        return None
    for value in _TE_LINE.findall(data):
        if any(c.strip().lower() not in _TE_OK for c in value.split(b",")):
            return HttpError(501, "unsupported_transfer_encoding")
    return None


class ResponseReader:
    """Reads responses from one target connection (one llhttp parser per connection).

    Per request: `start(head_request)`, then `await head()` until a final (non-1xx) head,
    then `await body()` until it returns None (message complete).
    """

    __slots__ = ("reader", "parser", "heads", "chunks", "complete", "got_bytes", "skip_body",
                 "extra", "dirty", "reason", "parts", "length", "chunked", "head_size",
                 "upgraded", "in_final")

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.parser = httptools.HttpResponseParser(self)
        self.heads: deque[Head] = deque()
        self.chunks: list[bytes] = []
        self.complete = False
        self.got_bytes = False
        self.skip_body = False
        self.extra = False  # bytes beyond the response: the connection must not be reused
        self.dirty = False
        self.reason = b""
        self.parts: list[bytes] = []
        self.length: int | None = None
        self.chunked = False
        self.head_size = 0
        self.upgraded: bytes | None = None  # bytes after a 101 head
        self.in_final = False

    def start(self, head_request: bool) -> None:
        self.heads.clear()
        self.chunks = []
        self.complete = self.got_bytes = self.in_final = False
        self.skip_body = head_request

    # -- llhttp callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.complete:
            self.extra = True
        self.reason = b""
        self.parts = []
        self.length = None
        self.chunked = False
        self.head_size = 0

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value) + 4
        if self.head_size > RESPONSE_HEAD_MAX:
            raise BadMessage("response header too large")
        low = name.lower()
        if low not in _RESP_DROP:
            self.parts += (name, b": ", value, b"\r\n")
        if low == b"content-length":
            self.length = int(value)
        elif low == b"transfer-encoding":
            self.chunked = value.strip().lower().endswith(b"chunked")

    def on_headers_complete(self) -> None:
        p = self.parser
        code = p.get_status_code()
        if 100 <= code < 200 and code != 101:
            close = False
        else:
            self.in_final = True
            close = not p.should_keep_alive()
        self.heads.append(Head([_VERSIONS.get(p.get_http_version()) or _version(p),
                                b"%d" % code, self.reason], b"".join(self.parts),
                               self.length, self.chunked, close,
                               upgrade=code == 101, status=code))
        if self.skip_body and self.in_final:
            self.complete = True  # HEAD: no body whatever the head says; new parser below
            self.dirty = True

    def on_body(self, body: bytes) -> None:
        if self.skip_body:
            self.extra = True
            return
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.in_final:
            self.complete = True

    # -- reading ----------------------------------------------------------------------------
    async def _fill(self) -> None:
        data = await self.reader.read(READ)
        if not data:
            raise asyncio.IncompleteReadError(b"x" if self.got_bytes else b"", None)
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.upgraded = data[exc.args[0]:]
            self.complete = True
        except httptools.HttpParserError as exc:
            raise BadMessage(str(exc)) from exc
        if self.dirty:  # HEAD answered: the parser still waits for a body that never comes
            self.dirty = False
            self.parser = httptools.HttpResponseParser(self)

    async def head(self) -> Head:
        """The next head: interim (1xx) ones first, then the final one."""
        while not self.heads:
            await self._fill()
        return self.heads.popleft()

    async def body(self) -> bytes | None:
        """The next body bytes (b"" possible), or None once the response is complete.

        A body delimited by the connection's end raises IncompleteReadError at EOF: the
        caller knows from the head that this is the normal end.
        """
        if self.chunks:
            out = b"".join(self.chunks)
            self.chunks = []
            return out
        if self.complete:
            return None
        await self._fill()
        out = b"".join(self.chunks)
        self.chunks = []
        return out


def head_bytes(first: list[bytes], block: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %s\r\n%s%s\r\n" % (b" ".join(first[1:]), block, extra)


def error_response(status: int, reason: str, close: bool = False, head: bool = False
                   ) -> bytes:
    """An ALB-style error page, tagged with the internal reason for clients to classify.
    `head`: the request was HEAD, so the page's body is left out (RFC 9110 9.3.2: a response
    to HEAD has none; Content-Length still gives the size a GET would have had)."""
    title = REASONS.get(status, b"Error")
    sp = b" " if title else b""
    body = (b"<html>\r\n<head><title>%d%s%s</title></head>\r\n<body>\r\n<center><h1>%d%s%s"
            b"</h1></center>\r\n</body>\r\n</html>\r\n" % (status, sp, title, status, sp, title))
    return (b"HTTP/1.1 %d %s\r\nServer: awselb/2.0\r\nContent-Type: text/html\r\n"
            b"Content-Length: %d\r\nConnection: %s\r\nx-testbed-elb-error: %s\r\n\r\n%s"
            % (status, title, len(body), b"close" if close else b"keep-alive",
               reason.encode(), b"" if head else body))
