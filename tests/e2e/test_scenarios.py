"""Every built-in scenario, and every example workload's scenarios (examples/*/ with a build.sh
for its image), against the real cluster: each bug scenario must produce its errors (of the
classes it names) or its stall, and each fixed twin must produce zero errors.

The scenarios run side by side (`E2E_PARALLEL`, default 3; those marked runAlone alone), once
per session, in the fixture below; each test then checks one scenario's outcome. `SHARD=K/N`
runs a stable share of them (a CI matrix of N jobs)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from testbed import docker
from testbed.check.facts import facts_from_scenario
from testbed.images import build
from testbed.proc import run as run_command
from testbed.report import Report
from testbed.report.text import render_text
from testbed.run.runner import Outcome, Stack, run_all, shard
from testbed.scenario import Scenario, builtin_names, load_scenario
from testbed.stack import fakeaws
from testbed.stack.controller import ControllerDeployment
from testbed.workload.manifests import load_manifests

pytestmark = pytest.mark.e2e
REPORTS = Path("reports/e2e-scenarios")
PARALLEL = int(os.environ.get("E2E_PARALLEL") or 3)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# An example's scenarios: the YAML files next to its build.sh (its manifests live below them).
EXAMPLE_SCENARIOS = {f"{f.parent.name}/{f.stem}": f for f in sorted(EXAMPLES.glob("*/*.yaml"))
                     if (f.parent / "build.sh").exists()}
# Scenarios only e2e runs: what a run does when things go wrong, not recipes for users.
E2E_SCENARIOS = {f"e2e/{f.stem}": f for f in sorted((Path(__file__).parent / "scenarios")
                                                   .glob("*.yaml"))}
FILES = {**EXAMPLE_SCENARIOS, **E2E_SCENARIOS}
GO_SERVER_IMAGE = "albtb-example/go-server:v1"
# Its verdict is a failure by design; test_unhealthy_baseline_is_explained checks how it fails.
WRONG_HEALTH_PATH = "e2e/wrong-health-path"
ALL = builtin_names() + sorted(FILES)
NAMES = shard(ALL, os.environ["SHARD"]) if os.environ.get("SHARD") else ALL


def _load(name: str) -> Scenario:
    return load_scenario(FILES.get(name, name))


def _key(name: str) -> str:
    """The outcome's key: the scenario's own name (an example's file says it)."""
    return _load(name).name

def _one_fault(outcomes: dict[str, Outcome], name: str) -> tuple[Report, dict[str, Any], str]:
    """A fault scenario's report, its one fault's record and the report as text (for
    assertion messages)."""
    result = outcomes[name].result
    assert result is not None, outcomes[name].error
    rep = result.report
    text = render_text(rep, width=200)
    (fault,) = rep.faults
    return rep, fault, text



@pytest.fixture(scope="module")
def outcomes(kube: client.ApiClient, project_image: str, aws: fakeaws.FakeAws
             ) -> dict[str, Outcome]:
    stack = Stack(kube, project_image, aws, ControllerDeployment(kube))
    # the example images, as their README tells a user to build them (cached by Docker)
    needs_example = any(n in FILES for n in NAMES)  # the e2e-only ones use go-server too
    for d in sorted({f.parent for f in EXAMPLE_SCENARIOS.values()} if needs_example else ()):
        run_command(["bash", d / "build.sh", build.base_image()], log_name=f"example-{d.name}")
    if needs_example:  # trigger-image rolls to another tag (of the same build)
        docker.tag(GO_SERVER_IMAGE, GO_SERVER_IMAGE.replace(":v1", ":v2"))
    scenarios = [_load(n) for n in NAMES]
    done = run_all(scenarios, stack, lambda sc: REPORTS / sc.name, parallel=PARALLEL)
    return {o.scenario.name: o for o in done}


@pytest.mark.parametrize("name", [n for n in NAMES if n != WRONG_HEALTH_PATH])
def test_builtin_scenario_meets_its_expectation(name: str, outcomes: dict[str, Outcome]
                                                ) -> None:
    sc = _load(name)
    outcome = outcomes[_key(name)]
    assert outcome.result is not None, f"{name} produced no report: {outcome.error}"
    result = outcome.result
    text = render_text(result.report)
    assert result.report.verdict is not None
    assert result.ok, f"{name} did not meet its expectation:\n{text}"
    summary = result.report.summary
    if sc.expect.errors == "none":
        # failures inside a fault's window are the fault's when the scenario allows them
        excused = result.report.fault_errors if sc.expect.fault_errors == "allowed" else 0
        assert summary.errors == excused, text
    else:
        assert summary.errors >= sc.expect.min_errors, text
        if sc.expect.classes:  # the errors are of the classes the bug is known to cause
            assert set(summary.error_classes) <= set(sc.expect.classes), text
    if sc.expect.rollout_stalls:
        assert result.rollout_stalled, text


@pytest.mark.skipif(WRONG_HEALTH_PATH not in NAMES, reason="in another shard")
def test_unhealthy_baseline_is_explained(outcomes: dict[str, Outcome]) -> None:
    """A health check path the app does not serve: the run ends once that is clear, sends no
    load, and its report names the targets' AWS reason and the fix."""
    sc = _load(WRONG_HEALTH_PATH)
    result = outcomes[sc.name].result
    assert result is not None, outcomes[sc.name].error
    report = result.report
    text = render_text(report, width=200)
    assert report.verdict is not None and not report.verdict.ok, text
    assert report.summary.requests == 0, text
    reasons = "\n".join(report.verdict.reasons)
    assert reasons.count("unhealthy / Target.ResponseCodeMismatch Health checks failed with "
                         "these codes: [404]") == sc.app.replicas, text
    assert "likely fix: the app answers 404 on /health: set targetGroup.healthCheck.path to a " \
        "path it serves such as the readinessProbe's /ready" in reasons, text
    # ended when the cause was clear, well before the deadline it would otherwise wait out
    assert report.t_end - report.t0 < sc.rollout.timeout_seconds / 2, text


@pytest.mark.skipif("go-server/failing" not in NAMES, reason="in another shard")
def test_failing_example_advice_names_the_fix(outcomes: dict[str, Outcome]) -> None:
    """The example's failing form: its errors point at the preStop sleep, and the change the
    advice asks for is what the fixed form does."""
    result = outcomes[_key("go-server/failing")].result
    assert result is not None
    text = render_text(result.report, width=200)
    prestop = [a for a in result.report.advice if a.rule == "prestop-sleep"]
    assert prestop, text
    asked = int(prestop[0].message.split("at least ")[1].split(" s")[0])
    fixed = _load("go-server/fixed")
    assert fixed.workload is not None
    applied = facts_from_scenario(fixed, load_manifests(fixed.workload.path)).pre_stop_seconds
    assert applied is not None and 0 < asked <= applied, text


# Bug scenarios and the rule of their fixed twin's fix: the report's advice, derived from the
# run's timeline, must name it (docs/check.md has the rules).
ADVICE = {"gate-no-prestop": "prestop-sleep", "no-gate-fast-rollout": "readiness-gate",
          "prestop-exceeds-grace": "grace-period", "keepalive-shorter-than-idle": "keep-alive",
          "go-server/failing": "prestop-sleep", "ingress-swap-backend": "backend-swap",
          "pod-cache-race": "controller-release", "readiness-all-fail": "readiness-outage",
          "container-restart": "restart-in-place", "node-shutdown": "node-shutdown"}


@pytest.mark.parametrize("name", [n for n in NAMES if n in ADVICE])
def test_bug_report_advice_names_the_fix(name: str, outcomes: dict[str, Outcome]) -> None:
    result = outcomes[_key(name)].result
    assert result is not None
    assert ADVICE[name] in [a.rule for a in result.report.advice], \
        render_text(result.report, width=200)


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("e2e/trigger-")])
def test_workload_trigger_replaces_every_pod(name: str, outcomes: dict[str, Outcome]) -> None:
    """restart, image, patch, manifests: each rolls the user's Deployment (a trigger that
    changed nothing would leave the first pods in place and still count as done)."""
    sc = _load(name)
    result = outcomes[sc.name].result
    assert result is not None
    created = {e["pod"] for e in result.report.pod_events if e["kind"] == "created"}
    ended = {e["pod"] for e in result.report.pod_events if e["kind"] == "terminating"}
    text = render_text(result.report, width=200)
    # the example's 3 replicas: the 3 first pods ended, 3 new ones serve
    assert len(ended) == 3 and ended < created and len(created - ended) == 3, text


