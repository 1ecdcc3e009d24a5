"""Demo app settings, one field per knob a scenario can turn."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum


class OnSigterm(StrEnum):
    """What the app does on SIGTERM; each choice reproduces a real-world app style."""

    exit = "exit"  # die at once: in-flight requests are cut (app without a handler)
    drain = "drain"  # stop accepting, finish in-flight requests, then exit
    ignore = "ignore"  # keep serving until the kubelet's SIGKILL


@dataclass(frozen=True)
class DemoConfig:
    """Knobs of the demo app (flags and DEMO_* env vars map onto these fields)."""

    port: int = 8080
    host: str = "0.0.0.0"
    startup_delay: float = 0.0
    ready_after: float = 0.0
    latency_ms: float = 0.0
    keepalive_timeout: float = 75.0
    on_sigterm: OnSigterm = OnSigterm.drain
    drain_seconds: float = 5.0
    health_code: int = 200
    # /healthz answers 503 until this many seconds after listening (a slow-warming app whose
    # ALB health check fails at first while its kubelet readiness probe already passes)
    healthy_after: float = 0.0
    pod: str = field(default_factory=lambda: os.environ.get("POD_NAME", "local"))
    version: str = field(default_factory=lambda: os.environ.get("APP_VERSION", "v0"))


# Env var names; the scenario renderer uses the same table so they cannot drift apart.
ENV_VARS: dict[str, str] = {
    "port": "DEMO_PORT",
    "startup_delay": "DEMO_STARTUP_DELAY",
    "ready_after": "DEMO_READY_AFTER",
    "latency_ms": "DEMO_LATENCY_MS",
    "keepalive_timeout": "DEMO_KEEPALIVE_TIMEOUT",
    "on_sigterm": "DEMO_ON_SIGTERM",
    "drain_seconds": "DEMO_DRAIN_SECONDS",
    "health_code": "DEMO_HEALTH_CODE",
    "healthy_after": "DEMO_HEALTHY_AFTER",
}
