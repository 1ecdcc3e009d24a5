"""Everything the rollout rules read, as one frozen value: taken from Kubernetes manifests
(the Deployment, its serving container, a Namespace object) plus the target group / ALB side
(`Settings`: from a scenario, else from AWS load balancer controller annotations in the
manifests, else documented defaults that the rules then call assumptions).

The rules (rules.py) and the report's advice (testbed/report/advice.py) read only `Facts`, so
either can be tested with a hand-made value and neither parses YAML.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any

from testbed.scenario.plan import GATE_INJECT_LABEL
from testbed.workload.ingress import routes
from testbed.workload.manifests import WorkloadError, describe, load_manifests
from testbed.workload.select import select_target

# The condition type the controller's webhook injects and then sets True once the pod's target
# is healthy (https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/deploy/pod_readiness_gate/).
GATE_CONDITION_PREFIX = "target-health.elbv2.k8s.aws/"

# Kubernetes defaults for fields a manifest may leave out
# (https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/ and
# .../pod-v1/#lifecycle): replicas 1, RollingUpdate with maxSurge/maxUnavailable 25%,
# terminationGracePeriodSeconds 30.
DEFAULT_REPLICAS = 1
DEFAULT_STRATEGY = "RollingUpdate"
DEFAULT_MAX_SURGE = "25%"
DEFAULT_MAX_UNAVAILABLE = "25%"
DEFAULT_GRACE_SECONDS = 30.0

# AWS defaults when neither a scenario nor an annotation says otherwise.
# deregistration_delay.timeout_seconds: 300 s
# (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#deregistration-delay)
DEFAULT_DEREGISTRATION_DELAY_SECONDS = 300.0
# idle_timeout.timeout_seconds: 60 s
# (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#connection-idle-timeout)
DEFAULT_IDLE_TIMEOUT_SECONDS = 60.0
# How long a real ALB keeps routing new requests after DeregisterTargets is not documented by
# AWS; the controller maintainers' budget in aws-load-balancer-controller #1719 counts "ELB API
# propagation time" as about 10 s (quoted in #1719 and #2106:
# https://github.com/kubernetes-sigs/aws-load-balancer-controller/issues/2106). An assumption,
# and every message built on it says so.
DEFAULT_PROPAGATION_SECONDS = 10.0
# An app that exits on SIGTERM without finishing anything needs no drain time.
DEFAULT_DRAIN_SECONDS = 0.0

# AWS load balancer controller annotations carrying the settings the rules need, on the Service
# or the Ingress (https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/ingress/annotations/#target-group-attributes
# and #load-balancer-attributes).
TG_ATTRIBUTES_ANNOTATION = "alb.ingress.kubernetes.io/target-group-attributes"
LB_ATTRIBUTES_ANNOTATION = "alb.ingress.kubernetes.io/load-balancer-attributes"
DEREGISTRATION_DELAY_ATTRIBUTE = "deregistration_delay.timeout_seconds"
IDLE_TIMEOUT_ATTRIBUTE = "idle_timeout.timeout_seconds"

# What the demo app's manifests are rendered with for a scenario without `workload:`: the image
# and the target group do not matter to any rule.
DEMO_IMAGE = "alb-testbed/project"
DEMO_TG_ARN = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/demo/0"
DEMO_NAME = "demo"
DEMO_NAMESPACE = "demo"

SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh"})
# GNU coreutils and busybox `sleep` take a number with an optional unit and sum their arguments
# (https://www.gnu.org/software/coreutils/manual/html_node/sleep-invocation.html).
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd]?)")
_SLEEP_IN_SCRIPT = re.compile(
    r"(?:^|[\s;&|(`])(?:[\w./-]*/)?sleep((?:\s+[0-9]+(?:\.[0-9]+)?[smhd]?)+)(?=$|[\s;&|)`])")


@dataclass(frozen=True)
class Settings:
    """The target group / ALB / app side, which manifests do not say. None: unknown (then an
    annotation in the manifests, else a documented default, is used and called an
    assumption)."""

    deregistration_delay_seconds: float | None = None  # target group attribute
    propagation_seconds: float | None = None  # ALB keeps routing new requests this long
    idle_timeout_seconds: float | None = None  # load balancer attribute
    readiness_gate: bool | None = None  # a run labels its namespace for gate injection
    drain_seconds: float | None = None  # app: SIGTERM until its in-flight requests are done
    keep_alive_timeout_seconds: float | None = None  # app: idle keep-alive connection timeout
    source: str = ""  # where these came from, for messages ("scenario full-recipe")


@dataclass(frozen=True)
class Facts:
    """What the rules read. Seconds as floats; `assumed` names the fields taken from a default
    because nothing said otherwise (AWS side or app side), `defaulted` the Kubernetes fields the
    manifest left out (Kubernetes' own default applies: a fact, not a guess)."""

    deployment: str
    container: str
    replicas: int
    strategy: str  # "RollingUpdate" or "Recreate"
    max_surge: int  # pods, resolved from max_surge_raw as Kubernetes does (percent rounds up)
    max_unavailable: int  # pods (percent rounds down; both 0 -> 1, as Kubernetes does)
    max_surge_raw: int | str
    max_unavailable_raw: int | str
    pre_stop: str | None  # the preStop hook as written, None: no hook
    pre_stop_seconds: float | None  # how long it sleeps; None: no hook, or not a sleep
    grace_seconds: float
    readiness_probe: bool
    readiness_gate: bool | None  # None: the manifests do not tell
    readiness_gate_source: str  # why readiness_gate has its value
    deregistration_delay_seconds: float
    propagation_seconds: float
    idle_timeout_seconds: float
    drain_seconds: float
    keep_alive_timeout_seconds: float | None  # None: unknown
    namespace: str | None = None
    settings_source: str = ""
    assumed: frozenset[str] = field(default_factory=frozenset)
    defaulted: frozenset[str] = field(default_factory=frozenset)

    @property
    def propagation_assumed(self) -> bool:
        return "propagation_seconds" in self.assumed

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k not in ("assumed", "defaulted")}
        out["assumed"] = sorted(self.assumed)
        out["defaulted"] = sorted(self.defaulted)
        return out


