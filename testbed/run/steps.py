"""A scenario run as named steps (in the spirit of kind's create actions): each step is a small
function of the run's state, done in order by testbed/run/runner.py, and testable on its own.

prepare -> configure -> deploy -> baseline -> load -> rollouts -> finish_load -> collect ->
report; cleanup always runs last. A baseline that never becomes healthy skips the load and the
rollouts, and the report says why.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from testbed.check.facts import Facts, facts_from_scenario
from testbed.cluster import lifecycle
from testbed.console import StepFailed, info, step
from testbed.loadgen.attack import AttackConfig, AttackResult, BackgroundAttack, RequestSpec
from testbed.poll import TimedOut, poll
from testbed.report import Report, build_report, write_report
from testbed.run import awssetup, ctrllog, diagnose
from testbed.run.faults import PREPARE, FaultRecord, Faults, prepare_faults
from testbed.run.podwatch import PodRecorder
from testbed.scenario import plan
from testbed.scenario.model import Scenario
from testbed.stack import fakeaws
from testbed.stack.apply import apply
from testbed.stack.controller import ControllerDeployment, ControllerSettings, Names
from testbed.workload import images, rollout
from testbed.workload.ingress import check_ingresses, ingresses
from testbed.workload.manifests import WorkloadError, check_for_run, load_manifests
from testbed.workload.select import Target, select_target

APP = "demo"
TGB_FINALIZER = "elbv2.k8s.aws/resources"
# The load runs this long (at most a quarter of its duration) before the first rollout, so the
# report has a steady-state stretch to compare the rollout with.
WARM_UP_SECONDS = 3.0


@dataclass
class Stack:
    """What every run shares: the cluster's API, the project image, fake AWS, the controller."""

    api: client.ApiClient
    image: str
    aws: fakeaws.FakeAws
    controller: ControllerDeployment


@dataclass
class Subject:
    """What a run deploys and rolls: the demo app, or the user's workload."""

    deployment: str
    binding: str  # the TargetGroupBinding's name (its gate: target-health.elbv2.k8s.aws/<it>)
    replicas: int
    target_port: int
    probe_path: str | None  # the readinessProbe's httpGet path, for advice
    docs: list[dict[str, Any]] = field(default_factory=list)  # workload: its objects as read
    target: Target | None = None  # workload only
    prepared: Any = None  # workload: what its rollout trigger applies

    @staticmethod
    def demo(sc: Scenario) -> Subject:
        return Subject(APP, APP, sc.app.replicas, plan.APP_PORT, "/ready")


@dataclass
class Run:
    """One run's state, filled in step by step."""

    sc: Scenario
    stack: Stack
    out_dir: Path
    ns: str
    rollouts: int  # how many rollouts to do (the scenario's count, or 0 for steady load)
    subject: Subject | None = None
    started: float = field(default_factory=time.time)
    events_since: int = 0
    setup: awssetup.AlbSetup | None = None
    recorder: PodRecorder | None = None
    attack: BackgroundAttack | None = None
    load_result: AttackResult | None = None
    stalled: bool = False
    baseline_failure: diagnose.Diagnosis | None = None  # set: no load, no rollout, report why
    rollout_seconds: float | None = None
    pod_events: list[dict[str, Any]] = field(default_factory=list)
    aws_events: list[dict[str, Any]] = field(default_factory=list)
    controller_actions: list[dict[str, Any]] = field(default_factory=list)
    host_load: list[float] = field(default_factory=list)  # 1-min load average while loading
    report: Report | None = None
    paths: dict[str, Path] = field(default_factory=dict)
    # set from outside (Ctrl-C, a failing sibling run) to end the run's waits early
    cancel: threading.Event = field(default_factory=threading.Event)
    # what cleanup releases last (the listener port lease)
    held: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    listener_port: int = 0  # leased by configure
    faults: list[FaultRecord] = field(default_factory=list)  # as they happened (faults.py)
    # ingress mode: each of the run's Services -> the target group the controller made for it
    # (its events, fake ALB settings and health count too; kept after a swap deletes one)
    tg_by_service: dict[str, str] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        """Unique among runs side by side: the namespace's random suffix."""
        return self.ns[-5:]

    @property
    def controller(self) -> ControllerDeployment:
        """The run's own controller: `--watch-namespace` its namespace, its own webhooks, so
        runs with different controller flags go side by side."""
        return ControllerDeployment(self.stack.api, Names(self.run_id, self.ns))

    def target_groups(self) -> list[str]:
        """The run's target groups: its own, and in ingress mode the other Services' too."""
        assert self.setup is not None
        return list(dict.fromkeys([self.setup.tg_arn, *self.tg_by_service.values()]))

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.stack.api)

    @property
    def it(self) -> Subject:
        assert self.subject is not None, "the prepare step has not run"
        return self.subject


