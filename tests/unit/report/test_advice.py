"""Advice after a failed run, from synthetic timelines shaped like the built-in bug scenarios:
client records, pod events, controller actions and fake ALB events."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from testbed.check.facts import Facts, facts_from_manifests, settings_from_scenario
from testbed.loadgen.records import Record
from testbed.report import build_report
from testbed.report.advice import UNEXPLAINED, advise
from testbed.report.text import render_text
from testbed.scenario import load_builtin, plan

T0 = 1_800_000_000.0
OLD, NEW = "10.0.0.1:8080", "10.0.0.2:8080"
NO_ERRORS = load_builtin("full-recipe").expect  # expect.errors none: any failure fails


def _facts(name: str) -> Facts:
    """What `testbed check --scenario NAME` reads: the demo manifests and the scenario."""
    sc = load_builtin(name)
    docs = plan.manifests(sc, "img", "arn:tg", name="demo", ns="t")
    return facts_from_manifests(docs, settings=settings_from_scenario(sc), deployment="demo")


def _records(errors: list[dict[str, Any]], seconds: float = 30, rate: float = 50
             ) -> list[Record]:
    """Steady load; one failed record per ALB error, at the error's time."""
    out = [Record(seq=i, intended=T0 + i / rate, started=T0 + i / rate, latency=0.003,
                  status=200, cls="ok", pod="demo-old" if i / rate < 10 else "demo-new")
           for i in range(int(seconds * rate))]
    for e in errors:
        out.append(Record(seq=len(out), intended=e["ts"] - 0.002, started=e["ts"] - 0.002,
                          latency=0.002, status=e["status"], cls=str(e["status"]),
                          elb_error=e["reason"]))
    return out


def _elb_errors(target: str | None, start: float, end: float, n: int, status: int = 502,
                reason: str = "target_refused") -> list[dict[str, Any]]:
    step = (end - start) / max(n - 1, 1)
    return [{"seq": 1000 + i, "ts": T0 + start + i * step, "kind": "elb_error",
             "status": status, "reason": reason, "target": target, "listener_port": 8000,
             "path": "/", "tg_arn": "tg"} for i in range(n)]


def _routing(at: float, *targets: str) -> dict[str, Any]:
    return {"seq": int(at * 10) + 500, "ts": T0 + at, "kind": "routing", "tg_arn": "tg",
            "targets": list(targets), "fail_open": False}


def _state(at: float, target: str, to: str) -> dict[str, Any]:
    ip, port = target.split(":")
    return {"seq": int(at * 10) + 700, "ts": T0 + at, "kind": "target_state", "tg_arn": "tg",
            "target_id": ip, "port": int(port), "from": None, "to": to, "reason": None}


def _rolled(term_at: float = 10.0, removed_at: float | None = 15.0, dereg: float = 3,
            gate: bool = True) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                        list[dict[str, Any]]]:
    """One old pod replaced by one new one; the old target leaves routing at removed_at."""
    pods = [{"ts": T0 - 30, "pod": "demo-old", "kind": "ready"},
            {"ts": T0 + 6, "pod": "demo-new", "kind": "containers_ready"},
            {"ts": T0 + 8, "pod": "demo-new", "kind": "ready"},
            {"ts": T0 + term_at, "pod": "demo-old", "kind": "terminating"},
            {"ts": T0 + term_at + 12, "pod": "demo-old", "kind": "deleted"}]
    if gate:
        pods.append({"ts": T0 + 7.9, "pod": "demo-new", "kind": "gate_true"})
    acts = [{"ts": T0 - 31, "kind": "register", "target": OLD, "pod": "demo-old"},
            {"ts": T0 + 6.05, "kind": "register", "target": NEW, "pod": "demo-new"},
            {"ts": T0 + term_at + 0.05, "kind": "deregister", "target": OLD, "pod": ""}]
    aws = [_routing(-29, OLD), _state(-29, OLD, "healthy"), _state(7.5, NEW, "healthy"),
           _routing(7.5, OLD, NEW),
           {"seq": 800, "ts": T0 + term_at + 0.06, "kind": "deregistered", "tg_arn": "tg",
            "target_id": "10.0.0.1", "port": 8080, "routed_for": 5.0,
            "deregistration_delay": dereg}]
    if removed_at is not None:
        aws.append(_routing(removed_at, NEW))
    return pods, aws, acts


