"""Ingress mode wiring: informer events -> IngressGroup keys -> work queue -> GroupReconciler.

One mapping per watched kind, as upstream's event handlers do
(kubernetes-sigs/aws-load-balancer-controller v3.5.0, controllers/ingress/eventhandlers/):

- ingress_events.go: an Ingress event enqueues the groups it still holds a finalizer of
  (LoadGroupIDsPendingFinalization) plus the group it belongs to now; an update that changes
  neither annotations, spec nor "being deleted" is ignored; a group id that cannot be loaded is
  a Warning event FailedLoadGroupID on the Ingress. Here the old object's group is added too
  (a superset: it is normally covered by the finalizer).
- ingress_class_events.go: an IngressClass event enqueues the groups of the Ingresses naming
  that class (and, here, of the class-less Ingresses when the class is or was the default).
- service_events.go: a Service whose annotations or spec changed enqueues the groups of the
  Ingresses in its namespace that reference it (backends, default backend, actions.* forward
  targets).

The queue is controller/queue.py's WorkQueue of GroupIDs with its own workers (upstream's
``--ingress-max-concurrent-reconciles``, default 3), separate from the TargetGroupBinding queue.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from controller.ingress import annotations as ann
from controller.ingress import objects
from controller.ingress.classes import (
    DEFAULT_CLASS_ANNOTATION,
    GroupID,
    group_id_for,
    is_managed,
)
from controller.ingress.errors import REASON_FAILED_LOAD_GROUP_ID, IngressModelError
from controller.ingress.reconcile import GroupLoadError, GroupReconciler, group_ids_from_finalizers
from controller.kube import IngressKube, Obj
from controller.log import get_logger
from controller.queue import ExponentialBackoff, QueueWorkers, WorkQueue

log = get_logger("ingress.handlers")


def _md(o: Obj | None) -> dict[str, Any]:
    return (o or {}).get("metadata") or {}


def _ingress_changed(old: Obj, new: Obj) -> bool:
    """ingress_events.go Update: annotations, spec, or whether it is being deleted."""
    return (
        _md(old).get("annotations") != _md(new).get("annotations")
        or old.get("spec") != new.get("spec")
        or bool(_md(old).get("deletionTimestamp")) != bool(_md(new).get("deletionTimestamp"))
    )


def _service_names_in_actions(annotations: dict[str, str]) -> set[str]:
    """serviceName values anywhere in the actions.<name> annotations (JSON keys match
    case-insensitively, as Go's encoding/json)."""
    prefix = ann.key("actions.")
    found: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                if k.lower() == "servicename" and isinstance(x, str):
                    found.add(x)
                else:
                    walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for k, raw in annotations.items():
        if k.startswith(prefix):
            try:
                walk(json.loads(raw))
            except ValueError:
                continue
    return found


def referenced_services(ing: Obj) -> set[str]:
    """Names of the Services an Ingress (raw API JSON) can route to."""
    spec = ing.get("spec") or {}
    names: set[str] = set()
    backends = [spec.get("defaultBackend")]
    for r in spec.get("rules") or []:
        for p in ((r or {}).get("http") or {}).get("paths") or []:
            backends.append((p or {}).get("backend"))
    for b in backends:
        svc = ((b or {}).get("service") or {}).get("name")
        if svc:
            names.add(str(svc))
    return names | _service_names_in_actions(_md(ing).get("annotations") or {})


class IngressEventHandlers:
    """Event -> IngressGroup keys (plus the FailedLoadGroupID event upstream's handler emits)."""

    def __init__(self, kube: IngressKube, ingress_class: str = "alb") -> None:
        self.kube = kube
        self.ingress_class = ingress_class

    def group_of(self, ing: Obj, classes: list[Any] | None = None) -> GroupID | None:
        """group_loader.go LoadGroupIDIfAny; raises IngressModelError."""
        if _md(ing).get("deletionTimestamp"):
            return None
        if classes is None:
            classes = [objects.ingress_class_from_dict(c) for c in self.kube.list("ingressclass")]
        model = objects.ingress_from_dict(ing)
        if not is_managed(model, classes, ingress_class=self.ingress_class):
            return None
        return group_id_for(model)

    def groups_for_ingress(self, ing: Obj, classes: list[Any] | None = None) -> set[GroupID]:
        """ingress_events.go enqueueIfBelongsToGroup."""
        out = set(group_ids_from_finalizers(ing))
        try:
            gid = self.group_of(ing, classes)
        except IngressModelError as e:
            self.kube.create_ingress_event(
                ing, "Warning", REASON_FAILED_LOAD_GROUP_ID, f"failed load groupID due to {e}"
            )
            gid = None
        if gid is not None:
            out.add(gid)
        return out

    def _groups_for_ingresses(self, ings: Iterable[Obj]) -> set[GroupID]:
        classes = [objects.ingress_class_from_dict(c) for c in self.kube.list("ingressclass")]
        out: set[GroupID] = set()
        for ing in ings:
            out |= self.groups_for_ingress(ing, classes)
        return out

    def keys_for_event(self, kind: str, old: Obj | None, new: Obj | None) -> list[GroupID]:
        obj = new if new is not None else old
        if obj is None:
            return []
        if kind == "ingress":
            if new is None:  # gone for good: its finalizers were removed by a reconcile
                return []
            if old is not None and not _ingress_changed(old, new):
                return []
            keys = self.groups_for_ingress(new)
            if old is not None:
                try:
                    prev = self.group_of(old)
                except IngressModelError:
                    prev = None
                if prev is not None:
                    keys.add(prev)
            return sorted(keys, key=str)
        if kind == "ingressclass":
            name = _md(obj).get("name")
            was_default = any(
                _md(o).get("annotations", {}).get(DEFAULT_CLASS_ANNOTATION) == "true"
                for o in (old, new)
                if o is not None
            )
            ings = [
                i
                for i in self.kube.list("ingress")
                if (i.get("spec") or {}).get("ingressClassName") == name
                or (was_default and not (i.get("spec") or {}).get("ingressClassName"))
            ]
            return sorted(self._groups_for_ingresses(ings), key=str)
        if kind == "service":
            if (
                old is not None
                and new is not None
                and old.get("spec") == new.get("spec")
                and _md(old).get("annotations") == _md(new).get("annotations")
            ):
                return []
            ns, name = _md(obj).get("namespace", ""), _md(obj).get("name")
            ings = [i for i in self.kube.list("ingress", ns) if name in referenced_services(i)]
            return sorted(self._groups_for_ingresses(ings), key=str)
        return []

    def all_groups(self) -> list[GroupID]:
        return sorted(self._groups_for_ingresses(self.kube.list("ingress")), key=str)


class IngressManager(QueueWorkers):
    """The IngressGroup work queue and its workers (a sibling of controller/manager.Manager)."""

    thread_name = "ingress-worker"

    def __init__(
        self,
        kube: IngressKube,
        reconciler: GroupReconciler,
        *,
        ingress_class: str = "alb",
        workers: int = 3,
        sync_period_seconds: float = 36000.0,
        backoff: ExponentialBackoff | None = None,
        queue: WorkQueue | None = None,
    ) -> None:
        self.kube = kube
        self.reconciler = reconciler
        self.handlers = IngressEventHandlers(kube, ingress_class)
        self.worker_count = workers
        self.sync_period_seconds = sync_period_seconds
        self.queue = queue or WorkQueue(backoff or ExponentialBackoff())
        self._init_workers()

    def handle(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if kind not in ("ingress", "ingressclass", "service"):
            return
        for gid in self.handlers.keys_for_event(kind, old, new):
            self.queue.add(gid)

    def enqueue_all(self) -> None:
        for gid in self.handlers.all_groups():
            self.queue.add(gid)

    def process_one(self, timeout: float | None = None) -> GroupID | None:
        key = self.queue.get(timeout)
        if key is None:
            return None
        assert isinstance(key, GroupID)
        try:
            res = self.reconciler.reconcile(key)
            if res.requeue_after > 0:
                self.queue.forget(key)
                self.queue.add_after(key, res.requeue_after)
            elif res.requeue:
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
        except GroupLoadError as e:
            delay = self.queue.add_rate_limited(key)
            log.error("ingress group load failed", group=str(key), error=str(e), retry_in=delay)
        except Exception as e:
            delay = self.queue.add_rate_limited(key)
            log.error(
                "ingress group reconcile failed, retrying with backoff",
                group=str(key),
                error=str(e),
                retry_in=round(delay, 3),
            )
        finally:
            self.queue.done(key)
        return key
