"""The open-loop engine.

Requests are scheduled by their intended send time (i / rate after the start) and fired even
when earlier ones are still running, so a stalled server shows up as latency and errors instead
of a slower sender (no coordinated omission). Latency is measured from the intended time.
Everything after the connect is callback-driven (no task per request) to keep CPU per request low.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from testbed.loadgen.http1 import Http1Conn
from testbed.loadgen.records import (
    Record,
    classify_exception,
    pod_from_body,
    status_class,
)

ELB_ERROR_HEADER = "x-testbed-elb-error"


@dataclass(frozen=True)
class AttackConfig:
    """What to send and how hard."""

    url: str  # http:// only: the emulated ALB listener speaks plain HTTP
    rate: float  # requests per second
    duration: float  # seconds of sending; an external stop event may end it earlier
    timeout: float = 30.0  # per request, connect included, from the actual start
    max_connections: int = 512
    keepalive: bool = True
    parse_pod: bool = True


@dataclass
class AttackResult:
    """Records plus the wall-clock bounds of the run (unix seconds)."""

    records: list[Record]
    started: float
    attack_end: float  # when the last request was scheduled to go
    finished: float
    asked_rate: float


class _Engine:
    """Connection pool + per-request bookkeeping."""

    def __init__(self, cfg: AttackConfig, on_record: Callable[[Record], None] | None) -> None:
        parts = urlsplit(cfg.url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http:// URLs are supported, got {cfg.url!r}")
        self.cfg = cfg
        self.host = parts.hostname
        self.port = parts.port or 80
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        host_hdr = parts.netloc
        conn_hdr = "" if cfg.keepalive else "Connection: close\r\n"
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host_hdr}\r\n"
                        f"User-Agent: testbed-loadgen\r\nAccept: */*\r\n{conn_hdr}\r\n").encode()
        self.loop = asyncio.get_running_loop()
        self.on_record = on_record
        self.records: list[Record] = []
        self.idle: list[Http1Conn] = []
        self.open = 0  # connections open or connecting
        self.waiting: deque[tuple[int, float]] = deque()
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
        self._dispatch(seq, intended)

    def _dispatch(self, seq: int, intended: float) -> None:
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                self._send(conn, seq, intended, self.loop.time())
                return
        if self.open < self.cfg.max_connections:
            self.open += 1
            task = self.loop.create_task(self._connect(seq, intended))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        else:
            self.waiting.append((seq, intended))

    async def _connect(self, seq: int, intended: float) -> None:
        start = self.loop.time()
        try:
            _, proto = await asyncio.wait_for(
                self.loop.create_connection(lambda: Http1Conn(self._lost), self.host, self.port),
                self.cfg.timeout)
        except Exception as exc:  # refused, unreachable, timeout: all are data
            self.open -= 1
            self._record(seq, intended, start, 0, {}, b"", exc)
            self._next_waiting()
            return
        assert isinstance(proto, Http1Conn)
        self._send(proto, seq, intended, start)

    def _send(self, conn: Http1Conn, seq: int, intended: float, start: float) -> None:
        timer = self.loop.call_at(start + self.cfg.timeout, conn.fail,
                                  TimeoutError(f"no response within {self.cfg.timeout}s"))

        def done(c: Http1Conn, status: int, headers: dict[str, str], body: bytes,
                 exc: BaseException | None) -> None:
            timer.cancel()
            self._record(seq, intended, start, status, headers, body, exc)
            if c.reusable and not c.closed:
                if self.waiting:
                    s, i = self.waiting.popleft()
                    self._send(c, s, i, self.loop.time())
                else:
                    self.idle.append(c)

        if not self.cfg.keepalive:
            conn.reusable = False
        conn.send(self.request, done)

    def _lost(self, conn: Http1Conn) -> None:
        self.open -= 1
        if conn in self.idle:
            self.idle.remove(conn)
        self._next_waiting()

    def _next_waiting(self) -> None:
        if self.waiting and self.open < self.cfg.max_connections:
            seq, intended = self.waiting.popleft()
            self._dispatch(seq, intended)

    def _record(self, seq: int, intended: float, start: float, status: int,
                headers: dict[str, str], body: bytes, exc: BaseException | None) -> None:
        end = self.loop.time()
        if exc is None:
            cls, err = status_class(status), ""
            pod = pod_from_body(body) if self.cfg.parse_pod else None
        else:
            cls, err, pod = classify_exception(exc), f"{type(exc).__name__}: {exc}"[:200], None
        rec = Record(seq=seq, intended=self.unix(intended), started=self.unix(start),
                     latency=end - intended, status=status, cls=cls, error=err,
                     elb_error=headers.get(ELB_ERROR_HEADER), pod=pod)
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
                        finished=time.time(), asked_rate=cfg.rate)


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
