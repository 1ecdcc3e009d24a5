"""Event -> key mapping (incl. --no-pod-watch), work queue semantics, worker requeue/backoff."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from ctrl_helpers import ARN, NS, cfg, endpoint_slice, ep, namespace, node, pod, service, tgb
from typer.testing import CliRunner

from controller.aws import AWSError, TargetsManager
from controller.config import Config
from controller.manager import Manager
from controller.queue import ExponentialBackoff, WorkQueue
from controller.reconcile import Reconciler, Result
from controller.testing import FakeELBv2, FakeKube
from tests.waiting import wait_until

KEY = (NS, "web-tgb")


def setup(config: Config | None = None, **kw: Any) -> tuple[FakeKube, FakeELBv2, Manager]:
    kube, elb = FakeKube(notify_on_write=False), FakeELBv2()
    elb.create_target_group(ARN)
    for kind, obj in [
        ("namespace", namespace()),
        ("node", node()),
        ("service", service()),
        ("pod", pod("g", "10.0.0.1", ready=False, containers_ready=False, gates=["web-tgb"])),
        ("endpointslice", endpoint_slice(endpoints=[ep("10.0.0.1", "g", ready=False)])),
        ("tgb", tgb()),
    ]:
        kube.put(kind, obj, notify=False)
    c = config or cfg(**kw)
    mgr = Manager(kube, Reconciler(kube, TargetsManager(elb, ttl=0), c), c)
    kube.add_handler(mgr.handle)
    return kube, elb, mgr


def drain(mgr: Manager) -> list[Any]:
    keys = []
    while len(mgr.queue):
        keys.append(mgr.process_one(timeout=0))
    return keys


def test_tgb_service_and_slice_events_map_to_the_tgb() -> None:
    kube, _, mgr = setup()
    t = tgb()
    t["metadata"]["generation"] = 2  # spec change
    kube.put("tgb", t)
    assert drain(mgr) == [KEY]
    # ALBC's Service handler enqueues instance bindings only (eventhandlers/service.go)
    kube.put("service", service(ports=[("http", 80, 8081)]))
    assert len(mgr.queue) == 0
    kube.put("endpointslice", endpoint_slice(endpoints=[ep("10.0.0.1", "g", ready=True)]))
    assert mgr.queue.get(0) == KEY
    mgr.queue.done(KEY)


def test_slice_update_without_endpoint_or_port_change_is_ignored() -> None:
    kube, _, mgr = setup()
    s = endpoint_slice(endpoints=[ep("10.0.0.1", "g", ready=False)])
    s["metadata"]["annotations"] = {"x": "y"}
    kube.put("endpointslice", s)
    assert len(mgr.queue) == 0


def test_every_tgb_update_enqueues_it_status_and_annotations_too() -> None:
    # For(&TargetGroupBinding{}) with no predicate, in every release: the deferred reconcile's
    # checkpoint reset relies on it
    kube, _, mgr = setup()
    t = tgb()
    t["status"] = {"observedGeneration": 1}
    kube.put("tgb", t)
    assert drain(mgr) == [KEY]
    t["metadata"]["annotations"] = {"elbv2.k8s.aws/checkpoint": ""}
    kube.put("tgb", t)
    assert drain(mgr) == [KEY]


def test_service_port_change_enqueues_instance_bindings_only() -> None:
    kube, _, mgr = setup()
    kube.put("tgb", tgb("inst", target_type="instance", arn=ARN + "i"), notify=False)
    kube.put("service", service(ports=[("http", 80, 8081)]))
    assert mgr.queue.get(0) == (NS, "inst") and len(mgr.queue) == 0


def test_pod_watch_compares_what_albc_podinfo_holds_conditions_included() -> None:
    kube, _, mgr = setup()
    p = pod("g", "10.0.0.1", ready=False, containers_ready=False, gates=["web-tgb"])
    p["status"]["conditions"].append({"type": "target-health.elbv2.k8s.aws/web-tgb",
                                      "status": "False", "reason": "Elb.RegistrationInProgress"})
    kube.put("pod", p)  # our own gate write is a condition change: upstream enqueues it
    assert drain(mgr) == [KEY]
    p["metadata"]["labels"] = {"app": "web", "extra": "x"}
    p["status"]["phase"] = "Running"
    kube.put("pod", p)  # labels and phase are not in PodInfo
    assert len(mgr.queue) == 0


def test_gated_pod_containers_ready_change_triggers_reconcile() -> None:
    kube, _, mgr = setup()
    kube.put("pod", pod("g", "10.0.0.1", ready=False, containers_ready=True, gates=["web-tgb"]))
    assert mgr.queue.get(0) == KEY


def test_switch_no_pod_watch_pod_changes_trigger_nothing() -> None:
    kube, _, mgr = setup(pod_watch=False)
    kube.put("pod", pod("g", "10.0.0.1", ready=False, containers_ready=True, gates=["web-tgb"]))
    assert len(mgr.queue) == 0


def test_ungated_pod_ignored() -> None:
    kube, _, mgr = setup()
    kube.put("pod", pod("plain", "10.0.0.9"))
    assert len(mgr.queue) == 0


def test_switch_legacy_endpoints_events_and_resolution() -> None:
    from ctrl_helpers import legacy_endpoints

    kube, elb, mgr = setup(endpoint_slices=False)
    kube.put("pod", pod("a", "10.0.0.5"), notify=False)
    kube.put("endpoints", legacy_endpoints(ready=[("10.0.0.5", "a")]))
    assert mgr.process_one(0) == KEY
    assert elb.registered(ARN) == {"10.0.0.5:8080"}


def test_tgb_delete_requeues_bindings_refused_for_same_arn() -> None:
    kube, _, mgr = setup()
    kube.put("tgb", tgb("copy", created="2026-11-25T11:00:00Z"), notify=False)
    kube.delete("tgb", NS, "web-tgb")  # no finalizer yet -> gone at once
    assert mgr.queue.get(0) == (NS, "copy")


def test_pending_gate_requeues_after_fixed_period() -> None:
    kube, elb, mgr = setup(requeue_seconds=15.0)
    kube.put("pod", pod("g", "10.0.0.1", ready=False, containers_ready=True, gates=["web-tgb"]))
    mgr.process_one(0)
    ((due, key),) = mgr.queue.pending_delayed()
    assert key == KEY and 14.0 < due - time.monotonic() <= 15.0


def test_switch_backoff_requeue_doubles_from_5ms() -> None:
    kube, elb, mgr = setup(backoff_requeue=True)
    kube.put(
        "pod",
        pod("g", "10.0.0.1", ready=False, containers_ready=True, gates=["web-tgb"]),
        notify=False,
    )
    mgr.queue.add(KEY)
    mgr.process_one(0)  # registers: fixed period
    assert mgr.last_results[KEY].requeue_after == 15.0
    elb.set_health(ARN, "10.0.0.1:8080", "unhealthy", "Target.Timeout", "Request timed out")
    delays = []
    for _ in range(4):
        mgr.queue.add(KEY)
        mgr.process_one(0)
        delays.append(mgr.queue.backoff.base * 2 ** (mgr.queue.num_requeues(KEY) - 1))
    assert delays == [0.005, 0.01, 0.02, 0.04]
    b = ExponentialBackoff(0.005, 1000.0)
    assert max(b.when("k") for _ in range(30)) == 1000.0


def test_aws_error_goes_to_backoff_and_success_forgets() -> None:
    kube, elb, mgr = setup()
    kube.put("pod", pod("g", "10.0.0.1", ready=True, gates=["web-tgb"]), notify=False)
    kube.put("endpointslice", endpoint_slice(endpoints=[ep("10.0.0.1", "g")]), notify=False)
    elb.fail["DescribeTargetHealth"] = [AWSError("DescribeTargetHealth", "Throttling", "slow down")]
    mgr.queue.add(KEY)
    mgr.process_one(0)
    assert mgr.queue.num_requeues(KEY) == 1
    assert mgr.process_one(1.0) == KEY  # the 5 ms backoff matured and the retry ran
    assert mgr.last_results[KEY] == Result(requeue_after=15.0, reason="monitor targetHealth")
    assert mgr.queue.num_requeues(KEY) == 0


def test_backoff_caps_at_max_exponential_backoff_delay_flag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--targetgroupbinding-max-exponential-backoff-delay (ALBC v2.2.1+) caps the per-key
    backoff after reconcile errors: 5 ms doubling, then the flag's value, as a Go duration."""
    import controller.main as m

    seen: list[Config] = []
    monkeypatch.setattr(m, "run_controller", seen.append)
    r = CliRunner().invoke(
        m.app,
        [
            "run",
            "--aws-endpoint-url",
            "http://f:1",
            "--targetgroupbinding-max-exponential-backoff-delay",
            "40ms",
        ],
    )
    assert r.exit_code == 0, r.output
    assert seen[0].backoff_max_seconds == 0.04
    kube, elb, mgr = setup(seen[0])
    elb.fail["DescribeTargetHealth"] = [
        AWSError("DescribeTargetHealth", "Throttling", "slow down") for _ in range(6)
    ]
    delays: list[float] = []
    add_after = mgr.queue.add_after

    def record(key: Any, delay: float) -> None:
        delays.append(delay)
        add_after(key, delay)

    monkeypatch.setattr(mgr.queue, "add_after", record)
    mgr.queue.add(KEY)
    for _ in range(6):
        assert mgr.process_one(1.0) == KEY
    assert delays == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.04, 0.04])


