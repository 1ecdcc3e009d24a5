"""IngressGroup reconcile: load the group, finalizers, build, deploy, bindings, status, events.

Follows kubernetes-sigs/aws-load-balancer-controller v3.5.0 (read, not copied):

- controllers/ingress/group_controller.go ``reconcile``: load the group; add the group finalizer
  to every active member (event FailedAddFinalizer); build the model (FailedBuildModel) and
  deploy it (FailedDeployModel); write ``status.loadBalancer.ingress[0]`` = the lower-cased DNS
  name and the listener ports on every member (FailedUpdateStatus); remove the finalizer from
  inactive members (FailedRemoveFinalizer); Normal event SuccessfullyReconciled
  "Successfully reconciled" on every member. A group without active members deploys the empty
  stack, i.e. deletes everything, before its last finalizer goes.
- pkg/ingress/group_loader.go ``Load`` / ``checkGroupMembershipType``: active members are
  managed, not deleted Ingresses of the group; inactive members are Ingresses that still hold
  the group finalizer but are deleted, left the group or are no longer ours. An invalid class on
  an Ingress that holds the finalizer fails the load (issue #2731: a class typo must not
  delete the ALB); an invalid group name just means leaving the group.
- pkg/ingress/finalizer.go: the finalizer is ``group.ingress.k8s.aws/<group>`` for an explicit
  group, ``ingress.k8s.aws/resources`` for an implicit one (shared_constants).
- pkg/deploy/elbv2/target_group_binding_synthesizer.go / _manager.go: bindings are found by the
  stack labels and matched by targetGroupARN; new ones are created, changed ones updated, the
  rest deleted -- and the stale target groups are deleted only once their bindings are gone
  (upstream polls up to 60 s for that; here the group is requeued instead, so a worker never
  blocks on the TargetGroupBinding reconciler).

The TargetGroupBindings made here are ordinary ``ip`` bindings: the existing TGB reconciler
(controller/reconcile.py) registers targets, drives readiness gates and drains on deletion.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from controller.ingress import model as m
from controller.ingress import objects
from controller.ingress.build import BuildOptions, build
from controller.ingress.classes import (
    GroupID,
    IngressGroup,
    group_id_for,
    is_managed,
    sort_members,
)
from controller.ingress.deploy import DeployResult
from controller.ingress.errors import IngressModelError
from controller.kube import TGB_GROUP, TGB_VERSION, IngressKube, Obj
from controller.log import get_logger
from controller.reconcile import Result

log = get_logger("ingress.reconcile")

# pkg/shared_constants/finalizers.go@v3.5.0
IMPLICIT_GROUP_FINALIZER = "ingress.k8s.aws/resources"
EXPLICIT_GROUP_FINALIZER_PREFIX = "group.ingress.k8s.aws/"

# pkg/k8s/events.go@v3.5.0
REASON_SUCCESS = "SuccessfullyReconciled"
REASON_FAILED_ADD_FINALIZER = "FailedAddFinalizer"
REASON_FAILED_REMOVE_FINALIZER = "FailedRemoveFinalizer"
REASON_FAILED_BUILD_MODEL = "FailedBuildModel"
REASON_FAILED_DEPLOY_MODEL = "FailedDeployModel"
REASON_FAILED_UPDATE_STATUS = "FailedUpdateStatus"

# How soon to look again while deleted TargetGroupBindings still hold their target groups.
TGB_DELETION_POLL_SECONDS = 2.0


def group_finalizer(gid: GroupID) -> str:
    """finalizer.go buildGroupFinalizer."""
    return (
        EXPLICIT_GROUP_FINALIZER_PREFIX + gid.name if gid.is_explicit else IMPLICIT_GROUP_FINALIZER
    )


def group_ids_from_finalizers(ing: Obj) -> list[GroupID]:
    """group_loader.go LoadGroupIDsPendingFinalization: the groups an Ingress still holds."""
    md = ing.get("metadata") or {}
    out = []
    for f in md.get("finalizers") or []:
        if f == IMPLICIT_GROUP_FINALIZER:
            out.append(GroupID.implicit(str(md.get("namespace") or ""), str(md.get("name"))))
        elif f.startswith(EXPLICIT_GROUP_FINALIZER_PREFIX):
            out.append(GroupID.explicit(f[len(EXPLICIT_GROUP_FINALIZER_PREFIX) :]))
    return out


def stack_labels(gid: GroupID) -> dict[str, str]:
    """tracking/provider.go StackLabels with the ingress prefix (as build.py puts on bindings)."""
    if gid.is_explicit:
        return {m.LABEL_STACK: gid.name}
    return {m.LABEL_STACK_NAMESPACE: gid.namespace, m.LABEL_STACK_NAME: gid.name}


def _key(obj: Obj) -> str:
    md = obj.get("metadata") or {}
    return f"{md.get('namespace', '')}/{md.get('name')}"


def _has_group_finalizer(gid: GroupID, ing: Obj) -> bool:
    """group_loader.go containsGroupFinalizer: an implicit group's finalizer counts only on the
    Ingress that is that group."""
    md = ing.get("metadata") or {}
    if group_finalizer(gid) not in (md.get("finalizers") or []):
        return False
    return gid.is_explicit or gid == GroupID.implicit(
        md.get("namespace") or "", str(md.get("name"))
    )


class DeployerAPI(Protocol):
    """What the reconciler needs from controller.ingress.deploy.Deployer."""

    def deploy(self, model: m.Model, *, delete_stale: bool = True) -> DeployResult: ...

    def delete_stack(self, stack_id: str, *, target_groups: bool = True) -> list[str]: ...

    def delete_target_groups(self, arns: Sequence[str]) -> None: ...


class GroupLoadError(Exception):
    """The group cannot be loaded (upstream returns the error; no event)."""


@dataclass
class LoadedGroup:
    id: GroupID
    members: list[Obj]  # raw API objects, in group order
    models: list[Any]  # the same members as kubernetes client models
    inactive: list[Obj] = field(default_factory=list)


class GroupReconciler:
    """Reconcile one IngressGroup (key: its GroupID)."""

    def __init__(
        self,
        kube: IngressKube,
        deployer: DeployerAPI,
        options: BuildOptions,
        *,
        ingress_class: str = "alb",
        poll_seconds: float = TGB_DELETION_POLL_SECONDS,
    ) -> None:
        self.kube = kube
        self.deployer = deployer
        self.options = options
        self.ingress_class = ingress_class
        self.poll_seconds = poll_seconds

    # ---- load --------------------------------------------------------------------------------

    def load(self, gid: GroupID) -> LoadedGroup:
        classes = [objects.ingress_class_from_dict(c) for c in self.kube.list("ingressclass")]
        active: list[tuple[Any, Obj]] = []
        inactive: list[Obj] = []
        for raw in self.kube.list("ingress"):
            has_fin = _has_group_finalizer(gid, raw)
            if (raw.get("metadata") or {}).get("deletionTimestamp"):
                if has_fin:
                    inactive.append(raw)
                continue
            ing = objects.ingress_from_dict(raw)
            try:
                managed = is_managed(ing, classes, ingress_class=self.ingress_class)
            except IngressModelError as e:
                if has_fin:  # issue #2731: never drop a member because its class broke
                    raise GroupLoadError(
                        f"Ingress: {_key(raw)}: Ingress has invalid IngressClass configuration: "
                        f"{e.message}"
                    ) from None
                continue
            try:
                member_of = group_id_for(ing) if managed else None
            except IngressModelError:
                member_of = None  # a bad group name means leaving the group
            if member_of == gid:
                active.append((ing, raw))
            elif has_fin:
                inactive.append(raw)
        try:
            ordered = sort_members(i for i, _ in active)
        except IngressModelError as e:
            raise GroupLoadError(e.message) from None
        raw_by_key = {_key(r): r for _, r in active}
        members = [raw_by_key[f"{i.metadata.namespace or ''}/{i.metadata.name}"] for i in ordered]
        return LoadedGroup(gid, members, list(ordered), inactive)

    # ---- reconcile ---------------------------------------------------------------------------

    def _events(self, objs: Sequence[Obj], type_: str, reason: str, message: str) -> None:
        for o in objs:
            self.kube.create_ingress_event(o, type_, reason, message)

    def reconcile(self, gid: GroupID) -> Result:
        group = self.load(gid)
        gkey = str(gid)
        try:
            self._add_finalizers(group)
        except Exception as e:
            self._events(
                group.members,
                "Warning",
                REASON_FAILED_ADD_FINALIZER,
                f"Failed add finalizer due to {e}",
            )
            raise
        if group.members:
            outcome = self._deploy(group)
            if outcome is not None:
                return outcome
        else:
            pending = self._delete_stack(gid)
            if pending:
                log.info("waiting for bindings to go", group=gkey, target_groups=pending)
                return Result(requeue_after=self.poll_seconds, reason="bindings deleting")
        try:
            self._remove_finalizers(group)
        except Exception as e:
            self._events(
                group.members,
                "Warning",
                REASON_FAILED_REMOVE_FINALIZER,
                f"Failed remove finalizer due to {e}",
            )
            raise
        self._events(group.members, "Normal", REASON_SUCCESS, "Successfully reconciled")
        log.info(
            "ingress group reconciled",
            group=gkey,
            members=[_key(o) for o in group.members],
            inactive=[_key(o) for o in group.inactive],
        )
        return Result()

    def _add_finalizers(self, group: LoadedGroup) -> None:
        fin = group_finalizer(group.id)
        for raw in group.members:
            md = raw.get("metadata") or {}
            current = list(md.get("finalizers") or [])
            if fin in current:
                continue
            out = self.kube.patch_ingress(
                md.get("namespace", ""),
                md["name"],
                {
                    "metadata": {
                        "finalizers": [*current, fin],
                        "resourceVersion": md.get("resourceVersion"),
                    }
                },
            )
            if out is not None:
                raw["metadata"] = copy.deepcopy(out.get("metadata", md))
            log.info("finalizer added", ingress=_key(raw), finalizer=fin)

    def _remove_finalizers(self, group: LoadedGroup) -> None:
        fin = group_finalizer(group.id)
        for raw in group.inactive:
            md = raw.get("metadata") or {}
            current = list(md.get("finalizers") or [])
            if fin not in current:
                continue
            self.kube.patch_ingress(
                md.get("namespace", ""),
                md["name"],
                {
                    "metadata": {
                        "finalizers": [f for f in current if f != fin],
                        "resourceVersion": md.get("resourceVersion"),
                    }
                },
            )
            log.info("finalizer removed", ingress=_key(raw), finalizer=fin)

    def _services(self, group: LoadedGroup) -> list[Any]:
        namespaces = {(o.get("metadata") or {}).get("namespace", "") for o in group.members}
        return [
            objects.service_from_dict(s)
            for ns in sorted(namespaces)
            for s in self.kube.list("service", ns)
        ]

    def _deploy(self, group: LoadedGroup) -> Result | None:
        """Build + deploy + bindings + status; a Result ends the pass early."""
        gkey = str(group.id)
        try:
            model = build(
                IngressGroup(group.id, tuple(group.models)), self._services(group), self.options
            )
        except IngressModelError as e:
            # nothing deployed; retried through the rate limiter, as upstream returns the error
            # to controller-runtime (v3.5.0 controllers/ingress/group_controller.go
            # buildAndDeployModel, "build_model_error"), so a failure that no watch event
            # undoes still heals
            log.warning("model build failed", group=gkey, reason=e.reason, error=e.message)
            self._events(group.members, "Warning", REASON_FAILED_BUILD_MODEL, e.event_message)
            return Result(requeue=True, reason="build failed")
        try:
            res = self.deployer.deploy(model, delete_stale=False)
            pending = self._sync_bindings(group.id, model, res)
        except Exception as e:  # AWS, or the TargetGroupBinding writes (a deploy step upstream)
            log.error(
                "deploy failed",
                group=gkey,
                error=str(e),
                operation=getattr(e, "operation", None),
                aws_code=getattr(e, "code", None),
            )
            self._events(
                group.members,
                "Warning",
                REASON_FAILED_DEPLOY_MODEL,
                f"Failed deploy model due to {e}",
            )
            raise
        try:
            self._update_status(group, res.dns_name.lower(), [ls.port for ls in model.listeners])
        except Exception as e:
            self._events(
                group.members,
                "Warning",
                REASON_FAILED_UPDATE_STATUS,
                f"Failed update status due to {e}",
            )
            raise
        if pending:
            log.info("waiting for bindings to go", group=gkey, target_groups=pending)
            return Result(requeue_after=self.poll_seconds, reason="bindings deleting")
        return None

    # ---- TargetGroupBindings -----------------------------------------------------------------

    def _bound_arns(self) -> set[str]:
        return {
            str((t.get("spec") or {}).get("targetGroupARN") or "") for t in self.kube.list("tgb")
        }

    def _delete_unneeded_bindings(self, gid: GroupID, keep_arns: set[str]) -> None:
        for tgb in self.kube.list("tgb", labels=stack_labels(gid)):
            md = tgb.get("metadata") or {}
            arn = (tgb.get("spec") or {}).get("targetGroupARN")
            if arn in keep_arns or md.get("deletionTimestamp"):
                continue
            self.kube.delete_tgb(md.get("namespace", ""), md["name"])
            log.info("targetgroupbinding deleted", tgb=_key(tgb), arn=arn)

    def _delete_target_groups_when_unbound(self, arns: Sequence[str]) -> list[str]:
        """Delete the target groups no binding references any more; return the others."""
        bound = self._bound_arns()
        free = [a for a in arns if a not in bound]
        self.deployer.delete_target_groups(free)
        return [a for a in arns if a in bound]

    def _sync_bindings(self, gid: GroupID, model: m.Model, res: DeployResult) -> list[str]:
        """Create/update the model's bindings, delete the stack's others, then the stale
        target groups whose bindings are gone; return the target groups still waiting."""
        existing = {
            str((t.get("spec") or {}).get("targetGroupARN")): t
            for t in self.kube.list("tgb", labels=stack_labels(gid))
        }
        wanted: set[str] = set()
        for tg_id, b in model.bindings.items():
            arn = res.target_group_arns[tg_id]
            wanted.add(arn)
            body = binding_object(b, arn)
            have = existing.get(arn)
            if have is None:
                self.kube.create_tgb(body)
                log.info("targetgroupbinding created", tgb=f"{b.namespace}/{b.name}", arn=arn)
                continue
            patch = _binding_patch(have, body)
            if patch:
                hmd = have["metadata"]
                self.kube.patch_tgb(hmd.get("namespace", ""), hmd["name"], patch)
                log.info("targetgroupbinding updated", tgb=_key(have), arn=arn)
        self._delete_unneeded_bindings(gid, wanted)
        return self._delete_target_groups_when_unbound(res.stale_target_groups)

    def _delete_stack(self, gid: GroupID) -> list[str]:
        """The empty stack: load balancer (with listeners and rules), bindings, then target
        groups once unbound; returns the target groups still waiting for their bindings."""
        arns = self.deployer.delete_stack(str(gid), target_groups=False)
        self._delete_unneeded_bindings(gid, set())
        return self._delete_target_groups_when_unbound(arns)

    # ---- status ------------------------------------------------------------------------------

    def _update_status(self, group: LoadedGroup, dns: str, ports: list[int]) -> None:
        """group_controller.go updateIngressStatus: one entry, hostname + listener ports."""
        want = [{"hostname": dns, "ports": [{"port": p, "protocol": "TCP"} for p in ports]}]
        for raw in group.members:
            have = ((raw.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            if _status_equal(have, want):
                continue
            md = raw.get("metadata") or {}
            self.kube.patch_ingress_status(
                md.get("namespace", ""), md["name"], {"status": {"loadBalancer": {"ingress": want}}}
            )
            log.info("ingress status updated", ingress=_key(raw), hostname=dns)


def _status_equal(have: list[Obj], want: list[Obj]) -> bool:
    def norm(entries: list[Obj]) -> list[tuple[Any, ...]]:
        return [
            (
                e.get("hostname") or "",
                e.get("ip") or "",
                tuple(sorted(int(p.get("port", 0)) for p in e.get("ports") or [])),
            )
            for e in entries
        ]

    return norm(have) == norm(want)


def binding_object(b: m.TargetGroupBinding, arn: str) -> Obj:
    """target_group_binding_manager.go Create: name/namespace from the model, the stack labels,
    spec from buildK8sTargetGroupBindingSpec (no networking: no security groups here)."""
    return {
        "apiVersion": f"{TGB_GROUP}/{TGB_VERSION}",
        "kind": "TargetGroupBinding",
        "metadata": {"name": b.name, "namespace": b.namespace, "labels": dict(b.labels)},
        "spec": {
            "targetGroupARN": arn,
            "targetType": b.target_type,
            "serviceRef": {"name": b.service_name, "port": b.service_port},
            "ipAddressType": b.ip_address_type,
            "targetGroupProtocol": b.target_group_protocol,
        },
    }


def _binding_patch(have: Obj, want: Obj) -> Obj:
    """target_group_binding_manager.go Update: labels and the mutable spec fields."""
    patch: Obj = {}
    labels = (have.get("metadata") or {}).get("labels") or {}
    if labels != want["metadata"]["labels"]:
        drop = {k: None for k in labels if k not in want["metadata"]["labels"]}
        patch["metadata"] = {"labels": {**drop, **want["metadata"]["labels"]}}
    spec = have.get("spec") or {}
    if spec.get("serviceRef") != want["spec"]["serviceRef"]:
        patch["spec"] = {"serviceRef": want["spec"]["serviceRef"]}
    return patch
