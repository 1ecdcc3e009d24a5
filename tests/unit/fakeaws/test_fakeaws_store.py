"""Target store state machine and routing, driven by a fake clock (no sockets)."""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from testbed.fakeaws.engine.events import EventLog
from testbed.fakeaws.engine.store import HealthSettings, TargetGroupSpec, TargetStore
from testbed.fakeaws.settings import FakeAwsSettings

TG = "arn:tg/1"


class Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self._q: list[tuple[float, int, Handle, Callable[..., Any], tuple[Any, ...]]] = []
        self._n = itertools.count()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, cb: Callable[..., Any], *args: Any) -> Handle:
        h = Handle()
        heapq.heappush(self._q, (when, next(self._n), h, cb, args))
        return h

    def advance(self, dt: float) -> None:
        end = self.now + dt
        while self._q and self._q[0][0] <= end:
            when, _, h, cb, args = heapq.heappop(self._q)
            self.now = max(self.now, when)
            if not h.cancelled:
                cb(*args)
        self.now = end


def make(in_use: bool = True, register_delay: float = 0.0, deregister_delay: float = 0.0,
         dereg: float = 10.0, **tg: Any) -> tuple[TargetStore, FakeClock, EventLog]:
    clock = FakeClock()
    ev = EventLog()
    store = TargetStore(clock, ev, FakeAwsSettings(register_delay=register_delay,
                                                   deregister_delay=deregister_delay))
    store.sync_groups([TargetGroupSpec(arn=TG, port=80, in_use=in_use, deregistration_delay=dereg,
                                       health=HealthSettings(healthy_threshold=3,
                                                             unhealthy_threshold=2), **tg)])
    return store, clock, ev


def state(store: TargetStore, tid: str = "10.0.0.1", port: int = 80) -> tuple[Any, ...]:
    row = store.describe(TG, [(tid, port)])[0]
    return row["state"], row["reason"]


def test_registration_to_healthy_with_one_success() -> None:
    store, clock, _ = make(register_delay=2)
    store.register(TG, [("10.0.0.1", 80, None)])
    assert state(store) == ("initial", "Elb.RegistrationInProgress")
    clock.advance(2)
    assert state(store) == ("initial", "Elb.InitialHealthChecking")
    t = store.targets[TG][("10.0.0.1", 80)]
    store.record_check(t, False, "Target.Timeout")
    assert state(store) == ("initial", "Elb.InitialHealthChecking")
    store.record_check(t, True)
    assert state(store) == ("healthy", None)
    assert store.routing[TG] == [t]


def test_thresholds_and_reasons() -> None:
    store, clock, ev = make()
    store.register(TG, [("10.0.0.1", 80, None)])
    clock.advance(0)
    t = store.targets[TG][("10.0.0.1", 80)]
    store.record_check(t, True)
    store.record_check(t, False, "Target.ResponseCodeMismatch", "codes: [500]")
    assert state(store) == ("healthy", None)
    store.record_check(t, False, "Target.ResponseCodeMismatch", "codes: [500]")
    assert state(store) == ("unhealthy", "Target.ResponseCodeMismatch")
    store.record_check(t, False, "Target.Timeout")
    assert state(store) == ("unhealthy", "Target.Timeout")
    store.record_check(t, True)
    store.record_check(t, True)
    assert state(store)[0] == "unhealthy"
    store.record_check(t, True)
    assert state(store) == ("healthy", None)
    kinds = [(e["from"], e["to"]) for e in ev.since(0)[0] if e["kind"] == "target_state"]
    assert ("healthy", "unhealthy") in kinds and ("unhealthy", "healthy") in kinds


def test_initial_to_unhealthy_after_unhealthy_threshold() -> None:
    store, clock, _ = make()
    store.register(TG, [("10.0.0.1", 80, None)])
    clock.advance(0)
    t = store.targets[TG][("10.0.0.1", 80)]
    store.record_check(t, False)
    store.record_check(t, False)
    assert state(store) == ("unhealthy", "Target.FailedHealthChecks")


def test_fail_open_and_no_targets() -> None:
    store, clock, ev = make()
    assert store.pick(TG) is None
    store.register(TG, [("10.0.0.1", 80, None), ("10.0.0.2", 80, None)])
    clock.advance(0)
    assert store.pick(TG) is None  # all initial -> no in-service targets
    a, b = (store.targets[TG][(i, 80)] for i in ("10.0.0.1", "10.0.0.2"))
    for t in (a, b):
        store.record_check(t, False)
        store.record_check(t, False)
    assert set(store.routing[TG]) == {a, b}
    assert [e for e in ev.since(0)[0] if e["kind"] == "routing"][-1]["fail_open"] is True
    store.record_check(a, True)
    store.record_check(a, True)
    store.record_check(a, True)
    assert store.routing[TG] == [a]