def test_queue_dedups_and_serialises_per_key() -> None:
    q = WorkQueue()
    q.add("a")
    q.add("a")
    q.add("b")
    assert len(q) == 2
    k = q.get(0)
    assert k == "a"
    q.add("a")  # re-added while processing: not handed out until done()
    assert q.get(0) == "b"
    assert q.get(0) is None
    q.done("a")
    assert q.get(0) == "a"


def test_queue_never_runs_one_key_concurrently() -> None:
    """A key added again while a worker holds it is not handed to a second worker until the
    first calls done(); then it comes back once (controller-runtime's dirty/processing sets)."""
    q = WorkQueue()
    q.add("k")
    got, release = threading.Event(), threading.Event()
    first: list[object] = []

    def holder() -> None:
        first.append(q.get(1.0))
        got.set()
        release.wait(5)
        q.done("k")

    t = threading.Thread(target=holder)
    t.start()
    assert got.wait(5) and first == ["k"]
    q.add("k")  # an event for the key while it is being reconciled
    second: list[object] = []
    other = threading.Thread(target=lambda: second.append(q.get(0.2)))
    other.start()
    other.join()
    assert second == [None], "a second worker got the key while the first still held it"
    release.set()
    t.join()
    assert q.get(1.0) == "k"  # the re-add is kept and delivered after done()
    q.done("k")
    assert q.get(0) is None


