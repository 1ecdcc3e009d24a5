"""Pod lifecycle recorder: a watch on the scenario's namespace turned into timestamped events
(created, containers_ready, gate_true, ready, not_ready, terminating, ended, deleted) for the
report. `ended`: the pod's phase turned Failed or Succeeded, e.g. the kubelet terminated it for
a node shutdown, which deletes nothing."""

from __future__ import annotations

import threading
import time
from typing import Any

from kubernetes import client, watch

GATE_PREFIX = "target-health.elbv2.k8s.aws/"


def _state(pod: client.V1Pod) -> dict[str, bool]:
    conds = {c.type: c.status == "True" for c in pod.status.conditions or []}
    return {
        "containers_ready": conds.get("ContainersReady", False),
        "gate_true": any(v for k, v in conds.items() if k.startswith(GATE_PREFIX)),
        "ready": conds.get("Ready", False),
        "terminating": pod.metadata.deletion_timestamp is not None,
        "ended": pod.status.phase in ("Failed", "Succeeded"),
    }


class PodRecorder:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.events: list[dict[str, Any]] = []
        self._last: dict[str, dict[str, bool]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-recorder", daemon=True)

    def start(self) -> PodRecorder:
        self._thread.start()
        return self

    def stop(self) -> list[dict[str, Any]]:
        self._stop.set()
        self._thread.join(timeout=10)
        return sorted(self.events, key=lambda e: e["ts"])

    def _emit(self, pod: str, kind: str) -> None:
        self.events.append({"ts": time.time(), "pod": pod, "kind": kind})

    def _observe(self, kind: str, pod: client.V1Pod) -> None:
        name = pod.metadata.name
        if kind == "DELETED":
            self._emit(name, "deleted")
            self._last.pop(name, None)
            return
        now = _state(pod)
        before = self._last.get(name)
        if before is None:
            self._emit(name, "created")
            before = {k: False for k in now}
        for key, value in now.items():
            if value and not before[key]:
                self._emit(name, key)
            elif key == "ready" and before[key] and not value:
                self._emit(name, "not_ready")
        self._last[name] = now

    def _run(self) -> None:
        while not self._stop.is_set():
            w = watch.Watch()
            try:
                for ev in w.stream(self.core.list_namespaced_pod, self.namespace,
                                   timeout_seconds=5):
                    self._observe(ev["type"], ev["object"])
                    if self._stop.is_set():
                        break
            except Exception:  # watch expiry or a transient API error: watch again
                time.sleep(0.2)
            finally:
                w.stop()
