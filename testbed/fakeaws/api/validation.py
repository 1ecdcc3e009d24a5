"""AWS input validation that moto lacks or gets wrong (ranges, IPs, attribute values).

Works on the flat query-protocol form (e.g. `Targets.member.1.Id`). Every check raises an
AwsError with the code real ELBv2 returns for that input.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping

from testbed.fakeaws.api.errors import AwsError, validation
from testbed.fakeaws.settings import AWS_MIN_HEALTH_CHECK_INTERVAL
from testbed.fakeaws.wire import ALGORITHMS

TG_ATTRIBUTES = frozenset({
    "deregistration_delay.timeout_seconds", "deregistration_delay.connection_termination.enabled",
    "stickiness.enabled", "stickiness.type", "stickiness.lb_cookie.duration_seconds",
    "stickiness.app_cookie.cookie_name", "stickiness.app_cookie.duration_seconds",
    "load_balancing.algorithm.type", "load_balancing.algorithm.anomaly_mitigation",
    "load_balancing.cross_zone.enabled", "slow_start.duration_seconds",
    "waf.fail_open.enabled", "lambda.multi_value_headers.enabled",
    "target_group_health.dns_failover.minimum_healthy_targets.count",
    "target_group_health.dns_failover.minimum_healthy_targets.percentage",
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
    "preserve_client_ip.enabled", "proxy_protocol_v2.enabled",
    "target_health_state.unhealthy.connection_termination.enabled",
    "target_health_state.unhealthy.draining_interval_seconds",
})


def members(form: dict[str, str], prefix: str) -> list[dict[str, str]]:
    """`Targets.member.N.Field` -> [{Field: value}, ...] in N order."""
    found: dict[int, dict[str, str]] = {}
    lead = prefix + ".member."
    for key, value in form.items():
        if key.startswith(lead):
            rest = key[len(lead):]
            idx, _, field = rest.partition(".")
            if idx.isdigit():
                found.setdefault(int(idx), {})[field] = value
    return [found[i] for i in sorted(found)]


def valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _number(name: str, raw: str, lo: float, hi: float, allow_fraction: bool = False) -> float:
    try:
        v = float(raw) if allow_fraction else int(raw)
    except ValueError as exc:
        raise validation(f"Value '{raw}' at '{name}' failed to satisfy constraint: "
                         "Member must be a number") from exc
    if not math.isfinite(v):
        raise validation(f"Value '{raw}' at '{name}' is not a number")
    if v < lo:
        raise validation(f"1 validation error detected: Value '{raw}' at '{name}' failed to "
                         f"satisfy constraint: Member must have value greater than or equal to "
                         f"{lo:g}")
    if v > hi:
        raise validation(f"1 validation error detected: Value '{raw}' at '{name}' failed to "
                         f"satisfy constraint: Member must have value less than or equal to "
                         f"{hi:g}")
    return v


def parse_targets(form: dict[str, str], target_type: str, default_port: int | None,
                  need_port: bool = True) -> list[tuple[str, int | None, str | None]]:
    """Targets.member.N -> [(id, port, az)], validating IP and port like ELBv2."""
    out: list[tuple[str, int | None, str | None]] = []
    items = members(form, "Targets")
    if not items:
        raise validation("1 validation error detected: Value null at 'targets' failed to "
                         "satisfy constraint: Member must not be null")
    for m in items:
        tid = m.get("Id", "")
        if not tid:
            raise validation("Target ID must be specified")
        if target_type == "ip" and not valid_ip(tid):
            raise validation(f"The IP address '{tid}' is not a valid IPv4 address")
        port: int | None = None
        if "Port" in m:
            port = int(_number("port", m["Port"], 1, 65535))
        elif need_port:
            port = default_port
        out.append((tid, port, m.get("AvailabilityZone")))
    return out


def health_check_params(form: dict[str, str], min_interval: float,
                        current: tuple[float, float] | None = None
                        ) -> dict[str, float]:
    """Validate the health check fields present in the form.

    Returns the (possibly fractional) interval/timeout the form sets. Values below the AWS
    minimum (interval 5, timeout 2) are accepted only when the server was started with a lower
    --min-health-check-interval (fast tests).
    """
    fast = min_interval < AWS_MIN_HEALTH_CHECK_INTERVAL
    timeout_min = min(2.0, min_interval / 2) if fast else 2.0
    out: dict[str, float] = {}
    if "HealthCheckIntervalSeconds" in form:
        out["interval"] = _number("healthCheckIntervalSeconds",
                                  form["HealthCheckIntervalSeconds"], min_interval, 300, fast)
    if "HealthCheckTimeoutSeconds" in form:
        out["timeout"] = _number("healthCheckTimeoutSeconds", form["HealthCheckTimeoutSeconds"],
                                 timeout_min, 120, fast)
    for key, name in (("HealthyThresholdCount", "healthyThresholdCount"),
                      ("UnhealthyThresholdCount", "unhealthyThresholdCount")):
        if key in form:
            _number(name, form[key], 2, 10)
    if "HealthCheckPort" in form and form["HealthCheckPort"] != "traffic-port":
        _number("healthCheckPort", form["HealthCheckPort"], 1, 65535)
    if "Port" in form:
        _number("port", form["Port"], 1, 65535)
    interval = out.get("interval", current[0] if current else None)
    timeout = out.get("timeout", current[1] if current else None)
    if ("interval" in out or "timeout" in out) and interval is not None and timeout is not None \
            and timeout >= interval and form.get("Protocol", "HTTP") in ("HTTP", "HTTPS"):
        raise validation(f"Health check timeout '{timeout:g}' must be smaller than the interval "
                         f"'{interval:g}'")
    matcher = form.get("Matcher.HttpCode")
    if matcher is not None:
        _matcher(matcher)
    return out


def _matcher(spec: str) -> None:
    try:
        for part in spec.split(","):
            bounds = [int(x) for x in part.split("-")] if part else []
            if not 1 <= len(bounds) <= 2 or any(not 200 <= b <= 499 for b in bounds):
                raise ValueError(part)
    except ValueError as exc:
        raise AwsError("ValidationError",
                       "Health check matcher HTTP code must be between 200 and 499 and be like "
                       "200 | 200-399 | 200,201") from exc


def tg_attributes(form: dict[str, str], current: Mapping[str, str]) -> dict[str, str]:
    """Attributes.member.N.{Key,Value} -> dict, validated together with the group's
    `current` attributes (combinations AWS refuses are checked on the result)."""
    attrs = {m.get("Key", ""): m.get("Value", "") for m in members(form, "Attributes")}
    for key in attrs:
        if key not in TG_ATTRIBUTES:
            raise validation(f"Target group attribute key '{key}' is not recognized")
    if "deregistration_delay.timeout_seconds" in attrs:
        raw = attrs["deregistration_delay.timeout_seconds"]
        if not raw.isdigit() or not 0 <= int(raw) <= 3600:
            raise validation(f"'deregistration_delay.timeout_seconds' value '{raw}' must be "
                             "between '0-3600' inclusive")
    if "slow_start.duration_seconds" in attrs:
        raw = attrs["slow_start.duration_seconds"]
        if not raw.isdigit() or not (int(raw) == 0 or 30 <= int(raw) <= 900):
            raise validation(f"'slow_start.duration_seconds' value '{raw}' must be '0' or "
                             "between '30-900' inclusive")
    merged = {**current, **attrs}
    algo = merged.get("load_balancing.algorithm.type", "round_robin")
    if algo not in ALGORITHMS:
        raise validation(f"'load_balancing.algorithm.type' value '{algo}' must be one of "
                         f"[{', '.join(ALGORITHMS)}]")
    mitigation = attrs.get("load_balancing.algorithm.anomaly_mitigation", "off")
    if mitigation not in ("on", "off"):
        raise validation(f"'load_balancing.algorithm.anomaly_mitigation' value '{mitigation}' "
                         "must be one of [on, off]")
    if mitigation == "on":
        # Anomaly mitigation shifts weight away from targets by their error rates; the fake
        # does not model it, and silently ignoring it would misrepresent the routing.
        raise validation("'load_balancing.algorithm.anomaly_mitigation' 'on' is not supported "
                         "by the fake AWS (it does not model Automatic Target Weights)")
    # AWS: neither least outstanding requests nor weighted random can be used with slow
    # start, and weighted random not with sticky sessions:
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#modify-routing-algorithm
    slow = int(float(merged.get("slow_start.duration_seconds", "0") or 0))
    if slow and algo == "least_outstanding_requests":
        raise AwsError("InvalidConfigurationRequest",
                       "Slow start mode cannot be enabled with the least outstanding requests "
                       "load balancing algorithm")
    if slow and algo == "weighted_random":
        raise AwsError("InvalidConfigurationRequest",
                       "Slow start mode cannot be enabled with the weighted random load "
                       "balancing algorithm")
    if algo == "weighted_random" and merged.get("stickiness.enabled", "false") == "true":
        raise AwsError("InvalidConfigurationRequest",
                       "Sticky sessions cannot be enabled with the weighted random load "
                       "balancing algorithm")
    return attrs


def lb_attributes(form: dict[str, str]) -> dict[str, str]:
    attrs = {m.get("Key", ""): m.get("Value", "") for m in members(form, "Attributes")}
    if "idle_timeout.timeout_seconds" in attrs:
        _number("idle_timeout.timeout_seconds", attrs["idle_timeout.timeout_seconds"], 1, 4000)
    return attrs
