"""The scenario JSON Schema, with defaults, and an `x-expected` phrase per field.

`x-expected` is what the error message says a field should be; keeping it next to the rule means
a new field cannot ship without a readable message.
"""

from __future__ import annotations

from typing import Any

PERCENT_OR_INT = {
    "x-expected": "an integer or percentage like '25%'",
    "oneOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": r"^[0-9]{1,3}%$"},
    ],
}


def _int(default: int, minimum: int, maximum: int | None = None, what: str = "") -> dict[str, Any]:
    rng = f">= {minimum}" if maximum is None else f"{minimum}-{maximum}"
    node: dict[str, Any] = {"type": "integer", "minimum": minimum, "default": default,
                            "x-expected": f"an integer {rng}{what}"}
    if maximum is not None:
        node["maximum"] = maximum
    return node


def _num(default: float, minimum: float, maximum: float | None = None) -> dict[str, Any]:
    rng = f">= {minimum:g}" if maximum is None else f"{minimum:g}-{maximum:g}"
    node: dict[str, Any] = {"type": "number", "minimum": minimum, "default": default,
                            "x-expected": f"a number {rng}"}
    if maximum is not None:
        node["maximum"] = maximum
    return node


def _bool(default: bool) -> dict[str, Any]:
    return {"type": "boolean", "default": default, "x-expected": "true or false"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "additionalProperties": False,
            "required": required or [], "default": {}, "x-expected": "a mapping"}


TRANSPORT_CLASSES = ["conn_refused", "conn_reset", "conn_closed", "timeout", "conn_error",
                     "bad_response"]
CLASS_PATTERN = r"^([45][0-9][0-9]|" + "|".join(TRANSPORT_CLASSES) + ")$"
CLASS_EXPECTED = "an HTTP error code like '502' or one of " + ", ".join(TRANSPORT_CLASSES)

APP_PROPS: dict[str, Any] = {
    "replicas": _int(3, 1, 50),
    "readinessGate": _bool(True),
    "preStopSleepSeconds": _int(0, 0, 3600),
    "terminationGracePeriodSeconds": _int(30, 0, 3600),
    "onSigterm": {"enum": ["exit", "drain", "ignore"], "default": "drain",
                  "x-expected": "one of exit, drain, ignore"},
    "drainSeconds": _num(5, 0, 3600),
    "keepAliveTimeoutSeconds": _num(75, 0.1, 4000),
    "startupDelaySeconds": _num(0, 0, 600),
    "readyAfterSeconds": _num(0, 0, 600),
    "latencyMs": _num(0, 0, 600000),
    "healthCode": _int(200, 100, 599),
    "healthyAfterSeconds": _num(0, 0, 600),
}


def _no_defaults(props: dict[str, Any]) -> dict[str, Any]:
    return {k: {kk: vv for kk, vv in v.items() if kk != "default"} for k, v in props.items()}


NULLABLE_SECONDS = {"x-expected": "a number of seconds or null", "default": None,
                    "oneOf": [{"type": "null"}, {"type": "number", "minimum": 0}]}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    **_obj({
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
                 "x-expected": "a DNS label (lower-case letters, digits, '-'), like 'full-recipe'"},
        "description": {"type": "string", "default": "",
                        "x-expected": "a string (say which upstream issue this reproduces)"},
        "app": _obj(APP_PROPS),
        "rollout": _obj({
            "maxSurge": {**PERCENT_OR_INT, "default": "25%"},
            "maxUnavailable": {**PERCENT_OR_INT, "default": "25%"},
            "count": _int(1, 1, 20),
            "timeoutSeconds": _int(180, 1, 3600),
            "newApp": {**_obj(_no_defaults(APP_PROPS)),
                       "x-expected": "a mapping of app fields that differ in the new version"},
        }),
        "targetGroup": _obj({
            "healthCheck": _obj({
                "path": {"type": "string", "pattern": "^/", "default": "/healthz",
                         "x-expected": "a path starting with '/'"},
                "intervalSeconds": _int(15, 1, 300),
                "timeoutSeconds": _int(5, 1, 120),
                "healthyThreshold": _int(2, 2, 10),
                "unhealthyThreshold": _int(2, 2, 10),
                "matcher": {"type": "string", "default": "200",
                            "pattern": r"^[0-9]{3}(-[0-9]{3})?(,[0-9]{3}(-[0-9]{3})?)*$",
                            "x-expected": "HTTP codes like '200', '200,202' or '200-299'"},
            }),
            "deregistrationDelaySeconds": _int(300, 0, 3600),
            "slowStartSeconds": _int(0, 0, 900),
            "attachListener": _bool(True),
        }),
        "alb": _obj({
            "registerDelaySeconds": _num(0, 0, 600),
            "deregisterDelaySeconds": _num(0, 0, 600),
            "idleTimeoutSeconds": _int(60, 1, 4000),
            "algorithm": {"enum": ["round_robin", "least_outstanding_requests"],
                          "default": "round_robin",
                          "x-expected": "one of round_robin, least_outstanding_requests"},
        }),
        "controller": _obj({
            "requeueSeconds": _num(15, 0.1, 3600),
            "podWatch": _bool(True),
            "backoffRequeue": _bool(False),
            "legacyEndpoints": _bool(False),
        }),
        "load": _obj({
            "rate": _num(50, 0.1, 5000),
            "durationSeconds": {
                "default": "untilRolloutDone",
                "x-expected": "a number of seconds or 'untilRolloutDone'",
                "oneOf": [{"type": "number", "exclusiveMinimum": 0},
                          {"const": "untilRolloutDone"}],
            },
            "marginSeconds": _num(10, 0, 600),
            "maxDurationSeconds": _num(300, 1, 3600),
            "timeoutSeconds": _num(30, 0.1, 600),
        }),
        "expect": _obj({
            "errors": {"enum": ["none", "expected"], "default": "none",
                       "x-expected": "'none' (the recipe holds) or 'expected' (a bug reproduces)"},
            "classes": {"type": "array", "default": [], "uniqueItems": True,
                        "x-expected": "a list of error classes",
                        "items": {"x-expected": CLASS_EXPECTED, "oneOf": [
                            {"type": "integer", "minimum": 400, "maximum": 599},
                            {"type": "string", "pattern": CLASS_PATTERN}]}},
            "minErrors": _int(0, 0),
            "rolloutStalls": _bool(False),
            "minRolloutSeconds": NULLABLE_SECONDS,
            "maxRolloutSeconds": NULLABLE_SECONDS,
            "minRegistrationLagSeconds": NULLABLE_SECONDS,
            "maxRegistrationLagSeconds": NULLABLE_SECONDS,
        }),
    }, required=["name"]),
}
