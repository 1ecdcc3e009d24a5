"""Event -> IngressGroup key mapping (controllers/ingress/eventhandlers/*.go@v3.5.0), the ingress
work queue end to end over the fakes, and the TargetGroupBinding manager ignoring it all."""

from __future__ import annotations

import copy
import json
from typing import Any

from ctrl_helpers import FakeAPI
from test_ingress_fixtures import A, backend, ingress, ingress_class, path, rule, service
from test_ingress_reconcile import NS, raw

from controller.config import Config
from controller.ingress.build import BuildOptions
from controller.ingress.classes import GroupID
from controller.ingress.handlers import IngressEventHandlers, IngressManager, referenced_services
from controller.ingress.reconcile import GroupReconciler
from controller.manager import Manager
from controller.reconcile import Reconciler
from controller.testing import FakeDeployer, FakeKube

WEB = GroupID.implicit(NS, "web")


def kube_with(*objs: tuple[str, Any]) -> FakeKube:
    kube = FakeKube(notify_on_write=False)
    kube.put("ingressclass", raw(ingress_class("alb"), "IngressClass"))
    kube.put("ingressclass", raw(ingress_class("nginx", "k8s.io/nginx"), "IngressClass"))
    for kind, o in objs:
        kube.put(kind, o)
    return kube


