"""What to change after a run that failed its expectation, derived from the run's own timeline
(pod events, controller actions, the fake ALB's events, the client's records) and the checked
`Facts`; every item names the `testbed check` rule it belongs to (docs/check.md).

Numbers come from what happened, not from a table: e.g. the preStop sleep a run needed is the
longest time from a pod's termination start until the ALB stopped routing new requests to its
target, plus the deregistration delay, rounded up, plus MARGIN_SECONDS. When the timeline does
not point to a setting, the one item says what was seen and suggests no change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from testbed.loadgen.records import OK
from testbed.report.model import Advice, Report
from testbed.scenario.plan import GATE_INJECT_LABEL

if TYPE_CHECKING:
    from testbed.check.facts import Facts

__all__ = ["MARGIN_SECONDS", "UNEXPLAINED", "Advice", "advise"]

# Added to a measured need: the next run's timing jitters (controller reaction, CPU contention).
MARGIN_SECONDS = 1
UNEXPLAINED = "unexplained"
# The fake ALB's reason for a request it sent on a reused connection the target had closed
# (testbed/fakeaws/engine/dataplane/proxy.py, _closed_error).
KEEPALIVE_RACE = "keepalive_race"
NO_TARGETS = "no_targets"
# A request in flight on a target group that was deleted (proxy.py, after upstream #3739).
GROUP_DELETED = "target_group_deleted"


def _ceil(x: float) -> int:
    """Whole seconds, rounded up, ignoring float noise (8.000000001 -> 8)."""
    return -int(-round(x, 6) // 1)


def _classes(events: Iterable[dict[str, Any]]) -> str:
    c = Counter(f"{e.get('status')} {e.get('reason')}" for e in events)
    return ", ".join(f"{k}:{n}" for k, n in c.most_common())


@dataclass
class _Timeline:
    """The report's inputs indexed by pod and target."""

    t0: float
    t_end: float
    failed: list[Any]  # records
    ok_records: list[Any]
    elb_errors: list[dict[str, Any]]
    routing: list[tuple[float, set[str]]]
    pod_of: dict[str, str] = field(default_factory=dict)  # target "ip:port" -> pod
    terminating: dict[str, float] = field(default_factory=dict)  # pod -> first terminating
    ready: dict[str, float] = field(default_factory=dict)  # pod -> first Ready
    gated: set[str] = field(default_factory=set)  # pods whose target-health gate went True
    healthy: dict[str, float] = field(default_factory=dict)  # target -> first healthy
    dereg_delay: dict[str, float] = field(default_factory=dict)  # target -> from the event

    @classmethod
    def of(cls, report: Report) -> _Timeline:
        aws = sorted(report.aws_events, key=lambda e: (e["ts"], e.get("seq", 0)))
        tl = cls(t0=report.t0, t_end=report.t_end,
                 failed=[r for r in report.records if r.cls != OK],
                 ok_records=[r for r in report.records if r.cls == OK],
                 elb_errors=[e for e in aws if e.get("kind") == "elb_error"],
                 routing=[(e["ts"], set(e.get("targets") or [])) for e in aws
                          if e.get("kind") == "routing"])
        for a in report.actions:
            if a.get("target") and a.get("pod"):
                tl.pod_of[str(a["target"])] = str(a["pod"])
        for e in sorted(report.pod_events, key=lambda e: e["ts"]):
            pod, kind = str(e.get("pod")), e.get("kind")
            if kind == "terminating":
                tl.terminating.setdefault(pod, e["ts"])
            elif kind == "ready":
                tl.ready.setdefault(pod, e["ts"])
            elif kind == "gate_true":
                tl.gated.add(pod)
        for e in aws:
            key = f"{e.get('target_id')}:{e.get('port')}"
            if e.get("kind") == "target_state" and e.get("to") == "healthy":
                tl.healthy.setdefault(key, e["ts"])
            elif e.get("kind") == "deregistered" and e.get("deregistration_delay") is not None:
                tl.dereg_delay[key] = float(e["deregistration_delay"])
        return tl

    def at(self, ts: float) -> str:
        return f"{ts - self.t0:.2f} s"

    def errors_by_pod(self) -> Counter[str]:
        """ALB errors on each pod's targets."""
        return Counter(self.pod_of[str(e.get("target"))] for e in self.elb_errors
                       if str(e.get("target")) in self.pod_of)

    def targets_of(self, pod: str) -> list[str]:
        return sorted(t for t, p in self.pod_of.items() if p == pod)

    def routing_stop(self, target: str, pod: str, since: float) -> tuple[float, str]:
        """When the ALB stopped sending new requests to `target` after `since`, and how that is
        known: its removal from the routing set (the fake ALB's `routing` events), else the
        last request routed to it (ALB errors on it, answers from its pod)."""
        if self.routing:
            before = [targets for ts, targets in self.routing if ts <= since]
            if not before or target not in before[-1]:
                return since, "not in the ALB's routing set by then"
            for ts, targets in self.routing:
                if ts > since and target not in targets:
                    return ts, "when it left the ALB's routing set"
        seen = [e["ts"] for e in self.elb_errors if e.get("target") == target and
                e["ts"] >= since]
        seen += [r.started for r in self.ok_records if r.pod == pod and r.started >= since]
        if not seen:
            return since, "no request routed to it after that"
        return max(seen), "its last routed request"


