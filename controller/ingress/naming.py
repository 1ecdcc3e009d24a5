"""AWS names and stack ids, byte-for-byte as upstream derives them (v3.5.0).

- load balancer: pkg/ingress/model_build_load_balancer.go buildLoadBalancerName
- target group: pkg/ingress/model_build_target_group.go buildTargetGroupName and
  buildTargetGroupResourceID

Both hash with SHA-256 over the concatenated fields (no separators, as upstream) and keep the
first 10 hex digits, so a name is stable across restarts and identical to what upstream would
create for the same cluster name and objects.
"""

from __future__ import annotations

import hashlib
import re

# Go's [[:^alnum:]] is ASCII-only
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]")
MAX_LOAD_BALANCER_NAME_LENGTH = 32


def sanitize(s: str) -> str:
    return _NON_ALNUM.sub("", s)


def _sha256_hex(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
    return h.hexdigest()


def load_balancer_name(
    cluster_name: str, group_namespace: str, group_name: str, scheme: str
) -> str:
    """``k8s-<ns[:8]>-<name[:8]>-<hash[:10]>``, or ``k8s-<group[:17]>-<hash[:10]>`` if explicit."""
    explicit = group_namespace == ""
    group_id = group_name if explicit else f"{group_namespace}/{group_name}"
    uuid = _sha256_hex(cluster_name, group_id, scheme)
    if explicit:
        return f"k8s-{sanitize(group_name)[:17]}-{uuid[:10]}"
    return f"k8s-{sanitize(group_namespace)[:8]}-{sanitize(group_name)[:8]}-{uuid[:10]}"


def target_group_name(
    *,
    cluster_name: str,
    group_id: str,
    ingress_namespace: str,
    ingress_name: str,
    service_namespace: str,
    service_name: str,
    service_uid: str,
    service_port: int | str,
    target_group_port: int,
    target_type: str,
    protocol: str,
    protocol_version: str,
) -> str:
    """``k8s-<svc ns[:8]>-<svc name[:8]>-<hash[:10]>``; the hash covers everything that would
    force a replacement of the target group (ELBv2 cannot change port/protocol in place)."""
    uuid = _sha256_hex(
        cluster_name,
        group_id,
        ingress_namespace,
        ingress_name,
        service_uid,
        str(service_port),  # intstr.IntOrString.String()
        str(target_group_port),
        target_type,
        protocol,
        protocol_version,
    )
    return f"k8s-{sanitize(service_namespace)[:8]}-{sanitize(service_name)[:8]}-{uuid[:10]}"


def target_group_resource_id(
    ingress_namespace: str, ingress_name: str, service_name: str, service_port: int | str
) -> str:
    """``<ns>/<ingress>-<service>:<port>``: one target group per Ingress and Service port."""
    return f"{ingress_namespace}/{ingress_name}-{service_name}:{service_port}"