def test_deregistration_propagation_then_drain_expiry() -> None:
    store, clock, ev = make(deregister_delay=5, dereg=10)
    store.register(TG, [("10.0.0.1", 80, None)])
    clock.advance(0)
    t = store.targets[TG][("10.0.0.1", 80)]
    store.record_check(t, True)
    aborted: list[str] = []
    t.aborters.add(aborted.append)
    store.deregister(TG, [("10.0.0.1", 80)])
    assert state(store) == ("draining", "Target.DeregistrationInProgress")
    assert store.pick(TG) is t  # the node has not heard yet
    clock.advance(5)
    assert store.pick(TG) is None
    assert state(store)[0] == "draining"
    clock.advance(9.9)
    assert aborted == []
    clock.advance(0.2)
    assert aborted == ["drain_expired"]
    assert store.describe(TG, None) == []
    assert state(store) == ("unused", "Target.NotRegistered")


def test_reregister_while_draining_starts_over() -> None:
    store, clock, _ = make(dereg=10)
    store.register(TG, [("10.0.0.1", 80, None)])
    clock.advance(0)
    store.deregister(TG, [("10.0.0.1", 80)])
    store.register(TG, [("10.0.0.1", 80, None)])
    clock.advance(0)
    assert state(store) == ("initial", "Elb.InitialHealthChecking")
    clock.advance(20)
    assert state(store)[0] == "initial"  # the old drain timer did not remove the new record


def test_not_in_use_and_health_check_disabled() -> None:
    store, clock, _ = make(in_use=False)
    started: list[Any] = []
    store.on_checks_start = started.append
    store.register(TG, [("10.0.0.1", 80, None)])
    clock.advance(0)
    assert state(store) == ("unused", "Target.NotInUse") and started == []
    spec = store.groups[TG]
    store.sync_groups([TargetGroupSpec(arn=TG, in_use=True, health=spec.health)])
    assert state(store) == ("initial", "Elb.InitialHealthChecking") and len(started) == 1
    store.sync_groups([TargetGroupSpec(arn=TG, in_use=True,
                                       health=HealthSettings(enabled=False))])
    assert state(store) == ("unavailable", "Target.HealthCheckDisabled")
    assert store.pick(TG) is not None  # no health checks: routed


def test_targets_keyed_by_id_and_port() -> None:
    store, clock, _ = make()
    store.register(TG, [("10.0.0.1", 8080, None), ("10.0.0.1", 9090, None)])
    assert {(r["id"], r["port"]) for r in store.describe(TG, None)} == {
        ("10.0.0.1", 8080), ("10.0.0.1", 9090)}


def _healthy(store: TargetStore, clock: FakeClock, ids: list[str]) -> list[Any]:
    store.register(TG, [(i, 80, None) for i in ids])
    clock.advance(0)
    out = [store.targets[TG][(i, 80)] for i in ids]
    for t in out:
        store.record_check(t, True)
    return out


def test_pick_follows_the_group_algorithm_as_it_changes() -> None:
    store, clock, _ = make()
    a, b = _healthy(store, clock, ["10.0.0.1", "10.0.0.2"])
    assert [store.pick(TG) for _ in range(4)] in ([a, b, a, b], [b, a, b, a])
    a.in_flight = 3
    spec = store.groups[TG]
    store.sync_groups([TargetGroupSpec(arn=TG, in_use=True, health=spec.health,
                                       algorithm="least_outstanding_requests")])
    assert all(store.pick(TG) is b for _ in range(5))


def test_unknown_algorithm_is_refused_not_round_robin() -> None:
    wire_group: Any = {"arn": TG, "port": 80, "deregistration_delay": 0, "slow_start": 0,
                       "algorithm": "random", "in_use": True,
                       "health": {"enabled": True, "protocol": "HTTP", "port": "traffic-port",
                                  "path": "/", "interval": 5, "timeout": 2,
                                  "healthy_threshold": 2, "unhealthy_threshold": 2,
                                  "matcher": "200"}}
    assert TargetGroupSpec.from_wire({**wire_group, "algorithm": "weighted_random"}
                                     ).algorithm == "weighted_random"
    with pytest.raises(ValueError, match="random"):
        TargetGroupSpec.from_wire(wire_group)


