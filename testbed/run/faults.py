"""Faults injected during a run's first rollout (scenario `faults:`, docs/faults.md).

Each fault waits for its trigger (an event of the rollout, seen by the run's pod watch, then
`delaySeconds`), runs its action, and keeps a record: what it did to what, when it started and
ended. Its window, [start, end + settleSeconds], is what the report shades on the timeline and
what `expect.faultErrors: allowed` excuses. Actions are a table of small functions over the
Kubernetes API (the controller only through its Deployment, the workload only through the API
server's pod proxy), one per `faults[].action`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import client

from testbed.cluster import network, shutdown
from testbed.poll import TimedOut, poll
from testbed.run.podwatch import PodRecorder
from testbed.scenario.model import Fault, Scenario
from testbed.scenario.plan import APP_PORT
from testbed.stack.fakeaws import API_PORT


class Run(Protocol):
    """What a fault needs of its run (testbed/run/steps.py Run)."""

    sc: Scenario
    ns: str
    stack: Any  # api (ApiClient), aws (FakeAws)
    recorder: PodRecorder | None
    cancel: threading.Event

    @property
    def controller(self) -> Any:  # the run's own ControllerDeployment
        ...

    def target_groups(self) -> list[str]:  # the run's target group ARNs
        ...

TGB = ("elbv2.k8s.aws", "v1beta1")
EVICTION_RETRY_SECONDS = 1.0  # kubectl drain retries a refused eviction every 5 s
GONE_TIMEOUT = 120.0  # a binding's finalizer waits for the controller's cleanup
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"
NODE_BACK_TIMEOUT = 60.0  # a node's kubelet reports Ready every 10 s (nodeStatusUpdateFrequency)


@dataclass
class FaultRecord:
    """One fault as it happened (times are epoch seconds, like every report input)."""

    index: int
    action: str
    settle: float
    target: str = ""
    started: float | None = None
    ended: float | None = None
    error: str = ""

    def window(self) -> tuple[float, float] | None:
        if self.started is None:
            return None
        return self.started, (self.ended or self.started) + self.settle

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "action": self.action, "target": self.target,
                "started": self.started, "ended": self.ended, "settle": self.settle,
                "error": self.error}


def trigger_time(event: str, pod_events: Sequence[dict[str, Any]], since: float) -> float | None:
    """When `event` happened in the rollout that started at `since` (None: not yet). A new pod
    is one created since then; an old pod is any other."""
    if event in ("beforeRollout", "rolloutStart"):
        return since
    created = {e["pod"]: e["ts"] for e in pod_events if e.get("kind") == "created"}
    new = {p for p, ts in created.items() if ts >= since}
    for e in sorted(pod_events, key=lambda e: e["ts"]):
        if e["ts"] < since:
            continue
        pod, kind = e.get("pod"), e.get("kind")
        if event == "firstNewPodCreated" and kind == "created" and pod in new:
            return float(e["ts"])
        if event == "firstNewPodReady" and kind == "ready" and pod in new:
            return float(e["ts"])
        if event == "firstOldPodTerminating" and kind == "terminating" and pod not in new:
            return float(e["ts"])
    return None


class Span:
    """What an action is told: say when the fault is in effect (`begun`: a `beforeRollout`
    fault holds the rollout until then; an action that never says, by returning), and hold it
    for its duration (`hold`: ends early when the rollout is over or the run is cancelled, so
    no fault outlives its run)."""

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel
        self.over = threading.Event()
        self.in_effect = threading.Event()

    def begun(self) -> None:
        self.in_effect.set()

    def hold(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not (self.over.is_set() or self.cancel.is_set()):
            left = end - time.monotonic()
            if left <= 0:
                return
            self.over.wait(min(left, 0.5))


# An action gets its run, its fault, the rollout's start and its Span.
Action = Callable[[Run, Fault, float, Span], str]


def _bindings(r: Run) -> list[dict[str, Any]]:
    custom = client.CustomObjectsApi(r.stack.api)
    out = custom.list_namespaced_custom_object(*TGB, r.ns, "targetgroupbindings")
    return list(out.get("items") or [])


def _delete_binding(r: Run, name: str) -> None:
    custom = client.CustomObjectsApi(r.stack.api)
    custom.delete_namespaced_custom_object(*TGB, r.ns, "targetgroupbindings", name)

    def gone() -> bool:
        try:
            custom.get_namespaced_custom_object(*TGB, r.ns, "targetgroupbindings", name)
        except client.ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False

    poll(gone, GONE_TIMEOUT)


def binding_delete(r: Run, fault: Fault, since: float, span: Span) -> str:
    names = [b["metadata"]["name"] for b in _bindings(r)]
    for name in names:
        _delete_binding(r, name)
    return ", ".join(names)


def binding_replace(r: Run, fault: Fault, since: float, span: Span) -> str:
    """Delete each binding and, once the controller has let it go, create `<name>-b` with the
    same spec: what a tool that recreates the binding (or an Ingress change) does."""
    custom = client.CustomObjectsApi(r.stack.api)
    done = []
    for old in _bindings(r):
        name = old["metadata"]["name"]
        _delete_binding(r, name)
        custom.create_namespaced_custom_object(*TGB, r.ns, "targetgroupbindings", {
            "apiVersion": "/".join(TGB), "kind": "TargetGroupBinding",
            "metadata": {"name": f"{name}-b", "namespace": r.ns,
                         "labels": old["metadata"].get("labels") or {}},
            "spec": old["spec"]})
        done.append(f"{name} -> {name}-b")
    return ", ".join(done)


def controller_restart(r: Run, fault: Fault, since: float, span: Span) -> str:
    return "controller pod " + r.controller.restart()


def controller_stop(r: Run, fault: Fault, since: float, span: Span) -> str:
    r.controller.scale(0)
    span.begun()
    span.hold(fault.seconds)
    r.controller.scale(1)
    return f"controller stopped {fault.seconds:g}s"


def controller_partition(r: Run, fault: Fault, since: float, span: Span) -> str:
    """The run's controller cut off from the fake AWS API for `seconds`: its node drops what
    the controller pod sends there, so its ELBv2 calls hang until its timeouts (a partition,
    not an answer: compare awsUnavailable). The controller is the run's own."""
    pod, ip, node = r.controller.pod()
    aws = r.stack.aws
    network.cut(node, ip, aws.container.ip, API_PORT, True)
    try:
        span.begun()
        span.hold(fault.seconds)
    finally:
        network.cut(node, ip, aws.container.ip, API_PORT, False)
    return f"controller pod {pod} ({ip}) cut from the fake AWS for {fault.seconds:g}s"


