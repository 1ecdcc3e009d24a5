"""Build the desired ALB model of one IngressGroup -- pure: no Kubernetes or AWS calls.

A walk through upstream's model builder (aws-load-balancer-controller v3.5.0, pkg/ingress/):

- model_builder.go ``defaultModelBuildTask.run``: listen ports per member, merged per port
  (conflicting protocols are an error), then the load balancer, then per port a listener and its
  rules. Listeners come out in ascending port order here (upstream iterates a Go map).
- model_build_load_balancer.go: scheme / ip-address-type / load-balancer-name must agree across
  the group ("Exclusive"); model_build_load_balancer_attributes.go and model_build_tags.go
  merge attributes and tags across members, a differing value for one key is an error.
- model_build_listener.go: the default action is a fixed 404 unless exactly one member on that
  port has ``spec.defaultBackend``.
- model_build_listener_rules.go: members in group order, their rules in order, each rule's paths
  sorted Exact, then Prefix (longest first), then ImplementationSpecific; conditions from host,
  path and ``conditions.<service>``; rule_optimizer.go drops redirect loops and rules shadowed by
  a redirect; priorities are then 1..N per listener.
- enhanced_backend_builder.go: ``port.name: use-annotation`` takes ``actions.<service>``; a
  missing Service (single forward) or a missing action becomes a fixed 503 when tolerated
  (upstream's ``--tolerate-non-existent-backend-*`` flags, both default true).
- model_build_actions.go / model_build_target_group.go: one target group per
  (Ingress, Service, port), built the first time an action forwards to it, with its binding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.ingress import actions as act
from controller.ingress import annotations as ann
from controller.ingress import model as m
from controller.ingress import naming
from controller.ingress.classes import IngressGroup, annotations_of, ingress_key
from controller.ingress.errors import IngressModelError, UnsupportedError

Ingress = Any  # kubernetes.client.V1Ingress
Service = Any  # kubernetes.client.V1Service

NON_EXISTENT_SERVICE_BODY = "Backend service does not exist"
NON_EXISTENT_ACTION_BODY = "Backend action does not exist"


@dataclass(frozen=True)
class BuildOptions:
    """The controller flags upstream's builder reads (pkg/config/*.go), with its defaults."""

    cluster_name: str
    default_tags: Mapping[str, str] = field(default_factory=dict)
    default_scheme: str = ann.DEFAULT_SCHEME
    default_target_type: str = ann.DEFAULT_TARGET_TYPE
    tolerate_non_existent_backend_service: bool = True
    tolerate_non_existent_backend_action: bool = True


def build(group: IngressGroup, services: Iterable[Service], options: BuildOptions) -> m.Model:
    """The desired model of ``group``; ``services`` are the Services its backends may name.

    Raises IngressModelError (or its UnsupportedError subclass) with upstream's error text; the
    caller reports ``err.event_message`` with reason ``err.reason`` on every member Ingress.
    """
    if not group.members:
        raise ValueError(f"IngressGroup {group.id} has no members; nothing to build")
    return _Task(group, services, options).run()


def _go_set(values: Iterable[str]) -> str:
    """How Go prints a sets.String with %v (a map, keys sorted)."""
    return "map[" + " ".join(f"{v}:{{}}" for v in sorted(set(values))) + "]"


def _go_list(values: Iterable[str]) -> str:
    return "[" + " ".join(values) + "]"


def _wrap(ing: Ingress, e: IngressModelError) -> IngressModelError:
    return e.wrap(f"ingress: {ingress_key(ing)}")


