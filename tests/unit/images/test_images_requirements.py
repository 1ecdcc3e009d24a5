"""The project image installs the runtime dependencies minus the host-only (report) ones."""

from __future__ import annotations

from pathlib import Path

from testbed.images import build


def test_reporting_dependency_left_out(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = [\n'
                         '  "boto3==1.44.5",\n  "Matplotlib>=3.11 ; python_version >= \'3.11\'",\n'
                         '  "flask_cors==6.0.1",\n]\n'
                         '[project.optional-dependencies]\nreport = ["matplotlib==3.11.2"]\n')
    assert build.image_requirements(pyproject) == ["boto3==1.44.5", "flask_cors==6.0.1"]


def test_the_real_pyproject_keeps_what_the_image_runs() -> None:
    names = {build._dist_name(r) for r in build.image_requirements()}
    assert {"moto", "boto3", "kubernetes", "aiohttp", "typer"} <= names
    assert not names & build.HOST_ONLY_DEPENDENCIES
