"""``alb.ingress.kubernetes.io/*`` annotations that shape an ALB rollout: parsing, defaults, errors.

Behaviour follows aws-load-balancer-controller v3.5.0:

- parsing primitives and their error texts: pkg/annotations/parser.go
- annotation names: pkg/annotations/constants.go
- defaults: pkg/ingress/model_builder.go (``defaultModelBuildTask`` literals) and the
  ``--default-target-type`` / ``--default-load-balancer-scheme`` flags in
  pkg/config/controller_config.go
- target-group level values: pkg/ingress/model_build_target_group.go, which reads them from
  ``MergeStringMap(svc.Annotations, ing.Annotations)`` -- the first map wins
  (pkg/algorithm/maps.go), so **the Service's annotation beats the Ingress's**.
- listen-ports: pkg/ingress/model_build_listener.go (computeIngressListenPorts)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.ingress.errors import IngressModelError, UnsupportedError

PREFIX = "alb.ingress.kubernetes.io"

# suffixes, as upstream's pkg/annotations/constants.go spells them
LOAD_BALANCER_NAME = "load-balancer-name"
GROUP_NAME = "group.name"
GROUP_ORDER = "group.order"
TAGS = "tags"
IP_ADDRESS_TYPE = "ip-address-type"
SCHEME = "scheme"
LOAD_BALANCER_ATTRIBUTES = "load-balancer-attributes"
LISTEN_PORTS = "listen-ports"
SSL_REDIRECT = "ssl-redirect"
CERTIFICATE_ARN = "certificate-arn"
TARGET_TYPE = "target-type"
BACKEND_PROTOCOL = "backend-protocol"
BACKEND_PROTOCOL_VERSION = "backend-protocol-version"
TARGET_GROUP_ATTRIBUTES = "target-group-attributes"
HEALTHCHECK_PORT = "healthcheck-port"
HEALTHCHECK_PROTOCOL = "healthcheck-protocol"
HEALTHCHECK_PATH = "healthcheck-path"
HEALTHCHECK_INTERVAL_SECONDS = "healthcheck-interval-seconds"
HEALTHCHECK_TIMEOUT_SECONDS = "healthcheck-timeout-seconds"
HEALTHY_THRESHOLD_COUNT = "healthy-threshold-count"
UNHEALTHY_THRESHOLD_COUNT = "unhealthy-threshold-count"
SUCCESS_CODES = "success-codes"
USE_REGEX_PATH_MATCH = "use-regex-path-match"
TARGET_CONTROL_PORT = "target-control-port"

# kubernetes.io/ingress.class (pkg/annotations/constants.go IngressClass)
INGRESS_CLASS = "kubernetes.io/ingress.class"

# model_builder.go@v3.5.0 task literals
DEFAULT_HEALTHCHECK_PATH_HTTP = "/"
DEFAULT_HEALTHCHECK_PATH_GRPC = "/AWS.ALB/healthcheck"
DEFAULT_HEALTHCHECK_INTERVAL_SECONDS = 15
DEFAULT_HEALTHCHECK_TIMEOUT_SECONDS = 5
DEFAULT_HEALTHY_THRESHOLD_COUNT = 2
DEFAULT_UNHEALTHY_THRESHOLD_COUNT = 2
DEFAULT_SUCCESS_CODES_HTTP = "200"
DEFAULT_SUCCESS_CODES_GRPC = "12"
DEFAULT_BACKEND_PROTOCOL = "HTTP"
DEFAULT_BACKEND_PROTOCOL_VERSION = "HTTP1"
DEFAULT_IP_ADDRESS_TYPE = "ipv4"
# shared_constants.HealthCheckPortTrafficPort
TRAFFIC_PORT = "traffic-port"
# controller_config.go@v3.5.0: --default-load-balancer-scheme defaults to internal.
DEFAULT_SCHEME = "internal"
# Upstream's --default-target-type flag defaults to "instance"; this controller only registers
# pod IPs, so it behaves like upstream run with --default-target-type=ip.
DEFAULT_TARGET_TYPE = "ip"
# model_build_listener.go@v3.5.0 computeIngressListenPorts: no annotation -> HTTP:80
DEFAULT_LISTEN_PORTS: dict[int, str] = {80: "HTTP"}

Annotations = Mapping[str, str]

_INT_RE = re.compile(r"^[+-]?[0-9]+$")
_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def key(suffix: str) -> str:
    return f"{PREFIX}/{suffix}"


def merge_string_maps(*maps: Mapping[str, str] | None) -> dict[str, str]:
    """Upstream algorithm.MergeStringMap: on duplicate keys the *earlier* map wins."""
    out: dict[str, str] = {}
    for m in maps:
        for k, v in (m or {}).items():
            out.setdefault(k, v)
    return out


def get_string(annotations: Annotations, suffix: str) -> str | None:
    return annotations.get(key(suffix))


def parse_int32(annotations: Annotations, suffix: str) -> int | None:
    """ParseInt32Annotation: strconv.ParseInt(raw, 10, 32) -- no spaces, no underscores."""
    k = key(suffix)
    raw = annotations.get(k)
    if raw is None:
        return None
    if not _INT_RE.match(raw):
        raise IngressModelError(
            f'failed to parse int32 annotation, {k}: {raw}: strconv.ParseInt: parsing "{raw}": '
            "invalid syntax"
        )
    value = int(raw)
    if not -(2**31) <= value < 2**31:
        raise IngressModelError(
            f'failed to parse int32 annotation, {k}: {raw}: strconv.ParseInt: parsing "{raw}": '
            "value out of range"
        )
    return value


def parse_bool(annotations: Annotations, suffix: str) -> bool | None:
    """ParseBoolAnnotation: Go's strconv.ParseBool spellings only."""
    k = key(suffix)
    raw = annotations.get(k)
    if raw is None:
        return None
    if raw in _GO_TRUE:
        return True
    if raw in _GO_FALSE:
        return False
    raise IngressModelError(
        f'failed to parse bool annotation, {k}: {raw}: strconv.ParseBool: parsing "{raw}": '
        "invalid syntax"
    )


