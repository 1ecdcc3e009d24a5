"""Shared fixtures: one fake AWS server (subprocess, free loopback ports) per session, reset
before each test; real target servers on 127.0.0.1."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from testbed.fakeaws.testing import TargetServer
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]
# Polling the API: moto costs ~ms of CPU per call, so not every 10 ms.
API_POLL = 0.05
_names = itertools.count(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class FakeAws:
    url: str
    proc: subprocess.Popen[bytes]

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.loads(r.read())

    def post(self, path: str, body: Any = None) -> Any:
        req = urllib.request.Request(self.url + path, data=json.dumps(body or {}).encode(),
                                     method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def post_raw(self, path: str, data: bytes) -> tuple[int, Any]:
        """POST a body as given (e.g. not valid JSON) -> (status, parsed JSON answer)."""
        req = urllib.request.Request(self.url + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def get_raw(self, path: str) -> tuple[int, Any]:
        """GET -> (status, parsed JSON answer), also for error statuses."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def events(self, since: int = 0, kind: str | None = None) -> list[dict[str, Any]]:
        evs = self.get(f"/_testbed/events?since={since}")["events"]
        return [e for e in evs if kind is None or e["kind"] == kind]

    def elb_errors(self, since: int, expect: int = 1, timeout: float = 5.0
                   ) -> list[dict[str, Any]]:
        """elb_error events after `since`, once there are at least `expect` of them: with
        data-plane workers an event reaches the engine's log just after the response reaches
        the client."""
        if expect <= 0:
            return self.events(since, "elb_error")
        return list(wait_until(
            lambda: (evs if len(evs := self.events(since, "elb_error")) >= expect else None),
            timeout, what=f"{expect} elb_error events", interval=API_POLL))

    def last_seq(self) -> int:
        return int(self.get("/_testbed/events?limit=1")["latest"])

    def client(self, service: str, validate: bool = True) -> Any:
        return boto3.client(service, region_name="us-east-1", endpoint_url=self.url,
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            config=Config(parameter_validation=validate,
                                          retries={"max_attempts": 1}))


