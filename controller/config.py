"""Controller settings, declared once, and the guard that keeps the controller away from real AWS.

A `Config` field that is a command-line switch carries its flag in the field metadata
(`flag(...)`): name, help, and how the value reads. `alb-controller run` builds its options,
their defaults and their `ALBC_<FLAG>` environment variables from these declarations
(controller/main.py), and docs/controller.md carries the table `python -m controller.config`
prints, so a new switch is one field here plus the code that reads it.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any
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
ENV_PREFIX = "ALBC_"
_FLAG_KEY = "flag"


@dataclass(frozen=True)
class Flag:
    """How one Config field appears on the command line."""

    name: str  # without the leading "--"
    help: str
    # A "--disable-x" switch: given, it sets its field False. The field keeps the positive
    # sense so the code reads `if cfg.fail_open`, while the flag keeps ALBC's spelling.
    inverted: bool = False
    # Seconds as a plain number (this controller's historical form) or a Go duration such as
    # "16m40s" (the form ALBC's pflag DurationVar flags take), so ALBC values paste in unchanged.
    duration: bool = False

    @property
    def option(self) -> str:
        return "--" + self.name

    @property
    def envvar(self) -> str:
        return ENV_PREFIX + self.name.upper().replace("-", "_")


def flag(name: str, help: str, *, inverted: bool = False, duration: bool = False) -> dict[str, Any]:
    """Field metadata that makes a Config field the switch `--<name>` / `ALBC_<NAME>`."""
    return {_FLAG_KEY: Flag(name, help, inverted, duration)}


@dataclass
class Config:
    """Everything the running controller needs. Fields with flag metadata are the
    `alb-controller run` switches; the others are fixed or come from the pod's environment."""

    aws_endpoint_url: str = field(
        metadata=flag("aws-endpoint-url", "ELBv2 endpoint URL (the fake AWS); real AWS is refused.")
    )
    allow_real_aws: bool = field(
        default=False,
        metadata=flag("allow-real-aws", "Permit an endpoint on a real AWS domain or public IP."),
    )
    region: str = field(
        default="us-east-1", metadata=flag("region", "Region requests are signed for.")
    )
    kubeconfig: str | None = field(
        default=None,
        metadata=flag("kubeconfig", "Run out of cluster with this kubeconfig (else in-cluster)."),
    )
    # Historical-behaviour switches (docs/controller.md says which release changed each).
    no_pod_watch: bool = field(
        default=False,
        metadata=flag("no-pod-watch", "Before ALBC v3.4: gated pod changes trigger no reconcile."),
    )
    backoff_requeue: bool = field(
        default=False,
        metadata=flag(
            "backoff-requeue",
            "Before ALBC v2.10: a pending gate past `initial` requeues through the exponential"
            " backoff, not the fixed period.",
        ),
    )
    legacy_endpoints: bool = field(
        default=False,
        metadata=flag("legacy-endpoints", "Read core/v1 Endpoints instead of EndpointSlices."),
    )
    fail_open: bool = field(
        default=True,
        metadata=flag(
            "disable-endpoints-fail-open",
            "Turn off the EndpointsFailOpen feature gate.",
            inverted=True,
        ),
    )
    requeue_seconds: float = field(
        default=15.0,
        metadata=flag(
            "targetgroupbinding-requeue-duration",
            "Poll period while a readiness gate is pending.",
            duration=True,
        ),
    )
    # ALBC v2.2.1+ (kubernetes-sigs/aws-load-balancer-controller#2029, fixing #1974):
    # pkg/config/controller_config.go flagTargetGroupBindingMaxExponentialBackoffDelay, the max
    # of workqueue.NewItemExponentialFailureRateLimiter(5ms, max) in
    # controllers/elbv2/targetgroupbinding_controller.go; default 1000 s (16m40s).
    backoff_max_seconds: float = field(
        default=1000.0,
        metadata=flag(
            "targetgroupbinding-max-exponential-backoff-delay",
            "Cap of the per-binding exponential backoff (5 ms doubling) after reconcile"
            " errors and --backoff-requeue requeues.",
            duration=True,
        ),
    )
    workers: int = field(
        default=3, metadata=flag("workers", "Concurrent reconciles (MaxConcurrentReconciles).")
    )
    sync_period_seconds: float = field(
        default=36000.0,
        metadata=flag("sync-period", "Period of the full resync of every binding.", duration=True),
    )
    target_health_cache_ttl: float = field(
        default=300.0,
        metadata=flag(
            "target-health-cache-ttl",
            "How long a target group's health listing is cached (0: always a full"
            " DescribeTargetHealth).",
            duration=True,
        ),
    )
    metrics_port: int = field(
        default=8080, metadata=flag("metrics-port", "Port of /metrics, /healthz and /readyz.")
    )
    webhook_port: int = field(
        default=9443, metadata=flag("webhook-port", "Port of the pod and TGB webhooks (https).")
    )
    webhook_cert_dir: str = field(
        default="/tmp/k8s-webhook-server/serving-certs",
        metadata=flag("webhook-cert-dir", "Directory holding the webhook's tls.crt and tls.key."),
    )
    enable_webhook: bool = field(
        default=True,
        metadata=flag("disable-webhook", "Serve no webhooks.", inverted=True),
    )
    # Ingress mode (controller/ingress/, docs/ingress.md). On by default, as ALBC always runs
    # its Ingress controller; with no Ingress in the cluster it only adds two informers.
    enable_ingress: bool = field(
        default=True,
        metadata=flag(
            "disable-ingress",
            "Do not watch Ingresses (no IngressGroup reconciles, no ingress RBAC needed).",
            inverted=True,
        ),
    )
    cluster_name: str = field(
        default="alb-testbed",
        metadata=flag(
            "cluster-name",
            "Cluster name in the elbv2.k8s.aws/cluster tag and in load balancer and target"
            " group names.",
        ),
    )
    ingress_class: str = field(
        default="alb",
        metadata=flag(
            "ingress-class",
            "Ingress class this controller serves (annotation value; empty also takes"
            " Ingresses without any class).",
        ),
    )
    ingress_subnets: str = field(
        default="",
        metadata=flag(
            "ingress-subnets",
            "Comma-separated subnet ids for load balancers (empty: the default VPC's"
            " default-for-AZ subnets).",
        ),
    )
    vpc_id: str = field(
        default="",
        metadata=flag(
            "vpc-id",
            "VPC of the target groups (empty: the subnets' VPC, else the default VPC).",
        ),
    )
    ingress_workers: int = field(
        default=3,
        metadata=flag("ingress-max-concurrent-reconciles", "Concurrent IngressGroup reconciles."),
    )
    leader_elect: bool = field(
        default=False, metadata=flag("leader-elect", "Take a Lease before reconciling.")
    )
    leader_election_namespace: str = field(
        default="",
        metadata=flag(
            "leader-election-namespace",
            "Namespace of the Lease (empty: the pod's own namespace, else alb-system).",
        ),
    )
    leader_election_id: str = field(
        default="alb-controller-leader",
        metadata=flag("leader-election-id", "Name of the Lease."),
    )
    log_level: str = field(
        default="info", metadata=flag("log-level", "debug, info, warning or error.")
    )
    # Not switches: ALBC hard-codes the 5 ms base, and the pod name comes from the Downward API.
    backoff_base_seconds: float = 0.005
    pod_name: str = ""

    @classmethod
    def from_flags(cls, values: Mapping[str, Any], **others: Any) -> Config:
        """Config from command-line values keyed by field name, as given on the command line
        (an inverted flag's value is whether the flag was given)."""
        kw: dict[str, Any] = {
            f.name: (not values[f.name]) if fl.inverted else values[f.name] for f, fl in flags()
        }
        return cls(**kw, **others)


