"""Content hashes of build inputs: an image is rebuilt only when one of its inputs changed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

# Caches Python and the linters leave beside sources: never an input.
IGNORED_PARTS = frozenset({"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"})


def _ignored(path: Path) -> bool:
    return bool(IGNORED_PARTS.intersection(path.parts)) or path.suffix == ".pyc"


def digest(paths: Iterable[Path], extra: Iterable[str] = ()) -> str:
    """sha256 over file paths+contents (directories recursively) and extra strings, 12 hex."""
    h = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file() and not _ignored(p)) \
            if path.is_dir() else [path]
        for f in files:
            h.update(str(f.relative_to(path.parent)).encode())
            h.update(b"\0")
            h.update(f.read_bytes())
            h.update(b"\0")
    for item in extra:
        h.update(item.encode())
        h.update(b"\0")
    return h.hexdigest()[:12]