@pytest.mark.skipif("pod-cache-race" not in NAMES, reason="in another shard")
def test_pod_cache_race_shows_the_controller_skipping_pods_it_never_registers(
        outcomes: dict[str, Outcome]) -> None:
    """#3299 on v2.4.1: every pod is skipped as not cached and none is ever registered; on
    v2.6.0 (its twin, when in this shard) every skipped pod is registered later."""
    result = outcomes["pod-cache-race"].result
    assert result is not None
    acts = result.report.actions
    text = render_text(result.report, width=200)
    skipped = {a["pod"] for a in acts if a["kind"] == "skip"}
    assert len(skipped) >= 2 and not [a for a in acts if a["kind"] == "register"], text
    twin = outcomes.get("pod-cache-race-polled")
    if twin is not None and twin.result is not None:
        acts = twin.result.report.actions
        skipped = {a["pod"] for a in acts if a["kind"] == "skip"}
        registered = {a["pod"] for a in acts if a["kind"] == "register"}
        assert skipped and skipped <= registered, render_text(twin.result.report, width=200)


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("binding-replaced")])
def test_the_binding_replacement_fault_ran_and_is_on_the_report(
        name: str, outcomes: dict[str, Outcome]) -> None:
    """The fault started after the first new pod, replaced demo by demo-b, and only its own
    window holds failed requests (the verdict excuses them, docs/faults.md)."""
    rep, fault, text = _one_fault(outcomes, name)
    assert fault["started"] is not None and not fault["error"], text
    assert fault["target"] == "demo -> demo-b", text
    created = min(e["ts"] for e in rep.pod_events if e["kind"] == "created"
                  and e["ts"] > rep.t0)
    assert fault["started"] >= created, text
    assert "Fault 0 bindingReplace" in text


