"""Scenario -> everything a run applies: Kubernetes manifests, ELBv2 calls, fake AWS engine
settings and controller flags (pure functions, no I/O).

The one place a scenario field is mapped. Fields marked in the model (ControllerFlag,
EngineSetting) and the demo app's knobs (DemoBehaviour) are mapped generically, so adding one
needs no change here; the runner, the demo and the e2e ordering all read this module.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from testbed.declare import marker
from testbed.demoapp.config import DemoBehaviour, env_for
from testbed.scenario.model import SHARED_FAULTS, ControllerFlag, EngineSetting, Scenario
from testbed.workload.manifests import in_namespace
from testbed.workload.select import Target

APP_PORT = 8080
SERVICE_PORT = 80
GATE_INJECT_LABEL = "elbv2.k8s.aws/pod-readiness-gate-inject"


def _marked(section: BaseModel, kind: type[Any]) -> list[tuple[Any, Any]]:
    """(marker, value) for every field of `section` that carries a marker of `kind`."""
    out = []
    for name, info in type(section).model_fields.items():
        mark = marker(info, kind)
        if mark is not None:
            out.append((mark, getattr(section, name)))
    return out


def runs_alone(sc: Scenario) -> bool:
    """No run beside it: one of its faults hits what runs side by side share (the fake AWS's
    engine, a node)."""
    return any(f.action in SHARED_FAULTS for f in sc.faults)


def runs_quiet(sc: Scenario) -> bool:
    """Apart from the side-by-side runs (a duration expectation), beside another such run at
    most (runner.QUIET_WIDTH)."""
    return sc.run_alone and not runs_alone(sc)


def controller_args(sc: Scenario) -> list[str]:
    """The controller's flags for this scenario (its only settings channel besides the AWS
    endpoint, which the stack adds)."""
    args = []
    for mark, value in _marked(sc.controller, ControllerFlag):
        if isinstance(value, bool):
            args.append(mark.flag if value else mark.off)
        elif value is not None:
            args.append(f"{mark.flag}={value:g}" if isinstance(value, float)
                        else f"{mark.flag}={value}")
    return args


def engine_settings(sc: Scenario) -> dict[str, float]:
    """Fake AWS engine settings (POST /_testbed/config keys) this scenario sets."""
    return {mark.key: value for mark, value in _marked(sc.alb, EngineSetting)}


def app_env(app: DemoBehaviour, version: str) -> list[dict[str, Any]]:
    """The demo app's DEMO_* env for one version, plus POD_NAME from the downward API."""
    values = {"DEMO_PORT": str(APP_PORT), **env_for(app), "APP_VERSION": version}
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in values.items()]
    env.append({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    return env


def namespace(sc: Scenario, name: str) -> dict[str, Any]:
    """The webhook injects gates only in labelled namespaces, so the label is the gate switch."""
    labels = {"testbed/scenario": sc.name}
    if sc.readiness_gate:
        labels[GATE_INJECT_LABEL] = "enabled"
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels}}


# The preStop hook's first step with `app.preStopUnready`: the demo app's /ready fails from now
# on (python, not curl: the image has no HTTP client binary).
UNREADY_COMMAND = (
    "python3 -c \"import urllib.request as u; u.urlopen(u.Request("
    f"'http://127.0.0.1:{APP_PORT}/admin/ready/false', method='POST'), timeout=5)\"")


