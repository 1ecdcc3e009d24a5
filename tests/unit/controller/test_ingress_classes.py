"""Which Ingresses are ours, and IngressGroup membership and order."""

from __future__ import annotations

import pytest
from test_ingress_fixtures import A, ingress, ingress_class

from controller.ingress.classes import (
    GroupID,
    group_id_for,
    is_managed,
    load_groups,
    sort_members,
)
from controller.ingress.errors import GroupError, IngressModelError

ALB = ingress_class("alb")
NGINX = ingress_class("nginx", "k8s.io/ingress-nginx")


def names(ings: tuple) -> list[str]:  # type: ignore[type-arg]
    return [i.metadata.name for i in ings]


def test_ingress_class_name_naming_our_controller() -> None:
    """group_loader.go@v3.5.0 classifyIngress: spec.controller == ingress.k8s.aws/alb."""
    assert is_managed(ingress(class_name="alb"), [ALB, NGINX])
    assert not is_managed(ingress(class_name="nginx"), [ALB, NGINX])


def test_missing_ingress_class_is_an_error() -> None:
    """class_loader.go@v3.5.0 Load: NotFound -> ErrInvalidIngressClass."""
    with pytest.raises(GroupError, match='invalid ingress class: .*"gone" not found'):
        is_managed(ingress(class_name="gone"), [ALB])


def test_legacy_annotation_wins_over_class_name() -> None:
    """group_loader.go@v3.5.0: kubernetes.io/ingress.class beats spec.ingressClassName;
    class_annotation_matcher.go matches --ingress-class (default "alb")."""
    legacy = ingress(class_name="nginx", annotations={"kubernetes.io/ingress.class": "alb"})
    assert is_managed(legacy, [ALB, NGINX])
    other = ingress(class_name="alb", annotations={"kubernetes.io/ingress.class": "nginx"})
    assert not is_managed(other, [ALB, NGINX])
    custom = ingress(class_name=None, annotations={"kubernetes.io/ingress.class": "mine"})
    assert is_managed(custom, [], ingress_class="mine")
    assert is_managed(ingress(annotations={"kubernetes.io/ingress.class": "alb"}), [],
                      ingress_class="")


def test_no_class_uses_default_class_or_flag() -> None:
    """class_loader.go@v3.5.0 GetDefaultIngressClass; with no class at all the Ingress is
    managed only when --ingress-class is empty (group_controller.go@v3.5.0
    manageIngressesWithoutIngressClass)."""
    bare = ingress(class_name=None)
    assert not is_managed(bare, [ALB])
    assert is_managed(bare, [ALB], ingress_class="")
    assert is_managed(bare, [ALB], manage_without_class=True)
    assert is_managed(bare, [ingress_class("alb", default=True)])
    assert not is_managed(bare, [ingress_class("nginx", "k8s.io/ingress-nginx", default=True)])
    with pytest.raises(IngressModelError, match="multiple default IngressClasses found"):
        is_managed(bare, [ingress_class("a", default=True), ingress_class("b", default=True)])


def test_ingress_class_params_are_refused() -> None:
    """class_loader.go@v3.5.0 loads IngressClassParams; we do not model them."""
    with pytest.raises(GroupError, match="IngressClassParams"):
        is_managed(ingress(), [ingress_class(params_kind="IngressClassParams")])
    with pytest.raises(GroupError, match="references unknown parameters"):
        is_managed(ingress(), [ingress_class(params_kind="Other")])


def test_group_ids() -> None:
    """group.go@v3.5.0: explicit ids print as the name, implicit as namespace/name."""
    assert group_id_for(ingress("a", ns="n1")) == GroupID("n1", "a")
    assert str(group_id_for(ingress("a", ns="n1"))) == "n1/a"
    explicit = group_id_for(ingress("a", annotations={A + "group.name": "team.web-1"}))
    assert explicit == GroupID.explicit("team.web-1") and str(explicit) == "team.web-1"
    assert explicit.is_explicit


@pytest.mark.parametrize("bad", ["Team", "-a", "a-", "a_b", "", "a" * 64])
def test_invalid_group_names(bad: str) -> None:
    """group_loader.go@v3.5.0 validateGroupName: ^([a-z0-9][-a-z0-9.]*)?[a-z0-9]$, <= 63."""
    with pytest.raises(GroupError, match="invalid ingress group"):
        group_id_for(ingress(annotations={A + "group.name": bad}))


def test_members_sorted_by_order_then_namespaced_name() -> None:
    """group_loader.go@v3.5.0 sortGroupMembers: group.order ascending (default 0), ties by
    "<namespace>/<name>"."""
    g = {A + "group.name": "shared"}
    ings = [
        ingress("z", ns="a", annotations=g),
        ingress("b", ns="b", annotations={**g, A + "group.order": "-5"}),
        ingress("a", ns="b", annotations=g),
        ingress("c", ns="a", annotations={**g, A + "group.order": "10"}),
    ]
    assert names(sort_members(ings)) == ["b", "z", "a", "c"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1001", r"explicit Ingress group order must be within \[-1000:1000\], "
                 r"Ingress: shop/web, order: 1001"),
        ("-1001", "must be within"),
        ("first", "failed to load Ingress group order for ingress: shop/web: failed to parse"),
    ],
)
def test_bad_group_order(value: str, message: str) -> None:
    """group_loader.go@v3.5.0 sortGroupMembers range [-1000, 1000] and parse errors."""
    with pytest.raises(IngressModelError, match=message):
        sort_members([ingress(annotations={A + "group.order": value})])


def test_load_groups_partitions_and_reports() -> None:
    """group_loader.go@v3.5.0 Load: explicit groups merge Ingresses across namespaces,
    implicit groups hold one Ingress, deleted and foreign Ingresses belong to none."""
    g = {A + "group.name": "shared"}
    result = load_groups(
        [
            ingress("one", ns="a", annotations=g),
            ingress("two", ns="b", annotations={**g, A + "group.order": "-1"}),
            ingress("solo", ns="a"),
            ingress("nginx", class_name="nginx"),
            ingress("going", deleting=True),
            ingress("badname", annotations={A + "group.name": "Bad"}),
            ingress("noclass", class_name="missing"),
            ingress("badorder", annotations={A + "group.name": "broken",
                                             A + "group.order": "x"}),
        ],
        [ALB, NGINX],
    )
    assert list(map(str, result.groups)) == ["a/solo", "shared"]
    assert names(result.groups[GroupID.explicit("shared")].members) == ["two", "one"]
    assert set(result.ingress_errors) == {"shop/badname", "shop/noclass"}
    assert result.ingress_errors["shop/badname"].reason == "FailedLoadGroupID"
    assert result.ingress_errors["shop/badname"].event_message.startswith(
        "failed load groupID due to invalid ingress group"
    )
    assert list(result.group_errors) == [GroupID.explicit("broken")]