def _report(pods: list[dict[str, Any]], aws: list[dict[str, Any]], acts: list[dict[str, Any]],
            facts: Facts | None, expect: Any = NO_ERRORS) -> Any:
    errs = [e for e in aws if e["kind"] == "elb_error"]
    return build_report(_records(errs), aws, pods, acts, name="t", expect=expect,
                        rollout_stalled=False, rollout_seconds=12, facts=facts)


def test_prestop_from_routing_removal() -> None:
    """gate-no-prestop: the ALB routed to the terminating pod for 5 s (propagation) and the
    deregistration delay is 3 s: 5 + 3 = 8, plus the 1 s margin."""
    pods, aws, acts = _rolled(term_at=10.0, removed_at=15.0)
    aws += _elb_errors(OLD, 10.2, 14.9, 12)
    rep = _report(pods, aws, acts, _facts("gate-no-prestop"))
    assert [a.rule for a in rep.advice] == ["prestop-sleep"]
    a = rep.advice[0]
    assert a.message.startswith("raise preStop sleep from 0 s to at least 9 s")
    # grace 10 s cannot hold a 9 s sleep plus the app's 1 s drain
    assert "terminationGracePeriodSeconds from 10 s to at least 11 s" in a.message
    assert a.evidence == (
        "pod demo-old started terminating at 10.00 s; the ALB routed new requests to its "
        "target 10.0.0.1:8080 until 15.00 s (5.00 s later, when it left the ALB's routing "
        "set); 12 ALB errors on it after termination started (502 target_refused:12); "
        "deregistration delay 3 s")


def test_prestop_rounds_up_the_measured_time() -> None:
    pods, aws, acts = _rolled(term_at=10.0, removed_at=15.4, dereg=3)
    aws += _elb_errors(OLD, 10.2, 15.3, 5)
    rep = _report(pods, aws, acts, _facts("gate-no-prestop"))
    assert "from 0 s to at least 10 s" in rep.advice[0].message  # ceil(5.4 + 3) + 1


def test_prestop_from_last_routed_request_without_routing_events() -> None:
    pods, aws, acts = _rolled(term_at=10.0, removed_at=None)
    aws = [e for e in aws if e["kind"] != "routing"] + _elb_errors(OLD, 10.2, 14.6, 10)
    rep = _report(pods, aws, acts, _facts("gate-no-prestop"))
    a = rep.advice[0]
    assert a.rule == "prestop-sleep"
    assert "from 0 s to at least 9 s" in a.message  # ceil(4.6 + 3) + 1
    assert "its last routed request" in a.evidence


def test_deregistration_delay_from_the_event_wins_over_facts() -> None:
    pods, aws, acts = _rolled(term_at=10.0, removed_at=15.0, dereg=10)
    aws += _elb_errors(OLD, 10.2, 14.9, 3)
    rep = _report(pods, aws, acts, _facts("gate-no-prestop"))  # facts say 3 s
    assert "to at least 16 s" in rep.advice[0].message  # 5 + 10 + 1


def test_grace_period_when_the_kubelet_killed_the_pod() -> None:
    """prestop-exceeds-grace: the 20 s sleep would cover 14 s propagation + 3 s delay, but the
    grace period (8 s) ends first and the ALB keeps routing to the killed pod."""
    pods, aws, acts = _rolled(term_at=10.0, removed_at=24.0)
    aws += _elb_errors(OLD, 18.3, 23.9, 20)
    facts = _facts("prestop-exceeds-grace")
    assert (facts.pre_stop_seconds, facts.grace_seconds, facts.drain_seconds) == (20, 8, 0)
    rep = _report(pods, aws, acts, facts)
    assert [a.rule for a in rep.advice] == ["grace-period"]
    a = rep.advice[0]
    assert a.message.startswith("raise terminationGracePeriodSeconds from 8 s to at least 21 s")
    assert "killed at the end of its grace period, 18.00 s" in a.evidence
    assert "20 ALB errors on its target 10.0.0.1:8080" in a.evidence


