"""The rules a rolling update behind an ALB needs, one small function each over `Facts`.

Each finding has a stable rule id, a severity (`violation` fails `testbed check`; `warning`
and `unknown` do not), a one-line verdict with the numbers, the reason and upstream
references. docs/check.md explains every rule at more length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from testbed.check.facts import GATE_CONDITION_PREFIX, Facts
from testbed.scenario.plan import GATE_INJECT_LABEL

Severity = Literal["ok", "warning", "violation", "unknown"]
SEVERITIES: tuple[Severity, ...] = ("violation", "warning", "unknown", "ok")

GATE_DOCS = ("https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/deploy/"
             "pod_readiness_gate/")
ISSUES = "https://github.com/kubernetes-sigs/aws-load-balancer-controller/issues/"
HOOKS_DOCS = "https://kubernetes.io/docs/concepts/containers/container-lifecycle-hooks/"
TERMINATION_DOCS = ("https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/"
                    "#pod-termination")
PROBE_DOCS = ("https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/"
              "#container-probes")
ROLLING_DOCS = ("https://kubernetes.io/docs/concepts/workloads/controllers/deployment/"
                "#rolling-update-deployment")
RECREATE_DOCS = ("https://kubernetes.io/docs/concepts/workloads/controllers/deployment/"
                 "#recreate-deployment")
IDLE_DOCS = ("https://docs.aws.amazon.com/elasticloadbalancing/latest/application/"
             "application-load-balancers.html#connection-idle-timeout")
DEREG_DOCS = ("https://docs.aws.amazon.com/elasticloadbalancing/latest/application/"
              "edit-target-group-attributes.html#deregistration-delay")


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    verdict: str  # one line with the concrete numbers
    reason: str  # why the rule exists and what to change
    references: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "verdict": self.verdict,
                "reason": self.reason, "references": list(self.references)}


def _s(x: float) -> str:
    return f"{x:g} s"


def _assumption(facts: Facts, field: str, what: str) -> str:
    """' (assumed: ...)' when a number is a default rather than read from anything."""
    return f" (assumed: {what})" if field in facts.assumed else ""


def prestop_needed(facts: Facts) -> float:
    """The upstream rule of thumb (#1719, #1064): the preStop sleep must cover the time the ALB
    keeps routing new requests after DeregisterTargets plus the deregistration delay."""
    return facts.propagation_seconds + facts.deregistration_delay_seconds


def readiness_gate(facts: Facts) -> Finding:
    refs = (GATE_DOCS, ISSUES + "1124", ISSUES + "814")
    reason = ("Without the gate a new pod is Ready on its own probe alone, so the rollout "
              "goes on and terminates old pods before the ALB has registered the new targets "
              "and found them healthy; for that while the ALB has no healthy target in service "
              "(HTTP 502/503/504). With the gate the controller holds each pod's Ready "
              "condition until its target is healthy in the target group. Enable it by "
              f"labelling the namespace: kubectl label namespace {facts.namespace or 'NS'} "
              f"{GATE_INJECT_LABEL}=enabled (the webhook injects the gate into pods created "
              "after that; in a scenario: readinessGate: true).")
    if facts.readiness_gate is True:
        return Finding("readiness-gate", "ok", f"readiness gate on: {facts.readiness_gate_source}",
                       reason, refs)
    if facts.readiness_gate is False:
        return Finding("readiness-gate", "violation",
                       f"no ALB readiness gate: {facts.readiness_gate_source}", reason, refs)
    return Finding("readiness-gate", "unknown",
                   f"cannot tell whether the pods get the readiness gate: "
                   f"{facts.readiness_gate_source}; the namespace needs the label "
                   f"{GATE_INJECT_LABEL}: enabled (or the pod template a "
                   f"{GATE_CONDITION_PREFIX}* readinessGate)", reason, refs)


def prestop_sleep(facts: Facts) -> Finding:
    refs = (ISSUES + "1719", ISSUES + "1064", HOOKS_DOCS, DEREG_DOCS)
    needed = prestop_needed(facts)
    parts = (f"deregistration propagation {_s(facts.propagation_seconds)}"
             f"{_assumption(facts, 'propagation_seconds', 'AWS does not document it')} + "
             f"deregistration delay {_s(facts.deregistration_delay_seconds)}"
             f"{_assumption(facts, 'deregistration_delay_seconds', 'AWS default')}")
    reason = ("The controller deregisters a terminating pod's target when the pod starts "
              "terminating, at the same moment the kubelet runs the preStop hook and then "
              "sends SIGTERM; the ALB keeps sending new requests to the target for seconds "
              "after DeregisterTargets and lets in-flight ones finish for the deregistration "
              "delay. A preStop sleep keeps the app serving through that: "
              "deregistration_delay < preStop sleep < terminationGracePeriodSeconds (#1719, "
              f"#1064). Set it on container {facts.container!r}: lifecycle.preStop.sleep.seconds "
              "(Kubernetes 1.30+) or exec: [sleep, N].")
    have = facts.pre_stop_seconds
    if facts.pre_stop is not None and have is None:
        return Finding("prestop-sleep", "warning",
                       f"preStop hook {facts.pre_stop!r} is not a sleep this check can measure; "
                       f"it must keep the app serving at least {_s(needed)} ({parts})",
                       reason, refs)
    sleep = have or 0.0
    if sleep < needed:
        return Finding("prestop-sleep", "violation",
                       f"preStop sleep {_s(sleep)}; needs at least {_s(needed)} ({parts})",
                       reason, refs)
    return Finding("prestop-sleep", "ok",
                   f"preStop sleep {_s(sleep)} >= {_s(needed)} ({parts})", reason, refs)


def grace_period(facts: Facts) -> Finding:
    refs = (HOOKS_DOCS, TERMINATION_DOCS, ISSUES + "1719")
    sleep = facts.pre_stop_seconds or 0.0
    needed = sleep + facts.drain_seconds
    grace = (f"terminationGracePeriodSeconds {_s(facts.grace_seconds)}" +
             (" (not set: the Kubernetes default)" if "grace_seconds" in facts.defaulted
              else ""))
    parts = (f"preStop sleep {_s(sleep)} + app drain {_s(facts.drain_seconds)}"
             f"{_assumption(facts, 'drain_seconds', 'unknown')}")
    reason = ("The grace period counts from the moment the pod starts terminating and includes "
              "the preStop hook; when it runs out the kubelet kills the container, cutting "
              "in-flight requests and, if the ALB still routes to the target, failing new ones. "
              "It must outlast the preStop sleep plus the time the app takes to finish its "
              "in-flight requests after SIGTERM.")
    if facts.grace_seconds <= needed:
        return Finding("grace-period", "violation",
                       f"{grace}; needs more than {_s(needed)} ({parts})", reason, refs)
    return Finding("grace-period", "ok", f"{grace} > {_s(needed)} ({parts})", reason, refs)


def readiness_probe(facts: Facts) -> Finding:
    refs = (PROBE_DOCS, GATE_DOCS)
    reason = ("A container without a readinessProbe counts as ready as soon as it starts, "
              "before the app listens: the controller registers its target and the rollout "
              "moves on, so a new pod can be counted on before it can serve.")
    if facts.readiness_probe:
        return Finding("readiness-probe", "ok",
                       f"container {facts.container!r} has a readinessProbe", reason, refs)
    return Finding("readiness-probe", "violation",
                   f"container {facts.container!r} (serving the Service's target port) has no "
                   "readinessProbe", reason, refs)


def max_unavailable(facts: Facts) -> Finding:
    refs = (ROLLING_DOCS, RECREATE_DOCS)
    reason = ("A rolling update may take down maxUnavailable pods at once (percentages round "
              "down) and add maxSurge extra ones (rounding up); with maxUnavailable at or above "
              "replicas every pod may go before a new one serves. maxUnavailable: 0 with "
              "maxSurge: 1 or more keeps the full count serving.")
    if facts.strategy == "Recreate":
        return Finding("max-unavailable", "violation",
                       f"strategy Recreate: all {facts.replicas} old pods are killed before any "
                       "new pod exists", reason, refs)
    if facts.replicas == 0:
        return Finding("max-unavailable", "warning",
                       "replicas 0: no pod serves, nothing to roll", reason, refs)
    shown = (f"maxUnavailable {facts.max_unavailable_raw} -> {facts.max_unavailable} and "
             f"maxSurge {facts.max_surge_raw} -> {facts.max_surge} of {facts.replicas} "
             f"replica{'s' if facts.replicas != 1 else ''}")
    if facts.max_unavailable >= facts.replicas:
        return Finding("max-unavailable", "violation",
                       f"{shown}: every pod may go at once", reason, refs)
    return Finding("max-unavailable", "ok",
                   f"{shown}: at least {facts.replicas - facts.max_unavailable} keep serving",
                   reason, refs)


def keep_alive(facts: Facts) -> Finding:
    refs = (IDLE_DOCS, "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/"
            "load-balancer-troubleshooting.html#http-502-issues")
    idle = (f"ALB idle timeout {_s(facts.idle_timeout_seconds)}"
            f"{_assumption(facts, 'idle_timeout_seconds', 'AWS default')}")
    reason = ("The ALB reuses idle connections to a target for up to its idle timeout; an app "
              "that closes them sooner races the ALB's next request on that connection, which "
              "fails with 502. AWS: \"we recommend that you configure the idle timeout of your "
              "application to be larger than the idle timeout configured for the load "
              "balancer\".")
    ka = facts.keep_alive_timeout_seconds
    if ka is None:
        return Finding("keep-alive", "unknown",
                       "the app's keep-alive timeout is unknown (a scenario's "
                       f"workload.keepAliveTimeoutSeconds); it must be above the {idle}",
                       reason, refs)
    if ka <= facts.idle_timeout_seconds:
        return Finding("keep-alive", "violation",
                       f"app keep-alive timeout {_s(ka)} <= {idle}", reason, refs)
    return Finding("keep-alive", "ok", f"app keep-alive timeout {_s(ka)} > {idle}", reason,
                   refs)


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    check: Callable[[Facts], Finding]


RULES: tuple[Rule, ...] = (
    Rule("readiness-gate", "pods carry the ALB target-health readiness gate", readiness_gate),
    Rule("prestop-sleep", "preStop sleep covers deregistration", prestop_sleep),
    Rule("grace-period", "grace period outlasts preStop + drain", grace_period),
    Rule("readiness-probe", "serving container has a readinessProbe", readiness_probe),
    Rule("max-unavailable", "rolling update keeps pods serving", max_unavailable),
    Rule("keep-alive", "app keep-alive outlasts the ALB idle timeout", keep_alive),
)
RULE_IDS = tuple(r.id for r in RULES)


def evaluate(facts: Facts) -> list[Finding]:
    """Every rule's finding, in RULES order."""
    return [rule.check(facts) for rule in RULES]


def failed(findings: list[Finding]) -> bool:
    """Whether `testbed check` exits 1: any violation (warnings and unknowns do not fail)."""
    return any(f.severity == "violation" for f in findings)
