"""The workload's rollout triggers: the patch each sends (as kubectl would), what prepare()
checks before a run starts, and what trigger() hands the Kubernetes client (a fake here)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

from testbed.scenario import parse_scenario
from testbed.scenario.model import Rollout
from testbed.workload import rollout
from testbed.workload.manifests import WorkloadError
from testbed.workload.select import Target, select_target

NOW = datetime.datetime(2025, 3, 4, 5, 6, 7, 890, tzinfo=datetime.UTC)


def _target(containers: list[dict[str, Any]] | None = None) -> Target:
    containers = containers or [{"name": "app", "image": "web:1",
                                 "ports": [{"containerPort": 8080}]}]
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
               "metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}}}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    return select_target([dep, svc])


def _rollout(yaml_body: str) -> Rollout:
    return parse_scenario(f"name: x\nworkload: {{path: app.yaml}}\nrollout: {yaml_body}\n").rollout


TWO = [{"name": "app", "image": "web:1"}, {"name": "proxy", "image": "envoy:1"}]


def test_restart_patch_is_what_kubectl_rollout_restart_sets() -> None:
    assert rollout.restart_patch(NOW) == {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2025-03-04T05:06:07Z"}}}}}


def test_restart_patch_converts_to_utc() -> None:
    local = NOW.astimezone(datetime.timezone(datetime.timedelta(hours=2)))
    assert rollout.restart_patch(local) == rollout.restart_patch(NOW)


def test_restart_patch_without_now_is_stamped_now() -> None:
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    stamp = rollout.restart_patch()["spec"]["template"]["metadata"]["annotations"][
        rollout.RESTARTED_AT]
    after = datetime.datetime.now(datetime.UTC)
    parsed = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.UTC)
    assert before <= parsed <= after


def test_image_patch_of_the_only_container() -> None:
    assert rollout.image_patch(_target(), "web:2", None) == {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "web:2"}]}}}}


def test_image_patch_with_several_containers_needs_a_name() -> None:
    target = _target(TWO)
    with pytest.raises(WorkloadError) as info:
        rollout.image_patch(target, "web:2", None)
    assert str(info.value) == ("rollout.image: the pod has 2 containers (app, proxy); name one "
                               "with rollout.container")
    assert rollout.image_patch(target, "envoy:2", "proxy")["spec"]["template"]["spec"] == {
        "containers": [{"name": "proxy", "image": "envoy:2"}]}


def test_image_patch_of_an_unknown_container() -> None:
    with pytest.raises(WorkloadError) as info:
        rollout.image_patch(_target(TWO), "web:2", "ap")
    assert str(info.value) == ("rollout.container: no container 'ap' in Deployment/web "
                               "(containers: app, proxy)")


def test_prepare_restart_needs_nothing() -> None:
    assert _rollout("{}").trigger == "restart"
    assert rollout.prepare(_rollout("{}"), _target()) is None
    assert rollout.prepare(_rollout("{restart: true, count: 3}"), _target()) is None


def test_prepare_image_checks_the_container_before_the_run() -> None:
    assert rollout.prepare(_rollout("{image: 'web:2'}"), _target()) == rollout.image_patch(
        _target(), "web:2", None)
    with pytest.raises(WorkloadError, match="name one with rollout.container"):
        rollout.prepare(_rollout("{image: 'web:2'}"), _target(TWO))
    with pytest.raises(WorkloadError, match="no container 'sidecar'"):
        rollout.prepare(_rollout("{image: 'web:2', container: sidecar}"), _target(TWO))


def test_prepare_patch_is_the_scenario_patch() -> None:
    ro = _rollout("{patch: {spec: {template: {spec: {containers: [{name: app, env: "
                  "[{name: A, value: '1'}]}]}}}}}")
    assert rollout.prepare(ro, _target()) == {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "A", "value": "1"}]}]}}}}


V2 = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: "web:2"}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {v: "2"}
"""


def test_prepare_manifests_reads_the_second_version(tmp_path: Path) -> None:
    (tmp_path / "v2.yaml").write_text(V2)
    docs = rollout.prepare(_rollout(f"{{manifests: '{tmp_path / 'v2.yaml'}'}}"), _target())
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [("Deployment", "web"),
                                                                  ("ConfigMap", "cfg")]


