"""Why a baseline does not become healthy, told as soon as the cause is clear: pods that cannot
start (image, crash, config), or targets the ALB's health check keeps failing, with the AWS
reason and the likely fix. The most common mistake with a real app is a health check path it
does not serve."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from testbed.scenario.model import Scenario

# Container waiting reasons that do not fix themselves while the baseline waits
# (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#container-state-waiting)
STUCK_WAITING = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                           "ErrImageNeverPull", "CreateContainerConfigError",
                           "CreateContainerError", "CrashLoopBackOff", "RunContainerError"})


@dataclass(frozen=True)
class TargetState:
    target: str  # ip:port
    state: str
    reason: str
    description: str


@dataclass
class Diagnosis:
    clear: bool  # the cause is known (targets: if it lasts, see the baseline step)
    lines: list[str] = field(default_factory=list)  # what was seen
    fixes: list[str] = field(default_factory=list)  # the likely changes
    final: bool = False  # waiting longer cannot change it (pods stuck)

    def text(self) -> str:
        out = list(self.lines)
        out += [f"likely fix: {f}" for f in self.fixes]
        return "\n".join(out)


def target_states(elbv2: Any, tg_arn: str) -> list[TargetState]:
    out = elbv2.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
    return [TargetState(f"{t['Target']['Id']}:{t['Target'].get('Port', '')}",
                        t["TargetHealth"]["State"], t["TargetHealth"].get("Reason", ""),
                        t["TargetHealth"].get("Description", "")) for t in out]


def pod_problems(pods: list[client.V1Pod]) -> list[str]:
    """Pods whose containers are stuck (see STUCK_WAITING) or that cannot be scheduled."""
    out = []
    for pod in pods:
        name = pod.metadata.name
        for cs in (pod.status.init_container_statuses or []) + \
                (pod.status.container_statuses or []):
            waiting = cs.state.waiting if cs.state else None
            if waiting is not None and waiting.reason in STUCK_WAITING:
                msg = (waiting.message or "").strip().splitlines()
                out.append(f"pod {name} container {cs.name}: {waiting.reason}"
                           + (f" ({msg[0][:200]})" if msg else ""))
        for cond in pod.status.conditions or []:
            if cond.type == "PodScheduled" and cond.status == "False" and \
                    cond.reason == "Unschedulable":
                out.append(f"pod {name}: Unschedulable ({(cond.message or '')[:200]})")
    return out


def _codes(description: str) -> list[str]:
    match = re.search(r"\[([0-9, ]+)\]", description)
    return [c.strip() for c in match.group(1).split(",")] if match else []


def health_fixes(sc: Scenario, states: list[TargetState], probe_path: str | None,
                 target_port: int) -> list[str]:
    """The change each AWS reason points to (reason codes: ELBv2 TargetHealth,
    https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html)."""
    hc = sc.target_group.health_check
    fixes: list[str] = []
    reasons = {s.reason for s in states if s.state == "unhealthy"}
    if "Target.ResponseCodeMismatch" in reasons:
        codes = sorted({c for s in states for c in _codes(s.description)})
        shown = ", ".join(codes) or "other codes"
        if "404" in codes:
            other = f" such as the readinessProbe's {probe_path}" if probe_path and \
                probe_path != hc.path else ""
            fixes.append(f"the app answers {shown} on {hc.path}: set "
                         f"targetGroup.healthCheck.path to a path it serves{other}")
        else:
            fixes.append(f"the app answers {shown} on {hc.path} where the matcher expects "
                         f"{hc.matcher}: fix the endpoint (see the app's logs) or set "
                         "targetGroup.healthCheck.matcher to the codes a healthy app answers")
    if "Target.Timeout" in reasons:
        fixes.append(f"the app does not answer {hc.path} within timeoutSeconds "
                     f"({hc.timeout_seconds} s): make the endpoint answer faster or raise "
                     "targetGroup.healthCheck.timeoutSeconds")
    if "Target.FailedHealthChecks" in reasons:
        fixes.append(f"the health check cannot connect to port {target_port}: make the "
                     "container listen on that port (the Service's targetPort) on all "
                     "addresses (0.0.0.0), not only 127.0.0.1")
    return fixes


def explain(sc: Scenario, replicas: int, pods: list[client.V1Pod],
            states: list[TargetState], *, probe_path: str | None, target_port: int
            ) -> Diagnosis:
    """What holds the baseline back. `clear` when pods are stuck, or when every expected
    target is registered and unhealthy (the caller decides how long that must last)."""
    stuck = pod_problems(pods)
    if stuck:
        fix = []
        if any("Image" in s for s in stuck):
            fix.append("build or pull the image into the local Docker engine and use a tag "
                       "with imagePullPolicy IfNotPresent")
        if any("CrashLoopBackOff" in s or "RunContainerError" in s for s in stuck):
            fix.append("the container exits at start: see `kubectl logs` of the pod")
        # stuck containers stay stuck; an unschedulable pod may yet fit (a node joining), so
        # it is only what the report says if the baseline times out
        final = any("Unschedulable" not in line for line in stuck)
        return Diagnosis(final, stuck, fix, final=final)
    lines = [f"target {s.target}: {s.state}" + (f" / {s.reason}" if s.reason else "") +
             (f" {s.description}" if s.description else "") for s in states]
    if not states:
        lines.append("no target is registered in the target group yet")
    unhealthy = [s for s in states if s.state == "unhealthy"]
    stuck_unhealthy = len(unhealthy) >= replicas and not any(s.state == "healthy"
                                                             for s in states)
    fixes = health_fixes(sc, unhealthy, probe_path, target_port) if stuck_unhealthy else []
    # Only a 4xx names the cause for sure (the path is not served, or needs auth): an app that
    # warms up answers 5xx, times out or refuses for a while and then passes (the built-in
    # backoff-requeue does for 30 s), so those wait for the baseline's deadline.
    clear = stuck_unhealthy and all(
        s.reason == "Target.ResponseCodeMismatch" and _codes(s.description)
        and all(c.startswith("4") for c in _codes(s.description)) for s in unhealthy)
    return Diagnosis(clear, lines, fixes)
