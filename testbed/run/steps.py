"""A scenario run as named steps (in the spirit of kind's create actions): each step is a small
function of the run's state, done in order by testbed/run/runner.py, and testable on its own.

prepare -> configure -> deploy -> baseline -> load -> rollouts -> finish_load -> collect ->
report; cleanup always runs last. A baseline that never becomes healthy skips the load and the
rollouts, and the report says why.
"""

from __future__ import annotations

import contextlib
import copy
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
from testbed.run.podwatch import PodRecorder
from testbed.scenario import plan
from testbed.scenario.model import Scenario
from testbed.stack import fakeaws
from testbed.stack.apply import apply
from testbed.stack.controller import ControllerDeployment, ControllerSettings
from testbed.workload import images, rollout
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
    # False when a scheduler already deployed the controller with this run's flags
    deploy_controller: bool = True
    # set from outside (Ctrl-C, a failing sibling run) to end the run's waits early
    cancel: threading.Event = field(default_factory=threading.Event)
    # what cleanup releases last (the listener port lease)
    held: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    listener_port: int = 0  # leased by configure
    # ingress canary: the canary's target group (its events, settings and baseline too)
    canary_tg_arn: str | None = None

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


def load_seconds(sc: Scenario) -> float:
    """How long the load generator is set to run at most."""
    return sc.load.duration_seconds or sc.load.max_duration_seconds


def controller_settings(sc: Scenario, stack: Stack) -> ControllerSettings:
    return ControllerSettings(aws_endpoint_url=stack.aws.cluster_endpoint_url,
                              image=stack.image, args=plan.controller_args(sc))


def _probe_path(container: dict[str, Any]) -> str | None:
    path = ((container.get("readinessProbe") or {}).get("httpGet") or {}).get("path")
    return str(path) if path else None


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
            check_for_run(docs)
            target = select_target(docs, w.deployment, w.service, w.port)
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
    if r.deploy_controller:
        r.stack.controller.deploy(controller_settings(r.sc, r.stack))
    url = r.stack.aws.endpoint_url
    port = r.held.enter_context(
        r.stack.aws.listener_port(lambda: awssetup.listener_ports_in_use(url)))
    r.events_since = r.stack.aws.cursor()
    r.listener_port = port
    if r.sc.ingress is not None:
        return  # the controller makes the ALB from the run's Ingress (deploy)
    # unique per run: the same scenario may run twice at once (repeat runs)
    r.setup = awssetup.create(r.sc, url, f"{r.sc.name[:26]}-{r.ns[-5:]}", port,
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
                             f"in time; its logs:\n{r.stack.controller.logs(50)}")
    if r.sc.ingress is not None:
        for tg_arn in _tg_arns(r):
            r.stack.aws.configure(target_group_arn=tg_arn, **plan.engine_settings(r.sc))
    apply(r.stack.api, [d for d in docs if d["kind"] in plan.POD_MAKERS])


def _tg_arns(r: Run) -> list[str]:
    """The run's target groups: its own, and an ingress canary's."""
    assert r.setup is not None
    return [r.setup.tg_arn] + ([r.canary_tg_arn] if r.canary_tg_arn else [])


def _ingress_run_objects(r: Run) -> list[dict[str, Any]]:
    """The run's objects in ingress mode: as in binding mode, with the Ingress in place of
    the TargetGroupBinding."""
    it, sc = r.it, r.sc
    if it.target is not None:
        docs = plan.workload_manifests(sc, it.docs, it.target, "<made by the controller>",
                                       ns=r.ns)
        service, port = it.target.service_name, it.target.port_ref
    else:
        docs = plan.manifests(sc, r.stack.image, "<made by the controller>", name=APP,
                              ns=r.ns)
        service, port = APP, plan.SERVICE_PORT
    ing = plan.ingress(sc, name=service, ns=r.ns, service=service, port=port,
                       listener_port=r.listener_port)
    return [ing if d["kind"] == "TargetGroupBinding" else d for d in docs]


