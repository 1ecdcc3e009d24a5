"""The open-loop engine.

Requests are scheduled by their intended send time (i / rate after the start) and fired even
when earlier ones are still running, so a stalled server shows up as latency and errors instead
of a slower sender (no coordinated omission). Latency is measured from the intended time.
Everything after the connect is callback-driven (no task per request) to keep CPU per request low.

What is sent is one request (GET of the URL's path) or a weighted mix of RequestSpecs; each one
is encoded to bytes once, and each send picks one with a seeded RNG, so a mix is reproducible.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from urllib.parse import urlsplit

from testbed.loadgen.http1 import (
    Http1Conn,
    check_header,
    check_host,
    check_method,
    check_target,
    encode_request,
)
from testbed.loadgen.records import (
    Record,
    classify_exception,
    pod_from_body,
    status_class,
)

ELB_ERROR_HEADER = "x-testbed-elb-error"


@dataclass(frozen=True)
class RequestSpec:
    """One kind of request in a mix. Invalid values raise ValueError when it is created.

    path: origin-form target, query included ("/api/items?id=3").
    method: an RFC 9110 token, sent as given (methods are case-sensitive).
    headers: (name, value) pairs sent in order after Host; they replace the default User-Agent
        and Accept. Host, Content-Length, Transfer-Encoding and Connection are refused: the
        Host comes from AttackConfig.host, the framing from the body, reuse from keepalive.
    body: sent with a Content-Length; POST, PUT and PATCH send "Content-Length: 0" when empty.
    weight: relative share of the requests (> 0).
    """

    path: str = "/"
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    weight: float = 1.0

    def __post_init__(self) -> None:
        check_method(self.method)
        check_target(self.path)
        # accept any sequence of pairs but store tuples, so the spec stays hashable
        headers = tuple((name, value) for name, value in self.headers)
        for name, value in headers:
            check_header(name, value)
        object.__setattr__(self, "headers", headers)
        if not isinstance(self.body, bytes | bytearray | memoryview):
            raise ValueError(f"body must be bytes, got {type(self.body).__name__}")
        object.__setattr__(self, "body", bytes(self.body))
        if not (isinstance(self.weight, int | float) and math.isfinite(self.weight)
                and self.weight > 0):
            raise ValueError(f"weight must be a positive finite number, got {self.weight!r}")


@dataclass(frozen=True)
class AttackConfig:
    """What to send and how hard.

    With `requests` empty, every request is GET of the URL's path and query (the default). With
    `requests` given, only the URL's scheme, host and port are used (its path is ignored) and
    each request is one of them, drawn by weight from an RNG seeded with `seed`.
    """

    url: str  # http:// only: the emulated ALB listener speaks plain HTTP
    rate: float  # requests per second
    duration: float  # seconds of sending; an external stop event may end it earlier
    timeout: float = 30.0  # per request, connect included, from the actual start
    max_connections: int = 512
    keepalive: bool = True
    parse_pod: bool = True
    requests: tuple[RequestSpec, ...] = ()
    host: str | None = None  # Host header; None: the URL's host[:port]
    seed: int = 0  # picks the request sequence of a mix

    def __post_init__(self) -> None:
        requests = tuple(self.requests)
        for spec in requests:
            if not isinstance(spec, RequestSpec):
                raise ValueError(f"requests must hold RequestSpec, got {type(spec).__name__}")
        object.__setattr__(self, "requests", requests)
        if self.host is not None:
            check_host(self.host)

    def request_specs(self) -> tuple[RequestSpec, ...]:
        """What the attack sends: `requests`, or GET of the URL's path and query."""
        return self.requests or (RequestSpec(path=url_target(self.url)),)


def url_target(url: str) -> str:
    """The request target of a URL: its path ("/" when empty) and query."""
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def make_chooser(weights: Sequence[float], seed: int) -> Callable[[], int]:
    """A function returning indexes into `weights` with those relative frequencies; the same
    seed gives the same sequence. One RNG draw and a bisect per call; no RNG for one entry."""
    if len(weights) == 1:
        return lambda: 0
    cum = list(accumulate(weights))
    total = cum[-1]
    last = len(cum) - 1  # random() * total can round up to total: never index past the end
    rnd = random.Random(seed).random
    return lambda: bisect_right(cum, rnd() * total, 0, last)


