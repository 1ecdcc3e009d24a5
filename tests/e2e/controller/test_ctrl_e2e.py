"""End-to-end tests of the controller on the kind cluster against the fake AWS.

Fixtures (tests/e2e/conftest.py, provided by the lead): kube, aws, elbv2, namespace,
controller, project_image. Every wait is a poll with a deadline; nothing sleeps blindly.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

GROUP, VERSION, PLURAL = "elbv2.k8s.aws", "v1beta1", "targetgroupbindings"
GATE_PREFIX = "target-health.elbv2.k8s.aws/"
INJECT_LABEL = "elbv2.k8s.aws/pod-readiness-gate-inject"


# --------------------------------------------------------------------------------------------
# helpers
def wait_for(
    pred: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.5,
    diag: Callable[[], str] | None = None,
) -> Any:
    """tests/waiting.wait_until at a poll interval kind to the API server."""
    return wait_until(pred, timeout, what, interval, diag)


class TG:
    """A target group behind a load balancer listener (an unattached TG reports unused)."""

    def __init__(self, elbv2: Any, aws: Any) -> None:
        self.elbv2 = elbv2
        ec2 = boto3.client(
            "ec2",
            endpoint_url=aws.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        suffix = uuid.uuid4().hex[:8]
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(
                VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{az}"
            )["Subnet"]["SubnetId"]
            for i, az in ((1, "a"), (2, "b"))
        ]
        self.arn = elbv2.create_target_group(
            Name=f"e2e-{suffix}",
            Protocol="HTTP",
            Port=8080,
            VpcId=vpc,
            TargetType="ip",
            HealthCheckProtocol="HTTP",
            HealthCheckPath="/healthz",
            HealthCheckIntervalSeconds=5,
            HealthCheckTimeoutSeconds=2,
            HealthyThresholdCount=2,
            UnhealthyThresholdCount=2,
            Matcher={"HttpCode": "200"},
        )["TargetGroups"][0]["TargetGroupArn"]
        elbv2.modify_target_group_attributes(
            TargetGroupArn=self.arn,
            Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "5"}],
        )
        self.lb = elbv2.create_load_balancer(
            Name=f"e2e-{suffix}",
            Subnets=subnets,
            Scheme="internal",
            Type="application",
        )["LoadBalancers"][0]["LoadBalancerArn"]
        self.listener = elbv2.create_listener(
            LoadBalancerArn=self.lb,
            Protocol="HTTP",
            Port=random.randint(30000, 39999),
            DefaultActions=[{"Type": "forward", "TargetGroupArn": self.arn}],
        )["Listeners"][0]["ListenerArn"]

    def health(self) -> dict[str, dict[str, Any]]:
        """'ip:port' -> TargetHealth for every target AWS lists (draining included)."""
        out = self.elbv2.describe_target_health(TargetGroupArn=self.arn)["TargetHealthDescriptions"]
        return {f"{d['Target']['Id']}:{d['Target']['Port']}": d["TargetHealth"] for d in out}

    def active(self) -> set[str]:
        """Registered targets that are not draining (what the controller wants registered)."""
        return {k for k, h in self.health().items() if h["State"] not in ("draining", "unused")}

    def delete(self) -> None:
        for fn in (
            lambda: self.elbv2.delete_listener(ListenerArn=self.listener),
            lambda: self.elbv2.delete_load_balancer(LoadBalancerArn=self.lb),
            lambda: self.elbv2.delete_target_group(TargetGroupArn=self.arn),
        ):
            with contextlib.suppress(Exception):  # best effort; the fake AWS is reset per run
                fn()


@pytest.fixture
def tg(elbv2: Any, aws: Any, kube: Any, namespace: str) -> Iterator[TG]:
    t = TG(elbv2, aws)
    yield t
    # delete the bindings first so the controller deregisters and drops its finalizer
    custom = client.CustomObjectsApi(kube)
    for item in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]:
        with contextlib.suppress(ApiException):
            custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, item["metadata"]["name"]
            )
    wait_for(
        lambda: not custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)[
            "items"
        ],
        60,
        "TargetGroupBindings gone (controller finalizer done)",
    )
    t.delete()


def create_service(kube: Any, ns: str, name: str, app: str) -> None:
    client.CoreV1Api(kube).create_namespaced_service(
        ns,
        client.V1Service(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1ServiceSpec(
                selector={"app": app},
                ports=[
                    client.V1ServicePort(name="http", port=80, target_port=8080, protocol="TCP")
                ],
            ),
        ),
    )


def create_tgb(
    kube: Any,
    ns: str,
    name: str,
    svc: str,
    arn: str,
    target_type: str = "ip",
    extra_spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TargetGroupBinding",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "targetGroupARN": arn,
            "targetType": target_type,
            "serviceRef": {"name": svc, "port": 80},
            **(extra_spec or {}),
        },
    }
    return client.CustomObjectsApi(kube).create_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, body
    )


def bind_web(kube: Any, ns: str, arn: str) -> None:
    """Service "web" + ip TGB "web"; returns once the controller has seen the TGB (finalizer
    added), so the webhook's cache knows it before any pod is created."""
    create_service(kube, ns, "web", "web")
    create_tgb(kube, ns, "web", "web", arn)
    custom = client.CustomObjectsApi(kube)
    wait_for(
        lambda: (
            "elbv2.k8s.aws/resources"
            in (
                custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "web")[
                    "metadata"
                ].get("finalizers")
                or []
            )
        ),
        60,
        "controller to pick up TGB web",
    )