class _Task:
    def __init__(self, group: IngressGroup, services: Iterable[Service], opts: BuildOptions):
        self.group = group
        self.opts = opts
        self.stack_id = str(group.id)
        self.services: dict[tuple[str, str], Service] = {
            (s.metadata.namespace or "", s.metadata.name): s for s in services
        }
        self.target_groups: dict[str, m.TargetGroup] = {}
        self.bindings: dict[str, m.TargetGroupBinding] = {}
        self.lb_ip_address_type = ann.DEFAULT_IP_ADDRESS_TYPE

    # ---- tags --------------------------------------------------------------------------------

    def tracking_tags(self, resource_id: str, extra: Mapping[str, str]) -> dict[str, str]:
        """tracking.defaultProvider.ResourceTags: stack and resource-id tags win over the rest."""
        stack = {m.TAG_CLUSTER: self.opts.cluster_name, m.TAG_STACK: self.stack_id}
        return ann.merge_string_maps(stack, {m.TAG_RESOURCE: resource_id}, extra)

    def stack_labels(self) -> dict[str, str]:
        """tracking.defaultProvider.StackLabels, put on the TargetGroupBindings."""
        gid = self.group.id
        if gid.is_explicit:
            return {m.LABEL_STACK: gid.name}
        return {m.LABEL_STACK_NAMESPACE: gid.namespace, m.LABEL_STACK_NAME: gid.name}

    def ingress_tags(self, ing: Ingress) -> dict[str, str]:
        try:
            return ann.parse_string_map(annotations_of(ing), ann.TAGS) or {}
        except IngressModelError as e:
            raise _wrap(ing, e) from None

    def group_tags(self, members: Iterable[Ingress]) -> dict[str, str]:
        """model_build_tags.go buildIngressGroupResourceTags, then MergeStringMap(defaultTags,
        annotation tags): --default-tags win unless the EnableDefaultTagsLowPriority feature
        gate (default off, pkg/config/feature_gates.go) is on."""
        tags: dict[str, str] = {}
        for ing in members:
            for k, v in self.ingress_tags(ing).items():
                if k in tags and tags[k] != v:
                    raise IngressModelError(f"conflicting tag {k}: {tags[k]} | {v}")
                tags[k] = v
        return ann.merge_string_maps(self.opts.default_tags, tags)

    # ---- run ---------------------------------------------------------------------------------

    def run(self) -> m.Model:
        members = self.group.members
        protocols_by_port: dict[int, list[tuple[str, str]]] = {}
        ings_by_port: dict[int, list[Ingress]] = {}
        for ing in members:
            a = annotations_of(ing)
            try:
                ann.check_ssl_redirect(a)
                ports = ann.listen_ports(a)
            except IngressModelError as e:
                raise _wrap(ing, e) from None
            for port, protocol in ports.items():
                protocols_by_port.setdefault(port, []).append((ingress_key(ing), protocol))
                ings_by_port.setdefault(port, []).append(ing)
        listen_protocols: dict[int, str] = {}
        for port, cfgs in protocols_by_port.items():
            first_key, first_protocol = cfgs[0]
            for k, p in cfgs[1:]:
                if p != first_protocol:
                    raise IngressModelError(
                        f"failed to merge listenPort config for port: {port}: conflicting "
                        f"protocol, {first_key}: {first_protocol} | {k}: {p}"
                    )
            listen_protocols[port] = first_protocol

        lb = self.build_load_balancer()
        listeners: list[m.Listener] = []
        rules: list[m.Rule] = []
        for port in sorted(listen_protocols):
            protocol = listen_protocols[port]
            ings = ings_by_port[port]
            listeners.append(
                m.Listener(
                    id=str(port),
                    port=port,
                    protocol=protocol,
                    default_actions=self.build_default_actions(ings),
                    tags=self.tracking_tags(str(port), self.group_tags(ings)),
                )
            )
            rules.extend(self.build_rules(port, protocol, ings))
        return m.Model(
            stack_id=self.stack_id,
            members=tuple(ingress_key(i) for i in members),
            load_balancer=lb,
            listeners=tuple(listeners),
            rules=tuple(rules),
            target_groups=dict(self.target_groups),
            bindings=dict(self.bindings),
        )

    # ---- load balancer -------------------------------------------------------------------------

    def _explicit_values(self, suffix: str) -> list[str]:
        out = []
        for ing in self.group.members:
            v = ann.get_string(annotations_of(ing), suffix)
            if v is not None:
                out.append(v)
        return out

    def build_load_balancer(self) -> m.LoadBalancer:
        schemes = set(self._explicit_values(ann.SCHEME))
        if len(schemes) > 1:
            raise IngressModelError(f"conflicting scheme: {_go_set(schemes)}")
        scheme = ann.validate_scheme(schemes.pop()) if schemes else self.opts.default_scheme

        ip_types = set(self._explicit_values(ann.IP_ADDRESS_TYPE))
        if len(ip_types) > 1:
            raise IngressModelError(f"conflicting IPAddressType: {_go_list(sorted(ip_types))}")
        ip_type = (
            ann.validate_ip_address_type(ip_types.pop())
            if ip_types
            else ann.DEFAULT_IP_ADDRESS_TYPE
        )
        self.lb_ip_address_type = ip_type

        names = set(self._explicit_values(ann.LOAD_BALANCER_NAME))
        if len(names) > 1:
            raise IngressModelError(f"conflicting load balancer name: {_go_set(names)}")
        if names:
            name = names.pop()
            if len(name) > naming.MAX_LOAD_BALANCER_NAME_LENGTH:
                raise IngressModelError("load balancer name cannot be longer than 32 characters")
        else:
            gid = self.group.id
            name = naming.load_balancer_name(
                self.opts.cluster_name, gid.namespace, gid.name, scheme
            )

        attributes: dict[str, str] = {}
        for ing in self.group.members:
            try:
                ing_attrs = ann.parse_string_map(
                    annotations_of(ing), ann.LOAD_BALANCER_ATTRIBUTES
                )
            except IngressModelError as e:
                raise _wrap(ing, e) from None
            for k, v in (ing_attrs or {}).items():
                if k in attributes and attributes[k] != v:
                    raise IngressModelError(
                        f"conflicting load balancer attributes {k}: {attributes[k]} | {v}"
                    )
                attributes[k] = v

        tags = self.tracking_tags(m.LOAD_BALANCER_ID, self.group_tags(self.group.members))
        return m.LoadBalancer(
            name=name,
            scheme=scheme,
            ip_address_type=ip_type,
            attributes=dict(sorted(attributes.items())),
            tags=tags,
        )

    # ---- backends ------------------------------------------------------------------------------

    def enhanced_backend(
        self, ing: Ingress, backend: Any
    ) -> tuple[tuple[m.Condition, ...], act.ActionConfig]:
        """enhanced_backend_builder.go Build: (conditions, action) of one Ingress backend."""
        svc_ref = backend.service if backend is not None else None
        if svc_ref is None:
            raise IngressModelError('missing required "service" field')
        a = annotations_of(ing)
        svc_name = svc_ref.name
        conditions = act.conditions_from_annotation(a, svc_name)
        if ann.key(f"transforms.{svc_name}") in a:
            raise UnsupportedError(
                f"{ann.key(f'transforms.{svc_name}')} is not supported by this controller"
            )
        port = svc_ref.port
        port_name = port.name if port is not None else None
        action: act.ActionConfig
        if port_name == act.USE_ANNOTATION:
            found = act.action_from_annotation(a, svc_name)
            if found is None:
                if not self.opts.tolerate_non_existent_backend_action:
                    raise IngressModelError(f"missing actions.{svc_name} configuration")
                found = act.fixed_503(NON_EXISTENT_ACTION_BODY)
            action = found
        elif port_name:
            action = act.forward_to_service(svc_name, port_name)
        else:
            action = act.forward_to_service(svc_name, int(port.number or 0) if port else 0)
        return conditions, self.check_backend_services(ing, action)

    def check_backend_services(self, ing: Ingress, action: act.ActionConfig) -> act.ActionConfig:
        """loadBackendServices: a single missing Service turns into a fixed 503 when tolerated."""
        if action.type != m.ACTION_FORWARD or action.forward is None:
            return action
        tgs = action.forward.target_groups
        names = {t.service_name for t in tgs if t.service_name is not None}
        single = len(tgs) == 1 and len(names) == 1
        ns = ing.metadata.namespace or ""
        for name in sorted(names):
            if (ns, name) in self.services:
                continue
            if single and self.opts.tolerate_non_existent_backend_service:
                return act.fixed_503(NON_EXISTENT_SERVICE_BODY)
            raise IngressModelError(f'services "{name}" not found')
        return action

    def build_action(self, ing: Ingress, cfg: act.ActionConfig) -> m.Action:
        """model_build_actions.go buildBackendAction (HTTP listeners: no auth actions)."""
        if cfg.type == m.ACTION_FIXED_RESPONSE:
            return m.Action(cfg.type, fixed_response=cfg.fixed_response)
        if cfg.type == m.ACTION_REDIRECT:
            return m.Action(cfg.type, redirect=cfg.redirect)
        assert cfg.forward is not None  # ActionConfig is normalised by actions.py
        refs: list[m.TargetGroupRef] = []
        for t in cfg.forward.target_groups:
            if t.target_group_arn is not None:
                refs.append(m.TargetGroupRef(target_group_arn=t.target_group_arn, weight=t.weight))
            elif t.target_group_name is not None:
                refs.append(
                    m.TargetGroupRef(target_group_name=t.target_group_name, weight=t.weight)
                )
            else:
                assert t.service_name is not None and t.service_port is not None
                svc = self.services[(ing.metadata.namespace or "", t.service_name)]
                tg_id = self.build_target_group(ing, svc, t.service_port)
                refs.append(m.TargetGroupRef(target_group_id=tg_id, weight=t.weight))
        return m.Action(
            m.ACTION_FORWARD,
            forward=m.ForwardConfig(tuple(refs), stickiness=cfg.forward.stickiness),
        )

    # ---- target groups -------------------------------------------------------------------------

    @staticmethod
    def lookup_service_port(svc: Service, port: int | str) -> Any:
        """k8s.LookupServicePort: a name matches ports[].name, a number ports[].port."""
        for p in (svc.spec.ports if svc.spec else None) or []:
            if (isinstance(port, str) and p.name == port) or (
                isinstance(port, int) and p.port == port
            ):
                return p
        raise IngressModelError(
            f"unable to find port {port} on service {svc.metadata.namespace}/{svc.metadata.name}"
        )

    def health_check_port(self, svc: Service, raw: str) -> str:
        """buildTargetGroupHealthCheckPort for ip targets."""
        if raw == ann.TRAFFIC_PORT:
            return raw
        if raw.lstrip("-").isdigit():  # intstr.Parse yields an int
            return str(int(raw))
        try:
            sp = self.lookup_service_port(svc, raw)
        except IngressModelError as e:
            raise e.wrap("failed to resolve healthCheckPort") from None
        if isinstance(sp.target_port, int):
            return str(sp.target_port)
        raise IngressModelError(
            "cannot use named healthCheckPort for IP TargetType when service's targetPort is a "
            "named port"
        )

    def build_target_group(self, ing: Ingress, svc: Service, port: int | str) -> str:
        ing_ns, ing_name = ing.metadata.namespace or "", ing.metadata.name
        svc_ns, svc_name = svc.metadata.namespace or "", svc.metadata.name
        tg_id = naming.target_group_resource_id(ing_ns, ing_name, svc_name, port)
        if tg_id in self.target_groups:
            return tg_id
        sp = self.lookup_service_port(svc, port)
        s = ann.target_group_settings(
            annotations_of(svc),
            annotations_of(ing),
            default_target_type=self.opts.default_target_type,
            svc_name=svc_name,
            svc_port=str(port),
        )
        hc_port = self.health_check_port(svc, s.healthcheck_port)

        ip_type = "ipv4"
        if "IPv6" in ((svc.spec.ip_families if svc.spec else None) or []):
            if self.lb_ip_address_type not in ("dualstack", "dualstack-without-public-ipv4"):
                raise IngressModelError("unsupported IPv6 configuration, lb not dual-stack")
            ip_type = "ipv6"

        # buildTargetGroupPort: not in the data path (targets carry their port); a named
        # targetPort can differ per pod, so upstream writes 1.
        target_port = sp.target_port if sp.target_port is not None else sp.port
        tg_port = target_port if isinstance(target_port, int) else 1
        if tg_port == 0:
            raise IngressModelError(
                "TargetGroup port is empty. Are you using the correct service type?"
            )
        name = naming.target_group_name(
            cluster_name=self.opts.cluster_name,
            group_id=self.stack_id,
            ingress_namespace=ing_ns,
            ingress_name=ing_name,
            service_namespace=svc_ns,
            service_name=svc_name,
            service_uid=svc.metadata.uid or "",
            service_port=port,
            target_group_port=tg_port,
            target_type=s.target_type,
            protocol=s.protocol,
            protocol_version=s.protocol_version,
        )
        grpc = s.protocol_version == "GRPC"
        hc = m.HealthCheck(
            port=hc_port,
            protocol=s.healthcheck_protocol,
            path=s.healthcheck_path,
            interval_seconds=s.healthcheck_interval_seconds,
            timeout_seconds=s.healthcheck_timeout_seconds,
            healthy_threshold_count=s.healthy_threshold_count,
            unhealthy_threshold_count=s.unhealthy_threshold_count,
            matcher_http_code=None if grpc else s.success_codes,
            matcher_grpc_code=s.success_codes if grpc else None,
        )
        user_tags = ann.merge_string_maps(self.opts.default_tags, s.tags)
        self.target_groups[tg_id] = m.TargetGroup(
            id=tg_id,
            name=name,
            target_type=s.target_type,
            port=tg_port,
            protocol=s.protocol,
            protocol_version=s.protocol_version,
            ip_address_type=ip_type,
            health_check=hc,
            attributes=dict(sorted(s.attributes.items())),
            tags=self.tracking_tags(tg_id, user_tags),
        )
        self.bindings[tg_id] = m.TargetGroupBinding(
            target_group_id=tg_id,
            name=name,
            namespace=svc_ns,
            service_name=svc_name,
            service_port=port,
            target_type=s.target_type,
            ip_address_type=ip_type,
            target_group_protocol=s.protocol,
            labels=self.stack_labels(),
        )
        return tg_id

    # ---- listeners and rules -------------------------------------------------------------------

    def build_default_actions(self, ings: list[Ingress]) -> tuple[m.Action, ...]:
        with_default = [i for i in ings if i.spec is not None and i.spec.default_backend]
        if not with_default:
            return (
                m.Action(
                    m.ACTION_FIXED_RESPONSE,
                    fixed_response=m.FixedResponseConfig("404", content_type="text/plain"),
                ),
            )
        if len(with_default) > 1:
            keys = _go_list(ingress_key(i) for i in with_default)
            raise IngressModelError(f"multiple ingress defined default backend: {keys}")
        ing = with_default[0]
        try:
            _, cfg = self.enhanced_backend(ing, ing.spec.default_backend)
            return (self.build_action(ing, cfg),)
        except IngressModelError as e:
            raise _wrap(ing, e) from None

    def build_rules(self, port: int, protocol: str, ings: list[Ingress]) -> list[m.Rule]:
        drafts: list[tuple[tuple[m.Condition, ...], tuple[m.Action, ...], dict[str, str]]] = []
        for ing in ings:
            tags = ann.merge_string_maps(self.opts.default_tags, self.ingress_tags(ing))
            for rule in (ing.spec.rules if ing.spec else None) or []:
                if rule.http is None:
                    continue
                try:
                    paths = sort_paths(rule.http.paths or [])
                    for path in paths:
                        extra, cfg = self.enhanced_backend(ing, path.backend)
                        conditions = self.rule_conditions(ing, rule.host, path, extra)
                        action = self.build_action(ing, cfg)
                        drafts.append((conditions, (action,), tags))
                except IngressModelError as e:
                    raise _wrap(ing, e) from None
        kept = optimize_rules(port, protocol, drafts)
        out = []
        for priority, (conditions, actions, tags) in enumerate(kept, start=1):
            rid = f"{port}:{priority}"
            out.append(
                m.Rule(
                    id=rid,
                    listener_port=port,
                    priority=priority,
                    conditions=conditions,
                    actions=actions,
                    tags=self.tracking_tags(rid, tags),
                )
            )
        return out

    def rule_conditions(
        self, ing: Ingress, host: str | None, path: Any, extra: tuple[m.Condition, ...]
    ) -> tuple[m.Condition, ...]:
        """model_build_listener_rules.go buildRuleConditions."""
        host_values: list[str] = [host] if host else []
        host_regex: list[str] = []
        path_values: list[str] = []
        path_regex: list[str] = []
        if path.path:
            use_regex = bool(ann.parse_bool(annotations_of(ing), ann.USE_REGEX_PATH_MATCH))
            values, regex = path_patterns(path.path, path.path_type, use_regex)
            path_values += values
            path_regex += regex
        conditions: list[m.Condition] = []
        for c in extra:
            if c.field == m.FIELD_HOST_HEADER:
                host_values += c.values
                host_regex += c.regex_values
            elif c.field == m.FIELD_PATH_PATTERN:
                path_values += c.values
                path_regex += c.regex_values
            else:
                conditions.append(c)
        if host_values and host_regex:
            raise IngressModelError(
                "host condition must specify exactly one of Values and RegexValues, got both "
                f"Values {_go_list(host_values)} and RegexValues {_go_list(host_regex)}"
            )
        if path_values and path_regex:
            raise IngressModelError(
                "path condition must specify exactly one of Values and RegexValues, got both "
                f"Values {_go_list(path_values)} and RegexValues {_go_list(path_regex)}"
            )
        if host_values:
            conditions.append(m.Condition(m.FIELD_HOST_HEADER, values=tuple(host_values)))
        if host_regex:
            conditions.append(m.Condition(m.FIELD_HOST_HEADER, regex_values=tuple(host_regex)))
        if path_values:
            conditions.append(m.Condition(m.FIELD_PATH_PATTERN, values=tuple(path_values)))
        if path_regex:
            conditions.append(m.Condition(m.FIELD_PATH_PATTERN, regex_values=tuple(path_regex)))
        if not conditions:
            conditions.append(m.Condition(m.FIELD_PATH_PATTERN, values=("/*",)))
        return tuple(conditions)


