"""``actions.<name>`` and ``conditions.<name>`` annotation JSON.

The user-facing schema and its validation messages are upstream's pkg/ingress/config_types.go
(aws-load-balancer-controller v3.5.0); how a backend picks them up is
pkg/ingress/enhanced_backend_builder.go. Go's encoding/json matches object keys to struct fields
case-insensitively and ignores unknown keys, so this parser does the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.ingress import model as m
from controller.ingress.annotations import Annotations, key, parse_json
from controller.ingress.errors import IngressModelError

# enhanced_backend_builder.go magicServicePortUseAnnotation
USE_ANNOTATION = "use-annotation"


@dataclass(frozen=True)
class TargetGroupTuple:
    """config_types.go TargetGroupTuple: a Service port *or* an existing target group."""

    target_group_arn: str | None = None
    target_group_name: str | None = None
    service_name: str | None = None
    service_port: int | str | None = None
    weight: int | None = None


@dataclass(frozen=True)
class ForwardSpec:
    target_groups: tuple[TargetGroupTuple, ...]
    stickiness: m.Stickiness | None = None


@dataclass(frozen=True)
class ActionConfig:
    """A normalised action: forward always uses ``forward`` (the simplified schema is folded in)."""

    type: str
    forward: ForwardSpec | None = None
    fixed_response: m.FixedResponseConfig | None = None
    redirect: m.RedirectConfig | None = None


class _BadJSON(Exception):
    """A shape error, reported like Go's json.Unmarshal failure."""


def _get(obj: Mapping[str, Any], name: str) -> Any:
    """Case-insensitive field lookup, exact match first (encoding/json rules)."""
    if name in obj:
        return obj[name]
    low = name.lower()
    for k, v in obj.items():
        if k.lower() == low:
            return v
    return None


def _obj(v: Any, what: str) -> Mapping[str, Any] | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise _BadJSON(f"{what} must be an object")
    return v


def _str(v: Any, what: str) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str):
        raise _BadJSON(f"{what} must be a string")
    return v


def _int(v: Any, what: str) -> int | None:
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or not -(2**31) <= v < 2**31:
        raise _BadJSON(f"{what} must be an int32")
    return v


def _bool(v: Any, what: str) -> bool | None:
    if v is None:
        return None
    if not isinstance(v, bool):
        raise _BadJSON(f"{what} must be a boolean")
    return v


