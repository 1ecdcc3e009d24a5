"""Event log: bounded ring buffer with monotonically increasing seq, plus live subscribers.

Everything other parts of the testbed line up failed requests with (registrations, health
transitions, routing-set changes, ALB-generated errors) goes through here.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

Event = dict[str, Any]


class EventLog:
    """Single-threaded (engine loop) event log; subscribers get events through queues."""

    def __init__(self, maxlen: int = 100_000) -> None:
        self._buf: collections.deque[Event] = collections.deque(maxlen=maxlen)
        self._seq = 0
        self._subs: set[asyncio.Queue[Event | None]] = set()

    def emit(self, kind: str, **fields: Any) -> Event:
        self._seq += 1
        ev: Event = {"seq": self._seq, "ts": time.time(), "kind": kind, **fields}
        self._buf.append(ev)
        for q in list(self._subs):
            try:
                q.put_nowait(ev)
            except asyncio.QueueFull:
                # A subscriber that cannot keep up is cut off rather than growing memory.
                self._subs.discard(q)
        return ev

    def since(self, seq: int, limit: int = 10_000) -> tuple[list[Event], int]:
        """Events with seq > `seq` (oldest first, at most `limit`) and the seq to ask next."""
        if not self._buf or seq >= self._seq:
            return [], seq
        first = self._buf[0]["seq"]
        start = max(seq + 1 - first, 0)
        out = [self._buf[i] for i in range(start, min(len(self._buf), start + limit))]
        nxt = out[-1]["seq"] if out else seq
        return out, nxt

    def subscribe(self, maxsize: int = 50_000) -> asyncio.Queue[Event | None]:
        q: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=maxsize)
        self._subs.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Event | None]) -> None:
        self._subs.discard(q)

    def clear(self) -> None:
        """Drop buffered events; seq keeps increasing so readers never see a seq twice."""
        self._buf.clear()
