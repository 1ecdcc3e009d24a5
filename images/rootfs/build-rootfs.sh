#!/usr/bin/env bash
# Make a Debian bookworm root filesystem with debootstrap and import it as a Docker image.
# Used where no container registry is reachable: this is the "locally made Debian base".
# Usage: build-rootfs.sh IMAGE_TAG PACKAGE_LIST_FILE
set -euo pipefail
tag=${1:?usage: build-rootfs.sh IMAGE_TAG PACKAGE_LIST_FILE}
list=${2:?usage: build-rootfs.sh IMAGE_TAG PACKAGE_LIST_FILE}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${DEBIAN_SUITE:-bookworm}

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "[rootfs] installing debootstrap" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
packages=$(grep -vE '^\s*(#|$)' "$list" | tr '\n' ',' | sed 's/,$//')
dir=$(mktemp -d /var/tmp/albtb-rootfs.XXXXXX)
trap 'rm -rf "$dir"' EXIT
echo "[rootfs] debootstrap $suite into $dir (packages: $packages)" >&2
debootstrap --variant=minbase --include="$packages" "$suite" "$dir" "$mirror" >"$dir.log" 2>&1 || {
  echo "[rootfs] debootstrap failed; last lines of $dir.log:" >&2; tail -n 30 "$dir.log" >&2; exit 1; }
rm -f "$dir.log"
# Trim what a container never needs; keeps the images small.
rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
  "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/locale/*
cat > "$dir/etc/apt/sources.list" <<SRC
deb $mirror $suite main
deb $mirror $suite-updates main
SRC
tar -C "$dir" -c . | docker import - "$tag" >/dev/null
echo "[rootfs] imported $tag ($(docker image inspect -f '{{.Size}}' "$tag" | numfmt --to=iec))" >&2