def _strs(v: Any, what: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _BadJSON(f"{what} must be a list of strings")
    return tuple(v)


def _service_port(v: Any) -> int | str | None:
    """intstr.IntOrString, then normalizeServicePortForBackwardsCompatibility: "80" -> 80."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise _BadJSON("servicePort must be an int or a string")
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return v


# ---- actions ---------------------------------------------------------------------------------


def _tuple(raw: Any) -> TargetGroupTuple:
    o = _obj(raw, "targetGroups[]") or {}
    return TargetGroupTuple(
        target_group_arn=_str(_get(o, "targetGroupARN"), "targetGroupARN"),
        target_group_name=_str(_get(o, "targetGroupName"), "targetGroupName"),
        service_name=_str(_get(o, "serviceName"), "serviceName"),
        service_port=_service_port(_get(o, "servicePort")),
        weight=_int(_get(o, "weight"), "weight"),
    )


def _validate_tuple(t: TargetGroupTuple) -> None:
    has_tg = t.target_group_arn is not None or t.target_group_name is not None
    if not has_tg and t.service_name is None:
        raise IngressModelError("missing serviceName or targetGroupARN/targetGroupName")
    if has_tg and t.service_name is not None:
        raise IngressModelError(
            "either serviceName or targetGroupARN/targetGroupName can be specified"
        )
    if t.service_name is not None and t.service_port is None:
        raise IngressModelError("missing servicePort")


def _validate_forward(spec: ForwardSpec) -> None:
    for t in spec.target_groups:
        try:
            _validate_tuple(t)
        except IngressModelError as e:
            raise e.wrap("invalid TargetGroupTuple") from None
    if len(spec.target_groups) > 1 and any(t.weight is None for t in spec.target_groups):
        raise IngressModelError("weight must be set when route to multiple target groups")


def _decode_action(raw: Any) -> ActionConfig:
    o = _obj(raw, "action")
    if o is None:
        raise _BadJSON("action must be an object")
    typ = _str(_get(o, "type"), "type") or ""
    tg_arn = _str(_get(o, "targetGroupARN"), "targetGroupARN")
    tg_name = _str(_get(o, "targetGroupName"), "targetGroupName")
    fixed = _obj(_get(o, "fixedResponseConfig"), "fixedResponseConfig")
    redirect = _obj(_get(o, "redirectConfig"), "redirectConfig")
    forward = _obj(_get(o, "forwardConfig"), "forwardConfig")

    fixed_cfg = None
    if fixed is not None:
        fixed_cfg = m.FixedResponseConfig(
            status_code=_str(_get(fixed, "statusCode"), "statusCode") or "",
            content_type=_str(_get(fixed, "contentType"), "contentType"),
            message_body=_str(_get(fixed, "messageBody"), "messageBody"),
        )
    redirect_cfg = None
    if redirect is not None:
        redirect_cfg = m.RedirectConfig(
            status_code=_str(_get(redirect, "statusCode"), "statusCode") or "",
            host=_str(_get(redirect, "host"), "host"),
            path=_str(_get(redirect, "path"), "path"),
            port=_str(_get(redirect, "port"), "port"),
            protocol=_str(_get(redirect, "protocol"), "protocol"),
            query=_str(_get(redirect, "query"), "query"),
        )
    forward_spec = None
    if forward is not None:
        tgs = _get(forward, "targetGroups")
        if tgs is not None and not isinstance(tgs, list):
            raise _BadJSON("targetGroups must be a list")
        sticky = _obj(_get(forward, "targetGroupStickinessConfig"), "targetGroupStickinessConfig")
        forward_spec = ForwardSpec(
            target_groups=tuple(_tuple(t) for t in tgs or []),
            stickiness=None
            if sticky is None
            else m.Stickiness(
                enabled=_bool(_get(sticky, "enabled"), "enabled"),
                duration_seconds=_int(_get(sticky, "durationSeconds"), "durationSeconds"),
            ),
        )

    # config_types.go Action.validate
    if typ == m.ACTION_FIXED_RESPONSE:
        if fixed_cfg is None:
            raise IngressModelError("missing FixedResponseConfig")
        if not fixed_cfg.status_code:
            raise IngressModelError("invalid FixedResponseConfig: statusCode is required")
        return ActionConfig(type=typ, fixed_response=fixed_cfg)
    if typ == m.ACTION_REDIRECT:
        if redirect_cfg is None:
            raise IngressModelError("missing RedirectConfig")
        if not redirect_cfg.status_code:
            raise IngressModelError("invalid RedirectConfig: statusCode is required")
        return ActionConfig(type=typ, redirect=redirect_cfg)
    if typ == m.ACTION_FORWARD:
        has_tg = tg_arn is not None or tg_name is not None
        if not has_tg and forward_spec is None:
            raise IngressModelError("missing ForwardConfig or TargetGroupARN/TargetGroupName")
        if has_tg and forward_spec is not None:
            raise IngressModelError(
                "either ForwardConfig or TargetGroupARN/TargetGroupName can be specified"
            )
        if forward_spec is not None:
            try:
                _validate_forward(forward_spec)
            except IngressModelError as e:
                raise e.wrap("invalid ForwardConfig") from None
            return ActionConfig(type=typ, forward=forward_spec)
        # normalizeSimplifiedSchemaForwardAction
        single = TargetGroupTuple(target_group_arn=tg_arn, target_group_name=tg_name)
        return ActionConfig(type=typ, forward=ForwardSpec(target_groups=(single,)))
    raise IngressModelError(f"unknown action type: {typ}")


def action_from_annotation(annotations: Annotations, name: str) -> ActionConfig | None:
    """``actions.<name>``; None when absent (the caller decides: 503 or error)."""
    suffix = f"actions.{name}"
    raw = parse_json(annotations, suffix)
    if raw is None and key(suffix) not in annotations:
        return None
    try:
        return _decode_action(raw)
    except _BadJSON as e:
        raise IngressModelError(
            f"failed to parse json annotation, {key(suffix)}: {annotations[key(suffix)]}: {e}"
        ) from None


def forward_to_service(service_name: str, service_port: int | str) -> ActionConfig:
    """buildActionViaServiceAndServicePort: a plain backend is a forward to one Service port."""
    t = TargetGroupTuple(service_name=service_name, service_port=service_port)
    return ActionConfig(type=m.ACTION_FORWARD, forward=ForwardSpec(target_groups=(t,)))


def fixed_503(message_body: str) -> ActionConfig:
    """build503ResponseAction, used when a backend Service or action does not exist."""
    cfg = m.FixedResponseConfig(
        status_code="503", content_type="text/plain", message_body=message_body
    )
    return ActionConfig(type=m.ACTION_FIXED_RESPONSE, fixed_response=cfg)


# ---- conditions ------------------------------------------------------------------------------


def _values_or_regex(cfg: Mapping[str, Any], what: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    values = _strs(_get(cfg, "values"), f"{what}.values")
    regex = _strs(_get(cfg, "regexValues"), f"{what}.regexValues")
    if not values and not regex:
        raise IngressModelError(f"invalid {what}: values or regexValues must be specified")
    if values and regex:
        raise IngressModelError(
            f"invalid {what}: precisely one of values and regexValues can be specified"
        )
    return values, regex


def _decode_condition(raw: Any) -> m.Condition | None:
    o = _obj(raw, "condition")
    if o is None:
        raise _BadJSON("condition must be an object")
    fld = _str(_get(o, "field"), "field") or ""

    def config(name: str) -> Mapping[str, Any]:
        c = _obj(_get(o, name), name)
        if c is None:
            raise IngressModelError(f"missing {name}")
        return c

    if fld == m.FIELD_HOST_HEADER:
        values, regex = _values_or_regex(config("hostHeaderConfig"), "hostHeaderConfig")
        return m.Condition(fld, values=values, regex_values=regex)
    if fld == m.FIELD_PATH_PATTERN:
        values, regex = _values_or_regex(config("pathPatternConfig"), "pathPatternConfig")
        return m.Condition(fld, values=values, regex_values=regex)
    if fld == m.FIELD_HTTP_HEADER:
        c = config("httpHeaderConfig")
        values, regex = _values_or_regex(c, "httpHeaderConfig")
        name = _str(_get(c, "httpHeaderName"), "httpHeaderName") or ""
        return m.Condition(fld, values=values, regex_values=regex, http_header_name=name)
    if fld == m.FIELD_HTTP_REQUEST_METHOD:
        values = _strs(_get(config("httpRequestMethodConfig"), "values"), "values")
        if not values:
            raise IngressModelError("invalid httpRequestMethodConfig: values cannot be empty")
        return m.Condition(fld, values=values)
    if fld == m.FIELD_QUERY_STRING:
        raw_pairs = _get(config("queryStringConfig"), "values")
        if raw_pairs is not None and not isinstance(raw_pairs, list):
            raise _BadJSON("queryStringConfig.values must be a list")
        if not raw_pairs:
            raise IngressModelError("invalid queryStringConfig: Values cannot be empty")
        pairs: list[m.QueryStringKV] = []
        for p in raw_pairs:
            po = _obj(p, "queryStringConfig.values[]") or {}
            value = _str(_get(po, "value"), "value") or ""
            if not value:
                raise IngressModelError("invalid queryStringConfig: value cannot be empty")
            pairs.append(m.QueryStringKV(value=value, key=_str(_get(po, "key"), "key")))
        return m.Condition(fld, query_string=tuple(pairs))
    if fld == m.FIELD_SOURCE_IP:
        values = _strs(_get(config("sourceIPConfig"), "values"), "values")
        if not values:
            raise IngressModelError("invalid sourceIPConfig: values cannot be empty")
        return m.Condition(fld, values=values)
    # RuleCondition.Validate accepts unknown fields and buildRuleConditions skips them.
    return None


def conditions_from_annotation(annotations: Annotations, name: str) -> tuple[m.Condition, ...]:
    """``conditions.<name>`` (enhanced_backend_builder.go buildConditions)."""
    suffix = f"conditions.{name}"
    raw = parse_json(annotations, suffix)
    if raw is None:
        return ()
    try:
        if not isinstance(raw, list):
            raise _BadJSON("expected a JSON list of conditions")
        out: list[m.Condition] = []
        for c in raw:
            cond = _decode_condition(c)
            if cond is not None:
                out.append(cond)
        return tuple(out)
    except _BadJSON as e:
        raise IngressModelError(
            f"failed to parse json annotation, {key(suffix)}: {annotations[key(suffix)]}: {e}"
        ) from None
