"""Wires informer events to the work queue and runs reconcile workers.

Event -> key mapping follows ALBC's triggers (controllers/elbv2/targetgroupbinding_controller.go
and eventhandlers/, the same in every release modelled): every event of the TGB itself (no
predicate: status and annotation patches enqueue too), the EndpointSlices/Endpoints of its
Service when ports or endpoints changed (ip TGBs), Service port changes (instance TGBs only),
gated pods (v3.4.0+, --pod-watch) when the fields ALBC's PodInfo holds changed, the requeues,
the deferred full reconcile (controller/deferred.py) and the sync period.
"""

from __future__ import annotations

import json
import time
from typing import Any

from controller import metrics
from controller.config import Config
from controller.deferred import Deferred
from controller.gates import GATE_PREFIX
from controller.kube import Kube
from controller.log import get_logger
from controller.queue import ExponentialBackoff, QueueWorkers, WorkQueue
from controller.reconcile import Key, Reconciler, Result
from controller.resolve import SERVICE_NAME_LABEL, Obj

log = get_logger("manager")


def _meta(o: Obj | None) -> dict[str, Any]:
    return (o or {}).get("metadata", {}) or {}


def _pod_fingerprint(pod: Obj) -> str:
    """The fields of ALBC's k8s.PodInfo (pkg/k8s/pod_info.go; eventhandlers/pod.go compares
    them all): UID, container ports, readiness gates, every condition (our own gate writes
    included), node, IP, creation time."""
    spec = pod.get("spec") or {}
    st = pod.get("status") or {}
    return json.dumps(
        [
            _meta(pod).get("uid"),
            [c.get("ports") for c in spec.get("containers") or []],
            spec.get("readinessGates"),
            st.get("conditions"),
            spec.get("nodeName"),
            st.get("podIP"),
            _meta(pod).get("creationTimestamp"),
        ],
        sort_keys=True,
        default=str,
    )


def _slice_fingerprint(o: Obj) -> tuple[str, str]:
    if "subsets" in o:
        return json.dumps(o.get("subsets"), sort_keys=True), ""
    return json.dumps(o.get("endpoints"), sort_keys=True), json.dumps(
        o.get("ports"), sort_keys=True
    )


class Manager(QueueWorkers):
    """Event handlers + work queue + worker threads around a Reconciler."""

    def __init__(
        self, kube: Kube, reconciler: Reconciler, cfg: Config, queue: WorkQueue | None = None
    ) -> None:
        self.kube = kube
        self.reconciler = reconciler
        self.cfg = cfg
        self.queue = queue or WorkQueue(ExponentialBackoff.of(cfg))
        self.deferred = Deferred(kube, cfg)
        self.worker_count = cfg.workers
        self.sync_period_seconds = cfg.sync_period_seconds
        self._init_workers()
        self.last_results: dict[Key, Result] = {}

    # event mapping ------------------------------------------------------------------------
    def _tgbs_for_service(self, ns: str, svc: str, target_type: str = "ip") -> list[Key]:
        return [
            (ns, t["metadata"]["name"])
            for t in self.kube.list("tgb", ns)
            if (t.get("spec", {}).get("serviceRef") or {}).get("name") == svc
            and t.get("spec", {}).get("targetType") == target_type
        ]

    def keys_for_event(self, kind: str, old: Obj | None, new: Obj | None) -> list[Key]:
        obj = new if new is not None else old
        if obj is None:
            return []
        md = _meta(obj)
        ns, name = str(md.get("namespace") or ""), str(md.get("name"))
        if kind == "tgb":
            if new is None:  # deleted: a binding refused for a duplicate ARN may now own it
                arn = obj.get("spec", {}).get("targetGroupARN")
                return [
                    (_meta(t).get("namespace", ""), _meta(t)["name"])
                    for t in self.kube.list("tgb")
                    if t.get("spec", {}).get("targetGroupARN") == arn
                    and (_meta(t).get("namespace"), _meta(t)["name"]) != (ns, name)
                ]
            return [(ns, name)]
        if kind == "service":
            if (
                old is not None
                and new is not None
                and (old.get("spec") or {}).get("ports") == (new.get("spec") or {}).get("ports")
            ):
                return []
            return self._tgbs_for_service(ns, name, "instance")
        if kind in ("endpointslice", "endpoints"):
            if (
                old is not None
                and new is not None
                and _slice_fingerprint(old) == _slice_fingerprint(new)
            ):
                return []
            svc = name if kind == "endpoints" else (md.get("labels") or {}).get(SERVICE_NAME_LABEL)
            return self._tgbs_for_service(ns, svc) if svc else []
        if kind == "pod":
            if not self.cfg.pod_watch:  # pre-v3.4: pod changes alone trigger nothing
                return []
            gates = [
                g.get("conditionType", "")
                for g in (obj.get("spec") or {}).get("readinessGates") or []
            ]
            tgbs = [g[len(GATE_PREFIX) :] for g in gates if g.startswith(GATE_PREFIX)]
            if not tgbs:
                return []
            if (
                old is not None
                and new is not None
                and _pod_fingerprint(old) == _pod_fingerprint(new)
            ):
                return []
            return [(ns, t) for t in tgbs if self.kube.get("tgb", ns, t) is not None]
        return []

    def handle(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        for key in self.keys_for_event(kind, old, new):
            self.queue.add(key)

    def enqueue_all(self) -> None:
        for t in self.kube.list("tgb"):
            self.queue.add((_meta(t).get("namespace", ""), _meta(t)["name"]))

    # workers ------------------------------------------------------------------------------
    def process_one(self, timeout: float | None = None) -> Key | None:
        """Take one key, reconcile it, and schedule the follow-up per its Result."""
        key = self.queue.get(timeout)
        if key is None:
            return None
        assert isinstance(key, tuple)
        start = time.monotonic()
        result_label = "success"
        try:
            res = self.reconciler.reconcile(key)
            self.last_results[key] = res
            if res.skipped:
                self.deferred.enqueue(key)
            elif not (res.requeue or res.requeue_after):
                self.deferred.mark_processed(key)
            if res.requeue_after > 0:
                self.queue.forget(key)
                self.queue.add_after(key, res.requeue_after)
                result_label = "requeue_after"
            elif res.requeue:
                delay = self.queue.add_rate_limited(key)
                result_label = "requeue"
                log.debug(
                    "requeue with backoff", tgb=f"{key[0]}/{key[1]}", delay=delay, reason=res.reason
                )
            else:
                self.queue.forget(key)
        except Exception as e:
            delay = self.queue.add_rate_limited(key)
            result_label = "error"
            log.error(
                "reconcile failed, retrying with backoff",
                tgb=f"{key[0]}/{key[1]}",
                error=str(e),
                retry_in=round(delay, 3),
            )
        finally:
            dur = time.monotonic() - start
            metrics.RECONCILE_TOTAL.labels(result_label).inc()
            metrics.RECONCILE_DURATION.labels(result_label).observe(dur)
            self.queue.done(key)
        return key

    def start(self) -> None:
        super().start()
        self.deferred.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.deferred.stop()
        super().stop(timeout)
