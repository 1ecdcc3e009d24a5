"""Small helpers for e2e tests: waiting on conditions with deadlines, exec in pods."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

from kubernetes import client
from kubernetes.stream import stream

from tests.waiting import wait_until

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 120,
             interval: float = 0.5) -> T:
    """Poll `probe` until it returns something truthy; API errors while objects settle are
    retried. Fails with `what` at the deadline."""
    return cast(T, wait_until(probe, timeout, what, interval, tolerate=(Exception,)))


def pod_exec(api: client.ApiClient, namespace: str, pod: str, command: list[str]) -> str:
    return str(stream(client.CoreV1Api(api).connect_get_namespaced_pod_exec, pod, namespace,
                      command=command, stderr=True, stdin=False, stdout=True, tty=False,
                      _preload_content=True))


def condition(obj_status, kind: str) -> str | None:  # type: ignore[no-untyped-def]
    for c in obj_status.conditions or []:
        if c.type == kind:
            return str(c.status)
    return None
