"""Structured JSON-lines logging: one object per line, so tests and reports read fields, not text.

Target and gate writes carry `action` (register | deregister | gate); the testbed's report keys on
it, so it and its companion fields are a published contract (docs/controller.md, Observability).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, TextIO

_lock = threading.Lock()
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class _State:
    """Process-wide level and stream, read at emit time so module-level loggers follow
    configure() calls made after import."""

    level: int = 20
    stream: TextIO | None = None


class Logger:
    """Minimal structured logger; fields are keyword arguments (action=, tgb=, pod=, targets=)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _emit(self, level: str, msg: str, fields: dict[str, Any]) -> None:
        if _LEVELS[level] < _State.level:
            return
        now = time.time()
        rec: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
            + f".{int(now * 1000) % 1000:03d}Z",
            "level": level,
            "logger": self.name,
            "msg": msg,
        }
        rec.update(fields)
        line = json.dumps(rec, default=str)
        with _lock:
            out = _State.stream or sys.stderr
            out.write(line + "\n")
            out.flush()

    def debug(self, msg: str, **fields: Any) -> None:
        self._emit("debug", msg, fields)

    def info(self, msg: str, **fields: Any) -> None:
        self._emit("info", msg, fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self._emit("warning", msg, fields)

    def error(self, msg: str, **fields: Any) -> None:
        self._emit("error", msg, fields)

    def child(self, name: str) -> Logger:
        return Logger(f"{self.name}.{name}")


def get_logger(name: str = "") -> Logger:
    """A logger named albc.<name>."""
    return Logger(f"albc.{name}" if name else "albc")


def configure(level: str = "info", stream: TextIO | None = None) -> None:
    """Set the process-wide level and stream (default stderr)."""
    _State.level = _LEVELS.get(level, 20)
    _State.stream = stream