def app_container(image: str) -> client.V1Container:
    return client.V1Container(
        name="app",
        image=image,
        image_pull_policy="IfNotPresent",
        command=["testbed", "demoapp", "serve", "--port", "8080"],
        ports=[client.V1ContainerPort(container_port=8080, name="http")],
        readiness_probe=client.V1Probe(
            http_get=client.V1HTTPGetAction(path="/healthz", port=8080),
            period_seconds=1,
            failure_threshold=1,
        ),
    )


def create_deployment(
    kube: Any,
    ns: str,
    name: str,
    app: str,
    image: str,
    replicas: int,
    max_surge: int = 1,
    max_unavailable: int = 0,
) -> None:
    client.AppsV1Api(kube).create_namespaced_deployment(
        ns,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1DeploymentSpec(
                replicas=replicas,
                selector=client.V1LabelSelector(match_labels={"app": app}),
                strategy=client.V1DeploymentStrategy(
                    type="RollingUpdate",
                    rolling_update=client.V1RollingUpdateDeployment(
                        max_surge=max_surge, max_unavailable=max_unavailable
                    ),
                ),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels={"app": app}),
                    spec=client.V1PodSpec(
                        containers=[app_container(image)], termination_grace_period_seconds=5
                    ),
                ),
            ),
        ),
    )


def pods(kube: Any, ns: str, app: str) -> list[client.V1Pod]:
    return client.CoreV1Api(kube).list_namespaced_pod(ns, label_selector=f"app={app}").items


def cond(pod: client.V1Pod, ctype: str) -> str | None:
    for c in (pod.status.conditions or []) if pod.status else []:
        if c.type == ctype:
            return str(c.status)
    return None


def ready_pods(kube: Any, ns: str, app: str) -> list[client.V1Pod]:
    return [
        p
        for p in pods(kube, ns, app)
        if p.metadata.deletion_timestamp is None and cond(p, "Ready") == "True" and p.status.pod_ip
    ]


def expected_targets(kube: Any, ns: str, app: str) -> set[str]:
    """ip:8080 of every live pod the controller must register (ContainersReady, not deleting)."""
    return {
        f"{p.status.pod_ip}:8080"
        for p in pods(kube, ns, app)
        if p.metadata.deletion_timestamp is None
        and p.status.pod_ip
        and cond(p, "ContainersReady") == "True"
    }