def deployment(sc: Scenario, image: str, *, name: str = "demo", ns: str = "default",
               version: str = "v1", new_version: bool = False) -> dict[str, Any]:
    """The demo Deployment; roll it by re-applying with another version and new_version=True."""
    app = sc.app_for(new_version)
    container: dict[str, Any] = {
        "name": "app",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["testbed", "demoapp", "serve"],
        "ports": [{"name": "http", "containerPort": APP_PORT}],
        "env": app_env(app, version),
        # fast probes: the scenario's timing, not the kubelet's default 10 s period, should rule
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"},
                           "periodSeconds": 1, "timeoutSeconds": 1,
                           "successThreshold": 1, "failureThreshold": 1},
    }
    if app.pre_stop_unready:
        container["lifecycle"] = {"preStop": {"exec": {"command": [
            "sh", "-c", f"{UNREADY_COMMAND}; sleep {app.pre_stop_sleep_seconds}"]}}}
    elif app.pre_stop_sleep_seconds > 0:
        container["lifecycle"] = {"preStop": {"exec": {
            "command": ["sleep", str(app.pre_stop_sleep_seconds)]}}}
    if any(f.action == "containerRestart" for f in sc.faults):
        # the fault's lever; generous so a busy node does not restart containers by itself,
        # and only once the app listens (the startup probe), not while Python starts
        live = {"httpGet": {"path": "/live", "port": "http"}, "periodSeconds": 1,
                "timeoutSeconds": 3}
        container["startupProbe"] = {**live, "failureThreshold": 120}
        container["livenessProbe"] = {**live, "failureThreshold": 2}
    labels = {"app": name}
    pod_spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": app.termination_grace_period_seconds,
        "containers": [container],
    }
    pod_spec.update(placement(sc.app.placement, labels))
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
        "spec": {
            "replicas": sc.app.replicas,
            "selector": {"matchLabels": dict(labels)},
            "progressDeadlineSeconds": sc.rollout.timeout_seconds,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {
                "maxSurge": sc.rollout.max_surge,
                "maxUnavailable": sc.rollout.max_unavailable}},
            "template": {
                "metadata": {"labels": {**labels, "version": version}},
                "spec": pod_spec,
            },
        },
    }


HOSTNAME = "kubernetes.io/hostname"


def placement(how: str, labels: dict[str, str]) -> dict[str, Any]:
    """The pod spec fields of `app.placement`."""
    selector = {"matchLabels": dict(labels)}
    if how == "packed":
        return {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": selector, "topologyKey": HOSTNAME}]}}}
    if how == "spread":
        # per ReplicaSet (pod-template-hash): old and new pods of a rollout spread apart;
        # nodes whose taints the pod does not tolerate (the control plane) are no domain
        return {"topologySpreadConstraints": [{
            "maxSkew": 1, "topologyKey": HOSTNAME, "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": selector, "matchLabelKeys": ["pod-template-hash"],
            "nodeTaintsPolicy": "Honor"}]}
    return {}


def disruption_budget(sc: Scenario, name: str, ns: str) -> list[dict[str, Any]]:
    """`app.disruptionBudgetMaxUnavailable`: the PodDisruptionBudget, or none."""
    budget = sc.app.disruption_budget_max_unavailable
    if budget is None:
        return []
    return [{"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
             "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
             "spec": {"maxUnavailable": budget, "selector": {"matchLabels": {"app": name}}}}]


def service(name: str = "demo", ns: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"selector": {"app": name},
                 "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": APP_PORT,
                            "protocol": "TCP"}]},
    }


def target_group_binding(tg_arn: str, name: str = "demo", ns: str = "default", *,
                         service: str | None = None, port: int | str = SERVICE_PORT
                         ) -> dict[str, Any]:
    return {
        "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"targetGroupARN": tg_arn, "targetType": "ip",
                 "serviceRef": {"name": service or name, "port": port}},
    }


def manifests(sc: Scenario, image: str, tg_arn: str, *, name: str = "demo",
              ns: str = "default") -> list[dict[str, Any]]:
    """Everything for the first version, in apply order; with an ingress canary, swap or second
    Ingress also the second app's Service and Deployment (the app with rollout.newApp, version
    v2, named `<name>-v2`)."""
    docs = [namespace(sc, ns), service(name, ns), target_group_binding(tg_arn, name, ns),
            *disruption_budget(sc, name, ns), deployment(sc, image, name=name, ns=ns)]
    if second_app(sc):
        other = f"{name}-{SECOND}"
        docs += [service(other, ns),
                 deployment(sc, image, name=other, ns=ns, version="v2", new_version=True)]
    return docs


