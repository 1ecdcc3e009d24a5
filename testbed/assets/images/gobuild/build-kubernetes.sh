#!/usr/bin/env bash
# Build the Kubernetes binaries a kind node needs from the Go module proxy (no registry, no
# download site). k8s.io/kubernetes pins its staging modules with replace directives that Go
# ignores in a dependency, so a wrapper module re-states each one at the matching v0.X.Y.
# Usage: build-kubernetes.sh VERSION OUTDIR
set -euo pipefail
version=${1:?usage: build-kubernetes.sh VERSION OUTDIR}
out=${2:?usage: build-kubernetes.sh VERSION OUTDIR}
work=${GOBUILD_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/alb-testbed/gobuild/kubernetes-$version}
minor=${version#v1.}; minor=${minor%%.*}
staging_version="v0.${version#v1.}"
mkdir -p "$work" "$out"
cd "$work"

gomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
{
  echo "module albtestbed.local/kubernetes-build"
  echo
  echo "go 1.24.0"
  echo
  echo "require k8s.io/kubernetes $version"
  echo
  grep -E '^\s+k8s.io/[^ ]+ => ./staging/' "$gomod" \
    | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
[ -f go.sum ] || go mod tidy -e >/dev/null 2>&1 || true
go mod download all >/dev/null 2>&1 || true

date=$(date -u +%Y-%m-%dT%H:%M:%SZ -d @0)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitCommit=0000000000000000000000000000000000000000"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
done
cmds=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubeadm kubectl kubelet)
pkgs=()
for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
CGO_ENABLED=0 go build -trimpath -tags tools -ldflags "$ldflags" -o "$out/" "${pkgs[@]}"
ls -la "$out"
