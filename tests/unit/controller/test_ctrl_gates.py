"""Readiness-gate condition transitions and the pending-gate requeue switches."""

from __future__ import annotations

from typing import Any

from ctrl_helpers import ARN, NS, cfg, endpoint_slice, ep, namespace, node, pod, service, tgb

from controller import gates
from controller.aws import TargetsManager
from controller.reconcile import CHECKPOINT_ANNOTATION, Reconciler
from controller.testing import FakeELBv2, FakeKube

KEY = (NS, "web-tgb")
COND = "target-health.elbv2.k8s.aws/web-tgb"


def world(**kw: Any) -> tuple[FakeKube, FakeELBv2, Reconciler]:
    kube, elb = FakeKube(notify_on_write=False), FakeELBv2()
    elb.create_target_group(ARN)
    kube.put("namespace", namespace())
    kube.put("node", node())
    kube.put("service", service())
    # a gated pod waiting only on its gate: ContainersReady True, endpoint not ready
    kube.put("pod", pod("g", "10.0.0.1", ready=False, gates=["web-tgb"]))
    kube.put("pod", pod("plain", "10.0.0.2"))
    kube.put(
        "endpointslice",
        endpoint_slice(endpoints=[ep("10.0.0.1", "g", ready=False), ep("10.0.0.2", "plain")]),
    )
    kube.put("tgb", tgb())
    ttl = kw.pop("ttl", 0)
    return kube, elb, Reconciler(kube, TargetsManager(elb, ttl=ttl), cfg(**kw))


def cond(kube: FakeKube, name: str = "g") -> dict[str, Any] | None:
    for c in kube.get("pod", NS, name)["status"]["conditions"]:
        if c["type"] == COND:
            return c
    return None


def test_gated_pod_gets_synthetic_initial_then_true_when_healthy() -> None:
    kube, elb, r = world()
    res = r.reconcile(KEY)
    assert res.requeue_after == 15.0 and res.reason == "monitor targetHealth"
    c = cond(kube)
    assert c is not None
    assert (c["status"], c["reason"], c["message"]) == (
        "False",
        "Elb.RegistrationInProgress",
        "Target registration is in progress",
    )
    assert cond(kube, "plain") is None  # no gate: never written
    assert not (kube.get("tgb", NS, "web-tgb")["metadata"].get("annotations") or {}).get(
        CHECKPOINT_ANNOTATION
    )  # pending gate: checkpoint not saved
    elb.all_healthy(ARN)
    res = r.reconcile(KEY)
    assert res.reason == "reconciled" and res.requeue_after == 0
    c = cond(kube)
    assert c is not None and (c["status"], c["reason"], c["message"]) == ("True", "", "")


def test_unhealthy_reason_and_message_copied_and_still_pending() -> None:
    kube, elb, r = world()
    r.reconcile(KEY)
    elb.set_health(
        ARN,
        "10.0.0.1:8080",
        "unhealthy",
        "Target.ResponseCodeMismatch",
        "Health checks failed with these codes: [503]",
    )
    res = r.reconcile(KEY)
    assert res.requeue_after == 15.0
    c = cond(kube)
    assert c is not None and (c["status"], c["reason"], c["message"]) == (
        "False",
        "Target.ResponseCodeMismatch",
        "Health checks failed with these codes: [503]",
    )


def test_unchanged_condition_is_not_patched() -> None:
    kube, elb, r = world()
    r.reconcile(KEY)
    n = len(kube.pod_patches)
    r.reconcile(KEY)  # still initial: same status/reason/message
    assert len(kube.pod_patches) == n


def test_last_transition_time_moves_only_with_status() -> None:
    kube = FakeKube(notify_on_write=False)
    kube.put("pod", pod("g", "10.0.0.1", gates=["web-tgb"]))
    clock = iter(["t1", "t2", "t3"])

    def now() -> str:
        return next(clock)

    p = lambda: kube.get("pod", NS, "g")  # noqa: E731
    gates.update_pod_condition(kube, p(), COND, gates.REGISTRATION_IN_PROGRESS, now=now)
    assert cond(kube)["lastTransitionTime"] == "t1"  # type: ignore[index]
    gates.update_pod_condition(
        kube,
        p(),
        COND,
        {"State": "unhealthy", "Reason": "Target.Timeout", "Description": "Request timed out"},
        now=now,
    )
    c = cond(kube)
    assert c is not None and c["lastTransitionTime"] == "t1" and c["reason"] == "Target.Timeout"
    assert gates.update_pod_condition(kube, p(), COND, {"State": "healthy"}, now=now) is False
    assert cond(kube)["lastTransitionTime"] == "t2"  # type: ignore[index]


def test_unknown_health_gives_unknown_status() -> None:
    assert gates.desired_condition(None) == ("Unknown", "", "")
    assert (
        gates.desired_condition(
            {"State": "draining", "Reason": "Target.DeregistrationInProgress", "Description": "x"}
        )[0]
        == "False"
    )


def test_uid_precondition_and_not_found_are_ignored() -> None:
    kube = FakeKube(notify_on_write=False)
    stale = pod("g", "10.0.0.1", gates=["web-tgb"], uid="old-uid")
    kube.put("pod", pod("g", "10.0.0.1", gates=["web-tgb"], uid="new-uid"))
    assert gates.update_pod_condition(kube, stale, COND, {"State": "initial"}) is False
    assert cond(kube) is None
    kube.delete("pod", NS, "g")
    assert gates.update_pod_condition(kube, stale, COND, {"State": "initial"}) is False


def test_switch_backoff_requeue_uses_rate_limited_requeue() -> None:
    kube, elb, r = world(backoff_requeue=True)
    res = r.reconcile(KEY)  # just registered: fixed period even before v2.10
    assert res.requeue_after == 15.0 and not res.requeue
    elb.all_healthy(ARN)  # no target left in initial ...
    elb.set_health(ARN, "10.0.0.1:8080", "unhealthy", "Target.Timeout", "Request timed out")
    res = r.reconcile(KEY)  # ... so the pending gate goes through the backoff
    assert res.requeue is True and res.requeue_after == 0
    kube2, elb2, r2 = world()  # default: fixed period in both cases
    r2.reconcile(KEY)
    elb2.set_health(ARN, "10.0.0.1:8080", "unhealthy", "Target.Timeout", "Request timed out")
    assert r2.reconcile(KEY).requeue_after == 15.0


def test_switch_backoff_requeue_potential_ready_pod() -> None:
    kube, elb, r = world(release="v2.6.0", endpoint_slices=True)  # backoff, potential-ready
    kube.put("pod", pod("s", "10.0.0.3", containers_ready=False, gates=["web-tgb"]))
    kube.put(
        "endpointslice",
        endpoint_slice(endpoints=[ep("10.0.0.2", "plain"), ep("10.0.0.3", "s", ready=False)]),
    )
    kube.delete("pod", NS, "g")
    r.reconcile(KEY)
    elb.all_healthy(ARN)
    res = r.reconcile(KEY)
    assert res.reason == "monitor potential ready endpoints" and res.requeue


def test_requeue_period_flag() -> None:
    kube, elb, r = world(requeue_seconds=2.5)
    assert r.reconcile(KEY).requeue_after == 2.5


def test_registered_targets_with_cached_unknown_health_keep_polling() -> None:
    kube, elb, r = world(ttl=300)
    r.reconcile(KEY)
    # next pass: cache says health unknown for just-registered targets -> refreshed from AWS
    elb.all_healthy(ARN)
    assert r.reconcile(KEY).reason == "reconciled"
    c = cond(kube)
    assert c is not None and c["status"] == "True"
