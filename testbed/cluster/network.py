"""Containers beside the cluster on the docker network "kind", with routes to pod IPs.

The fake AWS (health checker and ALB data plane) sits outside the cluster like a real ALB sits
outside the nodes, and talks to pod IPs directly. On Linux, a route podCIDR -> node IP inside
the container is enough (the node forwards to its pods); ports are published on 127.0.0.1 so
the host (or macOS, where container IPs are unreachable) reaches them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kubernetes import client

from testbed import docker
from testbed.cluster import kindconfig

KIND_NETWORK = "kind"
# Valued with the cluster's name, so `testbed cluster down` finds and removes what was started
# beside that cluster only (kind's nodes carry io.x-k8s.kind.cluster=<name> the same way).
BESIDE_CLUSTER_LABEL = "albtb.beside-cluster"


@dataclass
class NetworkContainer:
    """A container on the kind network, reachable from the host through published ports."""

    name: str
    ip: str
    published: dict[int, int] = field(default_factory=dict)  # container port -> host port


def pod_routes(api: client.ApiClient) -> list[tuple[str, str]]:
    """(podCIDR, node InternalIP) for every node that has been given a podCIDR."""
    routes = []
    for node in client.CoreV1Api(api).list_node().items:
        ip = next((a.address for a in node.status.addresses or [] if a.type == "InternalIP"), None)
        if node.spec.pod_cidr and ip:
            routes.append((node.spec.pod_cidr, ip))
    return routes


def install_routes(container: str, routes: list[tuple[str, str]]) -> None:
    for cidr, via in routes:
        docker.exec_in(container, ["ip", "route", "replace", cidr, "via", via],
                       hint="the container needs NET_ADMIN and iproute2.")


def cut(node: str, src: str, dst: str, port: int | None, cut: bool) -> None:
    """Drop (or stop dropping) what `src` sends to `dst` (on `port`; None: any TCP port), on
    `node`, which forwards it: connections hang as across a network partition. For a pod's
    traffic out, on the pod's node, not at `dst`: it leaves the pod network masqueraded to the
    node's address. For traffic in (the fake ALB to a pod), on the pod's node too: the
    container beside the cluster routes the podCIDR through it (install_routes)."""
    rule = ["FORWARD", "-s", src, "-d", dst, "-p", "tcp",
            *(["--dport", str(port)] if port is not None else []), "-j", "DROP"]
    if cut:
        docker.exec_in(node, ["iptables", "-I", *rule[:1], "1", *rule[1:]],
                       hint="the node needs iptables.")
    else:
        docker.exec_in(node, ["iptables", "-D", *rule])


def start(name: str, image: str, command: list[str], *, api: client.ApiClient,
          cluster: str = kindconfig.CLUSTER_NAME, publish: Sequence[int] = (),
          env: Mapping[str, str] | None = None,
          labels: Mapping[str, str] | None = None) -> NetworkContainer:
    """(Re)start a container on the kind network with routes to every pod of `cluster` (`api`
    must be that cluster's client); `testbed cluster down` removes it with the cluster."""
    docker.discard(name)
    docker.run_detached(name, image, command, network=KIND_NETWORK, cap_add=["NET_ADMIN"],
                        publish=[f"127.0.0.1::{port}" for port in publish], env=env,
                        labels={**(labels or {}), BESIDE_CLUSTER_LABEL: cluster})
    install_routes(name, pod_routes(api))
    return inspect(name)


def inspect(name: str) -> NetworkContainer:
    settings = docker.inspect(name)["NetworkSettings"]
    published = {}
    for key, bindings in (settings["Ports"] or {}).items():
        if bindings:
            published[int(key.split("/")[0])] = int(bindings[0]["HostPort"])
    return NetworkContainer(name=name, ip=settings["Networks"][KIND_NETWORK]["IPAddress"],
                            published=published)


def stop(name: str) -> None:
    docker.discard(name)


def beside(cluster: str) -> list[str]:
    """Names of the containers started beside `cluster`, running or not."""
    return docker.containers(f"{BESIDE_CLUSTER_LABEL}={cluster}")
