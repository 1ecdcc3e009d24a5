"""Informer list+watch over a fake API response stream: 410 Gone -> relist and rewatch."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

from kubernetes.client.rest import ApiException

from controller.kube import Informer, Resource


def obj(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}


class Resp:
    def __init__(
        self,
        data: bytes = b"",
        lines: list[dict[str, Any]] | None = None,
        block: threading.Event | None = None,
    ) -> None:
        self.data = data
        self.lines = lines or []
        self.block = block

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        for line in self.lines:
            yield (json.dumps(line) + "\n").encode()
        if self.block is not None:
            self.block.wait(5)

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


def test_relists_after_410_and_keeps_watching() -> None:
    stop = threading.Event()
    calls: list[str] = []
    lists = [
        {
            "kind": "PodList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "10"},
            "items": [obj("a", "5")],
        },
        {
            "kind": "PodList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "20"},
            "items": [obj("a", "5"), obj("b", "15")],
        },
    ]
    watches = [
        Resp(
            lines=[
                {
                    "type": "ERROR",
                    "object": {
                        "kind": "Status",
                        "code": 410,
                        "reason": "Expired",
                        "message": "too old",
                    },
                }
            ]
        ),
        Resp(
            lines=[
                {"type": "ADDED", "object": obj("c", "21")},
                {"type": "DELETED", "object": obj("a", "22")},
            ],
            block=stop,
        ),
    ]

    def list_fn(*args: Any, watch: bool = False, **kw: Any) -> Resp:
        """:return: V1PodList"""
        calls.append("watch" if watch else "list")
        if watch:
            return watches.pop(0)
        return Resp(data=json.dumps(lists.pop(0)).encode())

    events: list[tuple[str | None, str | None]] = []
    done = threading.Event()

    def handler(kind: str, old: Any, new: Any) -> None:
        events.append(
            (
                (old or {}).get("metadata", {}).get("name"),
                (new or {}).get("metadata", {}).get("name"),
            )
        )
        if new is None:
            done.set()

    inf = Informer(Resource("pod", list_fn), handler)
    inf.start()
    assert done.wait(5)
    assert calls == ["list", "watch", "list", "watch"]
    assert sorted(o["metadata"]["name"] for o in inf.store.list()) == ["b", "c"]
    assert inf.store.get("ns", "b")["kind"] == "Pod"  # type: ignore[index]
    assert (None, "b") in events and ("a", None) in events
    stop.set()
    inf.stop()


def test_api_errors_back_off_and_recover() -> None:
    stop = threading.Event()
    n = {"list": 0}

    def list_fn(*args: Any, watch: bool = False, **kw: Any) -> Resp:
        """:return: V1PodList"""
        if watch:
            return Resp(block=stop)
        n["list"] += 1
        if n["list"] == 1:
            raise ApiException(status=500, reason="boom")
        return Resp(data=json.dumps({"metadata": {"resourceVersion": "1"}, "items": []}).encode())

    inf = Informer(Resource("pod", list_fn), lambda *a: None, retry_base=0.01)
    inf.start()
    assert inf.synced.wait(5)
    stop.set()
    inf.stop()


def test_write_through_never_resurrects_an_object_the_watch_deleted() -> None:
    """Removing the last finalizer deletes the object; the watch's DELETED event may be
    applied before the patch returns. Putting the returned object back kept a deleted
    TargetGroupBinding cached forever (the Ingress reconciler then waited for it to go, and
    never deleted its target group)."""
    from controller.kube import Store

    store = Store()
    gone = obj("tgb", "7")
    gone["metadata"]["deletionTimestamp"] = "2026-11-30T08:00:00Z"
    gone["metadata"]["finalizers"] = []
    store.put(obj("tgb", "6"))
    store.delete("ns", "tgb")  # the watch's DELETED event, first
    store.put_written(gone)  # then what the patch returned
    assert store.get("ns", "tgb") is None
    store.put(obj("tgb", "6"))
    store.put_written(gone)  # the other order: the write-through is the deletion
    assert store.get("ns", "tgb") is None


def test_write_through_never_replaces_a_newer_version() -> None:
    from controller.kube import Store

    store = Store()
    store.put(obj("a", "12"))  # the watch already has a later version
    store.put_written(obj("a", "11"))
    assert store.get("ns", "a")["metadata"]["resourceVersion"] == "12"  # type: ignore[index]
    store.put_written(obj("a", "13"))
    assert store.get("ns", "a")["metadata"]["resourceVersion"] == "13"  # type: ignore[index]
    store.put_written(obj("b", "x"))  # not a number: written, as before
    assert store.get("ns", "b") is not None
