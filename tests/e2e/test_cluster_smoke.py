"""The cluster is real and usable, on both topologies: 1 node, and the project cluster
(1 control-plane + WORKERS workers, 1 by default; more once a scenario with `cluster.workers`
grew it).

What later work relies on: pods of the project image run and become Available, EndpointSlices
list them, CoreDNS and kube-proxy work, a container on the kind network (where the fake AWS
lives) reaches every pod IP on every node and is reachable from the host through a published
port, and a pod readiness gate holds a pod out of Ready until its condition is patched True.
"""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kubernetes import client

from testbed import docker
from testbed.cluster import kindconfig, lifecycle, network
from tests.e2e.conftest import WORKERS, KindCluster, _manager
from tests.e2e.kube_helpers import condition, pod_exec, wait_for

pytestmark = pytest.mark.e2e
LABELS = {"app": "smoke"}
SINGLE = "alb-testbed-single"


def replicas(nodes: int) -> int:
    """Enough for a pod on every node, and for the checks below."""
    return max(3, nodes)


@dataclass
class Topology:
    name: str
    cluster_name: str
    cluster: KindCluster
    nodes: int
    namespace: str
    image: str


def _workload(api: client.ApiClient, ns: str, image: str, replicas: int) -> None:
    pod_spec = client.V1PodSpec(
        containers=[client.V1Container(
            name="web", image=image, image_pull_policy="Never",
            command=["python3", "-m", "http.server", "8080"],
            ports=[client.V1ContainerPort(container_port=8080, name="http")],
            readiness_probe=client.V1Probe(http_get=client.V1HTTPGetAction(path="/", port=8080),
                                           period_seconds=1))],
        # Spread over every node (kind taints the control plane when workers exist).
        tolerations=[client.V1Toleration(key="node-role.kubernetes.io/control-plane",
                                         operator="Exists", effect="NoSchedule")],
        topology_spread_constraints=[client.V1TopologySpreadConstraint(
            max_skew=1, topology_key="kubernetes.io/hostname",
            when_unsatisfiable="DoNotSchedule",
            label_selector=client.V1LabelSelector(match_labels=LABELS))])
    client.AppsV1Api(api).create_namespaced_deployment(ns, client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=replicas, selector=client.V1LabelSelector(match_labels=LABELS),
            template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels=LABELS),
                                              spec=pod_spec))))
    client.CoreV1Api(api).create_namespaced_service(ns, client.V1Service(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1ServiceSpec(selector=LABELS, ports=[client.V1ServicePort(
            name="http", port=80, target_port="http")])))


@pytest.fixture(scope="module", params=["project cluster", "1 node"])
def topology(request: pytest.FixtureRequest, cluster: KindCluster, project_image: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    if request.param == "1 node":
        tmp = tmp_path_factory.mktemp("single")
        lifecycle.down(SINGLE)  # a leftover from an interrupted run
        target = _manager(SINGLE, 0, tmp, tmp / "kubeconfig")
        target.load_image(project_image)
        name, nodes = SINGLE, 1
    else:
        # scenarios with `cluster.workers` grow the cluster and it keeps the nodes
        target, name = cluster, kindconfig.CLUSTER_NAME
        nodes = len(client.CoreV1Api(cluster.api).list_node().items)
        assert nodes >= WORKERS + 1
    api = target.api
    ns = f"smoke-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace(client.V1Namespace(
        metadata=client.V1ObjectMeta(name=ns)))
    _workload(api, ns, project_image, replicas(nodes))
    yield Topology(request.param, name, target, nodes, ns, project_image)
    if target is cluster:
        client.CoreV1Api(api).delete_namespace(ns)
    else:
        target.delete()


def _pods(t: Topology) -> list[client.V1Pod]:
    return client.CoreV1Api(t.cluster.api).list_namespaced_pod(
        t.namespace, label_selector="app=smoke").items


def _ready_everywhere(topology: Topology) -> None:
    """Every node Ready and the Deployment's pods Available on every node: what each check
    below stands on, so each asserts it first instead of relying on test order."""
    nodes = client.CoreV1Api(topology.cluster.api).list_node().items
    assert len(nodes) == topology.nodes
    assert all(condition(n.status, "Ready") == "True" for n in nodes)
    apps = client.AppsV1Api(topology.cluster.api)
    want = replicas(topology.nodes)
    dep = wait_for(f"Deployment web Available with {want} replicas", lambda: (
        d := apps.read_namespaced_deployment("web", topology.namespace)).status
        .available_replicas == want and d, timeout=180)
    assert condition(dep.status, "Available") == "True"
    pods = _pods(topology)
    assert len({p.spec.node_name for p in pods}) == topology.nodes, "pods not on every node"


