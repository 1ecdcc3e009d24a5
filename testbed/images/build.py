"""Images the testbed needs, each tagged by a hash of its inputs and built only when missing.

Their inputs ship inside the package (testbed/assets/images, IMAGES_DIR; paths below are
relative to it), so a pip install builds them as a checkout does.

- Debian rootfs: one debootstrap (minbase) where no registry is reachable
  (images/rootfs/build-rootfs.sh); the two images below are apt-get layers on it
  (images/rootfs/layer.Dockerfile):
  - base: Python, standing in for python:3.11-slim; the project image's base.
  - node rootfs: systemd, containerd, runc, CNI plugins; the node image's base.
- node: a kind node image assembled from Kubernetes' Go sources (images/node/build.sh), used
  when the upstream kindest/node cannot be pulled.
- project: every Python part (controller, fake AWS, demo app) in one image, from the
  installed distribution (its packages and requirements), a checkout's or a pip install's.

Independent work runs side by side (`_side_by_side`): the Go builds (CPU) beside the rootfs
(network, dpkg), and the project image beside the node image.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from testbed import docker, proc
from testbed.console import Board, StepFailed, err, info, step
from testbed.images import versions
from testbed.images.inputs import IGNORED_PARTS, digest
from testbed.paths import IMAGES_DIR, bin_dir

PROJECT_IMAGE_REPO = "alb-testbed"
DIST_NAME = "alb-testbed"
# The distribution's import packages: what the project image installs.
APP_PACKAGES = ("controller", "testbed")
# What the project's wheel holds besides .py files: pyproject.toml's package data for the
# packages the image installs (built-in scenarios are YAML).
PACKAGE_DATA_SUFFIXES = frozenset({".py", ".yaml", ".json"})
# Left out of the image's wheel: the image runs no image builds and applies no manifests, and
# a node image file changing must not rebuild (nor retag) the project image.
IMAGE_LEAVES_OUT = frozenset({"testbed/assets"})
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


def _is_extra(requirement: str) -> bool:
    """True for a requirement that only an extra (e.g. `[dev]`) asks for: its marker names
    `extra`, the only way metadata tells optional dependencies apart."""
    _, _, marker = requirement.partition(";")
    return re.search(r"\bextra\s*==", marker) is not None


def image_requirements(requires: list[str] | None = None) -> list[str]:
    """The project's runtime dependencies (no extras) minus those only the host uses.

    Read from the installed distribution's metadata, not a pyproject.toml: a pip install has
    no source tree, and in a checkout (editable install) the metadata is what pip installed
    from pyproject.toml, so both give the same list."""
    if requires is None:
        requires = importlib.metadata.requires(DIST_NAME) or []
    return [r for r in requires
            if not _is_extra(r) and _dist_name(r) not in HOST_ONLY_DEPENDENCIES]


def _package_dirs() -> list[Path]:
    """The installed `controller` and `testbed` packages: the source tree's own directories in
    an editable install, site-packages' in a regular one. Found by spec, not imported: the
    testbed never imports the controller (they meet only through APIs and its CLI)."""
    dirs = []
    for name in APP_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise StepFailed(f"package {name!r} is not installed: reinstall {DIST_NAME}")
        dirs.append(Path(next(iter(spec.submodule_search_locations))).resolve())
    return dirs


def _ignore_for(pkg: Path) -> Callable[[str, list[str]], set[str]]:
    """shutil.copytree ignore function for package `pkg`: what the image's wheel leaves out.
    It keeps only sources and the package data the wheel holds (so the tag hashes exactly
    what gets installed, whatever else lies in a checkout), and not IMAGE_LEAVES_OUT."""
    def ignore(src: str, names: list[str]) -> set[str]:
        here = Path(src)
        rel = here.relative_to(pkg.parent)
        return {n for n in names
                if n in IGNORED_PARTS or (rel / n).as_posix() in IMAGE_LEAVES_OUT
                or ((here / n).is_file() and Path(n).suffix not in PACKAGE_DATA_SUFFIXES)}
    return ignore


def _project_pyproject(requirements: list[str]) -> str:
    """A minimal pyproject.toml for the image's wheel: the installed distribution's name,
    version and console scripts, the image's requirements, the same package data rules."""
    dist = importlib.metadata.distribution(DIST_NAME)
    scripts = sorted((e.name, e.value) for e in dist.entry_points
                     if e.group == "console_scripts")
    lines = ["[build-system]", 'requires = ["setuptools>=69"]',
             'build-backend = "setuptools.build_meta"', "", "[project]",
             f"name = {json.dumps(dist.metadata['Name'])}",
             f"version = {json.dumps(dist.version)}",
             f"requires-python = {json.dumps(dist.metadata['Requires-Python'] or '>=3.11')}",
             "dependencies = [" + ", ".join(json.dumps(r) for r in requirements) + "]", "",
             "[project.scripts]",
             *(f"{json.dumps(name)} = {json.dumps(value)}" for name, value in scripts), "",
             "[tool.setuptools.packages.find]",
             "include = [" + ", ".join(json.dumps(f"{p}*") for p in APP_PACKAGES) + "]", "",
             "[tool.setuptools.package-data]",
             '"*" = [' + ", ".join(json.dumps(f"*{s}") for s in sorted(PACKAGE_DATA_SUFFIXES)
                             if s != ".py") + "]"]
    return "\n".join(lines) + "\n"


