"""The testbed's one poll loop: first truthy value, tolerated errors, a deadline that bites."""

from __future__ import annotations

import itertools

import pytest

from testbed.poll import TimedOut, poll


def test_returns_the_first_truthy_value() -> None:
    values = iter([None, 0, "", "pod-a", "pod-b"])
    assert poll(lambda: next(values), timeout=5, interval=0) == "pod-a"


def test_tolerated_errors_mean_not_yet() -> None:
    calls = itertools.count()

    def flaky() -> bool:
        if next(calls) < 2:
            raise ConnectionRefusedError("API server starting")
        return True

    assert poll(flaky, timeout=5, interval=0, tolerate=(OSError,)) is True


def test_deadline_raises_with_the_last_error() -> None:
    def refused() -> bool:
        raise ConnectionRefusedError("still down")

    with pytest.raises(TimedOut) as info:
        poll(refused, timeout=0.05, interval=0.01, tolerate=(OSError,))
    assert "still down" in info.value.detail()
    with pytest.raises(TimedOut) as plain:
        poll(lambda: False, timeout=0.05, interval=0.01)
    assert plain.value.detail() == ""


def test_other_errors_are_not_swallowed() -> None:
    with pytest.raises(KeyError):
        poll(lambda: {}["missing"], timeout=5, interval=0, tolerate=(OSError,))
