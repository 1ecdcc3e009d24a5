"""Controller actions for a report, read from the controller's JSON-lines log.

The testbed knows the controller only through what it publishes: its log lines (one JSON object
each) read through the Kubernetes pod-log API. A line the report needs carries a stable `action`
field (docs/controller.md, "Observability"): `register` / `deregister` with `tgb`, `namespace`
and `targets` (objects with `target` "ip:port" and, for register, `pod`), `gate` with `tgb`,
`namespace`, `pod`, `status`, `reason`, and `skip` (an endpoint left out because its pod was not
in the controller's cache) with `tgb`, `namespace`, `target`, `pod`, `reason`. Message text is
never matched, so rewording a log message cannot empty a report. Lines that are not JSON,
carry no action, or belong to another namespace's bindings are skipped.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

TARGET_ACTIONS = ("register", "deregister")
GATE_ACTION = "gate"
SKIP_ACTION = "skip"


def _epoch(ts: str) -> float | None:
    try:
        return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _targets(rec: dict[str, Any], kind: str, ts: float, tgb: str) -> list[dict[str, Any]]:
    out = []
    for item in rec.get("targets") or []:
        if not isinstance(item, dict) or not item.get("target"):
            continue
        out.append({"ts": ts, "kind": kind, "tgb": tgb, "target": str(item["target"]),
                    "pod": str(item.get("pod") or "")})
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
        if not isinstance(rec, dict) or rec.get("namespace") != namespace:
            continue
        action = rec.get("action")
        ts = _epoch(str(rec.get("ts") or ""))
        if ts is None:
            continue
        tgb = str(rec.get("tgb") or "")
        if action in TARGET_ACTIONS:
            actions += _targets(rec, action, ts, tgb)
        elif action == GATE_ACTION:
            actions.append({"ts": ts, "kind": "gate", "tgb": tgb, "pod": rec.get("pod") or "",
                            "target": "", "status": rec.get("status"),
                            "reason": rec.get("reason")})
        elif action == SKIP_ACTION:
            actions.append({"ts": ts, "kind": "skip", "tgb": tgb, "pod": rec.get("pod") or "",
                            "target": str(rec.get("target") or ""), "status": None,
                            "reason": rec.get("reason")})
    return sorted(actions, key=lambda a: a["ts"])