# Kinds that make pods: applied after the TargetGroupBinding is known to the controller, so the
# webhook injects the readiness gate into their first pods.
POD_MAKERS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job",
                        "CronJob", "Pod"})


def workload_manifests(sc: Scenario, docs: list[dict[str, Any]], target: Target, tg_arn: str,
                       *, ns: str) -> list[dict[str, Any]]:
    """A workload's objects, unchanged but for the run's namespace, with the run's namespace
    and TargetGroupBinding (named after the Service), pod makers last."""
    objs = in_namespace(docs, ns)
    tgb = target_group_binding(tg_arn, target.service_name, ns, port=target.port_ref)
    return [namespace(sc, ns), *[d for d in objs if d["kind"] not in POD_MAKERS], tgb,
            *[d for d in objs if d["kind"] in POD_MAKERS]]


ANNOTATION = "alb.ingress.kubernetes.io/"
INGRESS_CLASS = "alb"  # the IngressClass the controller's manifests install (ingress.k8s.aws/alb)
SECOND = "v2"  # suffix of the second app's Deployment and Service (canary, swap, second Ingress)
WEIGHTED_ACTION = "weighted"  # the forward action's name (actions.<it>; backend use-annotation)


def second_app(sc: Scenario) -> bool:
    """Whether the run deploys the demo app a second time (`<name>-v2`)."""
    ing = sc.ingress
    return ing is not None and any(x is not None for x in (ing.canary, ing.swap, ing.second))


def group_name(sc: Scenario, run_id: str) -> str | None:
    """The run's IngressGroup: the scenario's name plus the run's id, so runs side by side
    never merge into one load balancer."""
    assert sc.ingress is not None
    group = sc.ingress.group_name
    return f"{group}-{run_id}" if group and run_id else group


def ingress_annotations(sc: Scenario, listener_port: int, run_id: str = "") -> dict[str, str]:
    """The `alb.ingress.kubernetes.io/*` annotations that give the controller's ALB the
    scenario's settings (the same values aws_calls sends in TargetGroupBinding mode), then the
    scenario's own annotations over them. Names and formats: aws-load-balancer-controller's
    Ingress annotations (docs/guide/ingress/annotations.md at v3.5.0)."""
    assert sc.ingress is not None
    hc = sc.target_group.health_check
    tg = sc.target_group
    a = ANNOTATION
    out = {
        a + "scheme": "internal",
        a + "target-type": "ip",
        a + "listen-ports": f'[{{"HTTP": {listener_port}}}]',
        a + "healthcheck-protocol": "HTTP",
        a + "healthcheck-port": "traffic-port",
        a + "healthcheck-path": hc.path,
        a + "healthcheck-interval-seconds": str(hc.interval_seconds),
        a + "healthcheck-timeout-seconds": str(hc.timeout_seconds),
        a + "healthy-threshold-count": str(hc.healthy_threshold),
        a + "unhealthy-threshold-count": str(hc.unhealthy_threshold),
        a + "success-codes": hc.matcher,
        a + "target-group-attributes": ",".join([
            f"deregistration_delay.timeout_seconds={tg.deregistration_delay_seconds}",
            f"slow_start.duration_seconds={tg.slow_start_seconds}",
            f"load_balancing.algorithm.type={sc.alb.algorithm}"]),
        a + "load-balancer-attributes":
            f"idle_timeout.timeout_seconds={sc.alb.idle_timeout_seconds}",
    }
    group = group_name(sc, run_id)
    if group:
        out[a + "group.name"] = group
    return {**out, **sc.ingress.annotations}


@dataclass(frozen=True)
class IngressStep:
    """One version of the run's Ingress: the rule's backend is one Service, or (with
    `weights`) a forward action to several by weight. The first version is the baseline's;
    the run applies each later one in turn as its rollout."""

    title: str
    backend: str = ""  # the Service, when the rule forwards to one
    weights: tuple[tuple[str, int], ...] = ()  # (Service, weight), for a forward action
    removes: str | None = None  # a Service this version takes out: done once its group is gone
    hold_seconds: float = 0.0  # the recipe's wait after this version applies

    @property
    def services(self) -> list[str]:
        return [s for s, _ in self.weights] or [self.backend]


