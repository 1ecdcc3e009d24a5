"""Reconcile over in-memory Kubernetes/ELBv2 fakes: diff, draining, chunking, checkpoint,
finalizer cleanup, bad input."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest
from ctrl_helpers import ARN, NS, cfg, endpoint_slice, ep, namespace, node, pod, service, tgb

from controller import log as clog
from controller.aws import AWSError, TargetInfo, TargetsManager
from controller.reconcile import (
    CHECKPOINT_ANNOTATION,
    FINALIZER,
    Reconciler,
    compute_checkpoint,
)
from controller.resolve import PodEndpoint
from controller.testing import FakeELBv2, FakeKube

KEY = (NS, "web-tgb")


def ips(n: int, base: int = 1) -> list[str]:
    return [f"10.0.{(i + base) // 250}.{(i + base) % 250 + 1}" for i in range(n)]


def world(n: int = 3, gates: bool = False, **kw: Any) -> tuple[FakeKube, FakeELBv2, Reconciler]:
    kube, elb = FakeKube(notify_on_write=False), FakeELBv2()
    elb.create_target_group(ARN)
    kube.put("namespace", namespace())
    kube.put("node", node())
    kube.put("service", service())
    set_pods(kube, ips(n), gates=gates)
    kube.put("tgb", tgb())
    return kube, elb, Reconciler(kube, TargetsManager(elb, ttl=kw.pop("ttl", 0)), cfg(**kw))


def set_pods(kube: FakeKube, addrs: list[str], gates: bool = False, ready: bool = True) -> None:
    for ip in addrs:
        if kube.get("pod", NS, f"p{ip}") is None:
            kube.put("pod", pod(f"p{ip}", ip, gates=["web-tgb"] if gates else None))
    kube.put(
        "endpointslice", endpoint_slice(endpoints=[ep(ip, f"p{ip}", ready=ready) for ip in addrs])
    )


def tgb_annotations(kube: FakeKube) -> dict[str, str]:
    return kube.get("tgb", NS, "web-tgb")["metadata"].get("annotations") or {}


def test_first_pass_registers_adds_finalizer_saves_checkpoint_and_status() -> None:
    kube, elb, r = world(3)
    res = r.reconcile(KEY)
    assert res.reason == "reconciled" and res.requeue_after == 0 and not res.requeue
    assert elb.registered(ARN) == {f"{ip}:8080" for ip in ips(3)}
    obj = kube.get("tgb", NS, "web-tgb")
    assert FINALIZER in obj["metadata"]["finalizers"]
    assert obj["status"]["observedGeneration"] == 1
    assert obj["status"]["conditions"][0]["reason"] == "SuccessfullyReconciled"
    assert tgb_annotations(kube)[CHECKPOINT_ANNOTATION]
    assert "SuccessfullyReconciled" in kube.reasons()


def test_unchanged_checkpoint_returns_early_without_aws_calls() -> None:
    kube, elb, r = world(3)
    r.reconcile(KEY)
    calls = dict(elb.calls)
    assert r.reconcile(KEY).reason == "checkpoint unchanged"
    assert elb.calls == calls


def test_checkpoint_is_sha256_of_ip_port_creation_and_spec() -> None:
    p = pod("a", "10.0.0.1")
    e1 = [PodEndpoint("10.0.0.1", 8080, p), PodEndpoint("10.0.0.2", 8080, p)]
    spec = tgb()["spec"]
    assert compute_checkpoint(e1, spec) == compute_checkpoint(list(reversed(e1)), spec)
    assert len(compute_checkpoint(e1, spec)) == 64
    assert compute_checkpoint(e1, spec) != compute_checkpoint(e1[:1], spec)
    p2 = pod("a", "10.0.0.1", created=dt.datetime(2026, 11, 25, 11, 0, tzinfo=dt.UTC))
    assert compute_checkpoint([PodEndpoint("10.0.0.1", 8080, p2)], spec) != compute_checkpoint(
        e1[:1], spec
    )
    assert compute_checkpoint(e1, spec) != compute_checkpoint(e1, {**spec, "targetGroupARN": "x"})


def test_checkpoint_blanked_before_changes_survives_a_failed_deregister() -> None:
    kube, elb, r = world(3)
    r.reconcile(KEY)
    set_pods(kube, ips(2))
    elb.fail["DeregisterTargets"] = [AWSError("DeregisterTargets", "Throttling", "Rate exceeded")]
    with pytest.raises(AWSError):
        r.reconcile(KEY)
    assert tgb_annotations(kube)[CHECKPOINT_ANNOTATION] == ""
    assert "FailedReconcile" in kube.reasons()
    r.reconcile(KEY)  # retry converges
    assert elb.registered(ARN) == {f"{ip}:8080" for ip in ips(2)}
    assert tgb_annotations(kube)[CHECKPOINT_ANNOTATION]


def test_diff_by_ip_port_deregisters_stale_and_keeps_matched() -> None:
    kube, elb, r = world(3)
    elb.register_targets(ARN, [{"Id": "10.9.9.9", "Port": 8080}, {"Id": ips(1)[0], "Port": 9999}])
    elb.all_healthy(ARN)
    r.reconcile(KEY)
    assert elb.registered(ARN) == {f"{ip}:8080" for ip in ips(3)}
    assert elb.registered(ARN, include_draining=True) >= {"10.9.9.9:8080", f"{ips(1)[0]}:9999"}


def test_draining_target_set_aside_and_reregistered_when_endpoint_returns() -> None:
    kube, elb, r = world(2)
    r.reconcile(KEY)
    gone = f"{ips(2)[1]}:8080"
    set_pods(kube, ips(1))
    r.reconcile(KEY)
    assert elb.tgs[ARN][gone]["state"] == "draining"
    dereg_calls = elb.calls["DeregisterTargets"]
    set_pods(kube, ips(2))  # same IP:port back while still draining
    r.reconcile(KEY)
    assert elb.tgs[ARN][gone]["state"] == "initial"
    assert elb.calls["DeregisterTargets"] == dereg_calls  # draining one was not deregistered again


def test_deregister_before_register_in_chunks_of_200() -> None:
    kube, elb, r = world(0)
    old = ips(250, base=1000)
    elb.register_targets(ARN, [{"Id": ip, "Port": 8080} for ip in old])
    elb.call_log.clear()
    set_pods(kube, ips(450))
    r.reconcile(KEY)
    ops = [(op, len(t)) for op, _, t in elb.call_log if op != "DescribeTargetHealth"]
    assert ops == [
        ("DeregisterTargets", 200),
        ("DeregisterTargets", 50),
        ("RegisterTargets", 200),
        ("RegisterTargets", 200),
        ("RegisterTargets", 50),
    ]


@pytest.mark.parametrize("breakage", ["service", "port"])
def test_backend_not_found_deregisters_all_with_event_and_condition(breakage: str) -> None:
    kube, elb, r = world(3)
    r.reconcile(KEY)
    if breakage == "service":
        kube.delete("service", NS, "web")
    else:
        kube.put("service", service(ports=[("other", 81, 8081)]))
    res = r.reconcile(KEY)
    assert res.reason == "backend not found"
    assert elb.registered(ARN) == set()
    assert "BackendNotFound" in kube.reasons()
    cond = kube.get("tgb", NS, "web-tgb")["status"]["conditions"][0]
    assert (cond["status"], cond["reason"]) == ("False", "BackendNotFound")
    assert tgb_annotations(kube)[CHECKPOINT_ANNOTATION] == ""
    kube.put("service", service())  # back again: same endpoints must be registered again
    r.reconcile(KEY)
    assert elb.registered(ARN) == {f"{ip}:8080" for ip in ips(3)}


def test_unknown_target_group_event_condition_and_error_for_backoff() -> None:
    kube, elb, r = world(1)
    kube.put("tgb", tgb(arn=ARN.replace("web", "missing")))
    with pytest.raises(AWSError) as ei:
        r.reconcile(KEY)
    assert ei.value.code == "TargetGroupNotFound"
    assert "TargetGroupNotFound" in kube.reasons()
    assert (
        kube.get("tgb", NS, "web-tgb")["status"]["conditions"][0]["reason"] == "TargetGroupNotFound"
    )


def test_duplicate_arn_refused_by_reconciler() -> None:
    kube, elb, r = world(1)
    r.reconcile(KEY)
    kube.put("tgb", tgb("copy", created="2026-11-25T10:05:00Z"))
    calls = dict(elb.calls)
    res = r.reconcile((NS, "copy"))
    assert res.reason == "duplicate ARN"
    assert "DuplicateTargetGroupARN" in kube.reasons()
    assert not kube.get("tgb", NS, "copy")["metadata"].get("finalizers")
    assert elb.calls == calls


def test_delete_deregisters_all_sets_gates_true_and_removes_finalizer() -> None:
    kube, elb, r = world(2, gates=True)
    r.reconcile(KEY)
    kube.delete("tgb", NS, "web-tgb")
    assert kube.get("tgb", NS, "web-tgb")["metadata"]["deletionTimestamp"]
    assert r.reconcile(KEY).reason == "deleted"
    assert kube.get("tgb", NS, "web-tgb") is None
    assert elb.registered(ARN) == set()
    for ip in ips(2):
        c = [
            c
            for c in kube.get("pod", NS, f"p{ip}")["status"]["conditions"]
            if c["type"] == "target-health.elbv2.k8s.aws/web-tgb"
        ][0]
        assert (c["status"], c["reason"], c["message"]) == (
            "True",
            "",
            "Target Group Binding is deleted",
        )


def test_instance_target_type_is_reported_not_registered() -> None:
    kube, elb, r = world(1)
    kube.put("tgb", tgb(target_type="instance"))
    assert r.reconcile(KEY).reason == "unsupported targetType"
    assert "UnsupportedTargetType" in kube.reasons() and "RegisterTargets" not in elb.calls


def test_targets_cache_refreshes_only_unhealthy_and_drops_not_registered() -> None:
    elb = FakeELBv2()
    elb.create_target_group(ARN)
    elb.register_targets(ARN, [{"Id": "10.0.0.1", "Port": 80}, {"Id": "10.0.0.2", "Port": 80}])
    elb.set_health(ARN, "10.0.0.1:80", "healthy")
    now = [0.0]
    tm = TargetsManager(elb, ttl=300, clock=lambda: now[0])
    assert len(tm.list_targets(ARN)) == 2
    elb.call_log.clear()
    tm.list_targets(ARN)
    assert elb.call_log == [("DescribeTargetHealth", ARN, ["10.0.0.2:80"])]
    del elb.tgs[ARN]["10.0.0.2:80"]  # gone on the AWS side -> unused/Target.NotRegistered
    assert [t.key for t in tm.list_targets(ARN)] == ["10.0.0.1:80"]
    tm.register_targets(ARN, [TargetInfo("10.0.0.3", 80)])
    assert {t.key: t.health for t in tm.list_targets(ARN)}["10.0.0.3:80"]["State"] == "initial"
    now[0] = 301.0
    elb.call_log.clear()
    tm.list_targets(ARN)
    assert elb.call_log == [("DescribeTargetHealth", ARN, [])]  # TTL expired: full listing


def test_potential_ready_pod_keeps_polling_even_when_checkpoint_is_unchanged() -> None:
    """Without a pod watch (pre-v3.4) nothing else wakes the TGB when a gated pod turns
    ContainersReady (its EndpointSlice entry stays not-ready), so the pass that finds a
    potential-ready pod must requeue even though the registered set has not changed."""
    kube, elb, r = world(0, gates=True, release="v3.2.0")
    assert r.reconcile(KEY).reason == "reconciled"
    kube.put("pod", pod("slow", "10.0.9.9", containers_ready=False, gates=["web-tgb"]))
    kube.put("endpointslice", endpoint_slice(endpoints=[ep("10.0.9.9", "slow", ready=False)]))
    res = r.reconcile(KEY)
    assert res.requeue_after > 0 and res.reason == "monitor potential ready endpoints"
    assert elb.registered(ARN) == set()
    kube.put("pod", pod("slow", "10.0.9.9", containers_ready=True, ready=False, gates=["web-tgb"]))
    r.reconcile(KEY)
    assert elb.registered(ARN) == {"10.0.9.9:8080"}


def test_target_and_gate_writes_log_a_stable_action_field() -> None:
    """The testbed's report reads these lines by `action` (testbed/run/ctrllog.py), never by
    message text: register, deregister (diff and finalizer cleanup alike) and gate."""
    kube, elb, r = world(2, gates=True)
    buf = io.StringIO()
    clog.configure("info", buf)
    try:
        r.reconcile(KEY)
        set_pods(kube, ips(1), gates=True)
        r.reconcile(KEY)
        kube.delete("tgb", NS, "web-tgb")
        r.reconcile(KEY)
    finally:
        clog.configure("info", None)
    recs = [json.loads(line) for line in buf.getvalue().splitlines()]
    acts = [
        (x["action"], x["tgb"], x["namespace"], x.get("targets"), x.get("pod"), x.get("status"))
        for x in recs
        if "action" in x
    ]
    a, b = ips(2)
    tgb_id = f"{NS}/web-tgb"
    assert acts == [
        (
            "register",
            tgb_id,
            NS,
            [{"target": f"{a}:8080", "pod": f"p{a}"}, {"target": f"{b}:8080", "pod": f"p{b}"}],
            None,
            None,
        ),
        ("gate", tgb_id, NS, None, f"p{a}", "False"),
        ("gate", tgb_id, NS, None, f"p{b}", "False"),
        ("deregister", tgb_id, NS, [{"target": f"{b}:8080"}], None, None),
        # cleanup deregisters every target of the group, the draining one too
        ("deregister", tgb_id, NS, [{"target": f"{a}:8080"}, {"target": f"{b}:8080"}], None, None),
        ("gate", tgb_id, NS, None, f"p{a}", "True"),
        ("gate", tgb_id, NS, None, f"p{b}", "True"),
    ]
