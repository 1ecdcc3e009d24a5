"""Listening sockets as objects that outlive a process: bound here, handed to data-plane
workers and, on a restart, to the next engine (SCM_RIGHTS over Unix sockets).

Handing over the very same sockets (not binding anew with SO_REUSEPORT) is what keeps a
restart from failing a connection: a listening socket stays open while any process holds
it, so its accept queue survives the old engine; closing a SO_REUSEPORT sibling would reset
the connections queued on it.

A listener is bound as one or more "sets": one per data-plane node (a worker, or the engine
itself), each set the sockets of every address the listener host resolves to. Workers
share a port through SO_REUSEPORT, one set each, so the kernel spreads connections.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable

Where = tuple[str, int]  # (host, port) a listener binds
SocketSet = list[socket.socket]
BACKLOG = 1024
_CHUNK = 200  # file descriptors per message (the kernel's limit is 253)


def bind(host: str, port: int, reuse_port: bool) -> SocketSet:
    """Listening, non-blocking sockets for every address of `host` (as asyncio binds)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    out: SocketSet = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _, addr in infos:
            if (family, addr) in seen:
                continue
            seen.add((family, addr))
            s = socket.socket(family, kind, proto)
            out.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind(addr)
            s.listen(BACKLOG)
            s.setblocking(False)
    except BaseException:
        close(out)
        raise
    return out


def close(socks: Iterable[socket.socket]) -> None:
    for s in socks:
        s.close()


def _adopt(fd: int) -> socket.socket:
    """A received descriptor as a socket of this process only. SCM_RIGHTS gives it without
    close-on-exec, and uvloop's spawn (libuv) closes no descriptor it is not told to: left
    inheritable, every worker started later would hold a copy of every listening socket, and
    a copy nobody accepts on stays in the port's SO_REUSEPORT group after the listener is
    gone, where the kernel queues new connections that then hang."""
    os.set_inheritable(fd, False)
    return socket.socket(fileno=fd)


def send(chan: socket.socket, meta: object, socks: list[socket.socket]) -> None:
    """One message: JSON `meta` with the sockets' descriptors (the receiver gets its own)."""
    socket.send_fds(chan, [json.dumps(meta).encode()], [s.fileno() for s in socks])


def receive_ready(chan: socket.socket) -> list[tuple[object, list[socket.socket]]]:
    """Every message waiting on a non-blocking SOCK_SEQPACKET channel."""
    out: list[tuple[object, list[socket.socket]]] = []
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(chan, 65536, _CHUNK)
        except BlockingIOError:
            return out
        if not data:
            return out
        out.append((json.loads(data), [_adopt(fd) for fd in fds]))


# ---- engine to engine (restart) ------------------------------------------------------------
def serve_handover(path: str) -> socket.socket:
    """Listen on the Unix socket `path` for the one new engine that `give_handover` sends
    the listening sockets to (the old engine keeps its copies until it retires)."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    srv.bind(path)
    srv.listen(1)
    return srv


def give_handover(srv: socket.socket, sets: dict[Where, list[SocketSet]],
                  timeout: float) -> None:
    srv.settimeout(timeout)
    conn, _ = srv.accept()
    with conn:
        conn.settimeout(timeout)
        for (host, port), node_sets in sets.items():
            for index, socks in enumerate(node_sets):
                for i in range(0, len(socks), _CHUNK):
                    send(conn, {"host": host, "port": port, "set": index},
                         socks[i:i + _CHUNK])
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)  # the new engine closes once it holds every socket


def take_handover(path: str, timeout: float = 30.0) -> dict[Where, list[SocketSet]]:
    """The new engine's side: every listening socket the old engine had, by listener."""
    got: dict[Where, dict[int, SocketSet]] = {}
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as chan:
        chan.settimeout(timeout)
        chan.connect(path)
        while True:
            data, fds, _, _ = socket.recv_fds(chan, 65536, _CHUNK)
            if not data:
                break
            meta = json.loads(data)
            socks = [_adopt(fd) for fd in fds]
            for s in socks:
                s.setblocking(False)
            where = (str(meta["host"]), int(meta["port"]))
            got.setdefault(where, {}).setdefault(int(meta["set"]), []).extend(socks)
    return {w: [sets[i] for i in sorted(sets)] for w, sets in got.items()}
