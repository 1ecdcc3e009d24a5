"""Listeners and request forwarding with ALB error semantics.

Error mapping (reason in the `x-testbed-elb-error` header and the event log):
  503 no_targets       nothing routable in the target group
  503 all_weights_zero every target group of the forward action has weight 0
  502 target_refused   connect refused;  target_unreachable: other connect errors
  504 connect_timeout  connect not done within the target group's connect_timeout (10 s)
  502 keepalive_race   a REUSED pooled connection was closed/reset before any response byte
  502 target_closed    target sent FIN before any response byte (fresh connection)
  502 target_reset     target sent RST before any response byte (fresh connection)
  502 drain_expired    deregistration delay expired with the request in flight
  503 target_group_deleted  the target group was deleted with the request in flight
                       (aws-load-balancer-controller #3739; a response under way is cut)
  502 malformed_response  unparseable response head (or body framing before the head went out)
  502 truncated_response  target closed before the whole body, nothing forwarded yet
  504 idle_timeout     no response byte within the LB idle timeout
Listener rules (rules.py) pick the action per request: forward (as above), fixed-response
and redirect (answered here, events `fixed_response` / `redirect`, no error header).
Requests ALB answers itself (http1.py; always with Connection: close but 463 and 405):
  400 bad_request      llhttp rejects the request (duplicate Content-Length, CL + TE, bad
                       chunk size, bare LF, ...);  400 header_too_large: > 16 K one header,
                       > 64 K all headers;  414 uri_too_long: request line > 16 K
  405 method_not_allowed  TRACE (not supported by ALB; connection kept)
  408 request_timeout  client sent part of a request, then nothing for the idle timeout
  463 xff_too_many     X-Forwarded-For with more than 30 addresses
  501 unsupported_transfer_encoding  Transfer-Encoding other than chunked/identity
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import functools
import hashlib
import hmac
import logging
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from testbed.fakeaws import wire
from testbed.fakeaws.engine.balancer import pick_weighted
from testbed.fakeaws.engine.dataplane import rules as rules_
from testbed.fakeaws.engine.dataplane import sockets
from testbed.fakeaws.engine.dataplane.http1 import (
    READ,
    XFF_MAX,
    BadMessage,
    Head,
    HttpError,
    RequestReader,
    ResponseReader,
    error_response,
    head_bytes,
)
from testbed.fakeaws.engine.store import Stickiness, TargetGroupSpec
from testbed.fakeaws.settings import FakeAwsSettings, RuntimeKey

log = logging.getLogger(__name__)

POOL_MAX = 256
COPY_CHUNK = 65536


class Target(Protocol):
    """What the data plane reads and keeps on a target (store.Target, replica.RouteTarget)."""

    tg_arn: str
    id: str
    port: int
    in_flight: int
    dp_removed: bool
    aborters: set[Callable[[str], None]]

    @property
    def addr(self) -> str: ...


class Routes(Protocol):
    """Where the data plane learns what to route to: the engine's TargetStore when it runs
    in the engine process, a worker's Replica (replica.py) when it runs in a worker."""

    on_target_removed: Callable[[Any], None]

    @property
    def groups(self) -> Mapping[str, TargetGroupSpec]: ...
    def pick(self, tg_arn: str) -> Any: ...  # a Target or None
    def routable(self, tg_arn: str, tid: str, port: int) -> Any: ...  # a Target or None
    def runtime(self, tg_arn: str, key: RuntimeKey) -> float: ...


class Events(Protocol):
    def emit(self, kind: str, **fields: Any) -> Any: ...


@dataclass(frozen=True)
class BindFailure:
    listener_arn: str
    port: int
    host: str
    error: str