@dataclass
class _Termination:
    """One terminating pod's target and the ALB errors on it after termination started."""

    pod: str
    target: str
    t_term: float
    t_stop: float
    how: str
    dereg: float
    errors: list[dict[str, Any]]
    killed: list[dict[str, Any]]  # those at or after the end of the grace period

    @property
    def routed_for(self) -> float:
        return self.t_stop - self.t_term


def _terminations(tl: _Timeline, facts: Facts) -> list[_Termination]:
    out = []
    for pod, t_term in sorted(tl.terminating.items(), key=lambda kv: kv[1]):
        for target in tl.targets_of(pod):
            errs = [e for e in tl.elb_errors if e.get("target") == target and e["ts"] >= t_term]
            if not errs:
                continue
            t_stop, how = tl.routing_stop(target, pod, t_term)
            kill = t_term + facts.grace_seconds
            out.append(_Termination(
                pod, target, t_term, t_stop, how,
                tl.dereg_delay.get(target, facts.deregistration_delay_seconds), errs,
                [e for e in errs if e["ts"] >= kill]))
    return out


def _describe(tl: _Timeline, t: _Termination) -> str:
    return (f"pod {t.pod} started terminating at {tl.at(t.t_term)}; the ALB routed new requests "
            f"to its target {t.target} until {tl.at(t.t_stop)} ({t.routed_for:.2f} s later, "
            f"{t.how}); {len(t.errors)} ALB errors on it after termination started "
            f"({_classes(t.errors)}); deregistration delay {t.dereg:g} s")


def _prestop_and_grace(tl: _Timeline, facts: Facts, terms: list[_Termination]) -> list[Advice]:
    out: list[Advice] = []
    sleep = facts.pre_stop_seconds or 0.0
    routed = [t for t in terms if t.routed_for > 0]
    need = max((_ceil(t.routed_for + t.dereg) + MARGIN_SECONDS for t in routed), default=0)
    if routed and sleep < need:
        worst = max(routed, key=lambda t: t.routed_for + t.dereg)
        msg = f"raise preStop sleep from {sleep:g} s to at least {need} s"
        if facts.grace_seconds <= need + facts.drain_seconds:
            grace = _ceil(need + facts.drain_seconds) + MARGIN_SECONDS
            msg += (f", and terminationGracePeriodSeconds from {facts.grace_seconds:g} s to at "
                    f"least {grace} s (the grace period includes the preStop hook; app drain "
                    f"{facts.drain_seconds:g} s)")
        more = len({t.pod for t in routed}) - 1
        evidence = _describe(tl, worst) + (f"; {more} more pod(s) alike" if more > 0 else "")
        out.append(Advice("prestop-sleep", msg, evidence))
        return out  # its message already sizes the grace period for the new sleep
    killed = [t for t in terms if t.killed]
    if killed and facts.grace_seconds <= sleep + facts.drain_seconds:
        t = max(killed, key=lambda t: len(t.killed))
        grace = _ceil(sleep + facts.drain_seconds) + MARGIN_SECONDS
        out.append(Advice(
            "grace-period",
            f"raise terminationGracePeriodSeconds from {facts.grace_seconds:g} s to at least "
            f"{grace} s (preStop sleep {sleep:g} s + app drain {facts.drain_seconds:g} s must "
            "fit in it)",
            f"pod {t.pod} started terminating at {tl.at(t.t_term)} and was killed at the end of "
            f"its grace period, {tl.at(t.t_term + facts.grace_seconds)}, before its preStop "
            f"sleep and drain were over; {len(t.killed)} ALB errors on its target {t.target} "
            f"from then ({_classes(t.killed)}); the ALB routed new requests to it until "
            f"{tl.at(t.t_stop)}"))
    return out


