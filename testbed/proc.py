"""Running external tools (docker, kind, build scripts): the one place the testbed starts them.

A long build prints a lot; we keep it in a log file and show its tail only when it fails, so
the user sees progress lines from us and the tool's own words when something goes wrong.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from testbed.console import StepFailed

Args = Sequence[str | os.PathLike[str]]


def run(args: Args, *, env: Mapping[str, str] | None = None,
        cwd: Path | None = None, log_name: str | None = None, hint: str = "",
        timeout: float | None = None) -> str:
    """Run a command, return its stdout; on failure raise StepFailed with the log's tail."""
    full_env = {**os.environ, **(env or {})}
    log_dir = Path(tempfile.gettempdir()) / "alb-testbed-logs"
    log_dir.mkdir(exist_ok=True)
    log = log_dir / f"{log_name or Path(str(args[0])).name}.log"
    with open(log, "w") as err:
        try:
            done = subprocess.run([str(a) for a in args], env=full_env, cwd=cwd, text=True,
                                  stdout=subprocess.PIPE, stderr=err, timeout=timeout)
        except FileNotFoundError as exc:
            raise StepFailed(f"{args[0]} not found. {hint}".strip()) from exc
        except subprocess.TimeoutExpired as exc:
            raise StepFailed(f"{' '.join(map(str, args))} took longer than {timeout}s "
                             f"(log: {log}). {hint}".strip()) from exc
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise StepFailed(
            f"`{' '.join(map(str, args))}` failed with exit code {done.returncode}.\n"
            f"--- last lines of {log} ---\n{tail}\n---\n{hint}".rstrip())
    return done.stdout


@dataclass(frozen=True)
class Attempt:
    code: int | None  # None: the program is missing or ran past its timeout
    output: str

    @property
    def ok(self) -> bool:
        return self.code == 0


def attempt(args: Args, *, timeout: float = 30, merge_stderr: bool = False) -> Attempt:
    """Run a command whose failure is an answer, not an error: probes (is the engine up? which
    kind version?) and best-effort clean-up after an error that is already being reported."""
    try:
        done = subprocess.run([str(a) for a in args], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT if merge_stderr else subprocess.DEVNULL,
                              text=True, errors="replace", timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return Attempt(None, "")
    return Attempt(done.returncode, done.stdout)


def ok(args: Args, timeout: float = 30) -> bool:
    """True when the command exits 0."""
    return attempt(args, timeout=timeout).ok