class Cancelled(StepFailed):
    """The run was asked to stop (Ctrl-C, or the batch it belongs to is ending)."""


def _holds(r: Run, predicate: Callable[[], bool], timeout: float) -> bool:
    """True once `predicate` holds, False at the deadline (the caller decides what that means);
    Cancelled as soon as the run is cancelled."""
    def probe() -> bool:
        if r.cancel.is_set():
            raise Cancelled(f"{r.sc.name}: cancelled")
        return predicate()

    try:
        return bool(poll(probe, timeout, 0.5))
    except TimedOut:
        return False


def rollout_done(apps: client.AppsV1Api, ns: str, replicas: int, name: str = APP) -> bool:
    dep = apps.read_namespaced_deployment(name, ns)
    st = dep.status
    return (st.observed_generation == dep.metadata.generation
            and (st.updated_replicas or 0) == replicas
            and (st.available_replicas or 0) == replicas and (st.replicas or 0) == replicas)


def baseline_timeout(sc: Scenario) -> int:
    """A scenario that expects a stall gets the rollout deadline for its baseline too: the
    first rollout (creating the Deployment) is where a stall such as #3753 shows first."""
    return sc.rollout.timeout_seconds + (0 if sc.expect.rollout_stalls else 60)


def elb_name(scenario: str, run_id: str) -> str:
    """The run's load balancer and target group name: at most 32 characters, no "--" and no
    "-" at either end (ELB's name rules), unique by the run id."""
    return f"{scenario[:26].rstrip('-')}-{run_id}"


def load_seconds(sc: Scenario) -> float:
    """How long the load generator is set to run at most."""
    return sc.load.duration_seconds or sc.load.max_duration_seconds


def controller_settings(sc: Scenario, stack: Stack) -> ControllerSettings:
    return ControllerSettings(aws_endpoint_url=stack.aws.cluster_endpoint_url,
                              image=stack.image, args=plan.controller_args(sc))


def _probe_path(container: dict[str, Any]) -> str | None:
    path = ((container.get("readinessProbe") or {}).get("httpGet") or {}).get("path")
    return str(path) if path else None


def _check_own_ingress(sc: Scenario, docs: list[dict[str, Any]], target: Target) -> None:
    """A workload that brings its Ingress: the scenario's `ingress` may only add
    annotations (its other fields describe the Ingress the run would make)."""
    assert sc.ingress is not None
    own = sorted(sc.ingress.model_fields_set - {"annotations"})
    if own:
        fields = ", ".join(f"ingress.{type(sc.ingress).model_fields[f].alias or f}"
                           for f in own)
        raise WorkloadError(f"{fields}: the workload brings its own Ingress, so only "
                            "ingress.annotations applies (over its annotations); set the "
                            "rest in the workload's Ingress")
    check_ingresses(docs, target, sc.load.host)


