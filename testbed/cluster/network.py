"""Containers beside the cluster on the docker network "kind", with routes to pod IPs.

The fake AWS (health checker and ALB data plane) sits outside the cluster like a real ALB sits
outside the nodes, and talks to pod IPs directly. On Linux, a route podCIDR -> node IP inside
the container is enough (the node forwards to its pods); ports are published on 127.0.0.1 so
the host (or macOS, where container IPs are unreachable) reaches them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from kubernetes import client

from testbed import proc

KIND_NETWORK = "kind"


@dataclass
class Sidecar:
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
        proc.run(["docker", "exec", container, "ip", "route", "replace", cidr, "via", via],
                 log_name="ip-route", hint="the container needs NET_ADMIN and iproute2.")


def start(name: str, image: str, command: list[str], *, api: client.ApiClient,
          publish: list[int] = (), env: dict[str, str] | None = None,  # type: ignore[assignment]
          labels: dict[str, str] | None = None) -> Sidecar:
    """(Re)start a container on the kind network with routes to every node's pods."""
    proc.ok(["docker", "rm", "-f", name])
    args = ["docker", "run", "-d", "--name", name, "--network", KIND_NETWORK,
            "--cap-add", "NET_ADMIN", "--label", "albtb.sidecar=true"]
    for port in publish:
        args += ["-p", f"127.0.0.1::{port}"]
    for key, value in (env or {}).items():
        args += ["-e", f"{key}={value}"]
    for key, value in (labels or {}).items():
        args += ["--label", f"{key}={value}"]
    proc.run([*args, image, *command], log_name=f"docker-run-{name}")
    install_routes(name, pod_routes(api))
    return inspect(name)


def inspect(name: str) -> Sidecar:
    info = json.loads(proc.run(["docker", "inspect", name], log_name="docker-inspect"))[0]
    ip = info["NetworkSettings"]["Networks"][KIND_NETWORK]["IPAddress"]
    published = {}
    for key, bindings in (info["NetworkSettings"]["Ports"] or {}).items():
        if bindings:
            published[int(key.split("/")[0])] = int(bindings[0]["HostPort"])
    return Sidecar(name=name, ip=ip, published=published)


def stop(name: str) -> None:
    proc.ok(["docker", "rm", "-f", name])


def logs(name: str, tail: int = 40) -> str:
    import subprocess

    done = subprocess.run(["docker", "logs", "--tail", str(tail), name], capture_output=True,
                          text=True, timeout=30)
    return done.stdout + done.stderr
