"""Load balancer and target group names: upstream's algorithm, pinned to upstream's own vectors."""

from __future__ import annotations

import pytest

from controller.ingress import naming


def tg_name(**over: object) -> str:
    args: dict[str, object] = dict(
        cluster_name="",
        group_id="",
        ingress_namespace="ns-1",
        ingress_name="name-1",
        service_namespace="ns-1",
        service_name="name-1",
        service_uid="my-uuid",
        service_port="http",
        target_group_port=8080,
        target_type="ip",
        protocol="HTTP",
        protocol_version="HTTP1",
    )
    args.update(over)
    return naming.target_group_name(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("over", "want"),
    [
        ({}, "k8s-ns1-name1-2c37289a00"),
        ({"service_port": 80}, "k8s-ns1-name1-ab859e54b5"),
        ({"target_group_port": 9090}, "k8s-ns1-name1-6481032048"),
        ({"target_type": "instance"}, "k8s-ns1-name1-f4adfdc175"),
        ({"protocol": "HTTPS"}, "k8s-ns1-name1-22fbce26a7"),
    ],
)
def test_target_group_name_matches_upstream_vectors(over: dict[str, object], want: str) -> None:
    """model_build_target_group_test.go@v3.5.0 Test_defaultModelBuildTask_buildTargetGroupName
    (a zero task: empty cluster name and group id)."""
    assert tg_name(**over) == want


@pytest.mark.parametrize(
    ("ns", "name", "scheme", "want"),
    [
        ("awesome-ns", "ing-1", "internet-facing", "k8s-awesomen-ing1-43b698093c"),
        ("", "explicit-group", "internal", "k8s-explicitgroup-5bf9e53c23"),
    ],
)
def test_load_balancer_name_matches_upstream_vectors(
    ns: str, name: str, scheme: str, want: str
) -> None:
    """model_build_load_balancer_test.go@v3.5.0 Test_defaultModelBuildTask_buildLoadBalancerName
    (implicit: k8s-<ns:8>-<name:8>-<hash:10>; explicit: k8s-<group:17>-<hash:10>)."""
    assert naming.load_balancer_name("", ns, name, scheme) == want


def test_names_are_stable_and_input_sensitive() -> None:
    """model_build_load_balancer.go@v3.5.0: sha256(cluster, group id, scheme) -- same input,
    same name; any change in cluster, group or scheme gives another name."""
    a = naming.load_balancer_name("c1", "shop", "web", "internal")
    assert a == naming.load_balancer_name("c1", "shop", "web", "internal")
    assert a != naming.load_balancer_name("c2", "shop", "web", "internal")
    assert a != naming.load_balancer_name("c1", "shop", "web", "internet-facing")
    assert tg_name(cluster_name="c1") == tg_name(cluster_name="c1") != tg_name(cluster_name="c2")
    assert tg_name(service_uid="other") != tg_name()


def test_names_are_sanitised_and_truncated() -> None:
    """[[:^alnum:]] removed, then %.8s / %.17s truncation (model_build_load_balancer.go@v3.5.0)."""
    lb = naming.load_balancer_name("c", "very-long-namespace", "my_ingress.name", "internal")
    assert lb.startswith("k8s-verylong-myingres-") and len(lb) <= 32
    explicit = naming.load_balancer_name("c", "", "a-really-long-group.name-here", "internal")
    assert explicit.startswith("k8s-areallylonggroupn-") and len(explicit) <= 32
    assert len(tg_name(service_namespace="n" * 40, service_name="s" * 40)) <= 32


def test_target_group_resource_id() -> None:
    """model_build_target_group.go@v3.5.0 buildTargetGroupResourceID."""
    assert naming.target_group_resource_id("shop", "web", "api", 80) == "shop/web-api:80"
    assert naming.target_group_resource_id("shop", "web", "api", "http") == "shop/web-api:http"