def prepare(r: Run) -> None:
    """The workload read, checked and its images put into the cluster, before anything is
    created: a mistake in the manifests ends the run here, with what to change."""
    sc = r.sc
    if sc.workload is None:
        r.subject = Subject.demo(sc)
        return
    w = sc.workload
    with step(f"{sc.name}: reading the workload in {w.path}"):
        try:
            docs = load_manifests(w.path)
            check_for_run(docs, ingress=sc.ingress is not None)
            target = select_target(docs, w.deployment, w.service, w.port)
            if sc.ingress is not None and ingresses(docs):
                _check_own_ingress(sc, docs, target)
            prepared = rollout.prepare(sc.rollout, target)
        except WorkloadError as exc:
            raise StepFailed(f"{sc.name}: {exc}") from None
    uses = images.image_uses(docs + (prepared if isinstance(prepared, list) else []))
    if sc.rollout.image:
        # the patched Deployment: the container keeps its imagePullPolicy, if it set one
        name = prepared["spec"]["template"]["spec"]["containers"][0]["name"]
        patched = copy.deepcopy(target.deployment)
        for c in patched["spec"]["template"]["spec"]["containers"]:
            if c.get("name") == name:
                c["image"] = sc.rollout.image
        uses += [u for u in images.image_uses([patched]) if u.image == sc.rollout.image]
    with step(f"{sc.name}: images into the cluster ({len(uses)} container uses)"):
        try:
            images.make_available(uses, lifecycle.load_image)
        except images.ImageMissing as exc:
            raise StepFailed(f"{sc.name}: {exc}") from None
    r.subject = Subject(target.deployment_name, target.service_name, target.replicas,
                        target.target_port, _probe_path(target.container), docs, target,
                        prepared)


def facts(r: Run) -> Facts | None:
    """What `testbed check` would read, for the report's advice."""
    try:
        return facts_from_scenario(r.sc, r.it.docs if r.it.target is not None else None)
    except (WorkloadError, ValueError) as exc:  # advice is a bonus; the report comes first
        info(f"{r.sc.name}: no advice ({exc})")
        return None


def configure(r: Run) -> None:
    """The controller with the scenario's flags; the run's own load balancer, target group and
    listener port in the fake AWS, with the scenario's engine settings on that target group
    only, so runs side by side do not touch each other's."""
    if any(f.action in PREPARE for f in r.sc.faults):
        with step(f"{r.sc.name}: preparing the nodes for its faults"):
            for done in prepare_faults(r):
                info(f"{r.sc.name}: {done} changed")
    # the namespace first: the controller's webhook is checked with a dry run in it
    apply(r.stack.api, [plan.namespace(r.sc, r.ns)])
    r.controller.deploy(controller_settings(r.sc, r.stack))
    url = r.stack.aws.endpoint_url
    port = r.held.enter_context(
        r.stack.aws.listener_port(lambda: awssetup.listener_ports_in_use(url)))
    r.events_since = r.stack.aws.cursor()
    r.listener_port = port
    if r.sc.ingress is not None:
        return  # the controller makes the ALB from the run's Ingress (deploy)
    # unique per run: the same scenario may run twice at once (repeat runs)
    r.setup = awssetup.create(r.sc, url, elb_name(r.sc.name, r.run_id), port,
                              target_port=r.it.target_port)
    r.stack.aws.configure(target_group_arn=r.setup.tg_arn, **plan.engine_settings(r.sc))


def deploy(r: Run) -> None:
    """Namespace, Service and TargetGroupBinding (or, with `ingress`, the Ingress: the
    controller makes the ALB and the binding); the Deployment once the controller has the
    binding: the webhook injects gates from the controller's cache, and a pod created before
    the cache knows its TGB gets no gate (as with the real controller)."""
    it = r.it
    if r.sc.ingress is not None:
        docs = _ingress_run_objects(r)
    elif it.target is not None:
        assert r.setup is not None
        docs = plan.workload_manifests(r.sc, it.docs, it.target, r.setup.tg_arn, ns=r.ns)
    else:
        assert r.setup is not None
        docs = plan.manifests(r.sc, r.stack.image, r.setup.tg_arn, name=APP, ns=r.ns)
    r.recorder = PodRecorder(r.stack.api, r.ns).start()
    apply(r.stack.api, [d for d in docs if d["kind"] not in plan.POD_MAKERS])
    custom = client.CustomObjectsApi(r.stack.api)

    def finalized() -> bool:
        names = [it.binding]
        if r.sc.ingress is not None:
            found = _ingress_bindings(r, custom)
            if found is None:
                return False
            names = found
        for name in names:
            tgb = custom.get_namespaced_custom_object("elbv2.k8s.aws", "v1beta1", r.ns,
                                                      "targetgroupbindings", name)
            if TGB_FINALIZER not in (tgb["metadata"].get("finalizers") or []):
                return False
        return True

    made = "made the ALB and " if r.sc.ingress is not None else ""
    with step(f"{r.sc.name}: controller has {made}seen the TargetGroupBinding"):
        if not _holds(r, finalized, timeout=60 if r.sc.ingress is None else 120):
            raise StepFailed(f"the controller did not {made}pick up the TargetGroupBinding "
                             f"in time\n{_controller_view(r)}")
    apply(r.stack.api, [d for d in docs if d["kind"] in plan.POD_MAKERS])


