"""Images the testbed needs, each tagged by a hash of its inputs and built only when missing.

- Debian rootfs: one debootstrap (minbase) where no registry is reachable
  (images/rootfs/build-rootfs.sh); the two images below are apt-get layers on it
  (images/rootfs/layer.Dockerfile):
  - base: Python, standing in for python:3.11-slim; the project image's base.
  - node rootfs: systemd, containerd, runc, CNI plugins; the node image's base.
- node: a kind node image assembled from Kubernetes' Go sources (images/node/build.sh), used
  when the upstream kindest/node cannot be pulled.
- project: every Python part (controller, fake AWS, demo app) in one image.

Independent work runs side by side (`_side_by_side`): the Go builds (CPU) beside the rootfs
(network, dpkg), and the project image beside the node image.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from testbed import docker, proc
from testbed.console import Board, StepFailed, err, info, step
from testbed.images import versions
from testbed.images.inputs import digest
from testbed.paths import IMAGES_DIR, REPO_ROOT, bin_dir

PROJECT_IMAGE_REPO = "alb-testbed"
PYTHON_SLIM = "python:3.11-slim-bookworm"
ROOTFS_DIR = IMAGES_DIR / "rootfs"
# Dependencies the project image leaves out: only the host draws reports (testbed/report/
# plot.py imports matplotlib when a report is written); no process in the image imports them.
HOST_ONLY_DEPENDENCIES = frozenset({"matplotlib"})

T = TypeVar("T")
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _once(key: str) -> threading.Lock:
    """One lock per image: two threads needing the same image build it once."""
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def _side_by_side(jobs: dict[str, Callable[[], object]]) -> None:
    """Run jobs in threads, one live line each; raise the first failure once all ended."""
    if len(jobs) == 1:
        next(iter(jobs.values()))()
        return

    def one(name: str, job: Callable[[], object], board: Board) -> None:
        start = time.monotonic()
        with board.lane(name):
            job()
        took = time.monotonic() - start
        if took >= 1:  # a job with nothing to do (all cached) says nothing
            err.print(f"[green]✓[/] {name} [dim]({took:.1f}s)[/]")

    with Board() as board, ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(one, name, job, board) for name, job in jobs.items()]
        errors = [f.exception() for f in futures]
    for exc in errors:
        if exc is not None:
            raise exc


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
    with _once("go-tools"):
        missing = [n for n in names if not (out / n).exists()]
        if missing:
            with step(f"building {', '.join(missing)} from the Go module proxy"):
                proc.run(["bash", IMAGES_DIR / "gobuild/build-tools.sh", out, *missing],
                         env={**_go_env(), "KIND_VERSION": versions.KIND_VERSION,
                              "CRICTL_VERSION": versions.CRICTL_VERSION},
                         log_name="build-tools")
    return out


NODE_TOOLS = ("crictl", "etcd", "coredns", "pause")


def _node_go_builds() -> tuple[Path, Path]:
    return kubernetes_binaries(), go_tools(*NODE_TOOLS)


def debian_rootfs() -> str:
    """Debian bookworm minbase made by debootstrap: the one debootstrap of a cold start."""
    script = ROOTFS_DIR / "build-rootfs.sh"
    tag = f"albtb/debian-rootfs:{digest([script, ROOTFS_DIR / 'slim.dpkg.cfg'])}"
    with _once(tag):
        if not docker.image_exists(tag):
            with step("making a minimal Debian rootfs with debootstrap"):
                proc.run(["bash", script, tag], log_name="rootfs-debian",
                         hint="debootstrap needs root and Debian's package mirror.")
    return tag


def rootfs_layer(name: str) -> str:
    """The Debian rootfs plus the packages in images/rootfs/<name>.packages (apt-get)."""
    rootfs = debian_rootfs()
    files = sorted(ROOTFS_DIR.glob(f"{name}.*"))
    tag = f"albtb/{name}-rootfs:{digest([ROOTFS_DIR / 'layer.Dockerfile', *files], [rootfs])}"
    with _once(tag):
        if docker.image_exists(tag):
            return tag
        with step(f"installing the '{name}' Debian packages (apt-get)"), \
                tempfile.TemporaryDirectory(prefix=f"albtb-{name}-rootfs-") as tmp:
            shutil.copy(ROOTFS_DIR / "layer.Dockerfile", Path(tmp) / "Dockerfile")
            for f in files:
                shutil.copy(f, tmp)
            docker.build(Path(tmp), tag, {"ROOTFS": rootfs, "NAME": name})
    return tag


def base_image() -> str:
    """Debian base for Python parts: upstream python-slim if pullable, else the local one."""
    forced = os.environ.get("ALBTB_BASE_IMAGE")
    if forced:
        return forced
    if docker.image_exists(PYTHON_SLIM) or docker.try_pull(PYTHON_SLIM, timeout=30):
        return PYTHON_SLIM
    return rootfs_layer("base")


def _local_node_tag() -> str:
    return "albtb/node:{}-{}".format(versions.KUBERNETES_VERSION, digest(
        [IMAGES_DIR / "node", IMAGES_DIR / "gobuild", ROOTFS_DIR],
        [versions.KUBERNETES_VERSION, versions.ETCD_IMAGE_TAG, versions.COREDNS_IMAGE_TAG,
         versions.PAUSE_IMAGE_TAG, versions.CRICTL_VERSION]))


def _node_choice() -> str | None:
    """ALBTB_NODE_IMAGE or upstream kindest/node when usable; None: assemble one here."""
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
    return None


def _assemble_node(tag: str) -> str:
    rootfs = rootfs_layer("node")
    k8s, tools = _node_go_builds()
    with step(f"assembling node image {tag}"):
        proc.run(["bash", IMAGES_DIR / "node/build.sh", tag, rootfs,
                  versions.KUBERNETES_VERSION, k8s, tools], log_name="build-node",
                 env={"PYTHON": sys.executable,
                      "ETCD_IMAGE_TAG": versions.ETCD_IMAGE_TAG,
                      "COREDNS_IMAGE_TAG": versions.COREDNS_IMAGE_TAG,
                      "PAUSE_IMAGE_TAG": versions.PAUSE_IMAGE_TAG})
    info(f"node image size: {docker.image_size(tag) / 2**20:.0f} MiB")
    return tag


def node_image() -> str:
    """The kind node image: ALBTB_NODE_IMAGE, else upstream kindest/node, else built here."""
    chosen = _node_choice()
    if chosen is not None:
        return chosen
    tag = _local_node_tag()
    if docker.image_exists(tag):
        return tag
    _side_by_side({"node rootfs": lambda: rootfs_layer("node"), "Go builds": _node_go_builds})
    return _assemble_node(tag)


def all_images() -> tuple[str, str]:
    """Node and project image; on a cold start their independent parts run side by side."""
    chosen = _node_choice()
    node_tag = chosen or _local_node_tag()
    if chosen is not None or docker.image_exists(node_tag):
        return node_tag, project_image()
    result: dict[str, str] = {}
    _side_by_side({"node rootfs": lambda: rootfs_layer("node"), "Go builds": _node_go_builds,
                   "project image": lambda: result.setdefault("project", project_image())})
    return _assemble_node(node_tag), result["project"]


def _dist_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"cannot read a distribution name in {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def image_requirements(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """The project's runtime dependencies minus those only the host uses."""
    deps: list[str] = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return [d for d in deps if _dist_name(d) not in HOST_ONLY_DEPENDENCIES]


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
        deps, app = Path(tmp) / "deps", Path(tmp) / "app"
        deps.mkdir()
        (deps / "requirements.txt").write_text("\n".join(image_requirements()) + "\n")
        # Wheels are resolved on the host (which reaches PyPI with its own settings) so the
        # image build needs no network at all. Dependencies and the project's own wheel go to
        # separate directories: the image's dependency layer is reused across code changes.
        proc.run([sys.executable, "-m", "pip", "wheel", "-q", "-w", deps, "-r",
                  deps / "requirements.txt"], log_name="pip-wheel",
                 hint="pip must reach PyPI (or a mirror) from the host.")
        proc.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", app, REPO_ROOT],
                 log_name="pip-wheel-project")
        shutil.copy(IMAGES_DIR / "project/slim.py", deps / "slim.py")
        shutil.copy(IMAGES_DIR / "project/Dockerfile", Path(tmp) / "Dockerfile")
        docker.build(Path(tmp), tag, {"BASE": base})
    docker.tag(tag, f"{PROJECT_IMAGE_REPO}:dev")
    info(f"project image size: {docker.image_size(tag) / 2**20:.0f} MiB")
    return tag