# ---- paths (module level: pure functions of the path alone) -----------------------------------


def sort_paths(paths: Iterable[Any]) -> list[Any]:
    """sortIngressPaths: Exact, then Prefix by length (longest first, stable), then the rest."""
    exact: list[Any] = []
    prefix: list[Any] = []
    other: list[Any] = []
    for p in paths:
        if p.path_type is None or p.path_type == "ImplementationSpecific":
            other.append(p)
        elif p.path_type == "Exact":
            exact.append(p)
        elif p.path_type == "Prefix":
            prefix.append(p)
        else:
            raise IngressModelError(f"unknown pathType for path {p.path}")
    prefix.sort(key=lambda p: -len(p.path or ""))
    return exact + prefix + other


def path_patterns(
    path: str, path_type: str | None, use_regex: bool = False
) -> tuple[list[str], list[str]]:
    """buildPathPatterns -> (values, regexValues) of the path-pattern condition."""
    if path_type is None or path_type == "ImplementationSpecific":
        # k8s requires a leading "/", ELBv2 regexes must not have it
        return ([], [path[1:]]) if use_regex else ([path], [])
    if path_type == "Exact":
        if "*" in path or "?" in path:
            raise IngressModelError(f"exact path shouldn't contain wildcards: {path}")
        return [path], []
    if path_type == "Prefix":
        if path == "/":
            return ["/*"], []
        if "*" in path or "?" in path:
            raise IngressModelError(f"prefix path shouldn't contain wildcards: {path}")
        normalized = path.removesuffix("/")
        return [normalized, normalized + "/*"], []
    raise IngressModelError(f"unsupported pathType: {path_type}")


