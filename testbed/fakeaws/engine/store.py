"""The target store: registrations keyed by (target group ARN, target id, port) with AWS target
health states, plus the data plane's own view (what it routes to).

Two views of one target, on purpose:
- the API view (DescribeTargetHealth): state/reason/description as AWS reports them;
- the data-plane view: whether the (single emulated) ALB node knows the target yet
  (register propagation delay), still routes to it (deregister propagation delay), and its
  health as seen by this node's checks.

Model of time (documented in docs/fakeaws.md):
  register at t0      -> API: initial/Elb.RegistrationInProgress
  t0 + register_delay -> node knows it, checks start; API: initial/Elb.InitialHealthChecking
  first success       -> healthy (AWS: one check is enough for a new target)
  UnhealthyThreshold failures before that -> unhealthy
  deregister at t1    -> API: draining; checks stop; node still routes until t1 + deregister_delay
  t1 + deregister_delay -> node stops new requests, deregistration delay timer starts
  + timeout_seconds   -> in-flight requests are cut (502 drain_expired); target removed.
register_delay / deregister_delay (and the data plane's connect_timeout) are read per target
group through `runtime()`: the group's override (POST /_testbed/config with target_group_arn)
or else the engine-global value, so concurrent runs sharing one engine do not interfere.
All methods run on the engine's event loop thread; nothing here blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from testbed.fakeaws import wire
from testbed.fakeaws.engine.balancer import PICKERS, Picker, pick_from
from testbed.fakeaws.engine.events import EventLog
from testbed.fakeaws.settings import FakeAwsSettings, RuntimeKey

INITIAL, HEALTHY, UNHEALTHY = "initial", "healthy", "unhealthy"
DRAINING, UNUSED, UNAVAILABLE = "draining", "unused", "unavailable"

DESCRIPTIONS = {
    "Elb.RegistrationInProgress": "Target registration is in progress",
    "Elb.InitialHealthChecking": "Initial health checks in progress",
    "Target.Timeout": "Request timed out",
    "Target.FailedHealthChecks": "Health checks failed",
    "Target.DeregistrationInProgress": "Target deregistration is in progress",
    "Target.NotRegistered": "Target is not registered to the target group",
    "Target.NotInUse": "Target group is not configured to receive traffic from the load balancer",
    "Target.HealthCheckDisabled": "Health checks are disabled",
}


class Clock(Protocol):
    """What the store needs from an event loop (asyncio's loop satisfies it)."""

    def time(self) -> float: ...
    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Any: ...


@dataclass
class HealthSettings:
    enabled: bool = True
    protocol: str = "HTTP"
    port: str = "traffic-port"
    path: str = "/"
    interval: float = 30.0
    timeout: float = 5.0
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2
    matcher: str = "200"


@dataclass(frozen=True)
class Stickiness:
    """Target group stickiness (attributes `stickiness.*`), when enabled."""

    type: str  # "lb_cookie" | "app_cookie"
    duration: float  # seconds
    cookie_name: str = ""  # app_cookie only

    @classmethod
    def from_wire(cls, r: wire.Stickiness | None) -> Stickiness | None:
        if not r:
            return None
        if r["type"] not in ("lb_cookie", "app_cookie"):
            raise ValueError(f"unknown stickiness.type {r['type']!r}")
        return cls(type=r["type"], duration=float(r["duration"]),
                   cookie_name=str(r.get("cookie_name") or ""))


@dataclass
class TargetGroupSpec:
    arn: str
    port: int = 80
    health: HealthSettings = field(default_factory=HealthSettings)
    deregistration_delay: float = 300.0
    slow_start: float = 0.0
    algorithm: str = "round_robin"
    in_use: bool = False
    stickiness: Stickiness | None = None

    @classmethod
    def from_wire(cls, r: wire.TargetGroup) -> TargetGroupSpec:
        if r["algorithm"] not in PICKERS:
            raise ValueError(f"unknown load_balancing.algorithm.type {r['algorithm']!r}")
        h = r["health"]
        return cls(
            arn=r["arn"], port=int(r["port"]),
            health=HealthSettings(
                enabled=bool(h["enabled"]), protocol=h["protocol"], port=str(h["port"]),
                path=h["path"], interval=float(h["interval"]), timeout=float(h["timeout"]),
                healthy_threshold=int(h["healthy_threshold"]),
                unhealthy_threshold=int(h["unhealthy_threshold"]), matcher=h["matcher"]),
            deregistration_delay=float(r["deregistration_delay"]),
            slow_start=float(r["slow_start"]), algorithm=r["algorithm"],
            in_use=bool(r["in_use"]),
            stickiness=Stickiness.from_wire(r.get("stickiness")))

    def to_wire(self) -> wire.TargetGroup:
        """The form from_wire reads (a restarted engine gets its groups back this way)."""
        h = self.health
        s = self.stickiness
        return {"arn": self.arn, "port": self.port,
                "health": {"enabled": h.enabled, "protocol": h.protocol, "port": h.port,
                           "path": h.path, "interval": h.interval, "timeout": h.timeout,
                           "healthy_threshold": h.healthy_threshold,
                           "unhealthy_threshold": h.unhealthy_threshold,
                           "matcher": h.matcher},
                "deregistration_delay": self.deregistration_delay,
                "slow_start": self.slow_start, "algorithm": self.algorithm,
                "in_use": self.in_use,
                "stickiness": None if s is None else {
                    "type": s.type, "duration": s.duration, "cookie_name": s.cookie_name}}


@dataclass(eq=False)
class Target:
    tg_arn: str
    id: str
    port: int
    az: str | None
    registered_at: float
    visible_at: float
    health: str = INITIAL
    reason: str | None = "Elb.RegistrationInProgress"
    description: str | None = DESCRIPTIONS["Elb.RegistrationInProgress"]
    ok_streak: int = 0
    fail_streak: int = 0
    healthy_since: float | None = None
    # When it entered slow start mode (None: not in it). Set only when the target becomes
    # healthy while its group has slow start enabled, so targets already healthy when slow
    # start is enabled never ramp (AWS: "Targets that are already healthy when you enable
    # slow start mode do not enter slow start mode").
    slow_start_since: float | None = None
    routed: bool = False  # in the group's routing set (what new requests go to)
    deregistered_at: float | None = None
    dp_removed: bool = False  # the node no longer sends new requests
    # The pending timer, as data, so a restarted engine can re-arm it: the node learns of
    # the registration (visible False until then), the node stops routing to a deregistered
    # target (drain_start_at), the deregistration delay ends (drain_expire_at).
    visible: bool = False
    drain_start_at: float | None = None
    drain_expire_at: float | None = None
    removed: bool = False
    in_flight: int = 0
    api_state: tuple[str, str | None] = (INITIAL, "Elb.RegistrationInProgress")
    timers: list[Any] = field(default_factory=list)
    aborters: set[Callable[[str], None]] = field(default_factory=set)

    @property
    def addr(self) -> str:
        return f"{self.id}:{self.port}"

    def cancel_timers(self) -> None:
        for h in self.timers:
            h.cancel()
        self.timers.clear()


class TargetStore:
    """Registrations, health state machine and routing sets; emits events for each change."""

    def __init__(self, clock: Clock, events: EventLog, settings: FakeAwsSettings) -> None:
        self.clock = clock
        self.events = events
        self.settings = settings
        self.groups: dict[str, TargetGroupSpec] = {}
        self.targets: dict[str, dict[tuple[str, int], Target]] = {}
        self.routing: dict[str, list[Target]] = {}
        self.pickers: dict[str, Picker] = {}
        # Per-target-group run-time settings on top of `settings` (validated by the caller).
        self.overrides: dict[str, dict[str, float]] = {}
        # Hooks set by the health checker.
        self.on_checks_start: Callable[[Target], None] = lambda t: None
        self.on_checks_stop: Callable[[Target], None] = lambda t: None
        # A restored target's checks go on at the next slot of its old grid (absolute time).
        self.on_checks_resume: Callable[[Target, float], None] = (
            lambda t, at: self.on_checks_start(t))
        self.on_target_removed: Callable[[Target], None] = lambda t: None
        # Hooks for data-plane worker processes (dataplane/workers.py): the routing set of a
        # group after each recompute, and a target whose in-flight requests end now (reason:
        # drain_expired, target_group_deleted).
        self.on_routing: Callable[[str, list[Target]], None] = lambda arn, ts: None
        self.on_abort: Callable[[Target, str], None] = lambda t, reason: None

    # ---- target groups -------------------------------------------------------------------
    def sync_groups(self, specs: list[TargetGroupSpec]) -> None:
        """Reconcile target group settings with the API's view (full snapshot)."""
        new = {s.arn: s for s in specs}
        for arn in list(self.groups):
            if arn not in new:
                targets = list(self.targets.get(arn, {}).values())
                self.events.emit("target_group_deleted", tg_arn=arn,
                                 targets=[t.addr for t in targets])
                for t in targets:
                    # in-flight requests end with the group (aws-load-balancer-controller
                    # #3739: 503s right after "deleted targetGroup"; docs/fakeaws.md)
                    self._abort(t, "target_group_deleted")
                    self._remove(t, emit=False)
                self.groups.pop(arn, None)
                self.targets.pop(arn, None)
                self.routing.pop(arn, None)
                self.pickers.pop(arn, None)
                self.overrides.pop(arn, None)
        for arn, spec in new.items():
            old = self.groups.get(arn)
            self.groups[arn] = spec
            self.targets.setdefault(arn, {})
            if old is None or (old.algorithm, old.slow_start) != (spec.algorithm,
                                                                  spec.slow_start):
                self.pickers[arn] = PICKERS[spec.algorithm](spec.slow_start)
            if spec.slow_start <= 0 < (old.slow_start if old else 0):
                # Disabling slow start ends it for every target; enabling it later does not
                # put the targets healthy by then into slow start.
                for t in self.targets[arn].values():
                    t.slow_start_since = None
            if old is None:
                continue
            if old.in_use != spec.in_use or old.health.enabled != spec.health.enabled:
                for t in self.targets[arn].values():
                    if t.deregistered_at is not None:
                        continue
                    self.on_checks_stop(t)
                    self._reset_health(t)
                    if self.clock.time() >= t.visible_at:
                        self._set_health(t, INITIAL, "Elb.InitialHealthChecking")
                        self._maybe_start_checks(t)
                    self._refresh(t)
            elif old.health != spec.health:
                for t in self.targets[arn].values():
                    if t.deregistered_at is None and self.clock.time() >= t.visible_at:
                        self.on_checks_stop(t)
                        self._maybe_start_checks(t)
            self._recompute(arn)

    # ---- per-target-group run-time settings ------------------------------------------------
    def runtime(self, tg_arn: str, key: RuntimeKey) -> float:
        """A run-time setting's value for one target group: its override, else the global."""
        ov = self.overrides.get(tg_arn)
        if ov is not None and key in ov:
            return ov[key]
        return float(getattr(self.settings, key))

    def runtime_values(self, tg_arn: str) -> dict[str, float]:
        """Every run-time setting's effective value for one target group."""
        return {**self.settings.runtime_values(), **self.overrides.get(tg_arn, {})}

    def set_overrides(self, tg_arn: str, values: dict[str, float]) -> None:
        """Override run-time settings for one group (values already validated); they apply
        to later registrations, deregistrations and connects, like a global change."""
        if tg_arn not in self.groups:
            raise KeyError(tg_arn)
        self.overrides.setdefault(tg_arn, {}).update(values)

    # ---- registration --------------------------------------------------------------------
    def register(self, tg_arn: str, targets: list[tuple[str, int, str | None]]) -> None:
        if tg_arn not in self.groups:
            raise KeyError(tg_arn)
        now = self.clock.time()
        delay = self.runtime(tg_arn, "register_delay")
        for tid, port, az in targets:
            existing = self.targets[tg_arn].get((tid, port))
            if existing is not None and existing.deregistered_at is None:
                continue  # AWS: registering a registered target is a no-op
            if existing is not None:
                # Re-registration while draining: the old record stops draining now.
                self._remove(existing, emit=False)
            t = Target(tg_arn, tid, port, az, registered_at=now, visible_at=now + delay)
            self.targets[tg_arn][(tid, port)] = t
            t.api_state = self._api_state(t)[:2]
            self.events.emit("registered", tg_arn=tg_arn, target_id=tid, port=port,
                             visible_in=delay)
            self.events.emit("target_state", tg_arn=tg_arn, target_id=tid, port=port,
                             **{"from": None, "to": t.api_state[0], "reason": t.api_state[1]})
            t.timers.append(self.clock.call_at(t.visible_at, self._became_visible, t))

    def _became_visible(self, t: Target) -> None:
        if t.removed or t.deregistered_at is not None:
            return
        t.visible = True
        self._set_health(t, INITIAL, "Elb.InitialHealthChecking")
        self._refresh(t)
        self._maybe_start_checks(t)
        self._recompute(t.tg_arn)

    def _maybe_start_checks(self, t: Target) -> None:
        spec = self.groups.get(t.tg_arn)
        if spec and spec.in_use and spec.health.enabled and t.deregistered_at is None:
            self.on_checks_start(t)

    def deregister(self, tg_arn: str, targets: list[tuple[str, int]]) -> None:
        spec = self.groups[tg_arn]
        now = self.clock.time()
        routed_for = self.runtime(tg_arn, "deregister_delay")
        for tid, port in targets:
            t = self.targets[tg_arn].get((tid, port))
            if t is None or t.deregistered_at is not None:
                continue
            t.deregistered_at = now
            self.on_checks_stop(t)
            self.events.emit("deregistered", tg_arn=tg_arn, target_id=tid, port=port,
                             routed_for=routed_for,
                             deregistration_delay=spec.deregistration_delay)
            self._refresh(t)
            for h in t.timers:
                h.cancel()
            t.drain_start_at = now + routed_for
            t.timers = [self.clock.call_at(t.drain_start_at, self._drain_start, t)]

    def _drain_start(self, t: Target) -> None:
        if t.removed:
            return
        t.dp_removed = True
        t.drain_start_at = None
        self._recompute(t.tg_arn)
        spec = self.groups.get(t.tg_arn)
        delay = spec.deregistration_delay if spec else 0.0
        t.drain_expire_at = self.clock.time() + delay
        t.timers = [self.clock.call_at(t.drain_expire_at, self._drain_expire, t)]

    def _drain_expire(self, t: Target) -> None:
        self._abort(t, "drain_expired")
        self._remove(t, emit=True)

    def _abort(self, t: Target, reason: str) -> None:
        """End the target's in-flight requests, here and in every data-plane worker."""
        for abort in list(t.aborters):
            abort(reason)
        self.on_abort(t, reason)

    def _remove(self, t: Target, emit: bool) -> None:
        if t.removed:
            return
        t.removed = True
        t.dp_removed = True
        t.cancel_timers()
        self.on_checks_stop(t)
        tg = self.targets.get(t.tg_arn, {})
        if tg.get((t.id, t.port)) is t:
            del tg[(t.id, t.port)]
        if emit:
            self.events.emit("target_state", tg_arn=t.tg_arn, target_id=t.id, port=t.port,
                             **{"from": t.api_state[0], "to": UNUSED,
                                "reason": "Target.NotRegistered"})
        self.on_target_removed(t)
        self._recompute(t.tg_arn)

    # ---- health --------------------------------------------------------------------------
    def _reset_health(self, t: Target) -> None:
        t.ok_streak = t.fail_streak = 0
        t.healthy_since = t.slow_start_since = None
        self._set_health(t, INITIAL, "Elb.RegistrationInProgress")

    def _set_health(self, t: Target, health: str, reason: str | None,
                    description: str | None = None) -> None:
        t.health, t.reason = health, reason
        t.description = description or (DESCRIPTIONS.get(reason) if reason else None)

    def record_check(self, t: Target, ok: bool, reason: str | None = None,
                     description: str | None = None) -> None:
        """Apply one health check result to the state machine."""
        if t.removed or t.deregistered_at is not None:
            return
        spec = self.groups.get(t.tg_arn)
        if spec is None:
            return
        before = t.health
        if ok:
            t.ok_streak += 1
            t.fail_streak = 0
            if t.health == INITIAL or (t.health == UNHEALTHY
                                       and t.ok_streak >= spec.health.healthy_threshold):
                self._set_health(t, HEALTHY, None)
                t.healthy_since = self.clock.time()
                # AWS: targets enter slow start mode when they become healthy (again, after
                # being unhealthy) while slow start is enabled.
                t.slow_start_since = t.healthy_since if spec.slow_start > 0 else None
        else:
            t.fail_streak += 1
            t.ok_streak = 0
            reason = reason or "Target.FailedHealthChecks"
            if t.health == UNHEALTHY:
                self._set_health(t, UNHEALTHY, reason, description)
            elif t.fail_streak >= spec.health.unhealthy_threshold:
                self._set_health(t, UNHEALTHY, reason, description)
                t.healthy_since = t.slow_start_since = None
        self._refresh(t)
        if t.health != before:
            self._recompute(t.tg_arn)

    # ---- API view ------------------------------------------------------------------------
    def _api_state(self, t: Target) -> tuple[str, str | None, str | None]:
        if t.deregistered_at is not None:
            r = "Target.DeregistrationInProgress"
            return DRAINING, r, DESCRIPTIONS[r]
        spec = self.groups.get(t.tg_arn)
        if spec is not None and not spec.in_use:
            r = "Target.NotInUse"
            return UNUSED, r, DESCRIPTIONS[r]
        if spec is not None and not spec.health.enabled:
            r = "Target.HealthCheckDisabled"
            return UNAVAILABLE, r, DESCRIPTIONS[r]
        return t.health, t.reason, t.description

    def _refresh(self, t: Target) -> None:
        state, reason, _ = self._api_state(t)
        if (state, reason) != t.api_state:
            self.events.emit("target_state", tg_arn=t.tg_arn, target_id=t.id, port=t.port,
                             **{"from": t.api_state[0], "to": state, "reason": reason})
            t.api_state = (state, reason)

    def describe(self, tg_arn: str, asked: list[tuple[str, int | None]] | None,
                 caller: str = "other") -> list[dict[str, Any]]:
        """Rows for DescribeTargetHealth (all registered targets, or the ones asked for)."""
        self.events.emit("described", tg_arn=tg_arn, caller=caller,
                         targets=len(asked) if asked else None)
        spec = self.groups.get(tg_arn)
        rows: list[dict[str, Any]] = []
        tg = self.targets.get(tg_arn, {})
        if asked:
            for tid, port in asked:
                p = port if port is not None else (spec.port if spec else 80)
                t = tg.get((tid, p))
                if t is None:
                    r = "Target.NotRegistered"
                    rows.append(self._row(spec, tid, p, None, UNUSED, r, DESCRIPTIONS[r]))
                else:
                    rows.append(self._row(spec, tid, p, t.az, *self._api_state(t)))
        else:
            for t in tg.values():
                rows.append(self._row(spec, t.id, t.port, t.az, *self._api_state(t)))
        return rows

    @staticmethod
    def _row(spec: TargetGroupSpec | None, tid: str, port: int, az: str | None, state: str,
             reason: str | None, desc: str | None) -> dict[str, Any]:
        hc_port = str(port)
        if spec is not None and spec.health.port != "traffic-port":
            hc_port = spec.health.port
        return {"id": tid, "port": port, "az": az, "hc_port": hc_port, "state": state,
                "reason": reason, "description": desc}

    # ---- routing -------------------------------------------------------------------------
    def _recompute(self, tg_arn: str, quiet: bool = False) -> None:
        spec = self.groups.get(tg_arn)
        now = self.clock.time()
        live = [t for t in self.targets.get(tg_arn, {}).values()
                if not t.dp_removed and now >= t.visible_at]
        # Targets whose deregistration has not reached the node yet are in `targets` still
        # (the record stays until removal); dp_removed gates them.
        fail_open = False
        if spec is None or not spec.in_use:
            chosen: list[Target] = []
        elif not spec.health.enabled:
            chosen = live
        else:
            chosen = [t for t in live if t.health == HEALTHY]
            if not chosen:
                chosen = [t for t in live if t.health == UNHEALTHY]
                fail_open = bool(chosen)
        old = self.routing.get(tg_arn, [])
        if len(old) != len(chosen) or any(a is not b for a, b in zip(old, chosen, strict=True)):
            for t in old:
                t.routed = False
            for t in chosen:
                t.routed = True
            self.routing[tg_arn] = chosen
            if not quiet:
                self.events.emit("routing", tg_arn=tg_arn,
                                 targets=[t.addr for t in chosen], fail_open=fail_open)
        self.on_routing(tg_arn, chosen)

    def pick(self, tg_arn: str) -> Target | None:
        """The target for a new request, chosen by the group's routing algorithm."""
        return pick_from(self.routing.get(tg_arn), self.pickers.get(tg_arn), self.clock.time)

    def routable(self, tg_arn: str, tid: str, port: int) -> Target | None:
        """The target (id, port) of a group if new requests may go to it now (in the routing
        set: healthy, or fail-open), for stickiness; None when unhealthy, draining, removed
        or unknown."""
        t = self.targets.get(tg_arn, {}).get((tid, port))
        return t if t is not None and t.routed else None

    def reset(self) -> None:
        for tg in list(self.targets.values()):
            for t in list(tg.values()):
                self._remove(t, emit=False)
        self.groups.clear()
        self.targets.clear()
        self.routing.clear()
        self.pickers.clear()
        self.overrides.clear()

    # ---- restart: checkpoint and restore (docs/fakeaws.md "Restart with state kept") ------
    def freeze(self) -> None:
        """Stop every timer, state as it is: the checkpoint an engine hands over must not
        change under the new engine's feet. `thaw` undoes it (a restart that failed)."""
        for tg in self.targets.values():
            for t in tg.values():
                t.cancel_timers()

    def thaw(self) -> None:
        """Re-arm what freeze stopped; deadlines that passed meanwhile fire at once."""
        for arn, tg in self.targets.items():
            for t in list(tg.values()):
                self._arm(t)
                if t.visible:
                    self._maybe_start_checks(t)
            self._recompute(arn, quiet=True)

    def _arm(self, t: Target) -> None:
        if t.deregistered_at is None:
            if not t.visible:
                t.timers = [self.clock.call_at(t.visible_at, self._became_visible, t)]
        elif t.drain_start_at is not None:
            t.timers = [self.clock.call_at(t.drain_start_at, self._drain_start, t)]
        elif t.drain_expire_at is not None:
            t.timers = [self.clock.call_at(t.drain_expire_at, self._drain_expire, t)]

    def dump(self, next_check: Callable[[Target], float | None] = lambda t: None
             ) -> dict[str, Any]:
        """Everything a restarted engine needs, JSON-serialisable. Times are offsets from
        now (the clock is per process); `next_check` gives a target's next health check
        slot, if its checks run."""
        now = self.clock.time()

        def rel(x: float | None) -> float | None:
            return None if x is None else x - now

        targets = []
        for tg in self.targets.values():
            for t in tg.values():
                targets.append({
                    "tg_arn": t.tg_arn, "id": t.id, "port": t.port, "az": t.az,
                    "health": t.health, "reason": t.reason, "description": t.description,
                    "ok_streak": t.ok_streak, "fail_streak": t.fail_streak,
                    "api_state": list(t.api_state), "visible": t.visible,
                    "dp_removed": t.dp_removed, "registered_at": rel(t.registered_at),
                    "visible_at": rel(t.visible_at), "healthy_since": rel(t.healthy_since),
                    "slow_start_since": rel(t.slow_start_since),
                    "deregistered_at": rel(t.deregistered_at),
                    "drain_start_at": rel(t.drain_start_at),
                    "drain_expire_at": rel(t.drain_expire_at),
                    "next_check": rel(next_check(t))})
        return {"groups": [g.to_wire() for g in self.groups.values()],
                "overrides": {k: dict(v) for k, v in self.overrides.items()},
                "targets": targets}

    def load(self, state: dict[str, Any], elapsed: float = 0.0) -> int:
        """Take over a `dump` made `elapsed` seconds ago (into an empty store) -> how many
        targets. Remaining timer durations shrink by `elapsed`, so a draining target ends
        when it would have; round-robin turns and least-outstanding counts start afresh.
        Nothing is emitted: for readers of the event log nothing changed."""
        base = self.clock.time() - elapsed

        def at(x: float | None) -> float | None:
            return None if x is None else base + x

        for g in state["groups"]:
            spec = TargetGroupSpec.from_wire(g)
            self.groups[spec.arn] = spec
            self.targets.setdefault(spec.arn, {})
            self.pickers[spec.arn] = PICKERS[spec.algorithm](spec.slow_start)
        self.overrides = {k: dict(v) for k, v in state["overrides"].items()}
        resume: list[tuple[Target, float | None]] = []
        for d in state["targets"]:
            registered_at, visible_at = at(d["registered_at"]), at(d["visible_at"])
            assert registered_at is not None and visible_at is not None
            t = Target(d["tg_arn"], d["id"], int(d["port"]), d["az"], registered_at, visible_at,
                       health=d["health"], reason=d["reason"], description=d["description"],
                       ok_streak=d["ok_streak"], fail_streak=d["fail_streak"],
                       healthy_since=at(d["healthy_since"]),
                       slow_start_since=at(d["slow_start_since"]),
                       deregistered_at=at(d["deregistered_at"]), dp_removed=d["dp_removed"],
                       visible=d["visible"], drain_start_at=at(d["drain_start_at"]),
                       drain_expire_at=at(d["drain_expire_at"]),
                       api_state=(d["api_state"][0], d["api_state"][1]))
            self.targets.setdefault(t.tg_arn, {})[(t.id, t.port)] = t
            self._arm(t)
            if t.visible:
                resume.append((t, at(d["next_check"])))
        for arn in self.groups:
            self._recompute(arn, quiet=True)
        for t, next_check in resume:
            group = self.groups.get(t.tg_arn)
            if not (group and group.in_use and group.health.enabled
                    and t.deregistered_at is None):
                continue
            if next_check is None:
                self.on_checks_start(t)
            else:
                self.on_checks_resume(t, next_check)
        return len(state["targets"])
