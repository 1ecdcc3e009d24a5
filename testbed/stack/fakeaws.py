"""The fake AWS as a container on the kind network, like an ALB outside the nodes.

The host reaches its API on a published loopback port; pods (the controller) reach it on its
kind-network IP; it reaches pod IPs through routes podCIDR -> node IP. ALB listeners bound to
ports in LISTENER_PORTS are published too, so load can come from the host (also on macOS).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from kubernetes import client

from testbed import docker
from testbed.cluster import network
from testbed.console import StepFailed, step
from testbed.poll import TimedOut, poll

CONTAINER = "albtb-fakeaws"
API_PORT = 4566
LISTENER_PORTS = list(range(8000, 8010))


@dataclass
class FakeAws:
    container: network.NetworkContainer

    @property
    def endpoint_url(self) -> str:
        """For boto3 on the host."""
        return f"http://127.0.0.1:{self.container.published[API_PORT]}"

    @property
    def cluster_endpoint_url(self) -> str:
        """For pods (the controller): the container's address on the kind network."""
        return f"http://{self.container.ip}:{API_PORT}"

    def listener_url(self, port: int) -> str:
        return f"http://127.0.0.1:{self.container.published[port]}"

    def events(self, since: int = 0, *, target_group_arn: str | list[str] | None = None,
               listener_port: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """Events after `since`; with target groups and/or a listener port, only one run's."""
        query: dict[str, str | int] = {"since": since}
        if target_group_arn:
            query["target_group_arn"] = (target_group_arn if isinstance(target_group_arn, str)
                                         else ",".join(target_group_arn))
        if listener_port:
            query["listener_port"] = listener_port
        with urllib.request.urlopen(f"{self.endpoint_url}/_testbed/events?{urlencode(query)}",
                                    timeout=10) as r:
            body = json.load(r)
        return body["events"], body["next"]

    def cursor(self) -> int:
        """The newest event's seq: events after it are what happens from now on."""
        with urllib.request.urlopen(f"{self.endpoint_url}/_testbed/events?limit=1",
                                    timeout=10) as r:
            return int(json.load(r)["latest"])

    def configure(self, target_group_arn: str | None = None, **settings: float) -> None:
        """Engine settings: for one target group (a run's own) or, without one, for all."""
        body: dict[str, Any] = dict(settings)
        if target_group_arn:
            body["target_group_arn"] = target_group_arn
        req = urllib.request.Request(f"{self.endpoint_url}/_testbed/config", method="POST",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=10).close()
        except urllib.error.HTTPError as exc:
            raise StepFailed(f"fake AWS refused settings {body}: {exc.read().decode()}") from None

    def api_fault(self, body: dict[str, Any] | None = None, *,
                  target_group_arn: list[str] | None = None) -> dict[str, Any]:
        """Start an API fault (POST /_testbed/faults, testbed/fakeaws/api/faults.py), or with
        no body end it; returns its state (calls seen and refused). With target groups, only
        calls naming one of them are hit (a run's own fault)."""
        scope = ",".join(target_group_arn or [])
        if body:
            url, data = f"{self.endpoint_url}/_testbed/faults", json.dumps(
                {**body, "target_group_arn": scope} if scope else body).encode()
        else:
            query = f"?{urlencode({'target_group_arn': scope})}" if scope else ""
            url, data = f"{self.endpoint_url}/_testbed/faults{query}", None
        req = urllib.request.Request(url, method="POST" if body else "DELETE", data=data,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return dict(json.load(r))
        except urllib.error.HTTPError as exc:
            raise StepFailed(f"fake AWS refused fault {body}: {exc.read().decode()}") from None

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.endpoint_url}/_testbed/reset", method="POST",
                                     data=b"{}")
        urllib.request.urlopen(req, timeout=10).close()

    @contextmanager
    def listener_port(self, in_use: Callable[[], set[int]]) -> Iterator[int]:
        """A published listener port no other run holds, for the length of the block.
        `in_use` says which ports listeners of the fake AWS already bind (a run that crashed
        may have left one)."""
        with _port_lock:
            taken = _leased | in_use()
            free = [p for p in LISTENER_PORTS if p not in taken]
            if not free:
                raise StepFailed(f"every published listener port ({LISTENER_PORTS[0]}-"
                                 f"{LISTENER_PORTS[-1]}) is in use; run fewer scenarios at once")
            port = free[0]
            _leased.add(port)
        try:
            yield port
        finally:
            with _port_lock:
                _leased.discard(port)

    def restart(self) -> dict[str, Any]:
        """Restart the fake AWS's engine with its state kept (POST /_testbed/restart): old and
        new engine pid, handover_ms, what was carried over (docs/fakeaws.md)."""
        req = urllib.request.Request(f"{self.endpoint_url}/_testbed/restart", method="POST")
        try:
            # Generous: the new engine starts its data-plane workers while calls wait.
            with urllib.request.urlopen(req, timeout=120) as r:
                return dict(json.load(r))
        except urllib.error.HTTPError as exc:
            raise StepFailed(f"fake AWS refused restart: {exc.read().decode()}") from None


# Ports leased to runs of this process (several run side by side, one listener port each).
_port_lock = threading.Lock()
_leased: set[int] = set()


def start(api: client.ApiClient, image: str, *, min_interval: float = 0.5,
          extra_args: list[str] | None = None) -> FakeAws:
    """(Re)start the fake AWS container and wait for its API."""
    with step(f"starting fake AWS ({image}) on the kind network"):
        container = network.start(
            CONTAINER, image,
            ["testbed", "fakeaws", "serve", "--host", "0.0.0.0", "--port", str(API_PORT),
             "--listener-host", "0.0.0.0", "--min-health-check-interval", str(min_interval),
             *(extra_args or [])],
            api=api, publish=[API_PORT, *LISTENER_PORTS])
        aws = FakeAws(container)

        def answers() -> bool:
            with urllib.request.urlopen(f"{aws.endpoint_url}/_testbed/healthz", timeout=2) as r:
                return r.status == 200

        try:
            poll(answers, 60, interval=0.3, tolerate=(OSError,))
        except TimedOut:
            logs = docker.logs(CONTAINER)
            raise StepFailed(f"fake AWS did not answer within 60s; its log:\n{logs}") from None
        return aws


def stop() -> None:
    network.stop(CONTAINER)
