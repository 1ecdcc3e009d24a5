"""Pinned versions of everything the cluster is built from. Change them here only."""

KIND_VERSION = "v0.33.0"
# 1.34 is the newest kubelet that runs on a cgroup v1 host without a config patch: 1.35 made
# failCgroupV1 default to true (KEP-5573, https://github.com/kubernetes/kubernetes/pull/134298).
# kubeadm 1.34 expects the image tags below (cmd/kubeadm/app/constants/constants.go at v1.34.4).
KUBERNETES_VERSION = "v1.34.4"
ETCD_IMAGE_TAG = "3.6.5-0"
COREDNS_IMAGE_TAG = "v1.12.1"
PAUSE_IMAGE_TAG = "3.10.1"
CRICTL_VERSION = "v1.34.0"
# What kind v0.33.0 uses by default; tried first where a registry is reachable.
UPSTREAM_NODE_IMAGE = (
    "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5"
)
