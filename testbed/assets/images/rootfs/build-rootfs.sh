#!/usr/bin/env bash
# Make a minimal Debian bookworm root filesystem with debootstrap (minbase, nothing else) and
# import it as a Docker image. It is the one debootstrap the testbed needs where no container
# registry is reachable: the Python base and the node rootfs are Docker layers on top of it
# (images/rootfs/layer.Dockerfile), whose packages apt-get fetches from the same mirror.
# Usage: build-rootfs.sh IMAGE_TAG
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tag=${1:?usage: build-rootfs.sh IMAGE_TAG}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${DEBIAN_SUITE:-bookworm}

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "[rootfs] installing debootstrap" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
dir=$(mktemp -d /var/tmp/albtb-rootfs.XXXXXX)
trap 'rm -rf "$dir" "$dir.log"' EXIT
echo "[rootfs] debootstrap --variant=minbase $suite into $dir" >&2
debootstrap --variant=minbase "$suite" "$dir" "$mirror" >"$dir.log" 2>&1 || {
  echo "[rootfs] debootstrap failed; last lines of $dir.log:" >&2; tail -n 30 "$dir.log" >&2; exit 1; }
# Trim what a container never needs, now and in every later apt-get install (dpkg path-exclude,
# as Docker's official Debian "slim" images do).
install -m 0644 "$here/slim.dpkg.cfg" "$dir/etc/dpkg/dpkg.cfg.d/albtb-slim"
find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/apt/*.bin "$dir"/var/lib/apt/lists/* \
  "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/* \
  "$dir"/usr/share/lintian/* "$dir"/usr/lib/*/gconv "$dir"/var/log/*.log \
  "$dir"/var/log/apt/* "$dir"/var/cache/debconf/*-old "$dir"/var/lib/dpkg/*-old
cat > "$dir/etc/apt/sources.list" <<SRC
deb $mirror $suite main
deb $mirror $suite-updates main
SRC
tar -C "$dir" -c . | docker import - "$tag" >/dev/null
echo "[rootfs] imported $tag ($(docker image inspect -f '{{.Size}}' "$tag" | numfmt --to=iec))" >&2
