"""Waiting on a condition with a deadline: the one way tests wait (no bare sleeps)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(cond: Callable[[], bool], timeout: float, what: str = "condition",
               interval: float = 0.01) -> None:
    """Poll `cond` every `interval` s; fail the test if it is not true within `timeout` s."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