def webhook_down(r: Run, fault: Fault, since: float, span: Span) -> str:
    """The run's webhooks unreachable for a while: the API server's calls fail and each
    webhook's failurePolicy decides (the pod mutator: Ignore since ALBC v2.12.0, Fail before;
    the binding webhooks: Fail)."""
    r.controller.webhook_down(True)
    try:
        r.controller.wait_webhook(reachable=False)
        span.begun()
        span.hold(fault.seconds)
    finally:
        r.controller.webhook_down(False)
        r.controller.wait_webhook()
    return f"webhooks unreachable for {fault.seconds:g}s"


def _api_fault(error: str) -> Action:
    def act(r: Run, fault: Fault, since: float, span: Span) -> str:
        # Scoped to the run's target groups: runs beside it keep a working API.
        groups = r.target_groups()
        r.stack.aws.api_fault({"error": error, "share": fault.share, "seconds": fault.seconds},
                              target_group_arn=groups)
        span.begun()
        span.hold(fault.seconds)
        state = r.stack.aws.api_fault(None, target_group_arn=groups)
        return (f"{state.get('refused', 0)} of {state.get('seen', 0)} controller calls "
                f"answered {error}")
    return act


def aws_restart(r: Run, fault: Fault, since: float, span: Span) -> str:
    """The fake AWS's engine replaced by a new process started from its state (AWS does not
    lose targets, health or draining timers; docs/fakeaws.md "Restart with state kept")."""
    out = r.stack.aws.restart()
    return (f"fake AWS engine pid {out.get('old_pid')} -> {out.get('new_pid')} "
            f"in {out.get('handover_ms', '?')} ms")


def _new_pods(r: Run, since: float) -> list[str]:
    assert r.recorder is not None
    created = [(e["ts"], e["pod"]) for e in r.recorder.events
               if e.get("kind") == "created" and e["ts"] >= since]
    return [p for _, p in sorted(created)]