def test_readiness_gate_when_new_pods_were_ready_before_healthy() -> None:
    """no-gate-fast-rollout: the new pod is Ready at 8 s, its target healthy only at 16 s, the
    old pod leaves at 10 s and the ALB has nothing to route to."""
    pods, aws, acts = _rolled(term_at=10.0, removed_at=None, gate=False)
    aws = [e for e in aws if not (e["kind"] == "target_state" and e["target_id"] == "10.0.0.2")
           and not (e["kind"] == "routing" and NEW in e["targets"])]
    aws += [_routing(10.1), _state(16.0, NEW, "healthy"), _routing(16.0, NEW)]
    aws += _elb_errors(None, 10.2, 15.9, 30, status=503, reason="no_targets")
    facts = _facts("no-gate-fast-rollout")
    assert facts.readiness_gate is False
    rep = _report(pods, aws, acts, facts)
    assert [a.rule for a in rep.advice] == ["readiness-gate"]
    a = rep.advice[0]
    assert "elbv2.k8s.aws/pod-readiness-gate-inject=enabled" in a.message
    assert ("pod demo-new was Ready at 8.00 s but its target 10.0.0.2:8080 became healthy only "
            "at 16.00 s (8.00 s after Ready)") in a.evidence
    assert "30 requests failed at the ALB (503 no_targets:30)" in a.evidence
    # the same timeline with the gate on says nothing about the gate
    gated = replace(facts, readiness_gate=True)
    assert all(x.rule != "readiness-gate" for x in advise(rep, gated))


def test_errors_on_a_terminating_target_are_not_blamed_on_the_gate() -> None:
    pods, aws, acts = _rolled(term_at=10.0, removed_at=11.0, gate=False)
    aws = [e for e in aws if not (e["kind"] == "target_state" and e["target_id"] == "10.0.0.2")]
    aws += [_state(16.0, NEW, "healthy")] + _elb_errors(OLD, 10.1, 10.9, 5)
    facts = replace(_facts("no-gate-fast-rollout"), deregistration_delay_seconds=5)
    rules = [a.rule for a in _report(pods, aws, acts, facts).advice]
    assert rules == ["prestop-sleep"]


def test_max_unavailable_when_routing_went_empty() -> None:
    pods, aws, acts = _rolled(term_at=10.0, removed_at=None)
    aws += [_routing(10.1), _routing(13.0, NEW)]
    aws += _elb_errors(None, 10.2, 12.9, 15, status=503, reason="no_targets")
    facts = replace(_facts("full-recipe"), strategy="Recreate")
    rep = _report(pods, aws, acts, facts)
    assert [a.rule for a in rep.advice] == ["max-unavailable"]
    a = rep.advice[0]
    assert "maxUnavailable: 0 and maxSurge: 1" in a.message
    assert "no target to route to (10.10 s .. 13.00 s); 15 requests answered 503 no_targets; " \
        "strategy Recreate" in a.evidence
    # the recipe's maxUnavailable 0 of 3 cannot explain it: no such advice
    assert all(x.rule != "max-unavailable" for x in advise(rep, _facts("full-recipe")))


def test_keep_alive_shorter_than_idle_timeout() -> None:
    pods, aws, acts = _rolled()
    aws += _elb_errors(NEW, 20.0, 25.0, 4, reason="keepalive_race")
    facts = _facts("keepalive-shorter-than-idle")
    rep = _report(pods, aws, acts, facts)
    assert [a.rule for a in rep.advice] == ["keep-alive"]
    assert rep.advice[0].message == ("raise the app's keep-alive timeout from 0.2 s to more than "
                                     "the ALB idle timeout 60 s")
    assert "4 requests failed with 502 keepalive_race between 20.00 s and 25.00 s" in \
        rep.advice[0].evidence
    # keep-alive already above the idle timeout: the data do not say what to change
    longer = advise(rep, replace(facts, keep_alive_timeout_seconds=75))
    assert [a.rule for a in longer] == [UNEXPLAINED]


