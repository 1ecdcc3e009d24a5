"""ELBv2 access: a thin boto3 wrapper with metrics/errors, and the cached targets manager.

The controller only needs three ELBv2 operations (DescribeTargetHealth, RegisterTargets,
DeregisterTargets). The cache mirrors ALBC's cached targets manager: per target group, TTL
5 min, refreshes only targets that are not healthy, and register/deregister update it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from controller import metrics
from controller.config import Config
from controller.log import get_logger

CHUNK_SIZE = 200
log = get_logger("aws")


class AWSError(Exception):
    """An ELBv2 error with its AWS code (TargetGroupNotFound, Throttling, ...)."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.operation = operation
        self.code = code
        self.message = message


class ELBv2API(Protocol):
    """The subset of ELBv2 the controller calls; boto3-shaped dicts in and out."""

    def describe_target_health(
        self, tg_arn: str, targets: Sequence[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]: ...

    def register_targets(self, tg_arn: str, targets: Sequence[dict[str, Any]]) -> None: ...

    def deregister_targets(self, tg_arn: str, targets: Sequence[dict[str, Any]]) -> None: ...


def call(op: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """One AWS API call with the controller's metrics; errors as AWSError (its AWS code)."""
    from botocore.exceptions import BotoCoreError, ClientError

    start = time.monotonic()
    try:
        out = fn(**kwargs)
    except ClientError as e:
        err = e.response.get("Error", {})
        code = str(err.get("Code", "Unknown"))
        metrics.AWS_CALLS.labels(op, code).inc()
        raise AWSError(op, code, str(err.get("Message", ""))) from e
    except BotoCoreError as e:
        metrics.AWS_CALLS.labels(op, type(e).__name__).inc()
        raise AWSError(op, type(e).__name__, str(e)) from e
    finally:
        metrics.AWS_DURATION.labels(op).observe(time.monotonic() - start)
    metrics.AWS_CALLS.labels(op, "").inc()
    return out


# ALBC replaces the SDK's User-Agent with "elbv2.k8s.aws/<version>" (pkg/aws/aws_config.go);
# the same prefix lets an API log tell the controller's calls from other clients'.
USER_AGENT = "elbv2.k8s.aws/alb-testbed"


def make_client(service: str, endpoint_url: str, region: str = Config.region) -> Any:
    """A boto3 client on an explicit (fake) endpoint with dummy credentials. No client-side
    parameter validation: the API judges values, as it does for upstream's Go SDK v2, which
    sends what it is given (a fake AWS started with a lower minimum health-check interval
    accepts the faster values scenarios use)."""
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - dummy, never real
        config=BotoConfig(
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
            parameter_validation=False,
            user_agent=USER_AGENT,
        ),
    )


class Boto3ELBv2:
    """ELBv2API over boto3 against an explicit endpoint with dummy credentials."""

    def __init__(self, endpoint_url: str, region: str = Config.region, client: Any = None) -> None:
        self.client = client if client is not None else make_client("elbv2", endpoint_url,
                                                                    region)

    def _call(self, op: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        return call(op, fn, **kwargs)

    def describe_target_health(
        self, tg_arn: str, targets: Sequence[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        kw: dict[str, Any] = {"TargetGroupArn": tg_arn}
        if targets:
            kw["Targets"] = [dict(t) for t in targets]
        out = self._call("DescribeTargetHealth", self.client.describe_target_health, **kw)
        return list(out.get("TargetHealthDescriptions", []))

    def register_targets(self, tg_arn: str, targets: Sequence[dict[str, Any]]) -> None:
        self._call(
            "RegisterTargets",
            self.client.register_targets,
            TargetGroupArn=tg_arn,
            Targets=[dict(t) for t in targets],
        )

    def deregister_targets(self, tg_arn: str, targets: Sequence[dict[str, Any]]) -> None:
        self._call(
            "DeregisterTargets",
            self.client.deregister_targets,
            TargetGroupArn=tg_arn,
            Targets=[dict(t) for t in targets],
        )


@dataclass
class TargetInfo:
    """A registered target and its last known health (None = unknown, e.g. just registered)."""

    id: str
    port: int
    health: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return f"{self.id}:{self.port}"

    @property
    def state(self) -> str:
        return str((self.health or {}).get("State", ""))

    def is_healthy(self) -> bool:
        return self.state == "healthy"

    def is_draining(self) -> bool:
        return self.state == "draining"

    def is_initial(self) -> bool:
        return self.state == "initial"

    def is_not_registered(self) -> bool:
        return (
            self.state == "unused" and (self.health or {}).get("Reason") == "Target.NotRegistered"
        )

    def description(self) -> dict[str, Any]:
        return {"Id": self.id, "Port": self.port}


def _from_description(d: dict[str, Any]) -> TargetInfo:
    t = d.get("Target", {})
    return TargetInfo(str(t.get("Id")), int(t.get("Port", 0)), d.get("TargetHealth"))


@dataclass
class _CacheEntry:
    targets: dict[str, TargetInfo]
    fetched_at: float
    lock: threading.Lock = field(default_factory=threading.Lock)


class TargetsManager:
    """Lists/registers/deregisters targets of one or more target groups, with the health cache.

    ttl <= 0 disables the cache (every ListTargets is a full DescribeTargetHealth).
    """

    def __init__(
        self, api: ELBv2API, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.api = api
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, _CacheEntry] = {}
        self._lock = threading.Lock()

    def invalidate(self, tg_arn: str) -> None:
        with self._lock:
            self._cache.pop(tg_arn, None)

    def list_targets(self, tg_arn: str) -> list[TargetInfo]:
        now = self.clock()
        with self._lock:
            entry = self._cache.get(tg_arn)
        if entry is None or self.ttl <= 0 or now - entry.fetched_at >= self.ttl:
            descs = self.api.describe_target_health(tg_arn)
            targets = {t.key: t for t in map(_from_description, descs)}
            entry = _CacheEntry(targets, now)
            with self._lock:
                self._cache[tg_arn] = entry
            return [TargetInfo(t.id, t.port, t.health) for t in targets.values()]
        with entry.lock:
            unhealthy = [t for t in entry.targets.values() if not t.is_healthy()]
            if unhealthy:
                descs = self.api.describe_target_health(
                    tg_arn, [t.description() for t in unhealthy]
                )
                for t in map(_from_description, descs):
                    if t.key not in entry.targets:
                        continue
                    if t.is_not_registered():
                        del entry.targets[t.key]
                    else:
                        entry.targets[t.key].health = t.health
            return [TargetInfo(t.id, t.port, t.health) for t in entry.targets.values()]

    def register_targets(self, tg_arn: str, targets: Sequence[TargetInfo]) -> None:
        for i in range(0, len(targets), CHUNK_SIZE):
            chunk = list(targets[i : i + CHUNK_SIZE])
            self.api.register_targets(tg_arn, [t.description() for t in chunk])
            metrics.TARGET_CHANGES.labels("register").inc(len(chunk))
            with self._lock:
                entry = self._cache.get(tg_arn)
            if entry is not None:
                with entry.lock:
                    for t in chunk:
                        entry.targets[t.key] = TargetInfo(t.id, t.port, None)

    def deregister_targets(self, tg_arn: str, targets: Sequence[TargetInfo]) -> None:
        for i in range(0, len(targets), CHUNK_SIZE):
            chunk = list(targets[i : i + CHUNK_SIZE])
            self.api.deregister_targets(tg_arn, [t.description() for t in chunk])
            metrics.TARGET_CHANGES.labels("deregister").inc(len(chunk))
            with self._lock:
                entry = self._cache.get(tg_arn)
            if entry is not None:
                with entry.lock:
                    for t in chunk:
                        entry.targets.pop(t.key, None)
