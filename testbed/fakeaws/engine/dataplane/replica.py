"""A data-plane worker's copy of what it routes to, kept up to date by the engine.

With several data-plane workers (workers.py) each worker is like one ALB node: the engine
keeps registrations, health and draining timers (store.py) and pushes to every worker the
target groups' settings, each group's routing set (what new requests may go to, with each
target's slow-start start), removals, drain expiries and the run-time settings. What is
per-node on a real ALB stays per-worker here: round-robin turns, least-outstanding counts
(requests in flight through this worker) and connection pools.

`Replica` offers the data plane the same reads as `TargetStore` (`groups`, `pick`,
`routable`, `runtime`, `on_target_removed`), so proxy.py runs unchanged on either.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from testbed.fakeaws import wire
from testbed.fakeaws.engine.balancer import PICKERS, Picker, pick_from
from testbed.fakeaws.engine.store import TargetGroupSpec
from testbed.fakeaws.settings import RuntimeKey

TargetKey = tuple[str, str, int]  # (target group ARN, target id, port)


@dataclass(eq=False)
class RouteTarget:
    """A target as one worker sees it."""

    tg_arn: str
    id: str
    port: int
    slow_start_since: float | None = None
    in_flight: int = 0
    routed: bool = False
    # Set when the engine removes the target; a worker does not learn when draining starts
    # (the target just leaves the routing set), so a connection released while the target
    # drains goes back to the pool and is closed at removal.
    dp_removed: bool = False
    aborters: set[Callable[[str], None]] = field(default_factory=set)

    @property
    def addr(self) -> str:
        return f"{self.id}:{self.port}"


class Replica:
    def __init__(self) -> None:
        self.groups: dict[str, TargetGroupSpec] = {}
        self.pickers: dict[str, Picker] = {}
        self.routing: dict[str, list[RouteTarget]] = {}
        # Every target routed now or routed before and not removed yet (draining, unhealthy):
        # in-flight counts, aborters and pools follow the same object.
        self.targets: dict[TargetKey, RouteTarget] = {}
        self.values: dict[str, float] = {}
        self.overrides: dict[str, dict[str, float]] = {}
        self.on_target_removed: Callable[[RouteTarget], None] = lambda t: None

    # ---- pushed by the engine ----------------------------------------------------------------
    def set_groups(self, groups: Iterable[wire.TargetGroup]) -> None:
        new = {g["arn"]: TargetGroupSpec.from_wire(g) for g in groups}
        for arn in [a for a in self.groups if a not in new]:
            del self.groups[arn]
            self.pickers.pop(arn, None)
            self.routing.pop(arn, None)
            self.overrides.pop(arn, None)
            for key in [k for k in self.targets if k[0] == arn]:
                self.removed(key)
        for arn, spec in new.items():
            old = self.groups.get(arn)
            if old is None or (old.algorithm, old.slow_start) != (spec.algorithm,
                                                                  spec.slow_start):
                self.pickers[arn] = PICKERS[spec.algorithm](spec.slow_start)
            self.groups[arn] = spec

    def set_routing(self, tg_arn: str, entries: Iterable[tuple[str, int, float | None]]
                    ) -> None:
        """The group's routing set, in the engine's order: (id, port, slow_start_since)."""
        for t in self.routing.get(tg_arn, []):
            t.routed = False
        chosen = []
        for tid, port, since in entries:
            key = (tg_arn, tid, int(port))
            t = self.targets.get(key) or RouteTarget(tg_arn, tid, int(port))
            self.targets[key] = t
            t.slow_start_since = since
            t.routed = True
            chosen.append(t)
        self.routing[tg_arn] = chosen

    def removed(self, key: TargetKey) -> None:
        t = self.targets.pop(key, None)
        if t is None:
            return
        t.routed = False
        t.dp_removed = True
        routing = self.routing.get(key[0])
        if routing and t in routing:
            routing.remove(t)
        self.on_target_removed(t)

    def abort(self, key: TargetKey, reason: str) -> None:
        """The engine ended the target's in-flight requests (drain expired, group deleted)."""
        t = self.targets.get(key)
        if t is not None:
            for abort in list(t.aborters):
                abort(reason)

    def set_runtime(self, values: dict[str, float], overrides: dict[str, dict[str, float]]
                    ) -> None:
        self.values = dict(values)
        self.overrides = {k: dict(v) for k, v in overrides.items()}

    # ---- read by the data plane (same as TargetStore) ------------------------------------
    def pick(self, tg_arn: str) -> RouteTarget | None:
        # time.monotonic(): the engine converts slow-start starts to this clock.
        return pick_from(self.routing.get(tg_arn), self.pickers.get(tg_arn), time.monotonic)

    def routable(self, tg_arn: str, tid: str, port: int) -> RouteTarget | None:
        t = self.targets.get((tg_arn, tid, port))
        return t if t is not None and t.routed else None

    def runtime(self, tg_arn: str, key: RuntimeKey) -> float:
        ov = self.overrides.get(tg_arn)
        if ov is not None and key in ov:
            return ov[key]
        return float(self.values[key])
