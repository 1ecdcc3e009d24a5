"""Release presets: which upstream aws-load-balancer-controller release the controller behaves like.

`--behave-like vX.Y.Z` sets every behaviour switch (the Config fields declared with
`preset=True`) to what that release did; a switch given on the command line wins. Each preset
below lists only what changed from the one before, with the upstream change that did it. The
evidence, file and line at each release tag, is docs/controller-releases.md.

Citations are kubernetes-sigs/aws-load-balancer-controller pull requests; "RM" is
pkg/targetgroupbinding/resource_manager.go, "ER" pkg/backend/endpoint_resolver.go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# The pod mutator webhook's failurePolicy is part of the release's install (helm chart), not a
# controller flag: `alb-controller gen-webhook-manifests --behave-like` reads it from here.
POD_FAILURE_POLICY = "pod_failure_policy"


@dataclass(frozen=True)
class Preset:
    """One modelled release: the settings that changed at it, and why."""

    version: str
    changes: dict[str, Any]
    why: str


PRESETS: tuple[Preset, ...] = (
    Preset(
        "v2.2.0",
        {
            # controller-runtime v0.6.3's DefaultControllerRateLimiter: max of the per-key
            # exponential 5 ms..1000 s and a shared 10 qps / burst 100 bucket (no RateLimiter
            # option in controllers/elbv2/targetgroupbinding_controller.go).
            "rate_limit_bucket": True,
            # RM:131-140: a fixed 15 s only while targets are `initial` or just registered,
            # else a plain requeue through the rate limiter.
            "backoff_requeue": True,
            # ER:89-90: a ready address whose pod is not cached fails the reconcile.
            "missing_pod": "error",
            "potential_ready": True,
            # ER:108-113: a not-ready address counts only with this binding's gate and
            # ContainersReady; no node check.
            "not_ready_needs_gate": True,
            "ready_nil_is_ready": False,  # Endpoints only: no EndpointSlice conditions
            "checkpoint": "off",
            "deferred_reconcile": "off",
            "fail_open": False,  # no EndpointsFailOpen gate yet
            "gates_true_on_delete": False,  # RM Cleanup only deregisters
            "pod_watch": False,
            "endpoint_slices": False,  # Endpoints only
            "address_type_filter": False,
            "unhealthy_draining": False,  # IsDraining(): State == draining
            POD_FAILURE_POLICY: "Fail",  # config/webhook/manifests.yaml
        },
        "first release modelled",
    ),
    Preset(
        "v2.2.1",
        {"rate_limit_bucket": False},
        "#2029: ItemExponentialFailureRateLimiter(5ms, --targetgroupbinding-max-exponential-"
        "backoff-delay), no shared bucket",
    ),
    Preset(
        "v2.4.1",
        {
            "missing_pod": "skip",
            "not_ready_needs_gate": False,
            "gates_true_on_delete": True,
        },
        "#2546: a pod missing from the cache is skipped, a ContainersReady pod on a Ready node"
        " is registered without the gate, EndpointsFailOpen (off), EndpointSlice ready=nil is"
        " not ready; #2524: gates forced True when a binding is deleted",
    ),
    Preset("v2.5.0", {"fail_open": True}, "#3078: EndpointsFailOpen on by default"),
    Preset(
        "v2.6.0",
        {"missing_pod": "poll"},
        "#3305 (fixes #3299): a pod missing from the cache makes the reconcile poll",
    ),
    Preset(
        "v2.7.0",
        {"unhealthy_draining": True},
        "#3548: unhealthy.draining targets set aside like draining ones",
    ),
    Preset(
        "v2.9.1",
        {
            "backoff_requeue": False,
            "ready_nil_is_ready": True,
            "checkpoint": "potential-ready",
            "deferred_reconcile": "stale-checkpoint",
        },
        "#3861 (cherry-picked, #3887): every pending requeue at the fixed 15 s, ready=nil is"
        " ready, the checkpoint and its deferred full reconcile",
    ),
    Preset("v2.10.0", {}, "#3861 on the main line (same behaviour as v2.9.1)"),
    Preset(
        "v2.12.0",
        {POD_FAILURE_POLICY: "Ignore"},
        "#4062, #4063: the pod webhook fails open (failurePolicy Ignore)",
    ),
    Preset(
        "v2.14.0",
        {"endpoint_slices": True, "deferred_reconcile": "sync-period"},
        "#4353: EndpointSlices by default; #4224 (v2.13.3): one deferred full reconcile per"
        " binding per sync period and after every start",
    ),
    Preset(
        "v3.2.0",
        {},
        "#4617: --targetgroupbinding-requeue-duration; controller-runtime's priority queue"
        " (one waiting entry per key, as before)",
    ),
    Preset(
        "v3.4.0",
        {
            "pod_watch": True,
            "missing_pod": "skip",
            "potential_ready": False,
            "checkpoint": "gate-flip",
        },
        "#4678: gated pod events reconcile, no polling for missing or not-yet-ready pods;"
        " #4737: no checkpoint early return while a gate still needs flipping",
    ),
    Preset(
        "v3.4.1",
        {"address_type_filter": True},
        "#4783: only EndpointSlices of the binding's address type",
    ),
    Preset("v3.5.0", {}, "latest release modelled"),
)
LATEST = PRESETS[-1].version
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")


def _tuple(version: str) -> tuple[int, int, int]:
    m = _VERSION.match(version.strip())
    if m is None:
        raise ValueError(f"invalid release {version!r}: expected vMAJOR.MINOR.PATCH, e.g. v2.4.1")
    return int(m[1]), int(m[2]), int(m[3])


def modelled(version: str) -> str:
    """The modelled release a version behaves as: the newest preset not newer than it (the
    presets sit at every release whose binding behaviour changed)."""
    want = _tuple(version)
    older = [p.version for p in PRESETS if _tuple(p.version) <= want]
    if not older:
        raise ValueError(
            f"release {version!r} is older than the oldest modelled release {PRESETS[0].version}"
        )
    return older[-1]


def settings(version: str) -> dict[str, Any]:
    """Every preset setting as `version` had it."""
    last = modelled(version)
    out: dict[str, Any] = {}
    for p in PRESETS:
        out.update(p.changes)
        if p.version == last:
            break
    return out


def markdown_table() -> str:
    """The preset table of docs/controller.md (a unit test keeps the two equal)."""
    rows = ["| release | changes | upstream |", "|---|---|---|"]
    for p in PRESETS:
        changed = ", ".join(f"`{k}={_shown(v)}`" for k, v in p.changes.items()) or "none"
        rows.append(f"| {p.version} | {changed} | {p.why} |")
    return "\n".join(rows) + "\n"


def _shown(v: Any) -> str:
    return ("on" if v else "off") if isinstance(v, bool) else str(v)
