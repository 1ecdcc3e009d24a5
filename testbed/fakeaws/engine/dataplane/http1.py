"""Just enough HTTP/1.1 for a reverse proxy: request/response heads, framing, error pages.

Raw asyncio streams instead of aiohttp: the proxy only needs to frame messages, and a small
parser keeps per-request overhead low (throughput is benchmarked against nginx).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

REASONS = {502: b"Bad Gateway", 503: b"Service Temporarily Unavailable",
           504: b"Gateway Time-out", 400: b"Bad Request", 500: b"Internal Server Error"}
# Header lines the proxy drops: hop-by-hop ones, plus (requests) framing it re-adds and the
# X-Forwarded-* set it rewrites. Regexes run in C: much cheaper than a per-line Python loop.
_REQ_DROP = re.compile(rb"(?im)^(?:connection|keep-alive|proxy-connection|te|trailer|upgrade|"
                       rb"transfer-encoding|content-length|x-forwarded-[a-z]+)[ \t]*:[^\r\n]*\r\n")
_RESP_DROP = re.compile(rb"(?im)^(?:connection|keep-alive|proxy-connection)[ \t]*:[^\r\n]*\r\n")
_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*([^\r\n]*)")
_TE = re.compile(rb"\r\ntransfer-encoding[ \t]*:([^\r\n]*)")
_CONN = re.compile(rb"\r\nconnection[ \t]*:([^\r\n]*)")
_XFF = re.compile(rb"(?im)^x-forwarded-for[ \t]*:[ \t]*([^\r\n]*)")


class BadMessage(Exception):
    """Unparseable head or framing."""


@dataclass(slots=True)
class Head:
    """A parsed request or response head.

    `block` holds the header lines to forward (after the first line, hop-by-hop lines
    removed, each ending in CRLF, without the blank line).
    """

    first: list[bytes]  # request: method, target, version; response: version, code, reason
    block: bytes
    length: int | None  # Content-Length, if any
    chunked: bool
    close: bool  # Connection: close (or HTTP/1.0 without keep-alive)
    xff: bytes | None = None  # incoming X-Forwarded-For (requests)


def parse_head(data: bytes, is_request: bool) -> Head:
    """Parse a head ending in CRLFCRLF (as returned by readuntil)."""
    eol = data.find(b"\r\n")
    first = data[:eol].split(b" ", 2)
    if len(first) < (3 if is_request else 2):
        raise BadMessage(data[:80].decode("latin-1"))
    version = first[2] if is_request else first[0]
    if not version.startswith(b"HTTP/1."):
        raise BadMessage("not HTTP/1.x")
    lower = data.lower()
    length: int | None = None
    m = _LENGTH.search(lower)
    if m:
        try:
            length = int(m.group(1))
        except ValueError as exc:
            raise BadMessage("bad content-length") from exc
        if length < 0:
            raise BadMessage("bad content-length")
    m = _TE.search(lower)
    chunked = bool(m and m.group(1).strip().endswith(b"chunked"))
    m = _CONN.search(lower)
    conn = m.group(1) if m else b""
    close = b"keep-alive" not in conn if version == b"HTTP/1.0" else b"close" in conn
    rest = data[eol + 2:-2]
    if is_request:
        xm = _XFF.search(rest)
        return Head(first, _REQ_DROP.sub(b"", rest), length, chunked, close,
                    xm.group(1).strip() if xm else None)
    return Head(first, _RESP_DROP.sub(b"", rest), length, chunked, close)


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    """De-chunk a chunked body completely (request bodies are small in this testbed)."""
    out = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)


def error_response(status: int, reason: str, close: bool = False) -> bytes:
    """An ALB-style error page, tagged with the internal reason for clients to classify."""
    title = REASONS.get(status, b"Error")
    body = (b"<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s</h1>"
            b"</center>\r\n</body>\r\n</html>\r\n" % (status, title, status, title))
    return (b"HTTP/1.1 %d %s\r\nServer: awselb/2.0\r\nContent-Type: text/html\r\n"
            b"Content-Length: %d\r\nConnection: %s\r\nx-testbed-elb-error: %s\r\n\r\n%s"
            % (status, title, len(body), b"close" if close else b"keep-alive",
               reason.encode(), body))