def parse_json(annotations: Annotations, suffix: str) -> Any | None:
    k = key(suffix)
    raw = annotations.get(k)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError as e:
        raise IngressModelError(f"failed to parse json annotation, {k}: {raw}: {e}") from e


def parse_string_list(annotations: Annotations, suffix: str) -> list[str] | None:
    """ParseStringSliceAnnotation: comma separated, blanks dropped."""
    raw = annotations.get(key(suffix))
    if raw is None:
        return None
    return [p.strip() for p in raw.split(",") if p.strip()]


def _split_key_value_pairs(s: str) -> list[str]:
    """parser.go splitKeyValuePairs: a comma only splits when a '=' follows; '\\' escapes."""
    result: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            cur.append(s[i + 1])
            i += 2
            continue
        if c == ",":
            remaining = s[i + 1 :].strip()
            if "=" in remaining:
                result.append("".join(cur).strip())
                cur = []
            elif remaining:
                # upstream hands the malformed tail on as its own pair so parsing fails
                result.append("".join(cur).strip())
                result.append(remaining)
                return result
            else:
                cur.append(c)
        else:
            cur.append(c)
        i += 1
    if cur:
        result.append("".join(cur).strip())
    return result


def parse_string_map(annotations: Annotations, suffix: str) -> dict[str, str] | None:
    """ParseStringMapAnnotation: ``k=v,k=v`` with upstream's error text."""
    k = key(suffix)
    raw = annotations.get(k)
    if raw is None:
        return None
    out: dict[str, str] = {}
    for pair in _split_key_value_pairs(raw):
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise IngressModelError(f"failed to parse stringMap annotation, {k}: {raw}")
        out[name.strip()] = value.strip()
    return out


# ---- load balancer / listener level (Ingress annotations only) ------------------------------


