"""The real KubeCluster (official client, informers, writes) against a tiny fake API server:
checks request paths, patch content types and bodies end to end (local sockets, < 1 s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ctrl_helpers import (
    ARN,
    NS,
    FakeAPI,
    cfg,
    endpoint_slice,
    ep,
    namespace,
    node,
    pod,
    service,
    tgb,
)
from kubernetes import client

from controller.aws import TargetsManager
from controller.kube import KubeCluster
from controller.manager import Manager
from controller.reconcile import FINALIZER, Reconciler
from controller.testing import FakeELBv2


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


def test_watch_namespace_lists_only_that_namespace(api: FakeAPI) -> None:
    """--watch-namespace (ALBC pkg/config/runtime_config.go): namespaced kinds are listed and
    watched in that namespace; nodes stay cluster-wide."""
    conf = client.Configuration()
    conf.host = api.url
    kc = KubeCluster(client.ApiClient(conf), namespace=NS)
    kc.start()
    try:
        assert kc.wait_synced(5)
        assert kc.get("tgb", NS, "web-tgb") is not None and kc.get("node", "", "node-1")
    finally:
        kc.stop()
    listed = set(api.lists)
    assert f"/apis/elbv2.k8s.aws/v1beta1/namespaces/{NS}/targetgroupbindings" in listed
    assert {f"/api/v1/namespaces/{NS}/pods", f"/api/v1/namespaces/{NS}/services",
            f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices",
            "/api/v1/nodes"} <= listed
    assert "/api/v1/pods" not in listed and "/api/v1/services" not in listed