def _gate(tl: _Timeline, facts: Facts, terms: list[_Termination]) -> list[Advice]:
    """New pods Ready before their targets were healthy, old pods leaving meanwhile, and
    requests failing that no terminating pod's target explains."""
    if facts.readiness_gate is True or tl.gated:
        return []
    explained = {id(e) for t in terms for e in t.errors}
    windows = []
    for pod, t_ready in tl.ready.items():
        for target in tl.targets_of(pod):
            t_healthy = tl.healthy.get(target)
            if t_healthy is not None and t_healthy <= t_ready:
                continue
            end = tl.t_end if t_healthy is None else t_healthy
            leaving = sorted((t, p) for p, t in tl.terminating.items()
                             if p != pod and t_ready <= t < end)
            errs = [e for e in tl.elb_errors if t_ready <= e["ts"] < end and
                    id(e) not in explained]
            if leaving and errs:
                windows.append((pod, target, t_ready, t_healthy, leaving, errs))
    if not windows:
        return []
    pod, target, t_ready, t_healthy, leaving, errs = max(windows, key=lambda w: len(w[5]))
    healthy = ("never became healthy during the run" if t_healthy is None else
               f"became healthy only at {tl.at(t_healthy)} "
               f"({t_healthy - t_ready:.2f} s after Ready)")
    ns = facts.namespace or "NAMESPACE"
    return [Advice(
        "readiness-gate",
        f"enable the readiness gate: label the namespace {GATE_INJECT_LABEL}=enabled (kubectl "
        f"label namespace {ns} {GATE_INJECT_LABEL}=enabled; in a scenario readinessGate: true) "
        "so a new pod counts as Ready only once its target is healthy",
        f"pod {pod} was Ready at {tl.at(t_ready)} but its target {target} {healthy}; meanwhile "
        f"{len(leaving)} old pod(s) started terminating (first {leaving[0][1]} at "
        f"{tl.at(leaving[0][0])}) and {len(errs)} requests failed at the ALB "
        f"({_classes(errs)}); no pod had a target-health gate")]


def _max_unavailable(tl: _Timeline, facts: Facts) -> list[Advice]:
    too_many = facts.strategy == "Recreate" or facts.max_unavailable >= facts.replicas
    if not too_many:
        return []
    empty: list[tuple[float, float]] = []
    for i, (ts, targets) in enumerate(tl.routing):
        if not targets:
            nxt = tl.routing[i + 1][0] if i + 1 < len(tl.routing) else tl.t_end
            empty.append((ts, nxt))
    errs = [e for e in tl.elb_errors if e.get("reason") == NO_TARGETS and
            any(a <= e["ts"] <= b for a, b in empty)]
    if not errs:
        return []
    how = ("strategy Recreate" if facts.strategy == "Recreate" else
           f"maxUnavailable {facts.max_unavailable_raw} resolves to {facts.max_unavailable} of "
           f"{facts.replicas} replicas")
    spans = ", ".join(f"{tl.at(a)} .. {tl.at(b)}" for a, b in empty)
    return [Advice(
        "max-unavailable",
        "use strategy RollingUpdate with maxUnavailable: 0 and maxSurge: 1 (or more), so old "
        "pods leave only as new ones serve",
        f"the ALB had no target to route to ({spans}); {len(errs)} requests answered "
        f"503 {NO_TARGETS}; {how}")]


