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

from controller import presets
from controller.presets import LATEST

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
    # Set by --behave-like (controller/presets.py) unless given: a bool reads "--name" / "--off".
    preset: bool = False
    off: str = ""
    choices: tuple[str, ...] = ()

    @property
    def option(self) -> str:
        return "--" + self.name

    @property
    def options(self) -> str:
        """The declaration typer takes: "--x" or, for a two-way switch, "--x/--y"."""
        return f"--{self.name}/--{self.off}" if self.off else self.option

    @property
    def envvar(self) -> str:
        return ENV_PREFIX + self.name.upper().replace("-", "_")


def flag(
    name: str,
    help: str,
    *,
    inverted: bool = False,
    duration: bool = False,
    off: str = "",
    choices: tuple[str, ...] = (),
    preset: bool = False,
) -> dict[str, Any]:
    """Field metadata that makes a Config field the switch `--<name>` / `ALBC_<NAME>`."""
    return {_FLAG_KEY: Flag(name, help, inverted, duration, preset, off, choices)}


def behaviour(
    name: str, help: str, *, off: str = "", choices: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A switch whose value comes from the --behave-like release unless given."""
    return flag(name, help, off=off, choices=choices, preset=True)


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
    # Release behaviour (docs/controller.md "Behave like a release"): the defaults here are the
    # latest preset's, and a unit test keeps them equal.
    behave_like: str = field(
        default=LATEST,
        metadata=flag(
            "behave-like",
            "Upstream ALBC release (vX.Y.Z) whose behaviour the switches marked 'preset' take;"
            " a preset switch given explicitly wins.",
        ),
    )
    pod_watch: bool = field(
        default=True,
        metadata=behaviour(
            "pod-watch", "Gated pod changes reconcile their bindings (v3.4.0+).", off="no-pod-watch"
        ),
    )
    backoff_requeue: bool = field(
        default=False,
        metadata=behaviour(
            "backoff-requeue",
            "A pending gate past `initial`, or a potential-ready pod, requeues through the"
            " exponential backoff, not the fixed period (before v2.9.1).",
            off="fixed-requeue",
        ),
    )
    rate_limit_bucket: bool = field(
        default=False,
        metadata=behaviour(
            "rate-limit-bucket",
            "Rate-limited requeues also wait for a shared 10 qps / burst 100 bucket"
            " (controller-runtime's default limiter, v2.2.0).",
            off="no-rate-limit-bucket",
        ),
    )
    missing_pod: str = field(
        default="skip",
        metadata=behaviour(
            "missing-pod",
            "An endpoint whose pod is not in the cache: error (fails the reconcile if ready,"
            " v2.2), skip, or poll (skip and requeue, v2.6.0-v3.2.0).",
            choices=("error", "skip", "poll"),
        ),
    )
    potential_ready: bool = field(
        default=False,
        metadata=behaviour(
            "potential-ready",
            "A gated pod not yet ContainersReady keeps the binding polling (before v3.4.0).",
            off="no-potential-ready",
        ),
    )
    not_ready_needs_gate: bool = field(
        default=False,
        metadata=behaviour(
            "not-ready-needs-gate",
            "A not-ready endpoint is registered only if its pod has this binding's gate and"
            " is ContainersReady, on any node (v2.2).",
            off="not-ready-without-gate",
        ),
    )
    ready_nil_is_ready: bool = field(
        default=True,
        metadata=behaviour(
            "ready-nil-is-ready",
            "An EndpointSlice endpoint without `ready` counts as ready (v2.9.1+).",
            off="ready-nil-is-not-ready",
        ),
    )
    checkpoint: str = field(
        default="gate-flip",
        metadata=behaviour(
            "checkpoint",
            "Skip a reconcile whose checkpoint is unchanged: off (before v2.9.1),"
            " potential-ready (unless a pod may turn ready, v2.9.1-v3.2.0) or gate-flip (unless"
            " a gate still needs flipping, v3.4.0+).",
            choices=("off", "potential-ready", "gate-flip"),
        ),
    )
    deferred_reconcile: str = field(
        default="sync-period",
        metadata=behaviour(
            "deferred-reconcile",
            "Full reconcile some time after a skipped one: off, stale-checkpoint (only if the"
            " checkpoint is older than the sync period, v2.9.1-v2.12) or sync-period (once per"
            " binding per sync period and after every start, v2.14.0+).",
            choices=("off", "stale-checkpoint", "sync-period"),
        ),
    )
    fail_open: bool = field(
        default=True,
        metadata=behaviour(
            "endpoints-fail-open",
            "EndpointsFailOpen: with no ready endpoint, use those on nodes whose Ready is"
            " Unknown (v2.5.0+).",
            off="disable-endpoints-fail-open",
        ),
    )
    gates_true_on_delete: bool = field(
        default=True,
        metadata=behaviour(
            "gates-true-on-delete",
            "A deleted binding (or missing Service) forces its pods' gates True (v2.4.1+).",
            off="no-gates-true-on-delete",
        ),
    )
    endpoint_slices: bool = field(
        default=True,
        metadata=behaviour(
            "enable-endpoint-slices",
            "Read EndpointSlices (v2.14.0+ default); off: core/v1 Endpoints.",
            off="legacy-endpoints",
        ),
    )
    address_type_filter: bool = field(
        default=True,
        metadata=behaviour(
            "address-type-filter",
            "Only EndpointSlices of the binding's address type (v3.4.1+).",
            off="no-address-type-filter",
        ),
    )
    unhealthy_draining: bool = field(
        default=True,
        metadata=behaviour(
            "unhealthy-draining",
            "Targets in unhealthy.draining are set aside like draining ones (v2.7.0+).",
            off="no-unhealthy-draining",
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
    # ALBC hard-codes these (controllers/elbv2/targetgroupbinding_deferred_reconciler.go
    # defaultDelayedReconcileTime 30 min, defaultMaxJitter 15 min); flags here so tests and
    # scenarios can see a deferred reconcile in seconds.
    deferred_delay_seconds: float = field(
        default=1800.0,
        metadata=flag(
            "deferred-reconcile-delay",
            "Delay of the deferred full reconcile after a skipped one.",
            duration=True,
        ),
    )
    deferred_jitter_seconds: float = field(
        default=900.0,
        metadata=flag(
            "deferred-reconcile-jitter",
            "Random extra delay (0 to this) of the deferred full reconcile.",
            duration=True,
        ),
    )
    # Not an ALBC setting: the race of #3299 (an EndpointSlice event before the pod reaches the
    # controller's pod cache) made wide enough to happen on every new pod.
    pod_cache_delay_seconds: float = field(
        default=0.0,
        metadata=flag(
            "pod-cache-delay",
            "Hold every pod event this long before it reaches the controller's pod cache"
            " (testing: widens the race of ALBC #3299).",
            duration=True,
        ),
    )
    watch_namespace: str = field(
        default="",
        metadata=flag(
            "watch-namespace",
            "Namespace whose objects the controller watches (empty: all namespaces).",
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

    def __post_init__(self) -> None:
        presets.modelled(self.behave_like)  # raises ValueError for an unknown release
        for f, fl in flags():
            value = getattr(self, f.name)
            if fl.choices and value not in fl.choices:
                raise ValueError(
                    f"{fl.option} {value!r}: expected one of {', '.join(fl.choices)}"
                )

    @classmethod
    def from_flags(cls, values: Mapping[str, Any], **others: Any) -> Config:
        """Config from command-line values keyed by field name, as given on the command line
        (an inverted flag's value is whether the flag was given; a preset switch not given is
        None and takes the --behave-like release's value)."""
        release = presets.settings(values.get("behave_like") or LATEST)
        kw: dict[str, Any] = {}
        for f, fl in flags():
            value = values[f.name]
            if fl.inverted:
                value = not value
            elif fl.preset and value is None:
                value = release[f.name]
            kw[f.name] = value
        return cls(**kw, **others)

    @classmethod
    def behaving_like(cls, version: str, **others: Any) -> Config:
        """A Config with every preset switch as `version` had it (others as given)."""
        return cls(**{"behave_like": version, **presets_of(version), **others})


def presets_of(version: str) -> dict[str, Any]:
    """The Config fields --behave-like sets, as `version` had them."""
    release = presets.settings(version)
    return {f.name: release[f.name] for f, fl in flags() if fl.preset}


def flag_of(f: Field[Any]) -> Flag | None:
    fl = f.metadata.get(_FLAG_KEY)
    return fl if isinstance(fl, Flag) else None


def flags() -> list[tuple[Field[Any], Flag]]:
    """The Config fields that are switches, in declaration order, with their flags."""
    return [(f, fl) for f in fields(Config) if (fl := flag_of(f)) is not None]


def cli_default(f: Field[Any], fl: Flag) -> Any:
    """The value the command line starts from (MISSING: the flag is required; None: a preset
    switch, filled from --behave-like)."""
    if f.default is MISSING:
        return MISSING
    if fl.preset:
        return None
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
        default = f.default if fl.preset else cli_default(f, fl)
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
        if fl.preset:
            shown = f"preset ({LATEST}: {shown})"
        if isinstance(default, bool):
            arg = ""
        elif fl.duration:
            arg = " DURATION"
        elif fl.choices:
            arg = " " + "|".join(fl.choices)
        else:
            arg = " N" if f.type in (int, "int") else " TEXT"
        opts = f"`{fl.option}`" + (f" / `--{fl.off}`" if fl.off else "")
        if arg:
            opts = f"`{fl.option}{arg}`"
        rows.append(f"| {opts} | `{fl.envvar}` | {shown} | {fl.help} |")
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