@pytest.mark.parametrize("elapsed, share", [(3.0, 0.1), (30.0, 0.5)])
def test_slow_start_ramps_linearly(elapsed: float, share: float) -> None:
    store, clock, _ = make(slow_start=30.0)
    (old,) = _healthy(store, clock, ["10.0.0.1"])
    clock.advance(100)
    (new,) = _healthy(store, clock, ["10.0.0.2"])
    clock.advance(elapsed)
    picks = [store.pick(TG) for _ in range(4000)]
    assert abs(picks.count(new) / 4000 - share) < 0.04


TG_A, TG_B, TG_C = "arn:tg/a", "arn:tg/b", "arn:tg/c"


def _three_groups(**global_values: float) -> tuple[TargetStore, FakeClock, EventLog]:
    clock = FakeClock()
    ev = EventLog()
    store = TargetStore(clock, ev, FakeAwsSettings(**global_values))
    store.sync_groups([TargetGroupSpec(arn=arn, in_use=True, deregistration_delay=0)
                       for arn in (TG_A, TG_B, TG_C)])
    return store, clock, ev


def _reason(store: TargetStore, tg: str, tid: str = "10.0.0.1") -> Any:
    return store.describe(tg, [(tid, 80)])[0]["reason"]


def test_register_delay_per_target_group() -> None:
    """Concurrent runs: each group's targets become visible after its own delay; a group
    without an override follows the global value."""
    store, clock, ev = _three_groups(register_delay=1.0)
    store.set_overrides(TG_A, {"register_delay": 5.0})
    store.set_overrides(TG_B, {"register_delay": 0.5})
    for tg in (TG_A, TG_B, TG_C):
        store.register(tg, [("10.0.0.1", 80, None)])
    visible_in = {e["tg_arn"]: e["visible_in"] for e in ev.since(0)[0]
                  if e["kind"] == "registered"}
    assert visible_in == {TG_A: 5.0, TG_B: 0.5, TG_C: 1.0}
    progress = "Elb.RegistrationInProgress"
    checking = "Elb.InitialHealthChecking"
    clock.advance(0.49)
    assert [_reason(store, tg) for tg in (TG_A, TG_B, TG_C)] == [progress] * 3
    clock.advance(0.01)
    assert [_reason(store, tg) for tg in (TG_A, TG_B, TG_C)] == [progress, checking, progress]
    clock.advance(0.5)
    assert [_reason(store, tg) for tg in (TG_A, TG_B, TG_C)] == [progress, checking, checking]
    clock.advance(3.99)
    assert _reason(store, TG_A) == progress
    clock.advance(0.01)
    assert _reason(store, TG_A) == checking


def test_deregister_delay_per_target_group() -> None:
    store, clock, ev = _three_groups(deregister_delay=1.0)
    store.set_overrides(TG_A, {"deregister_delay": 4.0})
    for tg in (TG_A, TG_B):
        store.register(tg, [("10.0.0.1", 80, None)])
    clock.advance(0)
    for tg in (TG_A, TG_B):
        store.record_check(store.targets[tg][("10.0.0.1", 80)], True)
        store.deregister(tg, [("10.0.0.1", 80)])
    routed_for = {e["tg_arn"]: e["routed_for"] for e in ev.since(0)[0]
                  if e["kind"] == "deregistered"}
    assert routed_for == {TG_A: 4.0, TG_B: 1.0}
    clock.advance(1.0)
    assert store.pick(TG_B) is None and store.pick(TG_A) is not None
    clock.advance(2.99)
    assert store.pick(TG_A) is not None
    clock.advance(0.01)
    assert store.pick(TG_A) is None


