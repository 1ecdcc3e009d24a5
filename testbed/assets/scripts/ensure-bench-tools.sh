#!/usr/bin/env bash
# The fake AWS benchmark compares the data plane with nginx and drives load with ab.
set -euo pipefail
missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v ab >/dev/null 2>&1 || missing+=(apache2-utils)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "[bench] installing ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  # the package starts a system nginx on port 80; the benchmark runs its own
  (service nginx stop || pkill -x nginx || true) >/dev/null 2>&1
else
  echo "[bench] please install: ${missing[*]} (nginx and ab are the benchmark's references)" >&2
  exit 1
fi
