"""Faults: when each trigger fires (from the pod watch's events), the windows a report excuses,
and the declaration."""

from __future__ import annotations

import pytest

from testbed.loadgen.records import Record
from testbed.report import build_report
from testbed.report.model import fault_windows
from testbed.run.faults import ACTIONS, FaultRecord, trigger_time
from testbed.scenario import ScenarioError, parse_scenario
from testbed.scenario.model import FAULT_ACTIONS

T0 = 1_800_000_000.0
EVENTS = [
    {"ts": T0 - 50, "pod": "old-a", "kind": "created"},
    {"ts": T0 - 40, "pod": "old-a", "kind": "ready"},
    {"ts": T0 + 1, "pod": "new-a", "kind": "created"},
    {"ts": T0 + 6, "pod": "new-a", "kind": "ready"},
    {"ts": T0 + 7, "pod": "old-a", "kind": "terminating"},
]


@pytest.mark.parametrize(("event", "at"), [
    ("beforeRollout", T0), ("rolloutStart", T0), ("firstNewPodCreated", T0 + 1),
    ("firstNewPodReady", T0 + 6), ("firstOldPodTerminating", T0 + 7)])
def test_triggers_from_pod_events(event: str, at: float) -> None:
    assert trigger_time(event, EVENTS, T0) == at


def test_a_trigger_that_did_not_happen_yet_is_none() -> None:
    # old-a's ready before the rollout is not a new pod's
    assert trigger_time("firstNewPodReady", EVENTS[:3], T0) is None
    assert trigger_time("firstOldPodTerminating", EVENTS[:4], T0) is None


def test_every_declared_action_has_a_function() -> None:
    assert set(ACTIONS) == set(FAULT_ACTIONS)


def _rec(seq: int, at: float, cls: str = "ok") -> Record:
    return Record(seq=seq, intended=at, started=at, latency=0.01,
                  status=200 if cls == "ok" else int(cls), cls=cls,
                  elb_error=None if cls == "ok" else "no_targets", pod=None)


def test_errors_inside_a_fault_window_are_excused_only_when_allowed() -> None:
    fault = FaultRecord(0, "bindingReplace", settle=5.0, target="demo -> demo-b",
                        started=T0 + 10, ended=T0 + 12)
    assert fault_windows([fault.to_dict()]) == [(T0 + 10, T0 + 17)]
    recs = [_rec(i, T0 + i) for i in range(30)]
    recs[14] = _rec(14, T0 + 14, "503")  # inside
    sc = parse_scenario("name: x\nexpect: {faultErrors: allowed}")
    rep = build_report(recs, expect=sc.expect, rollout_stalled=False,
                       faults=[fault.to_dict()])
    assert rep.verdict is not None and rep.verdict.ok, rep.verdict.reasons
    assert rep.fault_errors == 1 and rep.summary.errors == 1  # still counted in the summary
    recs[25] = _rec(25, T0 + 25, "503")  # outside
    rep = build_report(recs, expect=sc.expect, rollout_stalled=False,
                       faults=[fault.to_dict()])
    assert rep.verdict is not None and not rep.verdict.ok
    strict = parse_scenario("name: x").expect
    rep = build_report(recs[:20], expect=strict, rollout_stalled=False, faults=[fault.to_dict()])
    assert rep.verdict is not None and not rep.verdict.ok and rep.fault_errors == 0


def test_faults_on_shared_parts_make_their_run_run_alone() -> None:
    from testbed.scenario import plan
    assert plan.runs_alone(parse_scenario("name: x\nfaults: [{action: awsRestart}]"))
    assert plan.runs_alone(parse_scenario(
        "name: x\ncluster: {workers: 2}\nfaults: [{action: nodeShutdown}]"))
    # the controller and its webhook are the run's own; API faults hit the run's groups only,
    # a network cut the run's pods only
    for action in ("webhookDown", "controllerRestart", "bindingReplace", "awsThrottle",
                   "nodeNetworkCut"):
        assert not plan.runs_alone(parse_scenario(f"name: x\nfaults: [{{action: {action}}}]"))


def test_a_before_rollout_fault_holds_the_rollout_until_it_is_in_effect() -> None:
    import threading
    import time

    from testbed.run import faults as faults_mod

    order: list[str] = []
    entered, release = threading.Event(), threading.Event()

    def slow(r: object, fault: object, since: float, span: faults_mod.Span) -> str:
        entered.set()
        assert release.wait(10)  # the test says when the fault takes effect
        order.append("in effect")
        span.begun()
        span.hold(600)  # ends when the faults are stopped, not in 10 minutes
        return "x"

    class R:
        sc = parse_scenario("name: x\nfaults: [{action: awsThrottle, after: beforeRollout}]")
        ns, stack, recorder, cancel = "ns", None, None, threading.Event()

    def rollout(f: faults_mod.Faults) -> None:
        f.start(time.time())
        order.append("rollout")

    old = faults_mod.ACTIONS["awsThrottle"]
    faults_mod.ACTIONS["awsThrottle"] = slow  # type: ignore[assignment]
    try:
        f = faults_mod.Faults(R())  # type: ignore[arg-type]
        starter = threading.Thread(target=rollout, args=(f,))
        starter.start()
        assert entered.wait(10)
        assert order == [] and starter.is_alive()  # the rollout waits for the fault
        release.set()
        starter.join(10)
        (rec,) = f.stop()
    finally:
        release.set()
        faults_mod.ACTIONS["awsThrottle"] = old
    assert order == ["in effect", "rollout"] and rec.target == "x" and not rec.error


def test_fault_declaration_errors_name_the_field() -> None:
    with pytest.raises(ScenarioError) as e:
        parse_scenario("name: x\nfaults: [{action: nodeExplode}]")
    assert "faults[0].action: expected one of controllerRestart" in str(e.value)
    with pytest.raises(ScenarioError):
        parse_scenario("name: x\nfaults: [{action: unready, after: whenever}]")
