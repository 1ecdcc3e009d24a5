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


# ---- engine restart (POST /_testbed/restart; docs/fakeaws.md "Restart with state kept") ----
# The API spawns the new engine with these flags: the state file the old engine wrote, and
# the Unix socket the old engine hands its listening sockets over on.
RESTORE_FLAG = "--restore"
HANDOVER_FLAG = "--handover"
# The old engine's connections still idle this long after it stopped accepting are closed;
# whatever is still running after RETIRE_LIMIT is cut (then the old engine exits).
RETIRE_GRACE = 5.0
RETIRE_LIMIT = 120.0


class CheckpointRequest(TypedDict):
    """POST /checkpoint: freeze, write the state to `state_file`, serve the listening
    sockets on the Unix socket `handover` (to the one engine that connects)."""

    state_file: str
    handover: str


class Carried(TypedDict):
    """What a restart carried over (the checkpoint's answer, the `restart` event's fields)."""

    target_groups: int
    targets: int
    events: int  # events in the ring buffer
    seq: int  # the last event's seq at the checkpoint


class CheckpointAnswer(Carried):
    pid: int


class RetireRequest(TypedDict):
    """POST /retire (stop accepting; the drain starts); POST /drained waits for its end."""

    grace: float
    limit: float


class RestartAnswer(Carried):
    """POST /_testbed/restart's answer."""

    old_pid: int
    new_pid: int
    handover_ms: float  # lock taken -> the old engine no longer accepts (the whole handover)
    api_wait_ms: float  # how long ELBv2 calls needing the engine were held
    accept_overlap_ms: float  # both engines accepting on the same sockets
    listener_gap_ms: float  # listeners with no engine accepting (0: sockets handed over)
