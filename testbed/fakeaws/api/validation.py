"""AWS input validation that moto lacks or gets wrong: the botocore model (required members,
types, enums, ranges), ARNs, target IPs, subnets, health check and attribute rules.

Works on the flat query-protocol form (e.g. `Targets.member.1.Id`). Every check raises an
AwsError with the code real ELBv2 returns for that input, before moto sees the call, so a
rejected call changes nothing. The list of rules with their sources: docs/fakeaws.md
"Errors and validation".
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
from collections.abc import Container, Mapping
from typing import Any

import botocore.loaders

from testbed.fakeaws.api.errors import AwsError, validation
from testbed.fakeaws.settings import AWS_MIN_CLIENT_KEEP_ALIVE, AWS_MIN_HEALTH_CHECK_INTERVAL
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


def tg_attributes(form: dict[str, str], current: Mapping[str, str],
                  protocol: str | None = None) -> dict[str, str]:
    """Attributes.member.N.{Key,Value} -> dict, validated together with the group's
    `current` attributes (combinations AWS refuses are checked on the result) and its
    `protocol` (attributes only Network Load Balancers support)."""
    attrs = {m.get("Key", ""): m.get("Value", "") for m in members(form, "Attributes")}
    for key in attrs:
        if key not in TG_ATTRIBUTES:
            raise validation(f"Target group attribute key '{key}' is not recognized")
    tg_attribute_values(attrs, protocol)
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


# Load balancer attribute `client_keep_alive.seconds`: 60-604800, default 3600.
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html#http-client-keep-alive-duration
CLIENT_KEEP_ALIVE_MAX = 604800
CLIENT_KEEP_ALIVE_DEFAULT = 3600.0


def lb_attributes(form: dict[str, str],
                  min_keep_alive: float = AWS_MIN_CLIENT_KEEP_ALIVE) -> dict[str, str]:
    """Attributes.member.N.{Key,Value} -> dict. `min_keep_alive` is the server's
    --min-client-keep-alive: below the AWS minimum (60) only for fast tests, which then may
    also use fractions (like --min-health-check-interval)."""
    attrs = {m.get("Key", ""): m.get("Value", "") for m in members(form, "Attributes")}
    if "idle_timeout.timeout_seconds" in attrs:
        _number("idle_timeout.timeout_seconds", attrs["idle_timeout.timeout_seconds"], 1, 4000)
    if "client_keep_alive.seconds" in attrs:
        _number("client_keep_alive.seconds", attrs["client_keep_alive.seconds"],
                min_keep_alive, CLIENT_KEEP_ALIVE_MAX,
                allow_fraction=min_keep_alive < AWS_MIN_CLIENT_KEEP_ALIVE)
    return attrs


# ---- the botocore model: required members, types, enums, ranges ---------------------------
# Source of these rules: botocore's ELBv2 model (`botocore/data/elbv2/2015-12-01/
# service-2.json`), the same description the AWS SDKs are generated from. AWS's query API
# applies it server side with these messages ("1 validation error detected: ...").

# Members whose model minimum the fake widens on purpose: with a lowered
# --min-health-check-interval (fast tests, scenarios) intervals below 5 s, timeouts below 2 s
# and fractions are accepted; health_check_params() checks them against the server's setting.
MODEL_EXEMPT = frozenset({"HealthCheckIntervalSeconds", "HealthCheckTimeoutSeconds"})

# Bounds the model states only in prose (documentation), by shape name.
MODEL_EXTRA_BOUNDS: dict[str, tuple[int, int]] = {
    # TargetGroupTuple.Weight: "The range is 0 to 999."
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetGroupTuple.html
    "TargetGroupWeight": (0, 999),
}


# Members the model leaves optional but without which the call means nothing (moto fails
# on them with a KeyError, found by the fuzz suite); AWS's answer is not documented, so
# the usual "Value null" ValidationError. By shape name.
MODEL_EXTRA_REQUIRED: dict[str, frozenset[str]] = {
    # SetRulePriorities: each pair names a rule and its new priority.
    "RulePriorityPair": frozenset({"RuleArn", "Priority"}),
    # CreateLoadBalancer / SetSubnets: a mapping is for a subnet.
    "SubnetMapping": frozenset({"SubnetId"}),
    # Modify*Attributes: an attribute is a key and its value.
    "LoadBalancerAttribute": frozenset({"Key", "Value"}),
    "TargetGroupAttribute": frozenset({"Key", "Value"}),
    "ListenerAttribute": frozenset({"Key", "Value"}),
}


@functools.cache
def service_model() -> dict[str, Any]:
    """botocore's ELBv2 service model (loaded once; botocore ships with boto3)."""
    model: dict[str, Any] = botocore.loaders.create_loader().load_service_model(
        "elbv2", "service-2")
    return model


