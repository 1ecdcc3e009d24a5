#!/usr/bin/env bash
# Build the Go tools the testbed needs from the Go module proxy: kind (host), and for the node
# image crictl, etcd, CoreDNS and pause. Each lands in OUTDIR/<name>; existing outputs are kept.
# Usage: build-tools.sh OUTDIR [name...]   (names: kind crictl etcd coredns pause)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build-tools.sh OUTDIR [name...]}; shift
names=("$@"); [ ${#names[@]} -gt 0 ] || names=(kind crictl etcd coredns pause)
KIND_VERSION=${KIND_VERSION:-v0.33.0}
CRICTL_VERSION=${CRICTL_VERSION:-v1.34.0}
mkdir -p "$out"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

for name in "${names[@]}"; do
  if [ -x "$out/$name" ]; then continue; fi
  echo "[gobuild] building $name" >&2
  start=$(date +%s)
  case $name in
    kind)   GOBIN="$out" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kind@$KIND_VERSION" ;;
    crictl) GOBIN="$out" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" ;;
    etcd|coredns|pause)
            (cd "$here/$name" && go build -trimpath -ldflags "-s -w" -o "$out/$name" .) ;;
    *) echo "[gobuild] unknown tool $name" >&2; exit 2 ;;
  esac
  echo "[gobuild] $name built in $(( $(date +%s) - start )) s" >&2
done
