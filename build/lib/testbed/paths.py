"""Where the testbed keeps things: the source tree, and a cache shared by every clone.

The cache lives outside the work tree (default ~/.cache/alb-testbed) so a fresh clone, such as
CI's, reuses Go builds and images made by an earlier one.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGES_DIR = REPO_ROOT / "images"
SCRIPTS_DIR = REPO_ROOT / "scripts"
MANIFESTS_DIR = REPO_ROOT / "manifests"


def cache_dir() -> Path:
    base = os.environ.get("ALBTB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "alb-testbed")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def bin_dir() -> Path:
    path = cache_dir() / "bin"
    path.mkdir(parents=True, exist_ok=True)
    return path
