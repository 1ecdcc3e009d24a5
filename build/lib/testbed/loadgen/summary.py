"""vegeta-style totals from records, plus the error classes the testbed cares about."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from testbed.loadgen.records import OK, Record


@dataclass
class Summary:
    """Everything a report or an expectation check needs; plain data, JSON-able."""

    requests: int
    rate: float  # sent per second over the attack
    throughput: float  # successes per second over attack + wait
    duration_total: float
    duration_attack: float
    duration_wait: float
    latency_min: float
    latency_mean: float
    latency_p50: float
    latency_p90: float
    latency_p95: float
    latency_p99: float
    latency_max: float
    success_ratio: float
    status_codes: dict[str, int]  # "200": n, "0": transport errors (vegeta convention)
    error_set: list[str]
    classes: dict[str, int]  # "ok", "502", "conn_refused", ...
    errors: int  # requests whose class is not ok
    elb_errors: dict[str, int] = field(default_factory=dict)  # fake ALB reason -> count
    pods: dict[str, int] = field(default_factory=dict)
    first_error: float | None = None
    last_error: float | None = None

    @property
    def error_classes(self) -> dict[str, int]:
        return {k: v for k, v in self.classes.items() if k != OK}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (what vegeta reports)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(records: list[Record]) -> Summary:
    """Totals over `records` (any order)."""
    if not records:
        return Summary(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                       {}, [], {}, 0)
    recs = sorted(records, key=lambda r: r.intended)
    lat = sorted(r.latency for r in recs)
    starts = sorted(r.started for r in recs)
    # like vegeta: rate and attack from actual send times, latency from the intended ones
    attack = starts[-1] - starts[0]
    end = max(r.intended + r.latency for r in recs)
    wait = max(0.0, end - starts[-1])
    total = attack + wait
    ok = sum(1 for r in recs if r.cls == OK)
    n = len(recs)
    errs = [r for r in recs if r.cls != OK]
    return Summary(
        requests=n,
        rate=(n - 1) / attack if attack > 0 else float(n),
        throughput=ok / total if total > 0 else float(ok),
        duration_total=total, duration_attack=attack, duration_wait=wait,
        latency_min=lat[0], latency_mean=sum(lat) / n,
        latency_p50=percentile(lat, 50), latency_p90=percentile(lat, 90),
        latency_p95=percentile(lat, 95), latency_p99=percentile(lat, 99), latency_max=lat[-1],
        success_ratio=ok / n,
        status_codes=dict(sorted(Counter(str(r.status) for r in recs).items())),
        error_set=sorted({r.error for r in recs if r.error}
                         | {f"{r.status} {r.elb_error or ''}".strip()
                            for r in recs if r.status and r.cls != OK}),
        classes=dict(Counter(r.cls for r in recs).most_common()),
        errors=len(errs),
        elb_errors=dict(Counter(r.elb_error for r in recs if r.elb_error).most_common()),
        pods=dict(Counter(r.pod for r in recs if r.pod).most_common()),
        first_error=errs[0].intended if errs else None,
        last_error=errs[-1].intended if errs else None,
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}ms"


def format_vegeta(s: Summary) -> str:
    """The text layout of `vegeta report`, so numbers can be compared at a glance."""
    codes = "  ".join(f"{k}:{v}" for k, v in s.status_codes.items())
    lines = [
        f"Requests      [total, rate, throughput]         {s.requests}, {s.rate:.2f}, "
        f"{s.throughput:.2f}",
        f"Duration      [total, attack, wait]             {s.duration_total:.3f}s, "
        f"{s.duration_attack:.3f}s, {s.duration_wait:.3f}s",
        "Latencies     [min, mean, 50, 90, 95, 99, max]  " + ", ".join(_ms(v) for v in (
            s.latency_min, s.latency_mean, s.latency_p50, s.latency_p90, s.latency_p95,
            s.latency_p99, s.latency_max)),
        f"Success       [ratio]                           {s.success_ratio * 100:.2f}%",
        f"Status Codes  [code:count]                      {codes}",
        "Error Set:",
        *s.error_set,
    ]
    return "\n".join(lines)