def operations() -> frozenset[str]:
    return frozenset(service_model()["operations"])


def _camel(name: str) -> str:
    """AWS names members in validation messages lowerCamel: `TargetGroupArn` ->
    `targetGroupArn`."""
    return name[:1].lower() + name[1:]


def _present(form: Mapping[str, str], key: str) -> bool:
    lead = key + "."
    return key in form or any(k.startswith(lead) for k in form)


def _constraint(value: str, where: str, rule: str) -> AwsError:
    return validation(f"1 validation error detected: Value '{value}' at '{where}' failed to "
                      f"satisfy constraint: {rule}")


def check_model(action: str, form: Mapping[str, str]) -> None:
    """Check `form` against the model's input shape for `action`: unknown action
    (InvalidAction), required members missing, integers/booleans that are not, enum values,
    numeric and length bounds. Members the model does not know are ignored (as AWS does)."""
    op = service_model()["operations"].get(action)
    if op is None:
        # AWS common error: https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/CommonErrors.html
        raise AwsError("InvalidAction",
                       f"The action {action} is not valid for this web service.")
    shape = op.get("input", {}).get("shape")
    if shape:
        _check_shape(form, shape, "", "")


def _check_shape(form: Mapping[str, str], shape_name: str, key: str, where: str) -> None:
    shapes = service_model()["shapes"]
    shape = shapes[shape_name]
    kind = shape["type"]
    if kind == "structure":
        required = set(shape.get("required", ())) | MODEL_EXTRA_REQUIRED.get(shape_name,
                                                                             frozenset())
        for name, member in shape.get("members", {}).items():
            sub = f"{key}.{name}" if key else name
            sub_where = f"{where}.{_camel(name)}" if where else _camel(name)
            if not _present(form, sub):
                if name in required:
                    raise validation(f"1 validation error detected: Value null at "
                                     f"'{sub_where}' failed to satisfy constraint: Member "
                                     "must not be null")
                continue
            if name in MODEL_EXEMPT:
                continue
            _check_shape(form, member["shape"], sub, sub_where)
        return
    if kind == "list":
        lead = key + ".member."
        indexes = sorted({int(i) for k in form if k.startswith(lead)
                          for i in [k[len(lead):].partition(".")[0]] if i.isdigit()})
        for i in indexes:
            _check_shape(form, shape["member"]["shape"], f"{lead}{i}", f"{where}.{i}.member")
        return
    if kind == "map":
        return  # only OIDC/Cognito extra params; free-form strings
    raw = form.get(key)
    if raw is None:
        return  # only sub-keys (`Port.x=1`): not a value of this member, ignored like AWS
    if kind in ("integer", "long"):
        try:
            num = int(raw)
        except ValueError:
            raise _constraint(raw, where, "Member must be a number") from None
        lo = shape.get("min", MODEL_EXTRA_BOUNDS.get(shape_name, (None, None))[0])
        hi = shape.get("max", MODEL_EXTRA_BOUNDS.get(shape_name, (None, None))[1])
        if lo is not None and num < lo:
            raise _constraint(raw, where, f"Member must have value greater than or equal to {lo}")
        if hi is not None and num > hi:
            raise _constraint(raw, where, f"Member must have value less than or equal to {hi}")
    elif kind == "boolean":
        if raw.lower() not in ("true", "false"):
            raise _constraint(raw, where, "Member must be a boolean (true or false)")
    elif kind == "string":
        if "enum" in shape and raw not in shape["enum"]:
            raise _constraint(raw, where, "Member must satisfy enum value set: "
                                          f"[{', '.join(shape['enum'])}]")
        if "min" in shape and len(raw) < shape["min"]:
            raise _constraint(raw, where, "Member must have length greater than or equal to "
                                          f"{shape['min']}")
        if "max" in shape and len(raw) > shape["max"]:
            raise _constraint(raw, where, "Member must have length less than or equal to "
                                          f"{shape['max']}")