@pytest.mark.skipif("controller-restart-mid-rollout" not in NAMES, reason="in another shard")
def test_controller_restart_leaves_exactly_the_live_pods_registered(
        outcomes: dict[str, Outcome]) -> None:
    rep, fault, text = _one_fault(outcomes, "controller-restart-mid-rollout")
    assert fault["started"] is not None and fault["target"].startswith("controller pod "), text
    routing = [e for e in rep.aws_events if e["kind"] == "routing"]
    assert routing and len(routing[-1]["targets"]) == 3, text  # the three live pods, no more


@pytest.mark.skipif("aws-throttled-rollout" not in NAMES, reason="in another shard")
def test_throttling_refused_some_controller_calls(outcomes: dict[str, Outcome]) -> None:
    result = outcomes["aws-throttled-rollout"].result
    assert result is not None
    (fault,) = result.report.faults
    refused = int(fault["target"].split(" of ")[0])
    assert refused > 0, render_text(result.report, width=200)


@pytest.mark.skipif("webhook-down-fail" not in NAMES, reason="in another shard")
def test_webhook_failing_closed_still_gates_every_new_pod(outcomes: dict[str, Outcome]) -> None:
    result = outcomes["webhook-down-fail"].result
    assert result is not None
    rep = result.report
    new = {e["pod"] for e in rep.pod_events if e["kind"] == "created" and e["ts"] > rep.t0}
    gated = {e["pod"] for e in rep.pod_events if e["kind"] == "gate_true"}
    assert new and new <= gated, render_text(rep, width=200)


@pytest.mark.skipif("container-restart" not in NAMES, reason="in another shard")
def test_container_restart_errors_all_fall_inside_the_restart(
        outcomes: dict[str, Outcome]) -> None:
    """The bug's failed requests are the restarted container's: every one inside the fault's
    window, refused by the target the kubelet restarted (its twin has none: the generic
    test)."""
    rep, fault, text = _one_fault(outcomes, "container-restart")
    assert fault["target"].endswith("(liveness probe failed)") and fault["ended"], text
    start, end = fault["started"], fault["ended"] + fault["settle"]
    failed = [e for e in rep.aws_events if e["kind"] == "elb_error"]
    assert failed and all(start <= e["ts"] <= end for e in failed), text
    assert len({e.get("target") for e in failed}) == 1, text  # the restarted pod's only


@pytest.mark.skipif("readiness-flap" not in NAMES, reason="in another shard")
def test_readiness_flap_deregisters_and_registers_the_target_again(
        outcomes: dict[str, Outcome]) -> None:
    rep, fault, text = _one_fault(outcomes, "readiness-flap")
    start = fault["started"]
    assert start is not None, text
    after = [(e["kind"], f"{e['target_id']}:{e['port']}") for e in rep.aws_events
             if e["kind"] in ("deregistered", "registered") and e["ts"] >= start]
    flapped = [t for i, (kind, t) in enumerate(after)
               if kind == "deregistered" and ("registered", t) in after[i + 1:]]
    assert flapped, text


@pytest.mark.skipif("aws-restarted-rollout" not in NAMES, reason="in another shard")
def test_aws_restart_keeps_the_draining_timers(outcomes: dict[str, Outcome]) -> None:
    """A target deregistered before the engine restart leaves the routing set and ends
    draining when it would have without the restart: its propagation delay (`routed_for`) and
    deregistration delay carried over."""
    rep, fault, text = _one_fault(outcomes, "aws-restarted-rollout")
    assert fault["started"] and " -> " in fault["target"], text
    before = [e for e in rep.aws_events if e["kind"] == "deregistered"
              and e["ts"] < fault["started"]]
    assert before, text
    for d in before:
        key = f"{d['target_id']}:{d['port']}"
        left = min(e["ts"] for e in rep.aws_events if e["kind"] == "routing"
                   and e["ts"] > d["ts"] and key not in e["targets"])
        unused = min(e["ts"] for e in rep.aws_events if e["kind"] == "target_state"
                     and f"{e['target_id']}:{e['port']}" == key and e["to"] == "unused")
        assert abs(left - d["ts"] - d["routed_for"]) < 1.0, text
        assert abs(unused - d["ts"] - d["routed_for"] - d["deregistration_delay"]) < 1.0, text


