"""alb.ingress.kubernetes.io/* annotations: values, upstream defaults, bad values, precedence."""

from __future__ import annotations

import pytest
from test_ingress_fixtures import A

from controller.ingress import annotations as ann
from controller.ingress.errors import IngressModelError, UnsupportedError


def tg(
    svc: dict[str, str] | None = None, ing: dict[str, str] | None = None
) -> ann.TargetGroupSettings:
    return ann.target_group_settings(svc or {}, ing or {})


def test_target_group_defaults() -> None:
    """model_builder.go@v3.5.0 task literals: path "/", port traffic-port, protocol HTTP,
    interval 15, timeout 5, healthy 2, unhealthy 2, success codes "200", HTTP1."""
    s = tg()
    assert (s.target_type, s.protocol, s.protocol_version) == ("ip", "HTTP", "HTTP1")
    assert s.healthcheck_path == "/"
    assert s.healthcheck_port == "traffic-port"
    assert s.healthcheck_protocol == "HTTP"
    assert s.healthcheck_interval_seconds == 15
    assert s.healthcheck_timeout_seconds == 5
    assert s.healthy_threshold_count == 2
    assert s.unhealthy_threshold_count == 2
    assert s.success_codes == "200"
    assert s.attributes == {} and s.tags == {}


@pytest.mark.parametrize(
    ("suffix", "value", "attr", "expected"),
    [
        ("healthcheck-path", "/healthz", "healthcheck_path", "/healthz"),
        ("healthcheck-port", "9000", "healthcheck_port", "9000"),
        ("healthcheck-protocol", "HTTPS", "healthcheck_protocol", "HTTPS"),
        ("healthcheck-interval-seconds", "30", "healthcheck_interval_seconds", 30),
        ("healthcheck-timeout-seconds", "+7", "healthcheck_timeout_seconds", 7),
        ("healthy-threshold-count", "3", "healthy_threshold_count", 3),
        ("unhealthy-threshold-count", "4", "unhealthy_threshold_count", 4),
        ("success-codes", "200-299", "success_codes", "200-299"),
        ("backend-protocol", "HTTPS", "protocol", "HTTPS"),
        ("target-type", "ip", "target_type", "ip"),
        ("target-group-attributes", "a=1, b = 2", "attributes", {"a": "1", "b": "2"}),
    ],
)
def test_target_group_values(suffix: str, value: str, attr: str, expected: object) -> None:
    """model_build_target_group.go@v3.5.0: each annotation overrides its default."""
    assert getattr(tg(ing={A + suffix: value}), attr) == expected


@pytest.mark.parametrize(
    ("suffix", "value", "message"),
    [
        ("healthcheck-interval-seconds", "15s", "failed to parse int32 annotation"),
        ("healthy-threshold-count", "1 ", "failed to parse int32 annotation"),
        ("unhealthy-threshold-count", "99999999999", "value out of range"),
        ("healthcheck-timeout-seconds", "1_0", "invalid syntax"),
        ("healthcheck-protocol", "TCP", "healthCheckProtocol must be within [HTTP, HTTPS]"),
        ("backend-protocol", "GRPC", "backend protocol must be within [HTTP, HTTPS]: GRPC"),
        ("backend-protocol-version", "HTTP3", "backend protocol version must be within"),
        ("target-type", "lambda", "unknown targetType: lambda"),
        ("target-group-attributes", "a=1,b", "failed to parse stringMap annotation"),
    ],
)
def test_target_group_bad_values(suffix: str, value: str, message: str) -> None:
    """pkg/annotations/parser.go@v3.5.0 and model_build_target_group.go@v3.5.0 error texts."""
    with pytest.raises(IngressModelError, match=message.replace("[", r"\[").replace("]", r"\]")):
        tg(ing={A + suffix: value})


def test_instance_target_type_is_unsupported() -> None:
    """model_build_target_group.go@v3.5.0 accepts instance; we only register pod IPs."""
    with pytest.raises(UnsupportedError, match="unsupported targetType: instance"):
        tg(ing={A + "target-type": "instance"})
    with pytest.raises(UnsupportedError):
        ann.target_group_settings({}, {}, default_target_type="instance")


def test_grpc_changes_health_check_defaults() -> None:
    """model_builder.go@v3.5.0: GRPC uses /AWS.ALB/healthcheck and matcher "12"."""
    s = tg(ing={A + "backend-protocol-version": "GRPC"})
    assert (s.healthcheck_path, s.success_codes) == ("/AWS.ALB/healthcheck", "12")


def test_health_check_protocol_follows_backend_protocol() -> None:
    """buildTargetGroupHealthCheckProtocol@v3.5.0 defaults to the TG protocol."""
    assert tg(ing={A + "backend-protocol": "HTTPS"}).healthcheck_protocol == "HTTPS"


def test_service_annotation_wins_over_ingress() -> None:
    """model_build_target_group.go@v3.5.0 MergeStringMap(svc.Annotations, ing.Annotations):
    pkg/algorithm/maps.go keeps the first map's value, so the Service wins per key."""
    s = tg(
        svc={A + "healthcheck-path": "/svc", A + "target-group-attributes": "x=svc"},
        ing={A + "healthcheck-path": "/ing", A + "success-codes": "204",
             A + "target-group-attributes": "x=ing,y=ing"},
    )
    assert s.healthcheck_path == "/svc"
    assert s.success_codes == "204"
    # the whole annotation value is taken from the Service, not merged key by key
    assert s.attributes == {"x": "svc"}


