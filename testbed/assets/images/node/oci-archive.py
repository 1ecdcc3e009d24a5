"""Turn `docker save` output into an OCI image-layout archive whose layers are gzip-compressed.

`docker save` (Docker 20.10) writes every layer as an uncompressed tar, and `ctr images import`
keeps blobs as it gets them, so a node image pre-loaded from it carries its component images
uncompressed. This writes the same images as an OCI image layout
(https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md): the config blob
unchanged (same image ID), each layer as `application/vnd.oci.image.layer.v1.tar+gzip`
(its diff ID, the digest of the uncompressed tar, stays what the config records), one manifest
per image, and index.json naming each image with the annotation `ctr images import` reads
(`io.containerd.image.name`). Output is deterministic: gzip headers carry no time or name.

Usage: python3 oci-archive.py DOCKER_SAVE.tar OUT.tar   (stdlib only; Python >= 3.11)
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
GZIP_LEVEL = 6  # gzip's default; level 9 saves ~1% on Go binaries at 2.5x the time
CHUNK = 1 << 20


@dataclass(frozen=True)
class Blob:
    digest: str  # "sha256:<hex>"
    size: int
    path: Path  # the bytes, in a temporary directory


def normalize(ref: str) -> str:
    """Docker's short names in full, as containerd names images: alpine:3 ->
    docker.io/library/alpine:3; names with a registry host are kept."""
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return ref
    if not rest:
        return f"docker.io/library/{ref}"
    return f"docker.io/{ref}"


def _tag(ref: str) -> str:
    name = ref.rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else "latest"


def _write_blob(tmp: Path, data: bytes) -> Blob:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = tmp / digest.replace(":", "-")
    path.write_bytes(data)
    return Blob(digest, len(data), path)


class _HashingWriter(io.RawIOBase):
    """A file to write to that also hashes what goes through it."""

    def __init__(self, out: Any) -> None:
        self.out, self.sha = out, hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.sha.update(b)
        return int(self.out.write(b))


def _gzip_member(archive: Path, member: tarfile.TarInfo, tmp: Path) -> Blob:
    """Compress one layer tar out of the archive (own file handle: safe in a thread)."""
    with open(archive, "rb") as src, \
            tempfile.NamedTemporaryFile(dir=tmp, delete=False) as out:
        src.seek(member.offset_data)
        sink = _HashingWriter(out)
        with gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=sink,
                           mtime=0) as gz:
            left = member.size
            while left:
                chunk = src.read(min(CHUNK, left))
                if not chunk:
                    raise ValueError(f"{archive}: {member.name} is truncated")
                gz.write(chunk)
                left -= len(chunk)
        size = out.tell()
    return Blob("sha256:" + sink.sha.hexdigest(), size, Path(out.name))


def convert(docker_archive: Path, out: Path, workers: int = 2) -> list[str]:
    """Write `out`; return the image names it holds."""
    with tarfile.open(docker_archive) as tf, \
            tempfile.TemporaryDirectory(prefix="oci-archive-", dir=out.parent) as tmpdir:
        tmp = Path(tmpdir)
        members = {m.name: m for m in tf.getmembers() if m.isfile()}

        def read(name: str) -> bytes:
            f = tf.extractfile(members[name])
            assert f is not None
            return f.read()

        images: list[dict[str, Any]] = json.loads(read("manifest.json"))
        layer_names = sorted({layer for image in images for layer in image["Layers"]})
        with ThreadPoolExecutor(max_workers=workers) as pool:
            layers = dict(zip(layer_names, pool.map(
                lambda name: _gzip_member(docker_archive, members[name], tmp), layer_names),
                strict=True))
        blobs: dict[str, Blob] = {b.digest: b for b in layers.values()}
        index: list[dict[str, Any]] = []
        names: list[str] = []
        for image in images:
            config_bytes = read(image["Config"])
            config = _write_blob(tmp, config_bytes)
            blobs[config.digest] = config
            manifest = {
                "schemaVersion": 2,
                "mediaType": MEDIA_MANIFEST,
                "config": {"mediaType": MEDIA_CONFIG, "digest": config.digest,
                           "size": config.size},
                "layers": [{"mediaType": MEDIA_LAYER_GZIP, "digest": layers[name].digest,
                            "size": layers[name].size} for name in image["Layers"]],
            }
            mblob = _write_blob(tmp, json.dumps(manifest, separators=(",", ":")).encode())
            blobs[mblob.digest] = mblob
            cfg = json.loads(config_bytes)
            platform = {"architecture": cfg.get("architecture", "amd64"),
                        "os": cfg.get("os", "linux")}
            for ref in image.get("RepoTags") or []:
                full = normalize(ref)
                names.append(full)
                index.append({"mediaType": MEDIA_MANIFEST, "digest": mblob.digest,
                              "size": mblob.size, "platform": platform,
                              "annotations": {ANNOTATION_IMAGE_NAME: full,
                                              ANNOTATION_REF_NAME: _tag(full)}})
        index_json = json.dumps({"schemaVersion": 2, "mediaType": MEDIA_INDEX,
                                 "manifests": index}, indent=1).encode()
        with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
            _add_bytes(dst, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            _add_bytes(dst, "index.json", index_json)
            for digest in sorted(blobs):
                blob = blobs[digest]
                info = tarfile.TarInfo("blobs/sha256/" + digest.split(":", 1)[1])
                info.size, info.mode = blob.size, 0o644
                with open(blob.path, "rb") as f:
                    dst.addfile(info, f)
    return names


def _add_bytes(dst: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    dst.addfile(info, io.BytesIO(data))


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    names = convert(Path(argv[1]), Path(argv[2]))
    print(f"[oci-archive] {len(names)} image(s): {' '.join(names)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
