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


@contextmanager
def step(title: str) -> Iterator[None]:
    start = time.monotonic()
    with err.status(f"[bold]{title}[/]…"):
        try:
            yield
        except BaseException:
            err.print(f"[red]✗[/] {title} [dim]({time.monotonic() - start:.1f}s)[/]")
            raise
    err.print(f"[green]✓[/] {title} [dim]({time.monotonic() - start:.1f}s)[/]")


def info(message: str) -> None:
    err.print(f"  {message}")
