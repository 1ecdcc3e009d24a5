"""The desired ALB state of one IngressGroup: plain, immutable dataclasses.

Mirrors the resources upstream's Ingress model builder puts into its stack
(aws-load-balancer-controller v3.5.0, pkg/model/elbv2/*.go and
pkg/model/elbv2/k8s/target_group_binding.go). Cross references use *stack ids*, never ARNs:
ARNs exist only once the deployer has created the resources, which is why a forward action
names its target group by ``TargetGroupRef.target_group_id`` and why ``Model.bindings`` is keyed by
the same id (the deployer fills in ``targetGroupARN`` when it writes the TargetGroupBinding).

Resource ids follow upstream: the load balancer is ``"LoadBalancer"``
(shared_constants.ResourceIDLoadBalancer), a listener is ``"<port>"`` (model_build_listener.go),
a rule is ``"<port>:<priority>"`` (model_build_listener_rules.go) and a target group is
``"<ns>/<ingress>-<service>:<port>"`` (model_build_target_group.go buildTargetGroupResourceID).
The same id is the value of the ``ingress.k8s.aws/resource`` tag.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LOAD_BALANCER_ID = "LoadBalancer"

# pkg/deploy/tracking/provider.go@v3.5.0 with the "ingress.k8s.aws" prefix
# (controllers/ingress/group_controller.go ingressTagPrefix)
TAG_CLUSTER = "elbv2.k8s.aws/cluster"
TAG_STACK = "ingress.k8s.aws/stack"
TAG_RESOURCE = "ingress.k8s.aws/resource"
LABEL_STACK = "ingress.k8s.aws/stack"
LABEL_STACK_NAMESPACE = "ingress.k8s.aws/stack-namespace"
LABEL_STACK_NAME = "ingress.k8s.aws/stack-name"

ACTION_FORWARD = "forward"
ACTION_FIXED_RESPONSE = "fixed-response"
ACTION_REDIRECT = "redirect"

FIELD_HOST_HEADER = "host-header"
FIELD_PATH_PATTERN = "path-pattern"
FIELD_HTTP_HEADER = "http-header"
FIELD_HTTP_REQUEST_METHOD = "http-request-method"
FIELD_QUERY_STRING = "query-string"
FIELD_SOURCE_IP = "source-ip"


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


@dataclass(frozen=True)
class FixedResponseConfig:
    status_code: str
    content_type: str | None = None
    message_body: str | None = None

    def to_elbv2(self) -> dict[str, Any]:
        return _drop_none(
            {
                "StatusCode": self.status_code,
                "ContentType": self.content_type,
                "MessageBody": self.message_body,
            }
        )


@dataclass(frozen=True)
class RedirectConfig:
    status_code: str
    host: str | None = None
    path: str | None = None
    port: str | None = None
    protocol: str | None = None
    query: str | None = None

    def to_elbv2(self) -> dict[str, Any]:
        return _drop_none(
            {
                "StatusCode": self.status_code,
                "Host": self.host,
                "Path": self.path,
                "Port": self.port,
                "Protocol": self.protocol,
                "Query": self.query,
            }
        )


@dataclass(frozen=True)
class TargetGroupRef:
    """One forward target: a target group of this model (by id) or an existing one.

    Upstream resolves ``targetGroupName`` to an ARN during model build (an ELBv2 call); this
    layer is pure, so the name is handed to the deployer unresolved.
    """

    target_group_id: str | None = None
    target_group_arn: str | None = None
    target_group_name: str | None = None
    weight: int | None = None


@dataclass(frozen=True)
class Stickiness:
    enabled: bool | None = None
    duration_seconds: int | None = None


@dataclass(frozen=True)
class ForwardConfig:
    target_groups: tuple[TargetGroupRef, ...]
    stickiness: Stickiness | None = None


@dataclass(frozen=True)
class Action:
    type: str
    forward: ForwardConfig | None = None
    fixed_response: FixedResponseConfig | None = None
    redirect: RedirectConfig | None = None

    def to_elbv2(self, resolve_arn: Callable[[TargetGroupRef], str]) -> dict[str, Any]:
        """The boto3 ``Actions[]`` entry (without ``Order``, which the deployer assigns)."""
        out: dict[str, Any] = {"Type": self.type}
        if self.forward is not None:
            fwd: dict[str, Any] = {
                "TargetGroups": [
                    _drop_none({"TargetGroupArn": resolve_arn(t), "Weight": t.weight})
                    for t in self.forward.target_groups
                ]
            }
            if self.forward.stickiness is not None:
                fwd["TargetGroupStickinessConfig"] = _drop_none(
                    {
                        "Enabled": self.forward.stickiness.enabled,
                        "DurationSeconds": self.forward.stickiness.duration_seconds,
                    }
                )
            out["ForwardConfig"] = fwd
        if self.fixed_response is not None:
            out["FixedResponseConfig"] = self.fixed_response.to_elbv2()
        if self.redirect is not None:
            out["RedirectConfig"] = self.redirect.to_elbv2()
        return out


@dataclass(frozen=True)
class QueryStringKV:
    value: str
    key: str | None = None


@dataclass(frozen=True)
class Condition:
    """One ELBv2 rule condition; which fields are used depends on ``field``."""

    field: str
    values: tuple[str, ...] = ()
    regex_values: tuple[str, ...] = ()
    http_header_name: str | None = None
    query_string: tuple[QueryStringKV, ...] = ()

    def to_elbv2(self) -> dict[str, Any]:
        vals = _drop_none(
            {
                "Values": list(self.values) or None,
                "RegexValues": list(self.regex_values) or None,
            }
        )
        config: dict[str, Any]
        if self.field == FIELD_HOST_HEADER:
            return {"Field": self.field, "HostHeaderConfig": vals}
        if self.field == FIELD_PATH_PATTERN:
            return {"Field": self.field, "PathPatternConfig": vals}
        if self.field == FIELD_HTTP_HEADER:
            config = {"HttpHeaderName": self.http_header_name, **vals}
            return {"Field": self.field, "HttpHeaderConfig": config}
        if self.field == FIELD_HTTP_REQUEST_METHOD:
            return {"Field": self.field, "HttpRequestMethodConfig": {"Values": list(self.values)}}
        if self.field == FIELD_QUERY_STRING:
            pairs = [_drop_none({"Key": p.key, "Value": p.value}) for p in self.query_string]
            return {"Field": self.field, "QueryStringConfig": {"Values": pairs}}
        if self.field == FIELD_SOURCE_IP:
            return {"Field": self.field, "SourceIpConfig": {"Values": list(self.values)}}
        raise ValueError(f"unknown condition field: {self.field}")


@dataclass(frozen=True)
class HealthCheck:
    port: str  # "traffic-port" or a port number as text, as ELBv2 takes it
    protocol: str
    path: str
    interval_seconds: int
    timeout_seconds: int
    healthy_threshold_count: int
    unhealthy_threshold_count: int
    matcher_http_code: str | None = None
    matcher_grpc_code: str | None = None


@dataclass(frozen=True)
class LoadBalancer:
    name: str
    scheme: str
    ip_address_type: str
    attributes: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    type: str = "application"
    id: str = LOAD_BALANCER_ID


@dataclass(frozen=True)
class Listener:
    id: str
    port: int
    protocol: str
    default_actions: tuple[Action, ...]
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    id: str
    listener_port: int
    priority: int
    conditions: tuple[Condition, ...]
    actions: tuple[Action, ...]
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetGroup:
    id: str
    name: str
    target_type: str
    port: int
    protocol: str
    protocol_version: str
    ip_address_type: str
    health_check: HealthCheck
    attributes: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetGroupBinding:
    """The TargetGroupBinding a target group needs (upstream buildTargetGroupBindingSpec).

    ``name`` is the target group's name and ``namespace`` the Service's, as upstream does; the
    deployer sets ``spec.targetGroupARN`` from the created target group ``target_group_id``.
    """

    target_group_id: str
    name: str
    namespace: str
    service_name: str
    service_port: int | str
    target_type: str
    ip_address_type: str
    target_group_protocol: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Model:
    stack_id: str
    members: tuple[str, ...]  # "<ns>/<name>" of the group's Ingresses, in group order
    load_balancer: LoadBalancer
    listeners: tuple[Listener, ...]  # ascending port
    rules: tuple[Rule, ...]  # by listener port, then priority
    target_groups: dict[str, TargetGroup]  # keyed by TargetGroup.id, in creation order
    bindings: dict[str, TargetGroupBinding]  # keyed by TargetGroup.id

    def rules_for(self, port: int) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.listener_port == port)