def test_nodes_ready_and_deployment_available(topology: Topology) -> None:
    _ready_everywhere(topology)


def test_endpointslices_list_the_pods(topology: Topology) -> None:
    _ready_everywhere(topology)
    disc = client.DiscoveryV1Api(topology.cluster.api)
    want = {p.status.pod_ip for p in _pods(topology)}

    def listed() -> bool:
        slices = disc.list_namespaced_endpoint_slice(
            topology.namespace, label_selector="kubernetes.io/service-name=web").items
        ready = {e.addresses[0] for s in slices for e in s.endpoints or []
                 if e.conditions.ready and e.target_ref.kind == "Pod"}
        return ready == want

    wait_for(f"EndpointSlices of service web to list {sorted(want)}", listed, timeout=60)


def test_pod_resolves_kubernetes_default_and_reaches_clusterip(topology: Topology) -> None:
    _ready_everywhere(topology)
    pod = _pods(topology)[0].metadata.name
    script = ("import socket, urllib.request;"
              "print(socket.gethostbyname('kubernetes.default'));"
              "print(urllib.request.urlopen('http://web/', timeout=5).status)")

    def answered() -> str | None:
        out = pod_exec(topology.cluster.api, topology.namespace, pod, ["python3", "-c", script])
        return out if out.strip().endswith("200") else None

    out = wait_for("DNS + ClusterIP from a pod", answered, timeout=60)
    svc = client.CoreV1Api(topology.cluster.api).read_namespaced_service("kubernetes", "default")
    assert out.split()[0] == svc.spec.cluster_ip


def test_kind_network_container_reaches_every_pod_and_is_published(topology: Topology) -> None:
    _ready_everywhere(topology)
    name = f"albtb-smoke-{uuid.uuid4().hex[:6]}"
    container = network.start(name, topology.image, ["python3", "-m", "http.server", "9000"],
                              api=topology.cluster.api, cluster=topology.cluster_name,
                              publish=[9000])
    try:
        assert name in network.beside(topology.cluster_name)
        for pod in _pods(topology):
            code = "import urllib.request,sys;" \
                   f"print(urllib.request.urlopen('http://{pod.status.pod_ip}:8080/'," \
                   "timeout=5).status)"
            out = docker.exec_in(name, ["python3", "-c", code])
            assert out.strip() == "200", f"pod {pod.metadata.name} on {pod.spec.node_name}"
        port = container.published[9000]
        status = wait_for("published port answers on 127.0.0.1", lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{port}/", timeout=5).status, timeout=30)
        assert status == 200
    finally:
        network.stop(name)


def test_readiness_gate_holds_pod_until_condition_true(topology: Topology) -> None:
    core = client.CoreV1Api(topology.cluster.api)
    gate = "target-health.elbv2.k8s.aws/smoke"
    name = "gated"
    core.create_namespaced_pod(topology.namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            readiness_gates=[client.V1PodReadinessGate(condition_type=gate)],
            tolerations=[client.V1Toleration(operator="Exists")],
            containers=[client.V1Container(name="c", image=topology.image,
                                           image_pull_policy="Never",
                                           command=["python3", "-m", "http.server", "8080"])])))
    pod = wait_for("gated pod ContainersReady", lambda: (
        p := core.read_namespaced_pod(name, topology.namespace)) and
        condition(p.status, "ContainersReady") == "True" and p, timeout=120)
    assert condition(pod.status, "Ready") == "False", "gate did not hold the pod out of Ready"
    core.patch_namespaced_pod_status(name, topology.namespace, {"status": {"conditions": [
        {"type": gate, "status": "True", "reason": "Test"}]}})
    wait_for("gated pod Ready after the gate turned True", lambda: condition(
        core.read_namespaced_pod(name, topology.namespace).status, "Ready") == "True", timeout=60)


def test_cluster_down_removes_containers_started_beside_it(project_image: str) -> None:
    """`testbed cluster down` leaves nothing of the testbed running, even with no cluster left
    (the fake AWS once outlived its cluster)."""
    cluster = f"albtb-gone-{uuid.uuid4().hex[:6]}"
    name = f"albtb-beside-{uuid.uuid4().hex[:6]}"
    docker.run_detached(name, project_image, ["sleep", "infinity"],
                        network=network.KIND_NETWORK,
                        labels={network.BESIDE_CLUSTER_LABEL: cluster})
    try:
        assert network.beside(cluster) == [name]
        assert lifecycle.down(cluster) is True
        assert network.beside(cluster) == []
        assert lifecycle.down(cluster) is False
    finally:
        docker.discard(name)