@dataclass
class ListenerSpec:
    arn: str
    port: int
    # The default action; rules (compiled, lowest priority number first) are tried before it.
    default: rules_.Action
    rules: tuple[rules_.Rule, ...] = ()
    idle_timeout: float = 60.0
    # LB attribute client_keep_alive.seconds: the first request after a client connection has
    # been open this long is answered with "connection: close", then the connection ends.
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html#http-client-keep-alive-duration
    client_keep_alive: float = 3600.0
    host: str | None = None  # the load balancer's own address; None: settings.listen_on

    @classmethod
    def from_wire(cls, r: wire.Listener) -> ListenerSpec:
        return cls(arn=r["arn"], port=int(r["port"]),
                   default=rules_.compile_action(r["default_action"]),
                   rules=rules_.compile_rules(r.get("rules") or []),
                   idle_timeout=float(r["idle_timeout"]),
                   client_keep_alive=float(r.get("client_keep_alive") or 3600.0),
                   host=r.get("host") or None)


# ---- stickiness cookies ------------------------------------------------------------------
# AWS: https://docs.aws.amazon.com/elasticloadbalancing/latest/application/sticky-sessions.html
# lb_cookie: AWSALB (+ AWSALBCORS: SameSite=None; Secure); app_cookie: AWSALBAPP-<n>;
# group stickiness of a weighted forward action: AWSALBTG (+ AWSALBTGCORS).
# Values are opaque to clients: "payload.mac" (base64url), signed with a per-engine key.
APP_COOKIE_DAYS = 7  # AWS: the ALB's application cookie expires after 7 days, fixed
_COOKIE = re.compile(rb"(?im)^cookie[ \t]*:[ \t]*([^\r\n]*)")
_SET_COOKIE = re.compile(rb"(?im)^set-cookie[ \t]*:[ \t]*([^=;\r\n]+)=")


def request_cookies(block: bytes) -> dict[bytes, bytes]:
    """Cookies of a request head's header block (all Cookie lines)."""
    out: dict[bytes, bytes] = {}
    for line in _COOKIE.findall(block):
        for part in line.split(b";"):
            name, eq, value = part.strip().partition(b"=")
            if eq and name:
                out.setdefault(name, value.strip())
    return out


def response_sets_cookie(block: bytes, name: bytes) -> bool:
    return any(n.strip() == name for n in _SET_COOKIE.findall(block))