def test_prepare_manifests_without_the_deployment(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "app.yaml").write_text(V2.replace("name: web}", "name: web-v2}", 1))
    with pytest.raises(WorkloadError) as info:
        rollout.prepare(_rollout(f"{{manifests: '{v2}'}}"), _target())
    assert str(info.value) == (f"rollout.manifests: {v2} has no Deployment named 'web' to roll")


def test_prepare_manifests_applies_the_run_rules(tmp_path: Path) -> None:
    (tmp_path / "v2.yaml").write_text(V2.replace("metadata: {name: web}",
                                                 "metadata: {name: web, namespace: prod}"))
    with pytest.raises(WorkloadError, match=r"Deployment/web: metadata.namespace is hard-coded"):
        rollout.prepare(_rollout(f"{{manifests: '{tmp_path / 'v2.yaml'}'}}"), _target())


def test_prepare_manifests_missing_path(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="no such file or directory"):
        rollout.prepare(_rollout(f"{{manifests: '{tmp_path / 'nope'}'}}"), _target())


class FakeApps:
    calls: list[tuple[Any, ...]] = []

    def __init__(self, api: Any) -> None:
        self.api = api

    def patch_namespaced_deployment(self, name: str, namespace: str, body: Any,
                                    **kwargs: Any) -> None:
        FakeApps.calls.append((self.api, name, namespace, body, kwargs))


@pytest.fixture
def apps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    FakeApps.calls = []
    monkeypatch.setattr(rollout.client, "AppsV1Api", FakeApps)
    return FakeApps.calls


API = object()  # stands for the ApiClient: only passed through


def test_trigger_restart_patches_with_a_strategic_merge(
        apps: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rollout, "restart_patch", lambda: {"stamped": True})
    rollout.trigger(API, "run-1", _rollout("{}"), _target(), None)  # type: ignore[arg-type]
    assert apps == [(API, "web", "run-1", {"stamped": True},
                     {"_content_type": "application/strategic-merge-patch+json"})]


def test_trigger_restart_stamps_each_call(apps: list[tuple[Any, ...]]) -> None:
    rollout.trigger(API, "run-1", _rollout("{}"), _target(), None)  # type: ignore[arg-type]
    body = apps[0][3]
    assert set(body["spec"]["template"]["metadata"]["annotations"]) == {rollout.RESTARTED_AT}


def test_trigger_image_and_patch_send_the_prepared_body(apps: list[tuple[Any, ...]]) -> None:
    target = _target()
    for spec in ("{image: 'web:2'}", "{patch: {spec: {minReadySeconds: 5}}}"):
        ro = _rollout(spec)
        prepared = rollout.prepare(ro, target)
        rollout.trigger(API, "ns", ro, target, prepared)  # type: ignore[arg-type]
    assert [c[3] for c in apps] == [
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "web:2"}]}}}},
        {"spec": {"minReadySeconds": 5}}]
    assert {c[4]["_content_type"] for c in apps} == {rollout.STRATEGIC_MERGE}


def test_trigger_manifests_applies_them_in_the_run_namespace(
        apps: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    applied: list[tuple[Any, list[dict[str, Any]]]] = []
    monkeypatch.setattr(rollout, "apply", lambda api, docs: applied.append((api, list(docs))))
    (tmp_path / "v2.yaml").write_text(V2)
    ro = _rollout(f"{{manifests: '{tmp_path / 'v2.yaml'}'}}")
    prepared = rollout.prepare(ro, _target())
    rollout.trigger(API, "run-7", ro, _target(), prepared)  # type: ignore[arg-type]
    assert apps == []
    assert len(applied) == 1 and applied[0][0] is API
    assert [d["metadata"] for d in applied[0][1]] == [{"name": "web", "namespace": "run-7"},
                                                      {"name": "cfg", "namespace": "run-7"}]
    assert applied[0][1][0]["spec"]["template"]["spec"]["containers"][0]["image"] == "web:2"
    assert "namespace" not in prepared[0]["metadata"]  # the prepared docs stay reusable