def listen_ports(annotations: Annotations) -> dict[int, str]:
    """Port -> protocol for one Ingress (model_build_listener.go computeIngressListenPorts).

    Only HTTP is supported: HTTPS listeners need certificates, which this controller does not
    model. A certificate-arn without listen-ports makes upstream default to HTTPS:443, so that is
    rejected too rather than silently serving HTTP:80.
    """
    raw = get_string(annotations, LISTEN_PORTS)
    if raw is None:
        if get_string(annotations, CERTIFICATE_ARN) is not None:
            raise UnsupportedError(
                "listen protocol HTTPS is not supported by this controller: "
                f"{key(CERTIFICATE_ARN)} implies an HTTPS:443 listener"
            )
        return dict(DEFAULT_LISTEN_PORTS)
    try:
        entries = json.loads(raw)
    except ValueError as e:
        raise IngressModelError(
            f"failed to parse listen-ports configuration: `{raw}`: {e}"
        ) from e
    if not isinstance(entries, list) or not all(isinstance(x, dict) for x in entries):
        raise IngressModelError(
            f"failed to parse listen-ports configuration: `{raw}`: "
            "expected a JSON list of {\"PROTOCOL\": port} objects"
        )
    if not entries:
        raise IngressModelError(f"empty listen-ports configuration: `{raw}`")
    ports: dict[int, str] = {}
    for entry in entries:
        for protocol, port in entry.items():
            if not isinstance(port, int) or isinstance(port, bool):
                raise IngressModelError(
                    f"failed to parse listen-ports configuration: `{raw}`: "
                    f"port must be an integer: {port!r}"
                )
            if not 1 <= port <= 65535:
                raise IngressModelError(f"listen port must be within [1, 65535]: {port}")
            if protocol == "HTTP":
                ports[port] = "HTTP"
            elif protocol == "HTTPS":
                raise UnsupportedError(
                    f"listen protocol HTTPS is not supported by this controller: {port}"
                )
            else:
                raise IngressModelError(
                    f"listen protocol must be within [HTTP, HTTPS]: {protocol}"
                )
    return ports


def check_ssl_redirect(annotations: Annotations) -> None:
    """ssl-redirect needs an HTTPS listener (model_builder.go buildSSLRedirectConfig)."""
    if get_string(annotations, SSL_REDIRECT) is not None:
        raise UnsupportedError(
            f"{key(SSL_REDIRECT)} is not supported by this controller (no HTTPS listeners)"
        )


def validate_scheme(raw: str) -> str:
    """model_build_load_balancer.go buildLoadBalancerScheme."""
    if raw in ("internet-facing", "internal"):
        return raw
    raise IngressModelError(f"unknown scheme: {raw}")


def validate_ip_address_type(raw: str) -> str:
    """model_build_load_balancer.go buildLoadBalancerIPAddressType."""
    if raw in ("ipv4", "dualstack", "dualstack-without-public-ipv4"):
        return raw
    raise IngressModelError(f"unknown IPAddressType: {raw}")


# ---- target group level (Service annotations win over Ingress annotations) -------------------


@dataclass(frozen=True)
class TargetGroupSettings:
    """Parsed target-group annotations; the named healthcheck-port is resolved by the builder."""

    target_type: str
    protocol: str
    protocol_version: str
    healthcheck_port: str
    healthcheck_protocol: str
    healthcheck_path: str
    success_codes: str
    healthcheck_interval_seconds: int
    healthcheck_timeout_seconds: int
    healthy_threshold_count: int
    unhealthy_threshold_count: int
    attributes: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    target_control_port: int | None = None


def target_type(merged: Annotations, default: str = DEFAULT_TARGET_TYPE) -> str:
    """buildTargetGroupTargetType; only ``ip`` is implemented here."""
    raw = get_string(merged, TARGET_TYPE) or default
    if raw == "ip":
        return raw
    if raw == "instance":
        raise UnsupportedError(
            "unsupported targetType: instance (this controller registers pod IPs only; "
            f"set {key(TARGET_TYPE)}: ip)"
        )
    raise IngressModelError(f"unknown targetType: {raw}")


