"""API faults a test injects (POST /_testbed/faults): for a while, a share of the ELBv2 calls
get an error AWS gives under load instead of an answer.

`throttling`: 400 Throttling "Rate exceeded", what ELBv2 answers a caller over its rate (as
aws-load-balancer-controller users report it, e.g. kubernetes-sigs/aws-load-balancer-controller
#1871, #3167); `unavailable`: 503 ServiceUnavailable. By default only calls whose User-Agent is
aws-load-balancer-controller's (`elbv2.k8s.aws/`) are hit, so the testbed's own reads go on.
Nothing is changed by a refused call.

A fault may be scoped to target groups (`target_group_arn`, like POST /_testbed/config): then
only calls that name one of them are hit, so runs sharing the fake AWS each get their own
fault (one per scope; a new one for the same scope replaces it).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from testbed.fakeaws.api.errors import AwsError, service_unavailable

ERRORS = {
    "throttling": lambda: AwsError("Throttling", "Rate exceeded", 400),
    "unavailable": service_unavailable,
}
CONTROLLER_USER_AGENT = "elbv2.k8s.aws/"


@dataclass
class ApiFault:
    error: str
    share: float
    until: float  # time.monotonic()
    callers: str = "controller"  # or "any"
    target_group_arns: tuple[str, ...] = ()  # empty: every call
    seen: int = 0
    refused: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)


Scope = frozenset[str]


def scope_of(value: Any) -> Scope:
    """`target_group_arn` of a request (a string, comma-separated or a list) as a scope."""
    if value is None or value == "":
        return frozenset()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(a, str) and a.strip() for a in items):
        raise ValueError("target_group_arn must be an ARN, comma-separated ARNs or a list")
    return frozenset(a.strip() for a in items)


def named_groups(form: dict[str, str]) -> set[str]:
    """The target groups an ELBv2 call names (TargetGroupArn, TargetGroupArns.member.N)."""
    return {v for k, v in form.items()
            if k == "TargetGroupArn" or k.startswith("TargetGroupArns.member.")}


class ApiFaults:
    """The active faults, at most one per scope, checked on every ELBv2 call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[Scope, ApiFault] = {}

    def set(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start a fault from a request body; ValueError names what is wrong."""
        error = str(body.get("error", "throttling"))
        if error not in ERRORS:
            raise ValueError(f"error must be one of {', '.join(ERRORS)}, got {error!r}")
        share = float(body.get("share", 1.0))
        seconds = float(body.get("seconds", 0))
        callers = str(body.get("callers", "controller"))
        if not 0 < share <= 1 or not 0 < seconds <= 3600 or callers not in ("controller", "any"):
            raise ValueError("share must be in (0, 1], seconds in (0, 3600], callers "
                             "'controller' or 'any'")
        scope = scope_of(body.get("target_group_arn"))
        with self._lock:
            self._faults[scope] = ApiFault(error, share, time.monotonic() + seconds, callers,
                                           tuple(sorted(scope)))
            return self._state(scope)

    def clear(self, scope: Scope = frozenset()) -> dict[str, Any]:
        """End the fault of `scope` (unscoped: the fault on every call); its last state."""
        with self._lock:
            out = self._state(scope)
            self._faults.pop(scope, None)
        return out

    def state(self, scope: Scope = frozenset()) -> dict[str, Any]:
        with self._lock:
            return self._state(scope)

    def _state(self, scope: Scope) -> dict[str, Any]:
        f = self._faults.get(scope)
        if f is None:
            return {"active": False}
        d = {k: v for k, v in asdict(f).items() if k not in ("rng", "until")}
        return {**d, "active": time.monotonic() < f.until,
                "seconds_left": max(0.0, f.until - time.monotonic())}

    def check(self, user_agent: str, form: dict[str, str]) -> AwsError | None:
        """The error this call gets, or None (a call in two scopes: the first that applies)."""
        with self._lock:
            if not self._faults:
                return None
            named = named_groups(form)
            now = time.monotonic()
            for scope, f in self._faults.items():
                if now >= f.until or (scope and not scope & named):
                    continue
                if f.callers == "controller" and not user_agent.startswith(
                        CONTROLLER_USER_AGENT):
                    continue
                f.seen += 1
                if f.rng.random() >= f.share:
                    return None
                f.refused += 1
                return ERRORS[f.error]()
        return None
