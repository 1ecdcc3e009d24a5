"""The demo app's knobs, declared once: the scenario's `app:` section, the
`testbed demoapp serve` flags and the DEMO_* env vars pods get all derive from DemoBehaviour."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from testbed.declare import Declared, Int, Num

ENV_PREFIX = "DEMO_"


class OnSigterm(StrEnum):
    """What the app does on SIGTERM; each choice reproduces a real-world app style."""

    exit = "exit"  # die at once: in-flight requests are cut (app without a handler)
    drain = "drain"  # stop accepting, finish in-flight requests, then exit
    ignore = "ignore"  # keep serving until the kubelet's SIGKILL


class DemoBehaviour(Declared):
    """How the demo app behaves; one field per knob a scenario can turn."""

    on_sigterm: Literal["exit", "drain", "ignore"] = Field(
        "drain", description="`exit`: die at once (in-flight requests are cut); `drain`: close "
        "the listener, close idle keep-alive connections, finish in-flight requests (at most "
        "`drainSeconds`), exit 0; `ignore`: keep serving until SIGKILL.")
    drain_seconds: Annotated[Num, Field(ge=0, le=3600)] = Field(
        5.0, description="`drain` only: longest wait for in-flight requests.")
    keep_alive_timeout_seconds: Annotated[Num, Field(ge=0.1, le=4000)] = Field(
        75.0, description="The app closes idle keep-alive connections after this; shorter than "
        "`alb.idleTimeoutSeconds` invites the 502 race.")
    startup_delay_seconds: Annotated[Num, Field(ge=0, le=600)] = Field(
        0.0, description="Sleep before listening (connection refused meanwhile).")
    ready_after_seconds: Annotated[Num, Field(ge=0, le=600)] = Field(
        0.0, description="`/ready` answers 503 for this long after listening.")
    # Every pod's readiness failing at once takes every target out of service, and fail-open
    # does not help (aws-load-balancer-controller #3711).
    unready_after_seconds: Annotated[Num, Field(ge=0, le=3600)] = Field(
        0.0, description="`/ready` answers 503 from this many seconds after listening on "
        "(0: never), as if a dependency went away (#3711).")
    # The same outage told to the ALB instead of the kubelet: every target unhealthy, so the
    # ALB fails open and keeps routing to all of them (what #3711 expected).
    unhealthy_after_seconds: Annotated[Num, Field(ge=0, le=3600)] = Field(
        0.0, description="`/healthz` answers 503 from this many seconds after listening on "
        "(0: never), as if a dependency went away, told to the ALB health check (#3711).")
    latency_ms: Annotated[Num, Field(ge=0, le=600000)] = Field(
        0.0, description="Added latency of `GET /` (and of `/api` and below, which answer "
        "as `/`).")
    health_code: Annotated[Int, Field(ge=100, le=599)] = Field(
        200, description="Status of `/healthz` (the default health check path); e.g. 500 "
        "makes ELB health checks fail while `/ready` passes.")
    # A slow-warming app: its ALB health check fails at first while its kubelet readiness
    # probe on /ready already passes.
    healthy_after_seconds: Annotated[Num, Field(ge=0, le=600)] = Field(
        0.0, description="`/healthz` answers 503 until this many seconds after the app "
        "listens (a slow-warming app).")


class DemoServe(DemoBehaviour):
    """`testbed demoapp serve`: the behaviour plus where to listen."""

    port: Annotated[Int, Field(ge=0, le=65535)] = Field(8080, description="Listening port.")
    host: str = Field("0.0.0.0", description="Listening address.")


@dataclass(frozen=True)
class DemoConfig:
    """What the running app needs: its settings plus who it is (from the downward API)."""

    settings: DemoServe = field(default_factory=DemoServe)
    pod: str = field(default_factory=lambda: os.environ.get("POD_NAME", "local"))
    version: str = field(default_factory=lambda: os.environ.get("APP_VERSION", "v0"))


def env_for(behaviour: DemoBehaviour) -> dict[str, str]:
    """DEMO_* variables that make `testbed demoapp serve` behave as `behaviour` says."""
    return {ENV_PREFIX + name.upper(): str(getattr(behaviour, name))
            for name in DemoBehaviour.model_fields}
