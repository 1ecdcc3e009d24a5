"""Read moto's ELBv2 models into the plain snapshot the engine reconciles against.

Only attributes moto has kept stable for years are touched (target_groups, load_balancers,
listeners, default_actions, rules, attributes); anything odd is skipped, never fatal.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from moto.ec2.models import ec2_backends
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


def _in_region(backend_dict: Any, region: str) -> list[Any]:
    """The backends of `region` in every account (indexing creates a region's backend
    lazily, which is harmless: it starts empty)."""
    return [regions[region] for _account, regions in list(backend_dict.items())
            if region in regions]


def load_balancer_named(name: str, region: str) -> Any | None:
    """The load balancer called `name` in `region` (any account), if any."""
    for be in _in_region(elbv2_backends, region):
        for lb in list(be.load_balancers.values()):
            if lb.name == name:
                return lb
    return None


def listener_port(arn: str) -> int | None:
    """The port of the listener with this ARN (None: no such listener)."""
    if not arn:
        return None
    for be in backends():
        for lb in list(be.load_balancers.values()):
            lst = lb.listeners.get(arn)
            if lst is not None:
                return int(lst.port)
    return None


def target_group_named(name: str, region: str) -> Any | None:
    """The target group called `name` in `region` (any account), if any."""
    for be in _in_region(elbv2_backends, region):
        for tg in list(be.target_groups.values()):
            if tg.name == name:
                return tg
    return None


def subnet_azs(subnet_ids: list[str], region: str) -> list[str] | None:
    """The Availability Zone of each subnet; None when one is unknown (moto then answers
    with its own not-found error)."""
    azs = []
    for sid in subnet_ids:
        found = None
        for be in _in_region(ec2_backends, region):
            for per_zone in list(be.subnets.values()):
                if sid in per_zone:
                    found = str(per_zone[sid].availability_zone)
        if found is None:
            return None
        azs.append(found)
    return azs


def vpc_cidrs(vpc_id: str | None, region: str) -> list[str]:
    """The IPv4 and IPv6 CIDR blocks of a VPC ([] when unknown)."""
    for be in _in_region(ec2_backends, region):
        vpc = be.vpcs.get(vpc_id) if vpc_id else None
        if vpc is not None:
            return [str(c["cidr_block"]) for c in (
                vpc.get_cidr_block_association_set(ipv6=False)
                + vpc.get_cidr_block_association_set(ipv6=True)) if c.get("cidr_block")]
    return []


def _forwards(action: Any) -> list[tuple[str, int]]:
    data = getattr(action, "data", None) or {}
    if data.get("Type") != "forward":
        return []
    return _forwards_data(data)


def _forwards_data(data: dict[str, Any]) -> list[tuple[str, int]]:
    if data.get("TargetGroupArn"):
        return [(data["TargetGroupArn"], 1)]
    groups = (data.get("ForwardConfig") or {}).get("TargetGroups") or []
    return [(g["TargetGroupArn"], int(g.get("Weight", 1))) for g in groups]


def _action(actions: list[Any]) -> wire.Action | None:
    """The wire form of a rule's (or listener's) terminal action: the last one by `Order`
    (authenticate-* actions, HTTPS only, come before it). None: no action the data plane
    serves (e.g. only authenticate-*)."""
    datas = [getattr(a, "data", None) or {} for a in actions]
    datas.sort(key=lambda d: _int(d.get("Order"), 0))
    for data in reversed(datas):
        kind = data.get("Type")
        if kind == "forward":
            return {"type": "forward", "target_groups": _forwards_data(data),
                    "stickiness": _group_stickiness_data(data)}
        if kind == "fixed-response":
            cfg = data.get("FixedResponseConfig") or {}
            return {"type": "fixed-response", "status": _int(cfg.get("StatusCode"), 200),
                    "content_type": str(cfg.get("ContentType") or ""),
                    "body": str(cfg.get("MessageBody") or "")}
        if kind == "redirect":
            cfg = data.get("RedirectConfig") or {}
            query = cfg.get("Query")
            return {"type": "redirect",
                    "protocol": str(cfg.get("Protocol") or "#{protocol}"),
                    "port": str(cfg.get("Port") or "#{port}"),
                    "host": str(cfg.get("Host") or "#{host}"),
                    "path": str(cfg.get("Path") or "/#{path}"),
                    "query": "#{query}" if query is None else str(query),
                    "status": 302 if cfg.get("StatusCode") == "HTTP_302" else 301}
    return None


def _values(cond: dict[str, Any], config: str) -> list[str]:
    """A condition's values: the typed `XxxConfig.Values`, else the legacy `Values` (moto
    keeps whichever the client sent)."""
    typed = (cond.get(config) or {}).get("Values")
    vals = typed if typed is not None else cond.get("Values")
    return [str(v) for v in vals or []]


_CONFIGS = {"host-header": "HostHeaderConfig", "path-pattern": "PathPatternConfig",
            "http-header": "HttpHeaderConfig", "http-request-method": "HttpRequestMethodConfig",
            "query-string": "QueryStringConfig", "source-ip": "SourceIpConfig"}


def _condition(cond: dict[str, Any]) -> wire.Condition | None:
    field = str(cond.get("Field") or "")
    config = _CONFIGS.get(field)
    if config is None:
        return None
    if field == "query-string":
        pairs: list[tuple[str | None, str]] = []
        for kv in (cond.get(config) or {}).get("Values") or []:
            key = kv.get("Key")
            pairs.append((None if key is None else str(key), str(kv.get("Value", ""))))
        return {"field": field, "values": [], "pairs": pairs}
    out: wire.Condition = {"field": field, "values": _values(cond, config)}
    if field == "http-header":
        out["header_name"] = str((cond.get(config) or {}).get("HttpHeaderName") or "")
    return out


def _rule(rule: Any) -> wire.Rule | None:
    """A listener rule's wire form; None when it cannot be served (no servable action,
    an unknown condition): such a rule never matches on AWS's side either way we choose,
    so it is left out rather than failing the snapshot."""
    action = _action(list(getattr(rule, "actions", []) or []))
    conditions = [_condition(c) for c in getattr(rule, "conditions", []) or []]
    priority = _int(getattr(rule, "priority", None), -1)
    if action is None or priority < 0 or any(c is None for c in conditions):
        return None
    return {"priority": priority, "conditions": [c for c in conditions if c is not None],
            "action": action}


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _group_stickiness_data(data: dict[str, Any]) -> float:
    """ForwardConfig.TargetGroupStickinessConfig: DurationSeconds when enabled, else 0."""
    cfg = (data.get("ForwardConfig") or {}).get("TargetGroupStickinessConfig") or {}
    if str(cfg.get("Enabled", "false")).lower() != "true":
        return 0.0
    return _number(cfg.get("DurationSeconds"), 3600.0)


def _number(value: Any, default: float) -> float:
    """A positive number from moto's stored value, else `default` (odd values never fail a
    snapshot)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return default
    return f if f > 0 else default