def _keep_alive(tl: _Timeline, facts: Facts) -> list[Advice]:
    races = [e for e in tl.elb_errors if e.get("reason") == KEEPALIVE_RACE]
    n = len(races) or sum(1 for r in tl.failed if r.elb_error == KEEPALIVE_RACE)
    ka, idle = facts.keep_alive_timeout_seconds, facts.idle_timeout_seconds
    if not n or (ka is not None and ka > idle):
        return []
    change = (f"raise the app's keep-alive timeout from {ka:g} s to more than the ALB idle "
              f"timeout {idle:g} s" if ka is not None else
              f"make the app's keep-alive timeout longer than the ALB idle timeout {idle:g} s "
              "(the app's own timeout is not known to the check)")
    when = (f" between {tl.at(races[0]['ts'])} and {tl.at(races[-1]['ts'])}" if races else "")
    return [Advice("keep-alive", change,
                   f"{n} requests failed with 502 {KEEPALIVE_RACE}{when}: the ALB sent them on "
                   "reused connections the app had just closed")]


def _group_deleted(tl: _Timeline) -> list[Advice]:
    """Requests cut because their target group was deleted under them: the Ingress moved to
    another Service and the controller deleted the old group at once (upstream #3739, #4810);
    upstream's documented migration keeps both groups behind a weighted forward action."""
    cut = [e for e in tl.elb_errors if e.get("reason") == GROUP_DELETED]
    n = len(cut) or sum(1 for r in tl.failed if r.elb_error == GROUP_DELETED)
    if not n:
        return []
    when = f" at {tl.at(cut[0]['ts'])}" if cut else ""
    return [Advice("backend-swap", "move the Ingress to the new Service through a weighted "
                   "forward action (alb.ingress.kubernetes.io/actions.<name>: old 100 / new 0, "
                   "then 0 / 100, wait at least the deregistration delay and the longest "
                   "request, then take the old Service out), not by editing the backend "
                   "(aws-load-balancer-controller docs/guide/use_cases/blue_green, #4810)",
                   f"{n} requests in flight ended with 503 {GROUP_DELETED}{when}: the "
                   "controller deleted their target group without waiting for its "
                   "deregistration delay (#3739)")]


def _readiness_outage(report: Report, tl: _Timeline) -> list[Advice]:
    """503 no_targets after serving pods went not ready without terminating: their endpoints
    left the Service and the controller deregistered them, though they were alive (upstream
    #3711). A cause all pods share is better told to the ALB health check: with every target
    unhealthy the ALB fails open instead of having none."""
    empty = [r for r in tl.failed if r.elb_error == NO_TARGETS]
    if not empty:
        return []
    first = min(r.intended for r in empty)
    dropped = sorted({str(e.get("pod")) for e in report.pod_events
                      if e.get("kind") == "not_ready" and e["ts"] <= first
                      and tl.terminating.get(str(e.get("pod")), float("inf")) > e["ts"]})
    if not dropped:
        return []
    return [Advice("readiness-outage", "keep the kubelet readiness probe to what the pod "
                   "itself can fix and report a failure every pod shares (a dependency) "
                   "through the ALB health check (targetGroup.healthCheck.path): a not-ready "
                   "pod is deregistered, while with every target unhealthy the ALB fails open "
                   "and keeps routing to all of them (#3711)",
                   f"{len(empty)} requests failed with 503 {NO_TARGETS} from "
                   f"{tl.at(first)}; before that {len(dropped)} pods went not ready without "
                   "terminating: " + ", ".join(dropped[:5]))]


