"""Rollout triggers for a workload, each what a user would do with kubectl:
`restart` (kubectl rollout restart), `image` (kubectl set image), `patch` (kubectl patch, a
strategic merge), `manifests` (kubectl apply of a second version)."""

from __future__ import annotations

import datetime
from typing import Any, Protocol

from kubernetes import client

from testbed.stack.apply import apply
from testbed.workload.manifests import WorkloadError, check_for_run, in_namespace, load_manifests
from testbed.workload.select import Target, select_target


class Rollout(Protocol):
    """What a trigger reads of the scenario's `rollout` section (testbed/scenario/model.py
    declares it; this package stays below the scenario package)."""

    @property
    def trigger(self) -> str: ...
    @property
    def image(self) -> str | None: ...
    @property
    def container(self) -> str | None: ...
    @property
    def patch(self) -> dict[str, Any] | None: ...
    @property
    def manifests(self) -> str | None: ...


# What `kubectl rollout restart` sets on the pod template (kubectl's
# staging/src/k8s.io/kubectl/pkg/polymorphichelpers/objectrestarter.go)
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
STRATEGIC_MERGE = "application/strategic-merge-patch+json"


def restart_patch(now: datetime.datetime | None = None) -> dict[str, Any]:
    # "Z": the time must be UTC, whatever zone `now` was given in
    stamp = (now or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC) \
        .strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}


def image_patch(target: Target, image: str, container: str | None) -> dict[str, Any]:
    containers = target.deployment.get("spec", {}).get("template", {}).get("spec", {}) \
        .get("containers") or []
    names = [str(c.get("name")) for c in containers]
    if container is None:
        if len(names) != 1:
            raise WorkloadError(f"rollout.image: the pod has {len(names)} containers "
                                f"({', '.join(names)}); name one with rollout.container")
        container = names[0]
    elif container not in names:
        raise WorkloadError(f"rollout.container: no container {container!r} in "
                            f"Deployment/{target.deployment_name} (containers: "
                            f"{', '.join(names)})")
    # a strategic merge of containers merges by name, as `kubectl set image` does
    return {"spec": {"template": {"spec": {"containers": [{"name": container,
                                                            "image": image}]}}}}


def second_version(rollout: Rollout, target: Target) -> list[dict[str, Any]]:
    """The `manifests` trigger's objects, checked like the first version's."""
    assert rollout.manifests is not None
    docs = load_manifests(rollout.manifests)
    check_for_run(docs, ingress_hint="the second version's Ingress is not applied (the run "
                  "keeps the first version's); leave it out of rollout.manifests")
    if not any(d["kind"] == "Deployment" and d["metadata"]["name"] == target.deployment_name
               for d in docs):
        raise WorkloadError(f"rollout.manifests: {rollout.manifests} has no Deployment named "
                            f"{target.deployment_name!r} to roll")
    # the new pods must stay behind the same Service and port, or every target would be
    # deregistered by the rollout; the Service may come from either version
    services = [d for d in docs if d["kind"] == "Service"] or [target.service]
    try:
        select_target([*docs, *services] if services[0] is target.service else docs,
                      target.deployment_name, target.service_name, target.port_ref)
    except WorkloadError as exc:
        raise WorkloadError(f"rollout.manifests: {exc}") from None
    return docs


def prepare(rollout: Rollout, target: Target) -> Any:
    """What the trigger needs, validated before the run starts: a patch, or the documents."""
    kind = rollout.trigger
    if kind == "image":
        assert rollout.image is not None
        return image_patch(target, rollout.image, rollout.container)
    if kind == "patch":
        return rollout.patch
    if kind == "manifests":
        return second_version(rollout, target)
    return None


def trigger(api: client.ApiClient, ns: str, rollout: Rollout, target: Target,
            prepared: Any) -> None:
    """Start one rollout of the workload's Deployment."""
    kind = rollout.trigger
    if kind == "manifests":
        apply(api, in_namespace(prepared, ns))
        return
    body = restart_patch() if kind == "restart" else prepared
    client.AppsV1Api(api).patch_namespaced_deployment(
        target.deployment_name, ns, body, _content_type=STRATEGIC_MERGE)
