"""Reports from synthetic runs: verdicts, bins, lanes, text, JSON and the PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from testbed.loadgen.records import Record
from testbed.loadgen.summary import summarize
from testbed.report import build_report, evaluate, write_report
from testbed.report.model import registration_lags
from testbed.report.text import error_windows, render_text
from testbed.report.timeline import build_lanes, error_bins, ok_bins
from testbed.scenario import load_builtin, parse_scenario

T0 = 1_800_000_000.0


def _records(n: int = 400, rate: float = 40.0,
             errors: dict[int, tuple[str, int, str | None]] | None = None) -> list[Record]:
    out = []
    for i in range(n):
        cls, status, elb = (errors or {}).get(i, ("ok", 200, None))
        out.append(Record(seq=i, intended=T0 + i / rate, started=T0 + i / rate, latency=0.004,
                          status=status, cls=cls, elb_error=elb,
                          pod=None if cls != "ok" else f"demo-{i % 2}"))
    return out


def _scenario_events() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    pods = [
        {"ts": T0 - 5, "pod": "demo-0", "kind": "created"},
        {"ts": T0 - 4, "pod": "demo-0", "kind": "containers_ready"},
        {"ts": T0 - 3, "pod": "demo-0", "kind": "ready"},
        {"ts": T0 + 2, "pod": "demo-1", "kind": "created"},
        {"ts": T0 + 2.5, "pod": "demo-1", "kind": "scheduled"},
        {"ts": T0 + 3, "pod": "demo-1", "kind": "containers_ready"},
        {"ts": T0 + 4, "pod": "demo-1", "kind": "gate_true"},
        {"ts": T0 + 4, "pod": "demo-1", "kind": "ready"},
        {"ts": T0 + 4.2, "pod": "demo-0", "kind": "terminating"},
        {"ts": T0 + 9, "pod": "demo-0", "kind": "deleted"},
    ]
    aws = [
        {"seq": 1, "ts": T0 + 3.1, "kind": "registered", "tg_arn": "tg", "target_id": "10.0.0.2",
         "port": 8080},
        {"seq": 2, "ts": T0 + 3.1, "kind": "target_state", "tg_arn": "tg",
         "target_id": "10.0.0.2", "port": 8080, "from": None, "to": "initial",
         "reason": "Elb.RegistrationInProgress"},
        {"seq": 3, "ts": T0 + 3.9, "kind": "target_state", "tg_arn": "tg",
         "target_id": "10.0.0.2", "port": 8080, "from": "initial", "to": "healthy",
         "reason": None},
        {"seq": 4, "ts": T0 + 3.9, "kind": "routing", "tg_arn": "tg",
         "targets": ["10.0.0.1:8080", "10.0.0.2:8080"]},
        {"seq": 5, "ts": T0 + 4.3, "kind": "target_state", "tg_arn": "tg",
         "target_id": "10.0.0.1", "port": 8080, "from": "healthy", "to": "draining",
         "reason": "Target.DeregistrationInProgress"},
        {"seq": 6, "ts": T0 + 6.0, "kind": "routing", "tg_arn": "tg",
         "targets": ["10.0.0.2:8080"]},
        {"seq": 7, "ts": T0 + 5.0, "kind": "elb_error", "status": 502, "reason": "target_refused",
         "target": "10.0.0.1:8080", "listener_port": 80, "path": "/"},
        {"seq": 8, "ts": T0 + 7.3, "kind": "target_state", "tg_arn": "tg",
         "target_id": "10.0.0.1", "port": 8080, "from": "draining", "to": "unused",
         "reason": "Target.NotRegistered"},
    ]
    acts = [
        {"ts": T0 + 3.05, "kind": "register", "target": "10.0.0.2:8080", "pod": "demo-1"},
        {"ts": T0 + 4.0, "kind": "gate", "target": "10.0.0.2:8080", "pod": "demo-1"},
        {"ts": T0 + 4.25, "kind": "deregister", "target": "10.0.0.1:8080", "pod": "demo-0"},
    ]
    return pods, aws, acts


ERRS = {200: ("502", 502, "target_refused"), 201: ("502", 502, "target_refused"),
        205: ("conn_reset", 0, None), 330: ("503", 503, "no_targets")}


def test_evaluate_zero_errors() -> None:
    exp = load_builtin("full-recipe").expect
    v = evaluate(exp, summarize(_records()))
    assert v.ok and "zero errors in 400 requests" in v.reasons[0]
    v = evaluate(exp, summarize(_records(errors=ERRS)))
    assert not v.ok and "expected zero errors, got 4 of 400" in v.reasons[0]
    assert "502:2" in v.reasons[0]


def test_evaluate_expected_bug() -> None:
    exp = load_builtin("gate-no-prestop").expect  # classes [502], minErrors 1
    assert not evaluate(exp, summarize(_records())).ok  # bug did not reproduce
    v = evaluate(exp, summarize(_records(errors={5: ("502", 502, None)})))
    assert v.ok and "as expected" in v.reasons[0]
    v = evaluate(exp, summarize(_records(errors=ERRS)))
    assert not v.ok and "unexpected error classes" in v.reasons[0]


def test_evaluate_rollout_expectations() -> None:
    s = summarize(_records())
    stall = load_builtin("health-check-failing-gate").expect
    assert evaluate(stall, s, rollout_stalled=True).ok
    assert not evaluate(stall, s, rollout_stalled=False).ok
    assert not evaluate(stall, s).ok  # outcome unknown
    plain = parse_scenario("name: x").expect
    assert not evaluate(plain, s, rollout_stalled=True).ok
    slow = load_builtin("backoff-requeue").expect  # minRolloutSeconds 43
    assert evaluate(slow, s, rollout_stalled=False, rollout_seconds=47).ok
    v = evaluate(slow, s, rollout_stalled=False, rollout_seconds=12)
    assert not v.ok and "expected at least 43s" in v.reasons[0]
    fast = load_builtin("steady-requeue").expect  # maxRolloutSeconds 42
    assert not evaluate(fast, s, rollout_stalled=False, rollout_seconds=50).ok
    assert not evaluate(fast, s, rollout_stalled=False).ok  # duration expected, not measured
    assert not evaluate(plain, summarize([])).ok


def test_registration_lag_from_pod_watch_and_controller_log() -> None:
    pods = [{"ts": 100.0, "pod": "a", "kind": "created"},
            {"ts": 105.0, "pod": "a", "kind": "containers_ready"},
            {"ts": 106.0, "pod": "b", "kind": "containers_ready"},
            {"ts": 130.0, "pod": "a", "kind": "containers_ready"},  # a restart: first counts
            {"ts": 107.0, "pod": "c", "kind": "containers_ready"}]  # never registered
    acts = [{"ts": 104.0, "kind": "register", "pod": "z", "target": "10.0.0.9:80"},
            {"ts": 116.0, "kind": "register", "pod": "a", "target": "10.0.0.1:80"},
            {"ts": 106.5, "kind": "register", "pod": "b", "target": "10.0.0.2:80"},
            {"ts": 140.0, "kind": "register", "pod": "a", "target": "10.0.0.1:80"},
            {"ts": 116.1, "kind": "gate", "pod": "b", "status": "True"}]
    assert registration_lags(pods, acts) == {"a": 11.0, "b": 0.5}
    s = summarize(_records())
    bug, fix = load_builtin("no-pod-watch"), load_builtin("pod-watch")
    rep = build_report(_records(), [], pods, acts, expect=bug.expect, rollout_stalled=False,
                       rollout_seconds=20)
    assert rep.registration_lag == 11.0 and rep.verdict is not None and rep.verdict.ok
    assert rep.to_dict(with_records=False)["registration_lag_seconds"] == {"a": 11.0, "b": 0.5}
    assert "Registration lag (ContainersReady -> RegisterTargets): max 11.0s" in render_text(rep)
    v = evaluate(fix.expect, s, rollout_stalled=False, rollout_seconds=9, registration_lag=11.0)
    assert not v.ok and "expected at most 3s" in v.reasons[0]
    assert evaluate(fix.expect, s, rollout_stalled=False, registration_lag=0.4).ok
    v = evaluate(bug.expect, s, rollout_stalled=False, registration_lag=0.4)
    assert not v.ok and "expected at least 5s" in v.reasons[0]
    v = evaluate(bug.expect, s, rollout_stalled=False)
    assert not v.ok and "no pod was seen" in v.reasons[0]


def test_error_bins_and_windows() -> None:
    recs = _records(errors=ERRS)
    bins = error_bins(recs, T0)
    assert bins == {"502": {20: 2}, "conn_reset": {20: 1}, "503": {33: 1}}
    assert sum(ok_bins(recs, T0).values()) == 396
    rep = build_report(recs, name="t")
    wins = error_windows(rep)
    assert [(round(w["start"], 3), round(w["end"], 3)) for w in wins] == [(5.0, 5.125),
                                                                          (8.25, 8.25)]
    assert wins[0]["classes"]["502 (target_refused)"] == 2


def test_lanes() -> None:
    pods, aws, acts = _scenario_events()
    lanes = build_lanes(pods, aws, acts, T0, T0 + 10)
    p0 = [(s.state, round(s.start, 3), round(s.end, 3)) for s in lanes.pods if s.row == "demo-0"]
    assert p0 == [("pending", -5, -4), ("not_ready", -4, -3), ("ready", -3, 4.2),
                  ("terminating", 4.2, 9)]
    t1 = [(s.state, round(s.start, 2)) for s in lanes.targets if s.row == "10.0.0.1:8080"]
    assert t1 == [("draining", 4.3), ("unused", 7.3)]
    assert [n for _, n in lanes.routing] == [2, 1]
    assert lanes.target_pods == {"10.0.0.2:8080": "demo-1", "10.0.0.1:8080": "demo-0"}
    assert ("demo-1", 4, "gate_true") in lanes.pod_marks


def test_text_report_and_files(tmp_path: Path) -> None:
    pods, aws, acts = _scenario_events()
    rep = build_report(_records(errors=ERRS), aws, pods, acts, name="gate-no-prestop",
                       expect=load_builtin("gate-no-prestop").expect, rollout_stalled=False,
                       rollout_seconds=12.5)
    assert rep.alb_errors == {"target_refused": 1}
    text = render_text(rep, width=120)
    assert "Requests      [total, rate, throughput]         400," in text
    assert "Scenario gate-no-prestop" in text and "target_refused" in text
    assert "Errors 5.00s .. 5.12s" in text
    assert "controller deregister 10.0.0.1:8080 demo-0" in text
    assert "Rollout: completed in 12.5s" in text
    assert "FAIL: unexpected error classes" in text
    paths = write_report(rep, tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["summary"]["errors"] == 4 and data["verdict"]["ok"] is False
    assert data["error_bins"]["by_class"]["502"] == {"20": 2}
    assert len(data["records"]) == 400 and data["controller_actions"] == acts
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["text"].read_text() == render_text(rep, width=120)


def test_report_without_records_or_events(tmp_path: Path) -> None:
    rep = build_report([], name="empty")
    assert rep.summary.requests == 0
    paths = write_report(rep, tmp_path)
    assert paths["png"].exists()


@pytest.mark.parametrize("name", ["full-recipe", "listener-missing"])
def test_passing_verdict_printed(name: str) -> None:
    sc = load_builtin(name)
    rep = build_report(_records(), expect=sc.expect, rollout_stalled=sc.expect.rollout_stalls,
                       name=name)
    assert "PASS" in render_text(rep)


def test_deleted_target_group_ends_its_targets_and_explains_its_cut_requests() -> None:
    """ingress-swap-backend: requests sent at 5 s, cut when the group is deleted at 9 s. The
    window lists the deletion (when they failed, not when they were sent), and the targets'
    lanes end there instead of draining on to the end of the run."""
    recs = _records(n=400)
    cut = [Record(seq=1000 + i, intended=T0 + 5 + i * 0.05, started=T0 + 5 + i * 0.05,
                  latency=4.0 - i * 0.05, status=503, cls="503",
                  elb_error="target_group_deleted") for i in range(10)]
    aws = [
        {"seq": 1, "ts": T0 + 1, "kind": "target_state", "tg_arn": "old",
         "target_id": "10.0.0.1", "port": 8080, "from": None, "to": "healthy", "reason": None},
        {"seq": 2, "ts": T0 + 8.5, "kind": "target_state", "tg_arn": "old",
         "target_id": "10.0.0.1", "port": 8080, "from": "healthy", "to": "draining",
         "reason": "Target.DeregistrationInProgress"},
        *[{"seq": 10 + i, "ts": T0 + 8.6, "kind": "routing", "tg_arn": "new",
           "targets": []} for i in range(14)],  # more lines than a window prints
        {"seq": 40, "ts": T0 + 9.0, "kind": "target_group_deleted", "tg_arn": "old",
         "targets": ["10.0.0.1:8080"]},
    ]
    rep = build_report(recs + cut, aws, name="t")
    (win,) = error_windows(rep)
    assert round(win["failed_by"], 3) == 9.0
    assert "aws target group deleted, with 1 targets" in render_text(rep, width=200)
    lanes = build_lanes([], aws, [], T0, T0 + 20)
    assert [(s.state, s.start, s.end) for s in lanes.targets] == [("healthy", 1.0, 8.5),
                                                                  ("draining", 8.5, 9.0)]


def test_describe_target_health_rate_counts_the_controllers_calls_per_group() -> None:
    """The fake AWS's `described` events (caller from the User-Agent): only the controller's
    calls count, per target group, over the report's window."""
    recs = _records()
    t0 = min(r.intended for r in recs)
    aws = [{"ts": t0 + i, "kind": "described", "tg_arn": "tg-a", "caller": "controller"}
           for i in range(0, 8, 2)]
    aws += [{"ts": t0 + 1, "kind": "described", "tg_arn": "tg-a", "caller": "other"}]
    rep = build_report(recs, aws)
    assert rep.describe_calls == {"tg-a": 4}
    minutes = (rep.t_end - rep.t0) / 60
    assert rep.describe_per_minute == pytest.approx(4 / minutes)
    assert "DescribeTargetHealth by the controller: 4 calls on 1 target group(s)" in \
        render_text(rep, width=200)
    assert build_report(recs, []).describe_per_minute is None