def test_target_group_tags_merge_service_first() -> None:
    """model_build_tags.go@v3.5.0 buildIngressBackendResourceTags: both parsed, Service wins."""
    s = tg(svc={A + "tags": "team=svc"}, ing={A + "tags": "team=ing,env=dev"})
    assert s.tags == {"team": "svc", "env": "dev"}


def test_merge_string_maps_first_wins() -> None:
    """pkg/algorithm/maps.go@v3.5.0 MergeStringMap doc example."""
    assert ann.merge_string_maps({"a": "1", "b": "2"}, {"a": "3", "d": "4"}) == {
        "a": "1", "b": "2", "d": "4"
    }


def test_string_map_escapes_and_commas() -> None:
    """parser.go@v3.5.0 splitKeyValuePairs: '\\,' escapes a comma, a trailing comma is kept in
    the value, and a comma-separated fragment without '=' makes the whole value invalid."""
    a = {A + "tags": r"a=x\,y,b=1,"}
    assert ann.parse_string_map(a, "tags") == {"a": "x,y", "b": "1,"}
    for bad in ("=v", "b=1,2,c=3", "a=1,b"):
        with pytest.raises(IngressModelError, match="failed to parse stringMap annotation"):
            ann.parse_string_map({A + "tags": bad}, "tags")


def test_bool_uses_go_spellings() -> None:
    """parser.go@v3.5.0 ParseBoolAnnotation is strconv.ParseBool."""
    assert ann.parse_bool({A + "x": "True"}, "x") is True
    assert ann.parse_bool({A + "x": "0"}, "x") is False
    assert ann.parse_bool({}, "x") is None
    with pytest.raises(IngressModelError, match="failed to parse bool annotation"):
        ann.parse_bool({A + "x": "yes"}, "x")


def test_json_parse_error_names_the_key() -> None:
    """parser.go@v3.5.0 ParseJSONAnnotation error: 'failed to parse json annotation, key: raw'."""
    with pytest.raises(IngressModelError, match=f"failed to parse json annotation, {A}x: {{"):
        ann.parse_json({A + "x": "{"}, "x")


def test_listen_ports_default_and_values() -> None:
    """model_build_listener.go@v3.5.0 computeIngressListenPorts: default HTTP:80."""
    assert ann.listen_ports({}) == {80: "HTTP"}
    assert ann.listen_ports({A + "listen-ports": '[{"HTTP": 80}, {"HTTP": 8080}]'}) == {
        80: "HTTP",
        8080: "HTTP",
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("[{HTTP: 80}]", "failed to parse listen-ports configuration"),
        ("[]", "empty listen-ports configuration"),
        ('[{"HTTP": 0}]', r"listen port must be within \[1, 65535\]: 0"),
        ('[{"HTTP": 70000}]', r"listen port must be within \[1, 65535\]: 70000"),
        ('[{"TCP": 80}]', r"listen protocol must be within \[HTTP, HTTPS\]: TCP"),
        ('[{"HTTP": "80"}]', "failed to parse listen-ports configuration"),
    ],
)
def test_listen_ports_bad_values(raw: str, message: str) -> None:
    """model_build_listener.go@v3.5.0 computeIngressListenPorts error texts."""
    with pytest.raises(IngressModelError, match=message):
        ann.listen_ports({A + "listen-ports": raw})


def test_https_listeners_are_unsupported() -> None:
    """model_build_listener.go@v3.5.0 allows HTTPS (and defaults to HTTPS:443 with a
    certificate-arn); without certificate support we refuse instead of serving plain HTTP."""
    with pytest.raises(UnsupportedError, match="HTTPS"):
        ann.listen_ports({A + "listen-ports": '[{"HTTP": 80}, {"HTTPS": 443}]'})
    with pytest.raises(UnsupportedError, match="certificate-arn"):
        ann.listen_ports({A + "certificate-arn": "arn:aws:acm:x"})
    with pytest.raises(UnsupportedError, match="ssl-redirect"):
        ann.check_ssl_redirect({A + "ssl-redirect": "443"})


def test_scheme_and_ip_address_type_validation() -> None:
    """model_build_load_balancer.go@v3.5.0 buildLoadBalancerScheme / IPAddressType."""
    assert ann.validate_scheme("internet-facing") == "internet-facing"
    with pytest.raises(IngressModelError, match="unknown scheme: public"):
        ann.validate_scheme("public")
    with pytest.raises(IngressModelError, match="unknown IPAddressType: ipv6"):
        ann.validate_ip_address_type("ipv6")


def test_unsupported_error_carries_event_text() -> None:
    """controllers/ingress/group_controller.go@v3.5.0: event FailedBuildModel,
    'Failed build model due to <err>'."""
    with pytest.raises(UnsupportedError) as info:
        tg(ing={A + "target-type": "instance"})
    assert info.value.reason == "FailedBuildModel"
    assert info.value.event_message.startswith("Failed build model due to unsupported targetType")
