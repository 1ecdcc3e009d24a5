"""build._side_by_side: independent image work runs at the same time; failures surface."""

from __future__ import annotations

import threading

import pytest

from testbed.console import StepFailed
from testbed.images import build


def test_jobs_run_at_the_same_time() -> None:
    both = threading.Barrier(2, timeout=5)  # each job waits for the other: only concurrent passes
    done: list[str] = []

    def job(name: str) -> None:
        both.wait()
        done.append(name)

    build._side_by_side({"a": lambda: job("a"), "b": lambda: job("b")})
    assert sorted(done) == ["a", "b"]


def test_a_failure_is_raised_after_the_others_end() -> None:
    finished = threading.Event()

    def fails() -> None:
        raise StepFailed("debootstrap failed")

    def slow() -> None:
        finished.wait(0.2)
        finished.set()

    with pytest.raises(StepFailed, match="debootstrap failed"):
        build._side_by_side({"rootfs": fails, "go": slow})
    assert finished.is_set()


def test_one_image_is_built_once_when_two_jobs_need_it(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    have: set[str] = set()
    monkeypatch.setattr(build.docker, "image_exists", lambda tag: tag in have)

    def debootstrap(args: list[object], **kw: object) -> str:
        made.append(str(args[2]))
        have.add(str(args[2]))
        return ""

    monkeypatch.setattr(build.proc, "run", debootstrap)
    build._side_by_side({"a": build.debian_rootfs, "b": build.debian_rootfs})
    assert len(made) == 1 and made[0].startswith("albtb/debian-rootfs:")
