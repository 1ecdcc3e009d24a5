"""Test doubles: in-memory fakes of the Kubernetes and ELBv2 APIs for the unit tests
(tests/unit/controller) and the benchmark (bench/controller_bench.py).

They keep the real wire shapes (API JSON dicts, boto3 dicts) so the code under test runs
unchanged. No production module imports this one; it lives in the package, not under tests/,
so the benchmark can import it the same way the tests do.
"""

from __future__ import annotations

import builtins
import copy
import itertools
import threading
from collections.abc import Sequence
from typing import Any

from controller.aws import AWSError
from controller.kube import Handler, Obj, Store

_rv = itertools.count(1000)


class Conflict(Exception):
    """Stale resourceVersion in a patch (the API server's 409)."""

    status = 409


def merge_patch(target: Obj, patch: Obj) -> Obj:
    """RFC 7386 JSON merge patch (None deletes a key; lists replace)."""
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            merge_patch(target[k], v)
        else:
            target[k] = copy.deepcopy(v)
    return target


class FakeKube:
    """Kube protocol over dict stores; writes apply like the API server and fire handlers."""

    def __init__(self, notify_on_write: bool = True) -> None:
        self.stores: dict[str, Store] = {}
        self.handlers: list[Handler] = []
        self.events: list[tuple[str, str, str, str]] = []  # (tgb name, type, reason, message)
        self.pod_patches: list[tuple[str, str, Obj]] = []  # (ns, pod, condition)
        self.tgb_patches: list[tuple[str, str, Obj]] = []
        self.ingress_patches: list[tuple[str, str, Obj]] = []
        self.ingress_status_patches: list[tuple[str, str, Obj]] = []
        self.tgb_deletes: list[tuple[str, str]] = []
        self.notify_on_write = notify_on_write
        self._lock = threading.RLock()

    def _store(self, kind: str) -> Store:
        return self.stores.setdefault(kind, Store())

    def _notify(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        for h in self.handlers:
            h(kind, old, new)

    def add_handler(self, h: Handler) -> None:
        self.handlers.append(h)

    # test/bench helpers -------------------------------------------------------------------
    def put(self, kind: str, obj: Obj, notify: bool = True) -> Obj:
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        md["resourceVersion"] = str(next(_rv))
        md.setdefault("uid", f"uid-{kind}-{md.get('namespace', '')}-{md.get('name')}")
        md.setdefault("creationTimestamp", "2026-11-25T10:00:00Z")
        md.setdefault("generation", 1)
        with self._lock:
            old = self._store(kind).put(obj)
        if notify:
            self._notify(kind, old, obj)
        return obj

    def delete(self, kind: str, namespace: str, name: str, notify: bool = True) -> None:
        with self._lock:
            store = self._store(kind)
            obj = store.get(namespace, name)
            if obj is None:
                return
            if obj.get("metadata", {}).get("finalizers"):
                new = copy.deepcopy(obj)
                new["metadata"]["deletionTimestamp"] = "2026-11-25T11:00:00Z"
                new["metadata"]["resourceVersion"] = str(next(_rv))
                store.put(new)
                old: Obj | None = obj
                cur: Obj | None = new
            else:
                store.delete(namespace, name)
                old, cur = obj, None
        if notify:
            self._notify(kind, old, cur)

    # Kube protocol ------------------------------------------------------------------------
    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self._store(kind).get(namespace, name)

    def list(
        self, kind: str, namespace: str | None = None, labels: dict[str, str] | None = None
    ) -> list[Obj]:
        return self._store(kind).list(namespace, labels)

    def patch_tgb(self, namespace: str, name: str, patch: Obj) -> Obj | None:
        with self._lock:
            cur = self.get("tgb", namespace, name)
            if cur is None:
                raise KeyError(f"tgb {namespace}/{name} not found")
            want_rv = (patch.get("metadata") or {}).get("resourceVersion")
            if want_rv is not None and want_rv != cur["metadata"]["resourceVersion"]:
                raise Conflict(f"tgb {namespace}/{name}: resourceVersion {want_rv} is stale")
            new = merge_patch(copy.deepcopy(cur), patch)
            new["metadata"]["resourceVersion"] = str(next(_rv))
            self.tgb_patches.append((namespace, name, copy.deepcopy(patch)))
            if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
                self._store("tgb").delete(namespace, name)
                result: Obj | None = None
            else:
                self._store("tgb").put(new)
                result = new
        if self.notify_on_write:
            self._notify("tgb", cur, result)
        return copy.deepcopy(result) if result else None

    def patch_tgb_status(self, namespace: str, name: str, patch: Obj) -> None:
        with self._lock:
            cur = self.get("tgb", namespace, name)
            if cur is None:
                return
            new = merge_patch(copy.deepcopy(cur), patch)
            new["metadata"]["resourceVersion"] = str(next(_rv))
            self._store("tgb").put(new)
        if self.notify_on_write:
            self._notify("tgb", cur, new)

    def patch_pod_status(self, namespace: str, name: str, uid: str, condition: Obj) -> bool:
        with self._lock:
            cur = self.get("pod", namespace, name)
            if cur is None or cur["metadata"].get("uid") != uid:
                return False
            new = copy.deepcopy(cur)
            conds = new.setdefault("status", {}).setdefault("conditions", [])
            for c in conds:
                if c.get("type") == condition["type"]:
                    c.update(copy.deepcopy(condition))
                    break
            else:
                conds.append(copy.deepcopy(condition))
            new["metadata"]["resourceVersion"] = str(next(_rv))
            self._store("pod").put(new)
            self.pod_patches.append((namespace, name, copy.deepcopy(condition)))
        if self.notify_on_write:
            self._notify("pod", cur, new)
        return True

    def create_event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        self.events.append((obj.get("metadata", {}).get("name", ""), type_, reason, message))

    # IngressKube ----------------------------------------------------------------------------
    def _patch(self, kind: str, namespace: str, name: str, patch: Obj) -> tuple[Obj, Obj | None]:
        """Merge-patch an object like the API server: a resourceVersion in the patch is a
        precondition, and an object being deleted goes once its last finalizer is gone."""
        with self._lock:
            cur = self.get(kind, namespace, name)
            if cur is None:
                raise KeyError(f"{kind} {namespace}/{name} not found")
            want_rv = (patch.get("metadata") or {}).get("resourceVersion")
            if want_rv is not None and want_rv != cur["metadata"]["resourceVersion"]:
                raise Conflict(f"{kind} {namespace}/{name}: resourceVersion {want_rv} is stale")
            new = merge_patch(copy.deepcopy(cur), patch)
            new["metadata"]["resourceVersion"] = str(next(_rv))
            if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
                self._store(kind).delete(namespace, name)
                result: Obj | None = None
            else:
                self._store(kind).put(new)
                result = new
        if self.notify_on_write:
            self._notify(kind, cur, result)
        return cur, result

    def patch_ingress(self, namespace: str, name: str, patch: Obj) -> Obj | None:
        self.ingress_patches.append((namespace, name, copy.deepcopy(patch)))
        _, result = self._patch("ingress", namespace, name, patch)
        return copy.deepcopy(result) if result else None

    def patch_ingress_status(self, namespace: str, name: str, patch: Obj) -> None:
        self.ingress_status_patches.append((namespace, name, copy.deepcopy(patch)))
        self._patch("ingress", namespace, name, patch)

    def create_tgb(self, obj: Obj) -> Obj:
        md = obj.get("metadata") or {}
        if self.get("tgb", md.get("namespace", ""), md.get("name", "")) is not None:
            raise Conflict(f"tgb {md.get('namespace')}/{md.get('name')} already exists")
        return self.put("tgb", obj, notify=self.notify_on_write)

    def delete_tgb(self, namespace: str, name: str) -> None:
        self.tgb_deletes.append((namespace, name))
        self.delete("tgb", namespace, name, notify=self.notify_on_write)

    def create_ingress_event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        self.create_event(obj, type_, reason, message)

    def reasons(self) -> builtins.list[str]:
        return [e[2] for e in self.events]


class FakeELBv2:
    """ELBv2API in memory: targets keyed by (Id, Port), states as AWS names them.

    Registration -> initial/Elb.RegistrationInProgress; deregistration -> draining (if
    drain=True) else gone. auto_healthy turns initial targets healthy on the next describe.
    """

    def __init__(self, auto_healthy: bool = False, drain: bool = True) -> None:
        self.tgs: dict[str, dict[str, dict[str, Any]]] = {}
        self.auto_healthy = auto_healthy
        self.drain = drain
        self.calls: dict[str, int] = {}
        self.call_log: list[tuple[str, str, list[str]]] = []
        self.fail: dict[str, list[AWSError]] = {}
        self._lock = threading.Lock()

    def create_target_group(self, arn: str) -> str:
        self.tgs.setdefault(arn, {})
        return arn

    def _enter(
        self, op: str, arn: str, targets: Sequence[dict[str, Any]] | None
    ) -> dict[str, dict[str, Any]]:
        self.calls[op] = self.calls.get(op, 0) + 1
        self.call_log.append((op, arn, [f"{t['Id']}:{t['Port']}" for t in targets or []]))
        errs = self.fail.get(op)
        if errs:
            raise errs.pop(0)
        if arn not in self.tgs:
            raise AWSError(op, "TargetGroupNotFound", f"Target groups '{arn}' not found")
        return self.tgs[arn]

    @staticmethod
    def _desc(t: dict[str, Any]) -> dict[str, Any]:
        h: dict[str, Any] = {"State": t["state"]}
        if t.get("reason"):
            h["Reason"] = t["reason"]
        if t.get("desc"):
            h["Description"] = t["desc"]
        return {"Target": {"Id": t["id"], "Port": t["port"]}, "TargetHealth": h}

    def describe_target_health(
        self, tg_arn: str, targets: Sequence[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        with self._lock:
            tg = self._enter("DescribeTargetHealth", tg_arn, targets)
            if self.auto_healthy:
                for t in tg.values():
                    if t["state"] == "initial":
                        t.update(state="healthy", reason="", desc="")
            if not targets:
                return [self._desc(t) for t in tg.values()]
            out = []
            for q in targets:
                found = tg.get(f"{q['Id']}:{q['Port']}")
                if found is None:
                    out.append(
                        {
                            "Target": {"Id": q["Id"], "Port": q["Port"]},
                            "TargetHealth": {
                                "State": "unused",
                                "Reason": "Target.NotRegistered",
                                "Description": "Target is not registered to the target group",
                            },
                        }
                    )
                else:
                    out.append(self._desc(found))
            return out

    def register_targets(self, tg_arn: str, targets: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            tg = self._enter("RegisterTargets", tg_arn, targets)
            for q in targets:
                k = f"{q['Id']}:{q['Port']}"
                cur = tg.get(k)
                if cur is None or cur["state"] in ("draining", "unused"):
                    tg[k] = {
                        "id": q["Id"],
                        "port": int(q["Port"]),
                        "state": "initial",
                        "reason": "Elb.RegistrationInProgress",
                        "desc": "Target registration is in progress",
                    }

    def deregister_targets(self, tg_arn: str, targets: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            tg = self._enter("DeregisterTargets", tg_arn, targets)
            for q in targets:
                k = f"{q['Id']}:{q['Port']}"
                if k not in tg:
                    continue
                if self.drain:
                    tg[k].update(
                        state="draining",
                        reason="Target.DeregistrationInProgress",
                        desc="Target deregistration is in progress",
                    )
                else:
                    del tg[k]

    # helpers --------------------------------------------------------------------------------
    def set_health(self, arn: str, key: str, state: str, reason: str = "", desc: str = "") -> None:
        with self._lock:
            self.tgs[arn][key].update(state=state, reason=reason, desc=desc)

    def all_healthy(self, arn: str) -> None:
        with self._lock:
            for t in self.tgs[arn].values():
                if t["state"] == "initial":
                    t.update(state="healthy", reason="", desc="")

    def registered(self, arn: str, include_draining: bool = False) -> set[str]:
        with self._lock:
            return {
                k
                for k, t in self.tgs.get(arn, {}).items()
                if include_draining or t["state"] != "draining"
            }


class FakeDeployer:
    """controller.ingress.reconcile.DeployerAPI in memory: records the models it was asked to
    deploy and the stacks/target groups it deleted; ARNs derive from the model ids."""

    def __init__(self, dns_name: str = "K8s-Shop-Web-0123.elb.localhost") -> None:
        from controller.ingress.deploy import DeployResult

        self._result = DeployResult
        self.dns_name = dns_name
        self.deployed: list[Any] = []  # controller.ingress.model.Model
        self.deleted_stacks: list[str] = []
        self.deleted_tgs: list[str] = []
        self.stacks: dict[str, list[str]] = {}  # stack id -> target group ARNs in AWS
        self.fail: list[AWSError] = []

    @staticmethod
    def arn(tg_id: str) -> str:
        return "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/" + tg_id

    def deploy(self, model: Any, *, delete_stale: bool = True) -> Any:
        if self.fail:
            raise self.fail.pop(0)
        self.deployed.append(model)
        arns = {tg_id: self.arn(tg_id) for tg_id in model.target_groups}
        stale = [a for a in self.stacks.get(model.stack_id, []) if a not in arns.values()]
        self.stacks[model.stack_id] = [*arns.values(), *stale]
        if delete_stale:
            self.delete_target_groups(stale)
            stale = []
        return self._result("arn:lb/" + model.stack_id, self.dns_name, arns, stale)

    def delete_stack(self, stack_id: str, *, target_groups: bool = True) -> list[str]:
        if self.fail:
            raise self.fail.pop(0)
        self.deleted_stacks.append(stack_id)
        arns = list(self.stacks.get(stack_id, []))
        if target_groups:
            self.delete_target_groups(arns)
            return []
        return arns

    def delete_target_groups(self, arns: Sequence[str]) -> None:
        for a in arns:
            self.deleted_tgs.append(a)
            for tgs in self.stacks.values():
                if a in tgs:
                    tgs.remove(a)
