"""Read moto's ELBv2 models into the plain snapshot the engine reconciles against.

Only attributes moto has kept stable for years are touched (target_groups, load_balancers,
listeners, default_actions, rules, attributes); anything odd is skipped, never fatal.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from moto.elbv2.models import elbv2_backends

from testbed.fakeaws import wire


def backends() -> Iterator[Any]:
    for _account, regions in list(elbv2_backends.items()):
        yield from list(regions.values())


def find_target_group(arn: str) -> Any | None:
    for be in backends():
        tg = be.target_groups.get(arn)
        if tg is not None:
            return tg
    return None


def _forwards(action: Any) -> list[tuple[str, int]]:
    data = getattr(action, "data", None) or {}
    if data.get("Type") != "forward":
        return []
    if data.get("TargetGroupArn"):
        return [(data["TargetGroupArn"], 1)]
    groups = (data.get("ForwardConfig") or {}).get("TargetGroups") or []
    return [(g["TargetGroupArn"], int(g.get("Weight", 1))) for g in groups]


def snapshot(overrides: dict[str, dict[str, float]]) -> wire.Snapshot:
    """What the engine's /sync reconciles against."""
    groups: list[wire.TargetGroup] = []
    listeners: list[wire.Listener] = []
    used: set[str] = set()
    for be in backends():
        for lb in list(be.load_balancers.values()):
            idle = float(lb.attrs.get("idle_timeout.timeout_seconds", 60) or 60)
            for lst in list(lb.listeners.values()):
                forward = []
                for act in lst.default_actions:
                    forward += _forwards(act)
                for rule in list(getattr(lst, "_non_default_rules", {}).values()):
                    for act in getattr(rule, "actions", []):
                        used.update(arn for arn, _ in _forwards(act))
                used.update(arn for arn, _ in forward)
                if forward and (lst.protocol or "HTTP") == "HTTP":
                    listeners.append({"arn": lst.arn, "port": int(lst.port),
                                      "forward": forward, "idle_timeout": idle})
        for tg in list(be.target_groups.values()):
            ov = overrides.get(tg.arn, {})
            attrs = tg.attributes
            groups.append({
                "arn": tg.arn, "port": int(tg.port or 80),
                "health": {
                    "enabled": bool(tg.health_check_enabled),
                    "protocol": tg.health_check_protocol or "HTTP",
                    "port": str(tg.health_check_port or "traffic-port"),
                    "path": tg.health_check_path or "/",
                    "interval": ov.get("interval", float(tg.health_check_interval_seconds)),
                    "timeout": ov.get("timeout", float(tg.health_check_timeout_seconds)),
                    "healthy_threshold": int(tg.healthy_threshold_count),
                    "unhealthy_threshold": int(tg.unhealthy_threshold_count),
                    "matcher": (getattr(tg, "matcher", None) or {}).get("HttpCode", "200"),
                },
                "deregistration_delay": float(attrs.get("deregistration_delay.timeout_seconds",
                                                        300)),
                "slow_start": float(attrs.get("slow_start.duration_seconds", 0)),
                "algorithm": str(attrs.get("load_balancing.algorithm.type", "round_robin")),
                "in_use": tg.arn in used,
            })
    return {"target_groups": groups, "listeners": listeners}
