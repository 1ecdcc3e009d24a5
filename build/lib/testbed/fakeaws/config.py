"""Runtime settings shared by the API and the engine process."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

AWS_MIN_HEALTH_CHECK_INTERVAL = 5.0

# "realistic" propagation delays. AWS publishes no figure for ALB; reports range from tens of
# seconds to ~2 min (EKS best practices: "a minute or two" to stop taking new requests; ALBC
# #3270: still routing ~2 min after deregistration; NLB registration 90-180 s, #1834). We pick
# values in the lower half of that range so scenarios stay short while still exposing a
# missing preStop sleep: register 15 s, deregister 30 s.
PRESETS: dict[str, dict[str, float]] = {
    "realistic": {"register_delay": 15.0, "deregister_delay": 30.0},
    "instant": {"register_delay": 0.0, "deregister_delay": 0.0},
}


@dataclass
class EngineConfig:
    """Knobs of the engine (data plane + health checker); all times in seconds."""

    listener_host: str = "127.0.0.1"
    register_delay: float = 0.0
    deregister_delay: float = 0.0
    min_health_check_interval: float = AWS_MIN_HEALTH_CHECK_INTERVAL
    connect_timeout: float = 10.0
    event_buffer: int = 100_000
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def update(self, values: dict[str, Any]) -> None:
        """Apply a partial update (POST /_testbed/config); unknown keys are rejected."""
        for key in ("register_delay", "deregister_delay", "connect_timeout"):
            if key in values:
                v = float(values[key])
                if v < 0:
                    raise ValueError(f"{key} must be >= 0")
                setattr(self, key, v)
        unknown = set(values) - {"register_delay", "deregister_delay", "connect_timeout"}
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