# ---- paging ------------------------------------------------------------------------------
def marker(form: Mapping[str, str], issued: Container[str]) -> None:
    """`Marker` is opaque: only one the service handed out (a `NextMarker`) is valid (moto
    fails with a ValueError on others, found by the fuzz suite)."""
    value = form.get("Marker")
    if value is not None and value not in issued:
        raise validation(f"The marker '{value}' is not valid")


# ---- ARNs -----------------------------------------------------------------------------------
# A malformed ARN is a ValidationError ("'x' is not a valid target group ARN"), a well-formed
# one that names nothing is <Kind>NotFound (moto's / our not-found paths). Format:
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_elasticloadbalancingv2.html#elasticloadbalancingv2-resources-for-iam-policies
_ARN_HEAD = r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:"
_ID = r"[0-9a-f]+"
_NAME = r"[A-Za-z0-9-]{1,32}"
ARN_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    # member name (also the singular of a list member, e.g. TargetGroupArns) -> format, noun
    "TargetGroupArn": (re.compile(_ARN_HEAD + rf"targetgroup/{_NAME}/{_ID}$"), "target group"),
    "LoadBalancerArn": (re.compile(_ARN_HEAD + rf"loadbalancer/(app|net|gwy)/{_NAME}/{_ID}$"),
                        "load balancer"),
    "ListenerArn": (re.compile(_ARN_HEAD + rf"listener/(app|net|gwy)/{_NAME}/{_ID}/{_ID}$"),
                    "listener"),
    "RuleArn": (re.compile(_ARN_HEAD + rf"listener-rule/(app|net|gwy)/{_NAME}/{_ID}/{_ID}/{_ID}$"),
                "listener rule"),
}


def arns(form: Mapping[str, str]) -> None:
    """Every `...TargetGroupArn`, `TargetGroupArns.member.N` (and the load balancer,
    listener and rule equivalents) in the form must be well formed."""
    for key, value in form.items():
        parts = key.split(".")
        last = parts[-1]
        if last.isdigit() and len(parts) >= 3 and parts[-2] == "member":
            last = parts[-3][:-1] if parts[-3].endswith("Arns") else ""
        rule = ARN_RULES.get(last)
        if rule is not None and not rule[0].match(value):
            raise validation(f"'{value}' is not a valid {rule[1]} ARN")


# ---- targets: which IPs an ip target group accepts -------------------------------------------
# CreateTargetGroup, TargetType: "you can specify IP addresses from the subnets of the virtual
# private cloud (VPC) for the target group, the RFC 1918 range (10.0.0.0/8, 172.16.0.0/12, and
# 192.168.0.0/16), and the RFC 6598 range (100.64.0.0/10). You can't specify publicly routable
# IP addresses." https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html
PRIVATE_RANGES = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"))
# Not AWS: the fake's own tests and benchmark run their targets on loopback, the only
# address a test process can bind without setting up interfaces. AWS refuses 127.0.0.0/8.
TESTBED_RANGES = (ipaddress.ip_network("127.0.0.0/8"),)


