"""Scenario -> everything a run applies: Kubernetes manifests, ELBv2 calls, fake AWS engine
settings and controller flags (pure functions, no I/O).

The one place a scenario field is mapped. Fields marked in the model (ControllerFlag,
EngineSetting) and the demo app's knobs (DemoBehaviour) are mapped generically, so adding one
needs no change here; the runner, the demo and the e2e ordering all read this module.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from testbed.declare import marker
from testbed.demoapp.config import DemoBehaviour, env_for
from testbed.scenario.model import ControllerFlag, EngineSetting, Scenario
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


def controller_args(sc: Scenario) -> list[str]:
    """The controller's flags for this scenario (its only settings channel besides the AWS
    endpoint, which the stack adds)."""
    args = []
    for mark, value in _marked(sc.controller, ControllerFlag):
        if isinstance(value, bool):
            if value == mark.when:
                args.append(mark.flag)
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
    if app.pre_stop_sleep_seconds > 0:
        container["lifecycle"] = {"preStop": {"exec": {
            "command": ["sleep", str(app.pre_stop_sleep_seconds)]}}}
    labels = {"app": name}
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
                "spec": {
                    "terminationGracePeriodSeconds": app.termination_grace_period_seconds,
                    "containers": [container],
                },
            },
        },
    }


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
    """Everything for the first version, in apply order; with an ingress canary also the
    canary's Service and Deployment (the app with rollout.newApp, version v2)."""
    docs = [namespace(sc, ns), service(name, ns), target_group_binding(tg_arn, name, ns),
            deployment(sc, image, name=name, ns=ns)]
    if sc.ingress is not None and sc.ingress.canary is not None:
        canary = f"{name}-{CANARY}"
        docs += [service(canary, ns),
                 deployment(sc, image, name=canary, ns=ns, version="v2", new_version=True)]
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


def ingress_annotations(sc: Scenario, listener_port: int) -> dict[str, str]:
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
    if sc.ingress.group_name:
        out[a + "group.name"] = sc.ingress.group_name
    return {**out, **sc.ingress.annotations}


CANARY = "canary"  # suffix of the canary's Deployment and Service names
CANARY_ACTION = "weighted"  # the forward action's name (actions.<it>; backend use-annotation)


def canary_action(service: str, port: int | str, canary_weight: int) -> str:
    """The `actions.weighted` annotation value: forward to the app and its canary by weight
    (aws-load-balancer-controller's forwardConfig with serviceName/servicePort; annotations.md
    at v3.5.0, "actions.${action-name}")."""
    return json.dumps({"type": "forward", "forwardConfig": {"targetGroups": [
        {"serviceName": service, "servicePort": str(port), "weight": 100 - canary_weight},
        {"serviceName": f"{service}-{CANARY}", "servicePort": str(port),
         "weight": canary_weight}]}}, separators=(",", ":"))


def ingress(sc: Scenario, *, name: str, ns: str, service: str, port: int | str,
            listener_port: int, canary_weight: int | None = None) -> dict[str, Any]:
    """The run's Ingress: one rule (host, path) to the Service's port, or with a canary to
    the forward action splitting between the app and its canary (`canary_weight`, default
    the scenario's starting weight)."""
    assert sc.ingress is not None
    ing = sc.ingress
    annotations = ingress_annotations(sc, listener_port)
    backend: dict[str, Any] = {"name": service,
                               "port": {"number": port} if isinstance(port, int)
                               else {"name": port}}
    if ing.canary is not None:
        weight = ing.canary.weight if canary_weight is None else canary_weight
        annotations[ANNOTATION + "actions." + CANARY_ACTION] = canary_action(service, port,
                                                                            weight)
        backend = {"name": CANARY_ACTION, "port": {"name": "use-annotation"}}
    rule: dict[str, Any] = {"http": {"paths": [{
        "path": ing.path, "pathType": ing.path_type, "backend": {"service": backend}}]}}
    if ing.host:
        rule["host"] = ing.host
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations},
        "spec": {"ingressClassName": INGRESS_CLASS, "rules": [rule]},
    }


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