def resolve_int_or_percent(value: int | str, total: int, *, round_up: bool) -> int:
    """An IntOrString scaled against `total` as Kubernetes' GetScaledValueFromIntOrPercent does:
    an int as is, "N%" of total rounded up or down; any other string is an error there too
    (https://github.com/kubernetes/apimachinery/blob/master/pkg/util/intstr/intstr.go)."""
    if isinstance(value, bool):
        raise WorkloadError(f"expected an integer or a percentage like '25%', got {value!r}")
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"([0-9]+)%", str(value).strip())
    if m is None:
        raise WorkloadError(f"expected an integer or a percentage like '25%', got {value!r}")
    scaled = int(m.group(1)) * total
    return -(-scaled // 100) if round_up else scaled // 100


def resolve_fenceposts(max_surge: int | str, max_unavailable: int | str, replicas: int
                       ) -> tuple[int, int]:
    """(surge, unavailable) pods as the Deployment controller resolves them: surge rounds up,
    unavailable down, and when both come to 0 unavailable becomes 1 (ResolveFenceposts in
    https://github.com/kubernetes/kubernetes/blob/master/pkg/controller/deployment/util/deployment_util.go)."""
    surge = resolve_int_or_percent(max_surge, replicas, round_up=True)
    unavailable = resolve_int_or_percent(max_unavailable, replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _duration(arg: str) -> float | None:
    m = _DURATION.fullmatch(arg)
    return None if m is None else float(m.group(1)) * _UNITS[m.group(2)]


def _sleep_args(args: list[str]) -> float | None:
    total = 0.0
    for a in args:
        d = _duration(a)
        if d is None:
            return None
        total += d
    return total if args else None


def _script_sleeps(script: str) -> float | None:
    """Seconds of every `sleep N` in a shell script, summed (they run one after another)."""
    found = [_sleep_args(m.group(1).split()) for m in _SLEEP_IN_SCRIPT.finditer(script)]
    known = [s for s in found if s is not None]
    return sum(known) if known else None


def pre_stop_sleep(container: dict[str, Any]) -> tuple[str | None, float | None]:
    """(the preStop hook as written, the seconds it sleeps). Recognised: the sleep action
    (`preStop.sleep.seconds`, Kubernetes 1.30+ by default, KEP-3960), `exec: [sleep, N]` and a
    shell's `-c` script with `sleep N` in it. Any other hook: (its text, None)."""
    hook = ((container.get("lifecycle") or {}).get("preStop")) or None
    if not isinstance(hook, dict):
        return None, None
    sleep = hook.get("sleep")
    if isinstance(sleep, dict) and "seconds" in sleep:
        try:
            return f"sleep action {sleep['seconds']} s", float(sleep["seconds"])
        except (TypeError, ValueError):
            return f"sleep action {sleep['seconds']!r}", None
    exec_ = hook.get("exec")
    if isinstance(exec_, dict):
        cmd = [str(c) for c in exec_.get("command") or []]
        text = "exec " + shlex.join(cmd)
        if not cmd:
            return text, None
        prog = PurePosixPath(cmd[0]).name
        if prog == "sleep":
            return text, _sleep_args(cmd[1:])
        if prog in SHELLS and "-c" in cmd[1:-1]:
            return text, _script_sleeps(cmd[cmd.index("-c", 1) + 1])
        return text, None
    if isinstance(hook.get("httpGet"), dict):
        return f"httpGet {hook['httpGet'].get('path', '/')}", None
    return "preStop " + ", ".join(sorted(hook)), None


def _attributes(annotations: dict[str, Any], key: str) -> dict[str, str]:
    """`k=v,k=v` annotation values as the controller writes them."""
    out = {}
    for part in str(annotations.get(key) or "").split(","):
        k, sep, v = part.partition("=")
        if sep:
            out[k.strip()] = v.strip()
    return out


def _annotated_seconds(docs: list[dict[str, Any]], service: dict[str, Any]
                       ) -> dict[str, tuple[float, str]]:
    """deregistration delay / idle timeout from controller annotations: the Service's own
    target-group-attributes win over its Ingress's (the controller's precedence for
    target group annotations)."""
    svc_name = service["metadata"]["name"]
    ingresses = [d for d in docs if d["kind"] == "Ingress" and routes(d, svc_name)]
    found: dict[str, tuple[float, str]] = {}
    holders = [*ingresses, service]  # later wins
    for holder in holders:
        notes = (holder.get("metadata") or {}).get("annotations") or {}
        for field_name, annotation, attribute, kinds in (
                ("deregistration_delay_seconds", TG_ATTRIBUTES_ANNOTATION,
                 DEREGISTRATION_DELAY_ATTRIBUTE, ("Ingress", "Service")),
                ("idle_timeout_seconds", LB_ATTRIBUTES_ANNOTATION, IDLE_TIMEOUT_ATTRIBUTE,
                 ("Ingress",))):
            raw = _attributes(notes, annotation).get(attribute)
            if raw is None or holder["kind"] not in kinds:
                continue
            try:
                found[field_name] = (float(raw), f"{describe(holder)} annotation {annotation}")
            except ValueError:
                raise WorkloadError(f"{describe(holder)}: annotation {annotation} has "
                                    f"{attribute}={raw!r}, expected a number of seconds"
                                    ) from None
    return found


def _gate(docs: list[dict[str, Any]], dep: dict[str, Any], settings: Settings
          ) -> tuple[bool | None, str]:
    template = dep.get("spec", {}).get("template", {}).get("spec", {})
    for g in template.get("readinessGates") or []:
        if str((g or {}).get("conditionType", "")).startswith(GATE_CONDITION_PREFIX):
            return True, f"the pod template lists readiness gate {g['conditionType']}"
    if settings.readiness_gate is not None:
        src = settings.source or "the settings"
        return settings.readiness_gate, (
            f"{src}: readinessGate {str(settings.readiness_gate).lower()} (the run "
            f"{'labels' if settings.readiness_gate else 'does not label'} its namespace "
            f"{GATE_INJECT_LABEL}: enabled)")
    namespaces = [d for d in docs if d["kind"] == "Namespace"]
    ns_name = (dep.get("metadata") or {}).get("namespace")
    if ns_name is not None:
        namespaces = [n for n in namespaces if n["metadata"]["name"] == ns_name]
    if len(namespaces) != 1:
        where = f"namespace {ns_name!r}" if ns_name else "the Deployment's namespace"
        return None, (f"no Namespace object for {where} in the manifests and no "
                      f"{GATE_CONDITION_PREFIX}* readinessGate in the pod template")
    ns = namespaces[0]
    value = ((ns["metadata"].get("labels") or {}).get(GATE_INJECT_LABEL))
    if value == "enabled":
        return True, f"{describe(ns)} has the label {GATE_INJECT_LABEL}: enabled"
    return False, (f"{describe(ns)} lacks the label {GATE_INJECT_LABEL}: enabled" +
                   (f" (it has {value!r})" if value is not None else ""))


def _pick(value: float | None, annotated: tuple[float, str] | None, default: float,
          name: str, assumed: set[str]) -> float:
    if value is not None:
        return float(value)
    if annotated is not None:
        return annotated[0]
    assumed.add(name)
    return default


def facts_from_manifests(docs: list[dict[str, Any]], *, deployment: str | None = None,
                         container: str | None = None, settings: Settings | None = None,
                         service: str | None = None, port: int | str | None = None) -> Facts:
    """The facts of the Deployment `deployment` (or the only one) and its serving container
    (the one whose port the Service targets, or `container` by name). Raises WorkloadError for
    manifests that cannot be read that way."""
    settings = settings or Settings()
    for d in docs:  # before select_target reads spec.replicas as a number
        given = (d.get("spec") or {}).get("replicas")
        if d.get("kind") == "Deployment" and given is not None and (
                isinstance(given, bool) or not isinstance(given, int)):
            raise WorkloadError(f"{describe(d)}: spec.replicas must be an integer, got "
                                f"{given!r}")
    target = select_target(docs, deployment=deployment, service=service, port=port)
    dep = target.deployment
    spec = dep.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    serving = target.container
    if container is not None:
        named = [c for c in pod.get("containers") or [] if c.get("name") == container]
        if not named:
            have = ", ".join(str(c.get("name")) for c in pod.get("containers") or [])
            raise WorkloadError(f"{describe(dep)} has no container {container!r} (it has "
                                f"{have or 'none'})")
        serving = named[0]
    defaulted: set[str] = set()
    assumed: set[str] = set()

    replicas_raw = spec.get("replicas")
    if replicas_raw is None:
        defaulted.add("replicas")
    replicas = int(DEFAULT_REPLICAS if replicas_raw is None else replicas_raw)
    strategy = spec.get("strategy") or {}
    stype = str(strategy.get("type") or DEFAULT_STRATEGY)
    rolling = strategy.get("rollingUpdate") or {}
    surge_raw = rolling.get("maxSurge", DEFAULT_MAX_SURGE)
    unavail_raw = rolling.get("maxUnavailable", DEFAULT_MAX_UNAVAILABLE)
    for key, raw in (("max_surge", "maxSurge"), ("max_unavailable", "maxUnavailable")):
        if raw not in rolling:
            defaulted.add(key)
    try:
        surge, unavailable = resolve_fenceposts(surge_raw, unavail_raw, replicas)
    except WorkloadError as exc:
        raise WorkloadError(f"{describe(dep)}: spec.strategy.rollingUpdate: {exc}") from None

    pre_stop, pre_stop_seconds = pre_stop_sleep(serving)
    grace_raw = pod.get("terminationGracePeriodSeconds")
    if grace_raw is None:
        defaulted.add("grace_seconds")
    grace = DEFAULT_GRACE_SECONDS if grace_raw is None else grace_raw
    if isinstance(grace, bool) or not isinstance(grace, int | float) or grace < 0:
        raise WorkloadError(f"{describe(dep)}: terminationGracePeriodSeconds must be a number "
                            f">= 0, got {grace!r}")

    gate, gate_source = _gate(docs, dep, settings)
    annotated = _annotated_seconds(docs, target.service)
    dereg = _pick(settings.deregistration_delay_seconds,
                  annotated.get("deregistration_delay_seconds"),
                  DEFAULT_DEREGISTRATION_DELAY_SECONDS, "deregistration_delay_seconds", assumed)
    idle = _pick(settings.idle_timeout_seconds, annotated.get("idle_timeout_seconds"),
                 DEFAULT_IDLE_TIMEOUT_SECONDS, "idle_timeout_seconds", assumed)
    propagation = _pick(settings.propagation_seconds, None, DEFAULT_PROPAGATION_SECONDS,
                        "propagation_seconds", assumed)
    drain = _pick(settings.drain_seconds, None, DEFAULT_DRAIN_SECONDS, "drain_seconds",
                  assumed)
    sources = sorted({src for _, src in annotated.values()})
    return Facts(
        deployment=str(dep["metadata"]["name"]), container=str(serving.get("name")),
        namespace=(dep.get("metadata") or {}).get("namespace"),
        replicas=replicas, strategy=stype, max_surge=surge, max_unavailable=unavailable,
        max_surge_raw=surge_raw, max_unavailable_raw=unavail_raw,
        pre_stop=pre_stop, pre_stop_seconds=pre_stop_seconds, grace_seconds=float(grace),
        readiness_probe=bool(serving.get("readinessProbe")),
        readiness_gate=gate, readiness_gate_source=gate_source,
        deregistration_delay_seconds=dereg, propagation_seconds=propagation,
        idle_timeout_seconds=idle, drain_seconds=drain,
        keep_alive_timeout_seconds=settings.keep_alive_timeout_seconds,
        settings_source="; ".join(s for s in [settings.source, *sources] if s),
        assumed=frozenset(assumed), defaulted=frozenset(defaulted))


def settings_from_scenario(sc: Any) -> Settings:
    """A scenario's target group, ALB and app side (`workload:` when it has one, else the demo
    app's `app:`): what a run of it applies."""
    src = sc.workload if getattr(sc, "workload", None) is not None else sc.app
    drain = float(src.drain_seconds)
    # The demo app honours drainSeconds only with onSigterm: drain; `exit` dies at once and
    # `ignore` serves until the kubelet's SIGKILL (testbed/demoapp/config.py).
    if getattr(src, "on_sigterm", "drain") != "drain":
        drain = 0.0
    keep_alive = getattr(src, "keep_alive_timeout_seconds", None)
    return Settings(
        deregistration_delay_seconds=float(sc.target_group.deregistration_delay_seconds),
        propagation_seconds=float(sc.alb.deregister_delay_seconds),
        idle_timeout_seconds=float(sc.alb.idle_timeout_seconds),
        readiness_gate=bool(src.readiness_gate), drain_seconds=drain,
        keep_alive_timeout_seconds=None if keep_alive is None else float(keep_alive),
        source=f"scenario {sc.name}")


def scenario_manifests(sc: Any) -> list[dict[str, Any]]:
    """The manifests a run of the scenario deploys: its workload's files (workload.path, made
    absolute by load_scenario), else the demo app's rendered manifests."""
    workload = getattr(sc, "workload", None)
    if workload is not None:
        return load_manifests(workload.path)
    from testbed.scenario.plan import manifests

    return manifests(sc, DEMO_IMAGE, DEMO_TG_ARN, name=DEMO_NAME, ns=DEMO_NAMESPACE)


def scenario_view(sc: Any, docs: list[dict[str, Any]]
                  ) -> tuple[list[dict[str, Any]], Settings]:
    """The manifests and settings as a run of `sc` applies them. A workload that brings its
    Ingress to an `ingress:` run says the target group's and load balancer's settings in its
    annotations (with the scenario's `ingress.annotations` over them), not `targetGroup` /
    `alb.idleTimeoutSeconds`."""
    settings = settings_from_scenario(sc)
    ingress = getattr(sc, "ingress", None)
    if getattr(sc, "workload", None) is None or ingress is None or not any(
            d["kind"] == "Ingress" for d in docs):
        return docs, settings
    docs = [{**d, "metadata": {**d["metadata"], "annotations": {
        **(d["metadata"].get("annotations") or {}), **ingress.annotations}}}
        if d["kind"] == "Ingress" else d for d in docs]
    return docs, replace(settings, deregistration_delay_seconds=None, idle_timeout_seconds=None)


def facts_from_scenario(sc: Any, docs: list[dict[str, Any]] | None = None) -> Facts:
    """The facts of what a run of the scenario rolls (for the report's advice): `docs` or
    scenario_manifests(sc), as the run applies them (scenario_view), and its workload's
    selection."""
    docs, settings = scenario_view(sc, scenario_manifests(sc) if docs is None else docs)
    return facts_from_manifests(docs, settings=settings, **scenario_selection(sc))


def scenario_selection(sc: Any) -> dict[str, Any]:
    """What of the manifests a run of `sc` rolls: its workload's deployment, service and port
    (None: the only one), or the demo app (also when a second one runs beside it: an ingress
    canary, swap or second Ingress)."""
    workload = getattr(sc, "workload", None)
    if workload is None:
        return {"deployment": DEMO_NAME, "service": DEMO_NAME, "port": None}
    return {"deployment": workload.deployment, "service": workload.service,
            "port": workload.port}
