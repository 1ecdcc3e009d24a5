"""Step lines: a check mark only for a step that did what it says."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from testbed import console


@pytest.fixture
def out(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    buf = io.StringIO()
    monkeypatch.setattr(console, "err", Console(file=buf, width=200, color_system=None))
    return buf


def test_done_step_gets_a_check_mark(out: io.StringIO) -> None:
    with console.step("baseline"):
        pass
    assert out.getvalue().startswith("✓ baseline (")


def test_unmet_step_says_why_without_raising(out: io.StringIO) -> None:
    with console.step("baseline") as outcome:
        outcome.not_met("not reached within 40s")
    line = out.getvalue()
    assert line.startswith("! baseline: not reached within 40s (") and "✓" not in line


def test_failed_step_is_marked_and_reraises(out: io.StringIO) -> None:
    with pytest.raises(console.StepFailed), console.step("deploy"):
        raise console.StepFailed("boom")
    assert out.getvalue().startswith("✗ deploy (")
