"""What a report holds: the run's inputs kept verbatim and what was derived from them.

Its own module so that the renderers (text.py, plot.py) need not import the builder
(build.py) nor the builder them; write.py is the one module that imports every renderer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from testbed.loadgen.records import Record
from testbed.loadgen.summary import Summary
from testbed.report.timeline import BIN_SECONDS, error_bins
from testbed.report.verdict import Verdict

# Above these the machine, not the rollout, may explain a failure: the load generator sent
# requests this late against their schedule, or the host ran this many runnable tasks per core.
LATE_P99_SECONDS = 0.25
LOAD_PER_CPU = 4.0


@dataclass
class Contention:
    """How busy the machine was during the run (runs side by side share its CPUs)."""

    lateness_p99: float  # seconds the load generator started requests behind schedule
    lateness_max: float
    load_max: float  # highest 1-minute load average sampled during the load
    cpus: int

    @property
    def overloaded(self) -> bool:
        return (self.lateness_p99 > LATE_P99_SECONDS
                or self.load_max > LOAD_PER_CPU * self.cpus)

    def describe(self) -> str:
        return (f"load generator lateness p99 {self.lateness_p99 * 1000:.0f} ms (max "
                f"{self.lateness_max * 1000:.0f} ms), host load average up to "
                f"{self.load_max:.1f} on {self.cpus} CPUs")


@dataclass(frozen=True)
class Advice:
    """One change a failed run's timeline points to (built by testbed/report/advice.py)."""

    rule: str  # the `testbed check` rule id it belongs to, or "unexplained"
    message: str  # the concrete change, with numbers
    evidence: str  # what in the timeline shows it: times since the load started, pods, targets

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


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
    contention: Contention | None = None
    advice: list[Advice] = field(default_factory=list)  # only after a failed verdict
    # faults injected (testbed/run/faults.py FaultRecord.to_dict) and the failed requests
    # their windows excused (expect.faultErrors: allowed)
    faults: list[dict[str, Any]] = field(default_factory=list)
    fault_errors: int = 0

    def fault_windows(self) -> list[tuple[float, float]]:
        return fault_windows(self.faults)

    @property
    def describe_calls(self) -> dict[str, int]:
        """The controller's DescribeTargetHealth calls per target group (the fake AWS's
        `described` events), over the report's window."""
        return dict(Counter(str(e.get("tg_arn")) for e in self.aws_events
                            if e.get("kind") == "described" and e.get("caller") == "controller"))

    @property
    def describe_per_minute(self) -> float | None:
        """Those calls per minute per target group (the mean over the groups that had any)."""
        calls = self.describe_calls
        minutes = (self.t_end - self.t0) / 60
        if not calls or minutes <= 0:
            return None
        return sum(calls.values()) / len(calls) / minutes

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
            "describe_target_health": {"calls": self.describe_calls,
                                       "per_minute_per_group": self.describe_per_minute},
            "alb_errors": self.alb_errors,
            "error_bins": {"width": BIN_SECONDS, "by_class": {
                k: {str(b): n for b, n in sorted(v.items())}
                for k, v in error_bins(self.records, self.t0).items()}},
            "aws_events": self.aws_events, "pod_events": self.pod_events,
            "controller_actions": self.actions,
            "contention": None if self.contention is None else {
                **vars(self.contention), "overloaded": self.contention.overloaded},
            "advice": [a.to_dict() for a in self.advice],
            "faults": self.faults, "fault_errors": self.fault_errors,
        }
        if with_records:
            d["records"] = [r.to_dict() for r in self.records]
        return d


def fault_windows(faults: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """[start, end + settle] of every fault that started."""
    return [(f["started"], (f.get("ended") or f["started"]) + float(f.get("settle") or 0))
            for f in faults if f.get("started") is not None]


def in_windows(rec: Record, windows: list[tuple[float, float]]) -> bool:
    """The request was under way at some point of a window."""
    return any(rec.intended <= b and rec.intended + rec.latency >= a for a, b in windows)


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
