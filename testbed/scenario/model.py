"""Typed scenario objects, built only from validated, default-filled data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal


@dataclass(frozen=True)
class AppSpec:
    replicas: int
    readiness_gate: bool
    pre_stop_sleep_seconds: int
    termination_grace_period_seconds: int
    on_sigterm: Literal["exit", "drain", "ignore"]
    drain_seconds: float
    keep_alive_timeout_seconds: float
    startup_delay_seconds: float
    ready_after_seconds: float
    latency_ms: float
    health_code: int
    healthy_after_seconds: float


@dataclass(frozen=True)
class RolloutSpec:
    max_surge: int | str
    max_unavailable: int | str
    count: int
    timeout_seconds: int
    new_app: dict[str, Any]  # app fields (snake_case) that differ in the rolled-out version


@dataclass(frozen=True)
class HealthCheckSpec:
    path: str
    interval_seconds: int
    timeout_seconds: int
    healthy_threshold: int
    unhealthy_threshold: int
    matcher: str


@dataclass(frozen=True)
class TargetGroupSpec:
    health_check: HealthCheckSpec
    deregistration_delay_seconds: int
    slow_start_seconds: int
    attach_listener: bool


@dataclass(frozen=True)
class AlbSpec:
    register_delay_seconds: float
    deregister_delay_seconds: float
    idle_timeout_seconds: int
    algorithm: Literal["round_robin", "least_outstanding_requests"]


@dataclass(frozen=True)
class ControllerSpec:
    requeue_seconds: float
    pod_watch: bool
    backoff_requeue: bool
    legacy_endpoints: bool


@dataclass(frozen=True)
class LoadSpec:
    rate: float
    duration_seconds: float | None  # None: until the rollout is done, plus margin_seconds
    margin_seconds: float
    max_duration_seconds: float
    timeout_seconds: float

    @property
    def until_rollout_done(self) -> bool:
        return self.duration_seconds is None


@dataclass(frozen=True)
class ExpectSpec:
    errors: Literal["none", "expected"]
    classes: tuple[str, ...]
    min_errors: int
    rollout_stalls: bool
    min_rollout_seconds: float | None
    max_rollout_seconds: float | None
    min_registration_lag_seconds: float | None
    max_registration_lag_seconds: float | None


@dataclass(frozen=True)
class Scenario:
    """A validated scenario; see docs/scenarios.md for every field."""

    name: str
    description: str
    app: AppSpec
    rollout: RolloutSpec
    target_group: TargetGroupSpec
    alb: AlbSpec
    controller: ControllerSpec
    load: LoadSpec
    expect: ExpectSpec

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def app_for(self, new_version: bool) -> AppSpec:
        """The app settings of the first (False) or rolled-out (True) version."""
        return replace(self.app, **self.rollout.new_app) if new_version else self.app


def _snake(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        s = "".join("_" + c.lower() if c.isupper() else c for c in k)
        out[s] = v
    return out


def from_data(d: dict[str, Any]) -> Scenario:
    """Build the typed scenario from validated, filled data (camelCase keys)."""
    tg = dict(d["targetGroup"])
    hc = HealthCheckSpec(**_snake(tg.pop("healthCheck")))
    load = _snake(d["load"])
    if load["duration_seconds"] == "untilRolloutDone":
        load["duration_seconds"] = None
    else:
        load["duration_seconds"] = float(load["duration_seconds"])
    ro = _snake(d["rollout"])
    ro["new_app"] = _snake(ro["new_app"])
    exp = _snake(d["expect"])
    exp["classes"] = tuple(str(c) for c in exp["classes"])
    return Scenario(
        name=d["name"], description=d["description"],
        app=AppSpec(**_snake(d["app"])),
        rollout=RolloutSpec(**ro),
        target_group=TargetGroupSpec(health_check=hc, **_snake(tg)),
        alb=AlbSpec(**_snake(d["alb"])),
        controller=ControllerSpec(**_snake(d["controller"])),
        load=LoadSpec(**load),
        expect=ExpectSpec(**exp),
    )