def target_ips(ids: list[str], ip_address_type: str, vpc_cidrs: list[str]) -> None:
    """RegisterTargets on an ip target group: family of the group, and (IPv4) inside the
    VPC, a private range, or loopback (testbed)."""
    nets = [ipaddress.ip_network(c, strict=False) for c in vpc_cidrs]
    for tid in ids:
        ip = ipaddress.ip_address(tid)  # parse_targets checked it
        if ip_address_type == "ipv6":
            if ip.version != 6:
                raise validation(f"The IP address '{tid}' is not a valid IPv6 address")
            continue
        if ip.version != 4:
            raise validation(f"The IP address '{tid}' is not a valid IPv4 address")
        if not any(ip in n for n in (*nets, *PRIVATE_RANGES, *TESTBED_RANGES)):
            raise validation(f"The IP address '{tid}' is not in the target group's VPC CIDR, "
                             "the RFC 1918 range or the RFC 6598 range; publicly routable IP "
                             "addresses cannot be targets")


# ---- load balancers ---------------------------------------------------------------------------
_LB_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")


def lb_name(name: str) -> None:
    """CreateLoadBalancer, Name: "must have a maximum of 32 characters, must contain only
    alphanumeric characters or hyphens, must not begin or end with a hyphen, and must not
    begin with "internal-"." (moto accepts any name; found by the fuzz suite)
    https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html"""
    if not _LB_NAME.match(name) or name.startswith("internal-"):
        raise validation(f"Load balancer name '{name}' must have a maximum of 32 "
                         "alphanumeric characters or hyphens, must not begin or end with a "
                         "hyphen, and must not begin with 'internal-'")


def lb_subnets(subnet_azs: list[str], lb_type: str) -> None:
    """CreateLoadBalancer, Subnets: "[Application Load Balancers] You must specify subnets
    from at least two Availability Zones."
    https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html"""
    if lb_type == "application" and len(set(subnet_azs)) < 2:
        raise validation("At least two subnets in two different Availability Zones must be "
                         "specified")


def lb_subnet_ids(form: Mapping[str, str]) -> list[str]:
    """The subnets of a CreateLoadBalancer / SetSubnets form (Subnets or SubnetMappings)."""
    return ([m for m in (form[k] for k in sorted(form) if k.startswith("Subnets.member."))]
            + [m.get("SubnetId", "") for m in members(dict(form), "SubnetMappings")])


# ---- target group health checks -----------------------------------------------------------------
# CreateTargetGroup: HealthCheckEnabled "If the target type is instance, ip, or alb, health
# checks are always enabled and can't be disabled."; HealthCheckProtocol "The TCP protocol is
# not supported for health checks if the protocol of the target group is HTTP or HTTPS."
# https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html
ALWAYS_CHECKED_TARGET_TYPES = frozenset({"instance", "ip", "alb"})
HTTP_PROTOCOLS = frozenset({"HTTP", "HTTPS"})


def health_check_rules(form: Mapping[str, str], protocol: str | None, target_type: str
                       ) -> None:
    """The health check rules that depend on the group (its protocol and target type), for
    CreateTargetGroup (from the form) and ModifyTargetGroup (from the group)."""
    enabled = form.get("HealthCheckEnabled")
    if enabled is not None and enabled.lower() == "false" \
            and target_type in ALWAYS_CHECKED_TARGET_TYPES:
        raise validation("Health checks cannot be disabled for target groups with target "
                         f"type '{target_type}'")
    hc_protocol = form.get("HealthCheckProtocol")
    if hc_protocol is not None and protocol in HTTP_PROTOCOLS \
            and hc_protocol not in HTTP_PROTOCOLS:
        raise validation(f"Health check protocol '{hc_protocol}' is not supported for target "
                         f"groups with the {protocol} protocol")
    path = form.get("HealthCheckPath")
    if path is not None and not path.startswith("/"):
        # HealthCheckPath is an absolute request path (model: Path, 1-1024 characters).
        raise validation(f"Health check path '{path}' must begin with a '/' character")


