"""The images a workload's pods use, their pull policy as the API server defaults it, and how
each is made available to kind (Docker calls replaced by fakes)."""

from __future__ import annotations

from typing import Any

import pytest

from testbed.workload import images
from testbed.workload.images import ImageMissing, ImageUse, default_pull_policy, image_uses


def _pod_spec(containers: list[dict[str, Any]],
              init: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers}
    if init is not None:
        spec["initContainers"] = init
    return spec


def test_image_uses_of_every_pod_maker() -> None:
    docs = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
         "spec": {"template": {"spec": _pod_spec(
             [{"name": "app", "image": "web:1"},
              {"name": "proxy", "image": "envoy:1.30", "imagePullPolicy": "Always"}],
             init=[{"name": "migrate", "image": "web-migrate:1"}])}}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
         "spec": {"jobTemplate": {"spec": {"template": {"spec": _pod_spec(
             [{"name": "job", "image": "cron:latest"}])}}}}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug"},
         "spec": _pod_spec([{"name": "sh", "image": "busybox"}])},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
         "data": {"image": "not-an-image:1"}},
    ]
    assert image_uses(docs) == [
        ImageUse("web-migrate:1", "migrate", "Deployment/web", "IfNotPresent", False),
        ImageUse("web:1", "app", "Deployment/web", "IfNotPresent", False),
        ImageUse("envoy:1.30", "proxy", "Deployment/web", "Always", True),
        ImageUse("cron:latest", "job", "CronJob/nightly", "Always", False),
        ImageUse("busybox", "sh", "Pod/debug", "Always", False),
    ]


def test_image_uses_of_other_templates_and_containers_without_image() -> None:
    docs = [{"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "x"},
             "spec": {"template": {"spec": _pod_spec([{"name": "c", "image": f"{kind}:1"},
                                                      {"name": "noimage"}])}}}
            for kind in ("StatefulSet", "DaemonSet", "Job")]
    assert [(u.image, u.owner) for u in image_uses(docs)] == [
        ("StatefulSet:1", "StatefulSet/x"), ("DaemonSet:1", "DaemonSet/x"), ("Job:1", "Job/x")]


@pytest.mark.parametrize(("image", "policy"), [
    ("web", "Always"),
    ("web:latest", "Always"),
    ("docker.io/library/web:latest", "Always"),
    ("web:1.2", "IfNotPresent"),
    ("registry:5000/app", "Always"),  # the port is not a tag
    ("registry:5000/team/app:v3", "IfNotPresent"),
    ("registry:5000/app:latest", "Always"),
    ("web@sha256:" + "a" * 64, "IfNotPresent"),
    ("web:1.2@sha256:" + "a" * 64, "IfNotPresent"),
    ("registry:5000/app@sha256:" + "a" * 64, "IfNotPresent"),
    # the API server parses the tag and the digest apart: latest stays latest with a digest
    ("web:latest@sha256:" + "a" * 64, "Always"),
])
def test_default_pull_policy(image: str, policy: str) -> None:
    assert default_pull_policy(image) == policy


class FakeDocker:
    """The local Docker engine: which images it has, which a registry would give."""

    def __init__(self, local: set[str], pullable: set[str]) -> None:
        self.local = set(local)
        self.pullable = set(pullable)
        self.pulls: list[str] = []

    def image_exists(self, ref: str) -> bool:
        return ref in self.local

    def try_pull(self, ref: str, timeout: float = 60) -> bool:
        self.pulls.append(ref)
        if ref in self.pullable:
            self.local.add(ref)
            return True
        return False


