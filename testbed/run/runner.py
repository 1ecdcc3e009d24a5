"""Run one scenario: stack up, deploy, baseline healthy, load + rollout(s), collect, report.

Every wait has a deadline; Ctrl-C (KeyboardInterrupt) or any failure still tears the scenario's
namespace and ALB down, so the next run starts clean.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from testbed.cluster import lifecycle
from testbed.console import StepFailed, info, step
from testbed.images import build
from testbed.loadgen.attack import AttackConfig, BackgroundAttack
from testbed.poll import TimedOut, poll
from testbed.report import Report, build_report, write_report
from testbed.run import awssetup, ctrllog
from testbed.run.podwatch import PodRecorder
from testbed.scenario.model import Scenario
from testbed.scenario.render import render_deployment, render_manifests
from testbed.stack import fakeaws
from testbed.stack.apply import apply
from testbed.stack.controller import Controller, ControllerSettings

APP = "demo"


@dataclass
class RunResult:
    scenario: Scenario
    report: Report
    paths: dict[str, Path]
    rollout_stalled: bool
    rollout_seconds: float | None

    @property
    def ok(self) -> bool:
        return bool(self.report.verdict and self.report.verdict.ok)


@dataclass
class Stack:
    api: client.ApiClient
    image: str
    aws: fakeaws.FakeAws
    controller: Controller


def ensure_stack(workers: int = 1) -> Stack:
    """Cluster, project image, fake AWS and controller; each reused when already there."""
    lifecycle.up(workers)
    api = lifecycle.api()
    image = build.project_image()
    lifecycle.load_image(image)
    aws = fakeaws.start(api, image)
    return Stack(api, image, aws, Controller(api))


def controller_args(sc: Scenario) -> list[str]:
    args = []
    if not sc.controller.pod_watch:
        args.append("--no-pod-watch")
    if sc.controller.backoff_requeue:
        args.append("--backoff-requeue")
    if sc.controller.legacy_endpoints:
        args.append("--legacy-endpoints")
    return args


def _rollout_done(apps: client.AppsV1Api, ns: str, replicas: int) -> bool:
    dep = apps.read_namespaced_deployment(APP, ns)
    st = dep.status
    return (st.observed_generation == dep.metadata.generation
            and (st.updated_replicas or 0) == replicas
            and (st.available_replicas or 0) == replicas and (st.replicas or 0) == replicas)


def _wait(predicate: Any, timeout: float, interval: float = 0.5) -> bool:
    """True once `predicate` holds, False at the deadline (the caller decides what that means)."""
    try:
        return bool(poll(predicate, timeout, interval))
    except TimedOut:
        return False


def run(sc: Scenario, stack: Stack, out_dir: Path, rollouts: int | None = None) -> RunResult:
    """Run `sc`; `rollouts` overrides sc.rollout.count (0: steady load only, for soak runs)."""
    ns = f"sc-{sc.name[:40]}-{uuid.uuid4().hex[:5]}"
    run_started = time.time()
    apps = client.AppsV1Api(stack.api)
    core = client.CoreV1Api(stack.api)
    custom = client.CustomObjectsApi(stack.api)
    port = fakeaws.LISTENER_PORTS[0]
    stack.controller.deploy(ControllerSettings(
        aws_endpoint_url=stack.aws.cluster_endpoint_url, image=stack.image,
        requeue_seconds=sc.controller.requeue_seconds, extra_args=controller_args(sc)))
    stack.aws.reset()
    stack.aws.configure(register_delay=sc.alb.register_delay_seconds,
                        deregister_delay=sc.alb.deregister_delay_seconds)
    _, since = stack.aws.events()
    setup = awssetup.create(sc, stack.aws.endpoint_url, sc.name[:32], port)
    recorder = PodRecorder(stack.api, ns)
    attack: BackgroundAttack | None = None
    stalled = False
    rollout_seconds: float | None = None
    try:
        docs = render_manifests(sc, stack.image, setup.tg_arn, name=APP, namespace=ns)
        recorder.start()
        # Pods are created only once the controller has seen the TargetGroupBinding (its
        # finalizer is there): the webhook injects gates from the controller's cache, and a pod
        # created before the cache knows its TGB gets no gate (as with the real controller).
        apply(stack.api, [d for d in docs if d["kind"] != "Deployment"])
        with step(f"{sc.name}: controller has seen the TargetGroupBinding"):
            if not _wait(lambda: _tgb_finalized(custom, ns), timeout=60):
                raise StepFailed("the controller did not pick up the TargetGroupBinding within "
                                 f"60s; its logs:\n{stack.controller.logs(50)}")
        apply(stack.api, [d for d in docs if d["kind"] == "Deployment"])
        # A scenario that expects a stall gets the rollout deadline for its baseline too: the
        # first rollout (creating the Deployment) is where a stall such as #3753 shows first.
        baseline_timeout = sc.rollout.timeout_seconds + (0 if sc.expect.rollout_stalls else 60)
        with step(f"{sc.name}: baseline: {sc.app.replicas} pods Available and healthy "
                  "targets") as outcome:
            baseline = _wait(lambda: _rollout_done(apps, ns, sc.app.replicas) and (
                awssetup.healthy_count(stack.aws.endpoint_url, setup.tg_arn) >= sc.app.replicas),
                timeout=baseline_timeout)
            if not baseline:
                outcome.not_met(f"not reached within {baseline_timeout}s")
        if not baseline:
            if not sc.expect.rollout_stalls:
                raise StepFailed(f"baseline of {sc.name} never became healthy")
            info("that is the stall this scenario expects; no further rollout is started")
            stalled = True
        load = sc.load
        max_duration = load.duration_seconds or load.max_duration_seconds
        attack = BackgroundAttack(AttackConfig(url=stack.aws.listener_url(port) + "/",
                                               rate=load.rate, duration=max_duration,
                                               timeout=load.timeout_seconds))
        attack.start()
        load_start = time.monotonic()
        with step(f"{sc.name}: warm-up load at {load.rate:g} rps"):
            _wait(lambda: False, timeout=min(3.0, max_duration / 4))
        count = 0 if stalled else sc.rollout.count if rollouts is None else rollouts
        for n in range(1, count + 1):
            with step(f"{sc.name}: rollout {n}/{count}") as outcome:
                started = time.monotonic()
                apply(stack.api, [render_deployment(sc, stack.image, name=APP, namespace=ns,
                                                    version=f"v{n + 1}", new_version=True)])
                done = _wait(lambda: _rollout_done(apps, ns, sc.app.replicas),
                             timeout=sc.rollout.timeout_seconds)
                if done:
                    rollout_seconds = (rollout_seconds or 0) + time.monotonic() - started
                else:
                    stalled = True
                    outcome.not_met(f"did not finish within {sc.rollout.timeout_seconds}s")
                    break
        if load.until_rollout_done:
            end = min(time.monotonic() + load.margin_seconds, load_start + max_duration)
        else:
            end = load_start + max_duration
        with step(f"{sc.name}: load until the end of the run"):
            _wait(lambda: time.monotonic() >= end, timeout=max_duration + 5)
        attack.stop()
        result = attack.result(timeout=load.timeout_seconds + 30)
        attack = None
        pod_events = recorder.stop()
        aws_events = _events_since(stack.aws, since)
        actions = _controller_actions(stack, ns, since_seconds=time.time() - run_started + 5)
        report = build_report(result.records, aws_events, pod_events, actions, name=sc.name,
                              expect=sc.expect, rollout_stalled=stalled,
                              rollout_seconds=rollout_seconds)
        paths = write_report(report, out_dir)
        return RunResult(sc, report, paths, stalled, rollout_seconds)
    finally:
        if attack is not None:
            attack.stop()
        recorder.stop()
        _cleanup(core, ns, setup, stack)


def _tgb_finalized(custom: client.CustomObjectsApi, ns: str) -> bool:
    tgb = custom.get_namespaced_custom_object("elbv2.k8s.aws", "v1beta1", ns,
                                              "targetgroupbindings", APP)
    return "elbv2.k8s.aws/resources" in (tgb["metadata"].get("finalizers") or [])


def _controller_actions(stack: Stack, ns: str, since_seconds: float) -> list[dict[str, Any]]:
    """What the controller did for this run's bindings; a report without them beats none."""
    try:
        text = stack.controller.logs(tail=None, since_seconds=int(since_seconds) + 1)
    except client.ApiException as exc:
        info(f"controller logs unavailable ({exc.reason}); report has no controller actions")
        return []
    return ctrllog.parse_actions(text, ns)


def _events_since(aws: fakeaws.FakeAws, since: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        batch, nxt = aws.events(since)
        events += batch
        if not batch or nxt == since:
            return events
        since = nxt


def _cleanup(core: client.CoreV1Api, ns: str, setup: awssetup.AlbSetup, stack: Stack) -> None:
    with step(f"cleaning up namespace {ns} and the ALB"):
        try:
            core.delete_namespace(ns, grace_period_seconds=0)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
        # Not waited for: namespaces are unique per run, and the controller's finalizer
        # deregisters the old targets from a target group nothing routes to any more.
        try:
            awssetup.delete(setup, stack.aws.endpoint_url)
        except Exception as exc:  # the fake AWS may have been reset already
            info(f"ALB clean-up: {exc}")