def test_backend_swap_when_a_deleted_group_cut_requests_in_flight() -> None:
    """ingress-swap-backend: 503 target_group_deleted points at the weighted migration."""
    pods, aws, acts = _rolled()
    aws += _elb_errors(OLD, 20.0, 20.1, 6, status=503, reason="target_group_deleted")
    rep = _report(pods, aws, acts, _facts("ingress-swap-backend"))
    assert [a.rule for a in rep.advice] == ["backend-swap"]
    assert "weighted forward action" in rep.advice[0].message
    assert rep.advice[0].evidence.startswith(
        "6 requests in flight ended with 503 target_group_deleted at 20.00 s")


def test_controller_release_when_skipped_pods_were_never_registered() -> None:
    """pod-cache-race (#3299 on v2.4.1): 503 no_targets, and the controller's `skip` actions
    for pods it never registered point at the release that polls for them."""
    aws = _elb_errors(None, 1.0, 10.0, 20, status=503, reason="no_targets")
    acts = [{"ts": T0 + 0.5, "kind": "skip", "tgb": "ns/demo", "pod": p, "target": t,
             "status": None, "reason": "pod not in cache"}
            for p, t in (("demo-a", "10.0.0.1:8080"), ("demo-b", "10.0.0.2:8080"))]
    rep = _report([], aws, acts, _facts("pod-cache-race"))
    assert [a.rule for a in rep.advice] == ["controller-release"]
    assert "v2.6.0" in rep.advice[0].message
    assert "2 pods skipped as 'pod not in cache' and never registered: demo-a, demo-b" in \
        rep.advice[0].evidence
    # a skipped pod registered later (v2.6.0 polls) is no such case
    acts.append({"ts": T0 + 9, "kind": "register", "tgb": "ns/demo", "pod": "demo-a",
                 "target": "10.0.0.1:8080"})
    acts.append({"ts": T0 + 9, "kind": "register", "tgb": "ns/demo", "pod": "demo-b",
                 "target": "10.0.0.2:8080"})
    rep = _report([], aws, acts, _facts("pod-cache-race"))
    assert "controller-release" not in [a.rule for a in rep.advice]


def test_unexplained_says_what_was_seen() -> None:
    pods, aws, acts = _rolled()
    aws += _elb_errors(NEW, 20.0, 21.0, 3, reason="target_reset")
    rep = _report(pods, aws, acts, _facts("full-recipe"))
    assert len(rep.advice) == 1
    a = rep.advice[0]
    assert a.rule == UNEXPLAINED and "no change suggested" in a.message
    assert "3 failed requests (502 target_reset:3) from 20.00 s to 21.00 s" in a.evidence


def test_advice_for_expected_errors_too_but_not_without_failures() -> None:
    pods, aws, acts = _rolled()
    aws += _elb_errors(OLD, 10.2, 14.9, 12)
    facts = _facts("gate-no-prestop")
    bug = load_builtin("gate-no-prestop").expect  # errors expected: the bug reproduced
    reproduced = _report(pods, aws, acts, facts, expect=bug)
    assert reproduced.verdict is not None and reproduced.verdict.ok
    assert [a.rule for a in reproduced.advice] == ["prestop-sleep"]  # its twin's fix
    assert "Advice (these errors were expected" in render_text(reproduced, width=200)
    assert _report(pods, aws, acts, facts, expect=None).advice == []
    assert _report(pods, aws, acts, None).advice == []  # no facts: no advice
    clean_pods, clean_aws, clean_acts = _rolled()
    stall = load_builtin("health-check-failing-gate").expect  # expects a stall; none happened
    rep = _report(clean_pods, clean_aws, clean_acts, facts, expect=stall)
    assert rep.verdict is not None and not rep.verdict.ok and rep.advice == []


