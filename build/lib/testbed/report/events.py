"""Helpers that turn raw sources into the report's event dicts."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

# demo app log events worth a mark on the pod lane (see testbed/demoapp/server.py)
DEMO_KINDS = {"listening": "listening", "sigterm": "sigterm", "listener_closed": "listener_closed",
              "exit": "exit"}


def demo_log_events(pod: str, lines: Iterable[str]) -> list[dict[str, Any]]:
    """Pod events from a demo app container's log (`kubectl logs`): one JSON object per line;
    other lines (kubelet noise, tracebacks) are skipped."""
    out: list[dict[str, Any]] = []
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        kind = DEMO_KINDS.get(str(rec.get("event")))
        if kind and isinstance(rec.get("ts"), int | float):
            out.append({"ts": float(rec["ts"]), "pod": pod, "kind": kind})
    return out
