"""Cluster lifecycle: up (idempotent), down, status. Each long step reports progress; a failed
`up` keeps kind's logs, deletes the half-made cluster and says what to do."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kubernetes import client, config

from testbed import docker, proc
from testbed.cluster import kindconfig, network
from testbed.cluster.kindbin import kind_binary
from testbed.console import StepFailed, info, step
from testbed.images import build
from testbed.paths import cache_dir
from testbed.poll import TimedOut, poll

READY_TIMEOUT = 300.0


def kubeconfig_path(name: str = kindconfig.CLUSTER_NAME) -> Path:
    return cache_dir() / f"{name}.kubeconfig"


def exists(name: str = kindconfig.CLUSTER_NAME) -> bool:
    return name in proc.attempt([kind_binary(), "get", "clusters"]).output.split()


def node_containers(name: str = kindconfig.CLUSTER_NAME) -> list[str]:
    return docker.containers(f"io.x-k8s.kind.cluster={name}")


def api(name: str = kindconfig.CLUSTER_NAME, kubeconfig: Path | None = None) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig or kubeconfig_path(name)))


def _wait(what: str, predicate, timeout: float = READY_TIMEOUT) -> None:  # type: ignore[no-untyped-def]
    try:  # API errors are expected while the API server is still starting
        poll(predicate, timeout, interval=1, tolerate=(Exception,))
    except TimedOut as exc:
        raise StepFailed(f"timed out after {timeout:.0f}s waiting for {what}{exc.detail()}") \
            from None


def wait_usable(name: str = kindconfig.CLUSTER_NAME, expected_nodes: int | None = None,
                kubeconfig: Path | None = None) -> None:
    """Nodes Ready, CoreDNS available, default ServiceAccount present: pods can be run."""
    core = client.CoreV1Api(api(name, kubeconfig))
    apps = client.AppsV1Api(api(name, kubeconfig))

    def nodes_ready() -> bool:
        nodes = core.list_node().items
        if expected_nodes is not None and len(nodes) < expected_nodes:
            return False
        return bool(nodes) and all(
            any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
            for n in nodes)

    def dns_ready() -> bool:
        dep = apps.read_namespaced_deployment("coredns", "kube-system")
        return (dep.status.available_replicas or 0) >= 1

    def sa_ready() -> bool:
        core.read_namespaced_service_account("default", "default")
        return True

    with step("waiting for nodes Ready"):
        _wait("all nodes Ready", nodes_ready)
    with step("waiting for CoreDNS and the default ServiceAccount"):
        _wait("CoreDNS available", dns_ready)
        _wait("the default ServiceAccount", sa_ready)


def up(workers: int = kindconfig.DEFAULT_WORKERS, name: str = kindconfig.CLUSTER_NAME) -> Path:
    """Create the cluster unless it exists with the same shape; return its kubeconfig path."""
    docker.ensure_engine()
    kind = kind_binary()
    if exists(name):
        have = len(node_containers(name))
        if have < workers + 1:
            raise StepFailed(
                f"cluster {name} exists with {have} node(s) but {workers + 1} were asked for; "
                f"run `testbed cluster down` first (or ask for --workers {have - 1}).")
        # More workers than asked serve as well (a scenario grew the cluster, add_workers).
        info(f"cluster {name} exists ({have} node(s)); reusing it")
        kubeconfig_path(name).write_text(
            proc.run([kind, "get", "kubeconfig", "--name", name], log_name="kind-kubeconfig"))
        wait_usable(name, have)
        return kubeconfig_path(name)
    image = build.node_image()
    with tempfile.TemporaryDirectory(prefix="albtb-kind-") as tmp:
        cfg = kindconfig.write(Path(tmp) / "kind.yaml", name, workers, image)
        try:
            with step(f"creating kind cluster {name} ({workers + 1} node(s), image {image})"):
                proc.run([kind, "create", "cluster", "--config", cfg, "--kubeconfig",
                          kubeconfig_path(name), "--retain"], log_name="kind-create",
                         timeout=900)
            wait_usable(name, workers + 1)
        except StepFailed as exc:
            logs = cache_dir() / "failed-cluster-logs"
            proc.attempt([kind, "export", "logs", logs, "--name", name], timeout=300)
            proc.attempt([kind, "delete", "cluster", "--name", name], timeout=300)
            raise StepFailed(f"{exc}\nkind's node logs were saved to {logs} and the half-made "
                             "cluster was deleted. Look at kubelet.log and journal.log there; "
                             "then re-run `testbed cluster up`.") from exc
    return kubeconfig_path(name)


# kind's own join credentials (its kubeadm config, /kind/kubeadm.conf on every node); a
# bootstrap token expires after 24 h, so add_workers makes it again before joining.
JOIN_TOKEN = "abcdef.0123456789abcdef"
WORKER_ROLE = "io.x-k8s.kind.role=worker"


def workers_of(name: str = kindconfig.CLUSTER_NAME) -> list[str]:
    return [n for n in node_containers(name)
            if docker.inspect(n)["Config"]["Labels"].get("io.x-k8s.kind.role") == "worker"]


def add_workers(workers: int, name: str = kindconfig.CLUSTER_NAME) -> list[str]:
    """Grow the cluster to `workers` worker nodes and return the new ones. kind cannot add a
    node to a cluster, so this does what its create does for a worker: a node container run
    like the first worker (same image, labels, privileges, mounts), kind's join configuration
    with the new node's name and address, `kubeadm join`. `testbed cluster down` (kind)
    removes them with the others (they carry the cluster's label)."""
    have = workers_of(name)
    if not have:
        raise StepFailed(f"cluster {name} has no worker node to model a new one on")
    template = have[0]
    control = f"{name}-control-plane"
    conf = docker.exec_in(template, ["cat", "/kind/kubeadm.conf"])
    template_ip = network.inspect(template).ip
    added = []
    for i in range(len(have) + 1, workers + 1):
        new = f"{name}-worker{i}"  # kind's own naming: worker, worker2, worker3, ...
        with step(f"adding worker node {new} to cluster {name}"):
            docker.discard(new)
            docker.run_like(new, template)
            _wait(f"systemd on {new}", lambda n=new: proc.attempt(
                ["docker", "exec", n, "systemctl", "is-system-running"]).output.strip()
                in ("running", "degraded"), 120)
            ip = network.inspect(new).ip
            # only this node's lines: its address and kind's provider id
            mine = "\n".join(
                line.replace(template_ip, ip) if "node-ip:" in line or "advertiseAddress:" in line
                else line.replace(template, new) if "provider-id:" in line else line
                for line in conf.split("\n"))
            docker.exec_in(new, ["sh", "-c", 'mkdir -p /kind && printf "%s" "$1" > '
                                 "/kind/kubeadm.conf", "sh", mine])
            proc.attempt(["docker", "exec", control, "kubeadm", "token", "create", JOIN_TOKEN,
                          "--ttl", "2h"])  # fails harmlessly while the token still exists
            proc.run(["docker", "exec", new, "kubeadm", "join", "--config",
                      "/kind/kubeadm.conf", "--skip-phases=preflight"],
                     log_name=f"kubeadm-join-{new}", timeout=300)
        added.append(new)
    if added:
        wait_usable(name, len(node_containers(name)))
    return added


def down(name: str = kindconfig.CLUSTER_NAME) -> bool:
    """Delete the cluster and the containers started beside it (the fake AWS); False when
    there was nothing to delete."""
    if not docker.engine_answers():
        return False  # neither kind nodes nor containers beside them run without an engine
    # Containers first: they route to the nodes, and one left behind outlives its cluster.
    beside = network.beside(name)
    if beside:
        with step(f"removing {', '.join(beside)} (started beside cluster {name})"):
            docker.remove(*beside)
    if not exists(name):
        return bool(beside)
    with step(f"deleting kind cluster {name}"):
        proc.run([kind_binary(), "delete", "cluster", "--name", name], log_name="kind-delete")
    kubeconfig_path(name).unlink(missing_ok=True)
    return True


@dataclass
class NodeStatus:
    name: str
    ready: bool
    version: str
    internal_ip: str
    pod_cidr: str


@dataclass
class ClusterStatus:
    name: str
    exists: bool
    kubeconfig: str = ""
    nodes: list[NodeStatus] = field(default_factory=list)
    error: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def status(name: str = kindconfig.CLUSTER_NAME) -> ClusterStatus:
    if not exists(name):
        return ClusterStatus(name=name, exists=False)
    st = ClusterStatus(name=name, exists=True, kubeconfig=str(kubeconfig_path(name)))
    try:
        kubeconfig_path(name).write_text(
            proc.run([kind_binary(), "get", "kubeconfig", "--name", name],
                     log_name="kind-kubeconfig"))
        for n in client.CoreV1Api(api(name)).list_node(_request_timeout=10).items:
            ip = next((a.address for a in n.status.addresses if a.type == "InternalIP"), "")
            ready = any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
            st.nodes.append(NodeStatus(n.metadata.name, ready, n.status.node_info.kubelet_version,
                                       ip, n.spec.pod_cidr or ""))
    except Exception as exc:  # status must report, not crash
        st.error = str(exc)
    return st


def load_image(image: str, name: str = kindconfig.CLUSTER_NAME) -> None:
    """Make a local image available to the cluster's containerd; skipped when every node
    already holds it under the same image ID (one `crictl inspecti` per node, the check
    `kind load` makes too, without starting kind; it then loads only into the nodes lacking
    the image)."""
    nodes = node_containers(name)
    want = docker.image_id(image)
    if nodes and all(docker.node_image_id(n, image) == want for n in nodes):
        info(f"{image} is already on every node of cluster {name}")
        return
    with step(f"loading {image} into cluster {name}"):
        proc.run([kind_binary(), "load", "docker-image", image, "--name", name],
                 log_name="kind-load")
