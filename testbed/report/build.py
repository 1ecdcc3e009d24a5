"""Assemble a report from the four inputs and write it as text, JSON and PNG."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.loadgen.records import Record
from testbed.loadgen.summary import Summary, summarize
from testbed.report.timeline import BIN_SECONDS, error_bins
from testbed.report.verdict import Verdict, evaluate
from testbed.scenario.model import ExpectSpec


@dataclass
class Report:
    """Inputs kept verbatim plus what was derived from them."""

    name: str
    records: list[Record]
    aws_events: list[dict[str, Any]]
    pod_events: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    summary: Summary
    t0: float
    t_end: float
    verdict: Verdict | None = None
    alb_errors: dict[str, int] = field(default_factory=dict)  # fake-AWS elb_error by reason
    rollout_stalled: bool | None = None
    rollout_seconds: float | None = None
    registration_lags: dict[str, float] = field(default_factory=dict)  # pod -> seconds

    @property
    def registration_lag(self) -> float | None:
        """The slowest pod's ContainersReady -> RegisterTargets time, if any was seen."""
        return max(self.registration_lags.values(), default=None)

    def to_dict(self, with_records: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name, "t0": self.t0, "t_end": self.t_end,
            "summary": self.summary.to_dict(),
            "verdict": None if self.verdict is None else
            {"ok": self.verdict.ok, "reasons": self.verdict.reasons},
            "rollout": {"stalled": self.rollout_stalled, "seconds": self.rollout_seconds},
            "registration_lag_seconds": self.registration_lags,
            "alb_errors": self.alb_errors,
            "error_bins": {"width": BIN_SECONDS, "by_class": {
                k: {str(b): n for b, n in sorted(v.items())}
                for k, v in error_bins(self.records, self.t0).items()}},
            "aws_events": self.aws_events, "pod_events": self.pod_events,
            "controller_actions": self.actions,
        }
        if with_records:
            d["records"] = [r.to_dict() for r in self.records]
        return d


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


def registration_lags(pod_events: list[dict[str, Any]],
                      actions: list[dict[str, Any]]) -> dict[str, float]:
    """Per pod: seconds from its first ContainersReady to the controller's first register of
    it after that. The pre-v3.4 pod-watch bug (#3622) shows here before it shows anywhere else."""
    ready: dict[str, float] = {}
    for e in sorted(pod_events, key=lambda e: e["ts"]):
        if e.get("kind") == "containers_ready":
            ready.setdefault(str(e.get("pod")), e["ts"])
    lags: dict[str, float] = {}
    for a in sorted(actions, key=lambda a: a["ts"]):
        pod = str(a.get("pod") or "")
        if a.get("kind") == "register" and pod in ready and pod not in lags:
            lags[pod] = max(0.0, a["ts"] - ready[pod])
    return lags


def build_report(records: list[Record], aws_events: list[dict[str, Any]] | None = None,
                 pod_events: list[dict[str, Any]] | None = None,
                 actions: list[dict[str, Any]] | None = None, *, name: str = "run",
                 expect: ExpectSpec | None = None, rollout_stalled: bool | None = None,
                 rollout_seconds: float | None = None) -> Report:
    """Summarize, evaluate (when an expectation is given) and keep everything for rendering."""
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
                    registration_lags=registration_lags(pods, acts))
    if expect is not None:
        report.verdict = evaluate(expect, summary, rollout_stalled=rollout_stalled,
                                  rollout_seconds=rollout_seconds,
                                  registration_lag=report.registration_lag)
    return report


def write_report(report: Report, out_dir: str | Path, *, png: bool = True) -> dict[str, Path]:
    """report.txt, report.json and (optionally) timeline.png in out_dir; returns the paths."""
    from testbed.report.text import render_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"text": out / "report.txt", "json": out / "report.json"}
    paths["text"].write_text(render_text(report, width=120))
    paths["json"].write_text(json.dumps(report.to_dict(), indent=1, default=str))
    if png:
        from testbed.report.plot import plot_timeline

        paths["png"] = plot_timeline(report, out / "timeline.png")
    return paths
