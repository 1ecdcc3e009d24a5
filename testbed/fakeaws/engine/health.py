"""Health checker: per-target HTTP probes on a fixed schedule, feeding the store's state machine.

Each check opens a NEW TCP connection and closes it afterwards (ALB does not reuse
connections for checks). Checks run on a fixed grid start + k*interval: a slow answer never
shifts the next check (each check is its own task).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from dataclasses import dataclass

from testbed.fakeaws.engine.store import HealthSettings, Target, TargetStore
from testbed.fakeaws.settings import FakeAwsSettings

USER_AGENT = "ELB-HealthChecker/2.0"


def parse_matcher(spec: str) -> Callable[[int], bool]:
    """Matcher "200", "200,202", "200-299" or mixes like "200,300-399" -> predicate."""
    ranges: list[tuple[int, int]] = []
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            ranges.append((int(lo), int(hi)))
        else:
            ranges.append((int(part), int(part)))
    return lambda code: any(lo <= code <= hi for lo, hi in ranges)


async def probe(host: str, port: int, path: str, timeout: float, matcher: Callable[[int], bool]
                ) -> tuple[bool, str | None, str | None]:
    """One health check -> (ok, reason, description) with AWS reason codes."""
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: {USER_AGENT}\r\n"
                f"Accept: */*\r\nConnection: close\r\n\r\n".encode("latin-1"))
            line = await reader.readline()
    except TimeoutError:
        return False, "Target.Timeout", "Request timed out"
    except OSError:
        return False, "Target.FailedHealthChecks", "Health checks failed"
    finally:
        if writer is not None:
            writer.close()
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return False, "Target.FailedHealthChecks", "Health checks failed"
    code = int(parts[1])
    if matcher(code):
        return True, None, None
    return (False, "Target.ResponseCodeMismatch",
            f"Health checks failed with these codes: [{code}]")


@dataclass(eq=False)
class _Schedule:
    """One target's check grid: slot k is at start + k * interval."""

    interval: float
    timeout: float
    port: int
    path: str
    matcher: Callable[[int], bool]
    start: float
    k: int = 0
    handle: asyncio.TimerHandle | asyncio.Handle | None = None


class HealthChecker:
    """Schedules checks with loop.call_at (cheaper than a sleeping task per target, which
    matters when 1,000 targets share a slot); results go to TargetStore.record_check."""

    def __init__(self, store: TargetStore, settings: FakeAwsSettings) -> None:
        self.store = store
        self.settings = settings
        self._scheds: dict[Target, _Schedule] = {}
        self._checks: set[asyncio.Task[None]] = set()
        # How late each check started relative to its grid slot (seconds), for the benchmark.
        self.lateness: collections.deque[float] = collections.deque(maxlen=200_000)
        store.on_checks_start = self.start
        store.on_checks_stop = self.stop
        store.on_checks_resume = self.start

    def start(self, t: Target, first_at: float | None = None) -> None:
        """Check `t` now and every interval after; from `first_at` (loop time) on instead
        when a restarted engine resumes the grid the old engine had."""
        self.stop(t)
        loop = asyncio.get_running_loop()
        hs = self.store.groups[t.tg_arn].health
        interval, timeout = self.effective(hs)
        port = t.port if hs.port == "traffic-port" else int(hs.port)
        sched = _Schedule(interval, timeout, port, hs.path, parse_matcher(hs.matcher),
                          start=loop.time() if first_at is None else first_at)
        self._scheds[t] = sched
        sched.handle = (loop.call_soon(self._tick, t, sched) if first_at is None
                        else loop.call_at(first_at, self._tick, t, sched))

    def next_check(self, t: Target) -> float | None:
        """Loop time of `t`'s next check slot; None when it is not checked."""
        sched = self._scheds.get(t)
        return None if sched is None else sched.start + sched.k * sched.interval

    def stop(self, t: Target) -> None:
        sched = self._scheds.pop(t, None)
        if sched is not None and sched.handle is not None:
            sched.handle.cancel()

    def stop_all(self) -> None:
        for t in list(self._scheds):
            self.stop(t)

    def effective(self, hs: HealthSettings) -> tuple[float, float]:
        """(interval, timeout) actually used; the timeout never exceeds the interval."""
        interval = max(hs.interval, self.settings.min_health_check_interval)
        return interval, min(hs.timeout, interval)

    def _tick(self, t: Target, sched: _Schedule) -> None:
        if self._scheds.get(t) is not sched:
            return
        loop = asyncio.get_running_loop()
        self.lateness.append(loop.time() - (sched.start + sched.k * sched.interval))
        sched.k += 1
        sched.handle = loop.call_at(sched.start + sched.k * sched.interval, self._tick, t,
                                    sched)
        check = loop.create_task(self._check(t, sched))
        self._checks.add(check)
        check.add_done_callback(self._checks.discard)

    async def _check(self, t: Target, sched: _Schedule) -> None:
        ok, reason, desc = await probe(t.id, sched.port, sched.path, sched.timeout,
                                       sched.matcher)
        if self._scheds.get(t) is not sched:
            return  # checks were stopped or restarted while this one ran
        self.store.record_check(t, ok, reason, desc)