def _admin_ready(r: Run, pod: str, value: str) -> None:
    client.CoreV1Api(r.stack.api).connect_post_namespaced_pod_proxy_with_path(
        f"{pod}:{APP_PORT}", r.ns, f"admin/ready/{value}")


def unready(r: Run, fault: Fault, since: float, span: Span) -> str:
    """The demo app's /admin/ready, through the API server's pod proxy."""
    pods = _new_pods(r, since)
    pods = pods[:1] if fault.pods == "one" else pods
    for p in pods:
        _admin_ready(r, p, "false")
    span.begun()
    span.hold(fault.seconds)
    for p in pods:
        _admin_ready(r, p, "auto")
    return ", ".join(pods) or "no new pod yet"


def _container(r: Run, pod: str) -> Any:
    """The pod's app container status (None before it has one)."""
    p = client.CoreV1Api(r.stack.api).read_namespaced_pod(pod, r.ns)
    statuses = p.status.container_statuses or []
    return next((c for c in statuses if c.name == "app"), statuses[0] if statuses else None)


def _container_fault(admin_path: str, how: str) -> Action:
    """An action that makes the app's container restart (through `admin_path` of the demo
    app) and lasts until every hit pod runs a container started since and Ready."""
    def act(r: Run, fault: Fault, since: float, span: Span) -> str:
        pods = _new_pods(r, since)
        pods = pods[:1] if fault.pods == "one" else pods
        before = {p: c.restart_count if (c := _container(r, p)) else 0 for p in pods}
        core = client.CoreV1Api(r.stack.api)
        # startedAt has whole seconds; the container that was running started long before
        at = int(time.time())
        for p in pods:
            core.connect_post_namespaced_pod_proxy_with_path(f"{p}:{APP_PORT}", r.ns,
                                                             admin_path)
        span.begun()

        def back(p: str) -> bool:
            # The restart count goes up before the status says the old container is not
            # ready: wait for the new container itself.
            c = _container(r, p)
            running = c.state.running if c is not None and c.state else None
            return bool(c is not None and c.restart_count > before[p] and c.ready
                        and running is not None and running.started_at is not None
                        and running.started_at.timestamp() >= at)
        # Not cut short when the rollout ends (span.over): a restart under way goes on
        # regardless, and its errors last until the new container serves.
        poll(lambda: r.cancel.is_set() or all(map(back, pods)), r.sc.rollout.timeout_seconds,
             0.5)
        return ", ".join(f"{p} ({how})" for p in pods) or "no new pod yet"
    return act


def node_drain(r: Run, fault: Fault, since: float, span: Span) -> str:
    """`kubectl drain` of the worker node holding most of the run's pods, for the run's pods
    only (runs beside it keep theirs): cordon, evict through the Eviction API (a
    PodDisruptionBudget answers 429 and the eviction is tried again, as kubectl does), wait
    until the evicted pods are gone, uncordon (so the node serves the runs that follow). With
    `after: beforeRollout` the rollout starts once the drain is done."""
    core = client.CoreV1Api(r.stack.api)
    pods = [p for p in core.list_namespaced_pod(r.ns).items
            if p.spec.node_name and not p.metadata.deletion_timestamp]
    if not pods:
        return "no pod to drain"
    node = Counter(p.spec.node_name for p in pods).most_common(1)[0][0]
    victims = sorted(p.metadata.name for p in pods if p.spec.node_name == node)
    core.patch_node(node, {"spec": {"unschedulable": True}})
    refused = 0
    try:
        pending = list(victims)
        deadline = time.monotonic() + r.sc.rollout.timeout_seconds
        while pending and time.monotonic() < deadline and not r.cancel.is_set():
            for name in list(pending):
                try:
                    core.create_namespaced_pod_eviction(name, r.ns, client.V1Eviction(
                        metadata=client.V1ObjectMeta(name=name, namespace=r.ns)))
                except client.ApiException as exc:
                    if exc.status == 429:  # the disruption budget holds it back
                        refused += 1
                        continue
                    if exc.status != 404:  # 404: gone already
                        raise
                pending.remove(name)
            if pending:
                r.cancel.wait(EVICTION_RETRY_SECONDS)
        left = set(victims)

        def gone() -> bool:
            present = {p.metadata.name for p in core.list_namespaced_pod(r.ns).items}
            return not (left & present) or r.cancel.is_set()
        poll(gone, r.sc.rollout.timeout_seconds, 0.5)
        if pending:
            raise RuntimeError(f"{len(pending)} pods never evicted: {', '.join(pending)}")
    finally:
        core.patch_node(node, {"spec": {"unschedulable": False}})
        span.begun()
    return (f"node {node} drained of {len(victims)} pods ({refused} evictions refused by the "
            "disruption budget)")


