"""Readiness-gate condition writer: pod condition target-health.elbv2.k8s.aws/<tgb>.

Only pods that carry the gate are written; the patch is skipped when status, reason and
message are unchanged, and lastTransitionTime moves only when the status changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controller import metrics
from controller.kube import Kube, now_rfc3339
from controller.log import get_logger
from controller.resolve import Obj, pod_condition, pod_has_gate

GATE_PREFIX = "target-health.elbv2.k8s.aws/"
REGISTRATION_IN_PROGRESS: dict[str, Any] = {
    "State": "initial",
    "Reason": "Elb.RegistrationInProgress",
    "Description": "Target registration is in progress",
}
TGB_DELETED_HEALTH: dict[str, Any] = {
    "State": "healthy",
    "Description": "Target Group Binding is deleted",
}
log = get_logger("gates")


def gate_type(tgb_name: str) -> str:
    return GATE_PREFIX + tgb_name


def desired_condition(health: dict[str, Any] | None) -> tuple[str, str, str]:
    """(status, reason, message): True iff healthy, False for other states, Unknown if none."""
    if health is None:
        return "Unknown", "", ""
    status = "True" if health.get("State") == "healthy" else "False"
    return status, str(health.get("Reason") or ""), str(health.get("Description") or "")


def needs_probe(pod: Obj, cond_type: str, health: dict[str, Any] | None) -> bool:
    """The pod carries the gate and the target is not healthy yet (ALBC
    calculateReadinessGateTransition's needFurtherProbe)."""
    return pod_has_gate(pod, cond_type) and desired_condition(health)[0] != "True"


def update_pod_condition(
    kube: Kube,
    pod: Obj,
    cond_type: str,
    health: dict[str, Any] | None,
    tgb: str = "",
    now: Callable[[], str] = now_rfc3339,
) -> bool:
    """Write the gate condition for one pod; return True if the pod still needs probing
    (its condition is not True). Pods without the gate are left alone (False)."""
    if not pod_has_gate(pod, cond_type):
        return False
    status, reason, message = desired_condition(health)
    need_probe = status != "True"
    existing = pod_condition(pod, cond_type)
    if (
        existing is not None
        and existing.get("status") == status
        and (existing.get("reason") or "") == reason
        and (existing.get("message") or "") == message
    ):
        return need_probe
    cond: dict[str, Any] = {
        "type": cond_type,
        "status": status,
        "reason": reason,
        "message": message,
    }
    if existing is None or existing.get("status") != status:
        cond["lastTransitionTime"] = now()
    md = pod.get("metadata", {})
    ok = kube.patch_pod_status(md.get("namespace", ""), md.get("name", ""), md.get("uid", ""), cond)
    metrics.POD_CONDITION_PATCHES.labels(status).inc()
    if not ok:
        log.info("pod gone, condition not written", tgb=tgb, pod=md.get("name"))
        return False
    log.info(
        "pod condition updated",
        action="gate",
        tgb=tgb,
        namespace=md.get("namespace", ""),
        pod=md.get("name"),
        condition=cond_type,
        status=status,
        reason=reason,
        message=message,
    )
    return need_probe
