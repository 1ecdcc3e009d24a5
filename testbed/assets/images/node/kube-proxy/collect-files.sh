#!/usr/bin/env bash
# Copy programs into OUT the way they are found at run time: each path with the symlinks that
# lead to it and the shared libraries ldd says it needs, recursively; directories with their
# contents (e.g. the iptables extensions, loaded with dlopen). Paths keep their merged-/usr
# form (/lib -> usr/lib). The result is a distroless-style root for those programs.
# Usage: collect-files.sh OUT PATH...
set -euo pipefail
out=${1:?usage: collect-files.sh OUT PATH...}; shift
declare -A seen=()

collect() {  # $1 = absolute path as programs use it
  local path=$1 dir target lib
  [[ -z ${seen[$path]:-} ]] || return 0
  seen[$path]=1
  dir=$(realpath "$(dirname "$path")")
  mkdir -p "$out$dir"
  if [[ -L $path ]]; then
    cp -P "$path" "$out$dir/"
    target=$(readlink "$path")
    [[ $target == /* ]] || target=$dir/$target
    collect "$target"
  elif [[ -d $path ]]; then
    for target in "$path"/*; do collect "$target"; done
  else
    cp -p "$path" "$out$dir/"
    if ldd "$path" >/dev/null 2>&1; then
      for lib in $(ldd "$path" | grep -o '/[^ ]*'); do collect "$lib"; done
    fi
  fi
}

mkdir -p "$out"
for top in /bin /sbin /lib /lib64; do
  if [[ -L $top ]]; then cp -P "$top" "$out/"; fi
done
for path in "$@"; do collect "$path"; done
