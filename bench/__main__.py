"""`make bench`: every benchmark, one after the other, each in its own process so one's
memory or event loop cannot skew the next. Pass --quick for shorter runs."""

from __future__ import annotations

import subprocess
import sys
import time

BENCHES = ["bench.loadgen_bench", "bench.fakeaws_bench", "bench.controller_bench"]


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    failed = []
    for module in BENCHES:
        args = [sys.executable, "-m", module]
        if quick and module == "bench.fakeaws_bench":
            args.append("--quick")
        print(f"=== {module}", flush=True)
        start = time.monotonic()
        if subprocess.run(args).returncode != 0:
            failed.append(module)
        print(f"=== {module}: {time.monotonic() - start:.0f}s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
