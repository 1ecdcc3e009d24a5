"""Turn raw records and events into time-aligned series (seconds since the attack started)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from testbed.loadgen.records import OK, Record

BIN_SECONDS = 0.25


def error_bins(records: list[Record], t0: float,
               width: float = BIN_SECONDS) -> dict[str, dict[int, int]]:
    """class -> {bin index: failed requests}, binned by intended send time."""
    out: dict[str, dict[int, int]] = defaultdict(dict)
    for r in records:
        if r.cls == OK:
            continue
        b = int((r.intended - t0) // width)
        out[r.cls][b] = out[r.cls].get(b, 0) + 1
    return dict(out)


def ok_bins(records: list[Record], t0: float, width: float = BIN_SECONDS) -> dict[int, int]:
    return dict(Counter(int((r.intended - t0) // width) for r in records if r.cls == OK))


@dataclass
class Span:
    """A coloured stretch of one row of the timeline."""

    row: str
    start: float
    end: float
    state: str


@dataclass
class Lanes:
    pods: list[Span] = field(default_factory=list)
    targets: list[Span] = field(default_factory=list)
    pod_marks: list[tuple[str, float, str]] = field(default_factory=list)  # row, t, kind
    routing: list[tuple[float, int]] = field(default_factory=list)  # t, targets in routing set
    actions: list[tuple[float, str, str]] = field(default_factory=list)  # t, kind, label
    target_pods: dict[str, str] = field(default_factory=dict)  # "ip:port" -> pod


# pod lifecycle: which phase a pod is in after each event kind
_POD_PHASE = {"created": "pending", "scheduled": "pending", "containers_ready": "not_ready",
              "ready": "ready", "gate_true": "ready", "not_ready": "not_ready",
              "terminating": "terminating", "ended": None, "deleted": None}
_POD_MARKS = ("containers_ready", "gate_true", "ready")


def _spans(row: str, changes: list[tuple[float, str | None]], end: float) -> list[Span]:
    spans: list[Span] = []
    changes = sorted(changes, key=lambda c: c[0])
    for i, (t, state) in enumerate(changes):
        nxt = changes[i + 1][0] if i + 1 < len(changes) else end
        if state is not None and nxt > t:
            spans.append(Span(row, t, nxt, state))
    return spans


def build_lanes(pod_events: list[dict[str, Any]], aws_events: list[dict[str, Any]],
                actions: list[dict[str, Any]], t0: float, t_end: float) -> Lanes:
    """Pod phases, target states, routing-set size and controller actions on one time axis."""
    lanes = Lanes()
    end = t_end - t0
    by_pod: dict[str, list[tuple[float, str | None]]] = defaultdict(list)
    for ev in sorted(pod_events, key=lambda e: e["ts"]):
        kind, t = ev.get("kind", ""), ev["ts"] - t0
        if kind in _POD_PHASE:
            phase = _POD_PHASE[kind]
            prev = by_pod[ev["pod"]][-1][1] if by_pod[ev["pod"]] else None
            # "ready" after terminating cannot happen; keep terminating sticky
            if prev == "terminating" and phase not in (None, "terminating"):
                phase = prev
            by_pod[ev["pod"]].append((t, phase))
        if kind in _POD_MARKS:
            lanes.pod_marks.append((ev["pod"], t, kind))
    for pod, ch in by_pod.items():
        lanes.pods.extend(_spans(pod, ch, end))
    by_target: dict[str, list[tuple[float, str | None]]] = defaultdict(list)
    for ev in sorted(aws_events, key=lambda e: (e["ts"], e.get("seq", 0))):
        t, kind = ev["ts"] - t0, ev.get("kind")
        if kind == "target_state":
            key = f"{ev['target_id']}:{ev['port']}"
            state = ev.get("to")
            by_target[key].append((t, None if state in (None, "gone", "removed") else state))
        elif kind == "routing":
            lanes.routing.append((t, len(ev.get("targets") or [])))
        elif kind == "target_group_deleted":  # its targets end with it, whatever their state
            for key in ev.get("targets") or []:
                by_target[str(key)].append((t, None))
        elif kind == "deregistered":
            pass  # the target_state event to draining says the same, with a reason
    for tgt, ch in by_target.items():
        lanes.targets.extend(_spans(tgt, ch, end))
    for a in sorted(actions, key=lambda a: a["ts"]):
        lanes.actions.append((a["ts"] - t0, a.get("kind", "?"), str(a.get("pod") or "")))
        if a.get("target") and a.get("pod"):
            lanes.target_pods[str(a["target"])] = str(a["pod"])
    return lanes
