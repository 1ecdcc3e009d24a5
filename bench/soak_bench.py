"""Steady load through the whole stack with no rollout: host load generator -> fake ALB
listener (published port) -> pod IPs on the kind cluster. Goal: zero errors at 1,000 rps for
10 minutes. Uses the full-recipe app; needs the cluster (`make cluster-up`)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from testbed.run.runner import ensure_stack, run
from testbed.scenario import load_scenario


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--seconds", type=float, default=600)
    args = ap.parse_args()
    base = load_scenario("full-recipe")
    sc = dataclasses.replace(
        base, name="soak",
        load=dataclasses.replace(base.load, rate=args.rate, duration_seconds=args.seconds,
                                 max_duration_seconds=args.seconds))
    result = run(sc, ensure_stack(), Path("reports/soak"), rollouts=0)
    s = result.report.summary
    print(f"soak: {s.requests} requests in {s.duration_attack:.0f}s at {s.rate:.1f} rps "
          f"(asked {args.rate:g}; ratio {s.rate / args.rate:.4f}); errors {s.errors}; "
          f"p50 {s.latency_p50 * 1000:.2f} ms p99 {s.latency_p99 * 1000:.2f} ms; "
          f"classes {s.classes}")
    return 0 if s.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
