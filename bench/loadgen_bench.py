"""Does the load generator hold its rate? `python -m bench.loadgen_bench`

Starts the raw-asyncio test server in another process on 127.0.0.1, attacks it at 1000 and
2000 rps and prints the achieved/asked ratio (from actual send times, not the schedule), the
send lag, and how many errors the generator produced against a server that never fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from testbed.loadgen.attack import AttackConfig, run_attack
from testbed.loadgen.summary import percentile, summarize


def _start_server() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-m", "testbed.loadgen.testing", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def bench(rate: float, duration: float, port: int) -> dict[str, float]:
    res = run_attack(AttackConfig(url=f"http://127.0.0.1:{port}/", rate=rate, duration=duration,
                                  timeout=10.0))
    recs = res.records
    starts = sorted(r.started for r in recs)
    sent_rate = (len(starts) - 1) / (starts[-1] - starts[0])
    lags = sorted(r.started - r.intended for r in recs)
    s = summarize(recs)
    return {"asked": rate, "sent_rate": sent_rate, "ratio": sent_rate / rate,
            "requests": len(recs), "expected": round(rate * duration),
            "errors": s.errors, "lag_p50_ms": percentile(lags, 50) * 1000,
            "lag_p99_ms": percentile(lags, 99) * 1000, "lat_p99_ms": s.latency_p99 * 1000}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--rates", default="1000,2000")
    args = p.parse_args()
    proc, port = _start_server()
    ok = True
    try:
        for rate in (float(x) for x in args.rates.split(",")):
            r = bench(rate, args.duration, port)
            hold = abs(r["ratio"] - 1.0) <= 0.01 and r["requests"] == r["expected"]
            ok = ok and hold and r["errors"] == 0
            print(f"rate {r['asked']:.0f} rps: achieved/asked {r['ratio']:.4f} "
                  f"({r['sent_rate']:.1f} rps sent, {r['requests']}/{r['expected']} requests), "
                  f"generator errors {r['errors']}, send lag p50 {r['lag_p50_ms']:.2f} ms "
                  f"p99 {r['lag_p99_ms']:.2f} ms, latency p99 {r['lat_p99_ms']:.2f} ms "
                  f"{'OK' if hold else 'MISSED'}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