# ---- target group attributes: values by key -----------------------------------------------------
# https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetGroupAttribute.html
BOOLEAN_TG_ATTRIBUTES = frozenset({
    "stickiness.enabled", "deregistration_delay.connection_termination.enabled",
    "waf.fail_open.enabled", "lambda.multi_value_headers.enabled", "preserve_client_ip.enabled",
    "proxy_protocol_v2.enabled", "target_health_state.unhealthy.connection_termination.enabled",
})
# "The following attributes are supported only by Network Load Balancers" (same page).
NLB_ONLY_TG_ATTRIBUTES = frozenset({
    "deregistration_delay.connection_termination.enabled", "preserve_client_ip.enabled",
    "proxy_protocol_v2.enabled", "target_health_state.unhealthy.connection_termination.enabled",
    "target_health_state.unhealthy.draining_interval_seconds",
})
# Integer attributes and their range (same page: "The range is 1 second to 1 week (604800
# seconds)"); deregistration delay and slow start have their own messages in tg_attributes.
RANGED_TG_ATTRIBUTES: dict[str, tuple[int, int]] = {
    "stickiness.lb_cookie.duration_seconds": (1, 604800),
    "stickiness.app_cookie.duration_seconds": (1, 604800),
}
# "stickiness.type - ... For Application Load Balancers, the possible values are lb_cookie
# and app_cookie." (same page)
ALB_STICKINESS_TYPES = ("lb_cookie", "app_cookie")


def tg_attribute_values(attrs: Mapping[str, str], protocol: str | None) -> None:
    """Per-key value rules (table above) for the attributes of one call."""
    for key, value in attrs.items():
        if key in BOOLEAN_TG_ATTRIBUTES and value not in ("true", "false"):
            raise validation(f"'{key}' value '{value}' must be one of [true, false]")
        if key in RANGED_TG_ATTRIBUTES:
            lo, hi = RANGED_TG_ATTRIBUTES[key]
            if not value.isdigit() or not lo <= int(value) <= hi:
                raise validation(f"'{key}' value '{value}' must be between '{lo}-{hi}' "
                                 "inclusive")
        if protocol in HTTP_PROTOCOLS and key in NLB_ONLY_TG_ATTRIBUTES:
            raise validation(f"Target group attribute key '{key}' is not supported for target "
                             f"groups with the {protocol} protocol")
    stype = attrs.get("stickiness.type")
    if stype is not None and protocol in HTTP_PROTOCOLS and stype not in ALB_STICKINESS_TYPES:
        raise validation(f"'stickiness.type' value '{stype}' must be one of "
                         f"[{', '.join(ALB_STICKINESS_TYPES)}]")


# ---- listener rules and actions ---------------------------------------------------------------
# What AWS refuses and moto accepts. Sources:
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-condition-types.html
# ("Condition basics": up to one host-header, http-request-method, path-pattern and source-ip
# condition per rule; up to three match evaluations per condition and five per rule; up to
# five wildcards per rule), the model's documentation of HostHeaderConditionConfig,
# PathPatternConditionConfig, HttpHeaderConditionConfig, HttpRequestMethodConditionConfig,
# SourceIpConditionConfig (up to five values), FixedResponseActionConfig and
# RedirectActionConfig, and
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-limits.html
# ("Condition values per rule": 5, "Condition wildcards per rule": 5).
RULE_VALUES_MAX = 5
CONDITION_VALUES_MAX = 3
SOURCE_IP_VALUES_MAX = 5
RULE_WILDCARDS_MAX = 5
_ONCE_PER_RULE = ("host-header", "http-request-method", "path-pattern", "source-ip")
_CONFIG_OF = {"host-header": "HostHeaderConfig", "path-pattern": "PathPatternConfig",
              "http-header": "HttpHeaderConfig", "http-request-method": "HttpRequestMethodConfig",
              "query-string": "QueryStringConfig", "source-ip": "SourceIpConfig"}
_HOST_VALUE = re.compile(r"^[A-Za-z0-9*?.-]+\.[A-Za-z*?]+$")
_PATH_VALUE = re.compile(r"^[A-Za-z0-9_\-.$/~\"'@:+&*?]+$")
_METHOD_VALUE = re.compile(r"^[A-Z_-]+$")
_FIXED_STATUS = re.compile(r"^[245]\d\d$")
FIXED_CONTENT_TYPES = ("text/plain", "text/css", "text/html", "application/javascript",
                       "application/json")
