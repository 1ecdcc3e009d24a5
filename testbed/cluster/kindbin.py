"""The kind binary: the pinned version from PATH, else built with Go into the tool cache."""

from __future__ import annotations

import shutil
from pathlib import Path

from testbed import proc
from testbed.images import build, versions


def _version_of(binary: str) -> str | None:
    done = proc.attempt([binary, "version"], timeout=10)
    parts = done.output.split()
    return parts[1] if done.ok and len(parts) > 1 else None


def kind_binary() -> Path:
    on_path = shutil.which("kind")
    if on_path and _version_of(on_path) == versions.KIND_VERSION:
        return Path(on_path)
    return build.go_tools("kind") / "kind"