def rollout_done(kube: Any, ns: str, name: str, replicas: int) -> bool:
    d = client.AppsV1Api(kube).read_namespaced_deployment(name, ns)
    s = d.status
    return bool(
        s.observed_generation == d.metadata.generation
        and s.updated_replicas == replicas
        and s.ready_replicas == replicas
        and s.available_replicas == replicas
        and (s.replicas or 0) == replicas
    )


def tgb_events(kube: Any, ns: str, name: str) -> list[str]:
    evs = (
        client.CoreV1Api(kube)
        .list_namespaced_event(ns, field_selector=f"involvedObject.name={name}")
        .items
    )
    return [e.reason for e in evs]


def diag_fn(controller: Any, t: TG | None = None) -> Callable[[], str]:
    def diag() -> str:
        parts = []
        if t is not None:
            parts.append(f"targets: {t.health()}")
        try:
            parts.append(
                "controller log tail:\n" + "\n".join(str(controller.logs()).splitlines()[-40:])
            )
        except Exception as e:
            parts.append(f"(no controller logs: {e!r})")
        return "\n".join(parts)

    return diag


# --------------------------------------------------------------------------------------------
# tests
def test_pods_registered_with_ip_and_target_port(
    kube: Any, namespace: str, tg: TG, controller: Any, project_image: str
) -> None:
    bind_web(kube, namespace, tg.arn)
    create_deployment(kube, namespace, "web", "web", project_image, replicas=3)
    diag = diag_fn(controller, tg)
    wait_for(lambda: len(ready_pods(kube, namespace, "web")) == 3, 180, "3 ready pods", diag=diag)
    want = {f"{p.status.pod_ip}:8080" for p in ready_pods(kube, namespace, "web")}
    wait_for(lambda: tg.active() == want, 60, f"targets == {want}", diag=diag)
    assert all(k.endswith(":8080") for k in tg.health())  # targetPort, not the Service port 80
    wait_for(
        lambda: all(h["State"] == "healthy" for k, h in tg.health().items() if k in want),
        60,
        "targets healthy",
        diag=diag,
    )
    obj = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "web"
    )
    assert "elbv2.k8s.aws/resources" in obj["metadata"]["finalizers"]
    wait_for(
        lambda: (
            client.CustomObjectsApi(kube)
            .get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "web")
            .get("status", {})
            .get("observedGeneration")
            == 1
        ),
        30,
        "status.observedGeneration",
        diag=diag,
    )
    assert "SuccessfullyReconciled" in tgb_events(kube, namespace, "web")


def test_gated_pod_ready_only_after_target_healthy(
    kube: Any, namespace: str, tg: TG, controller: Any, project_image: str
) -> None:
    bind_web(kube, namespace, tg.arn)
    create_deployment(kube, namespace, "web", "web", project_image, replicas=1)
    diag = diag_fn(controller, tg)
    gate = GATE_PREFIX + "web"
    seen_pending = False
    violations: list[str] = []

    def observe_until_ready() -> bool:
        nonlocal seen_pending
        ps = [p for p in pods(kube, namespace, "web") if p.status and p.status.pod_ip]
        if not ps:
            return False
        p = ps[0]
        assert [g.condition_type for g in p.spec.readiness_gates or []] == [gate]
        health = tg.health().get(f"{p.status.pod_ip}:8080")
        if cond(p, "ContainersReady") == "True" and cond(p, "Ready") != "True":
            seen_pending = True
        if cond(p, "Ready") != "True":
            return False
        # the gate can only be True once AWS said healthy; re-check the target now
        if not health or health["State"] != "healthy":
            violations.append(f"pod Ready while target {health}")
        assert cond(p, gate) == "True"
        return True

    wait_for(observe_until_ready, 180, "the gated pod Ready", interval=0.2, diag=diag)
    assert not violations, violations
    assert seen_pending, "never observed ContainersReady=True with the gate still pending"