def test_advice_in_text_and_json() -> None:
    pods, aws, acts = _rolled()
    aws += _elb_errors(OLD, 10.2, 14.9, 12)
    rep = _report(pods, aws, acts, _facts("gate-no-prestop"))
    text = render_text(rep, width=200)
    assert "Advice" in text
    assert "[prestop-sleep] raise preStop sleep from 0 s to at least 9 s" in text
    assert "seen: pod demo-old started terminating at 10.00 s" in text
    data = json.loads(json.dumps(rep.to_dict(with_records=False)))
    assert data["advice"][0]["rule"] == "prestop-sleep"
    assert set(data["advice"][0]) == {"rule", "message", "evidence"}


@pytest.mark.parametrize("name", ["full-recipe", "gate-no-prestop"])
def test_build_report_without_facts_is_unchanged(name: str) -> None:
    rep = build_report(_records([]), name=name, expect=load_builtin(name).expect)
    assert rep.advice == [] and rep.to_dict(with_records=False)["advice"] == []


def test_app_rejecting_the_load_from_the_start_is_named_per_request_kind() -> None:
    """405 from the app (no ALB reason) from the first second, long before any pod terminated:
    the load's requests are wrong, not the rollout."""
    pods, aws, acts = _rolled()
    records = _records([])
    for i in range(0, len(records), 4):  # every 4th request is load.requests[1], refused
        r = records[i]
        records[i] = Record(seq=r.seq, intended=r.intended, started=r.started, latency=0.002,
                            status=405, cls="405", req=1)
    rep = build_report(records, aws, pods, acts, name="t", expect=NO_ERRORS,
                       rollout_stalled=False, rollout_seconds=12, facts=_facts("full-recipe"))
    assert [a.rule for a in rep.advice] == ["load-requests"]
    assert rep.advice[0].evidence.startswith(
        "375 requests answered 4xx by the app itself, the first at 0.00 s before any pod "
        "terminated: 375 x 405 for load.requests[1]")


def test_app_4xx_only_after_termination_is_not_blamed_on_the_load() -> None:
    pods, aws, acts = _rolled(term_at=10.0)
    records = _records([])
    records.append(Record(seq=len(records), intended=T0 + 11, started=T0 + 11, latency=0.002,
                          status=404, cls="404"))
    rep = build_report(records, aws, pods, acts, name="t", expect=NO_ERRORS,
                       rollout_stalled=False, rollout_seconds=12, facts=_facts("full-recipe"))
    assert "load-requests" not in [a.rule for a in rep.advice]


def test_readiness_outage_when_live_pods_went_not_ready_before_no_targets() -> None:
    """readiness-all-fail (#3711): every pod not ready at once, none terminating, then 503
    no_targets: the advice moves the shared failure to the ALB health check."""
    pods = [{"ts": T0 + 1, "pod": p, "kind": "ready"} for p in ("demo-a", "demo-b")]
    pods += [{"ts": T0 + 20, "pod": p, "kind": "not_ready"} for p in ("demo-a", "demo-b")]
    aws = _elb_errors(None, 21.0, 30.0, 10, status=503, reason="no_targets")
    rep = _report(pods, aws, [], _facts("readiness-all-fail"))
    assert [a.rule for a in rep.advice] == ["readiness-outage"]
    assert "2 pods went not ready without terminating: demo-a, demo-b" in rep.advice[0].evidence
    # pods that were terminating when they went not ready are a rollout, not this
    pods += [{"ts": T0 + 19, "pod": p, "kind": "terminating"} for p in ("demo-a", "demo-b")]
    rep = _report(pods, aws, [], _facts("readiness-all-fail"))
    assert "readiness-outage" not in [a.rule for a in rep.advice]


