"""Endpoint resolution over real EndpointSlice/Endpoints/Pod/Node/Service shapes: the six rules,
as v3.5.0 applies them unless a test names another release (controller/presets.py)."""

from __future__ import annotations

from typing import Any

import pytest
from ctrl_helpers import NS, endpoint_slice, ep, legacy_endpoints, node, pod, service

from controller.config import Config
from controller.gates import gate_type
from controller.resolve import (
    BackendNotFound,
    PodNotCached,
    endpoints_data_from_legacy,
    endpoints_data_from_slices,
    find_service_port,
    resolve_pod_endpoints,
)

GATE = gate_type("web-tgb")


def run(
    slices: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    nodes: list[dict[str, Any]] | None = None,
    svc_port: int | str = 80,
    legacy: dict[str, Any] | None = None,
    release: str = "v3.5.0",
    **switches: Any,
) -> Any:
    pods_by = {p["metadata"]["name"]: p for p in pods}
    nodes_by = {n["metadata"]["name"]: n for n in (nodes if nodes is not None else [node()])}
    sp = find_service_port(service(), svc_port)
    data = (
        endpoints_data_from_legacy(legacy)
        if legacy is not None
        else endpoints_data_from_slices(slices)
    )
    rules = Config.behaving_like(release, aws_endpoint_url="http://e", **switches)
    return resolve_pod_endpoints(
        sp, data, NS, lambda ns, n: pods_by.get(n), nodes_by.get, GATE, rules
    )


def keys(res: Any) -> list[str]:
    return sorted(e.key for e in res.endpoints)


def test_service_port_by_name_and_number() -> None:
    svc = service(ports=[("http", 80, 8080), ("admin", 9000, 9090)])
    assert find_service_port(svc, "admin")["port"] == 9000
    assert find_service_port(svc, 80)["name"] == "http"
    with pytest.raises(BackendNotFound):
        find_service_port(svc, 81)
    with pytest.raises(BackendNotFound):
        find_service_port(svc, "nope")
    with pytest.raises(BackendNotFound):
        find_service_port(None, 80, "web")


def test_registered_port_is_endpoint_port_and_named_port_filters() -> None:
    s1 = endpoint_slice(endpoints=[ep("10.0.0.1", "a")], port_name="http", port=8080)
    s2 = endpoint_slice(name="web-x", endpoints=[ep("10.0.0.2", "b")], port_name="other", port=7000)
    res = run([s1, s2], [pod("a", "10.0.0.1"), pod("b", "10.0.0.2")])
    assert keys(res) == ["10.0.0.1:8080"]


def test_rule1_only_pod_targetrefs_first_address() -> None:
    e = ep("10.0.0.1", "a")
    e.addresses = ["10.0.0.1", "10.0.0.99"]
    s = endpoint_slice(endpoints=[e, ep("10.0.0.3", "x", kind="Node")])
    assert keys(run([s], [pod("a", "10.0.0.1")])) == ["10.0.0.1:8080"]


def test_rule2_pod_missing_from_cache_per_release() -> None:
    ghost = [endpoint_slice(endpoints=[ep("10.0.0.1", "ghost")])]
    # v3.4.0+ (PR #4678): skipped, no poll (the pod watch brings it); v2.4.1: skipped (#3299)
    for release in ("v3.5.0", "v2.4.1"):
        res = run(ghost, [], release=release)
        assert res.endpoints == [] and not res.potential_ready, release
    # v2.6.0-v3.2.0 (PR #3305): skipped and polled
    res = run(ghost, [], release="v2.6.0")
    assert res.endpoints == [] and res.potential_ready
    # v2.2.x: a ready endpoint without its pod fails the reconcile, a not-ready one polls
    with pytest.raises(PodNotCached):
        run(ghost, [], release="v2.2.1")
    res = run([endpoint_slice(endpoints=[ep("10.0.0.1", "ghost", ready=False)])], [],
              release="v2.2.1")
    assert res.endpoints == [] and res.potential_ready


@pytest.mark.parametrize("ready", [True, None])
def test_rule3_ready_or_nil_registers(ready: bool | None) -> None:
    s = endpoint_slice(endpoints=[ep("10.0.0.1", "a", ready=ready, terminating=None)])
    assert keys(run([s], [pod("a", "10.0.0.1", containers_ready=False)])) == ["10.0.0.1:8080"]


