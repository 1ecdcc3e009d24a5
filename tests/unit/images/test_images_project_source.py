"""The project image is built from the installed distribution: its packages staged into a
source tree with a generated pyproject.toml. A checkout (editable install) and a pip install
stage the same tree, so they get the same tag; the node image's tag does not depend on where
its inputs are installed either (a changed node tag costs CI a 20-minute rebuild)."""

from __future__ import annotations

import glob
import importlib.metadata
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from testbed import docker
from testbed.images import build
from testbed.images.inputs import digest
from testbed.paths import ASSETS_DIR, IMAGES_DIR

REQS = ["boto3==1.44.5", "moto==5.2.5"]


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _fake_packages(root: Path) -> list[Path]:
    """controller/ and testbed/ as a checkout may hold them: sources, package data, bytecode,
    a stray note, and testbed/assets."""
    files = {
        "controller/__init__.py": "", "controller/main.py": "def main(): ...\n",
        "controller/__pycache__/main.cpython-311.pyc": "junk",
        "testbed/__init__.py": "", "testbed/cli.py": "app = None\n", "testbed/notes.txt": "x",
        "testbed/scenario/builtin/a.yaml": "name: a\n", "testbed/data/x.json": "{}",
        "testbed/assets/images/node/build.sh": "echo node\n",
        "testbed/assets/images/project/Dockerfile": "FROM x\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return [root / "controller", root / "testbed"]


def test_staged_tree_holds_what_the_wheel_installs(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "_package_dirs", lambda: _fake_packages(tmp_path / "site"))
    src = build.stage_project_source(tmp_path / "stage", REQS)
    assert _files(src) == {"pyproject.toml", "controller/__init__.py", "controller/main.py",
                           "testbed/__init__.py", "testbed/cli.py",
                           "testbed/scenario/builtin/a.yaml", "testbed/data/x.json"}


def test_generated_pyproject_matches_the_installed_distribution(tmp_path: Path) -> None:
    src = build.stage_project_source(tmp_path, REQS)
    project = tomllib.loads((src / "pyproject.toml").read_text())["project"]
    dist = importlib.metadata.distribution(build.DIST_NAME)
    assert project["name"] == dist.metadata["Name"] == "alb-testbed"
    assert project["version"] == dist.version
    assert project["dependencies"] == REQS
    assert project["scripts"] == {"testbed": "testbed.cli:app",
                                  "alb-controller": "controller.main:main"}


def test_the_real_packages_are_staged_without_assets(tmp_path: Path) -> None:
    src = build.stage_project_source(tmp_path, REQS)
    staged = _files(src)
    assert "testbed/images/build.py" in staged and "controller/main.py" in staged
    assert {f"testbed/scenario/builtin/{n}.yaml" for n in ("full-recipe", "gated-fast-rollout")
            } <= staged
    assert not [f for f in staged if f.startswith("testbed/assets/") or "__pycache__" in f]


def _tag(monkeypatch: pytest.MonkeyPatch) -> str:
    """project_image()'s tag, without Docker: the image 'exists' whatever the tag."""
    monkeypatch.setattr(build, "base_image", lambda: build.PYTHON_SLIM)
    monkeypatch.setattr(docker, "image_exists", lambda ref: True)
    return build.project_image()


def _installed_copy(site: Path) -> None:
    """The packages as pip lays them out in site-packages (no caches; a fresh location)."""
    for pkg in build._package_dirs():
        shutil.copytree(pkg, site / pkg.name, ignore=shutil.ignore_patterns("__pycache__"))


def test_a_pip_install_gets_the_checkouts_tags(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    here_project, here_node = _tag(monkeypatch), build._local_node_tag()
    site = tmp_path / "site-packages"
    _installed_copy(site)
    monkeypatch.setattr(build, "_package_dirs", lambda: [site / "controller", site / "testbed"])
    monkeypatch.setattr(build, "IMAGES_DIR", site / "testbed/assets/images")
    monkeypatch.setattr(build, "ROOTFS_DIR", site / "testbed/assets/images/rootfs")
    assert (_tag(monkeypatch), build._local_node_tag()) == (here_project, here_node)


def test_project_tag_follows_code_not_node_files(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pkgs = _fake_packages(tmp_path)
    monkeypatch.setattr(build, "_package_dirs", lambda: pkgs)
    before = _tag(monkeypatch)
    (tmp_path / "testbed/assets/images/node/build.sh").write_text("echo changed\n")
    (tmp_path / "testbed/notes.txt").write_text("changed")
    assert _tag(monkeypatch) == before
    (tmp_path / "testbed/cli.py").write_text("app = 1\n")
    assert _tag(monkeypatch) != before


def test_node_tag_hashes_paths_relative_to_each_input(tmp_path: Path) -> None:
    """Why the move to testbed/assets kept the node tag: paths are hashed from each input's
    parent, so only the inputs' own layout and contents count."""
    inputs = [IMAGES_DIR / "node", IMAGES_DIR / "gobuild", IMAGES_DIR / "rootfs"]
    for p in inputs:
        shutil.copytree(p, tmp_path / "elsewhere" / p.name)
    moved = [tmp_path / "elsewhere" / p.name for p in inputs]
    assert digest(moved, ["v"]) == digest(inputs, ["v"])


def test_assets_ship_in_the_package() -> None:
    assert ASSETS_DIR.parent == Path(build.__file__).resolve().parents[1]
    for rel in ("images/node/build.sh", "images/gobuild/etcd/go.mod", "images/project/Dockerfile",
                "images/rootfs/node.packages", "scripts/ensure-docker.sh",
                "manifests/controller/deployment.yaml"):
        assert (ASSETS_DIR / rel).is_file(), rel


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_wheel_package_data_covers_every_asset() -> None:
    """Every tracked file under testbed/assets matches pyproject.toml's package data: what
    setuptools puts in the wheel, checked without building one (that takes a minute)."""
    root = ASSETS_DIR.parents[1]
    if not (root / "pyproject.toml").is_file():
        pytest.skip("not a checkout")
    tracked = subprocess.run(["git", "-C", str(root), "ls-files", "testbed/assets"],
                             capture_output=True, text=True, check=True).stdout.split()
    assert tracked
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    # setuptools expands package data with glob.glob(recursive=True), which (unlike pathlib)
    # skips dotfiles: the same call here, so a hidden asset would show up as missing.
    matched = {m for pattern in data["package-data"]["testbed"]
               for m in glob.glob(pattern, root_dir=root / "testbed", recursive=True)}
    missing = [t for t in tracked if t.removeprefix("testbed/") not in matched]
    assert not missing