def _workers(r: Run) -> list[Any]:
    return list(client.CoreV1Api(r.stack.api).list_node(label_selector=f"!{CONTROL_PLANE}").items)


def _run_pods_by_node(r: Run, exclude: str = "") -> Counter[str]:
    """How many of the run's live pods each worker node holds (`exclude` left out)."""
    workers = {n.metadata.name for n in _workers(r)}
    pods = client.CoreV1Api(r.stack.api).list_namespaced_pod(r.ns).items
    return Counter(p.spec.node_name for p in pods
                   if p.spec.node_name in workers and p.spec.node_name != exclude
                   and not p.metadata.deletion_timestamp and p.status.phase == "Running")


def _node_ready(r: Run, node: str) -> bool:
    n = client.CoreV1Api(r.stack.api).read_node(node)
    return any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])


def prepare_node_shutdown(r: Run, fault: Fault) -> str:
    """Every worker's kubelet set to shut down gracefully, before the run's pods exist: the
    kubelet restarts only when its settings change (shutdown.enable)."""
    changed = [n.metadata.name for n in _workers(r)
               if shutdown.enable(n.metadata.name, fault.seconds)]
    poll(lambda: all(_node_ready(r, node) for node in changed), NODE_BACK_TIMEOUT, 0.5)
    return ", ".join(changed)


def node_shutdown(r: Run, fault: Fault, since: float, span: Span) -> str:
    """A graceful shutdown of the worker node holding most of the run's pods but not its
    controller, by the node's kubelet (upstream #2702): the node turns NotReady, its pods get
    their preStop hook and SIGTERM but no deletion timestamp, and end Failed (Succeeded when
    they exit 0); their Deployment replaces them. Once the kubelet is done the node comes back
    with a new kubelet, as after a reboot (a real one would power off first). With `after:
    beforeRollout` the rollout starts once the node is back."""
    _pod, _ip, controller_node = r.controller.pod()
    counts = _run_pods_by_node(r, exclude=controller_node)
    if not counts:
        raise RuntimeError(f"no worker node holds the run's pods but not its controller (on "
                           f"{controller_node}): set cluster.workers: 2 and app.placement: "
                           "spread")
    node = counts.most_common(1)[0][0]
    core = client.CoreV1Api(r.stack.api)
    victims = {p.metadata.name for p in core.list_namespaced_pod(r.ns).items
               if p.spec.node_name == node and p.status.phase in ("Pending", "Running")}
    shutdown.signal(node)
    try:
        took = shutdown.wait_released(
            node, fault.seconds + shutdown.CRITICAL_PODS_SECONDS + NODE_BACK_TIMEOUT)
    finally:
        shutdown.come_back(node)
        poll(lambda: _node_ready(r, node) or r.cancel.is_set(), NODE_BACK_TIMEOUT, 0.5)
        span.begun()
    # Failed, or Succeeded when the app exits 0 on SIGTERM (the phase is recomputed once the
    # containers have stopped), and never deleted: the pods stay until their ReplicaSet goes
    phases = Counter(p.status.phase for p in core.list_namespaced_pod(r.ns).items
                     if p.metadata.name in victims and not p.metadata.deletion_timestamp
                     and p.status.phase in ("Failed", "Succeeded"))
    return (f"node {node} shut down by its kubelet in {took:.0f}s: {len(victims)} of the run's "
            f"pods terminated, {sum(phases.values())} ended with no deletion timestamp ("
            + ", ".join(f"{n} {phase}" for phase, n in sorted(phases.items()))
            + "); node back with a new kubelet")


