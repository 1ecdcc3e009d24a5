"""Why a baseline does not become healthy: stuck pods (final), and targets the health check
keeps failing, each AWS reason with its likely fix."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from testbed.run import diagnose
from testbed.run.diagnose import TargetState, explain
from testbed.scenario import parse_scenario

SC = parse_scenario("name: x\nworkload: {path: k8s}\n"
                    "targetGroup: {healthCheck: {path: /healthz, timeoutSeconds: 4, "
                    "intervalSeconds: 10, matcher: '200-299'}}")


def _pod(name: str, *, waiting: tuple[str, str | None] | None = None,
         init_waiting: tuple[str, str | None] | None = None,
         unschedulable: str | None = None, running: bool = False) -> client.V1Pod:
    def status(cname: str, w: tuple[str, str | None] | None) -> client.V1ContainerStatus:
        state = client.V1ContainerState(
            waiting=client.V1ContainerStateWaiting(reason=w[0], message=w[1]) if w else None,
            running=client.V1ContainerStateRunning() if w is None else None)
        return client.V1ContainerStatus(name=cname, image="img", image_id="", ready=False,
                                        restart_count=0, state=state)

    conditions = None
    if unschedulable is not None:
        conditions = [client.V1PodCondition(type="PodScheduled", status="False",
                                            reason="Unschedulable", message=unschedulable)]
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        status=client.V1PodStatus(
            phase="Pending",
            conditions=conditions,
            container_statuses=[status("app", waiting)] if waiting or running else None,
            init_container_statuses=[status("init", init_waiting)] if init_waiting else None))


def _ts(ip: str, state: str, reason: str = "", description: str = "") -> TargetState:
    return TargetState(f"{ip}:8080", state, reason, description)


def _unhealthy(n: int, reason: str, description: str) -> list[TargetState]:
    return [_ts(f"10.0.0.{i}", "unhealthy", reason, description) for i in range(1, n + 1)]


CODES_404 = "Health checks failed with these codes: [404]"


def _explain(pods: list[client.V1Pod], states: list[TargetState], replicas: int = 2,
             **kw: Any) -> diagnose.Diagnosis:
    kw.setdefault("probe_path", "/ready")
    kw.setdefault("target_port", 3000)
    return explain(SC, replicas, pods, states, **kw)


def test_image_pull_backoff_is_final_with_the_image_fix() -> None:
    pods = [_pod("web-1", waiting=("ImagePullBackOff",
                                   'Back-off pulling image "web:9"\nmore detail')),
            _pod("web-2", running=True)]
    d = _explain(pods, [])
    assert d.clear and d.final
    assert d.lines == ['pod web-1 container app: ImagePullBackOff (Back-off pulling image '
                       '"web:9")']
    assert d.fixes == ["build or pull the image into the local Docker engine and use a tag "
                       "with imagePullPolicy IfNotPresent"]
    assert d.text().splitlines() == [d.lines[0], "likely fix: " + d.fixes[0]]


def test_stuck_init_container_and_crash_loop() -> None:
    pods = [_pod("web-1", init_waiting=("CrashLoopBackOff", None)),
            _pod("web-2", waiting=("CreateContainerConfigError",
                                   'configmap "cfg" not found'))]
    d = _explain(pods, [])
    assert d.final and d.clear
    assert d.lines == ["pod web-1 container init: CrashLoopBackOff",
                       'pod web-2 container app: CreateContainerConfigError (configmap "cfg" '
                       "not found)"]
    assert d.fixes == ["the container exits at start: see `kubectl logs` of the pod"]


def test_transient_waiting_reasons_are_not_stuck() -> None:
    pods = [_pod("web-1", waiting=("ContainerCreating", None)),
            _pod("web-2", waiting=("PodInitializing", None))]
    d = _explain(pods, [])
    assert not d.final and not d.clear
    assert d.lines == ["no target is registered in the target group yet"] and d.fixes == []


def test_unschedulable_pod() -> None:
    msg = "0/1 nodes are available: 1 Insufficient cpu."
    d = _explain([_pod("web-1", unschedulable=msg)], _unhealthy(2, "Target.Timeout", ""))
    # it may yet fit (a node joining): said, but not a reason to end the baseline early
    assert not d.final and not d.clear
    assert d.lines == [f"pod web-1: Unschedulable ({msg})"]


def test_all_targets_404_names_the_health_check_and_probe_paths() -> None:
    states = _unhealthy(2, "Target.ResponseCodeMismatch", CODES_404)
    d = _explain([_pod("web-1", running=True)], states)
    assert d.clear and not d.final
    assert d.lines == [f"target 10.0.0.{i}:8080: unhealthy / Target.ResponseCodeMismatch "
                       f"{CODES_404}" for i in (1, 2)]
    assert d.fixes == ["the app answers 404 on /healthz: set targetGroup.healthCheck.path to "
                       "a path it serves such as the readinessProbe's /ready"]


def test_404_fix_without_a_different_probe_path() -> None:
    states = _unhealthy(2, "Target.ResponseCodeMismatch", CODES_404)
    for probe in (None, "/healthz"):
        assert _explain([], states, probe_path=probe).fixes == [
            "the app answers 404 on /healthz: set targetGroup.healthCheck.path to a path it "
            "serves"]


def test_500_points_at_the_matcher() -> None:
    states = _unhealthy(2, "Target.ResponseCodeMismatch",
                        "Health checks failed with these codes: [500, 503]")
    d = _explain([], states)
    assert not d.clear  # an app warming up answers 5xx for a while: wait for the deadline
    assert d.fixes == ["the app answers 500, 503 on /healthz where the matcher expects "
                       "200-299: fix the endpoint (see the app's logs) or set "
                       "targetGroup.healthCheck.matcher to the codes a healthy app answers"]


def test_timeout() -> None:
    d = _explain([], _unhealthy(3, "Target.Timeout", "Request timed out"), replicas=3)
    assert not d.clear
    assert d.fixes == ["the app does not answer /healthz within timeoutSeconds (4 s): make the "
                       "endpoint answer faster or raise targetGroup.healthCheck.timeoutSeconds"]


def test_failed_health_checks_name_the_target_port() -> None:
    d = _explain([], _unhealthy(2, "Target.FailedHealthChecks", "Health checks failed"),
                 target_port=3000)
    assert not d.clear
    assert d.fixes == ["the health check cannot connect to port 3000: make the container "
                       "listen on that port (the Service's targetPort) on all addresses "
                       "(0.0.0.0), not only 127.0.0.1"]


def test_mixed_reasons_give_each_fix() -> None:
    states = [_ts("10.0.0.1", "unhealthy", "Target.Timeout", "Request timed out"),
              _ts("10.0.0.2", "unhealthy", "Target.ResponseCodeMismatch", CODES_404)]
    fixes = _explain([], states).fixes
    assert len(fixes) == 2
    assert fixes[0].startswith("the app answers 404 on /healthz")
    assert fixes[1].startswith("the app does not answer /healthz within")


def test_some_healthy_is_not_clear() -> None:
    states = [*_unhealthy(2, "Target.ResponseCodeMismatch", CODES_404),
              _ts("10.0.0.9", "healthy")]
    d = _explain([], states)
    assert not d.clear and d.fixes == []
    assert d.lines[-1] == "target 10.0.0.9:8080: healthy"


def test_fewer_unhealthy_than_replicas_is_not_clear() -> None:
    states = [*_unhealthy(2, "Target.ResponseCodeMismatch", CODES_404),
              _ts("10.0.0.3", "initial", "Elb.RegistrationInProgress",
                  "Target registration is in progress")]
    d = _explain([], states, replicas=3)
    assert not d.clear and not d.final and d.fixes == []
    assert d.lines[2] == ("target 10.0.0.3:8080: initial / Elb.RegistrationInProgress Target "
                          "registration is in progress")


def test_target_states_reads_describe_target_health() -> None:
    class Elbv2:
        def describe_target_health(self, TargetGroupArn: str) -> dict[str, Any]:  # noqa: N803
            assert TargetGroupArn == "arn:tg"
            return {"TargetHealthDescriptions": [
                {"Target": {"Id": "10.0.0.1", "Port": 3000},
                 "TargetHealth": {"State": "unhealthy", "Reason": "Target.Timeout",
                                  "Description": "Request timed out"}},
                {"Target": {"Id": "10.0.0.2", "Port": 3000},
                 "TargetHealth": {"State": "healthy"}}]}

    assert diagnose.target_states(Elbv2(), "arn:tg") == [
        TargetState("10.0.0.1:3000", "unhealthy", "Target.Timeout", "Request timed out"),
        TargetState("10.0.0.2:3000", "healthy", "", "")]


def test_only_a_4xx_is_clear_at_once() -> None:
    for codes, clear in (("[404]", True), ("[401, 403]", True), ("[404, 503]", False),
                         ("[503]", False)):
        d = _explain([], _unhealthy(2, "Target.ResponseCodeMismatch",
                                    f"Health checks failed with these codes: {codes}"))
        assert d.clear is clear, codes
