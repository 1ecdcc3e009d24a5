"""The project image installs the runtime dependencies minus the host-only (report) ones, read
from the installed distribution's metadata (a pip install has no pyproject.toml)."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest

from testbed.images import build

ROOT = Path(__file__).resolve().parents[3]


def test_reporting_dependency_and_extras_left_out() -> None:
    requires = ["boto3==1.44.5", "Matplotlib>=3.11 ; python_version >= '3.11'",
                "flask_cors==6.0.1", 'mypy==2.4.1; extra == "dev"',
                "pytest==9.2.0 ; python_version >= '3.11' and extra=='dev'",
                "tomli>=2 ; python_version < '3.11'"]
    assert build.image_requirements(requires) == [
        "boto3==1.44.5", "flask_cors==6.0.1", "tomli>=2 ; python_version < '3.11'"]


@pytest.mark.parametrize(("requirement", "extra"), [
    ('ruff==0.17.5; extra == "dev"', True),
    ("x ; (python_version >= '3.11') and extra == 'test'", True),
    ("x==1", False),
    ("x ; python_version >= '3.11'", False),
    ("extra-tools==1", False),  # a distribution whose name says extra is no extra
])
def test_is_extra(requirement: str, extra: bool) -> None:
    assert build._is_extra(requirement) is extra


def test_the_installed_metadata_gives_pyprojects_dependencies_minus_host_only() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    expected = [d for d in declared if build._dist_name(d) not in build.HOST_ONLY_DEPENDENCIES]
    assert build.image_requirements() == expected, (
        "the installed metadata differs from pyproject.toml: reinstall (pip install -e .)")
    assert len(expected) == len(declared) - len(build.HOST_ONLY_DEPENDENCIES)


def test_the_real_metadata_keeps_what_the_image_runs() -> None:
    names = {build._dist_name(r) for r in build.image_requirements()}
    assert {"moto", "boto3", "kubernetes", "aiohttp", "typer"} <= names
    assert not names & build.HOST_ONLY_DEPENDENCIES
    dev = {build._dist_name(r) for r in importlib.metadata.requires(build.DIST_NAME) or []
           if build._is_extra(r)}
    assert "mypy" in dev and not names & dev
