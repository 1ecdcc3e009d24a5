"""Does the run match what the scenario expects? Reasons are sentences a reader can act on."""

from __future__ import annotations

from dataclasses import dataclass, field

from testbed.loadgen.summary import Summary
from testbed.scenario.model import Expect


@dataclass
class Verdict:
    ok: bool
    reasons: list[str] = field(default_factory=list)  # why it failed, or what held


def _classes(summary: Summary) -> str:
    return ", ".join(f"{k}:{v}" for k, v in summary.error_classes.items()) or "none"


def evaluate(expect: Expect, summary: Summary, *, rollout_stalled: bool | None = None,
             rollout_seconds: float | None = None,
             registration_lag: float | None = None) -> Verdict:
    """Compare the load summary (and the rollout outcome, when known) with the expectation."""
    fails: list[str] = []
    notes: list[str] = []
    if summary.requests == 0:
        fails.append("no request was sent: the load generator did not run")
    if expect.errors == "none":
        if summary.errors:
            fails.append(f"expected zero errors, got {summary.errors} of {summary.requests} "
                         f"({_classes(summary)})")
        else:
            notes.append(f"zero errors in {summary.requests} requests, as expected")
    else:
        if summary.errors < expect.min_errors:
            fails.append(f"expected at least {expect.min_errors} errors (the bug should "
                         f"reproduce), got {summary.errors}")
        allowed = {str(c) for c in expect.classes}  # YAML may give 502 as a number
        unexpected = {k: v for k, v in summary.error_classes.items() if k not in allowed}
        if allowed and unexpected:
            fails.append("unexpected error classes " +
                         ", ".join(f"{k}:{v}" for k, v in unexpected.items()) +
                         f" (expected only {', '.join(sorted(allowed))})")
        if not fails:
            notes.append(f"{summary.errors} errors ({_classes(summary)}), as expected")
    if rollout_stalled is None:
        if expect.rollout_stalls:
            fails.append("expected the rollout to stall, but its outcome is unknown")
    elif rollout_stalled != expect.rollout_stalls:
        fails.append("expected the rollout to stall, but it completed" if expect.rollout_stalls
                     else "the rollout stalled (did not complete), expected it to complete")
    else:
        notes.append("rollout stalled, as expected" if rollout_stalled else "rollout completed")
    if rollout_seconds is not None and not rollout_stalled:
        lo, hi = expect.min_rollout_seconds, expect.max_rollout_seconds
        if lo is not None and rollout_seconds < lo:
            fails.append(f"rollout took {rollout_seconds:.1f}s, expected at least {lo:g}s")
        if hi is not None and rollout_seconds > hi:
            fails.append(f"rollout took {rollout_seconds:.1f}s, expected at most {hi:g}s")
    elif (expect.min_rollout_seconds is not None or expect.max_rollout_seconds is not None) \
            and rollout_seconds is None:
        fails.append("a rollout duration is expected, but none was measured")
    _check_registration_lag(expect, registration_lag, fails, notes)
    return Verdict(ok=not fails, reasons=fails or notes)


def _check_registration_lag(expect: Expect, lag: float | None, fails: list[str],
                            notes: list[str]) -> None:
    lo, hi = expect.min_registration_lag_seconds, expect.max_registration_lag_seconds
    if lo is None and hi is None:
        return
    if lag is None:
        fails.append("a registration lag is expected, but no pod was seen both ContainersReady "
                     "and registered by the controller")
        return
    what = f"slowest registration {lag:.1f}s after ContainersReady"
    if lo is not None and lag < lo:
        fails.append(f"{what}, expected at least {lo:g}s")
    elif hi is not None and lag > hi:
        fails.append(f"{what}, expected at most {hi:g}s")
    else:
        notes.append(what)
