"""pytester for the plugin's tests.

`pytest_plugins = ["pytester"]` is refused in a conftest below the rootdir once the session is
configured (pytest: "Defining 'pytest_plugins' in a non-top-level conftest is no longer
supported"), which is how `pytest tests` reaches this one; so the plugin is registered from
this conftest's pytest_configure, which pytest replays for conftests found during collection.
The rest of the suite never asks for its fixtures.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")