def target_group_settings(
    svc_annotations: Annotations | None,
    ing_annotations: Annotations | None,
    *,
    default_target_type: str = DEFAULT_TARGET_TYPE,
    svc_name: str = "",
    svc_port: str = "",
) -> TargetGroupSettings:
    """Everything buildTargetGroupSpec reads from ``MergeStringMap(svc, ing)`` annotations."""
    merged = merge_string_maps(svc_annotations, ing_annotations)
    tt = target_type(merged, default_target_type)

    protocol = get_string(merged, BACKEND_PROTOCOL) or DEFAULT_BACKEND_PROTOCOL
    if protocol not in ("HTTP", "HTTPS"):
        raise IngressModelError(f"backend protocol must be within [HTTP, HTTPS]: {protocol}")
    version = get_string(merged, BACKEND_PROTOCOL_VERSION) or DEFAULT_BACKEND_PROTOCOL_VERSION
    if version not in ("HTTP1", "HTTP2", "GRPC"):
        raise IngressModelError(
            f"backend protocol version must be within [HTTP1, HTTP2, GRPC]: {version}"
        )

    hc_port = get_string(merged, HEALTHCHECK_PORT)
    hc_protocol = get_string(merged, HEALTHCHECK_PROTOCOL)
    if hc_protocol is None:
        hc_protocol = protocol  # upstream: health check protocol defaults to the TG protocol
    if hc_protocol not in ("HTTP", "HTTPS"):
        raise IngressModelError("healthCheckProtocol must be within [HTTP, HTTPS]")
    grpc = version == "GRPC"
    hc_path = get_string(merged, HEALTHCHECK_PATH)
    if hc_path is None:
        hc_path = DEFAULT_HEALTHCHECK_PATH_GRPC if grpc else DEFAULT_HEALTHCHECK_PATH_HTTP
    codes = get_string(merged, SUCCESS_CODES)
    if codes is None:
        codes = DEFAULT_SUCCESS_CODES_GRPC if grpc else DEFAULT_SUCCESS_CODES_HTTP

    def int_or(suffix: str, default: int) -> int:
        v = parse_int32(merged, suffix)
        return default if v is None else v

    control_port = None
    if svc_name:
        control_port = parse_int32(merged, f"{TARGET_CONTROL_PORT}.{svc_name}.{svc_port}")
        if control_port is not None:
            raise UnsupportedError(
                f"{key(TARGET_CONTROL_PORT)} is not supported by this controller"
            )

    return TargetGroupSettings(
        target_type=tt,
        protocol=protocol,
        protocol_version=version,
        healthcheck_port=TRAFFIC_PORT if hc_port is None else hc_port,
        healthcheck_protocol=hc_protocol,
        healthcheck_path=hc_path,
        success_codes=codes,
        healthcheck_interval_seconds=int_or(
            HEALTHCHECK_INTERVAL_SECONDS, DEFAULT_HEALTHCHECK_INTERVAL_SECONDS
        ),
        healthcheck_timeout_seconds=int_or(
            HEALTHCHECK_TIMEOUT_SECONDS, DEFAULT_HEALTHCHECK_TIMEOUT_SECONDS
        ),
        healthy_threshold_count=int_or(HEALTHY_THRESHOLD_COUNT, DEFAULT_HEALTHY_THRESHOLD_COUNT),
        unhealthy_threshold_count=int_or(
            UNHEALTHY_THRESHOLD_COUNT, DEFAULT_UNHEALTHY_THRESHOLD_COUNT
        ),
        attributes=parse_string_map(merged, TARGET_GROUP_ATTRIBUTES) or {},
        tags=target_group_tags(svc_annotations, ing_annotations),
        target_control_port=control_port,
    )


def target_group_tags(
    svc_annotations: Annotations | None, ing_annotations: Annotations | None
) -> dict[str, str]:
    """model_build_tags.go buildIngressBackendResourceTags: both parsed, Service tags win."""
    svc_tags = parse_string_map(svc_annotations or {}, TAGS)
    ing_tags = parse_string_map(ing_annotations or {}, TAGS)
    return merge_string_maps(svc_tags, ing_tags)
