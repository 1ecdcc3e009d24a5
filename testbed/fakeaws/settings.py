"""Every setting of the fake AWS, declared once.

`FakeAwsSettings` is the declaration: per field its type, default, bounds and help text, plus
a `Use` marker naming the process that reads it and whether POST /_testbed/config may change
it while running. Everything else is derived from it:

- `testbed fakeaws serve` options (testbed/fakeaws/cli.py builds them from `SETTINGS`);
- the engine process's argparse flags (`add_arguments`) and the arguments the API process
  spawns it with (`engine_argv`);
- validation of POST /_testbed/config (`runtime_update`): unknown keys, non-numbers, NaN/inf
  and out-of-range values are refused; `scoped_runtime_update` adds the optional
  `target_group_arn` scope (per-target-group overrides, same validation).

Adding a setting means adding one field here and reading it where it is used.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, SupportsFloat, Union, cast, get_args, get_origin

import annotated_types
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

Process = Literal["api", "engine", "both"]

# The lowest HealthCheckIntervalSeconds ELBv2 accepts (5-300):
# https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html
AWS_MIN_HEALTH_CHECK_INTERVAL = 5.0
# The lowest load balancer attribute `client_keep_alive.seconds` ELBv2 accepts (60-604800):
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html#http-client-keep-alive-duration
AWS_MIN_CLIENT_KEEP_ALIVE = 60.0


@dataclass(frozen=True)
class Use:
    """Which process reads a setting; `runtime`: POST /_testbed/config may change it."""

    process: Process
    runtime: bool = False


class SettingsError(ValueError):
    """A setting value or a /_testbed/config request that the declaration refuses."""


class FakeAwsSettings(BaseModel):
    """The declaration. All times are in seconds."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    host: Annotated[str, Use("api"), Field(
        description="Address of the API (and default listeners).")] = "127.0.0.1"
    port: Annotated[int, Use("api"), Field(
        ge=0, le=65535, description="ELBv2/EC2 API port (also /_testbed/*).")] = 4566
    listener_host: Annotated[str | None, Use("engine"), Field(
        description="Address ALB listeners bind (default: --host).")] = None
    register_delay: Annotated[float, Use("engine", runtime=True), Field(
        ge=0, le=3600,
        description="Seconds before the data plane sees a registration (propagation delay).",
    )] = 0.0
    deregister_delay: Annotated[float, Use("engine", runtime=True), Field(
        ge=0, le=3600,
        description="Seconds the data plane keeps routing new requests to a deregistered "
                    "target (propagation delay).")] = 0.0
    min_health_check_interval: Annotated[float, Use("both"), Field(
        gt=0, le=300,
        description="Lowest accepted HealthCheckIntervalSeconds. AWS: 5. Lower (e.g. 0.5) only "
                    "for fast tests; it also allows fractional intervals/timeouts.",
    )] = AWS_MIN_HEALTH_CHECK_INTERVAL
    min_client_keep_alive: Annotated[float, Use("api"), Field(
        gt=0, le=604800,
        description="Lowest accepted load balancer attribute client_keep_alive.seconds. AWS: "
                    "60. Lower (e.g. 0.5) only for fast tests; it also allows fractional "
                    "values.",
    )] = AWS_MIN_CLIENT_KEEP_ALIVE
    connect_timeout: Annotated[float, Use("engine", runtime=True), Field(
        gt=0, le=3600, description="Target connect timeout (AWS: 10 s).")] = 10.0
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], Use("both"), Field(
        description="Log level of both processes.")] = "INFO"
    loop: Annotated[Literal["asyncio", "uvloop", "auto"], Use("engine"), Field(
        description="Event loop of the engine and its data-plane workers: asyncio, uvloop "
                    "(a dependency on Linux and macOS) or auto (uvloop when installed).")] = "auto"
    listener_addresses: Annotated[Literal["shared", "per-load-balancer"], Use("api"), Field(
        description="shared: every load balancer's listeners on --listener-host (a port is "
                    "one listener's); per-load-balancer: each load balancer gets its own "
                    "loopback address (127.1.0.1, 127.1.0.2, ...; Linux; needs a loopback "
                    "--listener-host), shown as its DNSName.")] = "shared"
    dataplane_workers: Annotated[int, Use("engine"), Field(
        ge=0, le=64,
        description="Data-plane worker processes sharing each listener port (SO_REUSEPORT), "
                    "each with its own round-robin turns, least-outstanding counts and "
                    "connection pools, like separate ALB nodes; 1: the data plane runs in "
                    "the engine process; 0: one per CPU core.")] = 0
    api_nice: Annotated[int, Use("api"), Field(
        ge=0, le=19,
        description="Niceness added to the API process (not the engine) so API load steals "
                    "less CPU from the data plane; 0 to disable.")] = 10

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        # logging's names are upper case; `--log-level info` has always worked.
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _addresses_on_loopback(self) -> FakeAwsSettings:
        if self.listener_addresses == "per-load-balancer" and not _is_loopback(self.listen_on):
            raise ValueError("listener_addresses per-load-balancer hands out loopback "
                             f"addresses, but listeners are on {self.listen_on!r}: use "
                             "--listener-host 127.0.0.1, or listener_addresses shared")
        return self

    @property
    def listen_on(self) -> str:
        return self.listener_host or self.host

    @property
    def worker_count(self) -> int:
        """`dataplane_workers` with 0 resolved to the number of usable CPU cores."""
        if self.dataplane_workers:
            return self.dataplane_workers
        affinity = getattr(os, "sched_getaffinity", None)  # Linux; elsewhere all cores
        return len(affinity(0)) if affinity else os.cpu_count() or 1

    def runtime_values(self) -> dict[str, Any]:
        return {s.name: getattr(self, s.name) for s in SETTINGS if s.use.runtime}

    def values_for(self, process: Literal["api", "engine"]) -> dict[str, Any]:
        return {s.name: getattr(self, s.name) for s in settings_for(process)}

    def apply_runtime(self, payload: object) -> dict[str, Any]:
        """Validate a POST /_testbed/config body, then change the values in place (all or
        none), so components holding this object see the new values at once."""
        update = runtime_update(payload)
        for name, value in update.items():
            setattr(self, name, value)
        return update


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback and ":" not in host
    except ValueError:
        return host == "localhost"