def _controller_view(r: Run) -> str:
    """What the controller said about this run: the events in its namespace (an Ingress's
    FailedDeployModel carries what AWS answered) and its log lines naming the namespace."""
    lines = []
    try:
        events = client.CoreV1Api(r.stack.api).list_namespaced_event(r.ns).items
    except client.ApiException as exc:
        lines.append(f"events unavailable ({exc.reason})")
        events = []
    for ev in events[-15:]:
        obj = ev.involved_object
        lines.append(f"event {obj.kind}/{obj.name}: {ev.type} {ev.reason}: {ev.message}")
    try:
        text = r.controller.logs(tail=None, since_seconds=int(time.time() - r.started) + 5)
    except client.ApiException as exc:
        text = f"<controller logs unavailable: {exc.reason}>"
    mine = [line for line in text.splitlines() if r.ns in line]
    lines += ["controller log lines about " + r.ns + ":", *mine[-30:]] if mine else \
        ["no controller log line names " + r.ns + "; its last lines:",
         *text.splitlines()[-20:]]
    return "\n".join(lines)


def _service(r: Run) -> tuple[str, int | str]:
    """The Service (and its port) the run's Ingress routes to first."""
    if r.it.target is not None:
        return r.it.target.service_name, r.it.target.port_ref
    return APP, plan.SERVICE_PORT


def _ingress_services(r: Run) -> list[str]:
    """The Services that have a target group from the start: the first Ingress version's and
    a second Ingress's."""
    assert r.sc.ingress is not None
    service, _ = _service(r)
    out = plan.ingress_steps(r.sc, service)[0].services
    return out + ([f"{service}-{plan.SECOND}"] if r.sc.ingress.second is not None else [])


def _ingress_run_objects(r: Run) -> list[dict[str, Any]]:
    """The run's objects in ingress mode: as in binding mode, with the Ingress in place of
    the TargetGroupBinding."""
    it, sc = r.it, r.sc
    assert sc.ingress is not None
    if it.target is not None:
        docs = plan.workload_manifests(sc, it.docs, it.target, "<made by the controller>",
                                       ns=r.ns)
    else:
        docs = plan.manifests(sc, r.stack.image, "<made by the controller>", name=APP,
                              ns=r.ns)
    if ingresses(it.docs):  # the workload's own: the controller reads it, the run adapts it
        return [plan.workload_ingress(sc, d, ns=r.ns, listener_port=r.listener_port,
                                      run_id=r.run_id) if d["kind"] == "Ingress" else d
                for d in docs if d["kind"] != "TargetGroupBinding"]
    service, port = _service(r)
    ings = [plan.ingress(sc, name=service, ns=r.ns, port=port, listener_port=r.listener_port,
                         step=plan.ingress_steps(sc, service)[0], run_id=r.run_id)]
    if sc.ingress.second is not None:
        ings.append(plan.second_ingress(sc, name=service, ns=r.ns, port=port,
                                        listener_port=r.listener_port, run_id=r.run_id))
    out: list[dict[str, Any]] = []
    for d in docs:
        out += ings if d["kind"] == "TargetGroupBinding" else [d]
    return out