def ingress_steps(sc: Scenario, service: str) -> list[IngressStep]:
    """The run's Ingress versions, baseline first (one unless canary or swap)."""
    assert sc.ingress is not None
    ing, other = sc.ingress, f"{service}-{SECOND}"

    def split(old: int) -> tuple[tuple[str, int], ...]:
        return (service, old), (other, 100 - old)

    if ing.canary is not None:
        c = ing.canary
        return [IngressStep(f"canary weight {c.weight}%", weights=split(100 - c.weight)),
                IngressStep(f"canary weight {c.weight}% -> {c.shift_to}%",
                            weights=split(100 - c.shift_to))]
    if ing.swap is not None and ing.swap.via == "backend":
        return [IngressStep(f"backend {service}", backend=service),
                IngressStep(f"backend {service} -> {other}", backend=other, removes=service)]
    if ing.swap is not None:
        hold = ing.swap.hold_seconds
        return [IngressStep(f"{service} 100%, {other} 0%", weights=split(100)),
                IngressStep(f"{service} 100% -> 0%, {other} 0% -> 100%", weights=split(0),
                            hold_seconds=sc.target_group.deregistration_delay_seconds
                            if hold is None else hold),
                IngressStep(f"{service} out of the forward action", weights=((other, 100),),
                            removes=service)]
    return [IngressStep(f"backend {service}", backend=service)]


def forward_action(weights: tuple[tuple[str, int], ...], port: int | str) -> str:
    """An `actions.<name>` annotation value forwarding to Services by weight
    (aws-load-balancer-controller's forwardConfig with serviceName/servicePort; annotations.md
    at v3.5.0, "actions.${action-name}")."""
    return json.dumps({"type": "forward", "forwardConfig": {"targetGroups": [
        {"serviceName": svc, "servicePort": str(port), "weight": w} for svc, w in weights]}},
        separators=(",", ":"))


def _ingress(name: str, ns: str, annotations: dict[str, str], backend: str, port: int | str,
             path: str, path_type: str, host: str | None) -> dict[str, Any]:
    ref = {"name": backend, "port": {"name": "use-annotation"} if backend == WEIGHTED_ACTION
           else {"number": port} if isinstance(port, int) else {"name": port}}
    rule: dict[str, Any] = {"http": {"paths": [{
        "path": path, "pathType": path_type, "backend": {"service": ref}}]}}
    if host:
        rule["host"] = host
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations},
        "spec": {"ingressClassName": INGRESS_CLASS, "rules": [rule]},
    }


def ingress(sc: Scenario, *, name: str, ns: str, port: int | str, listener_port: int,
            step: IngressStep | None = None, run_id: str = "") -> dict[str, Any]:
    """The run's Ingress at one of its versions (`ingress_steps`; default: the first, for the
    Service `name`): one rule (host, path) to the version's Service, or to the forward action
    splitting between Services."""
    assert sc.ingress is not None
    ing = sc.ingress
    step = step or ingress_steps(sc, name)[0]
    annotations = ingress_annotations(sc, listener_port, run_id)
    backend = step.backend
    if step.weights:
        annotations[ANNOTATION + "actions." + WEIGHTED_ACTION] = forward_action(step.weights,
                                                                               port)
        backend = WEIGHTED_ACTION
    return _ingress(name, ns, annotations, backend, port, ing.path, ing.path_type, ing.host)


