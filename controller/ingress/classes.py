"""Which Ingresses this controller manages, and how they form IngressGroups.

Upstream (aws-load-balancer-controller v3.5.0):

- pkg/ingress/group_loader.go: classifyIngress (the ``kubernetes.io/ingress.class`` annotation
  beats ``spec.ingressClassName``), loadGroupID (``group.name``), sortGroupMembers
  (``group.order`` in [-1000, 1000], default 0, ties by "<namespace>/<name>"), validateGroupName.
- pkg/ingress/class_loader.go: ``spec.ingressClassName`` must name an existing IngressClass;
  without one the cluster's default IngressClass (``ingressclass.kubernetes.io/is-default-class``)
  applies; the class is ours when ``spec.controller == "ingress.k8s.aws/alb"``.
- pkg/ingress/class_annotation_matcher.go: the annotation matches ``--ingress-class``
  (default "alb", pkg/config/ingress_config.go).
- pkg/ingress/group.go: GroupID -- explicit groups have no namespace and print as their name,
  implicit ones print as "<namespace>/<name>"; that string is the stack id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.ingress import annotations as ann
from controller.ingress.errors import GroupError, IngressModelError

INGRESS_CLASS_CONTROLLER_ALB = "ingress.k8s.aws/alb"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
DEFAULT_INGRESS_CLASS = "alb"
INGRESS_CLASS_PARAMS_KIND = "IngressClassParams"

DEFAULT_GROUP_ORDER = 0
MIN_GROUP_ORDER = -1000
MAX_GROUP_ORDER = 1000
MAX_GROUP_NAME_LENGTH = 63
_GROUP_NAME_RE = re.compile(r"^([a-z0-9][-a-z0-9.]*)?[a-z0-9]$")

# kubernetes.client.V1Ingress / V1IngressClass; the client ships no type hints
Ingress = Any
IngressClass = Any


def ingress_key(ing: Ingress) -> str:
    """types.NamespacedName.String() of an object: "<namespace>/<name>"."""
    return f"{ing.metadata.namespace or ''}/{ing.metadata.name}"


def annotations_of(obj: Any) -> dict[str, str]:
    return dict((obj.metadata and obj.metadata.annotations) or {})


@dataclass(frozen=True, order=True)
class GroupID:
    namespace: str  # "" for an explicit group
    name: str

    @classmethod
    def explicit(cls, group_name: str) -> GroupID:
        return cls("", group_name)

    @classmethod
    def implicit(cls, namespace: str, name: str) -> GroupID:
        return cls(namespace, name)

    @property
    def is_explicit(self) -> bool:
        return self.namespace == ""

    def __str__(self) -> str:
        return self.name if self.is_explicit else f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class IngressGroup:
    id: GroupID
    members: tuple[Ingress, ...]  # in upstream's order: group.order, then "<ns>/<name>"


@dataclass
class GroupingResult:
    groups: dict[GroupID, IngressGroup] = field(default_factory=dict)
    # per Ingress: could not be classified/grouped (upstream event FailedLoadGroupID)
    ingress_errors: dict[str, IngressModelError] = field(default_factory=dict)
    # per group: the whole group cannot load (e.g. a bad group.order); upstream fails Load()
    group_errors: dict[GroupID, IngressModelError] = field(default_factory=dict)


def _default_class_name(classes: Sequence[IngressClass]) -> str | None:
    """class_loader.go GetDefaultIngressClass."""
    found: str | None = None
    for c in classes:
        if annotations_of(c).get(DEFAULT_CLASS_ANNOTATION) == "true":
            if found is not None:
                raise IngressModelError("multiple default IngressClasses found")
            found = c.metadata.name
    return found


def is_managed(
    ing: Ingress,
    ingress_classes: Iterable[IngressClass],
    *,
    ingress_class: str = DEFAULT_INGRESS_CLASS,
    manage_without_class: bool | None = None,
) -> bool:
    """group_loader.go classifyIngress; raises GroupError for a class that cannot be loaded.

    ``manage_without_class`` defaults as upstream derives it: true only when the controller's
    ingress class is empty (controllers/ingress/group_controller.go).
    """
    if manage_without_class is None:
        manage_without_class = ingress_class == ""
    annotations = annotations_of(ing)
    if ann.INGRESS_CLASS in annotations:
        value = annotations[ann.INGRESS_CLASS]
        return (ingress_class == "" and value == "alb") or value == ingress_class
    classes = list(ingress_classes)
    class_name = ing.spec.ingress_class_name if ing.spec else None
    if class_name is None:
        class_name = _default_class_name(classes)
        if class_name is None:
            return manage_without_class
    by_name = {c.metadata.name: c for c in classes}
    cls = by_name.get(class_name)
    if cls is None:
        raise GroupError(
            f'invalid ingress class: ingressclasses.networking.k8s.io "{class_name}" not found'
        )
    controller = cls.spec.controller if cls.spec else None
    if controller != INGRESS_CLASS_CONTROLLER_ALB:
        return False
    params = cls.spec.parameters
    if params is not None:
        # IngressClassParams override scheme, group, subnets, tags, ...; silently ignoring
        # them would build a different ALB than upstream, so refuse instead.
        kind = params.kind or ""
        if kind == INGRESS_CLASS_PARAMS_KIND:
            raise GroupError(
                f"IngressClass {class_name} references IngressClassParams {params.name}, "
                "which this controller does not support"
            )
        raise GroupError(
            f"invalid ingress class: IngressClass {class_name} references unknown parameters"
        )
    return True


def validate_group_name(group_name: str) -> None:
    if not _GROUP_NAME_RE.match(group_name):
        raise GroupError(
            "invalid ingress group: groupName must consist of lower case alphanumeric "
            "characters, '-' or '.', and must start and end with an alphanumeric character"
        )
    if len(group_name) > MAX_GROUP_NAME_LENGTH:
        raise GroupError(
            f"invalid ingress group: groupName must be no more than {MAX_GROUP_NAME_LENGTH} "
            "characters"
        )


def group_id_for(ing: Ingress) -> GroupID:
    """group_loader.go loadGroupID: ``group.name`` makes an explicit group, else implicit."""
    group_name = ann.get_string(annotations_of(ing), ann.GROUP_NAME)
    if group_name is not None:
        validate_group_name(group_name)
        return GroupID.explicit(group_name)
    return GroupID.implicit(ing.metadata.namespace or "", ing.metadata.name)


def group_order(ing: Ingress) -> int:
    try:
        order = ann.parse_int32(annotations_of(ing), ann.GROUP_ORDER)
    except IngressModelError as e:
        context = f"failed to load Ingress group order for ingress: {ingress_key(ing)}"
        raise e.wrap(context) from None
    if order is None:
        return DEFAULT_GROUP_ORDER
    if not MIN_GROUP_ORDER <= order <= MAX_GROUP_ORDER:
        raise IngressModelError(
            f"explicit Ingress group order must be within [{MIN_GROUP_ORDER}:{MAX_GROUP_ORDER}], "
            f"Ingress: {ingress_key(ing)}, order: {order}"
        )
    return order


def sort_members(members: Iterable[Ingress]) -> tuple[Ingress, ...]:
    """group_loader.go sortGroupMembers: ascending group.order, ties by "<ns>/<name>"."""
    keyed = [(group_order(i), ingress_key(i), i) for i in members]
    keyed.sort(key=lambda t: (t[0], t[1]))
    return tuple(t[2] for t in keyed)


def load_groups(
    ingresses: Iterable[Ingress],
    ingress_classes: Iterable[IngressClass],
    *,
    ingress_class: str = DEFAULT_INGRESS_CLASS,
    manage_without_class: bool | None = None,
) -> GroupingResult:
    """Partition the managed Ingresses into IngressGroups (GroupLoader.Load for every group).

    Ingresses being deleted belong to no group (loadGroupIDIfAnyHelper); the caller keeps
    their finalizers in mind, which is deploy-side state this pure layer does not see.
    """
    classes = list(ingress_classes)
    result = GroupingResult()
    by_group: dict[GroupID, list[Ingress]] = {}
    for ing in ingresses:
        if ing.metadata.deletion_timestamp is not None:
            continue
        try:
            if not is_managed(
                ing,
                classes,
                ingress_class=ingress_class,
                manage_without_class=manage_without_class,
            ):
                continue
            gid = group_id_for(ing)
        except IngressModelError as e:
            result.ingress_errors[ingress_key(ing)] = e
            continue
        by_group.setdefault(gid, []).append(ing)
    for gid in sorted(by_group, key=str):
        try:
            result.groups[gid] = IngressGroup(gid, sort_members(by_group[gid]))
        except IngressModelError as e:
            result.group_errors[gid] = e
    return result
