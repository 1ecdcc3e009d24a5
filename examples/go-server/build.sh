#!/usr/bin/env bash
# Build the example image albtb-example/go-server:v1 into the local Docker engine (where
# `testbed run` loads it into the kind cluster from).
#   examples/go-server/build.sh [BASE_IMAGE]
# BASE_IMAGE: any image with `sh` and `sleep`; default the testbed's own Debian base
# (built locally on first use, no registry needed). TAG overrides the image tag.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tag=${TAG:-albtb-example/go-server:v1}

base=${1:-}
if [ -z "$base" ]; then
  if [ ! -x "$root/.venv/bin/python" ]; then
    echo "build.sh: no $root/.venv (make .venv); or give a base image: $0 debian:bookworm-slim" >&2
    exit 2
  fi
  base=$(cd "$root" && .venv/bin/python -c \
    "from testbed.images.build import base_image; print(base_image())" | tail -n 1)
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
# a static binary: no libc needed in the image; no module downloads (stdlib only)
(cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ctx/go-server" .)
cp "$here/Dockerfile" "$ctx/"
docker build --build-arg BASE="$base" -t "$tag" "$ctx"
docker image ls "$tag"