def _bound_groups(r: Run, custom: client.CustomObjectsApi) -> dict[str, dict[str, Any]]:
    """Service -> the controller's TargetGroupBinding for it (with a target group ARN); every
    target group seen is remembered in `r.tg_by_service` (and given the run's fake ALB
    settings when it is new)."""
    tgbs = custom.list_namespaced_custom_object("elbv2.k8s.aws", "v1beta1", r.ns,
                                                "targetgroupbindings")["items"]
    out: dict[str, dict[str, Any]] = {}
    for t in tgbs:
        svc = (t["spec"].get("serviceRef") or {}).get("name")
        arn = t["spec"].get("targetGroupARN")
        if svc and arn:
            out.setdefault(svc, t)
            if svc not in r.tg_by_service:
                r.stack.aws.configure(target_group_arn=arn, **plan.engine_settings(r.sc))
                r.tg_by_service[svc] = arn
    return out


def _ingress_bindings(r: Run, custom: client.CustomObjectsApi) -> list[str] | None:
    """Ingress mode: once the controller has made a TargetGroupBinding for each of the run's
    Services (the app's, and a canary's) and the ALB has a listener on the run's port, the
    run knows its bindings, target groups and listener -> the bindings' names (None: not
    yet)."""
    services = _ingress_services(r)
    bound = _bound_groups(r, custom)
    if any(svc not in bound for svc in services):
        return None
    found = [bound[svc] for svc in services]
    setup = awssetup.found(r.stack.aws.endpoint_url, found[0]["spec"]["targetGroupARN"],
                           r.listener_port)
    if setup is None:
        return None
    r.it.binding = found[0]["metadata"]["name"]
    r.setup = setup
    return [t["metadata"]["name"] for t in found]


def _clear_for(sc: Scenario) -> float:
    """How long every target must stay unhealthy before the baseline gives up: long enough
    for a slow app to pass `healthyThreshold` checks in a row after a first success."""
    hc = sc.target_group.health_check
    return max(10.0, 2 * hc.interval_seconds * hc.healthy_threshold)


def baseline(r: Run) -> None:
    """Every replica Available and every target healthy (or, with expect.baseline unhealthy,
    registered and unhealthy), before any load. When it cannot happen the run ends here as
    soon as the cause is clear, and the report says which targets are in which state."""
    assert r.setup is not None
    sc, it, tg_arn = r.sc, r.it, r.setup.tg_arn
    elbv2, _ = awssetup.clients(r.stack.aws.endpoint_url)
    core = client.CoreV1Api(r.stack.api)
    timeout = baseline_timeout(sc)
    want = "unhealthy" if sc.expect.baseline == "unhealthy" else "healthy"
    clear_since: list[float] = []
    seen: list[diagnose.Diagnosis] = []

    def look(states: list[diagnose.TargetState] | None = None) -> diagnose.Diagnosis:
        pods = core.list_namespaced_pod(r.ns).items
        if states is None:
            states = diagnose.target_states(elbv2, tg_arn)
        return diagnose.explain(sc, it.replicas, pods, states, probe_path=it.probe_path,
                                target_port=it.target_port)

    def others_ready() -> bool:
        """Ingress mode: the second app Available, every other group's targets `want`."""
        if not plan.second_app(sc):
            return True
        for arn in r.target_groups()[1:]:
            if sum(1 for t in diagnose.target_states(elbv2, arn) if t.state == want) < \
                    it.replicas:
                return False
        return rollout_done(r.apps, r.ns, it.replicas, f"{it.deployment}-{plan.SECOND}")

    def reached() -> bool:
        states = diagnose.target_states(elbv2, tg_arn)
        if sum(1 for t in states if t.state == want) >= it.replicas and \
                rollout_done(r.apps, r.ns, it.replicas, it.deployment) and others_ready():
            return True
        if want == "healthy" and not sc.expect.rollout_stalls:  # a stall waits its deadline
            why = look(states)
            seen[:] = [why]
            if not why.clear:
                clear_since.clear()
                return False
            if not clear_since:
                clear_since.append(time.monotonic())
            # stuck pods are final at once; unhealthy targets once they stayed so a while
            if why.final or time.monotonic() - clear_since[0] >= _clear_for(sc):
                raise _Clear(why)
        return False

    with step(f"{sc.name}: baseline: {it.replicas} pods Available and {want} "
              "targets") as outcome:
        try:
            ok = _holds(r, reached, timeout=timeout)
        except _Clear as clear:
            outcome.not_met("cannot become healthy:\n" + clear.diagnosis.text())
            r.baseline_failure = clear.diagnosis
            return
        if not ok:
            outcome.not_met(f"not reached within {timeout}s")
    if not ok:
        if sc.expect.rollout_stalls:
            info("that is the stall this scenario expects; no further rollout is started")
            r.stalled = True
            return
        r.baseline_failure = seen[0] if seen else look()
        r.baseline_failure.lines.insert(0, f"not reached within {timeout}s")