def test_overrides_layer_on_the_global_values_and_vanish_with_the_group() -> None:
    store, _, _ = _three_groups(register_delay=1.0, connect_timeout=10.0)
    with pytest.raises(KeyError):
        store.set_overrides("arn:tg/unknown", {"register_delay": 2.0})
    assert store.overrides == {}
    store.set_overrides(TG_A, {"connect_timeout": 0.5})
    store.set_overrides(TG_A, {"register_delay": 3.0})
    assert store.runtime_values(TG_A) == {"register_delay": 3.0, "deregister_delay": 0.0,
                                          "connect_timeout": 0.5}
    assert store.runtime(TG_B, "connect_timeout") == 10.0
    # A global change reaches the keys the group does not override, and only those.
    store.settings.apply_runtime({"deregister_delay": 7, "register_delay": 9})
    assert store.runtime_values(TG_A) == {"register_delay": 3.0, "deregister_delay": 7.0,
                                          "connect_timeout": 0.5}
    assert store.runtime(TG_B, "register_delay") == 9.0
    # Deleted (a snapshot without it): the override goes; the same ARN again starts clean.
    spec_b, spec_c = store.groups[TG_B], store.groups[TG_C]
    store.sync_groups([spec_b, spec_c])
    assert TG_A not in store.overrides
    store.sync_groups([TargetGroupSpec(arn=TG_A, in_use=True), spec_b, spec_c])
    assert store.runtime(TG_A, "connect_timeout") == 10.0
    store.set_overrides(TG_B, {"register_delay": 1.5})
    store.reset()
    assert store.overrides == {}


def _set_slow_start(store: TargetStore, seconds: float) -> None:
    spec = store.groups[TG]
    store.sync_groups([TargetGroupSpec(arn=TG, in_use=True, health=spec.health,
                                       deregistration_delay=spec.deregistration_delay,
                                       slow_start=seconds)])


def test_slow_start_not_applied_to_targets_healthy_when_it_is_enabled() -> None:
    """AWS: targets already healthy when slow start is enabled do not enter slow start mode.
    Before the fix the picker ramped any target healthy for less than the duration, so a
    target healthy 3 s before slow start (30 s) was enabled got ~10% of the requests."""
    store, clock, _ = make()
    (old,) = _healthy(store, clock, ["10.0.0.1"])
    clock.advance(100)
    (recent,) = _healthy(store, clock, ["10.0.0.2"])
    clock.advance(3)
    _set_slow_start(store, 30.0)
    assert old.slow_start_since is None and recent.slow_start_since is None
    picks = [store.pick(TG) for _ in range(4000)]
    assert picks.count(recent) == 2000
    # A target becoming healthy from now on does enter slow start.
    (new,) = _healthy(store, clock, ["10.0.0.3"])
    assert new.slow_start_since == clock.now


def test_slow_start_ends_when_unhealthy_or_disabled_and_restarts_on_recovery() -> None:
    store, clock, _ = make(slow_start=30.0)
    _healthy(store, clock, ["10.0.0.1"])
    clock.advance(100)
    (t,) = _healthy(store, clock, ["10.0.0.2"])
    assert t.slow_start_since == clock.now
    store.record_check(t, False)
    store.record_check(t, False)
    assert t.health == "unhealthy" and t.slow_start_since is None
    clock.advance(5)
    for _ in range(3):
        store.record_check(t, True)
    assert t.health == "healthy" and t.slow_start_since == clock.now
    _set_slow_start(store, 0.0)
    assert t.slow_start_since is None
    _set_slow_start(store, 30.0)
    assert t.slow_start_since is None  # healthy when slow start was enabled again


def test_routable_follows_the_routing_set() -> None:
    store, clock, _ = make(dereg=10.0)
    a, b = _healthy(store, clock, ["10.0.0.1", "10.0.0.2"])
    assert store.routable(TG, "10.0.0.1", 80) == a  # (Target compares by identity)
    assert store.routable(TG, "10.0.0.9", 80) is None
    store.record_check(a, False)
    store.record_check(a, False)
    assert store.routable(TG, "10.0.0.1", 80) is None  # unhealthy, b still healthy
    store.deregister(TG, [("10.0.0.2", 80)])
    clock.advance(0)
    # b draining (deregister propagation 0): out; a unhealthy alone: fail-open routes to it
    assert store.routable(TG, "10.0.0.2", 80) is None
    assert store.routable(TG, "10.0.0.1", 80) == a


def test_stickiness_from_wire() -> None:
    from testbed.fakeaws.engine.store import Stickiness
    assert Stickiness.from_wire(None) is None
    assert Stickiness.from_wire({"type": "app_cookie", "duration": 60, "cookie_name": "s"}) \
        == Stickiness("app_cookie", 60.0, "s")
    with pytest.raises(ValueError):
        Stickiness.from_wire({"type": "source_ip", "duration": 1, "cookie_name": ""})


