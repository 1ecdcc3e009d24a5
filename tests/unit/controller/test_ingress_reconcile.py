"""IngressGroup reconcile over the in-memory fakes (controllers/ingress/group_controller.go@v3.5.0):
finalizers, bindings, status, events, the delete path, and errors that deploy nothing."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client as k
from test_ingress_fixtures import A, ingress, ingress_class, path, rule, service

from controller.aws import AWSError
from controller.ingress.build import BuildOptions
from controller.ingress.classes import GroupID
from controller.ingress.reconcile import (
    GroupLoadError,
    GroupReconciler,
    binding_object,
    group_finalizer,
    group_ids_from_finalizers,
)
from controller.testing import FakeDeployer, FakeKube

_api = k.ApiClient()
NS = "shop"
WEB_GROUP = GroupID.implicit(NS, "web")


def raw(obj: Any, kind: str) -> dict[str, Any]:
    d: dict[str, Any] = _api.sanitize_for_serialization(obj)
    d["kind"] = kind
    d["apiVersion"] = "networking.k8s.io/v1" if kind.startswith("Ingress") else "v1"
    return d


class Env:
    def __init__(self, *ings: k.V1Ingress, services: tuple[k.V1Service, ...] | None = None,
                 classes: tuple[k.V1IngressClass, ...] = (ingress_class("alb"),)) -> None:
        self.kube = FakeKube(notify_on_write=False)
        for c in classes:
            self.kube.put("ingressclass", raw(c, "IngressClass"))
        for s in services if services is not None else (service("web"),):
            self.kube.put("service", raw(s, "Service"))
        for i in ings:
            self.put(i)
        self.deployer = FakeDeployer()
        self.rec = GroupReconciler(self.kube, self.deployer, BuildOptions(cluster_name="testbed"))

    def put(self, ing: k.V1Ingress, finalizers: list[str] | None = None) -> None:
        d = raw(ing, "Ingress")
        old = self.kube.get("ingress", NS, ing.metadata.name)
        fins = finalizers if finalizers is not None else (
            (old or {}).get("metadata", {}).get("finalizers"))
        if fins:
            d["metadata"]["finalizers"] = fins
        self.kube.put("ingress", d)

    def ing(self, name: str = "web") -> dict[str, Any] | None:
        return self.kube.get("ingress", NS, name)

    def tgbs(self) -> list[dict[str, Any]]:
        return self.kube.list("tgb")

    def events(self, reason: str | None = None) -> list[tuple[str, str, str, str]]:
        return [e for e in self.kube.events if reason is None or e[2] == reason]


def test_reconcile_adds_finalizer_binds_writes_status_and_reports() -> None:
    env = Env(ingress())
    res = env.rec.reconcile(WEB_GROUP)
    assert (res.requeue, res.requeue_after) == (False, 0)
    # finalizer of an implicit group (pkg/shared_constants, finalizer.go@v3.5.0)
    assert env.ing()["metadata"]["finalizers"] == ["ingress.k8s.aws/resources"]
    [model] = env.deployer.deployed
    assert model.stack_id == "shop/web" and model.members == ("shop/web",)
    # one ip TargetGroupBinding per target group, with the stack labels
    [tgb] = env.tgbs()
    b = model.bindings["shop/web-web:80"]
    assert tgb["metadata"]["name"] == b.name and tgb["metadata"]["namespace"] == NS
    assert tgb["metadata"]["labels"] == {"ingress.k8s.aws/stack-namespace": NS,
                                         "ingress.k8s.aws/stack-name": "web"}
    assert tgb["spec"] == {
        "targetGroupARN": FakeDeployer.arn("shop/web-web:80"), "targetType": "ip",
        "serviceRef": {"name": "web", "port": 80}, "ipAddressType": "ipv4",
        "targetGroupProtocol": "HTTP"}
    # status: the lower-cased DNS name and the listener ports
    assert env.ing()["status"]["loadBalancer"]["ingress"] == [
        {"hostname": "k8s-shop-web-0123.elb.localhost", "ports": [{"port": 80, "protocol": "TCP"}]}]
    assert env.events() == [("web", "Normal", "SuccessfullyReconciled", "Successfully reconciled")]

    # level-based: a second pass writes nothing new
    patches = (len(env.kube.ingress_patches), len(env.kube.ingress_status_patches))
    env.rec.reconcile(WEB_GROUP)
    assert (len(env.kube.ingress_patches), len(env.kube.ingress_status_patches)) == patches
    assert len(env.tgbs()) == 1 and len(env.deployer.deployed) == 2


def test_explicit_group_members_share_one_stack() -> None:
    grp = {A + "group.name": "shared"}
    a = ingress("a", annotations={**grp, A + "group.order": "2"})
    b = ingress("b", annotations=grp, rules=[rule("b.example.com", path("/"))])
    env = Env(a, b)
    gid = GroupID.explicit("shared")
    env.rec.reconcile(gid)
    assert group_finalizer(gid) == "group.ingress.k8s.aws/shared"
    for n in ("a", "b"):
        assert env.ing(n)["metadata"]["finalizers"] == ["group.ingress.k8s.aws/shared"]
        assert env.ing(n)["status"]["loadBalancer"]["ingress"][0]["hostname"]
    [model] = env.deployer.deployed
    assert model.members == ("shop/b", "shop/a")  # group.order 0 before 2
    assert {t["metadata"]["labels"]["ingress.k8s.aws/stack"] for t in env.tgbs()} == {"shared"}
    assert len(env.tgbs()) == 2  # one target group per (Ingress, Service, port)
    assert sorted(e[0] for e in env.events("SuccessfullyReconciled")) == ["a", "b"]


def test_deleted_member_removes_stack_bindings_then_finalizer() -> None:
    env = Env(ingress())
    env.rec.reconcile(WEB_GROUP)
    [tgb] = env.tgbs()
    # the TGB reconciler holds its own finalizer until it has deregistered the targets
    env.kube.patch_tgb(NS, tgb["metadata"]["name"],
                       {"metadata": {"finalizers": ["elbv2.k8s.aws/resources"]}})
    env.kube.delete("ingress", NS, "web")
    assert env.ing()["metadata"]["deletionTimestamp"]

    res = env.rec.reconcile(WEB_GROUP)
    assert env.deployer.deleted_stacks == ["shop/web"]
    assert env.kube.tgb_deletes == [(NS, tgb["metadata"]["name"])]
    assert env.tgbs()[0]["metadata"]["deletionTimestamp"]
    # the target group waits for its binding; the Ingress keeps its finalizer meanwhile
    assert res.requeue_after > 0 and env.deployer.deleted_tgs == []
    assert env.ing() is not None

    env.kube.patch_tgb(NS, tgb["metadata"]["name"], {"metadata": {"finalizers": []}})
    assert env.tgbs() == []
    res = env.rec.reconcile(WEB_GROUP)
    assert res.requeue_after == 0
    assert env.deployer.deleted_tgs == [FakeDeployer.arn("shop/web-web:80")]
    assert env.ing() is None  # last finalizer gone -> the API server deletes it
    assert len(env.deployer.deployed) == 1  # nothing deployed for an empty group


def test_member_leaving_the_group_loses_its_finalizer_after_redeploy() -> None:
    grp = {A + "group.name": "shared"}
    env = Env(ingress("a", annotations=grp), ingress("b", annotations=grp))
    gid = GroupID.explicit("shared")
    env.rec.reconcile(gid)
    assert len(env.tgbs()) == 2
    env.put(ingress("b", annotations={A + "group.name": "other"}))
    env.rec.reconcile(gid)
    assert env.deployer.deployed[-1].members == ("shop/a",)
    assert env.ing("b")["metadata"]["finalizers"] == []
    # b's binding belonged to the shared stack and is gone with its target group
    assert [t["metadata"]["labels"]["ingress.k8s.aws/stack"] for t in env.tgbs()] == ["shared"]
    assert env.deployer.deleted_tgs == [FakeDeployer.arn("shop/b-web:80")]


def test_replaced_target_group_gets_a_new_binding_and_the_old_one_goes() -> None:
    svc = service("web", ports=[("http", 80, 8080), ("alt", 81, 8081)])
    env = Env(ingress(), services=(svc,))
    env.rec.reconcile(WEB_GROUP)
    env.put(ingress(rules=[rule(None, path("/", "web", 81))]))
    env.rec.reconcile(WEB_GROUP)
    [tgb] = env.tgbs()
    assert tgb["spec"]["targetGroupARN"] == FakeDeployer.arn("shop/web-web:81")
    assert env.deployer.deleted_tgs == [FakeDeployer.arn("shop/web-web:80")]


def test_unsupported_value_is_a_warning_and_nothing_is_deployed() -> None:
    env = Env(ingress(annotations={A + "target-type": "instance"}))
    res = env.rec.reconcile(WEB_GROUP)
    # retried with backoff, as upstream returns build_model_error to controller-runtime
    assert res.requeue and res.requeue_after == 0
    assert env.deployer.deployed == [] and env.tgbs() == []
    [(name, typ, reason, msg)] = env.events()
    assert (name, typ, reason) == ("web", "Warning", "FailedBuildModel")
    assert msg.startswith("Failed build model due to")
    assert "status" not in env.ing() or not env.ing()["status"].get("loadBalancer")


def test_deploy_error_is_an_event_and_an_error() -> None:
    env = Env(ingress())
    env.deployer.fail.append(AWSError("CreateLoadBalancer", "Throttling", "slow down"))
    with pytest.raises(AWSError):
        env.rec.reconcile(WEB_GROUP)
    [(_, typ, reason, msg)] = env.events()
    assert (typ, reason) == ("Warning", "FailedDeployModel")
    assert msg == "Failed deploy model due to CreateLoadBalancer: Throttling: slow down"
    assert env.tgbs() == []


def test_finalizer_patch_failure_is_reported() -> None:
    env = Env(ingress())

    def boom(*_: Any) -> None:
        raise RuntimeError("conflict")

    env.kube.patch_ingress = boom  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        env.rec.reconcile(WEB_GROUP)
    assert [e[2:] for e in env.events()] == [
        ("FailedAddFinalizer", "Failed add finalizer due to conflict")]
    assert env.deployer.deployed == []


def test_broken_class_on_a_member_never_deletes_its_alb() -> None:
    """group_loader.go@v3.5.0 checkGroupMembershipType (issue #2731)."""
    env = Env(ingress(class_name="alb"))
    env.rec.reconcile(WEB_GROUP)
    env.put(ingress(class_name="typo"))
    with pytest.raises(GroupLoadError):
        env.rec.reconcile(WEB_GROUP)
    assert env.deployer.deleted_stacks == [] and len(env.tgbs()) == 1


def test_ingress_of_another_class_releases_its_group() -> None:
    env = Env(ingress(class_name="alb"), classes=(ingress_class("alb"),
                                                   ingress_class("nginx", "k8s.io/nginx")))
    env.rec.reconcile(WEB_GROUP)
    env.put(ingress(class_name="nginx"))
    env.rec.reconcile(WEB_GROUP)
    assert env.deployer.deleted_stacks == ["shop/web"]
    assert env.ing()["metadata"]["finalizers"] == []


def test_finalizer_names_and_binding_shape() -> None:
    assert group_finalizer(WEB_GROUP) == "ingress.k8s.aws/resources"
    d = {"metadata": {"namespace": NS, "name": "web", "finalizers": [
        "ingress.k8s.aws/resources", "group.ingress.k8s.aws/g1", "other/x"]}}
    assert group_ids_from_finalizers(d) == [WEB_GROUP, GroupID.explicit("g1")]
    env = Env(ingress())
    env.rec.reconcile(WEB_GROUP)
    b = env.deployer.deployed[0].bindings["shop/web-web:80"]
    obj = binding_object(b, "arn:x")
    assert (obj["apiVersion"], obj["kind"]) == ("elbv2.k8s.aws/v1beta1", "TargetGroupBinding")


def test_deployer_compares_what_elbv2_reports_with_what_it_sends() -> None:
    """ELBv2 reports defaults the model leaves out; equal rules must not be rewritten."""
    from controller.ingress.deploy import norm_actions, norm_conditions

    sent = [{"Type": "forward", "Order": 1, "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": "a"}]}}]
    described = [{"Type": "forward", "Order": 1, "TargetGroupArn": "a", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": "a", "Weight": 1}],
        "TargetGroupStickinessConfig": {"Enabled": False}}}]
    assert norm_actions(sent) == norm_actions(described)
    weighted = [{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": "a", "Weight": 90}, {"TargetGroupArn": "b", "Weight": 10}]}}]
    assert norm_actions(weighted) != norm_actions(described)
    redirect = [{"Type": "redirect", "RedirectConfig": {"StatusCode": "HTTP_301",
                                                         "Protocol": "HTTPS"}}]
    full = [{"Type": "redirect", "RedirectConfig": {
        "StatusCode": "HTTP_301", "Protocol": "HTTPS", "Host": "#{host}", "Path": "/#{path}",
        "Port": "#{port}", "Query": "#{query}"}}]
    assert norm_actions(redirect) == norm_actions(full)
    mine = [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/a"]}},
            {"Field": "host-header", "HostHeaderConfig": {"Values": ["x"]}}]
    theirs = [{"Field": "host-header", "Values": ["x"], "HostHeaderConfig": {"Values": ["x"]}},
              {"Field": "path-pattern", "Values": ["/a"], "PathPatternConfig": {"Values": ["/a"]}}]
    assert norm_conditions(mine) == norm_conditions(theirs)

