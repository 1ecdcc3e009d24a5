"""Kubernetes access: informer caches (list+watch, relist on 410) and the few writes we make.

Everything is kept as raw API JSON dicts (camelCase), which is what the resolver, gate writer
and webhook read; no model (de)serialisation on the hot path.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as dt
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from controller.log import get_logger

Obj = dict[str, Any]
Handler = Callable[[str, Obj | None, Obj | None], None]
log = get_logger("kube")

TGB_GROUP, TGB_VERSION, TGB_PLURAL = "elbv2.k8s.aws", "v1beta1", "targetgroupbindings"
KINDS = (
    "tgb",
    "service",
    "endpointslice",
    "endpoints",
    "pod",
    "node",
    "namespace",
    "ingress",
    "ingressclass",
)


class Kube(Protocol):
    """What the reconciler and webhooks need from Kubernetes (reads come from caches)."""

    def get(self, kind: str, namespace: str, name: str) -> Obj | None: ...

    def list(
        self, kind: str, namespace: str | None = None, labels: dict[str, str] | None = None
    ) -> list[Obj]: ...

    def patch_tgb(self, namespace: str, name: str, patch: Obj) -> Obj | None: ...

    def patch_tgb_status(self, namespace: str, name: str, patch: Obj) -> None: ...

    def patch_pod_status(self, namespace: str, name: str, uid: str, condition: Obj) -> bool: ...

    def create_event(self, obj: Obj, type_: str, reason: str, message: str) -> None: ...


class IngressKube(Kube, Protocol):
    """What the IngressGroup reconciler needs on top of Kube (controller/ingress/reconcile.py).

    Reads of kinds "ingress" and "ingressclass" come from informers started with
    ``KubeCluster(..., ingress=True)``.
    """

    def patch_ingress(self, namespace: str, name: str, patch: Obj) -> Obj | None: ...

    def patch_ingress_status(self, namespace: str, name: str, patch: Obj) -> None: ...

    def create_tgb(self, obj: Obj) -> Obj: ...

    def delete_tgb(self, namespace: str, name: str) -> None: ...

    def create_ingress_event(self, obj: Obj, type_: str, reason: str, message: str) -> None: ...


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def labels_match(selector: dict[str, str] | None, labels: dict[str, str] | None) -> bool:
    """Equality-based selector match (Service selectors are plain maps)."""
    labels = labels or {}
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def _newer(a: Obj, b: Obj) -> bool:
    """Whether `a` is a later version than `b` (resourceVersions are etcd revisions, compared
    only when both are numbers, as they are on every API server this controller meets)."""
    ra = str((a.get("metadata") or {}).get("resourceVersion") or "")
    rb = str((b.get("metadata") or {}).get("resourceVersion") or "")
    return ra.isdigit() and rb.isdigit() and int(ra) > int(rb)


class Store:
    """Thread-safe object cache keyed by (namespace, name); namespace '' for cluster objects."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_ns: dict[str, dict[str, Obj]] = {}

    @staticmethod
    def key_of(obj: Obj) -> tuple[str, str]:
        md = obj.get("metadata", {})
        return str(md.get("namespace") or ""), str(md.get("name"))

    def get(self, namespace: str, name: str) -> Obj | None:
        with self._lock:
            return self._by_ns.get(namespace or "", {}).get(name)

    def put_written(self, obj: Obj) -> None:
        """Write-through of what a write returned, while the watch may have moved on: an
        object whose last finalizer the write removed is gone (its DELETED event may already
        have been applied, and putting it back would keep it cached forever), and an older
        version never replaces a newer one."""
        md = obj.get("metadata") or {}
        ns, name = self.key_of(obj)
        with self._lock:
            bucket = self._by_ns.setdefault(ns, {})
            if md.get("deletionTimestamp") and not md.get("finalizers"):
                bucket.pop(name, None)
                return
            have = bucket.get(name)
            if have is not None and _newer(have, obj):
                return
            bucket[name] = obj

    def put(self, obj: Obj) -> Obj | None:
        ns, name = self.key_of(obj)
        with self._lock:
            bucket = self._by_ns.setdefault(ns, {})
            old = bucket.get(name)
            bucket[name] = obj
            return old

    def delete(self, namespace: str, name: str) -> Obj | None:
        with self._lock:
            return self._by_ns.get(namespace or "", {}).pop(name, None)

    def list(self, namespace: str | None = None, labels: dict[str, str] | None = None) -> list[Obj]:
        with self._lock:
            if namespace is None:
                objs = [o for b in self._by_ns.values() for o in b.values()]
            else:
                objs = list(self._by_ns.get(namespace, {}).values())
        if labels:
            objs = [o for o in objs if labels_match(labels, o.get("metadata", {}).get("labels"))]
        return objs

    def replace(
        self, objs: builtins.list[Obj]
    ) -> tuple[builtins.list[tuple[Obj | None, Obj]], builtins.list[Obj]]:
        """Swap in a fresh list; return (changed (old, new) pairs, deleted objects)."""
        fresh: dict[str, dict[str, Obj]] = {}
        for o in objs:
            ns, name = self.key_of(o)
            fresh.setdefault(ns, {})[name] = o
        with self._lock:
            old_all = self._by_ns
            self._by_ns = fresh
        changed: builtins.list[tuple[Obj | None, Obj]] = []
        deleted: builtins.list[Obj] = []
        for ns, bucket in fresh.items():
            for name, o in bucket.items():
                old = old_all.get(ns, {}).get(name)
                if old is None or _rv(old) != _rv(o):
                    changed.append((old, o))
        for ns, bucket in old_all.items():
            for name, o in bucket.items():
                if name not in fresh.get(ns, {}):
                    deleted.append(o)
        return changed, deleted