def _restart_in_place(report: Report, tl: _Timeline) -> list[Advice]:
    """ALB errors on the target of a pod that went not ready without terminating and came
    back: its container was restarted in place (a liveness probe, a crash), which deletes
    nothing, so a preStop sleep never took it out of the load balancer (upstream #1275)."""
    back = {str(e.get("pod")): e["ts"] for e in report.pod_events
            if e.get("kind") == "containers_ready"}
    restarted: dict[str, float] = {}
    for e in report.pod_events:
        pod = str(e.get("pod"))
        if (e.get("kind") == "not_ready" and tl.terminating.get(pod, float("inf")) > e["ts"]
                and back.get(pod, 0.0) > e["ts"] and pod in tl.ready):
            restarted.setdefault(pod, e["ts"])
    hit = tl.errors_by_pod()
    pods = sorted(p for p in restarted if hit.get(p))
    if not pods:
        return []
    return [Advice("restart-in-place", "take a pod out of the load balancer before it stops "
                   "serving even when nothing deletes it: a preStop hook that first fails "
                   "readiness and then sleeps (scenario app.preStopUnready), or a SIGTERM "
                   "handler that fails readiness and keeps serving a while; a container "
                   "restarted in place keeps its target registered until its readiness probe "
                   "fails (#1275)",
                   "; ".join(f"{p} went not ready at {tl.at(restarted[p])} without "
                             f"terminating and came back; {hit[p]} ALB errors on its target"
                             for p in pods[:3]))]


def _node_shutdown(report: Report, tl: _Timeline) -> list[Advice]:
    """ALB errors on the target of a pod that ended (phase Failed or Succeeded) without being
    deleted: its node's kubelet terminated it for a graceful node shutdown (upstream #2702).
    The kubelet puts the terminal phase in its status cache before it kills the pod
    (SyncTerminatingPod, kubelet v1.34), and the readiness probe worker stops on a terminal
    phase (prober/worker.go), so the pod stays Ready and registered through its preStop hook,
    whatever the hook does to the readiness endpoint. Only the ALB's own health check can
    take it out in time."""
    done = {str(e.get("pod")): e["ts"] for e in report.pod_events if e.get("kind") == "ended"}
    ended = {p: ts for p, ts in done.items() if p not in tl.terminating and p in tl.ready}
    hit = tl.errors_by_pod()
    pods = sorted(p for p in ended if hit.get(p))
    if not pods:
        return []
    return [Advice("node-shutdown", "make a pod's shutdown fail the ALB health check, not "
                   "only its readiness: a preStop hook that fails the health-check path and "
                   "sleeps longer than healthCheck interval x unhealthyThreshold (scenario "
                   "app.preStopUnready with targetGroup.healthCheck.path: /ready). On a "
                   "graceful node shutdown the kubelet stops probing readiness, so the pod "
                   "stays Ready and nothing deregisters it until it has ended (#2702)",
                   "; ".join(f"{p} ended at {tl.at(ended[p])}, terminated by its node "
                             f"without being deleted; {hit[p]} ALB errors on its target"
                             for p in pods[:3]))]


def _unreachable_target(report: Report, tl: _Timeline) -> list[Advice]:
    """504 connect_timeout on targets the ALB could not reach while their pods were not
    terminating, and which its health checks then found unhealthy with Target.Timeout: a
    network partition between the ALB and a node. Kubernetes does not see it (the pods stay
    Ready), so only the health check takes those targets out, after unhealthyThreshold checks
    intervalSeconds apart (Elastic Load Balancing docs, "Health checks for Application Load
    Balancer target groups")."""
    timed_out: dict[str, float] = {}
    for e in report.aws_events:
        if (e.get("kind") == "target_state" and e.get("to") == "unhealthy"
                and e.get("reason") == "Target.Timeout"):
            timed_out.setdefault(f"{e.get('target_id')}:{e.get('port')}", e["ts"])
    hit: dict[str, list[float]] = {}
    for e in tl.elb_errors:
        target = str(e.get("target"))
        pod = tl.pod_of.get(target, "")
        if (e.get("reason") == "connect_timeout" and target in timed_out
                and tl.terminating.get(pod, float("inf")) > e["ts"]):
            hit.setdefault(target, []).append(e["ts"])
    if not hit:
        return []
    return [Advice("unreachable-target", "shorten how long the ALB keeps sending requests to a "
                   "target it cannot reach: it takes it out only after "
                   "targetGroup.healthCheck.unhealthyThreshold failed checks intervalSeconds "
                   "apart (AWS allows 2 checks 5 s apart); Kubernetes does not see a partition "
                   "between the ALB and a node, so readiness and the controller cannot help, "
                   "and replicas spread over nodes keep serving meanwhile",
                   "; ".join(f"{len(ts)} requests to {t} failed 504 connect_timeout (the last "
                             f"at {tl.at(max(ts))}); the ALB's health checks found it "
                             f"unhealthy (Target.Timeout) at {tl.at(timed_out[t])}"
                             for t, ts in sorted(hit.items())[:3]))]


