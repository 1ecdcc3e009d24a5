"""Small helpers for e2e tests: waiting on conditions with deadlines, exec in pods."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from kubernetes import client
from kubernetes.stream import stream

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 120,
             interval: float = 0.5) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except Exception as exc:  # transient API errors while objects settle
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                         + (f" (last error: {last_exc})" if last_exc else ""))


def pod_exec(api: client.ApiClient, namespace: str, pod: str, command: list[str]) -> str:
    return str(stream(client.CoreV1Api(api).connect_get_namespaced_pod_exec, pod, namespace,
                      command=command, stderr=True, stdin=False, stdout=True, tty=False,
                      _preload_content=True))


def condition(obj_status, kind: str) -> str | None:  # type: ignore[no-untyped-def]
    for c in obj_status.conditions or []:
        if c.type == kind:
            return str(c.status)
    return None
