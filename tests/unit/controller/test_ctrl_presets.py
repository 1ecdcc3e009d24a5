"""Release presets over real object shapes: each test names the upstream behaviour it pins
(kubernetes-sigs/aws-load-balancer-controller, file and PR in docs/controller.md) and shows the
release before and after the change behaving differently."""

from __future__ import annotations

from typing import Any

import pytest
from ctrl_helpers import ARN, NS, cfg, endpoint_slice, ep, namespace, node, pod, service, tgb

from controller.aws import TargetsManager
from controller.deferred import Deferred
from controller.gates import gate_type
from controller.manager import Manager
from controller.queue import ExponentialBackoff, TokenBucket
from controller.reconcile import CHECKPOINT_ANNOTATION, CHECKPOINT_TIMESTAMP_ANNOTATION, Reconciler
from controller.resolve import PodNotCached, pod_condition
from controller.testing import FakeELBv2, FakeKube

KEY = (NS, "web-tgb")
GATE = gate_type("web-tgb")


def world(release: str, **kw: Any) -> tuple[FakeKube, FakeELBv2, Reconciler]:
    """One gated pod behind an EndpointSlice (slices on whatever the release's default)."""
    kube, elb = FakeKube(notify_on_write=False), FakeELBv2()
    elb.create_target_group(ARN)
    for kind, obj in [("namespace", namespace()), ("node", node()), ("service", service()),
                      ("pod", pod("g", "10.0.0.1", ready=False, gates=["web-tgb"])),
                      ("endpointslice", endpoint_slice(endpoints=[ep("10.0.0.1", "g",
                                                                     ready=False)])),
                      ("tgb", tgb())]:
        kube.put(kind, obj)
    kw.setdefault("endpoint_slices", True)
    return kube, elb, Reconciler(kube, TargetsManager(elb, ttl=0), cfg(release, **kw))


def gate(kube: FakeKube, name: str = "g") -> str | None:
    c = pod_condition(kube.get("pod", NS, name) or {}, GATE)
    return None if c is None else str(c.get("status"))


def settle(kube: FakeKube, elb: FakeELBv2, r: Reconciler) -> None:
    """Register, turn healthy, flip the gate: the checkpoint is saved."""
    r.reconcile(KEY)
    elb.all_healthy(ARN)
    assert r.reconcile(KEY).reason == "reconciled"
    assert gate(kube) == "True"


@pytest.mark.parametrize(("release", "flipped"), [("v3.2.0", False), ("v3.4.0", True)])
def test_checkpoint_early_return_waits_for_a_gate_to_flip_from_v3_4_0(
    release: str, flipped: bool
) -> None:
    """PR #4737: a pod back on the same IP with its gate False (same checkpoint, since the
    hash holds ip:port and creation time) was skipped for ever before v3.4.0."""
    kube, elb, r = world(release)
    settle(kube, elb, r)
    p = kube.get("pod", NS, "g")
    assert p is not None
    for c in p["status"]["conditions"]:
        if c["type"] == GATE:
            c["status"] = "False"
    kube.put("pod", p)
    res = r.reconcile(KEY)
    assert res.skipped is not flipped
    assert gate(kube) == ("True" if flipped else "False")


@pytest.mark.parametrize(("release", "mode"), [("v2.6.0", "off"), ("v2.9.1", "potential-ready"),
                                               ("v3.5.0", "gate-flip")])
def test_checkpoint_annotation_exists_from_v2_9_1(release: str, mode: str) -> None:
    kube, elb, r = world(release)
    assert r.cfg.checkpoint == mode
    settle(kube, elb, r)
    ann = (kube.get("tgb", NS, "web-tgb") or {})["metadata"].get("annotations") or {}
    assert (CHECKPOINT_ANNOTATION in ann) is (mode != "off")
    assert (CHECKPOINT_TIMESTAMP_ANNOTATION in ann) is (mode != "off")
    # before the checkpoint every pass is a full one (DescribeTargetHealth each time)
    elb.call_log.clear()
    assert r.reconcile(KEY).skipped is (mode != "off")
    assert bool(elb.call_log) is (mode == "off")


