"""Where the testbed keeps things: its packaged assets, and a cache shared by every clone.

Everything the testbed reads at run time (image build inputs, host scripts, manifests) lives
inside the `testbed` package, under testbed/assets, so a `pip install` from a git URL or a
wheel is as complete as a checkout; nothing here points at the source tree.

The cache lives outside the work tree (default ~/.cache/alb-testbed) so a fresh clone, such as
CI's, reuses Go builds and images made by an earlier one.
"""

from __future__ import annotations

import os
from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
IMAGES_DIR = ASSETS_DIR / "images"
SCRIPTS_DIR = ASSETS_DIR / "scripts"
MANIFESTS_DIR = ASSETS_DIR / "manifests"


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
