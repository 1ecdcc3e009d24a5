"""Controller actions for a report, read from the controller's JSON-lines log.

The testbed knows the controller only through what it publishes: its log lines (one JSON object
each, with `ts`, `msg` and fields such as `tgb`, `targets`, `pod`) read through the Kubernetes
pod-log API. Lines that are not JSON, or belong to another namespace's bindings, are skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

_TARGET = re.compile(r"^(?P<target>[^()]+?)(?:\((?P<pod>[^()]*)\))?$")


def _epoch(ts: str) -> float | None:
    try:
        return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _targets(rec: dict[str, Any], kind: str, ts: float, tgb: str) -> list[dict[str, Any]]:
    out = []
    for item in rec.get("targets") or []:
        m = _TARGET.match(str(item))
        if m is None:
            continue
        out.append({"ts": ts, "kind": kind, "tgb": tgb, "target": m["target"],
                    "pod": m["pod"] or ""})
    return out


def parse_actions(log_text: str, namespace: str) -> list[dict[str, Any]]:
    """Register/deregister per target and gate writes per pod, for TGBs in `namespace`."""
    actions: list[dict[str, Any]] = []
    for line in log_text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        tgb = str(rec.get("tgb") or "")
        ts = _epoch(str(rec.get("ts") or ""))
        if ts is None or not tgb.startswith(f"{namespace}/"):
            continue
        msg = rec.get("msg")
        if msg == "registering targets":
            actions += _targets(rec, "register", ts, tgb)
        elif msg in ("deregistering targets", "deregistering all targets"):
            actions += _targets(rec, "deregister", ts, tgb)
        elif msg == "pod condition updated":
            actions.append({"ts": ts, "kind": "gate", "tgb": tgb, "pod": rec.get("pod") or "",
                            "target": "", "status": rec.get("status"),
                            "reason": rec.get("reason")})
    return sorted(actions, key=lambda a: a["ts"])
