"""Test double for the load generator's tests and benchmark: a tiny raw-asyncio HTTP/1.1
server with misbehaving modes. Nothing in the testbed itself uses it.

Raw protocol code keeps it cheap enough that the benchmark measures the generator, not the
server. Modes: ok (200 JSON, keep-alive), reset (RST on accept), close (read the request, close
without answering), hang (never answer), status:<code> (answer that code). Request bodies are
skipped by their Content-Length; HEAD requests get the headers only.
Run: python -m testbed.loadgen.testing --port 0 --mode ok   (prints the bound port)
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import struct
import sys
from typing import Any

_BODY = b'{"pod":"bench","version":"v0"}'


class FakeTransport(asyncio.Transport):
    """A transport that keeps what the client writes, for unit tests of Http1Conn."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


def _response(status: int) -> bytes:
    return (f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(_BODY)}\r\n\r\n").encode() + _BODY


def _content_length(head: bytes) -> int:
    # the generator frames request bodies with Content-Length only (never chunked)
    i = head.lower().find(b"\r\ncontent-length:")
    if i < 0:
        return 0
    return int(head[i + 17:].split(b"\r\n", 1)[0])


class _Proto(asyncio.Protocol):
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.mode == "reset":
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, rest = self.buf.split(b"\r\n\r\n", 1)
            need = _content_length(head)
            if len(rest) < need:
                return  # the body is not all here yet
            self.buf = rest[need:]
            if self.mode == "close":
                self.transport.close()
                return
            if self.mode == "hang":
                return
            status = int(self.mode.split(":", 1)[1]) if self.mode.startswith("status:") else 200
            resp = _response(status)
            # a HEAD response has the GET's headers and no body
            self.transport.write(resp[:-len(_BODY)] if head.startswith(b"HEAD ") else resp)


async def serve(port: int, mode: str, host: str = "127.0.0.1") -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Proto(mode), host, port, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--mode", default="ok")
    args = p.parse_args(argv)
    try:
        asyncio.run(serve(args.port, args.mode))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
