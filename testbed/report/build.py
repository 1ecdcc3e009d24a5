"""Assemble a report from the four inputs: load records, fake AWS events, pod events and
controller actions."""

from __future__ import annotations

import os
from collections import Counter
from typing import TYPE_CHECKING, Any

from testbed.loadgen.records import OK, Record
from testbed.loadgen.summary import summarize
from testbed.report.advice import advise
from testbed.report.model import Contention, Report, in_windows, registration_lags
from testbed.report.verdict import evaluate
from testbed.scenario.model import Expect

if TYPE_CHECKING:
    from testbed.check.facts import Facts


def _bounds(records: list[Record], *event_lists: list[dict[str, Any]]) -> tuple[float, float]:
    if records:
        t0 = min(r.intended for r in records)
        end = max(r.intended + r.latency for r in records)
    else:
        stamps = [e["ts"] for evs in event_lists for e in evs]
        t0 = min(stamps, default=0.0)
        end = max(stamps, default=t0)
    stamps = [e["ts"] for evs in event_lists for e in evs]
    return t0, max([end, *stamps])


def build_report(records: list[Record], aws_events: list[dict[str, Any]] | None = None,
                 pod_events: list[dict[str, Any]] | None = None,
                 actions: list[dict[str, Any]] | None = None, *, name: str = "run",
                 expect: Expect | None = None, rollout_stalled: bool | None = None,
                 rollout_seconds: float | None = None,
                 host_load: list[float] | None = None, facts: Facts | None = None,
                 faults: list[dict[str, Any]] | None = None) -> Report:
    """Summarize, evaluate (when an expectation is given) and keep everything for rendering;
    with the workload's checked `facts`, a failed verdict also gets advice (advice.py)."""
    aws = list(aws_events or [])
    pods = list(pod_events or [])
    acts = list(actions or [])
    t0, t_end = _bounds(records, aws, pods, acts)
    summary = summarize(records)
    alb_errors = dict(Counter(str(e.get("reason")) for e in aws
                              if e.get("kind") == "elb_error").most_common())
    report = Report(name=name, records=list(records), aws_events=aws, pod_events=pods,
                    actions=acts, summary=summary, t0=t0, t_end=t_end, alb_errors=alb_errors,
                    rollout_stalled=rollout_stalled, rollout_seconds=rollout_seconds,
                    registration_lags=registration_lags(pods, acts),
                    contention=contention(records, host_load or []))
    report.faults = list(faults or [])
    judged = summary
    if expect is not None and expect.fault_errors == "allowed" and report.faults:
        windows = report.fault_windows()
        kept = [r for r in records if r.cls == OK or not in_windows(r, windows)]
        report.fault_errors = len(records) - len(kept)
        judged = summarize(kept)
    if expect is not None:
        report.verdict = evaluate(expect, judged, rollout_stalled=rollout_stalled,
                                  rollout_seconds=rollout_seconds,
                                  registration_lag=report.registration_lag)
        if report.fault_errors:
            report.verdict.reasons.append(
                f"{report.fault_errors} failed requests inside fault windows, allowed "
                "(expect.faultErrors)")
        c = report.contention
        if not report.verdict.ok and c is not None and c.overloaded:
            report.verdict.reasons.append(
                f"the machine was overloaded ({c.describe()}): this failure may come from CPU "
                "contention rather than the rollout; run it alone (--parallel 1) to check")
    if facts is not None:
        report.advice = advise(report, facts)
    return report


def contention(records: list[Record], host_load: list[float]) -> Contention | None:
    """Lateness of the load generator against its own schedule, and the host's load."""
    if not records:
        return None
    late = sorted(max(0.0, r.started - r.intended) for r in records)
    return Contention(lateness_p99=late[min(len(late) - 1, int(0.99 * len(late)))],
                      lateness_max=late[-1], load_max=max(host_load, default=0.0),
                      cpus=os.cpu_count() or 1)
