"""Make ELBv2 match a Model: the AWS half of upstream's stack deployer.

Behaviour follows kubernetes-sigs/aws-load-balancer-controller v3.5.0 (read, not copied):

- pkg/deploy/stack_deployer.go: synthesizers run target groups -> load balancer -> listeners ->
  rules -> TargetGroupBindings, then PostSynthesize in reverse, which is where unmatched target
  groups are deleted (after the bindings). ``deploy`` does the AWS part in that order and hands
  the stale target groups back, so the caller can delete them once their TargetGroupBindings are
  gone (controller/ingress/reconcile.py).
- pkg/deploy/tracking/provider.go: existing resources are found by the tags
  ``elbv2.k8s.aws/cluster`` + ``ingress.k8s.aws/stack`` and matched by ``ingress.k8s.aws/resource``.
- pkg/deploy/elbv2/target_group_synthesizer.go: a target group whose target type, protocol or
  protocol version changed is replaced (``isSDKTargetGroupRequiresReplacement``): a new one is
  created and the old one deleted afterwards; otherwise health check, attributes and tags are
  modified in place (target_group_manager.go).
- load_balancer_synthesizer.go / load_balancer_manager.go: unmatched load balancers are deleted
  first; a name/scheme/type change replaces the load balancer; attributes are changed only for the
  keys the model names (load_balancer_attributes.go: a removed annotation key is not reset).
- listener_synthesizer.go: listeners match by port; unmatched ones are deleted first, then
  created, then the matched ones modified when protocol or default actions differ.
- listener_rule_synthesizer.go: rules with equal actions+conditions are only re-prioritised
  (SetRulePriorities, pushing the rules to delete down from 50000), rules left at a shared
  priority are modified in place, then the rest are created before the leftovers are deleted
  (create-before-delete, so traffic never meets a gap).
- Tags: desired tags are added/overwritten, tags the model no longer has are removed
  (pkg/deploy/elbv2/tagging_manager.go ReconcileTags).

Subnets and VPC: this controller does no subnet discovery by tags (upstream's
``kubernetes.io/role/elb``); it takes ``subnets`` / ``vpc_id`` as configured, and when they are
empty it uses the region's default VPC and its default-for-AZ subnets (EC2 DescribeVpcs /
DescribeSubnets), which the fake AWS (moto) always has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.aws import AWSError
from controller.aws import call as aws_call
from controller.ingress import model as m
from controller.log import get_logger

log = get_logger("ingress.deploy")

TAGS_PER_DESCRIBE = 20  # DescribeTags takes at most 20 ARNs
PUSH_DOWN_FROM = 50000  # listener_rule_manager.go buildSDKSetRulePrioritiesInput
DEFAULT_REDIRECT = {  # what ELBv2 reports for RedirectConfig fields left out
    "Host": "#{host}",
    "Path": "/#{path}",
    "Port": "#{port}",
    "Protocol": "#{protocol}",
    "Query": "#{query}",
}


@dataclass
class DeployResult:
    load_balancer_arn: str
    dns_name: str
    target_group_arns: dict[str, str]  # model target group id -> ARN
    # ARNs of this stack's target groups the model no longer has (or replaced); the caller
    # deletes them after their TargetGroupBindings are gone (PostSynthesize order upstream)
    stale_target_groups: list[str] = field(default_factory=list)


_call = aws_call  # one ELBv2/EC2 call with the controller's metrics and AWSError


# kind -> (describe action, modify action, the ARN parameter); boto3's methods are the
# actions in snake case
_ATTRIBUTE_CALLS = {
    "target-group": ("DescribeTargetGroupAttributes", "ModifyTargetGroupAttributes",
                     "TargetGroupArn"),
    "load-balancer": ("DescribeLoadBalancerAttributes", "ModifyLoadBalancerAttributes",
                      "LoadBalancerArn"),
}


def _method(client: Any, action: str) -> Callable[..., Any]:
    return getattr(client, "".join("_" + c.lower() if c.isupper() else c
                                   for c in action).lstrip("_"))


def _delete(op: str, fn: Callable[..., Any], not_found: str, **kwargs: Any) -> None:
    """A delete that is done when AWS says the resource is already gone."""
    try:
        _call(op, fn, **kwargs)
    except AWSError as e:
        if e.code != not_found:
            raise


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


# ---- comparison of actions and conditions (ELBv2's answers carry defaults and extras) ----------


def norm_action(a: dict[str, Any]) -> tuple[Any, ...]:
    """A comparable form of one boto3 action, whether built here or described by ELBv2.

    ELBv2 reports a single-target forward both as TargetGroupArn and as ForwardConfig with
    weight 1 and stickiness off, and fills the redirect fields left out; upstream's
    CompareOptionForActions (pkg/equality/elbv2) treats those as equal too.
    """
    typ = a.get("Type")
    if typ == m.ACTION_FORWARD:
        fc = a.get("ForwardConfig") or {}
        tgs = fc.get("TargetGroups") or (
            [{"TargetGroupArn": a["TargetGroupArn"]}] if a.get("TargetGroupArn") else []
        )
        pairs = tuple(sorted((t["TargetGroupArn"], int(t.get("Weight", 1))) for t in tgs))
        st = fc.get("TargetGroupStickinessConfig") or {}
        enabled = bool(st.get("Enabled", False))
        sticky = (enabled, int(st.get("DurationSeconds") or 0) if enabled else 0)
        return (typ, pairs, sticky)
    if typ == m.ACTION_FIXED_RESPONSE:
        c = a.get("FixedResponseConfig") or {}
        return (typ, c.get("StatusCode"), c.get("ContentType"), c.get("MessageBody") or None)
    if typ == m.ACTION_REDIRECT:
        c = {**DEFAULT_REDIRECT, **(a.get("RedirectConfig") or {})}
        return (typ, c.get("StatusCode"), *(c[k] for k in sorted(DEFAULT_REDIRECT)))
    return (typ, repr(sorted(a.items())))


def norm_actions(actions: Iterable[dict[str, Any]]) -> list[tuple[Any, ...]]:
    ordered = sorted(actions, key=lambda a: int(a.get("Order") or 0))
    return [norm_action(a) for a in ordered]


def norm_condition(c: dict[str, Any]) -> tuple[Any, ...]:
    f = c.get("Field")
    if f == m.FIELD_HOST_HEADER or f == m.FIELD_PATH_PATTERN:
        cfg = c.get("HostHeaderConfig" if f == m.FIELD_HOST_HEADER else "PathPatternConfig")
        cfg = cfg or {"Values": c.get("Values") or []}
        return (f, tuple(cfg.get("Values") or ()), tuple(cfg.get("RegexValues") or ()))
    if f == m.FIELD_HTTP_HEADER:
        cfg = c.get("HttpHeaderConfig") or {}
        return (
            f,
            cfg.get("HttpHeaderName"),
            tuple(cfg.get("Values") or ()),
            tuple(cfg.get("RegexValues") or ()),
        )
    if f == m.FIELD_QUERY_STRING:
        vals = (c.get("QueryStringConfig") or {}).get("Values") or []
        return (f, tuple(sorted((v.get("Key") or "", v.get("Value")) for v in vals)))
    if f == m.FIELD_HTTP_REQUEST_METHOD:
        return (f, tuple((c.get("HttpRequestMethodConfig") or {}).get("Values") or ()))
    if f == m.FIELD_SOURCE_IP:
        return (f, tuple((c.get("SourceIpConfig") or {}).get("Values") or ()))
    return (f, repr(sorted(c.items())))


def norm_conditions(conds: Iterable[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((norm_condition(c) for c in conds), key=repr)


class Deployer:
    """Creates, modifies and deletes one stack's ELBv2 resources (see the module docstring)."""

    def __init__(
        self,
        elbv2_client: Any,
        cluster_name: str,
        *,
        ec2_client: Any = None,
        subnets: Sequence[str] = (),
        vpc_id: str | None = None,
    ) -> None:
        self.elbv2 = elbv2_client
        self.ec2 = ec2_client
        self.cluster_name = cluster_name
        self.subnets = list(subnets)
        self.vpc_id = vpc_id or None

    # ---- discovery ---------------------------------------------------------------------------

    def network(self) -> tuple[str, list[str]]:
        """(VPC id, subnet ids): as configured, else the default VPC and its default subnets.

        Asked for at each creation rather than cached: a reset fake AWS has new ids.
        """
        vpc, subnets = self.vpc_id, list(self.subnets)
        if vpc and subnets:
            return vpc, subnets
        if self.ec2 is None:
            raise AWSError("DescribeSubnets", "NoNetwork", "no subnets/VPC configured, no EC2")
        if subnets and not vpc:
            out = _call("DescribeSubnets", self.ec2.describe_subnets, SubnetIds=subnets)
            return str(out["Subnets"][0]["VpcId"]), subnets
        if not vpc:
            vpcs = _call(
                "DescribeVpcs",
                self.ec2.describe_vpcs,
                Filters=[{"Name": "is-default", "Values": ["true"]}],
            )["Vpcs"]
            if not vpcs:
                raise AWSError("DescribeVpcs", "NoDefaultVpc", "no default VPC; set --vpc-id")
            vpc = str(vpcs[0]["VpcId"])
        out = _call(
            "DescribeSubnets",
            self.ec2.describe_subnets,
            Filters=[{"Name": "vpc-id", "Values": [vpc]}],
        )
        found = out["Subnets"]
        default = [s for s in found if s.get("DefaultForAz")] or found
        return vpc, sorted(str(s["SubnetId"]) for s in default)

    def _tags_of(self, arns: Sequence[str]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for i in range(0, len(arns), TAGS_PER_DESCRIBE):
            descs = _call(
                "DescribeTags",
                self.elbv2.describe_tags,
                ResourceArns=list(arns[i : i + TAGS_PER_DESCRIBE]),
            )["TagDescriptions"]
            for d in descs:
                out[d["ResourceArn"]] = {t["Key"]: t.get("Value", "") for t in d.get("Tags", [])}
        return out

    def _paged(self, op: str, fn: Callable[..., Any], key: str, **kw: Any) -> list[Any]:
        items: list[Any] = []
        marker: str | None = None
        while True:
            out = _call(op, fn, **kw, **({"Marker": marker} if marker else {}))
            items.extend(out.get(key, []))
            marker = out.get("NextMarker")
            if not marker:
                return items

    def _of_stack(self, tags: dict[str, str], stack_id: str) -> bool:
        return tags.get(m.TAG_CLUSTER) == self.cluster_name and tags.get(m.TAG_STACK) == stack_id

    def find_load_balancers(self, stack_id: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
        lbs = self._paged(
            "DescribeLoadBalancers", self.elbv2.describe_load_balancers, "LoadBalancers"
        )
        tags = self._tags_of([lb["LoadBalancerArn"] for lb in lbs])
        return [
            (lb, tags.get(lb["LoadBalancerArn"], {}))
            for lb in lbs
            if self._of_stack(tags.get(lb["LoadBalancerArn"], {}), stack_id)
        ]

    def find_target_groups(self, stack_id: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
        tgs = self._paged("DescribeTargetGroups", self.elbv2.describe_target_groups, "TargetGroups")
        tags = self._tags_of([tg["TargetGroupArn"] for tg in tgs])
        return [
            (tg, tags.get(tg["TargetGroupArn"], {}))
            for tg in tgs
            if self._of_stack(tags.get(tg["TargetGroupArn"], {}), stack_id)
        ]

    def _reconcile_tags(self, arn: str, have: dict[str, str], want: dict[str, str]) -> None:
        add = {k: v for k, v in want.items() if have.get(k) != v}
        remove = sorted(k for k in have if k not in want)
        if add:
            _call("AddTags", self.elbv2.add_tags, ResourceArns=[arn], Tags=_tag_list(add))
        if remove:
            _call("RemoveTags", self.elbv2.remove_tags, ResourceArns=[arn], TagKeys=remove)

    # ---- deploy ------------------------------------------------------------------------------

    def deploy(self, model: m.Model, *, delete_stale: bool = True) -> DeployResult:
        """Make the stack's AWS resources match ``model``; ``delete_stale=False`` leaves the
        target groups the model dropped in place and lists them in the result instead."""
        tg_arns, stale = self._sync_target_groups(model)
        lb = self._sync_load_balancer(model)
        lb_arn = str(lb["LoadBalancerArn"])

        def resolve(ref: m.TargetGroupRef) -> str:
            if ref.target_group_id is not None:
                return tg_arns[ref.target_group_id]
            if ref.target_group_arn is not None:
                return ref.target_group_arn
            # upstream resolves targetGroupName during model build; the pure builder cannot
            out = _call(
                "DescribeTargetGroups",
                self.elbv2.describe_target_groups,
                Names=[ref.target_group_name],
            )
            return str(out["TargetGroups"][0]["TargetGroupArn"])

        listener_arns = self._sync_listeners(model, lb_arn, resolve)
        for ls in model.listeners:
            self._sync_rules(model.rules_for(ls.port), listener_arns[ls.port], resolve)
        if delete_stale:
            self.delete_target_groups(stale)
            stale = []
        log.info(
            "stack deployed",
            stack=model.stack_id,
            load_balancer=lb_arn,
            target_groups=len(tg_arns),
            stale_target_groups=len(stale),
        )
        return DeployResult(lb_arn, str(lb.get("DNSName", "")), tg_arns, stale)

    # target groups ------------------------------------------------------------------------------

    @staticmethod
    def _needs_replacement(tg: m.TargetGroup, sdk: dict[str, Any]) -> bool:
        return (
            tg.target_type != sdk.get("TargetType")
            or tg.protocol != sdk.get("Protocol")
            or (tg.protocol_version or None) not in (None, sdk.get("ProtocolVersion"))
        )

    def _sync_target_groups(self, model: m.Model) -> tuple[dict[str, str], list[str]]:
        existing = self.find_target_groups(model.stack_id)
        by_id: dict[str, list[tuple[dict[str, Any], dict[str, str]]]] = {}
        stale: list[str] = []
        for sdk, tags in existing:
            rid = tags.get(m.TAG_RESOURCE)
            if rid is None:  # as upstream: a stack target group must carry its resource id
                raise AWSError(
                    "DescribeTags",
                    "MissingResourceTag",
                    f"unexpected targetGroup with no resourceID: {sdk['TargetGroupArn']}",
                )
            by_id.setdefault(rid, []).append((sdk, tags))
        arns: dict[str, str] = {}
        for tg_id, tg in model.target_groups.items():
            matched = None
            for sdk, tags in by_id.pop(tg_id, []):
                if matched is None and not self._needs_replacement(tg, sdk):
                    matched = (sdk, tags)
                else:
                    stale.append(sdk["TargetGroupArn"])
            if matched is None:
                arns[tg_id] = self._create_target_group(tg)
            else:
                arns[tg_id] = self._update_target_group(tg, *matched)
        for leftovers in by_id.values():
            stale.extend(sdk["TargetGroupArn"] for sdk, _ in leftovers)
        return arns, stale

    @staticmethod
    def _health_check_args(hc: m.HealthCheck) -> dict[str, Any]:
        matcher = (
            {"GrpcCode": hc.matcher_grpc_code}
            if hc.matcher_grpc_code is not None
            else {"HttpCode": hc.matcher_http_code or "200"}
        )
        return {
            "HealthCheckPort": hc.port,
            "HealthCheckProtocol": hc.protocol,
            "HealthCheckPath": hc.path,
            "HealthCheckIntervalSeconds": hc.interval_seconds,
            "HealthCheckTimeoutSeconds": hc.timeout_seconds,
            "HealthyThresholdCount": hc.healthy_threshold_count,
            "UnhealthyThresholdCount": hc.unhealthy_threshold_count,
            "Matcher": matcher,
        }

    def _create_target_group(self, tg: m.TargetGroup) -> str:
        vpc, _ = self.network()
        kw: dict[str, Any] = {
            "Name": tg.name,
            "Protocol": tg.protocol,
            "Port": tg.port,
            "TargetType": tg.target_type,
            "VpcId": vpc,
            "IpAddressType": tg.ip_address_type,
            "Tags": _tag_list(tg.tags),
            **self._health_check_args(tg.health_check),
        }
        if tg.protocol_version:
            kw["ProtocolVersion"] = tg.protocol_version
        out = _call("CreateTargetGroup", self.elbv2.create_target_group, **kw)
        arn = str(out["TargetGroups"][0]["TargetGroupArn"])
        log.info("target group created", target_group=tg.id, arn=arn, name=tg.name)
        if tg.attributes:
            self._sync_attributes("target-group", arn, tg.attributes, {})
        return arn

    def _sync_attributes(self, kind: str, arn: str, want: dict[str, str],
                         have: dict[str, str] | None = None) -> None:
        """Only the attributes whose value differs (upstream's attribute diffing); `have`
        None: read the current ones first (a new resource has none set)."""
        describe, modify, key = _ATTRIBUTE_CALLS[kind]
        if have is None:
            out = _call(describe, _method(self.elbv2, describe), **{key: arn})
            have = {a["Key"]: a.get("Value", "") for a in out.get("Attributes", [])}
        diff = {k: v for k, v in want.items() if have.get(k) != v}
        if diff:
            _call(modify, _method(self.elbv2, modify), **{key: arn},
                  Attributes=_tag_list(diff))

    def _update_target_group(
        self, tg: m.TargetGroup, sdk: dict[str, Any], tags: dict[str, str]
    ) -> str:
        arn = str(sdk["TargetGroupArn"])
        want = self._health_check_args(tg.health_check)
        have = {k: sdk.get(k) for k in want}
        have["HealthCheckPort"] = str(have["HealthCheckPort"])
        have["Matcher"] = {k: v for k, v in (sdk.get("Matcher") or {}).items() if v}
        if have != want:
            _call("ModifyTargetGroup", self.elbv2.modify_target_group, TargetGroupArn=arn, **want)
            log.info("target group modified", target_group=tg.id, arn=arn)
        if tg.attributes:
            self._sync_attributes("target-group", arn, tg.attributes)
        self._reconcile_tags(arn, tags, tg.tags)
        return arn

    def delete_target_groups(self, arns: Iterable[str]) -> None:
        for arn in arns:
            _delete("DeleteTargetGroup", self.elbv2.delete_target_group, "TargetGroupNotFound",
                    TargetGroupArn=arn)
            log.info("target group deleted", arn=arn)

    # load balancer ----------------------------------------------------------------------------

    def _sync_load_balancer(self, model: m.Model) -> dict[str, Any]:
        want = model.load_balancer
        matched: tuple[dict[str, Any], dict[str, str]] | None = None
        for sdk, tags in self.find_load_balancers(model.stack_id):
            same = (
                tags.get(m.TAG_RESOURCE) == want.id
                and sdk.get("LoadBalancerName") == want.name
                and sdk.get("Scheme") == want.scheme
                and sdk.get("Type") == want.type
            )
            if same and matched is None:
                matched = (sdk, tags)
            else:  # unmatched (or to be replaced): deleted before anything is created
                self._delete_load_balancer(str(sdk["LoadBalancerArn"]))
        if matched is None:
            return self._create_load_balancer(want)
        sdk, tags = matched
        arn = str(sdk["LoadBalancerArn"])
        if sdk.get("IpAddressType") != want.ip_address_type:
            _call(
                "SetIpAddressType",
                self.elbv2.set_ip_address_type,
                LoadBalancerArn=arn,
                IpAddressType=want.ip_address_type,
            )
        if want.attributes:
            self._sync_attributes("load-balancer", arn, want.attributes)
        self._reconcile_tags(arn, tags, want.tags)
        return sdk

    def _create_load_balancer(self, lb: m.LoadBalancer) -> dict[str, Any]:
        _, subnets = self.network()
        out = _call(
            "CreateLoadBalancer",
            self.elbv2.create_load_balancer,
            Name=lb.name,
            Subnets=subnets,
            Scheme=lb.scheme,
            Type=lb.type,
            IpAddressType=lb.ip_address_type,
            Tags=_tag_list(lb.tags),
        )
        sdk: dict[str, Any] = out["LoadBalancers"][0]
        log.info("load balancer created", arn=sdk["LoadBalancerArn"], name=lb.name)
        if lb.attributes:
            self._sync_attributes("load-balancer", str(sdk["LoadBalancerArn"]),
                                  lb.attributes, {})
        return sdk

    def _delete_load_balancer(self, arn: str) -> None:
        # ELBv2 deletes the listeners and their rules with the load balancer
        _delete("DeleteLoadBalancer", self.elbv2.delete_load_balancer, "LoadBalancerNotFound",
                LoadBalancerArn=arn)
        log.info("load balancer deleted", arn=arn)

    # listeners --------------------------------------------------------------------------------

    @staticmethod
    def _actions(
        actions: Sequence[m.Action], resolve: Callable[[m.TargetGroupRef], str]
    ) -> list[dict[str, Any]]:
        return [{**a.to_elbv2(resolve), "Order": i + 1} for i, a in enumerate(actions)]

    def _sync_listeners(
        self, model: m.Model, lb_arn: str, resolve: Callable[[m.TargetGroupRef], str]
    ) -> dict[int, str]:
        sdk_ls = self._paged(
            "DescribeListeners", self.elbv2.describe_listeners, "Listeners", LoadBalancerArn=lb_arn
        )
        want_by_port = {ls.port: ls for ls in model.listeners}
        have_by_port: dict[int, dict[str, Any]] = {}
        for sdk in sdk_ls:
            port = int(sdk["Port"])
            if port in want_by_port and port not in have_by_port:
                have_by_port[port] = sdk
            else:
                _call("DeleteListener", self.elbv2.delete_listener, ListenerArn=sdk["ListenerArn"])
                log.info("listener deleted", arn=sdk["ListenerArn"], port=port)
        tags = self._tags_of([s["ListenerArn"] for s in have_by_port.values()])
        arns: dict[int, str] = {}
        for ls in model.listeners:
            if ls.port in have_by_port:
                continue
            out = _call(
                "CreateListener",
                self.elbv2.create_listener,
                LoadBalancerArn=lb_arn,
                Port=ls.port,
                Protocol=ls.protocol,
                DefaultActions=self._actions(ls.default_actions, resolve),
                Tags=_tag_list(ls.tags),
            )
            arns[ls.port] = str(out["Listeners"][0]["ListenerArn"])
            log.info("listener created", arn=arns[ls.port], port=ls.port)
        for port, sdk in have_by_port.items():
            ls = want_by_port[port]
            arn = str(sdk["ListenerArn"])
            actions = self._actions(ls.default_actions, resolve)
            if sdk.get("Protocol") != ls.protocol or norm_actions(actions) != norm_actions(
                sdk.get("DefaultActions", [])
            ):
                _call(
                    "ModifyListener",
                    self.elbv2.modify_listener,
                    ListenerArn=arn,
                    Protocol=ls.protocol,
                    DefaultActions=actions,
                )
                log.info("listener modified", arn=arn, port=port)
            self._reconcile_tags(arn, tags.get(arn, {}), ls.tags)
            arns[port] = arn
        return arns

    # rules ------------------------------------------------------------------------------------

    def _sync_rules(
        self,
        rules: Sequence[m.Rule],
        listener_arn: str,
        resolve: Callable[[m.TargetGroupRef], str],
    ) -> None:
        sdk_rules = [
            r
            for r in self._paged(
                "DescribeRules", self.elbv2.describe_rules, "Rules", ListenerArn=listener_arn
            )
            if not r.get("IsDefault")
        ]
        desired = {
            r.id: (self._actions(r.actions, resolve), [c.to_elbv2() for c in r.conditions])
            for r in rules
        }
        # 1. same actions and conditions: at most a new priority
        unmatched_sdk = list(sdk_rules)
        by_settings: list[tuple[m.Rule, dict[str, Any]]] = []
        fully: list[tuple[m.Rule, dict[str, Any]]] = []
        unmatched_res: list[m.Rule] = []
        for r in rules:
            acts, conds = desired[r.id]
            key = (norm_actions(acts), norm_conditions(conds))
            for i, sdk in enumerate(unmatched_sdk):
                have = (norm_actions(sdk.get("Actions", [])), norm_conditions(sdk["Conditions"]))
                if have == key:
                    pair = (r, sdk)
                    (fully if int(sdk["Priority"]) == r.priority else by_settings).append(pair)
                    del unmatched_sdk[i]
                    break
            else:
                unmatched_res.append(r)
        # 2. the rest pair up by priority (modified in place), or are created / deleted
        sdk_by_prio = {int(s["Priority"]): s for s in unmatched_sdk}
        res_by_prio = {r.priority: r for r in unmatched_res}
        by_priority = [
            (res_by_prio[p], sdk_by_prio[p]) for p in sorted(res_by_prio) if p in sdk_by_prio
        ]
        to_create = [res_by_prio[p] for p in sorted(res_by_prio) if p not in sdk_by_prio]
        to_delete = [sdk_by_prio[p] for p in sorted(sdk_by_prio) if p not in res_by_prio]
        if by_settings:
            pairs = [
                {"RuleArn": s["RuleArn"], "Priority": PUSH_DOWN_FROM - i}
                for i, s in enumerate(reversed(to_delete))
            ] + [{"RuleArn": s["RuleArn"], "Priority": r.priority} for r, s in by_settings]
            in_use = {int(s["Priority"]) for s in sdk_rules}
            self._set_rule_priorities(pairs, in_use)
            log.info("rule priorities set", listener=listener_arn, rules=len(pairs))
        for r, sdk in by_priority:
            acts, conds = desired[r.id]
            _call(
                "ModifyRule",
                self.elbv2.modify_rule,
                RuleArn=sdk["RuleArn"],
                Actions=acts,
                Conditions=conds,
            )
            log.info("rule modified", rule=r.id, arn=sdk["RuleArn"])
        for r in to_create:  # create before delete: no moment without a route
            acts, conds = desired[r.id]
            out = _call(
                "CreateRule",
                self.elbv2.create_rule,
                ListenerArn=listener_arn,
                Priority=r.priority,
                Actions=acts,
                Conditions=conds,
                Tags=_tag_list(r.tags),
            )
            log.info("rule created", rule=r.id, arn=out["Rules"][0]["RuleArn"])
        for sdk in to_delete:
            _call("DeleteRule", self.elbv2.delete_rule, RuleArn=sdk["RuleArn"])
            log.info("rule deleted", arn=sdk["RuleArn"], priority=sdk["Priority"])
        kept = [*by_settings, *fully, *by_priority]
        if kept:
            tags = self._tags_of([s["RuleArn"] for _, s in kept])
            for r, s in kept:
                self._reconcile_tags(s["RuleArn"], tags.get(s["RuleArn"], {}), r.tags)

    def _set_rule_priorities(self, pairs: list[dict[str, Any]], in_use: set[int]) -> None:
        """One SetRulePriorities call, as upstream sends it (AWS applies the batch at once).

        moto (the fake AWS) checks every new priority against the priorities in use *before*
        the batch, so moving a rule into a priority another pair of the same batch vacates
        fails with PriorityInUse. Then: two calls AWS accepts as well -- first every moving rule
        to an unused temporary priority counted down from 50000, then to its final priority.
        """
        try:
            _call("SetRulePriorities", self.elbv2.set_rule_priorities, RulePriorities=pairs)
            return
        except AWSError as e:
            if e.code != "PriorityInUse":
                raise
        final = {p["Priority"] for p in pairs}
        free = (p for p in range(PUSH_DOWN_FROM, 0, -1) if p not in in_use and p not in final)
        parked = [{"RuleArn": p["RuleArn"], "Priority": next(free)} for p in pairs]
        _call("SetRulePriorities", self.elbv2.set_rule_priorities, RulePriorities=parked)
        _call("SetRulePriorities", self.elbv2.set_rule_priorities, RulePriorities=pairs)

    # ---- delete ------------------------------------------------------------------------------

    def delete_stack(self, stack_id: str, *, target_groups: bool = True) -> list[str]:
        """Delete the stack's load balancers (their listeners and rules go with them), then its
        target groups; with ``target_groups=False`` return their ARNs instead, for the caller to
        delete once the TargetGroupBindings are gone."""
        for sdk, _ in self.find_load_balancers(stack_id):
            self._delete_load_balancer(str(sdk["LoadBalancerArn"]))
        arns = [str(sdk["TargetGroupArn"]) for sdk, _ in self.find_target_groups(stack_id)]
        if not target_groups:
            return arns
        self.delete_target_groups(arns)
        return []
