# A layer of Debian packages on the debootstrap rootfs (images/rootfs/build-rootfs.sh):
# NAME=base (Python, for the project image) or NAME=node (systemd, containerd, ... for a kind
# node). NAME.packages lists the packages; NAME.dpkg.cfg, when present, adds dpkg path-excludes.
ARG ROOTFS
FROM ${ROOTFS}
ARG NAME
COPY ${NAME}.* /tmp/albtb/
RUN set -eu; \
    if [ -f "/tmp/albtb/${NAME}.dpkg.cfg" ]; then \
      cp "/tmp/albtb/${NAME}.dpkg.cfg" "/etc/dpkg/dpkg.cfg.d/albtb-${NAME}"; fi; \
    apt-get update -qq; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      $(grep -vE '^[[:space:]]*(#|$)' "/tmp/albtb/${NAME}.packages") >/dev/null; \
    apt-get clean; \
    rm -rf /tmp/albtb /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* \
      /var/log/dpkg.log /var/cache/debconf/*-old /var/lib/dpkg/*-old