@pytest.fixture
def docker(monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    fake = FakeDocker(set(), set())
    monkeypatch.setattr("testbed.docker.image_exists", fake.image_exists)
    monkeypatch.setattr("testbed.docker.try_pull", fake.try_pull)
    return fake


def use(image: str, policy: str = "IfNotPresent", container: str = "app",
        owner: str = "Deployment/web", given: bool = False) -> ImageUse:
    return ImageUse(image, container, owner, policy, given)


def test_local_image_is_loaded_without_a_pull(docker: FakeDocker) -> None:
    docker.local = {"web:1"}
    loaded: list[str] = []
    assert images.make_available([use("web:1")], loaded.append) == ["web:1"]
    assert loaded == ["web:1"] and docker.pulls == []


def test_each_image_is_loaded_once(docker: FakeDocker) -> None:
    docker.local = {"web:1"}
    loaded: list[str] = []
    images.make_available([use("web:1", container="a"), use("web:1", container="b",
                                                             owner="Job/migrate")],
                          loaded.append)
    assert loaded == ["web:1"]


def test_missing_image_that_cannot_be_pulled(docker: FakeDocker) -> None:
    loaded: list[str] = []
    with pytest.raises(ImageMissing) as info:
        images.make_available([use("web:1"), use("web:1", container="sidecar")], loaded.append)
    msg = str(info.value)
    assert msg.startswith("images the workload needs:\n  web:1 (used by Deployment/web container "
                          "app, Deployment/web container sidecar) is not in the local Docker "
                          "engine and cannot be pulled")
    assert "`docker build -t web:1 .`" in msg and "`docker pull web:1`" in msg
    assert loaded == [] and docker.pulls == ["web:1"]


def test_every_missing_image_is_listed_and_the_others_still_loaded(docker: FakeDocker) -> None:
    docker.local = {"ok:1"}
    loaded: list[str] = []
    with pytest.raises(ImageMissing) as info:
        images.make_available([use("gone:1"), use("ok:1"), use("lost:2", owner="Job/j")],
                              loaded.append)
    lines = str(info.value).split("\n  ")
    assert lines[0] == "images the workload needs:"
    assert [line.split(" ", 1)[0] for line in lines[1:]] == ["gone:1", "lost:2"]
    assert loaded == ["ok:1"]


def test_pullable_image_is_pulled_then_loaded(docker: FakeDocker) -> None:
    docker.pullable = {"nginx:1.27"}
    loaded: list[str] = []
    assert images.make_available([use("nginx:1.27")], loaded.append) == ["nginx:1.27"]
    assert docker.pulls == ["nginx:1.27"] and loaded == ["nginx:1.27"]


def test_always_on_a_local_only_image_is_an_error(docker: FakeDocker) -> None:
    docker.local = {"web:latest"}
    loaded: list[str] = []
    with pytest.raises(ImageMissing) as info:
        images.make_available([use("web:latest", policy="Always")], loaded.append)
    msg = str(info.value)
    assert "Deployment/web container app: imagePullPolicy Always (implied by the tag)" in msg
    assert "use a tag other than :latest or set imagePullPolicy: IfNotPresent" in msg
    assert "is not in the local Docker engine" not in msg
    assert docker.pulls == ["web:latest"]  # Always: the registry must answer


def test_always_set_explicitly_is_named_as_set(docker: FakeDocker) -> None:
    docker.local = {"web:1"}
    with pytest.raises(ImageMissing, match=r"imagePullPolicy Always \(set\)"):
        images.make_available([use("web:1", policy="Always", given=True)], lambda _i: None)


def test_always_is_blamed_only_on_the_containers_that_have_it(docker: FakeDocker) -> None:
    docker.local = {"web:1"}
    with pytest.raises(ImageMissing) as info:
        images.make_available([use("web:1", container="a"),
                               use("web:1", container="b", policy="Always", given=True)],
                              lambda _i: None)
    msg = str(info.value)
    assert "container b: imagePullPolicy Always" in msg
    assert "container a:" not in msg


def test_always_on_a_pullable_image_is_fine(docker: FakeDocker) -> None:
    docker.local = {"nginx:latest"}
    docker.pullable = {"nginx:latest"}
    loaded: list[str] = []
    assert images.make_available([use("nginx:latest", policy="Always")],
                                 loaded.append) == ["nginx:latest"]
    assert loaded == ["nginx:latest"]
