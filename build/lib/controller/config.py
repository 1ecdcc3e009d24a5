"""Controller settings and the guard that keeps the controller away from real AWS."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlparse

# Domains that belong to real AWS service endpoints (commercial, China, GovCloud, dual-stack).
AWS_PUBLIC_SUFFIXES: tuple[str, ...] = (
    "amazonaws.com",
    "amazonaws.com.cn",
    "amazonaws-us-gov.com",
    "api.aws",
    "aws.amazon.com",
    "on.aws",
)


@dataclass
class Config:
    """Everything the running controller needs; built from CLI flags / env in main.py."""

    aws_endpoint_url: str
    allow_real_aws: bool = False
    region: str = "us-east-1"
    kubeconfig: str | None = None
    # Historical-behaviour switches (see docs/controller.md).
    no_pod_watch: bool = False
    backoff_requeue: bool = False
    legacy_endpoints: bool = False
    fail_open: bool = True
    requeue_seconds: float = 15.0
    workers: int = 3
    sync_period_seconds: float = 36000.0
    target_health_cache_ttl: float = 300.0
    backoff_base_seconds: float = 0.005
    backoff_max_seconds: float = 1000.0
    metrics_port: int = 8080
    webhook_port: int = 9443
    webhook_cert_dir: str = "/tmp/k8s-webhook-server/serving-certs"
    enable_webhook: bool = True
    leader_elect: bool = False
    leader_election_namespace: str = "alb-system"
    leader_election_id: str = "alb-controller-leader"
    pod_name: str = ""


class RealAWSRefused(ValueError):
    """Raised when the endpoint looks like real AWS and --allow-real-aws was not given."""


def is_real_aws_host(host: str) -> bool:
    """True for hostnames under AWS public endpoint domains."""
    h = host.lower().rstrip(".")
    return any(h == s or h.endswith("." + s) for s in AWS_PUBLIC_SUFFIXES)


def check_aws_endpoint(url: str, allow_real_aws: bool = False) -> str:
    """Validate the explicit AWS endpoint; refuse anything that could reach real AWS.

    Refused unless allow_real_aws: a host under an AWS public domain (any scheme), and an https
    endpoint given as a public (globally routable) IP address, since that can only be a remote
    service and the fake AWS is always local/private.
    """
    if not url:
        raise ValueError(
            "--aws-endpoint-url is required (the controller never guesses an endpoint)"
        )
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"invalid AWS endpoint URL {url!r}: need http(s)://host[:port]")
    if allow_real_aws:
        return url
    host = parsed.hostname
    if is_real_aws_host(host):
        raise RealAWSRefused(
            f"refusing AWS endpoint {url!r}: host {host!r} is a real AWS endpoint "
            "(pass --allow-real-aws to override)"
        )
    if parsed.scheme == "https":
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is not None and ip.is_global:
            raise RealAWSRefused(
                f"refusing https AWS endpoint {url!r} on a public address "
                "(pass --allow-real-aws to override)"
            )
    return url