def flag_of(f: Field[Any]) -> Flag | None:
    fl = f.metadata.get(_FLAG_KEY)
    return fl if isinstance(fl, Flag) else None


def flags() -> list[tuple[Field[Any], Flag]]:
    """The Config fields that are switches, in declaration order, with their flags."""
    return [(f, fl) for f in fields(Config) if (fl := flag_of(f)) is not None]


def cli_default(f: Field[Any], fl: Flag) -> Any:
    """The value the command line starts from (MISSING: the flag is required)."""
    if f.default is MISSING:
        return MISSING
    return (not f.default) if fl.inverted else f.default


_GO_DURATION = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str) -> float:
    """Seconds from "15", "15.5", "500ms" or "16m40s" (Go's time.ParseDuration units)."""
    s = text.strip()
    try:
        seconds = float(s)
    except ValueError:
        pos, seconds = 0, 0.0
        for m in _GO_DURATION.finditer(s):
            if m.start() != pos:
                break
            seconds += float(m[1]) * _GO_UNITS[m[2]]
            pos = m.end()
        if pos == 0 or pos != len(s):
            raise ValueError(
                f"invalid duration {text!r}: seconds (15) or a Go duration (500ms, 16m40s)"
            ) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {text!r}: must be a finite, non-negative time")
    return seconds


def format_duration(seconds: float) -> str:
    return f"{seconds:g}s"


def markdown_table() -> str:
    """The switch table of docs/controller.md (a unit test keeps the two equal)."""
    rows = ["| flag | env | default | effect |", "|---|---|---|---|"]
    for f, fl in flags():
        default = cli_default(f, fl)
        if default is MISSING:
            shown = "required"
        elif fl.duration:
            shown = format_duration(default)
        elif isinstance(default, bool):
            shown = "on" if default else "off"
        elif default in (None, ""):
            shown = ""
        else:
            shown = str(default)
        if isinstance(default, bool):
            arg = ""
        elif fl.duration:
            arg = " DURATION"
        else:
            arg = " N" if f.type in (int, "int") else " TEXT"
        rows.append(f"| `{fl.option}{arg}` | `{fl.envvar}` | {shown} | {fl.help} |")
    return "\n".join(rows) + "\n"


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


if __name__ == "__main__":
    print(markdown_table(), end="")
