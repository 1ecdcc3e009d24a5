"""Controller benchmark: convergence time for 1,000 pods over 50 TargetGroupBindings.

Uses the in-memory fakes of the Kubernetes and ELBv2 APIs (controller/testing.py), not a real
cluster or the fake-AWS server: it measures the controller's own cost (resolution, diff, gate
writes, queue) and how the worker pool and requeue period shape convergence. Real runs add
API latency (moto 5.2.5, which serves the fake AWS's ELBv2 API, spent ~11 ms CPU per
DescribeTargetHealth of 10 targets on the project machine; bench/fakeaws_bench.py measures it).

Phases (3 workers, as ALBC's MaxConcurrentReconciles):
  1. cold start: all 1,000 gated pods registered (targets in initial state);
  2. gates: the fake ELB reports all targets healthy; time until every gate condition is True
     (bounded by the requeue period, set short here: --requeue);
  3. rollout: half of every TGB's pods replaced by new IPs; time until the target groups hold
     exactly the new set and the new pods' gates are True.
Process CPU during phases 1-3 includes the benchmark's own polling (so ms/pass there is an
upper bound). Then the CPU per reconcile pass, single-threaded: a full pass (checkpoint cleared, 20
endpoints, DescribeTargetHealth diff) and an early-return pass (checkpoint unchanged).

Run: python -m bench.controller_bench [--pods 1000] [--tgbs 50] [--requeue 0.2]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from controller import log as clog
from controller.aws import TargetsManager
from controller.config import Config
from controller.manager import Manager
from controller.reconcile import CHECKPOINT_ANNOTATION, Reconciler
from controller.testing import FakeELBv2, FakeKube

NS = "bench"
GATE_PREFIX = "target-health.elbv2.k8s.aws/"


def _pod(name: str, ip: str, tgb: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "labels": {"app": app},
            "creationTimestamp": "2026-11-25T10:00:00Z",
        },
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": "app", "image": "x"}],
            "readinessGates": [{"conditionType": GATE_PREFIX + tgb}],
        },
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [
                {"type": "ContainersReady", "status": "True"},
                {"type": "Ready", "status": "False"},
            ],
        },
    }


def _slice(svc: str, pods: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "addressType": "IPv4",
        "metadata": {
            "name": f"{svc}-x",
            "namespace": NS,
            "labels": {"kubernetes.io/service-name": svc},
        },
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [
            {
                "addresses": [ip],
                "conditions": {"ready": False, "serving": False, "terminating": False},
                "targetRef": {"kind": "Pod", "name": n, "namespace": NS},
                "nodeName": "node-1",
            }
            for n, ip in pods
        ],
    }


def _wait(pred: Any, timeout: float) -> float:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError("did not converge")
        time.sleep(0.005)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--tgbs", type=int, default=50)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--requeue", type=float, default=0.2, help="gate poll period (ALBC: 15 s)")
    args = ap.parse_args()
    clog.configure("error")
    per = args.pods // args.tgbs
    kube, elb = FakeKube(), FakeELBv2()
    cfg = Config(
        aws_endpoint_url="http://bench", requeue_seconds=args.requeue, workers=args.workers
    )
    mgr = Manager(kube, Reconciler(kube, TargetsManager(elb, ttl=300), cfg), cfg)
    kube.put("namespace", {"metadata": {"name": NS}}, notify=False)
    kube.put(
        "node",
        {
            "metadata": {"name": "node-1"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        },
        notify=False,
    )
    arns, want = [], {}
    gen = [0]

    def make_pods(i: int, k: int) -> list[tuple[str, str]]:
        out = []
        for _ in range(k):
            gen[0] += 1
            n = gen[0]
            out.append((f"p{n}", f"10.{n // 65000}.{(n // 250) % 260}.{n % 250 + 1}"))
        return out

    pods_by_tgb: dict[int, list[tuple[str, str]]] = {}
    for i in range(args.tgbs):
        arn = f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg{i}/{i:016x}"
        elb.create_target_group(arn)
        arns.append(arn)
        kube.put(
            "service",
            {
                "metadata": {"name": f"svc{i}", "namespace": NS},
                "spec": {
                    "selector": {"app": f"a{i}"},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                },
            },
            notify=False,
        )
        pods_by_tgb[i] = make_pods(i, per)
        for n, ip in pods_by_tgb[i]:
            kube.put("pod", _pod(n, ip, f"tgb{i}", f"a{i}"), notify=False)
        kube.put("endpointslice", _slice(f"svc{i}", pods_by_tgb[i]), notify=False)
        kube.put(
            "tgb",
            {
                "metadata": {"name": f"tgb{i}", "namespace": NS, "generation": 1},
                "spec": {
                    "targetGroupARN": arn,
                    "targetType": "ip",
                    "serviceRef": {"name": f"svc{i}", "port": 80},
                },
            },
            notify=False,
        )
        want[arn] = {f"{ip}:8080" for _, ip in pods_by_tgb[i]}
    kube.add_handler(mgr.handle)

    def registered() -> bool:
        return all(elb.registered(a) == want[a] for a in arns)

    def gates_true(names: set[str] | None = None) -> bool:
        for p in kube.list("pod", NS):
            if names is not None and p["metadata"]["name"] not in names:
                continue
            gate = p["spec"]["readinessGates"][0]["conditionType"]
            if not any(
                c["type"] == gate and c["status"] == "True" for c in p["status"]["conditions"]
            ):
                return False
        return True

    from controller import metrics

    def passes() -> float:
        return sum(
            s.value
            for m in metrics.RECONCILE_TOTAL.collect()
            for s in m.samples
            if s.name.endswith("_total")
        )

    cpu0, n0 = time.process_time(), passes()
    t0 = time.monotonic()
    mgr.enqueue_all()
    mgr.start()
    _wait(registered, 120)
    t_reg = time.monotonic() - t0
    elb_calls_reg = dict(elb.calls)
    for a in arns:
        elb.all_healthy(a)
    t_gate = _wait(gates_true, 120)
    total_cold = time.monotonic() - t0
    cpu_cold, n_cold = time.process_time() - cpu0, passes() - n0

    # rollout: replace half of each TGB's pods
    cpu0, n0 = time.process_time(), passes()
    t1 = time.monotonic()
    new_names: set[str] = set()
    for i in range(args.tgbs):
        keep = pods_by_tgb[i][per // 2 :]
        gone = pods_by_tgb[i][: per // 2]
        fresh = make_pods(i, per // 2)
        for n, ip in fresh:
            kube.put("pod", _pod(n, ip, f"tgb{i}", f"a{i}"))
            new_names.add(n)
        pods_by_tgb[i] = keep + fresh
        kube.put("endpointslice", _slice(f"svc{i}", pods_by_tgb[i]))
        for n, _ in gone:
            kube.delete("pod", NS, n)
        want[arns[i]] = {f"{ip}:8080" for _, ip in pods_by_tgb[i]}
    _wait(registered, 120)
    t_roll_reg = time.monotonic() - t1  # from the first pod change
    for a in arns:
        elb.all_healthy(a)
    t_roll = _wait(lambda: gates_true(new_names), 120)
    cpu_roll, n_roll = time.process_time() - cpu0, passes() - n0
    mgr.stop()

    # single-threaded CPU per reconcile pass
    r = mgr.reconciler
    full_cpu = []
    for i in range(args.tgbs):
        t = kube.get("tgb", NS, f"tgb{i}")
        assert t is not None
        t["metadata"].setdefault("annotations", {})[CHECKPOINT_ANNOTATION] = ""
        c = time.process_time()
        r.reconcile((NS, f"tgb{i}"))
        full_cpu.append(time.process_time() - c)
    c = time.process_time()
    for i in range(args.tgbs):
        r.reconcile((NS, f"tgb{i}"))
    early_cpu = (time.process_time() - c) / args.tgbs

    print(
        f"controller benchmark: {args.pods} pods, {args.tgbs} TGBs ({per} pods each), "
        f"{args.workers} workers, gate poll {args.requeue}s, in-memory fake Kubernetes + ELBv2"
    )
    print(f"  cold start: all targets registered        {t_reg * 1000:8.1f} ms")
    print(
        f"  cold start: all gates True after healthy   {t_gate * 1000:8.1f} ms "
        f"(total {total_cold * 1000:.1f} ms)"
    )
    print(
        f"  cold start: reconcile passes {n_cold:.0f}, CPU {cpu_cold * 1000:.1f} ms "
        f"({cpu_cold / max(n_cold, 1) * 1000:.2f} ms/pass), AWS calls to register: {elb_calls_reg}"
    )
    print(f"  rollout 50%: targets converged             {t_roll_reg * 1000:8.1f} ms")
    print(f"  rollout 50%: new gates True after healthy  {t_roll * 1000:8.1f} ms")
    print(
        f"  rollout: reconcile passes {n_roll:.0f}, CPU {cpu_roll * 1000:.1f} ms "
        f"({cpu_roll / max(n_roll, 1) * 1000:.2f} ms/pass)"
    )
    print(
        f"  CPU per full pass ({per} endpoints, diff + gates): "
        f"mean {sum(full_cpu) / len(full_cpu) * 1000:.2f} ms, max {max(full_cpu) * 1000:.2f} ms"
    )
    print(f"  CPU per early-return pass (checkpoint unchanged): {early_cpu * 1000:.3f} ms")


if __name__ == "__main__":
    main()
