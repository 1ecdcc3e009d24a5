"""The human summary: vegeta totals, error classes, error windows and the verdict."""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from testbed.loadgen.records import OK
from testbed.loadgen.summary import format_vegeta
from testbed.report.model import Report

WINDOW_GAP = 1.0  # errors closer than this (seconds) belong to one window


def error_windows(report: Report, gap: float = WINDOW_GAP) -> list[dict[str, Any]]:
    """Contiguous bursts of failed requests: where in the rollout the damage happened."""
    errs = sorted((r for r in report.records if r.cls != OK), key=lambda r: r.intended)
    windows: list[dict[str, Any]] = []
    for r in errs:
        t = r.intended - report.t0
        if windows and t - windows[-1]["end"] <= gap:
            w = windows[-1]
            w["end"] = t
        else:
            w = {"start": t, "end": t, "failed_by": t, "classes": Counter()}
            windows.append(w)
        # when the last of them came back: a request cut after seconds in flight failed then
        w["failed_by"] = max(w["failed_by"], t + (r.latency or 0.0))
        w["classes"][r.cls if not r.elb_error else f"{r.cls} ({r.elb_error})"] += 1
    return windows


def _events_near(report: Report, start: float, end: float, slack: float = 2.0) -> list[str]:
    out: list[tuple[float, str]] = []
    for e in report.pod_events:
        t = e["ts"] - report.t0
        if start - slack <= t <= end + slack:
            out.append((t, f"pod {e.get('pod')} {e.get('kind')}"))
    for a in report.actions:
        t = a["ts"] - report.t0
        if start - slack <= t <= end + slack:
            what = " ".join(str(a.get(k) or "") for k in ("kind", "target", "pod", "status"))
            out.append((t, "controller " + " ".join(what.split())))
    for e in report.aws_events:
        t = e["ts"] - report.t0
        if e.get("kind") in ("target_state", "routing", "registered", "deregistered",
                             "target_group_deleted") and start - slack <= t <= end + slack:
            if e["kind"] == "target_state":
                what = f"target {e.get('target_id')}:{e.get('port')} {e.get('from')}->{e.get('to')}"
            elif e["kind"] == "routing":
                what = f"routing set now {len(e.get('targets') or [])} targets"
            elif e["kind"] == "target_group_deleted":
                what = (f"aws target group deleted, with {len(e.get('targets') or [])} "
                        "targets")
            else:
                what = f"aws {e['kind']} {e.get('target_id', '')}".rstrip()
            out.append((t, what))
    # at most 12 lines, a deleted target group always among them (it explains its errors)
    keep = sorted(sorted(out, key=lambda x: "target group deleted" not in x[1])[:12])
    return [f"{t:8.2f}s  {what}" for t, what in keep]


def render(report: Report) -> Group:
    s = report.summary
    parts: list[Any] = [Text(f"Scenario {report.name}", style="bold"),
                        Text(format_vegeta(s))]
    if s.classes:
        t = Table("class", "count", "share", title="Request classes", title_justify="left")
        for k, v in s.classes.items():
            t.add_row(k, str(v), f"{v / s.requests * 100:.2f}%",
                      style="green" if k == OK else "red")
        parts.append(t)
    if s.elb_errors or report.alb_errors:
        t = Table("reason", "seen by client", "logged by fake ALB",
                  title="ALB-generated errors", title_justify="left")
        for reason in sorted(set(s.elb_errors) | set(report.alb_errors)):
            t.add_row(reason, str(s.elb_errors.get(reason, 0)),
                      str(report.alb_errors.get(reason, 0)))
        parts.append(t)
    for w in error_windows(report):
        classes = ", ".join(f"{k}:{v}" for k, v in w["classes"].most_common())
        parts.append(Text(f"Errors {w['start']:.2f}s .. {w['end']:.2f}s: {classes}",
                          style="red"))
        for line in _events_near(report, w["start"], w["failed_by"]):
            parts.append(Text("    " + line))
    for f in report.faults:
        if f.get("started") is None:
            parts.append(Text(f"Fault {f['index']} {f['action']}: did not start "
                              f"({f.get('error') or 'no trigger'})", style="yellow"))
            continue
        a, b = f["started"] - report.t0, (f.get("ended") or f["started"]) - report.t0
        parts.append(Text(f"Fault {f['index']} {f['action']} {a:.2f}s .. {b:.2f}s "
                          f"(+{f.get('settle', 0):g}s settle): {f.get('target') or ''}"
                          + (f" error: {f['error']}" if f.get("error") else ""),
                          style="magenta"))
    if report.rollout_stalled is not None or report.rollout_seconds is not None:
        dur = "" if report.rollout_seconds is None else f" in {report.rollout_seconds:.1f}s"
        parts.append(Text("Rollout: " + ("stalled" if report.rollout_stalled else
                                         "completed" + dur)))
    if report.registration_lags:
        lags = report.registration_lags
        parts.append(Text(f"Registration lag (ContainersReady -> RegisterTargets): max "
                          f"{max(lags.values()):.1f}s, min {min(lags.values()):.1f}s over "
                          f"{len(lags)} pods"))
    if report.describe_per_minute is not None:
        calls = report.describe_calls
        parts.append(Text(f"DescribeTargetHealth by the controller: {sum(calls.values())} calls"
                          f" on {len(calls)} target group(s) in {report.t_end - report.t0:.0f}s,"
                          f" {report.describe_per_minute:.1f} per minute per group"))
    if report.contention is not None:
        c = report.contention
        parts.append(Text(("Machine OVERLOADED: " if c.overloaded else "Machine: ") +
                          c.describe(), style="yellow" if c.overloaded else ""))
    if report.verdict is not None:
        verdict = report.verdict
        parts.append(Text(("PASS" if verdict.ok else "FAIL") + ": " + "; ".join(verdict.reasons),
                          style="bold green" if verdict.ok else "bold red"))
    if report.advice:
        title = "Advice" if not (report.verdict and report.verdict.ok) else \
            "Advice (these errors were expected; this is what would prevent them)"
        parts.append(Text(title + " - rules: testbed check, docs/check.md", style="bold"))
        for a in report.advice:
            parts.append(Text(f"  [{a.rule}] {a.message}", style="yellow"))
            parts.append(Text(f"      seen: {a.evidence}"))
    return Group(*parts)


def render_text(report: Report, width: int = 100) -> str:
    """Plain text (no colour codes) for files and logs."""
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(render(report))
    return console.export_text()


def print_report(report: Report, console: Console | None = None) -> None:
    (console or Console()).print(render(report))
