"""Progress output for long steps: a status line while a step runs, its duration when done.

Output goes to stderr so commands that print data (status as JSON, paths) keep stdout clean.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

err = Console(stderr=True, highlight=False)


class StepFailed(RuntimeError):
    """A step failed; the message says what happened and what to do next."""


class StepOutcome:
    """Lets a step end without an exception yet not as a success (an expected stall)."""

    def __init__(self) -> None:
        self.unmet: str | None = None

    def not_met(self, why: str) -> None:
        self.unmet = why


@contextmanager
def step(title: str) -> Iterator[StepOutcome]:
    start = time.monotonic()
    outcome = StepOutcome()
    with err.status(f"[bold]{title}[/]…"):
        try:
            yield outcome
        except BaseException:
            err.print(f"[red]✗[/] {title} [dim]({time.monotonic() - start:.1f}s)[/]")
            raise
    took = f"[dim]({time.monotonic() - start:.1f}s)[/]"
    if outcome.unmet is not None:
        err.print(f"[yellow]![/] {title}: {outcome.unmet} {took}")
    else:
        err.print(f"[green]✓[/] {title} {took}")


def info(message: str) -> None:
    err.print(f"  {message}")