class _Clear(Exception):
    def __init__(self, diagnosis: diagnose.Diagnosis) -> None:
        super().__init__(diagnosis.text())
        self.diagnosis = diagnosis


def load(r: Run) -> None:
    """Start open-loop load through the ALB listener; return once the warm-up requests have
    been answered (or failed), so rollouts start on flowing traffic."""
    assert r.setup is not None
    sc = r.sc
    if r.baseline_failure is not None:
        return
    seconds = load_seconds(sc)
    warm_up = max(1, int(sc.load.rate * min(WARM_UP_SECONDS, seconds / 4)))
    answered = 0
    warmed = threading.Event()
    sampled = [0.0]

    def count(record: Any) -> None:
        nonlocal answered
        answered += 1
        if answered >= warm_up:
            warmed.set()
        if record.intended - sampled[0] >= 1.0:  # the host's load, once a second of schedule
            sampled[0] = record.intended
            r.host_load.append(os.getloadavg()[0])

    r.attack = BackgroundAttack(AttackConfig(
        url=r.stack.aws.listener_url(r.setup.listener_port) + "/", rate=sc.load.rate,
        duration=seconds, timeout=sc.load.timeout_seconds, host=sc.load.host,
        requests=tuple(RequestSpec(q.path, q.method, tuple(q.headers.items()),
                                   q.body.encode(), q.weight) for q in sc.load.requests)),
        on_record=count).start()
    with step(f"{sc.name}: warm-up load at {sc.load.rate:g} rps ({warm_up} requests)") as out:
        # requests that time out count too: a bound of their timeout past the schedule
        if not warmed.wait(timeout=warm_up / sc.load.rate + sc.load.timeout_seconds + 5):
            out.not_met(f"only {answered} of {warm_up} warm-up requests came back")


def rollouts(r: Run) -> None:
    """Roll the Deployment `r.rollouts` times, each to a new version; a rollout that misses its
    deadline is a stall and ends the series."""
    sc = r.sc
    count = 0 if r.stalled or r.baseline_failure is not None else r.rollouts
    if count and sc.ingress is not None and \
            len(plan.ingress_steps(sc, _service(r)[0])) > 1:
        _change_ingress(r)
        return
    faults = Faults(r) if count and sc.faults else None
    try:
        _roll(r, count, faults)
    finally:
        if faults is not None:
            r.faults = faults.stop()
            for f in r.faults:
                info(f"{sc.name}: fault {f.index} {f.action}: " +
                     (f"error: {f.error}" if f.error else f.target or "done"))


def _roll(r: Run, count: int, faults: Faults | None) -> None:
    sc, it = r.sc, r.it
    for n in range(1, count + 1):
        with step(f"{sc.name}: rollout {n}/{count}") as outcome:
            started = time.monotonic()
            if faults is not None and n == 1:
                faults.start(time.time())
            if it.target is not None:
                rollout.trigger(r.stack.api, r.ns, sc.rollout, it.target, it.prepared)
            else:
                apply(r.stack.api, [plan.deployment(sc, r.stack.image, name=APP, ns=r.ns,
                                                    version=f"v{n + 1}", new_version=True)])
            if _holds(r, lambda: rollout_done(r.apps, r.ns, it.replicas, it.deployment),
                      timeout=sc.rollout.timeout_seconds):
                r.rollout_seconds = (r.rollout_seconds or 0) + time.monotonic() - started
            else:
                r.stalled = True
                outcome.not_met(f"did not finish within {sc.rollout.timeout_seconds}s")
                return