def test_missing_ready_pod_fails_the_reconcile_in_v2_2() -> None:
    """v2.2.x pkg/backend/endpoint_resolver.go:89-90 "couldn't find podInfo for ready endpoint";
    v2.4.1 (PR #2546) skips it instead."""
    for release, fails in (("v2.2.1", True), ("v2.4.1", False)):
        kube, elb, r = world(release)
        kube.put("endpointslice", endpoint_slice(endpoints=[ep("10.0.0.9", "ghost")]))
        if fails:
            with pytest.raises(PodNotCached):
                r.reconcile(KEY)
        else:
            assert r.reconcile(KEY).reason == "reconciled"
            assert elb.registered(ARN) == set()


@pytest.mark.parametrize(("release", "forced"), [("v2.2.1", False), ("v2.4.1", True)])
def test_deleted_binding_forces_gates_true_from_v2_4_1(release: str, forced: bool) -> None:
    """PR #2524: Cleanup writes "Target Group Binding is deleted" into every gated pod."""
    kube, elb, r = world(release)
    r.reconcile(KEY)
    assert gate(kube) == "False"
    t = kube.get("tgb", NS, "web-tgb")
    assert t is not None
    t["metadata"]["deletionTimestamp"] = "2026-11-30T10:00:00Z"
    kube.put("tgb", t)
    r.reconcile(KEY)
    assert elb.registered(ARN) == set()
    assert gate(kube) == ("True" if forced else "False")


@pytest.mark.parametrize(("release", "set_aside"), [("v2.6.0", False), ("v2.7.0", True)])
def test_unhealthy_draining_targets_are_set_aside_from_v2_7_0(
    release: str, set_aside: bool
) -> None:
    """PR #3548: IsDraining() also matches unhealthy.draining; before, such a target counted as
    registered, so its endpoint was not registered again."""
    kube, elb, r = world(release)
    settle(kube, elb, r)
    elb.set_health(ARN, "10.0.0.1:8080", "unhealthy.draining", "Target.DeregistrationInProgress")
    kube.put("tgb", {**tgb(), "metadata": {**tgb()["metadata"], "annotations": {}}})
    elb.call_log.clear()
    r.reconcile(KEY)
    registered = [c for c in elb.call_log if c[0] == "RegisterTargets"]
    assert bool(registered) is set_aside


@pytest.mark.parametrize(("release", "kept"), [("v3.4.0", 2), ("v3.4.1", 1)])
def test_address_type_filter_from_v3_4_1(release: str, kept: int) -> None:
    """PR #4783: only the binding's address family (IPv4 unless ipAddressType ipv6)."""
    kube, elb, r = world(release)
    kube.put("pod", pod("v6", "fd00::1"))
    v6 = endpoint_slice(name="web-v6", endpoints=[ep("fd00::1", "v6")])
    v6["addressType"] = "IPv6"
    kube.put("endpointslice", v6)
    kube.put("pod", pod("v4", "10.0.0.2"))
    kube.put("endpointslice", endpoint_slice(endpoints=[ep("10.0.0.2", "v4")]))
    r.reconcile(KEY)
    assert len(elb.registered(ARN)) == kept


