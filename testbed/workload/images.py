"""Every image a workload's pods use, made available to the kind cluster: loaded from the
local Docker engine when it is there, pulled where a registry answers, else a clear error
naming the image and what to do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from testbed import docker

POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


@dataclass(frozen=True)
class ImageUse:
    image: str
    container: str
    owner: str  # Kind/name of the object using it
    pull_policy: str  # as the kubelet will apply it (defaulted like the API server)
    policy_given: bool  # False: defaulted from the tag


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    kind = doc["kind"]
    if kind == "Pod":
        return dict(doc.get("spec") or {})
    if kind == "CronJob":
        return dict(doc.get("spec", {}).get("jobTemplate", {}).get("spec", {})
                    .get("template", {}).get("spec") or {})
    if kind in POD_TEMPLATE_KINDS:
        return dict(doc.get("spec", {}).get("template", {}).get("spec") or {})
    return None


def default_pull_policy(image: str) -> str:
    """The API server's default: Always for `:latest` or no tag (and no digest), else
    IfNotPresent (https://kubernetes.io/docs/concepts/containers/images/#imagepullpolicy-defaulting).
    Tag and digest are parsed apart, as the API server's parsers.ParseImageName does, so
    `app:latest@sha256:...` is Always too."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]  # a registry port is not a tag
    tag = last.split(":", 1)[1] if ":" in last else ("" if digest else "latest")
    return "Always" if tag == "latest" else "IfNotPresent"


def image_uses(docs: list[dict[str, Any]]) -> list[ImageUse]:
    out = []
    for doc in docs:
        spec = _pod_spec(doc)
        if spec is None:
            continue
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            image = c.get("image")
            if image:
                out.append(ImageUse(image, str(c.get("name")), f"{doc['kind']}/"
                                    f"{doc['metadata']['name']}",
                                    c.get("imagePullPolicy") or default_pull_policy(image),
                                    bool(c.get("imagePullPolicy"))))
    return out


class ImageMissing(RuntimeError):
    """An image the workload needs is nowhere this machine can get it."""


def make_available(uses: list[ImageUse], load: Callable[[str], None],
                   pull_timeout: float = 60) -> list[str]:
    """Load each image into the cluster (`load`: kind load, skipped when the nodes have it);
    returns the images loaded. Raises ImageMissing listing every image that is not in the
    local Docker engine and cannot be pulled, and every container that would make the kubelet
    pull from a registry this machine cannot reach."""
    missing: list[str] = []
    done: list[str] = []
    for image in dict.fromkeys(u.image for u in uses):
        users = [u for u in uses if u.image == image]
        always = any(u.pull_policy == "Always" for u in users)
        local = docker.image_exists(image)
        # with Always the kubelet pulls on every start: it must reach a registry, which a
        # pull from this machine tells (best effort: the nodes share its network)
        pullable = (always or not local) and docker.try_pull(image, timeout=pull_timeout)
        present = local or pullable
        if not present:
            where = ", ".join(f"{u.owner} container {u.container}" for u in users)
            missing.append(f"{image} (used by {where}) is not in the local Docker engine and "
                           "cannot be pulled from here: build it (`docker build -t "
                           f"{image} .`) or pull it (`docker pull {image}`) where a registry is "
                           "reachable, then run again")
            continue
        load(image)
        done.append(image)
        for u in users:
            if u.pull_policy == "Always" and not pullable:
                missing.append(f"{u.owner} container {u.container}: imagePullPolicy Always "
                               f"({'set' if u.policy_given else 'implied by the tag'}) makes the "
                               f"kubelet pull {image} from its registry on every start, which "
                               "it cannot reach here; use a tag other than :latest or set "
                               "imagePullPolicy: IfNotPresent")
    if missing:
        raise ImageMissing("\n  ".join(["images the workload needs:", *missing]))
    return done