def _forwards(rules: list[dict[str, Any]]) -> list[dict[str, int]]:
    """Each rule's forward action as {target group ARN: weight} (a plain forward: weight 1)."""
    out = []
    for rule in rules:
        for action in rule.get("Actions") or []:
            if action.get("Type") != "forward":
                continue
            groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or \
                [{"TargetGroupArn": action.get("TargetGroupArn"), "Weight": 1}]
            out.append({g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups})
    return out


def _change_ingress(r: Run) -> None:
    """The ingress rollout: each later Ingress version in turn (plan.ingress_steps), each
    done once the listener's rule forwards as it says and the target group of a Service it
    takes out is deleted, then the version's hold (the recipe's wait)."""
    sc = r.sc
    assert r.setup is not None
    service, port = _service(r)
    elbv2, _ = awssetup.clients(r.stack.aws.endpoint_url)
    custom = client.CustomObjectsApi(r.stack.api)
    listener_arn = r.setup.listener_arn

    def gone(arn: str) -> bool:
        try:
            elbv2.describe_target_groups(TargetGroupArns=[arn])
        except elbv2.exceptions.TargetGroupNotFoundException:
            return True
        return False

    def applied(version: plan.IngressStep) -> bool:
        _bound_groups(r, custom)
        arns = r.tg_by_service
        if any(svc not in arns for svc in version.services):
            return False
        want = ({arns[svc]: w for svc, w in version.weights} if version.weights
                else {arns[version.backend]: 1})
        rules = elbv2.describe_rules(ListenerArn=listener_arn)["Rules"]
        if not any(f == want if version.weights else set(f) == set(want)
                   for f in _forwards(rules)):
            return False
        return version.removes is None or gone(arns[version.removes])

    started = time.monotonic()
    for version in plan.ingress_steps(sc, service)[1:]:
        with step(f"{sc.name}: Ingress {version.title}") as outcome:
            apply(r.stack.api, [plan.ingress(sc, name=service, ns=r.ns, port=port,
                                             listener_port=r.listener_port, step=version,
                                             run_id=r.run_id)])
            if not _holds(r, functools.partial(applied, version),
                          timeout=sc.rollout.timeout_seconds):
                r.stalled = True
                outcome.not_met(f"the controller did not apply it within "
                                f"{sc.rollout.timeout_seconds}s")
                return
        if version.hold_seconds:
            info(f"{sc.name}: holding {version.hold_seconds:g}s (the recipe's wait)")
            if r.cancel.wait(version.hold_seconds):
                raise Cancelled(f"{sc.name}: cancelled")
    r.rollout_seconds = time.monotonic() - started


def finish_load(r: Run) -> None:
    """Load for its fixed duration, or (untilRolloutDone) `marginSeconds` more after the last
    rollout, then wait for every request in flight to come back."""
    if r.baseline_failure is not None:
        return
    assert r.attack is not None
    sc = r.sc
    timer: threading.Timer | None = None
    if sc.load.until_rollout_done:
        timer = threading.Timer(sc.load.margin_seconds, r.attack.stop)
        timer.daemon = True
        timer.start()
    with step(f"{sc.name}: load until the end of the run"):
        try:
            r.load_result = r.attack.result(timeout=load_seconds(sc) + sc.load.timeout_seconds
                                            + 30)
        finally:
            if timer is not None:
                timer.cancel()
    r.attack = None


