"""Event log: bounded ring buffer with monotonically increasing seq, plus live subscribers.

Everything other parts of the testbed line up failed requests with (registrations, health
transitions, routing-set changes, ALB-generated errors) goes through here.

Several scenario runs may share one engine; each reads only its own events with an
`EventFilter` (its target groups' ARNs and/or its listener ports). Every event about a target
group carries `tg_arn`, every event about a listener `listener_port`.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Event = dict[str, Any]

DEFAULT_LIMIT = 10_000
_DIGITS = re.compile(r"[0-9]{1,12}")


class QueryError(ValueError):
    """A bad /events query (the API answers HTTP 400 with the message)."""


@dataclass(frozen=True)
class EventFilter:
    """Which events a reader wants. Empty: all. Otherwise an event passes when its tg_arn is
    one of `tg_arns` or its listener_port one of `listener_ports` (events with neither
    field, e.g. config or reset, do not pass)."""

    tg_arns: frozenset[str] = frozenset()
    listener_ports: frozenset[int] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.tg_arns or self.listener_ports)

    def matches(self, ev: Event) -> bool:
        if not self:
            return True
        return ev.get("tg_arn") in self.tg_arns or ev.get("listener_port") in self.listener_ports


@dataclass(frozen=True)
class EventQuery:
    since: int | None
    limit: int
    filter: EventFilter


def _int(name: str, raw: str, lo: int, hi: int | None = None) -> int:
    if not _DIGITS.fullmatch(raw) or int(raw) < lo or (hi is not None and int(raw) > hi):
        rng = f"{lo}-{hi}" if hi is not None else f">= {lo}"
        raise QueryError(f"{name}: expected an integer {rng}, got {raw!r}")
    return int(raw)


def parse_query(pairs: Iterable[tuple[str, str]], stream: bool = False) -> EventQuery:
    """Query parameters of GET /events (or /events/stream) -> EventQuery.

    since (once, integer >= 0), limit (once, >= 1; not for the stream), target_group_arn and
    listener_port (repeatable and/or comma-separated; ports 1-65535 as ELBv2 listeners).
    Anything else is refused: a misspelt filter must not silently return every run's events.
    """
    since: int | None = None
    limit: int | None = None
    arns: set[str] = set()
    ports: set[int] = set()
    allowed = {"since", "target_group_arn", "listener_port"} | (set() if stream else {"limit"})
    for name, raw in pairs:
        if name not in allowed:
            raise QueryError(f"unknown parameter {name!r}; accepted: {sorted(allowed)}")
        if name in ("since", "limit"):
            if (since if name == "since" else limit) is not None:
                raise QueryError(f"{name}: given more than once")
            if name == "since":
                since = _int("since", raw, 0)
            else:
                limit = _int("limit", raw, 1)
            continue
        values = [v.strip() for v in raw.split(",")]
        if any(not v for v in values):
            raise QueryError(f"{name}: empty value in {raw!r}")
        if name == "target_group_arn":
            arns.update(values)
        else:
            ports.update(_int("listener_port", v, 1, 65535) for v in values)
    return EventQuery(since, DEFAULT_LIMIT if limit is None else limit,
                      EventFilter(frozenset(arns), frozenset(ports)))


class EventLog:
    """Single-threaded (engine loop) event log; subscribers get events through queues."""

    def __init__(self, maxlen: int = 100_000) -> None:
        self._buf: collections.deque[Event] = collections.deque(maxlen=maxlen)
        self._seq = 0
        self._subs: set[asyncio.Queue[Event | None]] = set()
        # While an engine hands over (restart), what it still emits gets no seq here: the
        # new engine numbers it after its own (see detach/take_tail).
        self._tail: list[Event] | None = None

    def emit(self, kind: str, **fields: Any) -> Event:
        if self._tail is not None:
            kept: Event = {"ts": time.time(), "kind": kind, **fields}
            self._tail.append(kept)
            return kept
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

    @property
    def latest(self) -> int:
        """The newest event's seq (0 before any): where a reader that wants only what comes
        next starts."""
        return self._seq

    def since(self, seq: int, limit: int = DEFAULT_LIMIT, flt: EventFilter | None = None
              ) -> tuple[list[Event], int]:
        """Events with seq > `seq` that pass `flt` (oldest first, at most `limit`) and the seq
        to ask next: the last event returned when the page is full, else the last event
        looked at, so a filtered reader also moves past the events it skipped."""
        if not self._buf or seq >= self._seq:
            return [], seq
        first = self._buf[0]["seq"]
        start = max(seq + 1 - first, 0)
        if not flt:
            out = list(itertools.islice(self._buf, start, start + limit))
            return out, out[-1]["seq"] if out else seq
        out = []
        for ev in itertools.islice(self._buf, start, None):
            if flt.matches(ev):
                out.append(ev)
                if len(out) == limit:
                    return out, ev["seq"]
        return out, self._buf[-1]["seq"]

    def subscribe(self, maxsize: int = 50_000) -> asyncio.Queue[Event | None]:
        q: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=maxsize)
        self._subs.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Event | None]) -> None:
        self._subs.discard(q)

    def clear(self) -> None:
        """Drop buffered events; seq keeps increasing so readers never see a seq twice."""
        self._buf.clear()

    # ---- restart (docs/fakeaws.md "Restart with state kept") -------------------------------
    def dump(self) -> dict[str, Any]:
        return {"seq": self._seq, "events": list(self._buf)}

    def load(self, state: dict[str, Any]) -> int:
        """Take over a dump: the same buffer, and seq goes on from the old engine's."""
        self._buf.clear()
        self._buf.extend(state["events"])
        self._seq = int(state["seq"])
        return len(self._buf)

    def detach(self) -> None:
        """From now on events are kept aside, unnumbered; live streams end (their readers
        come back with `since` to the new engine)."""
        self._tail = []
        for q in list(self._subs):
            if q.full():
                q.get_nowait()  # a reader this far behind loses one event, not its end
            q.put_nowait(None)
        self._subs.clear()

    def take_tail(self) -> list[Event]:
        tail, self._tail = self._tail or [], [] if self._tail is not None else None
        return tail

    def attach(self) -> None:
        """Back to numbering (a handover that failed); what was kept aside is numbered now."""
        tail, self._tail = self._tail or [], None
        for ev in tail:
            self.emit(**ev)
