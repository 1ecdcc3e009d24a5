"""Running external tools (docker, kind, build scripts) with their output kept for errors.

A long build prints a lot; we keep it in a log file and show its tail only when it fails, so
the user sees progress lines from us and the tool's own words when something goes wrong.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from testbed.console import StepFailed


def run(args: Sequence[str | os.PathLike[str]], *, env: Mapping[str, str] | None = None,
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


def ok(args: Sequence[str], timeout: float = 30) -> bool:
    """True when the command exits 0; used for cheap probes (image exists? engine up?)."""
    try:
        return subprocess.run(list(args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=timeout).returncode == 0
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
