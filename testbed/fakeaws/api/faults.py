"""API faults a test injects (POST /_testbed/faults): for a while, a share of the ELBv2 calls
get an error AWS gives under load instead of an answer.

`throttling`: 400 Throttling "Rate exceeded", what ELBv2 answers a caller over its rate (as
aws-load-balancer-controller users report it, e.g. kubernetes-sigs/aws-load-balancer-controller
#1871, #3167); `unavailable`: 503 ServiceUnavailable. By default only calls whose User-Agent is
aws-load-balancer-controller's (`elbv2.k8s.aws/`) are hit, so the testbed's own reads go on.
Nothing is changed by a refused call.
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
    seen: int = 0
    refused: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)


class ApiFaults:
    """The one active fault (a new one replaces it), checked on every ELBv2 call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fault: ApiFault | None = None

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
        with self._lock:
            self._fault = ApiFault(error, share, time.monotonic() + seconds, callers)
        return self.state()

    def clear(self) -> dict[str, Any]:
        with self._lock:
            out = self.state_locked()
            self._fault = None
        return out

    def state(self) -> dict[str, Any]:
        with self._lock:
            return self.state_locked()

    def state_locked(self) -> dict[str, Any]:
        f = self._fault
        if f is None:
            return {"active": False}
        d = {k: v for k, v in asdict(f).items() if k not in ("rng", "until")}
        return {**d, "active": time.monotonic() < f.until,
                "seconds_left": max(0.0, f.until - time.monotonic())}

    def check(self, user_agent: str) -> AwsError | None:
        """The error this call gets, or None."""
        with self._lock:
            f = self._fault
            if f is None or time.monotonic() >= f.until:
                return None
            if f.callers == "controller" and not user_agent.startswith(CONTROLLER_USER_AGENT):
                return None
            f.seen += 1
            if f.rng.random() >= f.share:
                return None
            f.refused += 1
        return ERRORS[f.error]()