@pytest.mark.skipif("controller-partitioned" not in NAMES, reason="in another shard")
def test_a_partitioned_controller_registers_the_new_pod_only_once_it_is_back(
        outcomes: dict[str, Outcome]) -> None:
    """The partition is real: the first new pod was ready to be registered during it, and
    the fake AWS saw its registration only after the partition ended."""
    rep, fault, text = _one_fault(outcomes, "controller-partitioned")
    assert fault["ended"] and "cut from the fake AWS" in fault["target"], text
    first = min((e for e in rep.pod_events if e["kind"] == "created" and e["ts"] > rep.t0),
                key=lambda e: e["ts"])["pod"]
    ready = [e["ts"] for e in rep.pod_events
             if e["pod"] == first and e["kind"] == "containers_ready"]
    assert ready and min(ready) < fault["ended"], text
    targets = {a["target"] for a in rep.actions if a.get("kind") == "register"
               and a.get("pod") == first}
    seen = [e["ts"] for e in rep.aws_events if e["kind"] == "registered"
            and f"{e['target_id']}:{e['port']}" in targets]
    # `ended` is stamped just after the rule is gone: a retransmission may beat it by a hair
    assert seen and min(seen) > fault["ended"] - 1.0, text


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("node-drain")])
def test_the_drain_evicted_the_pods_of_one_node(name: str, outcomes: dict[str, Outcome]
                                                ) -> None:
    """packed: every replica evicted at once (nothing refused); spread with a budget of one:
    the budget refused evictions until replacements were Ready, and no pod was lost."""
    rep, fault, text = _one_fault(outcomes, name)
    assert fault["ended"] and not fault["error"], text
    found = re.search(r"drained of (\d+) pods \((\d+) evictions refused", fault["target"])
    assert found, text
    evicted, refused = int(found[1]), int(found[2])
    if name == "node-drain":
        assert (evicted, refused) == (3, 0), text
    else:
        # 2 when spread; 3 when a drain beside it had cordoned the other node while its pods
        # were scheduled (the spread honours that taint: nodeTaintsPolicy Honor)
        assert evicted in (2, 3) and refused > 0, text


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("node-shutdown")])
def test_the_node_shutdown_ended_pods_without_deleting_them(
        name: str, outcomes: dict[str, Outcome]) -> None:
    """The kubelet terminated the run's pods on the node: they ended (phase Failed, or
    Succeeded as the demo app exits 0), and none was deleted first (no deletion timestamp)."""
    rep, fault, text = _one_fault(outcomes, name)
    assert fault["ended"] and not fault["error"], text
    found = re.search(r"(\d+) of the run's pods terminated, (\d+) ended with no deletion",
                      fault["target"])
    # the rollout may delete one of them meanwhile: those it did not are the shutdown's own
    assert found and int(found[1]) >= int(found[2]) >= 1, text
    # the rollout's pods end too, but only after their deletion
    deleted = {e["pod"]: e["ts"] for e in rep.pod_events if e["kind"] == "terminating"}
    in_place = {e["pod"] for e in rep.pod_events if e["kind"] == "ended"
                and e["ts"] < deleted.get(e["pod"], float("inf"))}
    # and a pod scheduled there as the shutdown began is refused by the kubelet: ended too
    assert len(in_place) >= int(found[2]), text
    assert all(fault["started"] <= e["ts"] <= fault["ended"] + fault["settle"]
               for e in rep.pod_events
               if e["kind"] == "ended" and e["pod"] in in_place), text


@pytest.mark.skipif("node-network-cut" not in NAMES, reason="in another shard")
def test_a_cut_node_s_targets_time_out_inside_the_cut(outcomes: dict[str, Outcome]) -> None:
    """The cut is real: the ALB's health checks to the node's pods timed out and their targets
    turned unhealthy during it, and every failed request was inside the fault's window."""
    rep, fault, text = _one_fault(outcomes, "node-network-cut")
    assert fault["ended"] and not fault["error"], text
    start, end = fault["started"], fault["ended"] + fault["settle"]
    timed_out = [e for e in rep.aws_events if e["kind"] == "target_state"
                 and e.get("to") == "unhealthy" and e.get("reason") == "Target.Timeout"
                 and start <= e["ts"] <= fault["ended"]]
    assert timed_out, text
    failed = [r for r in rep.records if r.cls != "ok"]
    assert all(r.started <= end and r.started + r.latency >= start for r in failed), text
    # what the report tells to change: the health check, as nothing in Kubernetes noticed
    assert not failed or "unreachable-target" in [a.rule for a in rep.advice], text