@dataclass(frozen=True)
class SettingInfo:
    """One field of the declaration, flattened for generating command-line options."""

    name: str
    kind: type  # float, int or str: what a command-line string is converted to
    default: Any
    description: str
    use: Use
    choices: tuple[str, ...] = ()
    optional: bool = False
    lower: float | None = None
    lower_open: bool = False
    upper: float | None = None
    upper_open: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def metavar(self) -> str:
        if self.choices:
            return "[" + "|".join(self.choices) + "]"
        return {float: "FLOAT", int: "INTEGER"}.get(self.kind, "TEXT")

    @property
    def allowed(self) -> str:
        """The range or the choices, e.g. "0 <= x <= 3600"; "" when anything goes."""
        if self.choices:
            return ", ".join(self.choices)
        if self.lower is None and self.upper is None:
            return ""
        lo = "" if self.lower is None else f"{self.lower:g} {'<' if self.lower_open else '<='} "
        hi = "" if self.upper is None else f" {'<' if self.upper_open else '<='} {self.upper:g}"
        return f"{lo}x{hi}"

    @property
    def help(self) -> str:
        """The description plus the allowed range and the run-time key, for --help."""
        parts = [self.description]
        if self.allowed and not self.choices:
            parts.append(f"Range: {self.allowed}.")
        if self.use.runtime:
            parts.append(f"Changeable at run time: POST /_testbed/config key {self.name!r}.")
        return " ".join(parts)

    def parse(self, raw: object) -> Any:
        """A command-line value (text, or the default) -> validated value."""
        return parse_value(self.name, raw)


def _bound(value: object) -> float:
    return float(cast(SupportsFloat, value))


def _info(name: str, field: Any) -> SettingInfo:
    uses = [m for m in field.metadata if isinstance(m, Use)]
    if len(uses) != 1:
        raise TypeError(f"setting {name!r} needs exactly one Use(...) marker")
    annotation = field.annotation
    optional = False
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(args) < len(get_args(annotation))
        (annotation,) = args
    choices: tuple[str, ...] = ()
    if get_origin(annotation) is Literal:
        choices = tuple(str(a) for a in get_args(annotation))
        annotation = str
    bounds: dict[str, Any] = {}
    for m in field.metadata:
        if isinstance(m, annotated_types.Ge):
            bounds.update(lower=_bound(m.ge))
        elif isinstance(m, annotated_types.Gt):
            bounds.update(lower=_bound(m.gt), lower_open=True)
        elif isinstance(m, annotated_types.Le):
            bounds.update(upper=_bound(m.le))
        elif isinstance(m, annotated_types.Lt):
            bounds.update(upper=_bound(m.lt), upper_open=True)
        elif not isinstance(m, Use):
            # --help and the docs table would not show it, yet validation would apply it.
            raise TypeError(f"setting {name!r}: constraint {m!r} is not rendered; add it here")
    return SettingInfo(name=name, kind=annotation, default=field.default,
                       description=field.description or "", use=uses[0], choices=choices,
                       optional=optional, **bounds)


SETTINGS: tuple[SettingInfo, ...] = tuple(
    _info(name, field) for name, field in FakeAwsSettings.model_fields.items())
BY_NAME: dict[str, SettingInfo] = {s.name: s for s in SETTINGS}
# The keys POST /_testbed/config accepts (e.g. a scenario runner's `configure(**values)`).
RUNTIME_KEYS: frozenset[str] = frozenset(s.name for s in SETTINGS if s.use.runtime)
# The same names as a type, so the engine's per-target-group accessor is checked by mypy
# (a unit test keeps it equal to RUNTIME_KEYS).
RuntimeKey = Literal["register_delay", "deregister_delay", "connect_timeout"]
if any(s.kind is not float for s in SETTINGS if s.use.runtime):
    # The engine's `TargetStore.runtime(tg_arn, key) -> float` relies on it.
    raise TypeError("run-time settings must be floats")