def test_each_describe_is_an_event_naming_its_caller() -> None:
    store, _, ev = make()
    store.register(TG, [("10.0.0.1", 80, None)])
    store.describe(TG, None, caller="controller")
    store.describe(TG, [("10.0.0.1", 80)])
    assert [(e["caller"], e["targets"]) for e in ev.since(0)[0] if e["kind"] == "described"] \
        == [("controller", None), ("other", 1)]


def _strip(evs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events without their numbering and time, and without this test's own reads."""
    return [{k: v for k, v in e.items() if k not in ("seq", "ts")} for e in evs
            if e["kind"] != "described"]


def test_dump_and_load_carry_every_state_and_timer() -> None:
    """A restarted engine's store (load of a dump, elsewhere on another clock, 0.2 s later)
    then behaves exactly as the original does over the same time."""
    store, clock, ev = make(dereg=10)
    t = {name: (f"10.0.0.{i}", 80) for i, name in enumerate(
        ("healthy", "sick", "draining", "leaving", "joining"), start=1)}
    store.register(TG, [(*t["healthy"], "a"), (*t["sick"], None), (*t["draining"], None)])
    clock.advance(0)
    by = store.targets[TG]
    store.record_check(by[t["healthy"]], True)
    store.record_check(by[t["draining"]], True)
    for _ in range(3):
        store.record_check(by[t["sick"]], False, "Target.Timeout")
    store.deregister(TG, [t["draining"]])  # routed for 0 s, then 10 s of draining
    clock.advance(4)
    store.set_overrides(TG, {"deregister_delay": 3.0})
    store.register(TG, [(*t["leaving"], None)])
    clock.advance(0)
    store.record_check(by[t["leaving"]], True)
    store.deregister(TG, [t["leaving"]])  # still routed for 3 s
    store.set_overrides(TG, {"register_delay": 2.0})
    store.register(TG, [(*t["joining"], None)])  # the node learns of it in 2 s
    clock.advance(0.5)

    state = json.loads(json.dumps(store.dump(
        lambda x: clock.now + 0.1 if x is by[t["healthy"]] else None)))
    clock2 = FakeClock()
    clock2.now = 100.0
    ev2 = EventLog()
    store2 = TargetStore(clock2, ev2, FakeAwsSettings())
    resumed: list[tuple[str, float]] = []
    store2.on_checks_resume = lambda x, at: resumed.append((x.id, at))
    assert store2.load(state, elapsed=0.2) == 5
    assert ev2.latest == 0  # nothing changed for readers: no event
    clock.advance(0.2)

    def same() -> None:
        assert store2.describe(TG, None) == store.describe(TG, None)
        for key, x in store.targets[TG].items():
            y = store2.targets[TG][key]
            assert (y.ok_streak, y.fail_streak, y.routed) == (x.ok_streak, x.fail_streak,
                                                              x.routed)
            assert y.registered_at - clock2.now == pytest.approx(x.registered_at - clock.now)
        assert [x.addr for x in store2.routing[TG]] == [x.addr for x in store.routing[TG]]

    assert store2.overrides == store.overrides
    assert resumed == [("10.0.0.1", pytest.approx(100.0 - 0.2 + 0.1))]
    same()
    assert store2.describe(TG, [t["draining"]])[0]["state"] == "draining"
    mark = ev.latest
    # joining visible (+1.3), leaving no longer routed (+2.3), draining ends (+5.3), leaving
    # ends (+12.3)
    for step in (1.0, 1.0, 2.0, 5.0, 1.0, 3.0):
        clock.advance(step)
        clock2.advance(step)
        same()
    assert _strip(ev2.since(0)[0]) == _strip(ev.since(mark)[0])
    assert {"draining", "leaving"}.isdisjoint(
        name for name, key in t.items() if key in store2.targets[TG])
    assert store2.targets[TG][t["joining"]].health == "initial"


def test_event_log_dump_load_and_the_tail_kept_aside() -> None:
    old = EventLog()
    for i in range(5):
        old.emit("x", i=i)
    state = old.dump()
    old.detach()
    old.emit("elb_error", status=502)  # after the checkpoint: kept aside, unnumbered
    assert old.latest == 5
    new = EventLog()
    assert new.load(json.loads(json.dumps(state))) == 5
    new.emit("restart")
    for e in old.take_tail():
        new.emit(**e)
    evs, nxt = new.since(3)
    assert [(e["seq"], e["kind"]) for e in evs] == [(4, "x"), (5, "x"), (6, "restart"),
                                                     (7, "elb_error")]
    assert nxt == 7
