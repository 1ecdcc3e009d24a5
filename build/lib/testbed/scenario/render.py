"""Scenario -> Kubernetes manifests and fake-AWS set-up calls (pure functions, no I/O).

The runner applies these; keeping them pure means every knob's mapping is unit-tested without
a cluster.
"""

from __future__ import annotations

from typing import Any

from testbed.demoapp.config import ENV_VARS
from testbed.scenario.model import AppSpec, Scenario

APP_PORT = 8080
SERVICE_PORT = 80
GATE_INJECT_LABEL = "elbv2.k8s.aws/pod-readiness-gate-inject"


def app_env(app: AppSpec, version: str) -> list[dict[str, Any]]:
    """The demo app's DEMO_* env for one version, plus POD_NAME from the downward API."""
    values = {
        "port": APP_PORT,
        "startup_delay": app.startup_delay_seconds,
        "ready_after": app.ready_after_seconds,
        "latency_ms": app.latency_ms,
        "keepalive_timeout": app.keep_alive_timeout_seconds,
        "on_sigterm": app.on_sigterm,
        "drain_seconds": app.drain_seconds,
        "health_code": app.health_code,
        "healthy_after": app.healthy_after_seconds,
    }
    env: list[dict[str, Any]] = [{"name": ENV_VARS[k], "value": str(v)} for k, v in values.items()]
    env.append({"name": "APP_VERSION", "value": version})
    env.append({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    return env


def render_namespace(scenario: Scenario, namespace: str) -> dict[str, Any]:
    """The webhook injects gates only in labelled namespaces, so the label is the gate switch."""
    labels = {"testbed/scenario": scenario.name}
    if scenario.app.readiness_gate:
        labels[GATE_INJECT_LABEL] = "enabled"
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace, "labels": labels}}


def render_deployment(scenario: Scenario, image: str, *, name: str = "demo",
                      namespace: str = "default", version: str = "v1",
                      new_version: bool = False) -> dict[str, Any]:
    """The demo Deployment; roll it by re-applying with another version and new_version=True."""
    app = scenario.app_for(new_version)
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
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": scenario.app.replicas,
            "selector": {"matchLabels": dict(labels)},
            "progressDeadlineSeconds": scenario.rollout.timeout_seconds,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {
                "maxSurge": scenario.rollout.max_surge,
                "maxUnavailable": scenario.rollout.max_unavailable}},
            "template": {
                "metadata": {"labels": {**labels, "version": version}},
                "spec": {
                    "terminationGracePeriodSeconds": app.termination_grace_period_seconds,
                    "containers": [container],
                },
            },
        },
    }


def render_service(name: str = "demo", namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"selector": {"app": name},
                 "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": APP_PORT,
                            "protocol": "TCP"}]},
    }


def render_target_group_binding(tg_arn: str, name: str = "demo",
                                namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"targetGroupARN": tg_arn, "targetType": "ip",
                 "serviceRef": {"name": name, "port": SERVICE_PORT}},
    }


def render_manifests(scenario: Scenario, image: str, tg_arn: str, *, name: str = "demo",
                     namespace: str = "default") -> list[dict[str, Any]]:
    """Everything for the first version, in apply order."""
    return [render_namespace(scenario, namespace),
            render_service(name, namespace),
            render_target_group_binding(tg_arn, name, namespace),
            render_deployment(scenario, image, name=name, namespace=namespace)]


def render_aws(scenario: Scenario, *, name: str = "demo", vpc_id: str = "vpc-testbed",
               subnets: tuple[str, ...] = ("subnet-testbed-a", "subnet-testbed-b"),
               lb_arn: str = "<LoadBalancerArn>",
               tg_arn: str = "<TargetGroupArn>") -> dict[str, Any]:
    """boto3 elbv2 call kwargs in call order (ARNs are placeholders unless given), plus the
    fake-AWS-only propagation knobs under "testbed"; "create_listener" is None when the
    scenario leaves the target group without a listener."""
    hc = scenario.target_group.health_check
    tg = scenario.target_group
    alb = scenario.alb
    return {
        "create_load_balancer": {"Name": name, "Subnets": list(subnets),
                                 "Scheme": "internal", "Type": "application",
                                 "IpAddressType": "ipv4"},
        "modify_load_balancer_attributes": {"LoadBalancerArn": lb_arn, "Attributes": [
            {"Key": "idle_timeout.timeout_seconds", "Value": str(alb.idle_timeout_seconds)}]},
        "create_target_group": {
            "Name": name, "Protocol": "HTTP", "Port": APP_PORT, "VpcId": vpc_id,
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
            "LoadBalancerArn": lb_arn, "Protocol": "HTTP", "Port": SERVICE_PORT,
            "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg_arn}],
        },
        "testbed": {"registerDelaySeconds": alb.register_delay_seconds,
                    "deregisterDelaySeconds": alb.deregister_delay_seconds},
    }


def render_controller_settings(scenario: Scenario) -> dict[str, Any]:
    """Controller switches by scenario name; the runner maps them to the controller's flags."""
    c = scenario.controller
    return {"requeueSeconds": c.requeue_seconds, "podWatch": c.pod_watch,
            "backoffRequeue": c.backoff_requeue, "legacyEndpoints": c.legacy_endpoints}
