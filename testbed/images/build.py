"""Images the testbed needs, each tagged by a hash of its inputs and built only when missing.

- base: a Debian bookworm rootfs made with debootstrap (stands in for python:3.11-slim where
  no registry is reachable); used by the project image and kube-proxy.
- node: a kind node image assembled from Kubernetes' Go sources (images/node/build.sh), used
  when the upstream kindest/node cannot be pulled.
- project: every Python part (controller, fake AWS, demo app) in one image.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from testbed import docker, proc
from testbed.console import StepFailed, info, step
from testbed.images import versions
from testbed.images.inputs import digest
from testbed.paths import IMAGES_DIR, REPO_ROOT, bin_dir

PROJECT_IMAGE_REPO = "alb-testbed"
PYTHON_SLIM = "python:3.11-slim-bookworm"


def _go_env() -> dict[str, str]:
    if not shutil.which("go"):
        raise StepFailed("Go is needed to build kind and Kubernetes here (no registry to pull "
                         "from). Install Go >= 1.24 (https://go.dev/dl or `apt-get install "
                         "golang`) and re-run.")
    return {"CGO_ENABLED": "0"}


def kubernetes_binaries() -> Path:
    out = bin_dir() / f"kubernetes-{versions.KUBERNETES_VERSION}"
    needed = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy",
              "kubeadm", "kubelet", "kubectl"]
    if all((out / n).exists() for n in needed):
        return out
    with step(f"building Kubernetes {versions.KUBERNETES_VERSION} from the Go module proxy "
              "(tens of minutes on 2 cores the first time; cached afterwards)"):
        proc.run(["bash", IMAGES_DIR / "gobuild/build-kubernetes.sh",
                  versions.KUBERNETES_VERSION, out], env=_go_env(), log_name="build-kubernetes")
    return out


def go_tools(*names: str) -> Path:
    out = bin_dir() / "tools"
    missing = [n for n in names if not (out / n).exists()]
    if missing:
        with step(f"building {', '.join(missing)} from the Go module proxy"):
            proc.run(["bash", IMAGES_DIR / "gobuild/build-tools.sh", out, *missing],
                     env={**_go_env(), "KIND_VERSION": versions.KIND_VERSION,
                          "CRICTL_VERSION": versions.CRICTL_VERSION}, log_name="build-tools")
    return out


def _rootfs(name: str) -> str:
    packages = IMAGES_DIR / "rootfs" / f"{name}.packages"
    script = IMAGES_DIR / "rootfs/build-rootfs.sh"
    tag = f"albtb/{name}-rootfs:{digest([packages, script])}"
    if not docker.image_exists(tag):
        with step(f"making Debian rootfs '{name}' with debootstrap"):
            proc.run(["bash", script, tag, packages], log_name=f"rootfs-{name}",
                     hint="debootstrap needs root and Debian's package mirror.")
    return tag


def base_image() -> str:
    """Debian base for Python parts: upstream python-slim if pullable, else debootstrap."""
    forced = os.environ.get("ALBTB_BASE_IMAGE")
    if forced:
        return forced
    if docker.image_exists(PYTHON_SLIM) or docker.try_pull(PYTHON_SLIM, timeout=30):
        return PYTHON_SLIM
    return _rootfs("base")


def node_image() -> str:
    """The kind node image: ALBTB_NODE_IMAGE, else upstream kindest/node, else built here."""
    forced = os.environ.get("ALBTB_NODE_IMAGE", "auto")
    if forced not in ("auto", "local", "upstream"):
        return forced
    if forced in ("auto", "upstream"):
        up = versions.UPSTREAM_NODE_IMAGE
        if docker.image_exists(up) or docker.try_pull(up, timeout=60):
            return up
        if forced == "upstream":
            raise StepFailed(f"could not pull {up}; unset ALBTB_NODE_IMAGE to build one locally")
        info("upstream kindest/node cannot be pulled here: assembling a node image locally")
    node_dir = IMAGES_DIR / "node"
    gobuild = IMAGES_DIR / "gobuild"
    rootfs = _rootfs("node")
    base = _rootfs("base")
    tag = "albtb/node:{}-{}".format(versions.KUBERNETES_VERSION, digest(
        [node_dir, gobuild, IMAGES_DIR / "rootfs"],
        [versions.KUBERNETES_VERSION, versions.ETCD_IMAGE_TAG, versions.COREDNS_IMAGE_TAG,
         versions.PAUSE_IMAGE_TAG, versions.CRICTL_VERSION, rootfs, base]))
    if docker.image_exists(tag):
        return tag
    k8s = kubernetes_binaries()
    tools = go_tools("crictl", "etcd", "coredns", "pause")
    with step(f"assembling node image {tag}"):
        proc.run(["bash", node_dir / "build.sh", tag, rootfs, base, versions.KUBERNETES_VERSION,
                  k8s, tools], log_name="build-node",
                 env={"ETCD_IMAGE_TAG": versions.ETCD_IMAGE_TAG,
                      "COREDNS_IMAGE_TAG": versions.COREDNS_IMAGE_TAG,
                      "PAUSE_IMAGE_TAG": versions.PAUSE_IMAGE_TAG})
    info(f"node image size: {docker.image_size(tag) / 2**20:.0f} MiB")
    return tag


def _project_inputs() -> list[Path]:
    return [REPO_ROOT / "pyproject.toml", REPO_ROOT / "controller", REPO_ROOT / "testbed",
            IMAGES_DIR / "project"]


def project_image() -> str:
    """One image with controller, fake AWS and demo app; wheels come from the host's pip."""
    base = base_image()
    inputs = [p for p in _project_inputs() if p.exists()]
    tag = f"{PROJECT_IMAGE_REPO}:{digest(inputs, [base])}"
    if docker.image_exists(tag):
        return tag
    with step(f"building project image {tag} on {base}"), \
            tempfile.TemporaryDirectory(prefix="albtb-project-") as tmp:
        wheels = Path(tmp) / "wheels"
        # Wheels are resolved on the host (which reaches PyPI with its own settings) so the
        # image build needs no network at all.
        proc.run([sys.executable, "-m", "pip", "wheel", "-q", "-w", wheels, REPO_ROOT],
                 log_name="pip-wheel", hint="pip must reach PyPI (or a mirror) from the host.")
        shutil.copy(IMAGES_DIR / "project/Dockerfile", Path(tmp) / "Dockerfile")
        docker.build(Path(tmp), tag, {"BASE": base})
    docker.tag(tag, f"{PROJECT_IMAGE_REPO}:dev")
    info(f"project image size: {docker.image_size(tag) / 2**20:.0f} MiB")
    return tag
