"""Waiting on a condition with a deadline: the one poll loop the testbed uses."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class TimedOut(Exception):
    """The deadline passed; `last_error` is the last tolerated exception, if any."""

    def __init__(self, timeout: float, last_error: Exception | None) -> None:
        super().__init__(f"timed out after {timeout:g}s")
        self.last_error = last_error

    def detail(self) -> str:
        return f" (last error: {self.last_error})" if self.last_error else ""


def poll(probe: Callable[[], T], timeout: float, interval: float = 0.5,
         tolerate: tuple[type[Exception], ...] = ()) -> T:
    """Call `probe` every `interval` s and return its first truthy value; raise TimedOut once
    `timeout` s pass. Exceptions of the `tolerate` types (a server still starting) mean
    "not yet"."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except tolerate as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            raise TimedOut(timeout, last_error)
        time.sleep(interval)