def test_restart_in_place_when_a_restarted_pods_target_failed() -> None:
    """container-restart (#1275): the pod went not ready without terminating, its containers
    were ready again later, and the ALB's errors hit its target: fail readiness first."""
    pods = [{"ts": T0 - 30, "pod": "demo-a", "kind": "ready"},
            {"ts": T0 + 12, "pod": "demo-a", "kind": "not_ready"},
            {"ts": T0 + 15, "pod": "demo-a", "kind": "containers_ready"}]
    acts = [{"ts": T0 - 31, "kind": "register", "target": OLD, "pod": "demo-a"}]
    aws = _elb_errors(OLD, 11.5, 14.0, 20)
    rep = _report(pods, aws, acts, _facts("container-restart"))
    assert "restart-in-place" in [a.rule for a in rep.advice]
    item = next(a for a in rep.advice if a.rule == "restart-in-place")
    assert "preStopUnready" in item.message and "20 ALB errors on its target" in item.evidence
    # a pod that was terminating is a rollout's, and errors on another target are not its
    rolled = pods + [{"ts": T0 + 11, "pod": "demo-a", "kind": "terminating"}]
    assert "restart-in-place" not in [
        a.rule for a in _report(rolled, aws, acts, _facts("container-restart")).advice]
    other = _elb_errors(NEW, 11.5, 14.0, 20)
    assert "restart-in-place" not in [
        a.rule for a in _report(pods, other, acts, _facts("container-restart")).advice]


def test_node_shutdown_when_the_kubelet_ended_the_pod() -> None:
    """node-shutdown (#2702): the kubelet terminated the pod for a graceful node shutdown; it
    ended (phase Failed or Succeeded), never deleted, and the ALB's errors hit its target:
    fail the health check."""
    pods = [{"ts": T0 - 30, "pod": "demo-a", "kind": "ready"},
            {"ts": T0 + 12, "pod": "demo-a", "kind": "not_ready"},
            {"ts": T0 + 12, "pod": "demo-a", "kind": "ended"}]
    acts = [{"ts": T0 - 31, "kind": "register", "target": OLD, "pod": "demo-a"}]
    aws = _elb_errors(OLD, 8.0, 14.0, 30)
    rep = _report(pods, aws, acts, _facts("node-shutdown"))
    item = next(a for a in rep.advice if a.rule == "node-shutdown")
    assert "healthCheck.path" in item.message and "#2702" in item.message
    assert "ended at 12.00 s" in item.evidence and "30 ALB errors" in item.evidence
    assert "restart-in-place" not in [a.rule for a in rep.advice]
    # a pod deleted first is a rollout's; errors on another target are not its
    deleted = pods + [{"ts": T0 + 5, "pod": "demo-a", "kind": "terminating"}]
    assert "node-shutdown" not in [
        a.rule for a in _report(deleted, aws, acts, _facts("node-shutdown")).advice]
    other = _elb_errors(NEW, 8.0, 14.0, 30)
    assert "node-shutdown" not in [
        a.rule for a in _report(pods, other, acts, _facts("node-shutdown")).advice]


def test_unreachable_target_when_health_checks_time_out_on_a_ready_pod() -> None:
    """node-network-cut: 504 connect_timeout on a target whose pod was Ready and not
    terminating, found unhealthy with Target.Timeout by the ALB's health checks: only the
    health check settings shorten it."""
    pods = [{"ts": T0 - 30, "pod": "demo-a", "kind": "ready"}]
    acts = [{"ts": T0 - 31, "kind": "register", "target": OLD, "pod": "demo-a"}]
    ip, port = OLD.split(":")
    unhealthy = {"seq": 900, "ts": T0 + 14.0, "kind": "target_state", "target_id": ip,
                 "port": int(port), "from": "healthy", "to": "unhealthy",
                 "reason": "Target.Timeout", "tg_arn": "tg"}
    aws = _elb_errors(OLD, 18.0, 23.0, 40, status=504, reason="connect_timeout")
    rep = _report(pods, [unhealthy, *aws], acts, _facts("node-network-cut"))
    item = next(a for a in rep.advice if a.rule == "unreachable-target")
    assert "unhealthyThreshold" in item.message
    assert "40 requests to 10.0.0.1:8080 failed 504 connect_timeout" in item.evidence
    assert "unhealthy (Target.Timeout) at 14.00 s" in item.evidence
    # refused, not timed out (the app closed its port), or a target never found unhealthy
    refused = _elb_errors(OLD, 18.0, 23.0, 40)
    assert "unreachable-target" not in [
        a.rule for a in _report(pods, [unhealthy, *refused], acts,
                                _facts("node-network-cut")).advice]
    assert "unreachable-target" not in [
        a.rule for a in _report(pods, aws, acts, _facts("node-network-cut")).advice]