def test_v2_2_0_rate_limiter_adds_the_shared_10_qps_bucket() -> None:
    """controller-runtime v0.6.3 DefaultControllerRateLimiter (ALBC v2.2.0); v2.2.1 (PR
    #2029) keeps only the per-key exponential."""
    now = [0.0]
    limiter = ExponentialBackoff(0.005, 1000.0, TokenBucket(10.0, 100, clock=lambda: now[0]))
    delays = [limiter.when(("ns", f"k{i}")) for i in range(101)]
    assert delays[:100] == [0.005] * 100  # the burst, then the bucket's debt
    assert delays[100] == pytest.approx(0.1)
    assert ExponentialBackoff.of(cfg("v2.2.0")).bucket is not None
    assert ExponentialBackoff.of(cfg("v2.2.1")).bucket is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def deferred(release: str, **kw: Any) -> tuple[FakeKube, Deferred, Clock]:
    kube = FakeKube(notify_on_write=False)
    kube.put("tgb", tgb())
    clock = Clock()
    d = Deferred(kube, cfg(release, deferred_delay_seconds=60.0, deferred_jitter_seconds=30.0,
                           sync_period_seconds=600.0, **kw),
                 clock=clock, wall=clock, jitter=lambda top: top / 2)
    return kube, d, clock


def test_deferred_reconcile_v2_14_once_per_sync_period_and_after_start() -> None:
    """PR #4224: a skipped binding gets one deferred reset per sync period; a full reconcile
    counts; the memory starts empty (so every start defers once)."""
    kube, d, clock = deferred("v2.14.0")
    assert d.enqueue(KEY) == 75.0  # delay + jitter
    assert d.enqueue(KEY) is None  # remembered
    clock.now += 75.0
    assert d.process_one(timeout=0) == KEY
    ann = (kube.get("tgb", NS, "web-tgb") or {})["metadata"]["annotations"]
    assert ann[CHECKPOINT_ANNOTATION] == ""  # the TGB update event makes the next pass full
    clock.now += 600.0
    d.mark_processed(KEY)
    assert d.enqueue(KEY) is None  # a full reconcile within the sync period


def test_deferred_reconcile_v2_9_only_when_the_checkpoint_is_older_than_the_sync_period() -> None:
    kube, d, clock = deferred("v2.10.0")
    t = kube.get("tgb", NS, "web-tgb")
    assert t is not None
    t["metadata"]["annotations"] = {CHECKPOINT_TIMESTAMP_ANNOTATION: str(int(clock.now))}
    kube.put("tgb", t)
    assert d.enqueue(KEY) is None
    clock.now += 601
    assert d.enqueue(KEY) == 75.0
    assert deferred("v2.6.0")[1].enqueue(KEY) is None  # no deferred queue before v2.9.1


def test_a_skipped_reconcile_defers_and_the_reset_makes_a_full_pass() -> None:
    """End to end through the manager (v3.5.0): skip -> deferred reset -> TGB update event ->
    full pass that repairs a target deregistered behind the controller's back."""
    kube, elb = FakeKube(), FakeELBv2()
    elb.create_target_group(ARN)
    for kind, obj in [("namespace", namespace()), ("node", node()), ("service", service()),
                      ("pod", pod("a", "10.0.0.1")),
                      ("endpointslice", endpoint_slice(endpoints=[ep("10.0.0.1", "a")])),
                      ("tgb", tgb())]:
        kube.put(kind, obj)
    # a sync period of 0: every skip qualifies (the full pass would otherwise count)
    c = cfg(deferred_delay_seconds=0.01, deferred_jitter_seconds=0.0, sync_period_seconds=0.0)
    mgr = Manager(kube, Reconciler(kube, TargetsManager(elb, ttl=0), c), c)
    kube.add_handler(mgr.handle)
    mgr.queue.add(KEY)
    while len(mgr.queue):
        mgr.process_one(0)
    assert elb.registered(ARN) == {"10.0.0.1:8080"}
    elb.deregister_targets(ARN, [{"Id": "10.0.0.1", "Port": 8080}])  # drift
    elb.tgs[ARN].clear()
    mgr.queue.add(KEY)
    mgr.process_one(0)
    assert mgr.last_results[KEY].skipped and elb.registered(ARN) == set()
    while mgr.deferred.process_one(timeout=0.5) is not None:
        pass
    while len(mgr.queue):
        mgr.process_one(0)
    assert elb.registered(ARN) == {"10.0.0.1:8080"}