# ---- rule optimizer (rule_optimizer.go) ------------------------------------------------------

_Draft = tuple[tuple[m.Condition, ...], tuple[m.Action, ...], dict[str, str]]


def _redirect_of(actions: tuple[m.Action, ...]) -> m.RedirectConfig | None:
    for a in actions:
        if a.type == m.ACTION_REDIRECT:
            return a.redirect
    return None


def _is_infinite_redirect(port: int, protocol: str, draft: _Draft) -> bool:
    conditions, actions, _ = draft
    r = _redirect_of(actions)
    if r is None:
        return False
    hosts: set[str] = set()
    paths: set[str] = set()
    for c in conditions:
        if c.field == m.FIELD_HOST_HEADER:
            hosts.update(c.values)
        elif c.field == m.FIELD_PATH_PATTERN:
            if c.regex_values:
                return False
            paths.update(c.values)
    if r.host is not None and r.host != "#{host}" and r.host not in hosts:
        return False
    if r.path is not None and r.path != "/#{path}" and r.path not in paths:
        return False
    if r.port is not None and r.port != "#{port}" and r.port != str(port):
        return False
    if r.protocol is not None and r.protocol != "#{protocol}" and r.protocol != protocol:
        return False
    return not (r.query is not None and r.query != "#{query}")


