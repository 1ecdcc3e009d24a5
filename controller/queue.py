"""A client-go style work queue: dedup, per-key serialisation, delayed and rate-limited adds.

A key is never handed to two workers at once; a key added while it is being processed is
queued again once the worker calls done(). Rate-limited adds back off exponentially per key
(ALBC: workqueue.NewItemExponentialFailureRateLimiter(5ms, max), max 1000 s unless
--targetgroupbinding-max-exponential-backoff-delay) until forget().
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable

from controller import metrics
from controller.config import Config
from controller.log import get_logger

log = get_logger("queue")


class TokenBucket:
    """golang.org/x/time/rate's Limiter.Reserve: every call takes a token, waiting for it
    when the bucket is empty (tokens go negative; the wait is the debt over the rate)."""

    def __init__(self, qps: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.qps = qps
        self.burst = burst
        self.clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def reserve(self) -> float:
        now = self.clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.qps)
        self._at = now
        self._tokens -= 1
        return max(0.0, -self._tokens / self.qps)


class ExponentialBackoff:
    """Per-key exponential delay: base * 2**failures, capped; with a bucket, the later of that
    and the shared bucket's wait (client-go's DefaultControllerRateLimiter, a MaxOfRateLimiter
    over both, which ALBC v2.2.0 used)."""

    # client-go util/workqueue/default_rate_limiters.go DefaultControllerRateLimiter
    DEFAULT_BUCKET = (10.0, 100)

    def __init__(
        self,
        base: float = Config.backoff_base_seconds,
        cap: float = Config.backoff_max_seconds,
        bucket: TokenBucket | None = None,
    ) -> None:
        self.base = base
        self.cap = cap
        self.bucket = bucket
        self._failures: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, cfg: Config) -> ExponentialBackoff:
        """The binding controller's limiter as cfg says (--rate-limit-bucket adds the bucket)."""
        bucket = TokenBucket(*cls.DEFAULT_BUCKET) if cfg.rate_limit_bucket else None
        return cls(cfg.backoff_base_seconds, cfg.backoff_max_seconds, bucket)

    def when(self, key: Hashable) -> float:
        with self._lock:
            n = self._failures.get(key, 0)
            self._failures[key] = n + 1
            shared = self.bucket.reserve() if self.bucket is not None else 0.0
        return max(shared, min(self.cap, self.base * (2 ** min(n, 40))))

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def retries(self, key: Hashable) -> int:
        with self._lock:
            return self._failures.get(key, 0)


class WorkQueue:
    """Thread-safe rate-limited delaying queue."""

    def __init__(
        self, backoff: ExponentialBackoff | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.backoff = backoff or ExponentialBackoff()
        self.clock = clock
        self._cond = threading.Condition()
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._delayed: list[tuple[float, int, Hashable]] = []
        # One waiting entry per key, the earliest (client-go's delaying queue, and
        # controller-runtime's priority queue since ALBC v3.2.0): a key re-added later while
        # it waits keeps its time. Heap entries whose time is not the key's are stale.
        self._waiting: dict[Hashable, float] = {}
        self._seq = itertools.count()
        self._shutdown = False

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def add(self, key: Hashable) -> None:
        with self._cond:
            self._add_locked(key)

    def _add_locked(self, key: Hashable) -> None:
        if self._shutdown or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            metrics.QUEUE_DEPTH.set(len(self._queue))
            self._cond.notify()

    def add_after(self, key: Hashable, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutdown:
                return
            due = self.clock() + delay
            if self._waiting.get(key, due + 1) <= due:
                return
            self._waiting[key] = due
            heapq.heappush(self._delayed, (due, next(self._seq), key))
            self._cond.notify_all()

    def add_rate_limited(self, key: Hashable) -> float:
        delay = self.backoff.when(key)
        self.add_after(key, delay)
        return delay

    def forget(self, key: Hashable) -> None:
        self.backoff.forget(key)

    def num_requeues(self, key: Hashable) -> int:
        return self.backoff.retries(key)

    def _promote_due_locked(self) -> float | None:
        """Move due delayed keys into the queue; return seconds until the next one."""
        now = self.clock()
        while self._delayed and self._delayed[0][0] <= now:
            due, _, key = heapq.heappop(self._delayed)
            if self._waiting.get(key) == due:
                del self._waiting[key]
                self._add_locked(key)
        return (self._delayed[0][0] - now) if self._delayed else None

    def get(self, timeout: float | None = None) -> Hashable | None:
        """Block until a key is available (None on shutdown or timeout)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                wait_delay = self._promote_due_locked()
                if self._queue:
                    key = self._queue.popleft()
                    self._processing.add(key)
                    self._dirty.discard(key)
                    metrics.QUEUE_DEPTH.set(len(self._queue))
                    return key
                if self._shutdown:
                    return None
                wait = wait_delay
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)

    def done(self, key: Hashable) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()

    def shutdown(self) -> None:
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()

    def pending_delayed(self) -> list[tuple[float, Hashable]]:
        """(due time, key) of delayed adds; for tests and debugging."""
        with self._cond:
            return sorted((t, k) for k, t in self._waiting.items())


class QueueWorkers:
    """The loop around a work queue (controller-runtime's controller): `worker_count` threads
    take keys and reconcile them (`process_one`), one thread re-adds every key each
    `sync_period_seconds` (`enqueue_all`). Subclasses set those and call `_init_workers`."""

    queue: WorkQueue
    worker_count: int
    sync_period_seconds: float
    thread_name = "worker"

    def _init_workers(self) -> None:
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def process_one(self, timeout: float | None = None) -> Hashable | None:
        raise NotImplementedError

    def enqueue_all(self) -> None:
        raise NotImplementedError

    def _worker(self) -> None:
        while not self._stop.is_set():
            try:
                self.process_one(timeout=1.0)
            except Exception as e:  # never let a worker die
                log.error("worker loop error", worker=self.thread_name, error=repr(e))

    def _resync(self) -> None:
        while not self._stop.wait(self.sync_period_seconds):
            self.enqueue_all()

    def start(self) -> None:
        for i in range(self.worker_count):
            t = threading.Thread(target=self._worker, name=f"{self.thread_name}-{i}",
                                 daemon=True)
            t.start()
            self._threads.append(t)
        threading.Thread(target=self._resync, name=f"{self.thread_name}-resync",
                         daemon=True).start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking keys and wait (bounded) for in-flight reconciles to finish."""
        self._stop.set()
        self.queue.shutdown()
        for t in self._threads:
            t.join(timeout)

    def alive(self) -> bool:
        return not self._stop.is_set() and all(t.is_alive() for t in self._threads)
