#!/usr/bin/env bash
# Assemble a kind node image with no registry: Debian rootfs + locally built Kubernetes binaries,
# with the control-plane, etcd, CoreDNS, kube-proxy and pause images pre-loaded into the node's
# containerd (namespace k8s.io), the same layout `kind build node-image` produces.
# Usage: build.sh NODE_TAG ROOTFS_IMAGE BASE_IMAGE K8S_VERSION K8S_BIN_DIR TOOLS_BIN_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
node_tag=$1 rootfs=$2 base=$3 version=$4 k8sbin=$5 tools=$6
etcd_tag=${ETCD_IMAGE_TAG:-3.6.5-0}
coredns_tag=${COREDNS_IMAGE_TAG:-v1.12.1}
pause_tag=${PAUSE_IMAGE_TAG:-3.10.1}
ctx=$(mktemp -d /var/tmp/albtb-node.XXXXXX)
preload=albtb-node-preload-$$
cleanup() { docker rm -f "$preload" >/dev/null 2>&1 || true; rm -rf "$ctx"; }
trap cleanup EXIT
step() { printf '[node-image] %s\n' "$*" >&2; }

# 1. Component images, named as kubeadm expects them.
component() {  # $1 = image ref, $2 = FROM, $3.. = Dockerfile lines; binaries staged in $ctx/c
  local ref=$1 from=$2; shift 2
  { echo "FROM $from"; printf '%s\n' "$@"; } >"$ctx/c/Dockerfile"
  docker build -q -t "$ref" "$ctx/c" >/dev/null
}
mkdir -p "$ctx/c"
for b in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do cp "$k8sbin/$b" "$ctx/c/"; done
cp "$tools/etcd" "$tools/coredns" "$tools/pause" "$ctx/c/"
cp "$here/iptables-wrapper" "$ctx/c/"
images=()
for b in kube-apiserver kube-controller-manager kube-scheduler; do
  component "registry.k8s.io/$b:$version" scratch "COPY $b /usr/local/bin/$b" \
    "ENV PATH=/usr/local/bin" "ENTRYPOINT [\"/usr/local/bin/$b\"]"
  images+=("registry.k8s.io/$b:$version")
done
component "registry.k8s.io/kube-proxy:$version" "$base" "COPY kube-proxy /usr/local/bin/kube-proxy" \
  "COPY iptables-wrapper /usr/sbin/iptables-wrapper" \
  "RUN for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do ln -sf iptables-wrapper /usr/sbin/\$t; done" \
  "ENTRYPOINT [\"/usr/local/bin/kube-proxy\"]"
images+=("registry.k8s.io/kube-proxy:$version")
component "registry.k8s.io/etcd:$etcd_tag" scratch "COPY etcd /usr/local/bin/etcd" \
  "ENV PATH=/usr/local/bin" "ENTRYPOINT [\"/usr/local/bin/etcd\"]"
images+=("registry.k8s.io/etcd:$etcd_tag")
component "registry.k8s.io/coredns/coredns:$coredns_tag" scratch "COPY coredns /coredns" \
  "ENTRYPOINT [\"/coredns\"]"
images+=("registry.k8s.io/coredns/coredns:$coredns_tag")
component "registry.k8s.io/pause:$pause_tag" scratch "COPY pause /pause" "ENTRYPOINT [\"/pause\"]"
images+=("registry.k8s.io/pause:$pause_tag")
step "component images built: ${images[*]}"
docker save "${images[@]}" -o "$ctx/images.tar"

# 2. Node filesystem: rootfs + our files + kubeadm/kubelet/kubectl + crictl.
mkdir -p "$ctx/n/bin"
cp -a "$here/files" "$ctx/n/files"
cp "$k8sbin/kubeadm" "$k8sbin/kubelet" "$k8sbin/kubectl" "$ctx/n/bin/"
cp "$tools/crictl" "$ctx/n/bin/"
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
docker run -d --name "$preload" --privileged --entrypoint /usr/bin/containerd "$node_tag-stage" >/dev/null
for _ in $(seq 1 60); do
  docker exec "$preload" ctr version >/dev/null 2>&1 && break; sleep 0.5
done
docker exec -i "$preload" ctr -n k8s.io images import --label=io.cri-containerd.pinned=pinned \
  --all-platforms --no-unpack --digests - <"$ctx/images.tar" >/dev/null
docker exec "$preload" ctr -n k8s.io images ls -q | sed 's/^/[node-image]   /' >&2
docker stop -t 10 "$preload" >/dev/null
docker commit --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
  --change 'CMD []' "$preload" "$node_tag" >/dev/null
docker rmi "$node_tag-stage" >/dev/null 2>&1 || true
step "node image $node_tag ready ($(docker image inspect -f '{{.Size}}' "$node_tag" | numfmt --to=iec))"