def stage_project_source(dest: Path, requirements: list[str]) -> Path:
    """A source tree for the project's wheel under `dest`: the installed packages (see
    `_ignore_for`) and a generated pyproject.toml; one code path for a checkout and a pip
    install."""
    src = dest / "src"
    src.mkdir(parents=True)
    for pkg in _package_dirs():
        shutil.copytree(pkg, src / pkg.name, ignore=_ignore_for(pkg))
    (src / "pyproject.toml").write_text(_project_pyproject(requirements))
    return src


def _project_inputs(src: Path) -> list[Path]:
    """What the project image's tag hashes: the staged packages and pyproject.toml (which holds
    name, version, scripts and requirements), and the Dockerfile and slim.py."""
    return [src / "pyproject.toml", src / "controller", src / "testbed", IMAGES_DIR / "project"]


def project_image() -> str:
    """One image with controller, fake AWS and demo app; wheels come from the host's pip."""
    base = base_image()
    requirements = image_requirements()
    with tempfile.TemporaryDirectory(prefix="albtb-project-") as tmp:
        src = stage_project_source(Path(tmp), requirements)
        tag = f"{PROJECT_IMAGE_REPO}:{digest(_project_inputs(src), [base])}"
        if docker.image_exists(tag):
            return tag
        with step(f"building project image {tag} on {base}"):
            ctx = Path(tmp) / "context"
            deps, app = ctx / "deps", ctx / "app"
            deps.mkdir(parents=True)
            (deps / "requirements.txt").write_text("\n".join(requirements) + "\n")
            # Wheels are resolved on the host (which reaches PyPI with its own settings) so the
            # image build needs no network at all. Dependencies and the project's own wheel go
            # to separate directories: the image's dependency layer is reused across code
            # changes.
            proc.run([sys.executable, "-m", "pip", "wheel", "-q", "-w", deps, "-r",
                      deps / "requirements.txt"], log_name="pip-wheel",
                     hint="pip must reach PyPI (or a mirror) from the host.")
            proc.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", app, src],
                     log_name="pip-wheel-project")
            shutil.copy(IMAGES_DIR / "project/slim.py", deps / "slim.py")
            shutil.copy(IMAGES_DIR / "project/Dockerfile", ctx / "Dockerfile")
            docker.build(ctx, tag, {"BASE": base})
    docker.tag(tag, f"{PROJECT_IMAGE_REPO}:dev")
    info(f"project image size: {docker.image_size(tag) / 2**20:.0f} MiB")
    return tag