def node_network_cut(r: Run, fault: Fault, since: float, span: Span) -> str:
    """The worker node holding most of the run's pods cut off from the fake ALB (health checks
    and requests) for `seconds`: its node drops what the fake AWS sends to the run's pods on
    it, those there at the start and those that land there meanwhile; runs beside it keep
    theirs. Connections hang, as across a partition; nothing in Kubernetes notices."""
    counts = _run_pods_by_node(r)
    if not counts:
        return "no pod to cut off"
    node = counts.most_common(1)[0][0]
    alb = r.stack.aws.container.ip
    core = client.CoreV1Api(r.stack.api)
    cut: set[str] = set()
    end = time.monotonic() + fault.seconds
    try:
        while not (span.over.is_set() or r.cancel.is_set()) and time.monotonic() < end:
            for p in core.list_namespaced_pod(r.ns, field_selector=f"spec.nodeName={node}").items:
                ip = p.status.pod_ip
                if ip and ip not in cut:
                    network.cut(node, alb, ip, None, True)
                    cut.add(ip)
            span.begun()
            span.over.wait(min(0.5, max(0.0, end - time.monotonic())))
    finally:
        for ip in cut:
            network.cut(node, alb, ip, None, False)
    return (f"node {node}: the fake ALB's traffic to the run's {len(cut)} pods there "
            f"dropped for {fault.seconds:g}s")


ACTIONS: dict[str, Action] = {
    "controllerRestart": controller_restart,
    "controllerStop": controller_stop,
    "controllerPartition": controller_partition,
    "bindingDelete": binding_delete,
    "bindingReplace": binding_replace,
    "unready": unready,
    "containerRestart": _container_fault("admin/live/false", "liveness probe failed"),
    "containerKill": _container_fault("admin/crash", "process killed"),
    "nodeDrain": node_drain,
    "nodeShutdown": node_shutdown,
    "nodeNetworkCut": node_network_cut,
    "webhookDown": webhook_down,
    "awsThrottle": _api_fault("throttling"),
    "awsUnavailable": _api_fault("unavailable"),
    "awsRestart": aws_restart,
}


# What an action needs done before the run's pods exist; returns what it changed.
PREPARE: dict[str, Callable[[Run, Fault], str]] = {
    "nodeShutdown": prepare_node_shutdown,
}


def prepare_faults(r: Run) -> list[str]:
    """Each fault's preparation, for the run's log."""
    return [f"{f.action}: {done}" for f in r.sc.faults
            if f.action in PREPARE and (done := PREPARE[f.action](r, f))]


class Faults:
    """The run's faults, each in its own thread from the rollout's start."""

    def __init__(self, r: Run) -> None:
        self.r = r
        self.records = [FaultRecord(i, f.action, f.settle_seconds)
                        for i, f in enumerate(r.sc.faults)]
        self._threads: list[threading.Thread] = []
        self._spans = [Span(r.cancel) for _ in self.records]

    def start(self, since: float, timeout: float = 120.0) -> None:
        """Start every fault's thread; return once each `beforeRollout` fault is in effect
        (or has ended, or `timeout` passed)."""
        for rec, fault in zip(self.records, self.r.sc.faults, strict=True):
            t = threading.Thread(target=self._run, args=(rec, fault, since),
                                 name=f"fault-{rec.index}", daemon=True)
            t.start()
            self._threads.append(t)
        for fault, span in zip(self.r.sc.faults, self._spans, strict=True):
            if fault.after == "beforeRollout":
                span.in_effect.wait(timeout)

    def _run(self, rec: FaultRecord, fault: Fault, since: float) -> None:
        r = self.r
        try:
            events = r.recorder.events if r.recorder is not None else []
            at = poll(lambda: trigger_time(fault.after, events, since),
                      r.sc.rollout.timeout_seconds, 0.2) or since
            if r.cancel.wait(max(0.0, at + fault.delay_seconds - time.time())):
                return
            rec.started = time.time()
            rec.target = ACTIONS[fault.action](r, fault, since, self._spans[rec.index])
        except TimedOut as exc:
            rec.error = (f"{fault.after} did not happen" if rec.started is None
                         else f"{fault.action} {exc}{exc.detail()}")
        except Exception as exc:  # the fault failed: the report says so, the run goes on
            rec.error = f"{type(exc).__name__}: {exc}"
        finally:
            if rec.started is not None:
                rec.ended = time.time()
            self._spans[rec.index].begun()

    def stop(self, timeout: float = 60.0) -> list[FaultRecord]:
        """End every fault still held (the rollout is over) and wait for them to undo."""
        for span in self._spans:
            span.over.set()
        end = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))
        return self.records
