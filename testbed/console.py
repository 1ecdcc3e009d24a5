"""Progress output for long steps: a status line while a step runs, its duration when done.

Output goes to stderr so commands that print data (status as JSON, paths) keep stdout clean.
When several scenarios run side by side, a Board shows one live line per running scenario
(its current step); each scenario's steps then update its line instead of printing, and only
steps that end badly (failed, or not met) print a line of their own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

err = Console(stderr=True, highlight=False)
_lane = threading.local()  # which Board line this thread's steps update, if any
_board_active = threading.Event()


class Board:
    """One live line per lane (a running scenario): its name, current step and how long."""

    def __init__(self) -> None:
        self._lines: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._live = Live(console=err, refresh_per_second=4, transient=True,
                          get_renderable=self._render)

    def _render(self) -> Group:
        now = time.monotonic()
        with self._lock:
            rows = [Text.from_markup(f"[bold]{name}[/]: {what}… [dim]({now - since:.0f}s)[/]")
                    for name, (what, since) in self._lines.items()]
        return Group(*rows)

    def __enter__(self) -> Board:
        _board_active.set()
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()
        _board_active.clear()

    def show(self, lane: str, what: str) -> None:
        with self._lock:
            self._lines[lane] = (what, time.monotonic())

    @contextmanager
    def lane(self, name: str) -> Iterator[None]:
        """Steps run by this thread inside the block update the line `name`."""
        _lane.board, _lane.name = self, name
        self.show(name, "starting")
        try:
            yield
        finally:
            _lane.board = None
            with self._lock:
                self._lines.pop(name, None)


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
    board: Board | None = getattr(_lane, "board", None)
    if board is not None:
        board.show(_lane.name, title)
    # rich allows one live display at a time: with a Board up, other threads print plainly
    status = err.status(f"[bold]{title}[/]…") if not _board_active.is_set() else None
    try:
        if status is not None:
            status.start()
        yield outcome
    except BaseException:
        err.print(f"[red]✗[/] {title} [dim]({time.monotonic() - start:.1f}s)[/]")
        raise
    finally:
        if status is not None:
            status.stop()
    took = f"[dim]({time.monotonic() - start:.1f}s)[/]"
    if outcome.unmet is not None:
        err.print(f"[yellow]![/] {title}: {outcome.unmet} {took}")
    elif board is None:
        err.print(f"[green]✓[/] {title} {took}")


def info(message: str) -> None:
    err.print(f"  {message}")
