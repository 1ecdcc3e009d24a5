#!/usr/bin/env bash
# Make sure a Docker engine answers. Use a running one; else, as root on Debian, install
# docker.io and start dockerd ourselves (machines without systemd, such as CI sandboxes).
# The CAP_SYS_RESOURCE runtime wrapper is registered only when the capability bounding set
# lacks it, because that is the one case where `docker run --privileged` (kind) fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log=${DOCKERD_LOG:-/var/log/alb-testbed-dockerd.log}

say() { printf '[docker] %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  say "engine is running ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  say "no Docker engine answers and this is not root, so it cannot be installed here."
  say "Install Docker (Debian/Ubuntu: 'sudo apt-get install docker.io'; elsewhere Docker Engine"
  say "or Docker Desktop), start it, make sure 'docker info' works for this user, then re-run."
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "dockerd is missing and this is not a Debian-like system: install Docker Engine, then re-run."
    exit 1
  fi
  say "installing docker.io from Debian packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

# Bit 24 of CapBnd is CAP_SYS_RESOURCE.
capbnd=$(awk '/^CapBnd/ {print $2}' /proc/self/status)
if (( (16#$capbnd >> 24 & 1) == 0 )); then
  say "CAP_SYS_RESOURCE is missing from the bounding set: registering runc wrapper as default runtime"
  install -m 0755 "$here/runc-without-sys-resource" /usr/local/bin/runc-without-sys-resource
  mkdir -p /etc/docker
  python3 - <<'PY'
import json, os
path = "/etc/docker/daemon.json"
cfg = json.load(open(path)) if os.path.exists(path) else {}
cfg.setdefault("runtimes", {})["runc-without-sys-resource"] = {
    "path": "/usr/local/bin/runc-without-sys-resource"}
cfg["default-runtime"] = "runc-without-sys-resource"
json.dump(cfg, open(path, "w"), indent=2)
PY
fi

if pgrep -x dockerd >/dev/null; then
  say "dockerd is running but does not answer yet; waiting"
else
  say "starting dockerd (log: $log)"
  # containerd from the same package is started by dockerd itself.
  setsid nohup dockerd >"$log" 2>&1 < /dev/null &
fi
for _ in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then
    say "engine is running ($(docker version --format '{{.Server.Version}}'))"
    exit 0
  fi
  sleep 0.5
done
say "dockerd did not answer within 60 s; last lines of $log:"
tail -n 20 "$log" >&2 || true
exit 1