class CookieJar:
    """Makes and reads the ALB's opaque stickiness cookie values."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or os.urandom(16)

    def make(self, *fields: str) -> bytes:
        payload = base64.urlsafe_b64encode("\x1f".join(fields).encode()).rstrip(b"=")
        return payload + b"." + self._mac(payload)

    def read(self, value: bytes | None) -> list[str] | None:
        if not value:
            return None
        payload, _, mac = value.partition(b".")
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            raw = base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4))
            return raw.decode().split("\x1f")
        except ValueError:
            return None

    def _mac(self, payload: bytes) -> bytes:
        d = hmac.new(self.key, payload, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(d)


def _set_cookie(name: bytes, value: bytes, max_age: float, cors: bool) -> bytes:
    expires = email.utils.formatdate(time.time() + max_age, usegmt=True).encode()
    line = b"set-cookie: %s=%s; Expires=%s; Path=/\r\n" % (name, value, expires)
    if cors:
        line += b"set-cookie: %sCORS=%s; Expires=%s; Path=/; SameSite=None; Secure\r\n" % (
            name, value, expires)
    return line


def _tg_tag(tg_arn: str) -> str:
    return hashlib.sha256(tg_arn.encode()).hexdigest()[:12]


class Upstream:
    """One TCP connection to a target."""

    __slots__ = ("reader", "writer", "reused", "abort_reason", "last_used", "deadline", "rr")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.rr = ResponseReader(reader)
        self.reused = False
        self.abort_reason: str | None = None
        self.last_used = 0.0
        self.deadline = 0.0  # loop time by which the target must send something

    def abort(self, reason: str) -> None:
        if self.abort_reason is None:
            self.abort_reason = reason
        self.writer.transport.abort()


class _Client:
    """A client connection; `deadline` is when it is closed as idle (408 mid-request);
    `busy` while a request read whole is being answered."""

    __slots__ = ("writer", "deadline", "rr", "busy")

    def __init__(self, writer: asyncio.StreamWriter, rr: RequestReader) -> None:
        self.writer = writer
        self.deadline = 0.0
        self.rr = rr
        self.busy = False

    @property
    def idle(self) -> bool:
        return not self.busy and not self.rr.in_message


ABORT_STATUS = {"idle_timeout": 504, "drain_expired": 502, "target_group_deleted": 503}


class ElbError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class _Running:
    spec: ListenerSpec
    servers: list[asyncio.base_events.Server]
    socks: sockets.SocketSet
    clients: set[_Client] = field(default_factory=set)

    def close(self) -> None:
        for srv in self.servers:
            srv.close()
        sockets.close(self.socks)


# A listener's sockets for one node -> (sockets, adopted: they listened before, so no
# `listener started` event). Raises OSError when they cannot be had.
SocketSource = Callable[[str, str, int], tuple[sockets.SocketSet, bool]]


class DataPlane:
    """All listeners of all load balancers, sharing per-target connection pools.

    Idle timeouts are enforced by one sweeper task (resolution SWEEP seconds) instead of a
    timer per read: per-request timers cost ~20% of the proxy's CPU.
    """

    SWEEP = 0.1

    def __init__(self, store: Routes, events: Events, settings: FakeAwsSettings, *,
                 reuse_port: bool = False, announce: bool = True) -> None:
        self.store = store
        self.events = events
        self.settings = settings
        # Worker processes share each listener port (SO_REUSEPORT); one of them announces
        # listener starts and stops so the event log has each once.
        self.reuse_port = reuse_port
        self.announce = announce
        self.listeners: dict[str, _Running] = {}
        self.pools: dict[tuple[str, int], list[Upstream]] = {}
        self.waiting: set[Upstream] = set()
        self.requests = 0
        self.cookies = CookieJar()
        self.rng = random.Random()
        self._sweeper: asyncio.Task[None] | None = None
        store.on_target_removed = self._target_removed
        # Listening sockets a restarted engine got from the old one, used instead of binding.
        self.adopted: dict[sockets.Where, list[sockets.SocketSet]] = {}
        self.sockets_for: SocketSource = self._own_sockets
        # Retiring (the engine is being replaced): no accepting, every response closes its
        # connection (Connection: close), idle connections end after a grace period.
        self.retiring = False

    def _own_sockets(self, arn: str, host: str, port: int) -> tuple[sockets.SocketSet, bool]:
        sets = self.adopted.pop((host, port), None)
        if sets:
            sockets.close(s for extra in sets[1:] for s in extra)
            return sets[0], True
        return sockets.bind(host, port, self.reuse_port), False

    def listening_sets(self) -> dict[sockets.Where, list[sockets.SocketSet]]:
        """Every listener's sockets (one set: this process is the one node)."""
        return {self._where(run.spec): [run.socks] for run in self.listeners.values()}

    # ---- listener lifecycle ----------------------------------------------------------------
    async def sync(self, specs: list[ListenerSpec], snap: wire.Snapshot | None = None
                   ) -> list[BindFailure]:
        """Start, stop and update listeners to match `specs` -> the listeners that could
        not bind. (`snap`, the whole snapshot, is for WorkerPool.sync; this reads target
        groups from its store.)"""
        failures: list[BindFailure] = []
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        want = {s.arn: s for s in specs}
        for arn in list(self.listeners):
            if arn not in want or self._where(want[arn]) != self._where(
                    self.listeners[arn].spec):
                await self._stop(arn)
        # Every load balancer on one address (listener_addresses shared): a port is one
        # listener's. Checked here because SO_REUSEPORT workers would otherwise share it.
        taken = {self._where(run.spec): arn for arn, run in self.listeners.items()}
        for arn, spec in want.items():
            if arn in self.listeners:
                self.listeners[arn].spec = spec
                continue
            host, port = where = self._where(spec)
            if where in taken:
                failures.append(BindFailure(arn, port, host, wire.PORT_TAKEN + taken[where]))
                continue
            try:
                socks, adopted = self.sockets_for(arn, host, port)
                servers = [await asyncio.start_server(functools.partial(self._client, arn),
                                                      sock=sock, backlog=sockets.BACKLOG)
                           for sock in socks]
            except (OSError, OverflowError) as exc:
                log.error("listener bind failed port=%s err=%s", spec.port, exc)
                failures.append(BindFailure(arn, port, host, str(exc)))
                if self.announce:  # (a taken port is refused before it gets here)
                    self.events.emit("listener", action="bind_failed", listener_port=spec.port,
                                     listener_arn=arn, host=host,
                                     error=str(exc))
                continue
            self.listeners[arn] = _Running(spec, servers, socks)
            taken[where] = arn
            if self.announce and not adopted:
                self.events.emit("listener", action="started", listener_port=spec.port,
                                 listener_arn=arn, host=host)
        return failures

    def _where(self, spec: ListenerSpec) -> tuple[str, int]:
        return spec.host or self.settings.listen_on, spec.port

    async def _stop(self, arn: str) -> None:
        run = self.listeners.pop(arn)
        run.close()
        for c in list(run.clients):
            c.writer.close()
        if self.announce:
            self.events.emit("listener", action="stopped", listener_port=run.spec.port,
                             listener_arn=arn)

    async def stop_all(self) -> None:
        for arn in list(self.listeners):
            await self._stop(arn)
        for pool in self.pools.values():
            for up in pool:
                up.writer.close()
        self.pools.clear()

    async def stats(self) -> dict[str, Any]:
        return {"requests": self.requests, "workers": []}

    async def stop_accepting(self) -> None:
        """The engine is being replaced: accept no more (the sockets stay open in the new
        engine, so nothing queued on them is lost); what arrives on connections already
        open is answered with Connection: close, so their clients reconnect to the new one."""
        self.retiring = True
        self.announce = False  # the listeners go on in the new engine: no `stopped` event
        for run in self.listeners.values():
            run.close()

    async def drain(self, grace: float, limit: float) -> None:
        """After stop_accepting: close the connections still idle after `grace` s; return
        once none is left (after `limit` s the rest are cut)."""
        runs = list(self.listeners.values())
        loop = asyncio.get_running_loop()
        start = loop.time()
        while any(run.clients for run in runs) and loop.time() - start < limit:
            if loop.time() - start >= grace:
                # A client sending just now may see the close (the keep-alive race every
                # HTTP server has at its idle timeout); one busy meanwhile got `close`.
                for run in runs:
                    for c in [c for c in run.clients if c.idle]:
                        c.writer.close()
            await asyncio.sleep(0.02)
        for run in runs:
            for c in list(run.clients):
                c.writer.transport.abort()

    def push_runtime(self) -> None:
        """Run-time settings changed: nothing to do, they are read from the store."""

    async def close(self) -> None:
        await self.stop_all()

    def _target_removed(self, t: Target) -> None:
        for up in self.pools.pop((t.id, t.port), []):
            up.writer.close()

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.SWEEP)
            now = loop.time()
            for up in [u for u in self.waiting if u.deadline <= now]:
                self.waiting.discard(up)
                up.abort("idle_timeout")
            for run in self.listeners.values():
                for c in [c for c in run.clients if c.deadline and c.deadline <= now]:
                    c.deadline = 0.0
                    if c.rr.in_message:
                        # Idle with a request begun (head or body trickling): ALB's 408.
                        self._client_error(c.writer, run.spec,
                                           HttpError(408, "request_timeout", c.rr.path()))
                        c.writer.close()
                    else:
                        c.writer.transport.abort()

    # ---- per client connection ------------------------------------------------------------
    async def _client(self, arn: str, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        run = self.listeners.get(arn)
        if run is None:
            writer.close()
            return
        rr = RequestReader(reader)
        client = _Client(writer, rr)
        run.clients.add(client)
        peer = writer.get_extra_info("peername")
        client_ip = (peer[0] if peer else "0.0.0.0").encode()
        loop = asyncio.get_running_loop()
        opened = loop.time()  # client keep-alive duration counts from the accept

        def touch() -> None:  # the idle timeout counts inactivity, not request duration
            client.deadline = loop.time() + run.spec.idle_timeout

        try:
            while True:
                touch()
                client.busy = False
                try:
                    msg = await rr.next(touch)
                except HttpError as err:
                    if client.deadline:  # not already answered 408 by the sweeper
                        self._client_error(writer, run.spec, err)
                    return
                except OSError:
                    return
                if msg is None:
                    return
                req, body = msg
                client.deadline = 0.0
                client.busy = True
                if self.retiring:
                    req.close = True  # the client reconnects, to the new engine
                # The listener's config as of now, not as of accept or of the previous
                # request: sync() swaps run.spec, so a ModifyListener applies to the next
                # request on every connection, idle keep-alive ones included.
                spec = run.spec
                if loop.time() - opened >= spec.client_keep_alive:
                    # Keep-alive duration elapsed: this request is still served; its response
                    # (forwarded or ALB-made) says "connection: close", then the connection
                    # ends (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html#http-client-keep-alive-duration).
                    req.close = True
                if req.xff_count > XFF_MAX:
                    self._fail(writer, spec, req, 463, "xff_too_many", None, None)
                    if req.close:
                        return
                    continue
                if req.first[0] == b"TRACE":
                    # AWS: "The client used the TRACE method, which is not supported by
                    # Application Load Balancers" -> 405; the docs do not say the connection
                    # is closed, so it is kept like 463 (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-troubleshooting.html#http-405-issues).
                    self._fail(writer, spec, req, 405, "method_not_allowed", None, None)
                    if req.close:
                        return
                    continue
                # The first rule (lowest priority number) whose conditions all match, else
                # the default action; no rules: nothing parsed, straight to the default.
                view = None
                if spec.rules:
                    view = rules_.RequestView(req.first[0], req.first[1], req.block, client_ip)
                    priority, action = rules_.select(spec.rules, spec.default, view)
                else:
                    priority, action = None, spec.default
                if isinstance(action, rules_.Forward):
                    if not await self._forward(spec, action, req, body, writer, client_ip,
                                               client):
                        return
                else:
                    self._answer(spec, action, priority, req, writer, view or rules_.RequestView(
                        req.first[0], req.first[1], req.block, client_ip))
                if req.close:
                    return
        finally:
            run.clients.discard(client)
            writer.close()

    def _client_error(self, writer: asyncio.StreamWriter, spec: ListenerSpec,
                      err: HttpError) -> None:
        writer.write(error_response(err.status, err.reason, close=True))
        self.events.emit("elb_error", status=err.status, reason=err.reason, target=None,
                         listener_port=spec.port, path=err.path, tg_arn=None)

    def _answer(self, spec: ListenerSpec, action: rules_.FixedResponse | rules_.Redirect,
                priority: int | None, req: Head, writer: asyncio.StreamWriter,
                view: rules_.RequestView) -> None:
        """A fixed-response or redirect action: the ALB answers itself (not an error, so
        no x-testbed-elb-error header); an event per answer lets runs count them."""
        self.requests += 1
        head_only = req.first[0] == b"HEAD"
        path = req.first[1].decode("latin-1")
        if isinstance(action, rules_.FixedResponse):
            writer.write(action.response(head_only, req.close))
            self.events.emit("fixed_response", listener_port=spec.port, priority=priority,
                             status=action.status, path=path)
            return
        location = action.location(view, spec.port)
        writer.write(action.response(location, head_only, req.close))
        self.events.emit("redirect", listener_port=spec.port, priority=priority,
                         status=action.status, path=path, location=location)

    def _fail(self, writer: asyncio.StreamWriter, spec: ListenerSpec, req: Head, status: int,
              reason: str, tg_arn: str | None, target: Target | None) -> None:
        writer.write(error_response(status, reason, close=req.close,
                                    head=req.first[0] == b"HEAD"))
        # tg_arn is the group the request was forwarded to, also when it had no target.
        self.events.emit("elb_error", status=status, reason=reason,
                         target=target.addr if target else None, listener_port=spec.port,
                         path=req.first[1].decode("latin-1"), tg_arn=tg_arn)

    async def _forward(self, spec: ListenerSpec, action: rules_.Forward, req: Head,
                       body: bytes, writer: asyncio.StreamWriter, client_ip: bytes,
                       client: _Client | None = None) -> bool:
        """Proxy one request by a forward action (the default one or a rule's); False when
        the client connection must be closed."""
        self.requests += 1
        cookies: dict[bytes, bytes] | None = None
        set_cookies = b""
        fwd = action.groups
        if len(fwd) == 1 and fwd[0][1] > 0:
            tg_arn = fwd[0][0]
        else:
            chosen = None
            if action.stickiness > 0 and len(fwd) > 1:
                cookies = request_cookies(req.block)
                chosen = self._sticky_group(action, cookies.get(b"AWSALBTG"))
            if chosen is None:
                chosen = pick_weighted(fwd, self.rng)
            if chosen is None:
                # Every weight is 0: no group may get the request (a documented choice).
                self._fail(writer, spec, req, 503, "all_weights_zero", None, None)
                return True
            tg_arn = chosen
            if action.stickiness > 0 and len(fwd) > 1:
                set_cookies += _set_cookie(
                    b"AWSALBTG", self.cookies.make(_tg_tag(tg_arn), str(time.time())),
                    action.stickiness, cors=True)
        group = self.store.groups.get(tg_arn)
        sticky = group.stickiness if group is not None else None
        target = None
        app_new = False  # app_cookie: a new target replaced the one the session was stuck to
        if sticky is not None:
            if cookies is None:
                cookies = request_cookies(req.block)
            target, app_new = self._sticky_target(tg_arn, sticky, cookies, action)
        if target is None:
            target = self.store.pick(tg_arn)
        if target is None:
            self._fail(writer, spec, req, 503, "no_targets", tg_arn, None)
            return True
        if sticky is not None and sticky.type == "lb_cookie":
            # Set on every response (refreshing Expires), as ALBs do.
            set_cookies += _set_cookie(b"AWSALB", self._target_cookie(tg_arn, target),
                                       sticky.duration, cors=True)
        target.in_flight += 1
        up: Upstream | None = None
        try:
            up = await self._acquire(target, spec)
            target.aborters.add(up.abort)
            up.rr.start(req.first[0] == b"HEAD")
            up.writer.write(_request_bytes(req, body, client_ip, spec.port))
            loop = asyncio.get_running_loop()
            up.deadline = loop.time() + spec.idle_timeout
            self.waiting.add(up)
            try:
                resp = await up.rr.head()
                while 100 <= resp.status < 200 and resp.status != 101:
                    # Interim (100 Continue, 103 Early Hints): forwarded, then the final one.
                    writer.write(head_bytes(resp.first, resp.block))
                    up.deadline = loop.time() + spec.idle_timeout
                    resp = await up.rr.head()
            except asyncio.IncompleteReadError as exc:
                raise _closed_error(up, got_bytes=bool(exc.partial), reset=False) from exc
            except BadMessage as exc:
                raise ElbError(502, "malformed_response") from exc
            except OSError as exc:
                raise _closed_error(up, got_bytes=False, reset=True) from exc
            if resp.status == 101:
                if not req.upgrade or client is None:
                    raise ElbError(502, "malformed_response")
                await self._tunnel(up, resp, writer, client, spec)
                return False
            if sticky is not None and sticky.type == "app_cookie" and (
                    app_new or response_sets_cookie(resp.block, sticky.cookie_name.encode())):
                set_cookies += _set_cookie(self._app_cookie_name(action, tg_arn),
                                           self._target_cookie(tg_arn, target),
                                           APP_COOKIE_DAYS * 86400, cors=False)
            reusable, keep = await self._relay(up, req, resp, writer, spec, set_cookies)
            self.waiting.discard(up)
            target.aborters.discard(up.abort)
            if reusable and not target.dp_removed:
                self._release(target, up)
            else:
                up.writer.close()
            up = None
            return keep
        except ElbError as err:  # the finally below drops the upstream connection
            self._fail(writer, spec, req, err.status, err.reason, tg_arn, target)
            return True
        except _Truncated as tr:
            self.events.emit("elb_error", status=ABORT_STATUS.get(tr.reason, 502),
                             reason=tr.reason, target=target.addr, listener_port=spec.port,
                             path=req.first[1].decode("latin-1"), tg_arn=target.tg_arn,
                             truncated=True)
            return False
        finally:
            target.in_flight -= 1
            if up is not None:  # an error, or cancelled: never leak nor reuse the connection
                self.waiting.discard(up)
                target.aborters.discard(up.abort)
                up.writer.close()

    # ---- stickiness ------------------------------------------------------------------------
    def _target_cookie(self, tg_arn: str, target: Target) -> bytes:
        return self.cookies.make(_tg_tag(tg_arn), target.id, str(target.port), str(time.time()))

    @staticmethod
    def _app_cookie_name(action: rules_.Forward, tg_arn: str) -> bytes:
        # AWSALBAPP-<n>: one per app_cookie target group of the action; n = the group's
        # position in the forward action (0 for a single group).
        n = next((i for i, f in enumerate(action.groups) if f[0] == tg_arn), 0)
        return b"AWSALBAPP-%d" % n

    def _sticky_group(self, action: rules_.Forward, value: bytes | None) -> str | None:
        """The group an AWSALBTG cookie holds the client to, if still valid and weighted > 0."""
        f = self.cookies.read(value)
        if not f or len(f) != 2:
            return None
        try:
            if time.time() - float(f[1]) > action.stickiness:
                return None
        except ValueError:
            return None
        return next((arn for arn, w in action.groups if w > 0 and _tg_tag(arn) == f[0]), None)

    def _sticky_target(self, tg_arn: str, sticky: Stickiness, cookies: dict[bytes, bytes],
                       action: rules_.Forward) -> tuple[Target | None, bool]:
        """-> (the target the client's cookie holds it to, if routable; whether the session
        must be re-stuck to a newly picked target (app_cookie whose target went away))."""
        if sticky.type == "lb_cookie":
            value = cookies.get(b"AWSALB")
        else:
            # AWS: clients send back both the app's cookie and the ALB's.
            if sticky.cookie_name.encode() not in cookies:
                return None, False
            value = cookies.get(self._app_cookie_name(action, tg_arn))
        f = self.cookies.read(value)
        if not f or len(f) != 4 or f[0] != _tg_tag(tg_arn):
            return None, False
        try:
            port, issued = int(f[2]), float(f[3])
        except ValueError:
            return None, False
        if time.time() - issued > sticky.duration:
            return None, False
        target = self.store.routable(tg_arn, f[1], port)
        # app_cookie: AWS "treats the session as now being stuck to the new healthy target"
        # when the old one fails, so a new ALB cookie is issued even if the app sets none.
        return target, target is None and sticky.type == "app_cookie"

    async def _acquire(self, target: Target, spec: ListenerSpec) -> Upstream:
        key = (target.id, target.port)
        pool = self.pools.get(key)
        if pool:
            now = time.monotonic()
            while pool:
                up = pool.pop()
                if (up.reader.at_eof() or up.writer.transport.is_closing()
                        or now - up.last_used > spec.idle_timeout):
                    up.writer.close()
                    continue
                up.reused = True
                return up
        try:
            async with asyncio.timeout(self.store.runtime(target.tg_arn, "connect_timeout")):
                r, w = await asyncio.open_connection(target.id, target.port)
        except TimeoutError as exc:
            raise ElbError(504, "connect_timeout") from exc
        except ConnectionRefusedError as exc:
            raise ElbError(502, "target_refused") from exc
        except OSError as exc:
            raise ElbError(502, "target_unreachable") from exc
        return Upstream(r, w)

    def _release(self, target: Target, up: Upstream) -> None:
        pool = self.pools.setdefault((target.id, target.port), [])
        if len(pool) >= POOL_MAX:
            up.writer.close()
            return
        up.last_used = time.monotonic()
        pool.append(up)

    async def _tunnel(self, up: Upstream, resp: Head, writer: asyncio.StreamWriter,
                      client: _Client, spec: ListenerSpec) -> None:
        """101 Switching Protocols (WebSocket): bytes both ways until either side ends or
        nothing moves for the idle timeout; the target connection is never reused."""
        self.waiting.discard(up)
        loop = asyncio.get_running_loop()
        writer.write(head_bytes(resp.first, resp.block, b"connection: upgrade\r\n"))
        if up.rr.upgraded:
            writer.write(up.rr.upgraded)
        if client.rr.leftover:
            up.writer.write(client.rr.leftover)
            client.rr.leftover = b""

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(READ):
                    client.deadline = loop.time() + spec.idle_timeout
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass

        client.deadline = loop.time() + spec.idle_timeout
        tasks = [loop.create_task(pump(client.rr.reader, up.writer)),
                 loop.create_task(pump(up.reader, writer))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            client.deadline = 0.0

    async def _relay(self, up: Upstream, req: Head, resp: Head, writer: asyncio.StreamWriter,
                     spec: ListenerSpec, extra: bytes = b"") -> tuple[bool, bool]:
        """Send the response to the client -> (upstream reusable, client connection kept)."""
        code = resp.status
        rr = up.rr
        no_body = req.first[0] == b"HEAD" or code in (204, 304)
        until_eof = not no_body and not resp.chunked and resp.length is None
        client_close = req.close or until_eof
        head = b"HTTP/1.1 %s\r\n%s%sconnection: %s\r\n\r\n" % (
            b" ".join(resp.first[1:]), resp.block, extra,
            b"close" if client_close else b"keep-alive")
        if no_body:
            writer.write(head)
            return not resp.close and up.abort_reason is None and not rr.extra, \
                not client_close
        loop = asyncio.get_running_loop()
        sent = False  # the head went to the client
        buf: list[bytes] = []
        size = 0
        try:
            while True:
                up.deadline = loop.time() + spec.idle_timeout
                try:
                    part = await rr.body()
                except asyncio.IncompleteReadError:
                    if not until_eof:
                        raise
                    part = None  # the connection's end is the body's end
                if part is None:
                    break
                if not part:
                    continue
                if resp.chunked:  # llhttp de-chunks; re-chunk (trailers are dropped)
                    part = b"%x\r\n%s\r\n" % (len(part), part)
                if sent:
                    writer.write(part)
                    await writer.drain()
                    continue
                # Small bodies leave with the head in one write; a target failing before the
                # body is complete then still gets the client a status.
                buf.append(part)
                size += len(part)
                if size > COPY_CHUNK:
                    writer.write(head + b"".join(buf))
                    sent, buf = True, []
                    await writer.drain()
        except (asyncio.IncompleteReadError, OSError, BadMessage) as exc:
            reason = up.abort_reason
            if not sent:
                if reason:
                    raise ElbError(ABORT_STATUS.get(reason, 502), reason) from exc
                raise ElbError(502, "malformed_response" if isinstance(exc, BadMessage)
                               else "truncated_response") from exc
            raise _Truncated(reason or "target_closed") from exc
        if resp.chunked:
            buf.append(b"0\r\n\r\n")
        writer.write(b"".join(buf) if sent else head + b"".join(buf))
        if until_eof:
            return False, False
        return not resp.close and up.abort_reason is None and not rr.extra, not client_close


def _closed_error(up: Upstream, got_bytes: bool, reset: bool) -> ElbError:
    if up.abort_reason:
        return ElbError(ABORT_STATUS.get(up.abort_reason, 502), up.abort_reason)
    if got_bytes:
        return ElbError(502, "malformed_response")
    if up.reused:
        return ElbError(502, "keepalive_race")
    return ElbError(502, "target_reset" if reset else "target_closed")


def _request_bytes(req: Head, body: bytes, client_ip: bytes, port: int) -> bytes:
    xff = req.xff + b", " + client_ip if req.xff else client_ip
    length = b"content-length: %d\r\n" % len(body) if body or req.length is not None else b""
    return b"%s %s HTTP/1.1\r\n%sx-forwarded-for: %s\r\nx-forwarded-proto: http\r\n" \
        b"x-forwarded-port: %d\r\n%sconnection: %s\r\n\r\n%s" % (
            req.first[0], req.first[1], req.block, xff, port, length,
            b"upgrade" if req.upgrade else b"keep-alive", body)


class _Truncated(Exception):
    """The response head already went to the client; the body could not be completed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

