"""Waiting on a condition with a deadline: the one way tests wait (no bare sleeps)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(cond: Callable[[], T], timeout: float, what: str = "condition",
               interval: float = 0.01, diag: Callable[[], str] | None = None,
               tolerate: tuple[type[Exception], ...] = ()) -> T:
    """Poll `cond` every `interval` s and return its first truthy value; fail the test if none
    comes within `timeout` s. Exceptions of the `tolerate` types (transient API errors while
    objects settle) count as "not yet"; `diag` adds what to look at to the failure."""
    end = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = cond()
            if value:
                return value
            last = value
        except tolerate as exc:
            last = exc
        if time.monotonic() >= end:
            extra = f"\n{diag()}" if diag else ""
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; "
                                 f"last={last!r}{extra}")
        time.sleep(interval)
