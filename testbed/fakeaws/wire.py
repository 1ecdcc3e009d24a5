"""The contract between the API process and the engine process (besides settings.py).

The API process pushes a `Snapshot` of moto's ELBv2 state to the engine's `POST /sync` after
every change; the engine reconciles listeners and target-group settings against it. Both
sides import these types; neither imports the other's code.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

# Values ELBv2 accepts for `load_balancing.algorithm.type`:
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#modify-routing-algorithm
# The API validates against this list; the engine has one picker per name.
ALGORITHMS = ("round_robin", "least_outstanding_requests", "weighted_random")

# The engine prints `READY <control port>` on stdout once its control API listens.
READY = "READY"

# /sync answers `bind_failed: [{listener_arn, port, host, error}]`; an error starting with
# this is a port another listener has (the rest is that listener's ARN).
PORT_TAKEN = "port taken by listener "


class HealthCheck(TypedDict):
    enabled: bool
    protocol: str
    port: str  # a port number or "traffic-port"
    path: str
    interval: float  # fractional / below 5 s only with a low --min-health-check-interval
    timeout: float
    healthy_threshold: int
    unhealthy_threshold: int
    matcher: str  # "200", "200,202", "200-299"


class Stickiness(TypedDict):
    """A target group's `stickiness.*` attributes (only sent when `stickiness.enabled` is
    true): https://docs.aws.amazon.com/elasticloadbalancing/latest/application/sticky-sessions.html"""

    type: str  # "lb_cookie" | "app_cookie"
    duration: float  # lb_cookie.duration_seconds or app_cookie.duration_seconds
    cookie_name: str  # app_cookie.cookie_name ("" for lb_cookie)


class TargetGroup(TypedDict):
    arn: str
    port: int
    health: HealthCheck
    deregistration_delay: float
    slow_start: float
    algorithm: str  # one of ALGORITHMS
    in_use: bool  # some listener (default action or rule) forwards to it
    stickiness: NotRequired[Stickiness | None]  # absent or None: stickiness disabled


# ---- listener actions and rules ----------------------------------------------------------
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-listeners.html#rule-action-types
class ForwardAction(TypedDict):
    type: Literal["forward"]
    target_groups: list[tuple[str, int]]  # (target group ARN, weight); JSON: pairs -> lists
    # ForwardConfig.TargetGroupStickinessConfig: DurationSeconds when Enabled, else 0.
    stickiness: float


class FixedResponseAction(TypedDict):
    type: Literal["fixed-response"]
    status: int  # FixedResponseConfig.StatusCode (2XX, 4XX, 5XX)
    content_type: str  # FixedResponseConfig.ContentType ("" when not given)
    body: str  # FixedResponseConfig.MessageBody ("" when not given)


class RedirectAction(TypedDict):
    """RedirectConfig with AWS's defaults filled in: a component not given keeps the
    request's ("#{protocol}", "#{port}", "#{host}", "/#{path}", "#{query}")."""

    type: Literal["redirect"]
    protocol: str
    port: str
    host: str
    path: str
    query: str
    status: int  # 301 (HTTP_301) or 302 (HTTP_302)


Action = ForwardAction | FixedResponseAction | RedirectAction


class Condition(TypedDict):
    """One rule condition:
    https://docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-condition-types.html"""

    # host-header | path-pattern | http-header | http-request-method | query-string | source-ip
    field: str
    values: list[str]  # patterns, methods or CIDRs ([] for query-string)
    header_name: NotRequired[str]  # http-header: HttpHeaderConfig.HttpHeaderName
    # query-string: (Key or None, Value) per QueryStringConfig.Values member
    pairs: NotRequired[list[tuple[str | None, str]]]


class Rule(TypedDict):
    priority: int
    conditions: list[Condition]  # all must match; each matches when one of its values does
    action: Action  # the rule's last (terminal) action


class Listener(TypedDict):
    arn: str
    port: int
    idle_timeout: float
    default_action: Action
    rules: list[Rule]  # sorted by priority, lowest first
    # The load balancer attribute `client_keep_alive.seconds` (default 3600 when absent, so
    # older senders work):
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html#http-client-keep-alive-duration
    client_keep_alive: NotRequired[float]
    # The address to listen on when the load balancer has its own (settings
    # listener_addresses per-load-balancer); absent: the engine's listener host.
    host: NotRequired[str]


class Snapshot(TypedDict):
    target_groups: list[TargetGroup]
    listeners: list[Listener]