# Modules whose tests also run against data-plane worker processes (--dataplane-workers 2:
# two ALB nodes sharing each listener port); the rest run with the data plane in the engine.
# A test that pins one node's behaviour (e.g. least-outstanding counts) is marked single_node.
WORKER_MODULES = {"test_fakeaws_dataplane", "test_fakeaws_hostile_http",
                  "test_fakeaws_listener_fuzz", "test_fakeaws_routing", "test_fakeaws_rules"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fakeaws_server" not in metafunc.fixturenames:
        return
    if metafunc.module.__name__.rsplit(".", 1)[-1] not in WORKER_MODULES:
        return
    counts = [1] if metafunc.definition.get_closest_marker("single_node") else [1, 2]
    metafunc.parametrize("fakeaws_server", counts, indirect=True, scope="session",
                         ids=[f"{n}w" for n in counts])


@contextlib.contextmanager
def running_fakeaws(*extra: str) -> Iterator[FakeAws]:
    """`testbed fakeaws serve` on free loopback ports with the tests' fast settings."""
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "testbed"), "fakeaws", "serve", "--port", str(port),
         "--min-health-check-interval", "0.2", "--min-client-keep-alive", "0.5",
         "--connect-timeout", "1", "--log-level", "WARNING", *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    assert "fakeaws ready" in line, line
    out = proc.stdout
    threading.Thread(target=lambda: [sys.stderr.write("[fakeaws] " + ln.decode())
                                     for ln in iter(out.readline, b"")],
                     daemon=True).start()
    try:
        yield FakeAws(f"http://127.0.0.1:{port}", proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def fakeaws_server(request: pytest.FixtureRequest) -> Iterator[FakeAws]:
    workers = getattr(request, "param", 1)
    with running_fakeaws("--dataplane-workers", str(workers)) as fa:
        yield fa


@pytest.fixture()
def fakeaws(fakeaws_server: FakeAws) -> FakeAws:
    fakeaws_server.post("/_testbed/reset")
    fakeaws_server.post("/_testbed/config", {"register_delay": 0, "deregister_delay": 0,
                                             "connect_timeout": 1})
    return fakeaws_server


@pytest.fixture()
def targets() -> Iterator[Callable[..., TargetServer]]:
    made: list[TargetServer] = []

    def make(**kw: Any) -> TargetServer:
        t = TargetServer(**kw).start()
        made.append(t)
        return t

    yield make
    for t in made:
        t.stop()


@dataclass
class Alb:
    """A load balancer with one HTTP listener forwarding to one target group."""

    fa: FakeAws
    elbv2: Any
    tg_arn: str
    lb_arn: str
    listener_arn: str | None
    port: int
    vpc_id: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def register(self, *servers: TargetServer, port: int | None = None) -> None:
        self.elbv2.register_targets(TargetGroupArn=self.tg_arn, Targets=[
            {"Id": s.host, "Port": port or s.port} for s in servers])

    def deregister(self, *servers: TargetServer) -> None:
        self.elbv2.deregister_targets(TargetGroupArn=self.tg_arn, Targets=[
            {"Id": s.host, "Port": s.port} for s in servers])

    def health(self) -> dict[str, tuple[str, str | None]]:
        out = {}
        for d in self.elbv2.describe_target_health(
                TargetGroupArn=self.tg_arn)["TargetHealthDescriptions"]:
            th = d["TargetHealth"]
            out[f"{d['Target']['Id']}:{d['Target']['Port']}"] = (th["State"], th.get("Reason"))
        return out

    def state_of(self, server: TargetServer) -> tuple[str, str | None] | None:
        return self.health().get(server.addr)

    def wait_state(self, server: TargetServer, state: str, reason: str | None = None,
                   timeout: float = 10.0) -> None:
        wait_until(lambda: self.state_of(server) == (state, reason)
                   if reason is not None or state == "healthy"
                   else (self.state_of(server) or ("",))[0] == state,
                   timeout, what=f"{server.addr} -> {state}/{reason}", interval=API_POLL,
                   diag=lambda: f"health: {self.health()}")

    def set_attrs(self, **attrs: str) -> None:
        self.elbv2.modify_target_group_attributes(TargetGroupArn=self.tg_arn, Attributes=[
            {"Key": k.replace("__", "."), "Value": v} for k, v in attrs.items()])


@pytest.fixture()
def make_alb(fakeaws: FakeAws) -> Callable[..., Alb]:
    def make(listener: bool = True, interval: float = 0.2, timeout: float = 0.15,
             healthy: int = 2, unhealthy: int = 2, dereg_delay: int = 0,
             idle_timeout: int | None = None, matcher: str = "200") -> Alb:
        ec2 = fakeaws.client("ec2")
        elbv2 = fakeaws.client("elbv2", validate=False)
        n = next(_names)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                     AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
                   for i, z in ((1, "a"), (2, "b"))]
        lb = elbv2.create_load_balancer(Name=f"alb{n}", Subnets=subnets)
        lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
        tg = elbv2.create_target_group(
            Name=f"tg{n}", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip",
            HealthCheckPath="/health", HealthCheckIntervalSeconds=interval,
            HealthCheckTimeoutSeconds=timeout, HealthyThresholdCount=healthy,
            UnhealthyThresholdCount=unhealthy, Matcher={"HttpCode": matcher})
        tg_arn = tg["TargetGroups"][0]["TargetGroupArn"]
        elbv2.modify_target_group_attributes(TargetGroupArn=tg_arn, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": str(dereg_delay)}])
        if idle_timeout is not None:
            elbv2.modify_load_balancer_attributes(LoadBalancerArn=lb_arn, Attributes=[
                {"Key": "idle_timeout.timeout_seconds", "Value": str(idle_timeout)}])
        port = free_port()
        listener_arn = None
        if listener:
            listener_arn = elbv2.create_listener(
                LoadBalancerArn=lb_arn, Protocol="HTTP", Port=port,
                DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}],
            )["Listeners"][0]["ListenerArn"]
            wait_until(lambda: _listening(port), 5, what="listener bound")
        return Alb(fakeaws, elbv2, tg_arn, lb_arn, listener_arn, port, vpc)

    return make


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def http_get(url: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """GET that returns error statuses instead of raising."""
    req = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


@pytest.fixture(name="http_get")
def http_get_fixture() -> Callable[..., tuple[int, dict[str, str], bytes]]:
    return http_get


@pytest.fixture(name="free_port")
def free_port_fixture() -> Callable[[], int]:
    return free_port
