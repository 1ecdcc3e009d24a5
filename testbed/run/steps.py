"""A scenario run as named steps (in the spirit of kind's create actions): each step is a small
function of the run's state, done in order by testbed/run/runner.py, and testable on its own.

configure -> deploy -> baseline -> load -> rollouts -> finish_load -> collect -> report;
cleanup always runs last.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from testbed.console import StepFailed, info, step
from testbed.loadgen.attack import AttackConfig, AttackResult, BackgroundAttack
from testbed.poll import TimedOut, poll
from testbed.report import Report, build_report, write_report
from testbed.run import awssetup, ctrllog
from testbed.run.podwatch import PodRecorder
from testbed.scenario import plan
from testbed.scenario.model import Scenario
from testbed.stack import fakeaws
from testbed.stack.apply import apply
from testbed.stack.controller import ControllerDeployment, ControllerSettings

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
class Run:
    """One run's state, filled in step by step."""

    sc: Scenario
    stack: Stack
    out_dir: Path
    ns: str
    rollouts: int  # how many rollouts to do (the scenario's count, or 0 for steady load)
    started: float = field(default_factory=time.time)
    events_since: int = 0
    setup: awssetup.AlbSetup | None = None
    recorder: PodRecorder | None = None
    attack: BackgroundAttack | None = None
    load_result: AttackResult | None = None
    stalled: bool = False
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

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.stack.api)


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


def rollout_done(apps: client.AppsV1Api, ns: str, replicas: int) -> bool:
    dep = apps.read_namespaced_deployment(APP, ns)
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
    # unique per run: the same scenario may run twice at once (repeat runs)
    r.setup = awssetup.create(r.sc, url, f"{r.sc.name[:26]}-{r.ns[-5:]}", port)
    r.stack.aws.configure(target_group_arn=r.setup.tg_arn, **plan.engine_settings(r.sc))


def deploy(r: Run) -> None:
    """Namespace, Service and TargetGroupBinding; the Deployment once the controller has seen
    the binding: the webhook injects gates from the controller's cache, and a pod created
    before the cache knows its TGB gets no gate (as with the real controller)."""
    assert r.setup is not None
    docs = plan.manifests(r.sc, r.stack.image, r.setup.tg_arn, name=APP, ns=r.ns)
    r.recorder = PodRecorder(r.stack.api, r.ns).start()
    apply(r.stack.api, [d for d in docs if d["kind"] != "Deployment"])
    custom = client.CustomObjectsApi(r.stack.api)

    def finalized() -> bool:
        tgb = custom.get_namespaced_custom_object("elbv2.k8s.aws", "v1beta1", r.ns,
                                                  "targetgroupbindings", APP)
        return TGB_FINALIZER in (tgb["metadata"].get("finalizers") or [])

    with step(f"{r.sc.name}: controller has seen the TargetGroupBinding"):
        if not _holds(r, finalized, timeout=60):
            raise StepFailed("the controller did not pick up the TargetGroupBinding within 60s;"
                             f" its logs:\n{r.stack.controller.logs(50)}")
    apply(r.stack.api, [d for d in docs if d["kind"] == "Deployment"])


def baseline(r: Run) -> None:
    """Every replica Available and every target healthy, before any load."""
    assert r.setup is not None
    sc, tg_arn, url = r.sc, r.setup.tg_arn, r.stack.aws.endpoint_url
    timeout = baseline_timeout(sc)
    with step(f"{sc.name}: baseline: {sc.app.replicas} pods Available and healthy "
              "targets") as outcome:
        reached = _holds(r, lambda: rollout_done(r.apps, r.ns, sc.app.replicas) and (
            awssetup.healthy_count(url, tg_arn) >= sc.app.replicas), timeout=timeout)
        if not reached:
            outcome.not_met(f"not reached within {timeout}s")
    if not reached:
        if not sc.expect.rollout_stalls:
            raise StepFailed(f"baseline of {sc.name} never became healthy")
        info("that is the stall this scenario expects; no further rollout is started")
        r.stalled = True


def load(r: Run) -> None:
    """Start open-loop load through the ALB listener; return once the warm-up requests have
    been answered (or failed), so rollouts start on flowing traffic."""
    assert r.setup is not None
    sc = r.sc
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
        duration=seconds, timeout=sc.load.timeout_seconds), on_record=count).start()
    with step(f"{sc.name}: warm-up load at {sc.load.rate:g} rps ({warm_up} requests)") as out:
        # requests that time out count too: a bound of their timeout past the schedule
        if not warmed.wait(timeout=warm_up / sc.load.rate + sc.load.timeout_seconds + 5):
            out.not_met(f"only {answered} of {warm_up} warm-up requests came back")


def rollouts(r: Run) -> None:
    """Roll the Deployment `r.rollouts` times, each to a new version; a rollout that misses its
    deadline is a stall and ends the series."""
    sc = r.sc
    count = 0 if r.stalled else r.rollouts
    for n in range(1, count + 1):
        with step(f"{sc.name}: rollout {n}/{count}") as outcome:
            started = time.monotonic()
            apply(r.stack.api, [plan.deployment(sc, r.stack.image, name=APP, ns=r.ns,
                                                version=f"v{n + 1}", new_version=True)])
            if _holds(r, lambda: rollout_done(r.apps, r.ns, sc.app.replicas),
                      timeout=sc.rollout.timeout_seconds):
                r.rollout_seconds = (r.rollout_seconds or 0) + time.monotonic() - started
            else:
                r.stalled = True
                outcome.not_met(f"did not finish within {sc.rollout.timeout_seconds}s")
                return


def finish_load(r: Run) -> None:
    """Load for its fixed duration, or (untilRolloutDone) `marginSeconds` more after the last
    rollout, then wait for every request in flight to come back."""
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
    r.aws_events = events_since(r.stack.aws, r.events_since, r.setup)
    try:
        text = r.stack.controller.logs(tail=None,
                                       since_seconds=int(time.time() - r.started + 5) + 1)
    except client.ApiException as exc:
        # a report without controller actions beats none
        info(f"controller logs unavailable ({exc.reason}); report has no controller actions")
    else:
        r.controller_actions = ctrllog.parse_actions(text, r.ns)


def report(r: Run) -> None:
    assert r.load_result is not None
    r.report = build_report(r.load_result.records, r.aws_events, r.pod_events,
                            r.controller_actions, name=r.sc.name, expect=r.sc.expect,
                            rollout_stalled=r.stalled, rollout_seconds=r.rollout_seconds,
                            host_load=r.host_load)
    r.paths = write_report(r.report, r.out_dir)


def events_since(aws: fakeaws.FakeAws, since: int, setup: awssetup.AlbSetup
                 ) -> list[dict[str, Any]]:
    """This run's fake AWS events: its target group's and its listener's."""
    events: list[dict[str, Any]] = []
    while True:
        batch, nxt = aws.events(since, target_group_arn=setup.tg_arn,
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
        # deregisters the old targets from a target group nothing routes to any more.
        try:
            if r.setup is not None:
                awssetup.delete(r.setup, r.stack.aws.endpoint_url)
        except Exception as exc:  # the fake AWS may have been restarted meanwhile
            info(f"ALB clean-up: {exc}")
        finally:
            r.held.close()


STEPS: list[Callable[[Run], None]] = [configure, deploy, baseline, load, rollouts, finish_load,
                                      collect, report]