def workload_ingress(sc: Scenario, doc: dict[str, Any], *, ns: str, listener_port: int,
                     run_id: str = "") -> dict[str, Any]:
    """A workload's own Ingress as the run applies it: in the run's namespace, class `alb`
    (the testbed's IngressClass; the legacy class annotation dropped), `listen-ports` = the
    run's port, its group name (if any) with the run's id, then `ingress.annotations` over its
    annotations. Everything else is the user's: the controller builds the ALB from it."""
    assert sc.ingress is not None
    ing = copy.deepcopy(doc)
    md = ing["metadata"]
    ann = {k: v for k, v in (md.get("annotations") or {}).items()
           if k != "kubernetes.io/ingress.class"}
    ann[ANNOTATION + "listen-ports"] = f'[{{"HTTP": {listener_port}}}]'
    group = ann.get(ANNOTATION + "group.name")
    if group and run_id:  # 63 characters at most, as upstream validates group names
        ann[ANNOTATION + "group.name"] = f"{group[:57].rstrip('-.')}-{run_id}"
    md["annotations"] = {**ann, **sc.ingress.annotations}
    md["namespace"] = ns
    ing.setdefault("spec", {})["ingressClassName"] = INGRESS_CLASS
    return ing


def second_ingress(sc: Scenario, *, name: str, ns: str, port: int | str, listener_port: int,
                   run_id: str = "") -> dict[str, Any]:
    """`ingress.second`: the group's other Ingress, `name-v2`, to the second app."""
    assert sc.ingress is not None and sc.ingress.second is not None
    ing, second = sc.ingress, sc.ingress.second
    annotations = {**ingress_annotations(sc, listener_port, run_id),
                   ANNOTATION + "group.order": str(second.order)}
    return _ingress(f"{name}-{SECOND}", ns, annotations, f"{name}-{SECOND}", port, second.path,
                    second.path_type, ing.host)


def aws_calls(sc: Scenario, *, name: str = "demo", vpc_id: str = "vpc-testbed",
              subnets: tuple[str, ...] = ("subnet-testbed-a", "subnet-testbed-b"),
              lb_arn: str = "<LoadBalancerArn>", tg_arn: str = "<TargetGroupArn>",
              listener_port: int = SERVICE_PORT, target_port: int = APP_PORT
              ) -> dict[str, Any]:
    """boto3 elbv2 call kwargs in call order (ARNs are placeholders unless given);
    "create_listener" is None when the scenario leaves the target group without a listener."""
    hc = sc.target_group.health_check
    tg = sc.target_group
    alb = sc.alb
    return {
        "create_load_balancer": {"Name": name, "Subnets": list(subnets),
                                 "Scheme": "internal", "Type": "application",
                                 "IpAddressType": "ipv4"},
        "modify_load_balancer_attributes": {"LoadBalancerArn": lb_arn, "Attributes": [
            {"Key": "idle_timeout.timeout_seconds", "Value": str(alb.idle_timeout_seconds)}]},
        "create_target_group": {
            "Name": name, "Protocol": "HTTP", "Port": target_port, "VpcId": vpc_id,
            "TargetType": "ip", "HealthCheckEnabled": True, "HealthCheckProtocol": "HTTP",
            "HealthCheckPort": "traffic-port", "HealthCheckPath": hc.path,
            "HealthCheckIntervalSeconds": hc.interval_seconds,
            "HealthCheckTimeoutSeconds": hc.timeout_seconds,
            "HealthyThresholdCount": hc.healthy_threshold,
            "UnhealthyThresholdCount": hc.unhealthy_threshold,
            "Matcher": {"HttpCode": hc.matcher},
        },
        "modify_target_group_attributes": {"TargetGroupArn": tg_arn, "Attributes": [
            {"Key": "deregistration_delay.timeout_seconds",
             "Value": str(tg.deregistration_delay_seconds)},
            {"Key": "slow_start.duration_seconds", "Value": str(tg.slow_start_seconds)},
            {"Key": "load_balancing.algorithm.type", "Value": alb.algorithm},
        ]},
        "create_listener": None if not tg.attach_listener else {
            "LoadBalancerArn": lb_arn, "Protocol": "HTTP", "Port": listener_port,
            "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg_arn}],
        },
    }