def test_deleted_pod_deregistered_at_once(
    kube: Any, namespace: str, tg: TG, controller: Any, project_image: str
) -> None:
    bind_web(kube, namespace, tg.arn)
    create_deployment(kube, namespace, "web", "web", project_image, replicas=2)
    diag = diag_fn(controller, tg)
    wait_for(lambda: len(ready_pods(kube, namespace, "web")) == 2, 180, "2 ready pods", diag=diag)
    want = {f"{p.status.pod_ip}:8080" for p in ready_pods(kube, namespace, "web")}
    wait_for(lambda: tg.active() == want, 60, "targets registered", diag=diag)
    victim = ready_pods(kube, namespace, "web")[0]
    key = f"{victim.status.pod_ip}:8080"
    t0 = time.monotonic()
    client.CoreV1Api(kube).delete_namespaced_pod(victim.metadata.name, namespace)
    wait_for(lambda: key not in tg.active(), 15, f"{key} deregistered", interval=0.2, diag=diag)
    took = time.monotonic() - t0
    assert took < 10, f"deregistration took {took:.1f}s"
    state = tg.health().get(key, {}).get("State")
    assert state in (None, "draining", "unused"), state


def test_webhook_injects_gates_only_where_it_should(
    kube: Any, namespace: str, tg: TG, controller: Any, project_image: str
) -> None:
    core = client.CoreV1Api(kube)
    create_service(kube, namespace, "web", "web")
    create_tgb(kube, namespace, "web", "web", tg.arn)
    create_service(kube, namespace, "legacy", "legacy")
    create_tgb(
        kube,
        namespace,
        "inst",
        "legacy",
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/inst/0123456789abcdef",
        target_type="instance",
    )
    gate = GATE_PREFIX + "web"

    def make(name: str, app: str, ns: str = namespace, gates: list[str] | None = None) -> list[str]:
        spec = client.V1PodSpec(
            containers=[app_container(project_image)],
            readiness_gates=[client.V1PodReadinessGate(condition_type=g) for g in gates]
            if gates
            else None,
        )
        p = core.create_namespaced_pod(
            ns,
            client.V1Pod(metadata=client.V1ObjectMeta(name=name, labels={"app": app}), spec=spec),
        )
        return [g.condition_type for g in p.spec.readiness_gates or []]

    # the webhook reads its caches: wait until it knows the TGB (a matching pod gets the gate)
    def probe() -> bool:
        name = f"probe-{uuid.uuid4().hex[:6]}"
        got = make(name, "web")
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
        return got == [gate]

    wait_for(probe, 60, "webhook injecting", interval=1, diag=diag_fn(controller))

    assert make("match", "web") == [gate]
    assert make("nomatch", "other") == []
    assert make("has-gate", "web", gates=[gate]) == [gate]  # not duplicated
    assert make("instance-tgb", "legacy") == []  # instance TGB: no gate
    other_ns = f"{namespace}-nolabel"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other_ns)))
    try:
        create_service(kube, other_ns, "web", "web")
        create_tgb(
            kube,
            other_ns,
            "web",
            "web",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/0fedcba987654321",
        )
        assert make("unlabelled", "web", ns=other_ns) == []
    finally:
        custom = client.CustomObjectsApi(kube)
        with contextlib.suppress(ApiException):
            custom.delete_namespaced_custom_object(GROUP, VERSION, other_ns, PLURAL, "web")
        core.delete_namespace(other_ns)


