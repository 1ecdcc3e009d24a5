"""The real KubeCluster (official client, informers, writes) against a tiny fake API server:
checks request paths, patch content types and bodies end to end (local sockets, < 1 s)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from ctrl_helpers import ARN, NS, cfg, endpoint_slice, ep, namespace, node, pod, service, tgb
from kubernetes import client

from controller.aws import TargetsManager
from controller.kube import KubeCluster
from controller.manager import Manager
from controller.reconcile import FINALIZER, Reconciler
from controller.testing import FakeELBv2, merge_patch

LISTS = {
    "/apis/elbv2.k8s.aws/v1beta1/targetgroupbindings": "TargetGroupBindingList",
    "/api/v1/services": "ServiceList",
    "/api/v1/pods": "PodList",
    "/api/v1/nodes": "NodeList",
    "/api/v1/namespaces": "NamespaceList",
    "/apis/discovery.k8s.io/v1/endpointslices": "EndpointSliceList",
}


class FakeAPI:
    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        self.objects = objects
        self.requests: list[tuple[str, str, str, Any]] = []  # method, path, content-type, body
        self.stop = threading.Event()
        api = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def _send(self, code: int, obj: Any) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                u = urlparse(self.path)
                q = parse_qs(u.query)
                if q.get("watch") == ["true"]:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    api.stop.wait(5)
                    return
                if u.path in LISTS:
                    items = list(api.objects.get(u.path, []))
                    self._send(
                        200,
                        {
                            "kind": LISTS[u.path],
                            "apiVersion": "v1",
                            "metadata": {"resourceVersion": "100"},
                            "items": items,
                        },
                    )
                else:
                    self._send(404, {"kind": "Status", "code": 404})

            def do_PATCH(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.requests.append(("PATCH", self.path, self.headers["Content-Type"], body))
                if "/targetgroupbindings/" in self.path:
                    t = api.objects["/apis/elbv2.k8s.aws/v1beta1/targetgroupbindings"][0]
                    merge_patch(t, {k: v for k, v in body.items()})
                    t["metadata"]["resourceVersion"] = str(
                        int(t["metadata"]["resourceVersion"]) + 1
                    )
                    self._send(200, t)
                else:
                    self._send(200, {"kind": "Pod", "metadata": {"name": "x"}})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.requests.append(("POST", self.path, self.headers["Content-Type"], body))
                self._send(201, body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    t = tgb()
    t["metadata"]["resourceVersion"] = "7"
    objs = {
        "/apis/elbv2.k8s.aws/v1beta1/targetgroupbindings": [t],
        "/api/v1/services": [service()],
        "/api/v1/pods": [pod("g", "10.0.0.1", ready=False, gates=["web-tgb"])],
        "/api/v1/nodes": [node()],
        "/api/v1/namespaces": [namespace()],
        "/apis/discovery.k8s.io/v1/endpointslices": [
            endpoint_slice(endpoints=[ep("10.0.0.1", "g", ready=False)])
        ],
    }
    a = FakeAPI(objs)
    yield a
    a.close()


def test_real_client_wiring(api: FakeAPI) -> None:
    conf = client.Configuration()
    conf.host = api.url
    kc = KubeCluster(client.ApiClient(conf))
    elb = FakeELBv2()
    elb.create_target_group(ARN)
    c = cfg()
    mgr = Manager(kc, Reconciler(kc, TargetsManager(elb, ttl=0), c), c)
    kc.add_handler(mgr.handle)
    kc.start()
    try:
        assert kc.wait_synced(5)
        assert kc.get("tgb", NS, "web-tgb")["kind"] == "TargetGroupBinding"  # type: ignore[index]
        assert mgr.process_one(timeout=2) == (NS, "web-tgb")
        assert elb.registered(ARN) == {"10.0.0.1:8080"}
        by_path = {(m, p.split("?")[0]): (ct, b) for m, p, ct, b in api.requests}
        ct, body = by_path[
            ("PATCH", f"/apis/elbv2.k8s.aws/v1beta1/namespaces/{NS}/targetgroupbindings/web-tgb")
        ]
        assert ct == "application/merge-patch+json"
        ct, pbody = by_path[("PATCH", f"/api/v1/namespaces/{NS}/pods/g/status")]
        assert ct == "application/strategic-merge-patch+json"
        assert pbody["metadata"] == {"uid": "uid-g"}
        assert pbody["status"]["conditions"][0]["reason"] == "Elb.RegistrationInProgress"
        tgb_patches = [b for m, p, _, b in api.requests if m == "PATCH" and p.endswith("/web-tgb")]
        assert any(FINALIZER in (b["metadata"].get("finalizers") or []) for b in tgb_patches)
    finally:
        kc.stop()