def _stickiness(attrs: dict[str, Any]) -> wire.Stickiness | None:
    """The `stickiness.*` target group attributes when enabled (cookie types only)."""
    kind = str(attrs.get("stickiness.type", "lb_cookie"))
    if str(attrs.get("stickiness.enabled", "false")).lower() != "true" or kind not in (
            "lb_cookie", "app_cookie"):
        return None
    return {"type": kind,
            "duration": _number(attrs.get(f"stickiness.{kind}.duration_seconds"), 86400.0),
            "cookie_name": str(attrs.get("stickiness.app_cookie.cookie_name", ""))}


def relink_target_groups() -> None:
    """Set each target group's load balancers (DescribeTargetGroups `LoadBalancerArns`, and
    the `LoadBalancerArn` filter) from what routes to it now: every listener's default actions
    and every rule's actions. moto appends a load balancer only on CreateListener/CreateRule and
    never drops one, so after ModifyRule/ModifyListener (a rule moved to a new group, as an
    Ingress controller does) the new group showed none, and after DeleteRule/DeleteListener the
    old one kept it. AWS: "the load balancers that route traffic to this target group"
    (API_TargetGroup)."""
    for be in backends():
        routed: dict[str, list[str]] = {}
        for lb in list(be.load_balancers.values()):
            for lst in list(lb.listeners.values()):
                rules = list(getattr(lst, "_non_default_rules", {}).values())
                for act in list(lst.default_actions) + [
                        a for rule in rules for a in getattr(rule, "actions", [])]:
                    for arn, _ in _forwards(act):
                        lbs = routed.setdefault(arn, [])
                        if lb.arn not in lbs:
                            lbs.append(lb.arn)
        for tg in list(be.target_groups.values()):
            tg.load_balancer_arns = routed.get(tg.arn, [])


def snapshot(overrides: dict[str, dict[str, float]],
             addresses: dict[str, str] | None = None) -> wire.Snapshot:
    """What the engine's /sync reconciles against (`addresses`: load balancer ARN -> its
    own listener address, with listener_addresses per-load-balancer)."""
    groups: list[wire.TargetGroup] = []
    listeners: list[wire.Listener] = []
    used: set[str] = set()
    for be in backends():
        for lb in list(be.load_balancers.values()):
            idle = float(lb.attrs.get("idle_timeout.timeout_seconds", 60) or 60)
            # moto stores the attribute but sets no default; AWS's is 3600 s.
            keep_alive = _number(lb.attrs.get("client_keep_alive.seconds"), 3600.0)
            for lst in list(lb.listeners.values()):
                rules = list(getattr(lst, "_non_default_rules", {}).values())
                for act in list(lst.default_actions) + [
                        a for rule in rules for a in getattr(rule, "actions", [])]:
                    used.update(arn for arn, _ in _forwards(act))
                default = _action(list(lst.default_actions))
                if default is not None and (lst.protocol or "HTTP") == "HTTP":
                    wire_rules = [r for r in map(_rule, rules) if r is not None]
                    wire_rules.sort(key=lambda r: r["priority"])
                    listener: wire.Listener = {
                        "arn": lst.arn, "port": int(lst.port), "idle_timeout": idle,
                        "default_action": default, "rules": wire_rules,
                        "client_keep_alive": keep_alive}
                    if addresses and lb.arn in addresses:
                        listener["host"] = addresses[lb.arn]
                    listeners.append(listener)
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
                "stickiness": _stickiness(attrs),
            })
    return {"target_groups": groups, "listeners": listeners}