def test_tgb_validation(kube: Any, namespace: str, tg: TG, controller: Any) -> None:
    custom = client.CustomObjectsApi(kube)
    create_service(kube, namespace, "web", "web")
    create_tgb(kube, namespace, "web", "web", tg.arn)

    def denied(fn: Callable[[], Any]) -> str:
        try:
            fn()
        except ApiException as e:
            return str(e.body)
        return ""

    # one ARN bound once (validating webhook); retried until the webhook's cache has "web"
    msg = wait_for(
        lambda: denied(
            lambda: create_tgb(kube, namespace, f"dup-{uuid.uuid4().hex[:5]}", "web", tg.arn)
        ),
        60,
        "duplicate ARN denied",
        interval=1,
        diag=diag_fn(controller),
    )
    assert "already bound" in msg
    assert "immutable" in denied(
        lambda: custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "web", {"spec": {"targetType": "instance"}}
        )
    )
    assert "immutable" in denied(
        lambda: custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "web", {"spec": {"targetGroupARN": tg.arn + "x"}}
        )
    )
    assert "nodeSelector" in denied(
        lambda: create_tgb(
            kube,
            namespace,
            "ns-sel",
            "web",
            tg.arn + "y",
            extra_spec={"nodeSelector": {"matchLabels": {"a": "b"}}},
        )
    )
    assert denied(
        lambda: custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "TargetGroupBinding",
                "metadata": {"name": "no-type"},
                "spec": {"targetGroupARN": tg.arn + "z", "serviceRef": {"name": "web", "port": 80}},
            },
        )
    )


def test_missing_service_reports_backend_not_found(
    kube: Any, namespace: str, tg: TG, controller: Any
) -> None:
    create_tgb(kube, namespace, "orphan", "does-not-exist", tg.arn)
    wait_for(
        lambda: "BackendNotFound" in tgb_events(kube, namespace, "orphan"),
        60,
        "BackendNotFound event",
        diag=diag_fn(controller, tg),
    )
    assert tg.active() == set()
    obj = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "orphan"
    )
    conds = {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}
    assert conds["Ready"]["reason"] == "BackendNotFound"


def test_controller_killed_mid_rollout_converges(
    kube: Any, namespace: str, tg: TG, controller: Any, project_image: str
) -> None:
    replicas = 4
    bind_web(kube, namespace, tg.arn)
    create_deployment(kube, namespace, "web", "web", project_image, replicas=replicas)
    diag = diag_fn(controller, tg)
    wait_for(
        lambda: rollout_done(kube, namespace, "web", replicas), 240, "initial rollout", diag=diag
    )
    wait_for(
        lambda: tg.active() == expected_targets(kube, namespace, "web"), 60, "targets", diag=diag
    )
    old_ips = {p.status.pod_ip for p in pods(kube, namespace, "web")}

    client.AppsV1Api(kube).patch_namespaced_deployment(
        "web",
        namespace,
        {"spec": {"template": {"metadata": {"annotations": {"e2e/rollout": uuid.uuid4().hex}}}}},
    )
    # kill the controller once the rollout is under way (a new pod exists)
    wait_for(
        lambda: any(
            p.status.pod_ip and p.status.pod_ip not in old_ips for p in pods(kube, namespace, "web")
        ),
        120,
        "rollout started",
        diag=diag,
    )
    controller.restart()

    wait_for(
        lambda: rollout_done(kube, namespace, "web", replicas),
        300,
        "rollout after restart",
        diag=diag,
    )
    live = {
        p.status.pod_ip
        for p in pods(kube, namespace, "web")
        if p.metadata.deletion_timestamp is None
    }

    def converged() -> bool:
        want = expected_targets(kube, namespace, "web")
        return len(want) == replicas and tg.active() == want

    wait_for(converged, 120, "targets == live pods after restart", diag=diag)
    active = tg.active()
    stale = {k for k in active if k.split(":")[0] not in live}
    missing = {f"{ip}:8080" for ip in live} - active
    assert not stale and not missing, (stale, missing)
    wait_for(
        lambda: all(h["State"] == "healthy" for k, h in tg.health().items() if k in active),
        60,
        "all targets healthy",
        diag=diag,
    )
    # pods created while the webhook was down may lack the gate (failurePolicy Ignore); every
    # pod that has it must have it True
    for p in pods(kube, namespace, "web"):
        gates = [g.condition_type for g in p.spec.readiness_gates or []]
        if p.metadata.deletion_timestamp is None and GATE_PREFIX + "web" in gates:
            assert cond(p, GATE_PREFIX + "web") == "True", p.metadata.name