def test_rule4_not_ready_needs_containers_ready() -> None:
    s = endpoint_slice(
        endpoints=[ep("10.0.0.1", "gated", ready=False), ep("10.0.0.2", "starting", ready=False)]
    )
    pods = [
        pod("gated", "10.0.0.1", containers_ready=True, ready=False, gates=["web-tgb"]),
        pod("starting", "10.0.0.2", containers_ready=False, gates=["web-tgb"]),
    ]
    res = run([s], pods)
    assert keys(res) == ["10.0.0.1:8080"]
    assert not res.potential_ready  # v3.4.0+: the pod watch sees it become ContainersReady
    # before v3.4.0 the gated pod still starting kept the binding polling
    assert run([s], pods, release="v3.2.0").potential_ready


def test_v2_2_not_ready_counts_only_with_this_bindings_gate_and_no_node_check() -> None:
    s = endpoint_slice(endpoints=[ep("10.0.0.1", "gated", ready=False),
                                  ep("10.0.0.2", "plain", ready=False)])
    pods = [pod("gated", "10.0.0.1", ready=False, gates=["web-tgb"], node="n-down"),
            pod("plain", "10.0.0.2", ready=False, node="n-down")]
    nodes = [node("n-down", "False")]
    assert keys(run([s], pods, nodes, release="v2.2.0")) == ["10.0.0.1:8080"]
    assert keys(run([s], pods, nodes, release="v2.4.1")) == []  # node not Ready: skipped


def test_ready_nil_is_not_ready_in_v2_4_to_v2_6() -> None:
    s = endpoint_slice(endpoints=[ep("10.0.0.1", "a", ready=None, terminating=None)])
    pods = [pod("a", "10.0.0.1", containers_ready=False)]
    assert keys(run([s], pods, release="v2.6.0", endpoint_slices=True)) == []
    assert keys(run([s], pods, release="v2.9.1")) == ["10.0.0.1:8080"]  # PR #3861


def test_rule4_not_ready_without_gate_no_poll() -> None:
    res = run(
        [endpoint_slice(endpoints=[ep("10.0.0.2", "s", ready=False)])],
        [pod("s", "10.0.0.2", containers_ready=False)],
    )
    assert res.endpoints == [] and not res.potential_ready


def test_rule5_terminating_never_registered_even_containers_ready() -> None:
    s = endpoint_slice(endpoints=[ep("10.0.0.1", "a", ready=False, serving=True, terminating=True)])
    assert keys(run([s], [pod("a", "10.0.0.1", containers_ready=True)])) == []


@pytest.mark.parametrize(
    "status,expected",
    [("True", ["10.0.0.1:8080"]), ("Unknown", ["10.0.0.1:8080"]), ("False", []), (None, [])],
)
def test_rule5_node_ready_status(status: str | None, expected: list[str]) -> None:
    s = endpoint_slice(endpoints=[ep("10.0.0.1", "a", ready=False)])
    nodes = [node("node-1", status)] if status else []
    assert keys(run([s], [pod("a", "10.0.0.1")], nodes)) == expected


def test_rule6_fail_open_unknown_bucket_only_without_ready() -> None:
    s = endpoint_slice(
        endpoints=[ep("10.0.0.1", "a", ready=False), ep("10.0.0.2", "b", ready=True)]
    )
    pods = [pod("a", "10.0.0.1", node="n-unknown"), pod("b", "10.0.0.2")]
    nodes = [node("n-unknown", "Unknown"), node("node-1", "True")]
    assert keys(run([s], pods, nodes)) == ["10.0.0.2:8080"]  # ready exists: unknown ignored
    s2 = endpoint_slice(endpoints=[ep("10.0.0.1", "a", ready=False)])
    assert keys(run([s2], pods, nodes)) == ["10.0.0.1:8080"]
    assert keys(run([s2], pods, nodes, fail_open=False)) == []
    assert keys(run([s2], pods, nodes, release="v2.4.1")) == []  # the gate was off until v2.5.0


def test_legacy_endpoints_ready_notready_never_terminating() -> None:
    eps = legacy_endpoints(
        ready=[("10.0.0.1", "a")], not_ready=[("10.0.0.2", "b"), ("10.0.0.3", "c")]
    )
    data = endpoints_data_from_legacy(eps)
    conds = [e["conditions"] for e in data[0][1]]
    assert conds[0] == {"ready": True, "serving": True, "terminating": False}
    assert all(c["terminating"] is False for c in conds)
    pods = [
        pod("a", "10.0.0.1"),
        pod("b", "10.0.0.2", containers_ready=True, ready=False),
        pod("c", "10.0.0.3", containers_ready=False),
    ]
    assert keys(run([], pods, legacy=eps)) == ["10.0.0.1:8080", "10.0.0.2:8080"]