def ing_raw(*args: Any, finalizers: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    d = raw(ingress(*args, **kw), "Ingress")
    if finalizers:
        d["metadata"]["finalizers"] = finalizers
    return d


def test_ingress_event_maps_to_its_group() -> None:
    h = IngressEventHandlers(kube_with())
    assert h.keys_for_event("ingress", None, ing_raw()) == [WEB]
    explicit = ing_raw(annotations={A + "group.name": "g1"})
    assert h.keys_for_event("ingress", None, explicit) == [GroupID.explicit("g1")]
    # not ours: nothing, unless it still holds one of our finalizers
    assert h.keys_for_event("ingress", None, ing_raw(class_name="nginx")) == []
    left = ing_raw(class_name="nginx", finalizers=["ingress.k8s.aws/resources"])
    assert h.keys_for_event("ingress", None, left) == [WEB]
    # final delete (no finalizers left): nothing to do
    assert h.keys_for_event("ingress", ing_raw(), None) == []


def test_ingress_update_filter_and_group_change() -> None:
    h = IngressEventHandlers(kube_with())
    old = ing_raw(annotations={A + "group.name": "g1"}, finalizers=["group.ingress.k8s.aws/g1"])
    same = copy.deepcopy(old)
    same["metadata"]["resourceVersion"] = "999"
    same["status"] = {"loadBalancer": {"ingress": [{"hostname": "x"}]}}
    assert h.keys_for_event("ingress", old, same) == []  # status/metadata-only change
    moved = copy.deepcopy(old)
    moved["metadata"]["annotations"] = {A + "group.name": "g2"}
    assert h.keys_for_event("ingress", old, moved) == [GroupID.explicit("g1"),
                                                      GroupID.explicit("g2")]
    deleting = copy.deepcopy(old)
    deleting["metadata"]["deletionTimestamp"] = "2026-11-25T11:00:00Z"
    assert h.keys_for_event("ingress", old, deleting) == [GroupID.explicit("g1")]


def test_bad_group_name_is_a_failed_load_group_id_event() -> None:
    kube = kube_with()
    h = IngressEventHandlers(kube)
    bad = ing_raw(annotations={A + "group.name": "Not_Valid"},
                  finalizers=["ingress.k8s.aws/resources"])
    assert h.keys_for_event("ingress", None, bad) == [WEB]  # the group it is leaving
    [(name, typ, reason, msg)] = kube.events
    assert (name, typ, reason) == ("web", "Warning", "FailedLoadGroupID")
    assert msg.startswith("failed load groupID due to invalid ingress group")


def test_ingress_class_event_maps_to_groups_using_it() -> None:
    kube = kube_with(("ingress", ing_raw("a")), ("ingress", ing_raw("b", class_name="nginx")),
                     ("ingress", ing_raw("c", class_name=None)))
    h = IngressEventHandlers(kube)
    alb = raw(ingress_class("alb"), "IngressClass")
    assert h.keys_for_event("ingressclass", None, alb) == [GroupID.implicit(NS, "a")]
    # a (new) default class concerns the class-less Ingresses too
    default = raw(ingress_class("alb", default=True), "IngressClass")
    kube.put("ingressclass", default)
    assert h.keys_for_event("ingressclass", alb, default) == [GroupID.implicit(NS, "a"),
                                                             GroupID.implicit(NS, "c")]


def test_service_event_maps_to_referencing_ingresses() -> None:
    canary = {"type": "forward", "forwardConfig": {"targetGroups": [
        {"serviceName": "api", "servicePort": 80, "weight": 100}]}}
    kube = kube_with(
        ("ingress", ing_raw("a")),  # backend web
        ("ingress", ing_raw("b", annotations={A + "actions.canary": json.dumps(canary)},
                            rules=[rule(None, path("/", "canary", "use-annotation"))])),
        ("ingress", ing_raw("c", rules=[], default_backend=backend("api", 80))),
    )
    h = IngressEventHandlers(kube)
    api = raw(service("api"), "Service")
    assert h.keys_for_event("service", None, api) == [GroupID.implicit(NS, "b"),
                                                      GroupID.implicit(NS, "c")]
    assert h.keys_for_event("service", api, copy.deepcopy(api)) == []  # unchanged spec
    changed = copy.deepcopy(api)
    changed["metadata"]["annotations"] = {A + "healthcheck-path": "/h"}
    assert len(h.keys_for_event("service", api, changed)) == 2
    other_ns = raw(service("web", ns="elsewhere"), "Service")
    assert h.keys_for_event("service", None, other_ns) == []
    assert referenced_services(kube.get("ingress", NS, "a")) == {"web"}


def test_ingress_manager_end_to_end_over_the_fakes() -> None:
    kube = kube_with(("service", raw(service("web"), "Service")))
    dep = FakeDeployer()
    mgr = IngressManager(kube, GroupReconciler(kube, dep, BuildOptions(cluster_name="t")))
    kube.add_handler(mgr.handle)
    kube.put("ingress", ing_raw())
    assert mgr.process_one(timeout=1) == WEB
    assert [m.stack_id for m in dep.deployed] == ["shop/web"]
    assert kube.get("ingress", NS, "web")["metadata"]["finalizers"] == [
        "ingress.k8s.aws/resources"]
    # an AWS failure goes back to the queue with backoff
    from controller.aws import AWSError

    dep.fail.append(AWSError("CreateListener", "Throttling", "x"))
    mgr.enqueue_all()
    assert mgr.process_one(timeout=1) == WEB
    assert [key for _, key in mgr.queue.pending_delayed()] == [WEB]


def test_tgb_manager_ignores_ingress_kinds() -> None:
    kube = kube_with(("ingress", ing_raw()))
    cfg = Config(aws_endpoint_url="http://127.0.0.1:1")
    mgr = Manager(kube, Reconciler(kube, None, cfg), cfg)  # type: ignore[arg-type]
    for kind in ("ingress", "ingressclass"):
        assert mgr.keys_for_event(kind, None, ing_raw()) == []


def test_kube_cluster_ingress_wire() -> None:
    from kubernetes import client

    from controller.kube import KubeCluster

    api = FakeAPI({
        "/apis/networking.k8s.io/v1/ingresses": [ing_raw()],
        "/apis/networking.k8s.io/v1/ingressclasses": [raw(ingress_class("alb"), "IngressClass")],
    })
    conf = client.Configuration()
    conf.host = api.url
    kc = KubeCluster(client.ApiClient(conf), ingress=True)
    seen: list[tuple[str, Any, Any]] = []
    kc.add_handler(lambda kind, old, new: seen.append((kind, old, new)))
    kc.start()
    try:
        assert kc.wait_synced(5)
        assert kc.get("ingress", NS, "web")["kind"] == "Ingress"  # type: ignore[index]
        assert [c["metadata"]["name"] for c in kc.list("ingressclass")] == ["alb"]
        out = kc.patch_ingress(NS, "web", {"metadata": {"finalizers": ["f"]}})
        assert out is not None and kc.get("ingress", NS, "web")["metadata"]["finalizers"] == ["f"]
        kc.patch_ingress_status(NS, "web", {"status": {"loadBalancer": {"ingress": []}}})
        tgb = {"apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
               "metadata": {"name": "t", "namespace": NS}, "spec": {"targetType": "ip"}}
        kc.create_tgb(tgb)
        # the TGB manager hears of the new binding right away (not only at resync)
        assert seen[-1][:2] == ("tgb", None) and kc.get("tgb", NS, "t") is not None
        kc.delete_tgb(NS, "t")  # 404 is fine
        kc.create_ingress_event(kc.get("ingress", NS, "web") or {}, "Normal", "R", "m")
        reqs = [(m, p.split("?")[0], ct) for m, p, ct, _ in api.requests]
        base = f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses/web"
        assert ("PATCH", base, "application/merge-patch+json") in reqs
        assert ("PATCH", base + "/status", "application/merge-patch+json") in reqs
        assert ("POST", f"/apis/elbv2.k8s.aws/v1beta1/namespaces/{NS}/targetgroupbindings",
                "application/json") in reqs
        assert ("DELETE", f"/apis/elbv2.k8s.aws/v1beta1/namespaces/{NS}/targetgroupbindings/t",
                "application/json") in reqs
        [ev] = [b for m, p, _, b in api.requests if m == "POST" and p.endswith("/events")]
        assert ev["involvedObject"]["kind"] == "Ingress"
        assert ev["source"] == {"component": "ingress"}
    finally:
        kc.stop()
        api.close()


def test_main_wires_the_ingress_manager() -> None:
    """controller/main.py builds the Deployer/GroupReconciler/IngressManager from Config."""
    from controller.main import _ingress_manager

    c = Config(aws_endpoint_url="http://127.0.0.1:1", ingress_subnets="subnet-a, subnet-b",
               vpc_id="vpc-1", cluster_name="c1", ingress_class="", ingress_workers=2)
    mgr = _ingress_manager(c, kube_with())
    assert isinstance(mgr, IngressManager) and mgr.worker_count == 2
    dep = mgr.reconciler.deployer
    assert (dep.subnets, dep.vpc_id, dep.cluster_name) == (["subnet-a", "subnet-b"], "vpc-1", "c1")
    assert dep.network() == ("vpc-1", ["subnet-a", "subnet-b"])  # configured: no EC2 call
    assert mgr.reconciler.ingress_class == "" and mgr.handlers.ingress_class == ""