def _ingress_bindings(r: Run, custom: client.CustomObjectsApi) -> list[str] | None:
    """Ingress mode: once the controller has made a TargetGroupBinding for each of the run's
    Services (the app's, and a canary's) and the ALB has a listener on the run's port, the
    run knows its bindings, target groups and listener -> the bindings' names (None: not
    yet)."""
    service = r.it.target.service_name if r.it.target is not None else APP
    services = [service]
    if r.sc.ingress is not None and r.sc.ingress.canary is not None:
        services.append(f"{service}-{plan.CANARY}")
    tgbs = custom.list_namespaced_custom_object("elbv2.k8s.aws", "v1beta1", r.ns,
                                                "targetgroupbindings")["items"]
    found = []
    for svc in services:
        mine = [t for t in tgbs if (t["spec"].get("serviceRef") or {}).get("name") == svc
                and t["spec"].get("targetGroupARN")]
        if not mine:
            return None
        found.append(mine[0])
    setup = awssetup.found(r.stack.aws.endpoint_url, found[0]["spec"]["targetGroupARN"],
                           r.listener_port)
    if setup is None:
        return None
    r.it.binding = found[0]["metadata"]["name"]
    r.setup = setup
    r.canary_tg_arn = found[1]["spec"]["targetGroupARN"] if len(found) > 1 else None
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

    def canary_ready() -> bool:
        if r.canary_tg_arn is None:
            return True
        states = diagnose.target_states(elbv2, r.canary_tg_arn)
        return sum(1 for t in states if t.state == want) >= it.replicas and \
            rollout_done(r.apps, r.ns, it.replicas, f"{it.deployment}-{plan.CANARY}")

    def reached() -> bool:
        states = diagnose.target_states(elbv2, tg_arn)
        if sum(1 for t in states if t.state == want) >= it.replicas and \
                rollout_done(r.apps, r.ns, it.replicas, it.deployment) and canary_ready():
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
    sc, it = r.sc, r.it
    count = 0 if r.stalled or r.baseline_failure is not None else r.rollouts
    if count and sc.ingress is not None and sc.ingress.canary is not None:
        _shift_canary(r)
        return
    for n in range(1, count + 1):
        with step(f"{sc.name}: rollout {n}/{count}") as outcome:
            started = time.monotonic()
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


def _shift_canary(r: Run) -> None:
    """The canary rollout: the Ingress's forward action gets the new weights; done once the
    listener's rule forwards with them (the controller has applied the change)."""
    sc = r.sc
    assert sc.ingress is not None and sc.ingress.canary is not None and r.setup is not None
    to = sc.ingress.canary.shift_to
    service = APP
    ing = plan.ingress(sc, name=service, ns=r.ns, service=service, port=plan.SERVICE_PORT,
                       listener_port=r.listener_port, canary_weight=to)
    elbv2, _ = awssetup.clients(r.stack.aws.endpoint_url)
    listener_arn = r.setup.listener_arn

    def shifted() -> bool:
        for rule in elbv2.describe_rules(ListenerArn=listener_arn)["Rules"]:
            for action in rule.get("Actions") or []:
                groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
                weights = {g["TargetGroupArn"]: g.get("Weight") for g in groups}
                if r.canary_tg_arn in weights:
                    return weights[r.canary_tg_arn] == to
        return False

    with step(f"{sc.name}: canary weight {sc.ingress.canary.weight}% -> {to}%") as outcome:
        started = time.monotonic()
        apply(r.stack.api, [ing])
        if _holds(r, shifted, timeout=sc.rollout.timeout_seconds):
            r.rollout_seconds = time.monotonic() - started
        else:
            r.stalled = True
            outcome.not_met(f"the listener rule did not get the new weights within "
                            f"{sc.rollout.timeout_seconds}s")


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
    r.aws_events = events_since(r.stack.aws, r.events_since, r.setup,
                                [r.canary_tg_arn] if r.canary_tg_arn else [])
    try:
        text = r.stack.controller.logs(tail=None,
                                       since_seconds=int(time.time() - r.started + 5) + 1)
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
                            facts=facts(r))
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


def cleanup(r: Run) -> None:
    """Always: stop the load and the pod watch, delete the namespace and the ALB."""
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
        # Not waited for: namespaces are unique per run, and the controller's finalizer
        # deregisters the old targets from a target group nothing routes to any more. An
        # Ingress's ALB is the controller's to delete (its finalizer on the Ingress); until
        # it has, its listener keeps the port out of other runs' leases.
        try:
            if r.setup is not None and r.setup.made_by_run:
                awssetup.delete(r.setup, r.stack.aws.endpoint_url)
        except Exception as exc:  # the fake AWS may have been restarted meanwhile
            info(f"ALB clean-up: {exc}")
        finally:
            r.held.close()


STEPS: list[Callable[[Run], None]] = [prepare, configure, deploy, baseline, load, rollouts,
                                      finish_load, collect, report]