def _rv(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("resourceVersion", ""))


@dataclass
class Resource:
    """How to list/watch one kind through the python client (raw JSON responses)."""

    kind: str
    list_fn: Callable[..., Any]
    list_args: tuple[Any, ...] = ()


class Informer:
    """list+watch loop for one kind feeding a Store and handlers.

    410 Gone (expired resourceVersion) or any watch error -> relist and rewatch, with a capped
    backoff on repeated failures; the loop never exits until stop() so the process never
    crash-loops on API trouble.
    """

    def __init__(
        self,
        res: Resource,
        handler: Handler,
        watch_timeout: int = 300,
        retry_base: float = 0.5,
        delay: float = 0.0,
    ) -> None:
        # delay > 0 holds each watch event that long before the cache sees it
        # (--pod-cache-delay); lists are applied at once, so a relist may overtake held events.
        self.delay = delay
        self._held: queue.Queue[tuple[float, str, Obj]] = queue.Queue()
        self.retry_base = retry_base
        self.res = res
        self.store = Store()
        self.handler = handler
        self.watch_timeout = watch_timeout
        self.synced = threading.Event()
        self._stop = threading.Event()
        self._resp: Any = None
        self.log = log.child(res.kind)

    def start(self) -> None:
        threading.Thread(target=self._run, name=f"informer-{self.res.kind}", daemon=True).start()
        if self.delay > 0:
            threading.Thread(
                target=self._release_held, name=f"held-{self.res.kind}", daemon=True
            ).start()

    def stop(self) -> None:
        self._stop.set()
        resp = self._resp
        if resp is not None:  # unblock a read stuck in the watch stream
            with contextlib.suppress(Exception):
                resp.shutdown() if hasattr(resp, "shutdown") else resp.close()

    def _apply(self, etype: str, obj: Obj) -> None:
        if etype == "DELETED":
            ns, name = Store.key_of(obj)
            old = self.store.delete(ns, name)
            self._dispatch(old or obj, None)
        elif etype in ("ADDED", "MODIFIED"):
            self._dispatch(self.store.put(obj), obj)

    def _release_held(self) -> None:
        """Apply held watch events in order, each once its delay has passed."""
        while not self._stop.is_set():
            try:
                due, etype, obj = self._held.get(timeout=0.5)
            except queue.Empty:
                continue
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            self._apply(etype, obj)

    def _dispatch(self, old: Obj | None, new: Obj | None) -> None:
        try:
            self.handler(self.res.kind, old, new)
        except Exception as e:  # a handler bug must not kill the informer
            self.log.error("event handler failed", error=repr(e))

    def _list(self) -> str:
        resp = self.res.list_fn(*self.res.list_args, _preload_content=False)
        data = json.loads(resp.data)
        items = data.get("items") or []
        kind_name = data.get("kind", "").removesuffix("List")
        api_version = data.get("apiVersion", "")
        for it in items:  # list items lack kind/apiVersion; webhooks and events want them
            it.setdefault("kind", kind_name)
            it.setdefault("apiVersion", api_version)
        changed, deleted = self.store.replace(items)
        for old, new in changed:
            self._dispatch(old, new)
        for o in deleted:
            self._dispatch(o, None)
        self.synced.set()
        return str(data.get("metadata", {}).get("resourceVersion", ""))

    def _watch_events(self, rv: str) -> Iterator[Obj]:
        """One watch request, decoded line by line without model deserialisation. ERROR
        events raise ApiException with their code (410 Gone -> the caller relists)."""
        from kubernetes.client.rest import ApiException
        from kubernetes.watch.watch import iter_resp_lines

        resp = self.res.list_fn(
            *self.res.list_args,
            watch=True,
            resource_version=rv,
            timeout_seconds=self.watch_timeout,
            allow_watch_bookmarks=True,
            _preload_content=False,
            _request_timeout=(10, self.watch_timeout + 30),
        )
        self._resp = resp
        try:
            for line in iter_resp_lines(resp):
                if self._stop.is_set():
                    return
                if not line:
                    continue
                ev = json.loads(line)
                if ev.get("type") == "ERROR":
                    st = ev.get("object") or {}
                    raise ApiException(
                        status=int(st.get("code") or 500),
                        reason=f"{st.get('reason')}: {st.get('message')}",
                    )
                yield ev
        finally:
            self._resp = None
            resp.close()
            resp.release_conn()

    def _run(self) -> None:
        from kubernetes.client.rest import ApiException

        failures = 0
        while not self._stop.is_set():
            try:
                rv = self._list()
                self.log.debug("listed", resource_version=rv, count=len(self.store.list()))
                while not self._stop.is_set():
                    for ev in self._watch_events(rv):
                        failures = 0
                        obj = ev.get("object") or {}
                        etype = ev.get("type")
                        rv = str(obj.get("metadata", {}).get("resourceVersion") or rv)
                        if etype == "BOOKMARK":
                            continue
                        if self.delay > 0:
                            self._held.put((time.monotonic() + self.delay, str(etype), obj))
                        else:
                            self._apply(str(etype), obj)
            except ApiException as e:
                if e.status == 410:
                    self.log.info("watch expired (410 Gone), relisting")
                    continue
                failures += 1
                self.log.warning("list/watch failed", status=e.status, reason=str(e.reason))
            except Exception as e:
                if self._stop.is_set():
                    return
                failures += 1
                self.log.warning("list/watch failed", error=repr(e))
            if failures:
                self._stop.wait(min(30.0, self.retry_base * 2 ** min(failures, 6)))