_REDIRECT_PROTOCOL = re.compile(r"^(HTTPS?|#\{protocol\})$")


def nested(form: Mapping[str, str], prefix: str) -> Any:
    """The flat query-protocol members under `prefix` as nested dicts and lists:
    `Conditions.member.1.Values.member.2` -> {"Conditions": [{"Values": [.., ..]}]}[...]."""
    root: dict[str, Any] = {}
    lead = prefix + "."
    for key, value in form.items():
        if key == prefix:
            return value
        if not key.startswith(lead):
            continue
        node = root
        parts = key[len(lead):].split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last:
                node[part] = value
            else:
                nxt = node.setdefault(part, {})
                if not isinstance(nxt, dict):
                    break
                node = nxt

    def lists(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        if set(node) == {"member"} and isinstance(node["member"], dict):
            items = node["member"]
            return [lists(items[k]) for k in sorted(items, key=lambda k: (
                not k.isdigit(), int(k) if k.isdigit() else 0, k))]
        return {k: lists(v) for k, v in node.items()}

    return lists(root) if root else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _wildcards(value: str, escapes: bool = False) -> int:
    if escapes:
        value = value.replace("\\*", "").replace("\\?", "")
    return value.count("*") + value.count("?")


def rule_conditions(conditions: list[dict[str, Any]]) -> None:
    """CreateRule / ModifyRule `Conditions` (already through check_model)."""
    seen: set[str] = set()
    total = wildcards = 0
    for i, cond in enumerate(conditions, 1):
        field = str(cond.get("Field") or "")
        config = _dict(cond.get(_CONFIG_OF.get(field, "")))
        if "RegexValues" in cond or "RegexValues" in config:
            raise validation("RegexValues (regular expression conditions) are not modelled "
                             "by the fake AWS")
        if field not in _CONFIG_OF:
            continue  # moto answers with its own error
        if field in _ONCE_PER_RULE:
            if field in seen:
                raise validation(f"A rule can only have one '{field}' condition")
            seen.add(field)
        if field == "query-string":
            pairs = [_dict(p) for p in _list(config.get("Values"))]
            values = [str(p.get("Value", "")) for p in pairs]
            wildcards += sum(_wildcards(str(p.get(k, "")), escapes=True)
                             for p in pairs for k in ("Key", "Value"))
        else:
            typed = config.get("Values")
            values = [str(v) for v in _list(typed if typed is not None else cond.get("Values"))]
            if field in ("host-header", "path-pattern", "http-header"):
                wildcards += sum(_wildcards(v) for v in values)
        if not values:
            raise validation(f"Condition {i} ('{field}'): a condition value must be specified")
        limit = SOURCE_IP_VALUES_MAX if field == "source-ip" else CONDITION_VALUES_MAX
        if len(values) > limit:
            raise validation(f"Condition {i} ('{field}') has {len(values)} values; the limit "
                             f"is '{limit}'")
        total += len(values)
        for v in values:
            _condition_value(field, v, config)
    if total > RULE_VALUES_MAX:
        raise validation(f"A rule can only have '{RULE_VALUES_MAX}' condition values "
                         f"(it has {total})")
    if wildcards > RULE_WILDCARDS_MAX:
        raise validation(f"A rule can only have '{RULE_WILDCARDS_MAX}' wildcards in its "
                         f"condition values (it has {wildcards})")


def _condition_value(field: str, value: str, config: dict[str, Any]) -> None:
    if len(value) > 128:
        raise validation(f"The '{field}' value is too long; the limit is '128'")
    if field == "host-header" and not _HOST_VALUE.match(value):
        raise validation(f"The 'host-header' value '{value}' is not valid: allowed are A-Z, "
                         "a-z, 0-9, '-', '.', '*', '?', with at least one '.' and only "
                         "letters after the last '.'")
    if field == "path-pattern" and not _PATH_VALUE.match(value):
        raise validation(f"The 'path-pattern' value '{value}' contains characters that are "
                         "not allowed")
    if field == "http-request-method" and not _METHOD_VALUE.match(value):
        raise validation(f"The 'http-request-method' value '{value}' is invalid; the allowed "
                         "characters are A-Z, hyphen and underscore")
    if field == "source-ip":
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise validation(f"The 'source-ip' value '{value}' is not a valid CIDR block"
                             ) from None
        if "/" not in value:
            raise validation(f"The 'source-ip' value '{value}' is not a valid CIDR block")
    if field == "http-header":
        name = str(config.get("HttpHeaderName") or "")
        if name.lower() == "host":
            raise validation("You can't use an HTTP header condition to specify the host "
                             "header; use a host-header condition")
        if "*" in name or "?" in name:
            raise validation(f"The 'HttpHeaderName' value '{name}' is not valid: wildcards "
                             "are not supported")


def rule_actions(actions: list[dict[str, Any]], where: str) -> None:
    """Fixed-response and redirect configurations of `Actions` / `DefaultActions`."""
    for i, act in enumerate(actions, 1):
        kind = act.get("Type")
        if kind == "fixed-response":
            cfg = _dict(act.get("FixedResponseConfig"))
            status = str(cfg.get("StatusCode", ""))
            if status and not _FIXED_STATUS.match(status):
                raise _constraint(status, f"{where}.{i}.member.fixedResponseConfig.statusCode",
                                  "Member must satisfy regular expression pattern: "
                                  "^(2|4|5)\\d\\d$")
            ctype = cfg.get("ContentType")
            if ctype not in (None, "") and ctype not in FIXED_CONTENT_TYPES:
                raise validation(f"The content type '{ctype}' is not valid; valid values: "
                                 f"{' | '.join(FIXED_CONTENT_TYPES)}")
        elif kind == "redirect":
            cfg = _dict(act.get("RedirectConfig"))
            proto = cfg.get("Protocol")
            if proto is not None and not _REDIRECT_PROTOCOL.match(str(proto)):
                raise _constraint(str(proto), f"{where}.{i}.member.redirectConfig.protocol",
                                  "Member must satisfy regular expression pattern: "
                                  "^(HTTPS?|#\\{protocol\\})$")
            port = cfg.get("Port")
            if port is not None and port != "#{port}" and not (
                    str(port).isascii() and str(port).isdigit() and 1 <= int(port) <= 65535):
                raise validation(f"The redirect port '{port}' is not valid: 1-65535 or "
                                 "#{port}")
            path = cfg.get("Path")
            if path is not None and not str(path).startswith("/"):
                raise validation(f"The redirect path '{path}' must start with '/'")
            if all(cfg.get(k) in (None, d) for k, d in (
                    ("Protocol", "#{protocol}"), ("Host", "#{host}"), ("Port", "#{port}"),
                    ("Path", "/#{path}"))):
                raise validation("The redirect must change at least one of protocol, host, "
                                 "port or path (a redirect loop otherwise)")


def rules(action: str, form: Mapping[str, str]) -> None:
    """Listener rule and action checks for CreateRule, ModifyRule, CreateListener and
    ModifyListener (after check_model)."""
    if action in ("CreateRule", "ModifyRule"):
        if "Transforms" in form or any(k.startswith("Transforms.") for k in form):
            raise validation("Transforms (host header and URL rewrites) are not modelled by "
                             "the fake AWS")
        conditions = nested(form, "Conditions")
        if isinstance(conditions, list):
            rule_conditions([_dict(c) for c in conditions])
        actions = nested(form, "Actions")
        if isinstance(actions, list):
            rule_actions([_dict(a) for a in actions], "actions")
    elif action in ("CreateListener", "ModifyListener"):
        actions = nested(form, "DefaultActions")
        if isinstance(actions, list):
            rule_actions([_dict(a) for a in actions], "defaultActions")
