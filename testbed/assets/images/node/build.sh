#!/usr/bin/env bash
# Assemble a kind node image with no registry: Debian rootfs + locally built Kubernetes binaries,
# with the control-plane, etcd, CoreDNS, kube-proxy and pause images pre-loaded into the node's
# containerd (namespace k8s.io), the same layout `kind build node-image` produces. The
# pre-loaded images are stored with gzip-compressed layers (oci-archive.py), as a registry
# pull would leave them; containerd unpacks each when its first container starts.
# Usage: build.sh NODE_TAG ROOTFS_IMAGE K8S_VERSION K8S_BIN_DIR TOOLS_BIN_DIR
# Environment: PYTHON (>= 3.11, default python3), ETCD/COREDNS/PAUSE_IMAGE_TAG.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
node_tag=$1 rootfs=$2 version=$3 k8sbin=$4 tools=$5
python=${PYTHON:-python3}
etcd_tag=${ETCD_IMAGE_TAG:-3.6.5-0}
coredns_tag=${COREDNS_IMAGE_TAG:-v1.12.1}
pause_tag=${PAUSE_IMAGE_TAG:-3.10.1}
ctx=$(mktemp -d /var/tmp/albtb-node.XXXXXX)
preload=albtb-node-preload-$$
cleanup() { docker rm -f "$preload" >/dev/null 2>&1 || true; rm -rf "$ctx"; }
trap cleanup EXIT
step() { printf '[node-image] %s\n' "$*" >&2; }

# 1. Component images, named as kubeadm expects them. Each build gets a context holding only
#    its own binary (a hard link where possible), not every binary.
stage() {  # $1 = context dir, $2.. = files
  local dir=$1; shift
  mkdir -p "$dir"
  for f in "$@"; do ln "$f" "$dir/" 2>/dev/null || cp "$f" "$dir/"; done
}
component() {  # $1 = image ref, $2 = binary, $3 = path in the image; FROM scratch
  local ref=$1 bin=$2 path=$3 dir=$ctx/c/${2##*/}
  stage "$dir" "$bin"
  printf 'FROM scratch\nCOPY %s %s\nENV PATH=/usr/local/bin\nENTRYPOINT ["%s"]\n' \
    "${bin##*/}" "$path" "$path" >"$dir/Dockerfile"
  docker build -q -t "$ref" "$dir" >/dev/null
}
images=()
for b in kube-apiserver kube-controller-manager kube-scheduler; do
  component "registry.k8s.io/$b:$version" "$k8sbin/$b" "/usr/local/bin/$b"
  images+=("registry.k8s.io/$b:$version")
done
stage "$ctx/c/kube-proxy" "$k8sbin/kube-proxy" "$here/kube-proxy/Dockerfile" \
  "$here/kube-proxy/collect-files.sh" "$here/kube-proxy/iptables-wrapper"
docker build -q --build-arg "ROOTFS=$rootfs" -t "registry.k8s.io/kube-proxy:$version" \
  "$ctx/c/kube-proxy" >/dev/null
images+=("registry.k8s.io/kube-proxy:$version")
component "registry.k8s.io/etcd:$etcd_tag" "$tools/etcd" /usr/local/bin/etcd
images+=("registry.k8s.io/etcd:$etcd_tag")
component "registry.k8s.io/coredns/coredns:$coredns_tag" "$tools/coredns" /coredns
images+=("registry.k8s.io/coredns/coredns:$coredns_tag")
component "registry.k8s.io/pause:$pause_tag" "$tools/pause" /pause
images+=("registry.k8s.io/pause:$pause_tag")
step "component images built: ${images[*]}"
docker save "${images[@]}" -o "$ctx/images.tar"
"$python" "$here/oci-archive.py" "$ctx/images.tar" "$ctx/images.oci.tar"
rm -f "$ctx/images.tar"
step "component images archived with gzip layers ($(du -h "$ctx/images.oci.tar" | cut -f1))"

# 2. Node filesystem: rootfs + our files + kubeadm/kubelet/kubectl + crictl.
stage "$ctx/n/bin" "$k8sbin/kubeadm" "$k8sbin/kubelet" "$k8sbin/kubectl" "$tools/crictl"
cp -a "$here/files" "$ctx/n/files"
cat >"$ctx/n/Dockerfile" <<DOCKERFILE
FROM $rootfs
COPY files/ /
COPY bin/kubeadm bin/kubelet bin/kubectl /usr/bin/
COPY bin/crictl /usr/local/bin/crictl
RUN echo "$version" >/kind/version \\
 && mkdir -p /opt/cni /etc/cni/net.d /var/lib/kubelet /etc/kubernetes/manifests \\
 && ln -sfn /usr/lib/cni /opt/cni/bin \\
 && systemctl enable containerd kubelet albtb-netd >/dev/null 2>&1 \\
 && systemctl mask getty.target console-getty.service systemd-udevd.service \\
      systemd-udev-trigger.service systemd-modules-load.service systemd-remount-fs.service \\
      systemd-logind.service apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 \\
 && : >/etc/machine-id
ENV container=docker
# systemd as PID 1 shuts down cleanly on SIGRTMIN+3.
STOPSIGNAL SIGRTMIN+3
DOCKERFILE
docker build -q -t "$node_tag-stage" "$ctx/n" >/dev/null
step "node filesystem built"

# 3. Pre-load the component images with the node's own containerd (pinned, not unpacked).
#    /run and /tmp are tmpfs so containerd's sockets and state stay out of the image.
docker run -d --name "$preload" --privileged --tmpfs /run --tmpfs /tmp \
  --entrypoint /usr/bin/containerd "$node_tag-stage" >/dev/null
for _ in $(seq 1 60); do
  docker exec "$preload" ctr version >/dev/null 2>&1 && break; sleep 0.5
done
docker exec -i "$preload" ctr -n k8s.io images import --label=io.cri-containerd.pinned=pinned \
  --all-platforms --no-unpack --digests - <"$ctx/images.oci.tar" >/dev/null
docker exec "$preload" ctr -n k8s.io images ls -q | sed 's/^/[node-image]   /' >&2
docker stop -t 10 "$preload" >/dev/null
docker commit --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
  --change 'CMD []' "$preload" "$node_tag" >/dev/null
docker rm "$preload" >/dev/null
docker rmi "$node_tag-stage" >/dev/null
step "node image $node_tag ready ($(docker image inspect -f '{{.Size}}' "$node_tag" | numfmt --to=iec))"