class KubeCluster:
    """Kube implementation over the official client: informer caches + direct writes."""

    def __init__(
        self,
        api_client: Any,
        legacy_endpoints: bool = False,
        component: str = "targetGroupBinding",
        ingress: bool = False,
        pod_delay: float = 0.0,
        namespace: str = "",
    ) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.discovery = client.DiscoveryV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.networking = client.NetworkingV1Api(api_client)
        self.component = component
        self.handlers: list[Handler] = []
        # --watch-namespace: the namespaced kinds from that namespace only (ALBC sets its
        # cache's DefaultNamespaces, pkg/config/runtime_config.go); nodes and IngressClasses
        # are cluster-scoped either way.
        ns = (namespace,) if namespace else ()

        def scoped(kind: str, everywhere: Callable[..., Any], one: Callable[..., Any],
                   *args: str) -> Resource:
            return Resource(kind, one if namespace else everywhere,
                            (*args[:2], *ns, *args[2:]) if args else ns)

        resources = [
            scoped("tgb", self.custom.list_cluster_custom_object,
                   self.custom.list_namespaced_custom_object, TGB_GROUP, TGB_VERSION,
                   TGB_PLURAL),
            scoped("service", self.core.list_service_for_all_namespaces,
                   self.core.list_namespaced_service),
            scoped("pod", self.core.list_pod_for_all_namespaces, self.core.list_namespaced_pod),
            Resource("node", self.core.list_node),
        ]
        if legacy_endpoints:
            resources.append(scoped("endpoints", self.core.list_endpoints_for_all_namespaces,
                                    self.core.list_namespaced_endpoints))
        else:
            resources.append(scoped("endpointslice",
                                    self.discovery.list_endpoint_slice_for_all_namespaces,
                                    self.discovery.list_namespaced_endpoint_slice))
        if ingress:  # only when asked: the informers need ingress RBAC (rbac.yaml)
            resources.append(scoped("ingress", self.networking.list_ingress_for_all_namespaces,
                                    self.networking.list_namespaced_ingress))
            resources.append(Resource("ingressclass", self.networking.list_ingress_class))
        self.informers = {
            r.kind: Informer(r, self._fanout, delay=pod_delay if r.kind == "pod" else 0.0)
            for r in resources
        }

    def add_handler(self, h: Handler) -> None:
        self.handlers.append(h)

    def _fanout(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        for h in self.handlers:
            h(kind, old, new)

    def start(self) -> None:
        for inf in self.informers.values():
            inf.start()

    def stop(self) -> None:
        for inf in self.informers.values():
            inf.stop()

    def wait_synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for inf in self.informers.values():
            if not inf.synced.wait(max(0.0, deadline - time.monotonic())):
                return False
        return True

    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self.informers.values())

    # reads -------------------------------------------------------------------------------
    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        inf = self.informers.get(kind)
        return inf.store.get(namespace, name) if inf else None

    def list(
        self, kind: str, namespace: str | None = None, labels: dict[str, str] | None = None
    ) -> list[Obj]:
        inf = self.informers.get(kind)
        return inf.store.list(namespace, labels) if inf else []

    # writes ------------------------------------------------------------------------------
    def patch_tgb(self, namespace: str, name: str, patch: Obj) -> Obj | None:
        out = self.custom.patch_namespaced_custom_object(
            TGB_GROUP,
            TGB_VERSION,
            namespace,
            TGB_PLURAL,
            name,
            patch,
            _content_type="application/merge-patch+json",
        )
        if isinstance(out, dict):
            self.informers["tgb"].store.put_written(out)  # so the next pass sees it
            return out
        return None

    def patch_tgb_status(self, namespace: str, name: str, patch: Obj) -> None:
        out = self.custom.patch_namespaced_custom_object_status(
            TGB_GROUP,
            TGB_VERSION,
            namespace,
            TGB_PLURAL,
            name,
            patch,
            _content_type="application/merge-patch+json",
        )
        if isinstance(out, dict):
            self.informers["tgb"].store.put_written(out)

    def patch_pod_status(self, namespace: str, name: str, uid: str, condition: Obj) -> bool:
        """Strategic-merge one condition; the UID in the body is a precondition (409 on a
        replaced pod). NotFound/Conflict are ignored: the pod is gone or is another pod."""
        from kubernetes.client.rest import ApiException

        body = {"metadata": {"uid": uid}, "status": {"conditions": [condition]}}
        try:
            self.core.patch_namespaced_pod_status(
                name,
                namespace,
                body,
                _content_type="application/strategic-merge-patch+json",
                _preload_content=False,
            )
        except ApiException as e:
            # 404: pod gone; 409/422 naming the uid: a new pod now has this name
            if e.status in (404, 409) or (e.status == 422 and "uid" in str(e.body).lower()):
                return False
            raise
        return True

    def patch_ingress(self, namespace: str, name: str, patch: Obj) -> Obj | None:
        """JSON merge patch of an Ingress (finalizers; a resourceVersion in the patch is a
        precondition: 409 when stale)."""
        out = self.networking.patch_namespaced_ingress(
            name,
            namespace,
            patch,
            _content_type="application/merge-patch+json",
            _preload_content=False,
        )
        obj: Obj = json.loads(out.data)
        self.informers["ingress"].store.put_written(obj)  # as patch_tgb
        return obj

    def patch_ingress_status(self, namespace: str, name: str, patch: Obj) -> None:
        out = self.networking.patch_namespaced_ingress_status(
            name,
            namespace,
            patch,
            _content_type="application/merge-patch+json",
            _preload_content=False,
        )
        self.informers["ingress"].store.put_written(json.loads(out.data))

    def create_tgb(self, obj: Obj) -> Obj:
        ns = obj["metadata"]["namespace"]
        out = self.custom.create_namespaced_custom_object(
            TGB_GROUP, TGB_VERSION, ns, TGB_PLURAL, obj
        )
        if isinstance(out, dict):
            # write-through, and tell the handlers now: the informer's ADDED event will find
            # this very resourceVersion cached and look like "no change" to the TGB manager
            self.informers["tgb"].store.put_written(out)
            self._fanout("tgb", None, out)
            return out
        return obj

    def delete_tgb(self, namespace: str, name: str) -> None:
        """Delete a TargetGroupBinding (its finalizer keeps it until the TGB reconciler has
        deregistered the targets); NotFound is fine."""
        from kubernetes.client.rest import ApiException

        try:
            self.custom.delete_namespaced_custom_object(
                TGB_GROUP, TGB_VERSION, namespace, TGB_PLURAL, name
            )
        except ApiException as e:
            if e.status != 404:
                raise

    def create_ingress_event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """An event on an Ingress from component "ingress" (upstream's recorder name)."""
        self._event(obj, type_, reason, message, "ingress")

    def create_event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        self._event(obj, type_, reason, message, self.component)

    def _event(self, obj: Obj, type_: str, reason: str, message: str, component: str) -> None:
        from kubernetes.client.rest import ApiException

        md = obj.get("metadata", {})
        ns = md.get("namespace") or "default"
        ts = now_rfc3339()
        ev = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{md.get('name')}.{uuid.uuid4().hex[:12]}", "namespace": ns},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", f"{TGB_GROUP}/{TGB_VERSION}"),
                "kind": obj.get("kind", "TargetGroupBinding"),
                "name": md.get("name"),
                "namespace": ns,
                "uid": md.get("uid"),
                "resourceVersion": md.get("resourceVersion"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "source": {"component": component},
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
        }
        try:
            self.core.create_namespaced_event(ns, ev, _preload_content=False)
        except ApiException as e:
            log.warning("event not recorded", reason=reason, status=e.status)


def load_api_client(kubeconfig: str | None) -> Any:
    """ApiClient from --kubeconfig, else in-cluster config, else the default kubeconfig."""
    from kubernetes import client, config

    if kubeconfig:
        return config.new_client_from_config(config_file=kubeconfig)
    try:
        config.load_incluster_config()
        return client.ApiClient()
    except config.ConfigException:
        return config.new_client_from_config()
