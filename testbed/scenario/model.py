"""The scenario, declared once: types, bounds, defaults, help and cross-field rules.

The YAML keys are the camelCase aliases of these fields. The loader turns validation errors
into readable lines, `testbed scenario schema` prints the JSON Schema generated from here, and
docs/scenarios.md's field tables are generated from here too (`testbed scenario docs`).
Markers on a field say where a run applies it (testbed/scenario/plan.py reads them): a
controller flag, a fake AWS engine setting; `app` fields go to the demo app's env
(testbed/demoapp/config.py declares those).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, create_model, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from testbed.declare import Bool, Declared, Expected, Int, Num, Str
from testbed.demoapp.config import DemoBehaviour


@dataclass(frozen=True)
class ControllerFlag:
    """The scenario field is passed to the controller as this flag. For a bool: `flag` when
    true, `off` when false; for a value: `--flag=value`; nothing when None (the controller's
    `--behave-like` release decides)."""

    flag: str
    off: str = ""


@dataclass(frozen=True)
class EngineSetting:
    """The scenario field sets this fake AWS engine setting (POST /_testbed/config)."""

    key: str


def _rules(*problems: tuple[str, str]) -> None:
    """Raise every cross-field problem of one model at once, as (field key, message)."""
    if problems:
        raise PydanticCustomError("scenario_rules", "{problems}", {"problems": list(problems)})


PERCENT_OR_INT = Expected("an integer or percentage like '25%'")
PercentOrInt = Annotated[
    Annotated[Int, Field(ge=0)] | Annotated[Str, Field(pattern=r"^[0-9]{1,3}%$")],
    PERCENT_OR_INT]
Seconds = Annotated[Num | None, Field(ge=0), Expected("a number of seconds or null")]


class App(DemoBehaviour):
    """`app` - the demo workload (`testbed demoapp serve`, env `DEMO_*`)."""

    replicas: Annotated[Int, Field(ge=1, le=50)] = Field(3, description="Deployment replicas.")
    readiness_gate: Bool = Field(
        True, description="Label the namespace `elbv2.k8s.aws/pod-readiness-gate-inject: "
        "enabled` so the webhook injects the target-health gate; false: pods are Ready on "
        "their own probe only.")
    pre_stop_sleep_seconds: Annotated[Int, Field(ge=0, le=3600)] = Field(
        0, description="preStop `exec: sleep N` hook; 0 means no hook.")
    pre_stop_unready: Bool = Field(
        False, description="The preStop hook first makes the app's /ready fail, then sleeps "
        "`preStopSleepSeconds`: the pod leaves the load balancer before SIGTERM even when "
        "nothing deletes it (a container restarted by its liveness probe, a graceful node "
        "shutdown; aws-load-balancer-controller #1275, #2702).")
    termination_grace_period_seconds: Annotated[Int, Field(ge=0, le=3600)] = Field(
        30, description="Pod grace period; the kubelet kills the container after it (preStop "
        "included).")
    placement: Annotated[Literal["any", "packed", "spread"], Expected(
        "'any', 'packed' or 'spread'")] = Field(
        "any", description="Where the replicas go. `any`: where the scheduler puts them. "
        "`packed`: every replica on one node (required pod affinity on the hostname, as a "
        "bin-packing autoscaler leaves them). `spread`: across nodes (a topology spread "
        "constraint on the hostname, maxSkew 1, per ReplicaSet).")
    disruption_budget_max_unavailable: Annotated[Int | None, Field(ge=0, le=50), Expected(
        "a number of pods or null")] = Field(
        None, description="A PodDisruptionBudget with this maxUnavailable over the app's pods "
        "(evictions, e.g. a node drain, wait for it); null: none.")


class Cluster(Declared):
    """`cluster` - the shape the scenario needs"""

    workers: Annotated[Int, Field(ge=1, le=3)] = Field(
        1, description="Worker nodes the run needs. The runner grows the cluster to this many "
        "(kind's join, `testbed.cluster.lifecycle.add_workers`) before the runs that need them "
        "and keeps them; a cluster with more serves every scenario.")


class Workload(Declared):
    """`workload` - your own manifests instead of the demo app, applied unchanged"""

    path: Annotated[Str, Field(min_length=1), Expected(
        "a file or directory of Kubernetes YAML, relative to the scenario file")] = Field(
        description="A YAML file (several documents allowed) or a directory of them, or a "
        "kustomization directory; applied unchanged into the run's namespace. Relative to the "
        "scenario file.")
    deployment: Str | None = Field(
        None, description="The Deployment to roll; may be left out when there is only one.")
    service: Str | None = Field(
        None, description="The Service the target group binds to; may be left out when only "
        "one Service selects the Deployment's pods.")
    port: Annotated[Annotated[Int, Field(ge=1, le=65535)] | Str | None, Expected(
        "a Service port number or name")] = Field(
        None, description="The Service port (number or name) the TargetGroupBinding uses; may "
        "be left out when the Service has one port.")
    readiness_gate: Bool = Field(
        True, description="Label the run's namespace `elbv2.k8s.aws/pod-readiness-gate-inject:"
        " enabled` so the webhook injects the target-health gate into your pods.")
    drain_seconds: Annotated[Num, Field(ge=0, le=3600)] = Field(
        0.0, description="How long your app keeps finishing in-flight requests after SIGTERM "
        "(read by `testbed check` and the report's advice, not applied).")
    keep_alive_timeout_seconds: Annotated[Num | None, Field(gt=0, le=4000), Expected(
        "a number of seconds or null")] = Field(
        None, description="Your app's HTTP keep-alive idle timeout, when known (compared with "
        "`alb.idleTimeoutSeconds`; not applied).")


# Fields of App that belong to the Deployment, not to one version of the pods.
DEPLOYMENT_FIELDS = ("replicas", "readiness_gate", "placement",
                     "disruption_budget_max_unavailable")

# `rollout.newApp`: every per-version App field, optional; derived so a new app knob needs no
# second declaration.
NewApp = create_model(  # type: ignore[call-overload]
    "NewApp", __base__=Declared,
    **{name: (info.annotation | None, Field(None, description=info.description))  # type: ignore[operator]
       for name, info in App.model_fields.items() if name not in DEPLOYMENT_FIELDS})


# Keys that exist but belong elsewhere: the error says where instead of "did you mean".
MISPLACED: dict[tuple[str, str], str] = {
    ("NewApp", to_camel(name)): f"expected no such key ({to_camel(name)} belongs to the "
    "Deployment, not to a version); set it under app" for name in DEPLOYMENT_FIELDS}


class Rollout(Declared):
    """`rollout`"""

    max_surge: PercentOrInt = Field("25%", description="Deployment strategy; integer or "
                                    "percentage string.")
    max_unavailable: PercentOrInt = Field("25%", description="Same; both 0 is rejected (as "
                                          "Kubernetes does).")
    count: Annotated[Int, Field(ge=1, le=20)] = Field(
        1, description="How many rollouts to run back to back.")
    timeout_seconds: Annotated[Int, Field(ge=1, le=3600)] = Field(
        180, description="Deployment `progressDeadlineSeconds`: after it a rollout counts as "
        "stalled. With a workload, only how long the run waits for each rollout (your "
        "Deployment is applied unchanged).")
    new_app: Annotated[NewApp, Expected(  # type: ignore[valid-type]
        "a mapping of app fields that differ in the new version")] = Field(
        default_factory=NewApp, description="App fields (any `app` field except `replicas`, "
        "`readinessGate`) that differ in the rolled-out version, e.g. `{healthCode: 500}` for "
        "a bad release.")
    # Triggers for a workload (one of them; `restart` when none is given).
    restart: Bool = Field(
        False, description="Workload: restart the pods as `kubectl rollout restart` does (a "
        "`kubectl.kubernetes.io/restartedAt` annotation on the pod template). The default "
        "trigger of a workload.")
    image: Annotated[Str | None, Field(min_length=1), Expected("an image reference like "
                                                               "repo/app:v2")] = Field(
        None, description="Workload: roll to this image (of `container`).")
    container: Str | None = Field(
        None, description="Workload, with `image`: the container to change; may be left out "
        "when the pod has one container.")
    patch: Annotated[dict[str, Any] | None, Expected("a mapping (a Deployment patch)")] = Field(
        None, description="Workload: a strategic-merge patch of the Deployment (as `kubectl "
        "patch`), e.g. `{spec: {template: {spec: {containers: [{name: app, env: [...]}]}}}}`.")
    manifests: Annotated[Str | None, Field(min_length=1), Expected(
        "a file or directory of Kubernetes YAML")] = Field(
        None, description="Workload: a second version of the files (file or directory, "
        "relative to the scenario file), applied as the rollout.")

    @property
    def trigger(self) -> str:
        """Which workload trigger this rollout uses: restart, image, patch or manifests."""
        for name in ("image", "patch", "manifests"):
            if getattr(self, name) is not None:
                return name
        return "restart"

    @model_validator(mode="after")
    def _check(self) -> Rollout:
        problems = []
        given = ["restart"] if self.restart else []
        given += [k for k in ("image", "patch", "manifests") if getattr(self, k) is not None]
        if len(given) > 1:
            problems.append((given[1], "expected one rollout trigger, got " +
                             " and ".join(given)))
        if self.container is not None and self.image is None:
            problems.append(("container", "expected only together with rollout.image"))
        if self.count > 1 and given and given[0] != "restart":
            problems.append(("count", f"expected 1 with rollout.{given[0]} (a second rollout "
                             f"to the same {given[0]} changes nothing), got {self.count}"))
        for key, v in (("maxSurge", self.max_surge), ("maxUnavailable", self.max_unavailable)):
            if isinstance(v, str) and int(v.rstrip("%")) > 100:
                problems.append((key, f"expected a percentage 0%-100%, got {v!r}"))
        if self.max_surge in (0, "0%") and self.max_unavailable in (0, "0%"):
            problems.append(("maxUnavailable", "expected non-zero when maxSurge is 0 "
                             f"(Kubernetes rejects both 0), got {self.max_unavailable!r}"))
        _rules(*problems)
        return self


class HealthCheck(Declared):
    """`targetGroup.healthCheck`"""

    path: Annotated[Str, Field(pattern="^/"), Expected("a path starting with '/'")] = Field(
        "/healthz", description="Health check path.")
    interval_seconds: Annotated[Int, Field(ge=1, le=300)] = Field(
        15, description="Check interval. AWS allows 5-300; the fake AWS accepts down to 1 in "
        "tests so scenarios finish in minutes.")
    timeout_seconds: Annotated[Int, Field(ge=1, le=120)] = Field(
        5, description="Must be less than the interval (AWS rule).")
    healthy_threshold: Annotated[Int, Field(ge=2, le=10)] = Field(
        2, description="Consecutive successes unhealthy -> healthy (a new target needs one).")
    unhealthy_threshold: Annotated[Int, Field(ge=2, le=10)] = Field(
        2, description="Consecutive failures -> unhealthy.")
    matcher: Annotated[Str, Field(pattern=r"^[0-9]{3}(-[0-9]{3})?(,[0-9]{3}(-[0-9]{3})?)*$"),
                       Expected("HTTP codes like '200', '200,202' or '200-299'")] = Field(
        "200", description="Success codes: \"200\", \"200,202\", \"200-299\".")

    @model_validator(mode="after")
    def _check(self) -> HealthCheck:
        if self.timeout_seconds >= self.interval_seconds:
            _rules(("timeoutSeconds", f"expected less than intervalSeconds "
                    f"({self.interval_seconds}), got {self.timeout_seconds} (AWS rejects it)"))
        return self


class TargetGroup(Declared):
    """`targetGroup`"""

    health_check: HealthCheck = Field(default_factory=HealthCheck,
                                      description="Health check settings (below).")
    deregistration_delay_seconds: Annotated[Int, Field(ge=0, le=3600)] = Field(
        300, description="`deregistration_delay.timeout_seconds` (AWS default 300).")
    slow_start_seconds: Annotated[Int, Field(ge=0, le=900)] = Field(
        0, description="`slow_start.duration_seconds`: 0 or 30-900.")
    attach_listener: Bool = Field(
        True, description="false: no listener forwards to the group, targets are `unused / "
        "Target.NotInUse` (#3753).")

    @model_validator(mode="after")
    def _check(self) -> TargetGroup:
        slow = self.slow_start_seconds
        if slow and not 30 <= slow <= 900:
            _rules(("slowStartSeconds", f"expected 0 or 30-900 (AWS limits), got {slow}"))
        return self


class Alb(Declared):
    """`alb`"""

    register_delay_seconds: Annotated[Num, Field(ge=0, le=600),
                                      EngineSetting("register_delay")] = Field(
        0.0, description="Propagation delay from RegisterTargets to the data plane (unverified "
        "figure; AWS reports tens of seconds).")
    deregister_delay_seconds: Annotated[Num, Field(ge=0, le=600),
                                        EngineSetting("deregister_delay")] = Field(
        0.0, description="Propagation delay from DeregisterTargets until the data plane stops "
        "sending new requests (#1064, #3270).")
    # ALB's own figure, under HTTP 504: "The load balancer failed to establish a connection to
    # the target before the connection timeout expired (10 seconds)" (ALB troubleshooting,
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-troubleshooting.html)
    connect_timeout_seconds: Annotated[Num, Field(gt=0, le=3600),
                                       EngineSetting("connect_timeout")] = Field(
        10.0, description="How long the fake ALB waits for a target to accept a connection "
        "before answering 504 (AWS: 10 s, not configurable on a real ALB; shorter makes "
        "scenarios with unreachable targets finish sooner).")
    idle_timeout_seconds: Annotated[Int, Field(ge=1, le=4000)] = Field(
        60, description="`idle_timeout.timeout_seconds` of the load balancer.")
    algorithm: Literal["round_robin", "least_outstanding_requests", "weighted_random"] = Field(
        "round_robin", description="`load_balancing.algorithm.type` of the target group "
        "(`least_outstanding_requests` is not combinable with slow start).")


ANNOTATION_PREFIX = "alb.ingress.kubernetes.io/"


class Canary(Declared):
    """`ingress.canary` - a second version of the demo app behind the same rule

    The run deploys the demo app twice, `demo` (the app) and `demo-v2` (the app with
    `rollout.newApp`), each with its Service and target group, and the Ingress's rule forwards
    to both by weight (an `alb.ingress.kubernetes.io/actions.*` forward action). The rollout
    shifts the weights instead of rolling a Deployment."""

    weight: Annotated[Int, Field(ge=0, le=100)] = Field(
        10, description="The canary's share of requests (percent) before the shift.")
    shift_to: Annotated[Int, Field(ge=0, le=100)] = Field(
        100, description="Its share after the shift (the rollout).")


class Swap(Declared):
    """`ingress.swap` - the rollout moves the rule to another Service

    The run deploys the demo app twice, `demo` (the rule's backend) and `demo-v2` (the app with
    `rollout.newApp`), each with its Service. `via: backend` edits the backend's Service name:
    the controller makes a target group for `demo-v2`, points the rule at it and deletes the
    old group as soon as its TargetGroupBinding is gone, without waiting for the deregistration
    delay (aws-load-balancer-controller #3739, #4810). `via: weights` is upstream's documented
    migration (docs/guide/use_cases/blue_green, PR #4819): the Ingress starts with a forward
    action to both Services at 100/0, the rollout shifts it to 0/100, holds `holdSeconds`,
    then takes the old Service out of the action."""

    via: Literal["backend", "weights"] = Field(
        "backend", description="`backend`: change the backend Service name; `weights`: shift "
        "a weighted forward action, then remove the old Service.")
    hold_seconds: Seconds = Field(
        None, description="`weights` only: how long 0/100 stays before the old Service leaves "
        "the action; null: the target group's deregistration delay.")


class SecondIngress(Declared):
    """`ingress.second` - another Ingress in the same IngressGroup

    A second Ingress (`demo-v2`) in the group `ingress.groupName` routes `path` to a second
    app (`demo-v2`, the app with `rollout.newApp`); the controller merges both Ingresses into
    one load balancer and listener, rules ordered by `group.order` (lower first), then by
    namespace/name (aws-load-balancer-controller's IngressGroup, annotations.md at v3.5.0).
    The rollout rolls the first app; `load.requests` can aim at both paths."""

    path: Annotated[Str, Field(pattern=r"^/[^\s]*$"), Expected("a path starting with '/'")] = Field(
        "/api", description="Its rule's path.")
    path_type: Literal["Prefix", "Exact", "ImplementationSpecific"] = Field(
        "Prefix", description="Its `pathType`.")
    order: Annotated[Int, Field(ge=-1000, le=1000)] = Field(
        0, description="Its `group.order` (the first Ingress keeps the default 0): lower "
        "orders' rules come first, so a more specific path needs a lower order than a "
        "catch-all `/`.")


class IngressSection(Declared):
    """`ingress` - an Ingress instead of a TargetGroupBinding (the controller makes the ALB)

    The controller builds the load balancer, listener, rules and target group from the
    Ingress's annotations, as aws-load-balancer-controller does (docs/ingress.md). The run maps
    `targetGroup` and `alb` to annotations (health check, target group and load balancer
    attributes) and sets `listen-ports` to the run's listener port."""

    path: Annotated[Str, Field(pattern=r"^/[^\s]*$"), Expected("a path starting with '/'")] = Field(
        "/", description="The rule's path (`spec.rules[].http.paths[].path`).")
    path_type: Literal["Prefix", "Exact", "ImplementationSpecific"] = Field(
        "Prefix", description="Its `pathType`.")
    host: Annotated[Str | None, Field(pattern=r"^(\*\.)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
                    Expected("a host name like 'app.example.com' or '*.example.com'")] = Field(
        None, description="The rule's host (a host-header condition); `load.host` should "
        "match it.")
    group_name: Annotated[Str | None, Field(pattern=r"^[a-z0-9]([-a-z0-9.]{0,55}[a-z0-9])?$"),
                          Expected("an IngressGroup name of at most 57 characters (lower-case, "
                                   "digits, '-', '.')")] = Field(
        None, description="`alb.ingress.kubernetes.io/group.name` (IngressGroup); the run "
        "appends `-` and its namespace's 5-character suffix, so runs side by side never "
        "share a group.")
    canary: Canary | None = Field(
        None, description="A canary version behind the rule; the rollout shifts the weights "
        "(below).")
    swap: Swap | None = Field(
        None, description="The rollout moves the rule to a second Service (below).")
    second: SecondIngress | None = Field(
        None, description="A second Ingress in the same group, to a second app (below).")
    annotations: dict[Annotated[Str, Field(pattern=r"^alb\.ingress\.kubernetes\.io/")],
                      Str] = Field(
        default_factory=dict, description="More `alb.ingress.kubernetes.io/*` annotations; "
        "they win over the ones the run derives from `targetGroup` and `alb`.")


# The oldest release alb-controller --behave-like models (docs/controller.md "Behave like a
# release"); checked here so a scenario fails at load time, not in a crash-looping controller.
OLDEST_RELEASE = (2, 2, 0)
RELEASE = r"^v?[0-9]+\.[0-9]+\.[0-9]+$"


def _modelled_release(v: str | None) -> str | None:
    if v is not None and tuple(int(x) for x in v.lstrip("v").split(".")) < OLDEST_RELEASE:
        raise ValueError(f"release {v} is older than v2.2.0, the oldest one modelled")
    return v


class ControllerSwitches(Declared):
    """`controller` - switches of the minimal aws-load-balancer-controller"""

    version: Annotated[Str | None, Field(pattern=RELEASE), AfterValidator(_modelled_release),
                       Expected("a release like v2.4.1 (v2.2.0 or later) or null"),
                       ControllerFlag("--behave-like")] = Field(
        None, description="Upstream aws-load-balancer-controller release to behave like "
        "(docs/controller.md \"Behave like a release\"); the switches below that are null "
        "take its behaviour. null: the latest modelled (v3.5.0).")

    requeue_seconds: Annotated[Num, Field(ge=0.1, le=3600),
                               ControllerFlag("--targetgroupbinding-requeue-duration")] = Field(
        15.0, description="Re-check while a gate is pending.")
    pod_watch: Annotated[Bool | None, ControllerFlag("--pod-watch", off="--no-pod-watch")] = Field(
        None, description="Reconcile on pod changes (v3.4.0+); false reproduces #3622/#3677. "
        "null: as `version`.")
    backoff_requeue: Annotated[Bool | None,
                               ControllerFlag("--backoff-requeue", off="--fixed-requeue")] = Field(
        None, description="Requeue a pending gate through the exponential error backoff "
        "(before v2.9.1, #1960). null: as `version`.")
    legacy_endpoints: Annotated[
        Bool | None, ControllerFlag("--legacy-endpoints", off="--enable-endpoint-slices")] = Field(
        None, description="Read Endpoints instead of EndpointSlices (no `terminating` "
        "condition; the default before v2.14.0). null: as `version`.")
    pod_cache_delay_seconds: Annotated[
        Num | None, Field(ge=0, le=600), Expected("a number of seconds or null"),
        ControllerFlag("--pod-cache-delay")] = Field(
        None, description="Hold pod events this long before the controller's pod cache sees "
        "them: the race of #3299 (an EndpointSlice event before its pod is cached) on every "
        "new pod. Not an upstream setting.")
    # upstream v2.2.1 added the cap (PR #2029, for #1974); a low cap is the documented
    # workaround for gates pending for minutes (#1960, #3622)
    max_backoff_seconds: Annotated[
        Num | None, Field(ge=0.001, le=3600), Expected("a number of seconds or null"),
        ControllerFlag("--targetgroupbinding-max-exponential-backoff-delay")] = Field(
        None, description="Cap of the exponential backoff of a failing or (with "
        "`backoffRequeue`) pending binding; null: the controller's default (1000 s).")


TOKEN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"  # RFC 9110 token: methods and header names


class Request(Declared):
    """`load.requests[]` - one kind of request in the mix"""

    path: Annotated[Str, Field(pattern=r"^/[^\s]*$"), Expected(
        "a path starting with '/' (no spaces)")] = Field("/", description="Request target.")
    method: Annotated[Str, Field(pattern=TOKEN), Expected("an HTTP method like GET")] = Field(
        "GET", description="HTTP method.")
    headers: Annotated[dict[Annotated[Str, Field(pattern=TOKEN)],
                            Annotated[Str, Field(pattern=r"^[^\r\n]*$")]],
                       Expected("a mapping of header names to values")] = Field(
        default_factory=dict, description="Extra request headers (not Host, Content-Length, "
        "Transfer-Encoding or Connection: the load generator sets those).")
    body: Str = Field("", description="Request body (sent with Content-Length).")
    weight: Annotated[Num, Field(gt=0, le=1000000), Expected("a number > 0")] = Field(
        1.0, description="Share of the requests: weights 3 and 1 send 75% and 25%.")

    @model_validator(mode="after")
    def _check(self) -> Request:
        managed = {"host", "content-length", "transfer-encoding", "connection"}
        bad = sorted(h for h in self.headers if h.lower() in managed)
        if bad:
            _rules(("headers", f"expected no {', '.join(bad)} header (the load generator sets "
                    "it; use load.host for Host)"))
        return self


class Load(Declared):
    """`load` - the open-loop load generator"""

    rate: Annotated[Num, Field(ge=0.1, le=5000)] = Field(
        50.0, description="Requests per second, fixed arrival rate.")
    duration: Annotated[
        Annotated[Num, Field(gt=0)] | Literal["untilRolloutDone"],
        Expected("a number of seconds or 'untilRolloutDone'")] = Field(
        "untilRolloutDone", alias="durationSeconds",
        description="Seconds of load, or `untilRolloutDone`: until the last rollout ends plus "
        "`marginSeconds`.")
    margin_seconds: Annotated[Num, Field(ge=0, le=600)] = Field(
        10.0, description="Extra load after the rollout (catches late draining errors).")
    max_duration_seconds: Annotated[Num, Field(ge=1, le=3600)] = Field(
        300.0, description="Cap for `untilRolloutDone` (a stalled rollout).")
    timeout_seconds: Annotated[Num, Field(ge=0.1, le=600)] = Field(
        30.0, description="Per-request client timeout; keep it above `alb.idleTimeoutSeconds` "
        "to see ALB 504s rather than client timeouts.")
    requests: Annotated[tuple[Request, ...], Field(min_length=1, max_length=100),
                        Expected("a non-empty list of requests (path, method, headers, "
                                 "body, weight)")
                        ] = Field((Request(),), description="The request mix (fields below); "
                                  "default one `GET /`.")
    host: Annotated[Str | None, Field(pattern=r"^[^\s/]+$"), Expected(
        "a host name like api.example.com")] = Field(
        None, description="Host header of every request; null: the listener's address.")

    @property
    def duration_seconds(self) -> float | None:
        """Seconds of load, None for 'until the rollout is done'."""
        return None if self.duration == "untilRolloutDone" else float(self.duration)

    @property
    def until_rollout_done(self) -> bool:
        return self.duration == "untilRolloutDone"


TRANSPORT_CLASSES = ("conn_refused", "conn_reset", "conn_closed", "timeout", "conn_error",
                     "bad_response")
ErrorClass = Annotated[
    Annotated[Int, Field(ge=400, le=599)]
    | Annotated[Str, Field(pattern="^([45][0-9][0-9]|" + "|".join(TRANSPORT_CLASSES) + ")$")],
    Expected("an HTTP error code like '502' or one of " + ", ".join(TRANSPORT_CLASSES))]


def _unique_strings(v: tuple[int | str, ...]) -> tuple[str, ...]:
    out = tuple(str(c) for c in v)
    if len(set(out)) != len(out):
        raise PydanticCustomError("unique", "entries must be unique, got {got}", {"got": v})
    return out


FAULT_ACTIONS = ("controllerRestart", "controllerStop", "controllerPartition", "bindingDelete",
                 "bindingReplace", "unready", "containerRestart", "containerKill", "nodeDrain",
                 "nodeShutdown", "nodeNetworkCut", "webhookDown", "awsThrottle",
                 "awsUnavailable", "awsRestart")
# faults on what every run beside this one shares (the fake AWS's engine process; a node, whose
# kubelet terminates every pod on it; API faults are scoped to the run's target groups, a
# network cut to the run's pods, and each run has its own controller): such a run runs alone
SHARED_FAULTS = ("awsRestart", "nodeShutdown")
FAULT_EVENTS = ("beforeRollout", "rolloutStart", "firstNewPodCreated", "firstNewPodReady",
                "firstOldPodTerminating")


class Fault(Declared):
    """`faults[]` - one fault injected during the (first) rollout; docs/faults.md"""

    action: Annotated[Literal[FAULT_ACTIONS], Expected(  # type: ignore[valid-type]
        "one of " + ", ".join(FAULT_ACTIONS))] = Field(
        description="`controllerRestart`: kill the controller pod (no grace) and wait for its "
        "replacement. `controllerStop`: no controller for `seconds` (scaled to 0, then back). "
        "`controllerPartition`: the controller cut off from the fake AWS for `seconds` (its "
        "calls hang until they time out). "
        "`bindingDelete`: delete the run's TargetGroupBinding. `bindingReplace`: delete it and, "
        "once gone, create `<name>-b` with the same spec. `unready`: `pods` of the new version "
        "answer 503 on /ready for `seconds` (demo app only). `containerRestart`: their "
        "liveness probe fails, so the kubelet restarts the container (preStop hook, SIGTERM, "
        "grace; no deletion timestamp); the fault lasts until it is Ready again (demo app "
        "only). `containerKill`: their process dies at once, as on an OOM kill (no hook, no "
        "SIGTERM), and is restarted (demo app only). `nodeDrain`: the worker node holding most "
        "of the run's pods is cordoned and the run's pods on it evicted (PodDisruptionBudgets "
        "hold evictions back), then uncordoned once they are gone. `nodeShutdown`: the worker "
        "holding most of the run's pods (not its controller) shut down gracefully by its "
        "kubelet: pods get preStop and SIGTERM with `seconds` of grace at most but no deletion "
        "timestamp, and end Failed; then the node comes back (needs cluster.workers >= 2). "
        "`nodeNetworkCut`: that node drops what the fake ALB sends to the run's pods on it for "
        "`seconds`. `webhookDown`: the run's "
        "webhooks unreachable for `seconds` (the webhooks' failurePolicy decides). "
        "`awsThrottle` / `awsUnavailable`: `share` of the controller's ELBv2 calls answered "
        "400 Throttling / 503 ServiceUnavailable for `seconds`. `awsRestart`: the fake AWS's "
        "engine (targets, health checks, draining, data plane) restarted with its state kept.")
    after: Annotated[Literal[FAULT_EVENTS], Expected(  # type: ignore[valid-type]
        "one of " + ", ".join(FAULT_EVENTS))] = Field(
        "rolloutStart", description="The event the fault waits for; then `delaySeconds`. "
        "`beforeRollout`: the rollout starts only once the fault is in effect.")
    delay_seconds: Annotated[Num, Field(ge=0, le=600)] = Field(
        0.0, description="Seconds after `after` before the fault starts.")
    seconds: Annotated[Num, Field(ge=0, le=600)] = Field(
        10.0, description="How long `controllerStop`, `controllerPartition`, `unready`, "
        "`nodeNetworkCut`, `webhookDown`, `awsThrottle` and `awsUnavailable` last; for "
        "`nodeShutdown`, the kubelet's shutdownGracePeriod less shutdownGracePeriodCriticalPods: "
        "the most a pod gets to terminate.")
    share: Annotated[Num, Field(gt=0, le=1)] = Field(
        1.0, description="`awsThrottle`, `awsUnavailable`: the share of calls refused.")
    pods: Annotated[Literal["one", "all"], Expected("'one' or 'all'")] = Field(
        "one", description="`unready`, `containerRestart`, `containerKill`: one new pod, or "
        "all of them.")
    settle_seconds: Annotated[Num, Field(ge=0, le=600)] = Field(
        10.0, description="The fault's window goes on this long after its action ends: with "
        "`expect.faultErrors: allowed`, failed requests inside a window are the fault's.")


class Expect(Declared):
    """`expect`"""

    errors: Annotated[Literal["none", "expected"], Expected(
        "'none' (the recipe holds) or 'expected' (a bug reproduces)")] = Field(
        "none", description="`none`: any failed request fails the run. `expected`: the "
        "scenario reproduces a bug.")
    classes: Annotated[tuple[ErrorClass, ...], AfterValidator(_unique_strings),
                       Expected("a list of error classes")] = Field(
        default_factory=tuple, description="With `expected`: the only error classes allowed "
        "(`\"502\"`, `\"503\"`, `\"504\"`, other HTTP codes, " +
        ", ".join(f"`{c}`" for c in TRANSPORT_CLASSES) + "); empty = any.")
    fault_errors: Annotated[Literal["none", "allowed"], Expected("'none' or 'allowed'")] = Field(
        "none", description="`allowed`: failed requests inside a fault's window (`faults[]`) do "
        "not count against `errors`; they are reported apart.")
    min_errors: Annotated[Int, Field(ge=0)] = Field(
        0, description="With `expected`: at least this many failed requests (the bug must "
        "reproduce).")
    baseline: Literal["healthy", "unhealthy"] = Field(
        "healthy", description="`unhealthy`: the targets are meant to be unhealthy from the "
        "start (the ALB fails open and routes to all of them); the baseline waits for the pods "
        "and for every target to be registered and `unhealthy`. `healthy` (default): a baseline "
        "that never becomes healthy ends the run with the targets' states and reasons.")
    rollout_stalls: Bool = Field(
        False, description="true: the rollout must not complete within "
        "`rollout.timeoutSeconds`. If the baseline (the Deployment's creation) already does not "
        "become Available in that time, that is the stall and no further rollout is started.")
    min_rollout_seconds: Seconds = Field(
        None, description="The rollout must take at least this long (slow-gate bugs).")
    max_rollout_seconds: Seconds = Field(None, description="The rollout must finish within this.")
    min_registration_lag_seconds: Seconds = Field(
        None, description="The slowest pod's ContainersReady -> RegisterTargets time (pod watch "
        "+ controller log) must be at least this (missed-trigger bugs).")
    max_registration_lag_seconds: Seconds = Field(None, description="... and at most this.")

    @model_validator(mode="after")
    def _check(self) -> Expect:
        problems = []
        if self.errors == "none" and self.classes:
            problems.append(("classes", "expected an empty list when expect.errors is 'none', "
                             f"got {list(self.classes)!r}"))
        if self.errors == "none" and self.min_errors:
            problems.append(("minErrors", "expected 0 when expect.errors is 'none', got "
                             f"{self.min_errors}"))
        _rules(*problems)
        return self


class Scenario(Declared):
    """A scenario file; see docs/scenarios.md for every field."""

    name: Annotated[Str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"), Expected(
        "a DNS label (lower-case letters, digits, '-'), like 'full-recipe'")] = Field(
        description="DNS label naming the scenario (built-ins: same as the file name).")
    description: Annotated[Str, Expected(
        "a string (say which upstream issue this reproduces)")] = Field(
        "", description="What it shows; cite the upstream aws-load-balancer-controller issue.")
    run_alone: Bool = Field(
        False, description="Timing-sensitive (its expectation is a duration): when scenarios "
        "run side by side (`testbed run --parallel N`), run apart from the others, beside one "
        "other runAlone scenario at most (the built-in ones are light and hold their bounds "
        "two at a time).")
    cluster: Cluster = Field(default_factory=Cluster, description="The cluster's shape.")
    app: App = Field(default_factory=App, description="The demo workload.")
    workload: Workload | None = Field(
        None, description="Your own manifests instead of the demo app (`app`); see "
        "docs/own-workload.md.")
    rollout: Rollout = Field(default_factory=Rollout, description="How the Deployment is rolled.")
    target_group: TargetGroup = Field(default_factory=TargetGroup,
                                      description="The target group's settings.")
    alb: Alb = Field(default_factory=Alb, description="Load balancer and fake ALB settings.")
    ingress: IngressSection | None = Field(
        None, description="An Ingress (the controller makes the ALB) instead of a "
        "TargetGroupBinding on an ALB the run makes; see docs/ingress.md.")
    controller: ControllerSwitches = Field(default_factory=ControllerSwitches,
                                   description="Controller switches.")
    load: Load = Field(default_factory=Load, description="The load sent through the ALB.")
    faults: Annotated[tuple[Fault, ...], Field(max_length=8),
                      Expected("a list of faults")] = Field(
        default_factory=tuple, description="Faults injected during the first rollout "
        "(docs/faults.md).")
    expect: Expect = Field(default_factory=Expect, description="What must happen.")

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        problems = []
        if self.target_group.slow_start_seconds and \
                self.alb.algorithm == "least_outstanding_requests":
            problems.append(("targetGroup.slowStartSeconds",
                             "expected 0 with alb.algorithm least_outstanding_requests (AWS "
                             f"does not combine them), got {self.target_group.slow_start_seconds}"))
        ro = self.rollout
        if self.workload is not None:
            if "app" in self.model_fields_set:
                problems.append(("app", "expected no app section with workload (the demo app "
                                 "and your manifests are alternatives)"))
            for key in ("max_surge", "max_unavailable"):
                if key in ro.model_fields_set:
                    problems.append((f"rollout.{to_camel(key)}", "expected no such key with "
                                     "workload: your Deployment's own strategy applies; set it "
                                     "in your manifest"))
            if ro.new_app.model_dump(exclude_none=True):
                problems.append(("rollout.newApp", "expected no newApp with workload (it "
                                 "changes the demo app); use restart, image, patch or "
                                 "manifests"))
        else:
            for key in ("restart", "image", "container", "patch", "manifests"):
                if getattr(ro, key) not in (None, False):
                    problems.append((f"rollout.{key}", "expected only with workload (the demo "
                                     "app rolls with rollout.newApp)"))
        if self.ingress is not None:
            if not self.target_group.attach_listener:
                problems.append(("targetGroup.attachListener", "expected true with ingress "
                                 "(the controller always makes a listener rule for the "
                                 "backend)"))
            ing = self.ingress
            ann = ing.annotations
            extras = [k for k in ("canary", "swap", "second") if getattr(ing, k) is not None]
            if len(extras) > 1:
                problems.append((f"ingress.{extras[1]}", f"expected one of canary, swap and "
                                 f"second (this one has {' and '.join(extras)})"))
            for key in extras:
                if self.workload is not None:
                    problems.append((f"ingress.{key}", f"expected no {key} with workload (it "
                                     "deploys the demo app twice)"))
                if key != "second" and self.rollout.count != 1:
                    problems.append(("rollout.count", f"expected 1 with ingress.{key} (the "
                                     "rollout is that one change of the Ingress)"))
            if ing.second is not None and ing.group_name is None:
                problems.append(("ingress.second", "expected ingress.groupName too (the two "
                                 "Ingresses share the group's load balancer)"))
            if ing.swap is not None and ing.swap.via == "backend" and \
                    ing.swap.hold_seconds is not None:
                problems.append(("ingress.swap.holdSeconds", "expected only with via: weights"))
            for key in ("listen-ports", "target-type"):
                if ANNOTATION_PREFIX + key in ann:
                    problems.append(("ingress.annotations", f"expected no {key}: the run "
                                     "sets it (its listener port; ip targets)"))
            if ANNOTATION_PREFIX + "group.name" in ann:
                problems.append(("ingress.annotations", "expected no group.name: use "
                                 "ingress.groupName (the run adds its id to it, so runs side "
                                 "by side never share a load balancer)"))
        for i, f in enumerate(self.faults):
            if f.action == "nodeShutdown" and self.cluster.workers < 2:
                problems.append((f"faults.{i}.action", "expected cluster.workers >= 2 with "
                                 "nodeShutdown: the run's controller and the pods that replace "
                                 f"the terminated ones need a node that stays up, got "
                                 f"{self.cluster.workers}"))
        gate = self.workload.readiness_gate if self.workload else self.app.readiness_gate
        if self.expect.baseline == "unhealthy" and gate:
            problems.append(("expect.baseline", "expected healthy with a readiness gate: the "
                             "gate keeps pods unready while their targets are unhealthy, so "
                             "no Deployment could become Available; set readinessGate: false"))
        _rules(*problems)
        return self

    @property
    def readiness_gate(self) -> bool:
        """Whether the run labels its namespace for readiness-gate injection."""
        return self.workload.readiness_gate if self.workload else self.app.readiness_gate

    def app_for(self, new_version: bool) -> App:
        """The app settings of the first (False) or rolled-out (True) version."""
        if not new_version:
            return self.app
        changes: BaseModel = self.rollout.new_app
        return self.app.model_copy(update=changes.model_dump(exclude_none=True))

    def to_dict(self) -> dict[str, Any]:
        """As a scenario file would say it, every default filled in."""
        return self.model_dump(by_alias=True, mode="json")
