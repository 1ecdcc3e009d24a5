"""TargetGroupBinding reconcile (IP targets), after ALBC pkg/targetgroupbinding/resource_manager.go.

Level-based and idempotent: every pass recomputes the desired targets from the caches and diffs
them against what ELBv2 reports, so a restarted controller converges from scratch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from controller import gates
from controller.aws import AWSError, TargetInfo, TargetsManager
from controller.config import Config
from controller.kube import Kube
from controller.log import get_logger
from controller.resolve import (
    NOT_CACHED,
    SERVICE_NAME_LABEL,
    BackendNotFound,
    Obj,
    PodEndpoint,
    Resolution,
    endpoints_data_from_legacy,
    endpoints_data_from_slices,
    find_service_port,
    pod_condition,
    pod_has_gate,
    resolve_pod_endpoints,
)

FINALIZER = "elbv2.k8s.aws/resources"
CHECKPOINT_ANNOTATION = "elbv2.k8s.aws/checkpoint"
# unix seconds of the last checkpoint write (ALBC pkg/targetgroupbinding/utils.go
# SaveTGBReconcileCheckpoint); --deferred-reconcile stale-checkpoint reads it
CHECKPOINT_TIMESTAMP_ANNOTATION = "elbv2.k8s.aws/checkpoint-timestamp"
COND_READY = "Ready"
log = get_logger("reconcile")

Key = tuple[str, str]


@dataclass
class Result:
    """controller-runtime style outcome: requeue_after > 0 polls at a fixed period,
    requeue=True goes through the per-key exponential backoff."""

    requeue: bool = False
    requeue_after: float = 0.0
    reason: str = ""
    # the checkpoint was unchanged and nothing was done: the caller may defer a full pass
    skipped: bool = False


def creation_millis(obj: Obj) -> int:
    ts = obj.get("metadata", {}).get("creationTimestamp")
    if not ts:
        return 0
    if isinstance(ts, dt.datetime):
        return int(ts.timestamp() * 1000)
    parsed = dt.datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    return int(parsed.timestamp() * 1000)


def compute_checkpoint(endpoints: list[PodEndpoint], spec: Obj) -> str:
    """sha256 of the sorted "ip:port:podCreationMillis" list plus a hash of the spec: equal
    checkpoints mean nothing the reconcile depends on has changed since the last full pass."""
    items = sorted(f"{e.ip}:{e.port}:{creation_millis(e.pod)}" for e in endpoints)
    spec_hash = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()
    return hashlib.sha256(("\n".join(items) + "\n" + spec_hash).encode()).hexdigest()


def need_gate_flip(endpoints: list[PodEndpoint], cond_type: str) -> bool:
    """Some resolved pod has this binding's gate condition, not True (ALBC v3.4.0+
    resource_manager.go needReadinessGateFlip, PR #4737); a condition never written does not
    count."""
    for e in endpoints:
        c = pod_condition(e.pod, cond_type)
        if c is not None and c.get("status") != "True":
            return True
    return False


def match_endpoints(
    endpoints: list[PodEndpoint], targets: list[TargetInfo]
) -> tuple[list[tuple[PodEndpoint, TargetInfo]], list[PodEndpoint], list[TargetInfo]]:
    """Diff by "ip:port": (matched pairs, endpoints to register, targets to deregister)."""
    by_key = {t.key: t for t in targets}
    ep_keys = set()
    matched: list[tuple[PodEndpoint, TargetInfo]] = []
    unmatched_eps: list[PodEndpoint] = []
    for e in endpoints:
        if e.key in ep_keys:
            continue
        ep_keys.add(e.key)
        t = by_key.get(e.key)
        if t is None:
            unmatched_eps.append(e)
        else:
            matched.append((e, t))
    unmatched_targets = [t for t in targets if t.key not in ep_keys]
    return matched, unmatched_eps, unmatched_targets


def arn_holder(tgbs: list[Obj], arn: str) -> Obj | None:
    """The TGB that owns an ARN: the oldest binding (then namespace/name) naming it."""
    cands = [t for t in tgbs if t.get("spec", {}).get("targetGroupARN") == arn]
    if not cands:
        return None
    return min(
        cands,
        key=lambda t: (
            creation_millis(t),
            t["metadata"].get("namespace", ""),
            t["metadata"].get("name", ""),
        ),
    )


class Reconciler:
    """Reconciles one TargetGroupBinding per call; safe to call concurrently for distinct keys."""

    def __init__(self, kube: Kube, targets: TargetsManager, cfg: Config) -> None:
        self.kube = kube
        self.targets = targets
        self.cfg = cfg

    # helpers ------------------------------------------------------------------------------
    def _event(self, tgb: Obj, type_: str, reason: str, message: str) -> None:
        self.kube.create_event(tgb, type_, reason, message)

    def _set_condition(
        self,
        tgb: Obj,
        status: str,
        reason: str,
        message: str,
        observed_generation: int | None = None,
    ) -> None:
        st = tgb.get("status") or {}
        conds = [c for c in st.get("conditions") or [] if c.get("type") != COND_READY]
        old = next((c for c in st.get("conditions") or [] if c.get("type") == COND_READY), None)
        if (
            old is not None
            and old.get("status") == status
            and old.get("reason") == reason
            and old.get("message") == message
            and (observed_generation is None or st.get("observedGeneration") == observed_generation)
        ):
            return
        cond = {
            "type": COND_READY,
            "status": status,
            "reason": reason,
            "message": message[:1024],
            "lastTransitionTime": (
                (old or {}).get("lastTransitionTime")
                if old is not None and old.get("status") == status
                else None
            )
            or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        patch: dict[str, Any] = {"status": {"conditions": conds + [cond]}}
        if observed_generation is not None:
            patch["status"]["observedGeneration"] = observed_generation
        md = tgb["metadata"]
        self.kube.patch_tgb_status(md.get("namespace", ""), md["name"], patch)

    def _set_checkpoint(self, tgb: Obj, value: str) -> None:
        if self.cfg.checkpoint == "off":  # before v2.9.1 there is no checkpoint
            return
        md = tgb["metadata"]
        if (md.get("annotations") or {}).get(CHECKPOINT_ANNOTATION, "") == value:
            return
        written = {
            CHECKPOINT_ANNOTATION: value,
            CHECKPOINT_TIMESTAMP_ANNOTATION: str(int(dt.datetime.now(dt.UTC).timestamp())),
        }
        out = self.kube.patch_tgb(
            md.get("namespace", ""), md["name"], {"metadata": {"annotations": written}}
        )
        md.setdefault("annotations", {}).update(written)
        if out:
            md["resourceVersion"] = out.get("metadata", {}).get("resourceVersion")

    def _draining(self, t: TargetInfo) -> bool:
        # ALBC v2.7.0+ (PR #3548) sets unhealthy.draining targets aside too
        return t.is_draining() or (self.cfg.unhealthy_draining and t.state == "unhealthy.draining")

    def _can_skip(self, md: Obj, checkpoint: str, res: Resolution, cond_type: str) -> bool:
        """The checkpoint early return, per release (--checkpoint)."""
        mode = self.cfg.checkpoint
        if mode == "off" or (md.get("annotations") or {}).get(CHECKPOINT_ANNOTATION) != checkpoint:
            return False
        if mode == "potential-ready":  # v2.9.1-v3.2.0: a pod may still turn ready
            return not res.potential_ready
        return not need_gate_flip(res.endpoints, cond_type)  # v3.4.0+, PR #4737

    def _pending(self, reason: str) -> Result:
        """Poll again: fixed period, or (--backoff-requeue, pre-v2.10) a plain requeue that
        goes through the per-key exponential backoff."""
        if self.cfg.backoff_requeue:
            return Result(requeue=True, reason=reason)
        return Result(requeue_after=self.cfg.requeue_seconds, reason=reason)

    # entry point --------------------------------------------------------------------------
    def reconcile(self, key: Key) -> Result:
        ns, name = key
        tgb = self.kube.get("tgb", ns, name)
        if tgb is None:
            return Result(reason="not found")
        tgb = json.loads(json.dumps(tgb))  # private copy: the cache object is shared
        md = tgb["metadata"]
        spec = tgb.get("spec") or {}
        finalizers = list(md.get("finalizers") or [])
        if md.get("deletionTimestamp"):
            if FINALIZER in finalizers:
                if spec.get("targetType") == "ip":  # nothing was registered otherwise
                    self.cleanup(tgb)
                finalizers.remove(FINALIZER)
                self.kube.patch_tgb(
                    ns,
                    name,
                    {
                        "metadata": {
                            "finalizers": finalizers,
                            "resourceVersion": md.get("resourceVersion"),
                        }
                    },
                )
                log.info("finalizer removed", tgb=f"{ns}/{name}")
            return Result(reason="deleted")

        arn = str(spec.get("targetGroupARN") or "")
        holder = arn_holder(self.kube.list("tgb"), arn)
        if holder is not None and (
            holder["metadata"].get("namespace"),
            holder["metadata"]["name"],
        ) != (ns, name):
            hmd = holder["metadata"]
            msg = (
                f"target group {arn} is already bound by TargetGroupBinding "
                f"{hmd.get('namespace')}/{hmd['name']}"
            )
            log.warning("duplicate target group ARN, refusing", tgb=f"{ns}/{name}", arn=arn)
            self._event(tgb, "Warning", "DuplicateTargetGroupARN", msg)
            self._set_condition(tgb, "False", "DuplicateTargetGroupARN", msg)
            return Result(reason="duplicate ARN")

        if FINALIZER not in finalizers:
            out = self.kube.patch_tgb(
                ns,
                name,
                {
                    "metadata": {
                        "finalizers": finalizers + [FINALIZER],
                        "resourceVersion": md.get("resourceVersion"),
                    }
                },
            )
            if out:
                md["resourceVersion"] = out.get("metadata", {}).get("resourceVersion")
            md["finalizers"] = finalizers + [FINALIZER]

        if spec.get("targetType") != "ip":
            msg = f"targetType {spec.get('targetType')!r} is not supported (ip only)"
            self._event(tgb, "Warning", "UnsupportedTargetType", msg)
            self._set_condition(tgb, "False", "UnsupportedTargetType", msg)
            return Result(reason="unsupported targetType")

        try:
            return self._reconcile_ip(tgb)
        except AWSError as e:
            log.error(
                "AWS call failed",
                tgb=f"{ns}/{name}",
                arn=arn,
                operation=e.operation,
                aws_code=e.code,
                aws_message=e.message,
            )
            reason = "TargetGroupNotFound" if e.code == "TargetGroupNotFound" else "FailedReconcile"
            self._event(tgb, "Warning", reason, str(e))
            self._set_condition(tgb, "False", reason, str(e))
            raise

    def resolve(self, tgb: Obj) -> Resolution:
        """Resolve the TGB's endpoints from the caches (raises BackendNotFound)."""
        ns = tgb["metadata"].get("namespace", "")
        ref = tgb.get("spec", {}).get("serviceRef") or {}
        svc_name = str(ref.get("name", ""))
        svc = self.kube.get("service", ns, svc_name)
        svc_port = find_service_port(svc, ref.get("port", ""), svc_name)
        if not self.cfg.endpoint_slices:
            eps = self.kube.get("endpoints", ns, svc_name)
            if eps is None:
                raise BackendNotFound(f'endpoints "{svc_name}" not found')
            data = endpoints_data_from_legacy(eps)
        else:
            slices = self.kube.list("endpointslice", ns, {SERVICE_NAME_LABEL: svc_name})
            if self.cfg.address_type_filter:
                # ALBC v3.4.1+ (PR #4783): IPv6 slices for an ipv6 binding, IPv4 otherwise
                family = "IPv6" if tgb.get("spec", {}).get("ipAddressType") == "ipv6" else "IPv4"
                slices = [s for s in slices if s.get("addressType", family) == family]
            data = endpoints_data_from_slices(slices)
        return resolve_pod_endpoints(
            svc_port,
            data,
            ns,
            get_pod=lambda n, p: self.kube.get("pod", n, p),
            get_node=lambda n: self.kube.get("node", "", n),
            gate=gates.gate_type(tgb["metadata"]["name"]),
            rules=self.cfg,
        )

    def _reconcile_ip(self, tgb: Obj) -> Result:
        md = tgb["metadata"]
        ns, name = md.get("namespace", ""), md["name"]
        tgb_id = f"{ns}/{name}"
        spec = tgb.get("spec") or {}
        arn = str(spec.get("targetGroupARN") or "")
        cond_type = gates.gate_type(name)
        try:
            res = self.resolve(tgb)
        except BackendNotFound as e:
            log.warning("backend not found, deregistering all targets", tgb=tgb_id, error=str(e))
            self._event(tgb, "Warning", "BackendNotFound", str(e))
            self._set_checkpoint(tgb, "")
            self.cleanup(tgb)
            self._set_condition(tgb, "False", "BackendNotFound", str(e))
            return Result(reason="backend not found")
        for addr, pod_name, why in res.skipped:
            if why == NOT_CACHED:  # the race of ALBC #3299: the report shows it (action skip)
                log.info("endpoint skipped, pod not in cache", action="skip", tgb=tgb_id,
                         namespace=ns, target=addr, pod=pod_name, reason=why,
                         retry=self.cfg.missing_pod == "poll")
            else:
                log.debug("endpoint skipped", tgb=tgb_id, target=addr, pod=pod_name, why=why)

        checkpoint = compute_checkpoint(res.endpoints, spec)
        if self._can_skip(md, checkpoint, res, cond_type):
            return Result(reason="checkpoint unchanged", skipped=True)

        targets = self.targets.list_targets(arn)
        not_draining = [t for t in targets if not self._draining(t)]
        matched, to_register, to_deregister = match_endpoints(res.endpoints, not_draining)

        # Any change resets the checkpoint first, so a crash (or a pod gone before the next
        # pass) cannot leave a checkpoint that skips the follow-up (ALBC RM "Any change that we
        # perform should reset the checkpoint", which also counts a gate still to flip).
        if (
            to_register
            or to_deregister
            or res.potential_ready
            or any(gates.needs_probe(ep.pod, cond_type, t.health) for ep, t in matched)
        ):
            self._set_checkpoint(tgb, "")
        if to_deregister:
            log.info(
                "deregistering targets",
                action="deregister",
                tgb=tgb_id,
                namespace=ns,
                arn=arn,
                targets=[{"target": t.key} for t in to_deregister],
            )
            self.targets.deregister_targets(arn, to_deregister)
        if to_register:
            log.info(
                "registering targets",
                action="register",
                tgb=tgb_id,
                namespace=ns,
                arn=arn,
                targets=[{"target": e.key, "pod": e.pod_name} for e in to_register],
            )
            self.targets.register_targets(arn, [TargetInfo(e.ip, e.port) for e in to_register])

        pending = False
        for ep, t in matched:
            pending |= gates.update_pod_condition(self.kube, ep.pod, cond_type, t.health, tgb_id)
        for ep in to_register:
            pending |= gates.update_pod_condition(
                self.kube, ep.pod, cond_type, gates.REGISTRATION_IN_PROGRESS, tgb_id
            )

        if pending:
            if to_register or any(t.is_initial() for _, t in matched):
                # even pre-v2.10 ALBC polled at the fixed period while targets were initial
                return Result(requeue_after=self.cfg.requeue_seconds, reason="monitor targetHealth")
            return self._pending("monitor targetHealth")
        if res.potential_ready:
            return self._pending("monitor potential ready endpoints")
        self._set_checkpoint(tgb, checkpoint)
        self._set_condition(
            tgb,
            "True",
            "SuccessfullyReconciled",
            "Successfully reconciled",
            observed_generation=int(md.get("generation") or 0),
        )
        self._event(tgb, "Normal", "SuccessfullyReconciled", "Successfully reconciled")
        return Result(reason="reconciled")

    def cleanup(self, tgb: Obj) -> None:
        """Deregister every target of the group and (v2.4.1+) force the TGB's gates True."""
        md = tgb["metadata"]
        arn = str(tgb.get("spec", {}).get("targetGroupARN") or "")
        try:
            targets = self.targets.list_targets(arn)
            if targets:
                log.info(
                    "deregistering all targets",
                    action="deregister",
                    tgb=f"{md.get('namespace')}/{md['name']}",
                    namespace=md.get("namespace", ""),
                    arn=arn,
                    targets=[{"target": t.key} for t in targets],
                )
                self.targets.deregister_targets(arn, targets)
        except AWSError as e:
            if e.code not in ("TargetGroupNotFound", "ValidationError"):
                raise
            log.info("target group gone, nothing to deregister", arn=arn, aws_code=e.code)
        self.targets.invalidate(arn)
        if not self.cfg.gates_true_on_delete:  # before v2.4.1 (PR #2524)
            return
        cond_type = gates.gate_type(md["name"])
        for pod in self.kube.list("pod", md.get("namespace", "")):
            if pod_has_gate(pod, cond_type):
                gates.update_pod_condition(
                    self.kube,
                    pod,
                    cond_type,
                    gates.TGB_DELETED_HEALTH,
                    f"{md.get('namespace')}/{md['name']}",
                )