def _never_cached(report: Report) -> list[Advice]:
    """Pods the controller skipped because they were not in its pod cache yet, and never
    registered afterwards: the race of upstream #3299 on a release that does not come back to
    such a pod (before v2.6.0, PR #3305; v3.4.0+ relies on its pod watch instead)."""
    registered = {a.get("pod") for a in report.actions if a.get("kind") == "register"}
    lost = sorted({str(a.get("pod")) for a in report.actions
                   if a.get("kind") == "skip" and a.get("pod") not in registered})
    if not lost:
        return []
    return [Advice("controller-release", "run aws-load-balancer-controller v2.6.0 or later "
                   "(PR #3305 polls for an endpoint whose pod is not cached yet; v3.4.0+ "
                   "watches pods): on this release such a pod is never registered (#3299)",
                   f"{len(lost)} pods skipped as 'pod not in cache' and never registered: "
                   + ", ".join(lost[:5]))]


def _rejected(tl: _Timeline) -> list[Advice]:
    """4xx answered by the app itself (the ALB's own errors carry a reason), from before any
    pod started terminating: the load sends requests the app refuses, whatever the rollout
    does. Per request kind when the load mixes several (Record.req indexes load.requests)."""
    app_4xx = [r for r in tl.failed if r.cls.startswith("4") and not r.elb_error]
    if not app_4xx:
        return []
    first_term = min(tl.terminating.values(), default=tl.t_end)
    if min(r.intended for r in app_4xx) >= first_term:
        return []
    by_kind = Counter((getattr(r, "req", 0), r.cls) for r in app_4xx)
    kinds = ", ".join(f"{n} x {cls} for load.requests[{req}]"
                      for (req, cls), n in by_kind.most_common())
    return [Advice("load-requests", "fix the requests the load sends (load.requests: method, "
                   "path, headers, body) or the app: it rejects them, rollout or not",
                   f"{len(app_4xx)} requests answered 4xx by the app itself, the first at "
                   f"{tl.at(min(r.intended for r in app_4xx))} before any pod terminated: "
                   f"{kinds}")]


def _unexplained(tl: _Timeline, terms: list[_Termination]) -> Advice:
    seen = []
    if tl.failed:
        c = Counter(r.cls if not r.elb_error else f"{r.cls} {r.elb_error}" for r in tl.failed)
        first = min(r.intended for r in tl.failed)
        last = max(r.intended for r in tl.failed)
        seen.append(f"{len(tl.failed)} failed requests ("
                    + ", ".join(f"{k}:{n}" for k, n in c.most_common())
                    + f") from {tl.at(first)} to {tl.at(last)}")
    if tl.elb_errors:
        seen.append(f"ALB errors {_classes(tl.elb_errors)}")
    seen += [_describe(tl, t) for t in terms[:3]]
    return Advice(UNEXPLAINED, "the timeline does not show which setting to change; no change "
                  "suggested", "; ".join(seen) or "no failed request")


def advise(report: Report, facts: Facts) -> list[Advice]:
    """What to change when requests failed, whether the scenario expected them or not: a
    failed run learns what to fix, and a bug reproduced on purpose shows that its errors point
    at the fix its twin applies. [] when nothing failed or no verdict was asked for."""
    if report.verdict is None:
        return []
    tl = _Timeline.of(report)
    if not tl.failed and not tl.elb_errors:
        return []  # the failure is not about dropped requests (a stall, a duration)
    terms = _terminations(tl, facts)
    out = (_prestop_and_grace(tl, facts, terms) + _gate(tl, facts, terms)
           + _max_unavailable(tl, facts) + _keep_alive(tl, facts) + _group_deleted(tl)
           + _never_cached(report) + _readiness_outage(report, tl)
           + _restart_in_place(report, tl) + _node_shutdown(report, tl)
           + _unreachable_target(report, tl) + _rejected(tl))
    return out or [_unexplained(tl, terms)]