# The optional body key of POST /_testbed/config that scopes the values to one target group.
SCOPE_KEY = "target_group_arn"


def settings_for(process: Literal["api", "engine"]) -> tuple[SettingInfo, ...]:
    return tuple(s for s in SETTINGS if s.use.process in (process, "both"))


def _message(err: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                     for e in err.errors())


def parse_value(name: str, raw: object, strict: bool = False) -> Any:
    """Validate one setting's value against the declaration. `strict` (JSON bodies) refuses
    strings and booleans for numbers; otherwise command-line text is converted."""
    try:
        model = FakeAwsSettings.model_validate({name: raw}, strict=strict)
    except ValidationError as exc:
        raise SettingsError(_message(exc)) from None
    return getattr(model, name)


def runtime_update(payload: object) -> dict[str, Any]:
    """A POST /_testbed/config body -> the validated values it sets."""
    if not isinstance(payload, Mapping):
        raise SettingsError(f"expected a JSON object with any of {sorted(RUNTIME_KEYS)}")
    fixed = sorted(k for k in payload if k in BY_NAME and k not in RUNTIME_KEYS)
    unknown = sorted(str(k) for k in payload if k not in BY_NAME)
    if fixed or unknown:
        raise SettingsError(
            (f"not changeable at run time: {fixed}; " if fixed else "")
            + (f"unknown keys: {unknown}; " if unknown else "")
            + f"accepted: {sorted(RUNTIME_KEYS)}")
    out: dict[str, Any] = {}
    errors = []
    for name, value in payload.items():
        try:
            out[name] = parse_value(name, value, strict=True)
        except SettingsError as exc:
            errors.append(str(exc))
    if errors:
        raise SettingsError("; ".join(errors))
    return out


def scoped_runtime_update(payload: object) -> tuple[str | None, dict[str, Any]]:
    """A POST /_testbed/config body that may name a target group -> (its ARN or None, the
    validated values). The values are validated exactly like an unscoped body's."""
    if not isinstance(payload, Mapping) or SCOPE_KEY not in payload:
        return None, runtime_update(payload)
    arn = payload[SCOPE_KEY]
    if not isinstance(arn, str) or not arn.strip():
        raise SettingsError(f"{SCOPE_KEY}: expected a target group ARN (a non-empty string)")
    return arn, runtime_update({k: v for k, v in payload.items() if k != SCOPE_KEY})


# Propagation-delay presets (`--preset`). AWS publishes no figure for ALB; reports range from
# tens of seconds to ~2 min (EKS best practices, "a minute or two":
# https://aws.github.io/aws-eks-best-practices/networking/loadbalancing/loadbalancing/ ;
# https://github.com/kubernetes-sigs/aws-load-balancer-controller/issues/3270 still routing
# ~2 min after deregistration; NLB registration 90-180 s:
# https://github.com/kubernetes-sigs/aws-load-balancer-controller/issues/1834). "realistic"
# takes the lower half of that range: long enough that a missing preStop sleep fails, short
# enough for CI.
PRESETS: dict[str, dict[str, float]] = {
    "realistic": {"register_delay": 15.0, "deregister_delay": 30.0},
    "instant": {"register_delay": 0.0, "deregister_delay": 0.0},
}
for _preset in PRESETS.values():
    runtime_update(_preset)  # a preset may only hold valid run-time settings


# ---- the engine process's command line (built by the API process, parsed by the engine) ----
def engine_argv(settings: FakeAwsSettings) -> list[str]:
    """Flags passing every engine-side value; None (unset optional) values are left out."""
    argv: list[str] = []
    for s in settings_for("engine"):
        value = getattr(settings, s.name)
        if value is not None:
            argv += [s.flag, str(value)]
    return argv


def add_arguments(parser: argparse.ArgumentParser, process: Literal["api", "engine"]) -> None:
    for s in settings_for(process):
        def convert(text: str, s: SettingInfo = s) -> Any:
            try:
                return s.parse(text)
            except SettingsError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None

        parser.add_argument(s.flag, dest=s.name, type=convert, default=s.default,
                            metavar=s.metavar, help=s.help)


def from_namespace(ns: argparse.Namespace, process: Literal["api", "engine"]
                   ) -> FakeAwsSettings:
    return FakeAwsSettings(**{s.name: getattr(ns, s.name) for s in settings_for(process)})


def markdown_table() -> str:
    """The settings table of docs/fakeaws.md (`testbed fakeaws settings` prints it)."""
    rows = ["| option | default | allowed | process | run-time key | meaning |",
            "|---|---|---|---|---|---|"]
    for s in SETTINGS:
        default = "" if s.default is None else f"`{s.default}`"
        key = f"`{s.name}`" if s.use.runtime else ""
        rows.append(f"| `{s.flag}` | {default} | {s.allowed} | {s.use.process} | {key} | "
                    f"{s.description} |")
    return "\n".join(rows)