def collect(r: Run) -> None:
    """Pod lifecycle, fake AWS events and controller actions of this run."""
    if r.recorder is not None:
        r.pod_events = r.recorder.stop()
    assert r.setup is not None
    r.aws_events = events_since(r.stack.aws, r.events_since, r.setup, r.target_groups()[1:])
    try:
        text = r.controller.logs(tail=None, since_seconds=int(time.time() - r.started + 5) + 1)
    except client.ApiException as exc:
        # a report without controller actions beats none
        info(f"controller logs unavailable ({exc.reason}); report has no controller actions")
    else:
        r.controller_actions = ctrllog.parse_actions(text, r.ns)


def report(r: Run) -> None:
    """The report, also for a baseline that never became healthy (then without load)."""
    failed = r.baseline_failure
    assert r.load_result is not None or failed is not None
    records = r.load_result.records if r.load_result is not None else []
    r.report = build_report(records, r.aws_events, r.pod_events,
                            r.controller_actions, name=r.sc.name, expect=r.sc.expect,
                            rollout_stalled=None if failed else r.stalled,
                            rollout_seconds=r.rollout_seconds, host_load=r.host_load,
                            facts=facts(r), faults=[f.to_dict() for f in r.faults])
    if failed is not None and r.report.verdict is not None:
        r.report.verdict.ok = False
        r.report.verdict.reasons[:] = [
            "the baseline never became healthy (no load was sent, nothing was rolled)",
            *failed.lines, *[f"likely fix: {f}" for f in failed.fixes]]
    r.paths = write_report(r.report, r.out_dir)


def events_since(aws: fakeaws.FakeAws, since: int, setup: awssetup.AlbSetup,
                 more_groups: list[str] | None = None) -> list[dict[str, Any]]:
    """This run's fake AWS events: its target groups' and its listener's."""
    events: list[dict[str, Any]] = []
    while True:
        batch, nxt = aws.events(since, target_group_arn=[setup.tg_arn, *(more_groups or [])],
                                listener_port=setup.listener_port)
        events += batch
        if not batch or nxt == since:
            return events
        since = nxt


NAMESPACE_GONE_TIMEOUT = 180.0


def _gone(r: Run) -> bool:
    try:
        client.CoreV1Api(r.stack.api).read_namespace(r.ns)
    except client.ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


_reapers: list[threading.Thread] = []


def join_reapers(timeout: float = NAMESPACE_GONE_TIMEOUT + 30) -> None:
    """Wait for the controllers of runs cleaned up with wait=False to be removed."""
    end = time.monotonic() + timeout
    while _reapers:
        _reapers.pop().join(max(0.0, end - time.monotonic()))


def _remove_controller(r: Run) -> None:
    try:
        poll(lambda: _gone(r), NAMESPACE_GONE_TIMEOUT)
    except TimedOut:
        info(f"namespace {r.ns} still there after {NAMESPACE_GONE_TIMEOUT:.0f}s; removing "
             "its controller anyway")
    try:
        r.controller.remove()
    except client.ApiException as exc:
        info(f"controller clean-up for {r.ns}: {exc.reason}")


def cleanup(r: Run, wait: bool = True) -> None:
    """Always: stop the load and the pod watch, delete the namespace and the ALB; the run's
    controller goes once the namespace has (its finalizers deregister the targets and delete
    an Ingress's ALB first): now, or (wait False) in the background, see join_reapers."""
    if r.attack is not None:
        r.attack.stop()
    if r.recorder is not None:
        r.recorder.stop()
    with step(f"cleaning up namespace {r.ns} and the ALB"):
        try:
            client.CoreV1Api(r.stack.api).delete_namespace(r.ns, grace_period_seconds=0)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
        if wait:
            _remove_controller(r)
        else:
            t = threading.Thread(target=_remove_controller, args=(r,), daemon=True,
                                 name=f"reap-{r.run_id}")
            t.start()
            _reapers.append(t)
        try:
            if r.setup is not None and r.setup.made_by_run:
                awssetup.delete(r.setup, r.stack.aws.endpoint_url)
        except Exception as exc:  # the fake AWS may have been restarted meanwhile
            info(f"ALB clean-up: {exc}")
        finally:
            r.held.close()


STEPS: list[Callable[[Run], None]] = [prepare, configure, deploy, baseline, load, rollouts,
                                      finish_load, collect, report]