def test_add_after_delivers_later() -> None:
    q = WorkQueue()
    q.add_after("x", 0.05)
    assert q.get(0) is None
    assert q.get(1.0) == "x"


def test_add_after_keeps_one_waiting_entry_per_key_the_earliest() -> None:
    """client-go's delaying queue (and controller-runtime's priority queue, ALBC v3.2.0+):
    four requeues of one key make one wait, not four timers that each re-run it."""
    now = [100.0]
    q = WorkQueue(clock=lambda: now[0])
    q.add_after("k", 15)
    q.add_after("k", 20)  # later: the 15 s entry stays
    q.add_after("j", 5)
    assert q.pending_delayed() == [(105.0, "j"), (115.0, "k")]
    q.add_after("k", 2)  # earlier: it wins
    assert q.pending_delayed() == [(102.0, "k"), (105.0, "j")]
    now[0] = 116.0
    assert q.get(0) == "k"
    assert q.get(0) == "j"
    q.done("k")
    q.done("j")
    assert q.get(0) is None  # the superseded 115 s entry does not run "k" again
    assert q.pending_delayed() == []


def test_workers_converge_a_gated_pod_end_to_end() -> None:
    """Threads, events and the fixed requeue together: registration, then the gate goes True
    once the fake ELB reports healthy, all without a manual kick."""
    kube, elb, mgr = setup(requeue_seconds=0.05)
    kube.notify_on_write = True
    mgr.start()
    try:
        kube.put("pod", pod("g", "10.0.0.1", ready=False, containers_ready=True, gates=["web-tgb"]))
        wait_until(lambda: elb.registered(ARN) == {"10.0.0.1:8080"}, 5, "target registered")
        elb.all_healthy(ARN)

        def gate() -> str | None:
            for c in kube.get("pod", NS, "g")["status"]["conditions"]:  # type: ignore[index]
                if c["type"] == "target-health.elbv2.k8s.aws/web-tgb":
                    return str(c["status"])
            return None

        wait_until(lambda: gate() == "True", 5, "gate True")
        assert gate() == "True"
        assert mgr.alive()
    finally:
        mgr.stop()
    assert not mgr.alive()