@dataclass
class AttackResult:
    """Records plus the wall-clock bounds of the run (unix seconds)."""

    records: list[Record]
    started: float
    attack_end: float  # when the last request was scheduled to go
    finished: float
    asked_rate: float
    # what was sent; Record.req indexes this (the URL's GET alone when no mix was configured)
    requests: tuple[RequestSpec, ...] = field(default_factory=tuple)


class _Engine:
    """Connection pool + per-request bookkeeping."""

    def __init__(self, cfg: AttackConfig, on_record: Callable[[Record], None] | None) -> None:
        parts = urlsplit(cfg.url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http:// URLs are supported, got {cfg.url!r}")
        self.cfg = cfg
        self.host = parts.hostname
        self.port = parts.port or 80
        # userinfo is not part of a Host header
        host_hdr = cfg.host if cfg.host is not None else parts.netloc.rpartition("@")[2]
        check_host(host_hdr)
        self.specs = cfg.request_specs()
        # everything in a request is fixed per spec, so the bytes are built once here
        self.wire = [encode_request(s.method, s.path, host_hdr, s.headers, s.body,
                                    cfg.keepalive) for s in self.specs]
        self.is_head = [s.method == "HEAD" for s in self.specs]
        self.choose = make_chooser([s.weight for s in self.specs], cfg.seed)
        self.loop = asyncio.get_running_loop()
        self.on_record = on_record
        self.records: list[Record] = []
        self.idle: list[Http1Conn] = []
        self.open = 0  # connections open or connecting
        self.waiting: deque[tuple[int, float, int]] = deque()
        self.outstanding = 0
        self.all_done = asyncio.Event()
        self.scheduling = True
        self.t0_loop = self.loop.time() + 0.01
        self.t0_unix = time.time() + (self.t0_loop - self.loop.time())
        self.tasks: set[asyncio.Task[None]] = set()

    def unix(self, loop_t: float) -> float:
        return self.t0_unix + (loop_t - self.t0_loop)

    def submit(self, seq: int, intended: float) -> None:
        self.outstanding += 1
        # chosen here, in seq order, so the sequence depends on the seed only (not on timing)
        self._dispatch(seq, intended, self.choose())

    def _dispatch(self, seq: int, intended: float, req: int) -> None:
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                self._send(conn, seq, intended, req, self.loop.time())
                return
        if self.open < self.cfg.max_connections:
            self.open += 1
            task = self.loop.create_task(self._connect(seq, intended, req))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        else:
            self.waiting.append((seq, intended, req))

    async def _connect(self, seq: int, intended: float, req: int) -> None:
        start = self.loop.time()
        try:
            _, proto = await asyncio.wait_for(
                self.loop.create_connection(lambda: Http1Conn(self._lost), self.host, self.port),
                self.cfg.timeout)
        except Exception as exc:  # refused, unreachable, timeout: all are data
            self.open -= 1
            self._record(seq, intended, req, start, 0, {}, b"", exc)
            self._next_waiting()
            return
        assert isinstance(proto, Http1Conn)
        self._send(proto, seq, intended, req, start)

    def _send(self, conn: Http1Conn, seq: int, intended: float, req: int, start: float) -> None:
        timer = self.loop.call_at(start + self.cfg.timeout, conn.fail,
                                  TimeoutError(f"no response within {self.cfg.timeout}s"))

        def done(c: Http1Conn, status: int, headers: dict[str, str], body: bytes,
                 exc: BaseException | None) -> None:
            timer.cancel()
            self._record(seq, intended, req, start, status, headers, body, exc)
            if c.reusable and not c.closed:
                if self.waiting:
                    s, i, q = self.waiting.popleft()
                    self._send(c, s, i, q, self.loop.time())
                else:
                    self.idle.append(c)

        if not self.cfg.keepalive:
            conn.reusable = False
        conn.send(self.wire[req], done, self.is_head[req])

    def _lost(self, conn: Http1Conn) -> None:
        self.open -= 1
        if conn in self.idle:
            self.idle.remove(conn)
        self._next_waiting()

    def _next_waiting(self) -> None:
        if self.waiting and self.open < self.cfg.max_connections:
            self._dispatch(*self.waiting.popleft())

    def _record(self, seq: int, intended: float, req: int, start: float, status: int,
                headers: dict[str, str], body: bytes, exc: BaseException | None) -> None:
        end = self.loop.time()
        if exc is None:
            cls, err = status_class(status), ""
            pod = pod_from_body(body) if self.cfg.parse_pod else None
        else:
            cls, err, pod = classify_exception(exc), f"{type(exc).__name__}: {exc}"[:200], None
        rec = Record(seq=seq, intended=self.unix(intended), started=self.unix(start),
                     latency=end - intended, status=status, cls=cls, error=err,
                     elb_error=headers.get(ELB_ERROR_HEADER), pod=pod, req=req)
        self.records.append(rec)
        if self.on_record is not None:
            self.on_record(rec)
        self.outstanding -= 1
        if not self.scheduling and self.outstanding == 0:
            self.all_done.set()

    def close(self) -> None:
        for conn in self.idle:
            conn.abort()
        self.idle.clear()


async def attack(cfg: AttackConfig, stop: asyncio.Event | None = None,
                 on_record: Callable[[Record], None] | None = None) -> AttackResult:
    """Send cfg.rate requests per second for cfg.duration seconds (or until `stop` is set)."""
    if cfg.rate <= 0 or cfg.duration <= 0:
        raise ValueError("rate and duration must be positive")
    eng = _Engine(cfg, on_record)
    loop = eng.loop
    interval = 1.0 / cfg.rate
    total = int(round(cfg.rate * cfg.duration))
    t0 = eng.t0_loop
    seq = 0
    last = t0
    while seq < total and not (stop is not None and stop.is_set()):
        now = loop.time()
        due = t0 + seq * interval
        if due > now:
            await asyncio.sleep(due - now)
            now = loop.time()
        # fire everything that is due: timer granularity is coarser than 1/rate at high rates
        while seq < total and t0 + seq * interval <= now:
            last = t0 + seq * interval
            eng.submit(seq, last)
            seq += 1
    eng.scheduling = False
    if eng.outstanding:
        await eng.all_done.wait()
    eng.close()
    eng.records.sort(key=lambda r: r.seq)
    return AttackResult(records=eng.records, started=eng.t0_unix, attack_end=eng.unix(last),
                        finished=time.time(), asked_rate=cfg.rate, requests=eng.specs)


def run_attack(cfg: AttackConfig) -> AttackResult:
    """Blocking wrapper for CLIs and benchmarks."""
    return asyncio.run(attack(cfg))


class BackgroundAttack:
    """An attack on its own thread and event loop, for synchronous callers (the runner):
    start it, roll the Deployment, call stop() once the rollout is done, then result()."""

    def __init__(self, cfg: AttackConfig,
                 on_record: Callable[[Record], None] | None = None) -> None:
        import threading

        self.cfg = cfg
        self._on_record = on_record  # runs on the load thread: keep it cheap
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._result: AttackResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="loadgen", daemon=True)

    def start(self) -> BackgroundAttack:
        """Returns once the attack's event loop runs (stop() works from then on)."""
        self._thread.start()
        self._ready.wait(timeout=10)
        return self

    def _run(self) -> None:
        async def main() -> AttackResult:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            return await attack(self.cfg, stop=self._stop, on_record=self._on_record)
        try:
            self._result = asyncio.run(main())
        except BaseException as exc:  # surfaced by result()
            self._error = exc
            self._ready.set()

    def stop(self) -> None:
        """Stop scheduling new requests; in-flight ones still complete."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)

    def result(self, timeout: float | None = None) -> AttackResult:
        """Wait for the attack to end (duration reached or stop()) and return its records."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("load generator still running")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result
