"""listener_addresses per-load-balancer: each load balancer listens on its own loopback
address (its DNSName), so two load balancers can both have a listener on the same port, as
on AWS. Run with two data-plane workers."""

from __future__ import annotations

import http.client
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.fakeaws.conftest import FakeAws, free_port, running_fakeaws

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fakeaws_server() -> Iterator[FakeAws]:
    with running_fakeaws("--listener-addresses", "per-load-balancer",
                         "--dataplane-workers", "2") as fa:
        yield fa


def _get(host: str, port: int, path: str) -> tuple[int, bytes]:
    c = http.client.HTTPConnection(host, port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def _listen(alb: Any, port: int) -> str:
    """A listener on `port` for the load balancer -> its address (DNSName)."""
    alb.elbv2.create_listener(
        LoadBalancerArn=alb.lb_arn, Protocol="HTTP", Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": alb.tg_arn}])
    lb = alb.elbv2.describe_load_balancers(LoadBalancerArns=[alb.lb_arn])["LoadBalancers"][0]
    return str(lb["DNSName"])


def test_two_load_balancers_on_one_port(fakeaws, make_alb, targets) -> None:
    a_srv, b_srv = targets(), targets()
    a, b = make_alb(listener=False), make_alb(listener=False)
    port = free_port()
    a_host, b_host = _listen(a, port), _listen(b, port)
    assert a_host != b_host
    assert a_host.startswith("127.1.") and b_host.startswith("127.1.")
    a.register(a_srv)
    b.register(b_srv)
    a.wait_state(a_srv, "healthy")
    b.wait_state(b_srv, "healthy")
    for i in range(6):
        assert _get(a_host, port, f"/a{i}")[0] == 200
        assert _get(b_host, port, f"/b{i}")[0] == 200
    assert {r.path for r in a_srv.requests if r.path != "/health"} == {f"/a{i}" for i in range(6)}
    assert {r.path for r in b_srv.requests if r.path != "/health"} == {f"/b{i}" for i in range(6)}
    # Nothing listens for them on the shared address.
    with pytest.raises(ConnectionRefusedError):
        _get("127.0.0.1", port, "/nobody")


def test_create_load_balancer_answers_its_address(fakeaws, make_alb) -> None:
    alb = make_alb(listener=False)
    described = alb.elbv2.describe_load_balancers(
        LoadBalancerArns=[alb.lb_arn])["LoadBalancers"][0]["DNSName"]
    vpc_subnets = alb.elbv2.describe_load_balancers(
        LoadBalancerArns=[alb.lb_arn])["LoadBalancers"][0]["AvailabilityZones"]
    created = alb.elbv2.create_load_balancer(
        Name="addr-check", Subnets=[z["SubnetId"] for z in vpc_subnets])["LoadBalancers"][0]
    assert created["DNSName"].startswith("127.1.")
    assert created["DNSName"] != described
    again = alb.elbv2.describe_load_balancers(
        LoadBalancerArns=[created["LoadBalancerArn"]])["LoadBalancers"][0]["DNSName"]
    assert again == created["DNSName"]


def test_per_load_balancer_needs_a_loopback_listener_host() -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "testbed"), "fakeaws", "serve", "--port", "0",
         "--listener-addresses", "per-load-balancer", "--listener-host", "0.0.0.0"],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "loopback" in proc.stderr and "Traceback" not in proc.stderr
