"""actions.<name> / conditions.<name> annotation JSON (config_types.go@v3.5.0)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_ingress_fixtures import A

from controller.ingress import model as m
from controller.ingress.actions import (
    TargetGroupTuple,
    action_from_annotation,
    conditions_from_annotation,
)
from controller.ingress.errors import IngressModelError


def action(obj: Any) -> Any:
    return action_from_annotation({A + "actions.x": json.dumps(obj)}, "x")


def conditions(obj: Any) -> tuple[m.Condition, ...]:
    return conditions_from_annotation({A + "conditions.x": json.dumps(obj)}, "x")


def test_absent_action_is_none() -> None:
    """enhanced_backend_builder.go@v3.5.0 buildActionViaAnnotation: the caller decides."""
    assert action_from_annotation({}, "x") is None


def test_forward_with_weights_and_stickiness() -> None:
    """config_types.go@v3.5.0 ForwardActionConfig; servicePort "80" normalised to 80
    (normalizeServicePortForBackwardsCompatibility)."""
    a = action(
        {
            "type": "forward",
            "forwardConfig": {
                "targetGroups": [
                    {"serviceName": "blue", "servicePort": "80", "weight": 80},
                    {"serviceName": "green", "servicePort": "http", "weight": 20},
                ],
                "targetGroupStickinessConfig": {"enabled": True, "durationSeconds": 60},
            },
        }
    )
    assert a.type == "forward"
    assert a.forward.target_groups == (
        TargetGroupTuple(service_name="blue", service_port=80, weight=80),
        TargetGroupTuple(service_name="green", service_port="http", weight=20),
    )
    assert a.forward.stickiness == m.Stickiness(enabled=True, duration_seconds=60)


def test_simplified_forward_schema_is_normalised() -> None:
    """normalizeSimplifiedSchemaForwardAction@v3.5.0: targetGroupARN -> one forward tuple."""
    a = action({"type": "forward", "targetGroupARN": "arn:tg"})
    assert a.forward.target_groups == (TargetGroupTuple(target_group_arn="arn:tg"),)
    b = action({"Type": "forward", "TargetGroupName": "legacy"})  # Go json: case-insensitive
    assert b.forward.target_groups == (TargetGroupTuple(target_group_name="legacy"),)


def test_fixed_response_and_redirect() -> None:
    """config_types.go@v3.5.0 FixedResponseActionConfig / RedirectActionConfig."""
    f = action(
        {
            "type": "fixed-response",
            "fixedResponseConfig": {"contentType": "text/plain", "statusCode": "418",
                                    "messageBody": "teapot"},
        }
    )
    assert f.fixed_response == m.FixedResponseConfig("418", "text/plain", "teapot")
    r = action(
        {"type": "redirect",
         "redirectConfig": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}
    )
    assert r.redirect == m.RedirectConfig("HTTP_301", port="443", protocol="HTTPS")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"type": "forward"}, "missing ForwardConfig or TargetGroupARN/TargetGroupName"),
        (
            {"type": "forward", "targetGroupARN": "a", "forwardConfig": {"targetGroups": []}},
            "either ForwardConfig or TargetGroupARN/TargetGroupName can be specified",
        ),
        (
            {"type": "forward", "forwardConfig": {"targetGroups": [{"serviceName": "a"}]}},
            "invalid ForwardConfig: invalid TargetGroupTuple: missing servicePort",
        ),
        (
            {"type": "forward", "forwardConfig": {"targetGroups": [{"weight": 1}]}},
            "missing serviceName or targetGroupARN/targetGroupName",
        ),
        (
            {"type": "forward", "forwardConfig": {"targetGroups": [
                {"serviceName": "a", "servicePort": 80, "targetGroupARN": "x"}]}},
            "either serviceName or targetGroupARN/targetGroupName can be specified",
        ),
        (
            {"type": "forward", "forwardConfig": {"targetGroups": [
                {"serviceName": "a", "servicePort": 80, "weight": 1},
                {"serviceName": "b", "servicePort": 80}]}},
            "invalid ForwardConfig: weight must be set when route to multiple target groups",
        ),
        ({"type": "fixed-response"}, "missing FixedResponseConfig"),
        ({"type": "fixed-response", "fixedResponseConfig": {}},
         "invalid FixedResponseConfig: statusCode is required"),
        ({"type": "redirect", "redirectConfig": {"host": "x"}},
         "invalid RedirectConfig: statusCode is required"),
        ({"type": "authenticate-oidc"}, "unknown action type: authenticate-oidc"),
        ({"type": "forward", "forwardConfig": {"targetGroups": [
            {"serviceName": "a", "servicePort": 80, "weight": "1"}]}},
         "failed to parse json annotation"),
    ],
)
def test_action_validation_errors(obj: Any, message: str) -> None:
    """config_types.go@v3.5.0 Action.validate messages."""
    with pytest.raises(IngressModelError, match=message):
        action(obj)


def test_unparseable_action_json() -> None:
    """parser.go@v3.5.0 ParseJSONAnnotation error text."""
    with pytest.raises(IngressModelError, match=f"failed to parse json annotation, {A}actions.x"):
        action_from_annotation({A + "actions.x": "{not json"}, "x")


def test_all_condition_fields() -> None:
    """config_types.go@v3.5.0 RuleCondition: the six condition fields."""
    got = conditions(
        [
            {"field": "host-header", "hostHeaderConfig": {"values": ["a.example.com"]}},
            {"field": "path-pattern", "pathPatternConfig": {"regexValues": ["^/v[12]/"]}},
            {"field": "http-header",
             "httpHeaderConfig": {"httpHeaderName": "X-Canary", "values": ["1"]}},
            {"field": "http-request-method", "httpRequestMethodConfig": {"values": ["GET"]}},
            {"field": "query-string",
             "queryStringConfig": {"values": [{"key": "v", "value": "2"}, {"value": "x"}]}},
            {"field": "source-ip", "sourceIPConfig": {"values": ["10.0.0.0/8"]}},
        ]
    )
    assert got == (
        m.Condition("host-header", values=("a.example.com",)),
        m.Condition("path-pattern", regex_values=("^/v[12]/",)),
        m.Condition("http-header", values=("1",), http_header_name="X-Canary"),
        m.Condition("http-request-method", values=("GET",)),
        m.Condition(
            "query-string", query_string=(m.QueryStringKV("2", "v"), m.QueryStringKV("x"))
        ),
        m.Condition("source-ip", values=("10.0.0.0/8",)),
    )
    assert got[2].to_elbv2() == {
        "Field": "http-header",
        "HttpHeaderConfig": {"HttpHeaderName": "X-Canary", "Values": ["1"]},
    }
    assert got[4].to_elbv2()["QueryStringConfig"]["Values"] == [
        {"Key": "v", "Value": "2"}, {"Value": "x"}
    ]


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"field": "host-header"}, "missing hostHeaderConfig"),
        ({"field": "host-header", "hostHeaderConfig": {}},
         "invalid hostHeaderConfig: values or regexValues must be specified"),
        ({"field": "path-pattern", "pathPatternConfig": {"values": ["/a"], "regexValues": ["b"]}},
         "invalid pathPatternConfig: precisely one of values and regexValues can be specified"),
        ({"field": "http-request-method", "httpRequestMethodConfig": {"values": []}},
         "invalid httpRequestMethodConfig: values cannot be empty"),
        ({"field": "query-string", "queryStringConfig": {"values": []}},
         "invalid queryStringConfig: Values cannot be empty"),
        ({"field": "query-string", "queryStringConfig": {"values": [{"key": "k"}]}},
         "invalid queryStringConfig: value cannot be empty"),
        ({"field": "source-ip", "sourceIPConfig": {"values": []}},
         "invalid sourceIPConfig: values cannot be empty"),
    ],
)
def test_condition_validation_errors(obj: Any, message: str) -> None:
    """config_types.go@v3.5.0 RuleCondition.Validate messages."""
    with pytest.raises(IngressModelError, match=message):
        conditions([obj])


def test_unknown_condition_field_is_ignored() -> None:
    """RuleCondition.Validate@v3.5.0 accepts unknown fields; buildRuleConditions skips them."""
    assert conditions([{"field": "tls-sni", "values": ["x"]}]) == ()


def test_conditions_must_be_a_list() -> None:
    """enhanced_backend_builder.go@v3.5.0 unmarshals into []RuleCondition."""
    with pytest.raises(IngressModelError, match="failed to parse json annotation"):
        conditions({"field": "source-ip"})
