"""The kind binary: the pinned version from PATH, else built with Go into the tool cache."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from testbed.images import build, versions


def _version_of(binary: str) -> str | None:
    try:
        out = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = out.stdout.split()
    return parts[1] if len(parts) > 1 else None


def kind_binary() -> Path:
    on_path = shutil.which("kind")
    if on_path and _version_of(on_path) == versions.KIND_VERSION:
        return Path(on_path)
    return build.go_tools("kind") / "kind"
