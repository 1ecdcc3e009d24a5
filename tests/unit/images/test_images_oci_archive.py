"""testbed/assets/images/node/oci-archive.py: docker save output -> OCI layout with gzip
layers, same image."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from testbed.paths import IMAGES_DIR


@pytest.fixture(scope="module")
def oci() -> ModuleType:
    spec = importlib.util.spec_from_file_location("oci_archive",
                                                  IMAGES_DIR / "node" / "oci-archive.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _docker_save(path: Path) -> tuple[list[bytes], bytes]:
    """A two-image `docker save` archive (Docker 20.10 layout) sharing their first layer."""
    shared = _layer({"usr/local/bin/tool": b"\x7fELF" + b"x" * 50_000})
    own = _layer({"etc/config": b"hello"})
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": [_sha(shared), _sha(own)]}}).encode()
    manifest = [
        {"Config": _sha(config)[7:] + ".json", "RepoTags": ["registry.k8s.io/pause:3.10.1"],
         "Layers": ["a/layer.tar", "b/layer.tar"]},
        {"Config": _sha(config)[7:] + ".json", "RepoTags": ["alpine:3"],
         "Layers": ["a/layer.tar", "b/layer.tar"]},
    ]
    with tarfile.open(path, "w") as tf:
        for name, data in (("a/layer.tar", shared), ("b/layer.tar", own),
                           (_sha(config)[7:] + ".json", config),
                           ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return [shared, own], config


def _read(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tf:
        out = {}
        for m in tf.getmembers():
            f = tf.extractfile(m)
            assert f is not None
            out[m.name] = f.read()
        return out


def test_layout_names_and_blobs(oci: Any, tmp_path: Path) -> None:
    layers, config = _docker_save(tmp_path / "in.tar")
    names = oci.convert(tmp_path / "in.tar", tmp_path / "out.tar")
    assert names == ["registry.k8s.io/pause:3.10.1", "docker.io/library/alpine:3"]
    files = _read(tmp_path / "out.tar")
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    blobs = {"sha256:" + n.rsplit("/", 1)[1]: d for n, d in files.items()
             if n.startswith("blobs/sha256/")}
    assert all(_sha(data) == digest for digest, data in blobs.items())
    index = json.loads(files["index.json"])
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    refs = [(m["annotations"]["io.containerd.image.name"],
             m["annotations"]["org.opencontainers.image.ref.name"]) for m in index["manifests"]]
    assert refs == [("registry.k8s.io/pause:3.10.1", "3.10.1"),
                    ("docker.io/library/alpine:3", "3")]
    manifest = json.loads(blobs[index["manifests"][0]["digest"]])
    assert manifest["config"]["digest"] == _sha(config)  # same image ID as in Docker
    assert blobs[_sha(config)] == config
    assert [m["mediaType"] for m in manifest["layers"]] == \
        ["application/vnd.oci.image.layer.v1.tar+gzip"] * 2
    # each layer decompresses to the tar whose digest the config lists as its diff ID
    assert [gzip.decompress(blobs[m["digest"]]) for m in manifest["layers"]] == layers
    assert len(blobs) == 4  # two layers stored once, one config, one manifest


def test_output_is_deterministic(oci: Any, tmp_path: Path) -> None:
    _docker_save(tmp_path / "in.tar")
    oci.convert(tmp_path / "in.tar", tmp_path / "one.tar")
    oci.convert(tmp_path / "in.tar", tmp_path / "two.tar")
    assert _read(tmp_path / "one.tar") == _read(tmp_path / "two.tar")


@pytest.mark.parametrize(("ref", "full"), [
    ("alpine:3", "docker.io/library/alpine:3"),
    ("kindest/node:v1", "docker.io/kindest/node:v1"),
    ("registry.k8s.io/coredns/coredns:v1.12.1", "registry.k8s.io/coredns/coredns:v1.12.1"),
    ("localhost/x:1", "localhost/x:1"),
    ("host:5000/x:1", "host:5000/x:1"),
])
def test_normalize_like_containerd(oci: Any, ref: str, full: str) -> None:
    assert oci.normalize(ref) == full
