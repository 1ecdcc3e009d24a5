"""The project's kind cluster configuration, rendered for a topology and a node image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CLUSTER_NAME = "alb-testbed"
# The shape every front door makes (testbed cluster up, make, runs, e2e): with one worker,
# pods land on two nodes, so the podCIDR -> node routes beside the cluster are exercised.
DEFAULT_WORKERS = 1


def host_is_cgroup_v1() -> bool:
    return not Path("/sys/fs/cgroup/cgroup.controllers").exists()


def render(name: str, workers: int, image: str) -> dict[str, Any]:
    """kind Cluster config: one control-plane node (schedulable) plus `workers` workers."""
    if workers < 0:
        raise ValueError("workers must be >= 0")
    nodes: list[dict[str, Any]] = [{"role": "control-plane", "image": image}]
    nodes += [{"role": "worker", "image": image} for _ in range(workers)]
    config: dict[str, Any] = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": name,
        "nodes": nodes,
        "networking": {"podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/16"},
    }
    if host_is_cgroup_v1():
        # Kubelet >= 1.35 refuses cgroup v1 unless failCgroupV1 is false (KEP-5573,
        # https://github.com/kubernetes/kubernetes/pull/134298); the field exists since 1.31,
        # so the patch is safe whichever version the node image holds.
        config["kubeadmConfigPatches"] = [
            "kind: KubeletConfiguration\nfailCgroupV1: false\n",
        ]
    return config


def write(path: Path, name: str, workers: int, image: str) -> Path:
    path.write_text(yaml.safe_dump(render(name, workers, image), sort_keys=False))
    return path