def _hosts_paths(conditions: tuple[m.Condition, ...]) -> tuple[set[str], set[str], bool]:
    hosts: set[str] = set()
    paths: set[str] = set()
    only_host_path = True
    for c in conditions:
        if c.field == m.FIELD_HOST_HEADER:
            hosts.update(c.values)
        elif c.field == m.FIELD_PATH_PATTERN:
            paths.update(c.regex_values or c.values)
        else:
            only_host_path = False
    return hosts, paths, only_host_path


def _is_superset(lhs: tuple[m.Condition, ...], rhs: tuple[m.Condition, ...]) -> bool:
    lhs_hosts, lhs_paths, only = _hosts_paths(lhs)
    if not only:
        return False
    rhs_hosts, rhs_paths, _ = _hosts_paths(rhs)
    host_ok = not lhs_hosts or (bool(rhs_hosts) and lhs_hosts >= rhs_hosts)
    path_ok = (
        not lhs_paths or "/*" in lhs_paths or (bool(rhs_paths) and lhs_paths >= rhs_paths)
    )
    return host_ok and path_ok


def optimize_rules(port: int, protocol: str, drafts: list[_Draft]) -> list[_Draft]:
    """Drop redirect rules that loop onto themselves, then rules a kept redirect shadows."""
    no_loops = [d for d in drafts if not _is_infinite_redirect(port, protocol, d)]
    kept: list[_Draft] = []
    for d in no_loops:
        shadowed = any(
            _redirect_of(k[1]) is not None and _is_superset(k[0], d[0]) for k in kept
        )
        if not shadowed:
            kept.append(d)
    return kept
