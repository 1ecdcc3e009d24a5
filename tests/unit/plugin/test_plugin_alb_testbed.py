"""testbed.pytest_plugin without a cluster: the plugin loads from its entry point, adds its
option, brings the (fake) stack up once per session, resolves scenario arguments, writes
reports where told, and fails with the testbed's message, not a traceback, when the stack
cannot come up.

The stack and the runner are the plugin's two seams (`_ensure_stack`, `_run_scenario`); the
inner pytest sessions run in this process (pytester's default), so monkeypatching them here
reaches the plugin those sessions load.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testbed import pytest_plugin
from testbed.console import StepFailed
from testbed.loadgen.records import Record
from testbed.report import build_report
from testbed.report.text import render_text
from testbed.run.runner import RunResult
from testbed.scenario import ScenarioError, load_builtin
from testbed.scenario.loader import builtin_text
from testbed.scenario.model import Scenario

T0 = 1_800_000_000.0
STACK = object()  # what the fake ensure_stack hands out; the fake runner checks it got it


def _result(sc: Scenario, errors: int = 0) -> RunResult:
    records = [Record(seq=i, intended=T0 + i / 50, started=T0 + i / 50, latency=0.004,
                      status=502 if i < errors else 200, cls="http_5xx" if i < errors else "ok",
                      elb_error=None, pod="demo-0") for i in range(100)]
    report = build_report(records, name=sc.name, expect=sc.expect, rollout_stalled=False)
    return RunResult(sc, report, {}, False, None)


class Fake:
    """Counts stack bring-ups; records each run's scenario name and report directory."""

    def __init__(self) -> None:
        self.stacks = 0
        self.runs: list[tuple[str, Path]] = []
        self.errors = 0

    def ensure_stack(self) -> object:
        self.stacks += 1
        return STACK

    def run(self, sc: Scenario, stack: object, out_dir: Path) -> RunResult:
        assert stack is STACK
        out_dir.mkdir(parents=True)  # as the runner's report writer does
        self.runs.append((sc.name, out_dir))
        return _result(sc, self.errors)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Fake:
    f = Fake()
    monkeypatch.setattr(pytest_plugin, "_ensure_stack", f.ensure_stack)
    monkeypatch.setattr(pytest_plugin, "_run_scenario", f.run)
    return f


def test_registered_as_a_pytest11_entry_point() -> None:
    (ep,) = [e for e in importlib.metadata.entry_points(group="pytest11")
             if e.name == "alb_testbed"]
    assert ep.value == "testbed.pytest_plugin"
    assert ep.dist is not None and ep.dist.name == "alb-testbed"


def test_importing_the_plugin_loads_nothing_heavy() -> None:
    """Every pytest session loads it: only pytest and the standard library at import."""
    code = ("import sys, pytest; before = set(sys.modules); import testbed.pytest_plugin; "
            "import json; print(json.dumps(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert set(json.loads(out)) <= {"testbed", "testbed.pytest_plugin"}


def test_the_plugin_and_its_option_load(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*ALB testbed*", "*--alb-testbed-reports=DIR*"])
    assert pytester.runpytest("--trace-config").stdout.str().count("testbed/pytest_plugin.py")


def test_a_session_brings_the_stack_up_once_and_runs_names_and_paths(
        pytester: pytest.Pytester, fake: Fake) -> None:
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios/mine.yaml").write_text(
        builtin_text("full-recipe").replace("name: full-recipe", "name: mine"))
    pytester.makepyfile(test_alb="""
        from pathlib import Path

        def test_builtin(alb_testbed):
            r = alb_testbed.run("gated-fast-rollout")
            assert r.report.summary.errors == 0, r.text
            assert r.ok and r.report.verdict.ok and r.scenario.name == "gated-fast-rollout"

        def test_path_from_rootdir(alb_testbed):
            r = alb_testbed.run("scenarios/mine.yaml")
            assert r.scenario.name == "mine" and r.out_dir.is_dir()
            assert "Scenario mine" in r.text

        def test_path_object_and_out_dir(alb_testbed, tmp_path):
            r = alb_testbed.run(Path("scenarios") / "mine.yaml", out_dir=tmp_path / "here")
            assert r.out_dir == tmp_path / "here"
    """)
    reports = pytester.path / "reports"
    result = pytester.runpytest("--alb-testbed-reports", str(reports))
    result.assert_outcomes(passed=3)
    assert fake.stacks == 1
    assert [name for name, _ in fake.runs] == ["gated-fast-rollout", "mine", "mine"]
    first, second, third = (out for _, out in fake.runs)
    assert first.parent == second.parent == reports
    assert first.name.endswith("-gated-fast-rollout") and second.name.endswith("-mine")
    assert third.parent != reports


def test_reports_default_to_pytests_temporary_directory(pytester: pytest.Pytester,
                                                        fake: Fake) -> None:
    pytester.makepyfile("""
        def test_one(alb_testbed):
            alb_testbed.run("full-recipe")
    """)
    base = pytester.path / "basetemp"
    pytester.runpytest("--basetemp", str(base)).assert_outcomes(passed=1)
    ((_, out),) = fake.runs
    assert out.parent == base / "alb-testbed"


def test_a_missed_expectation_returns_the_report_text_for_the_assertion(
        pytester: pytest.Pytester, fake: Fake) -> None:
    fake.errors = 7
    pytester.makepyfile("""
        def test_rollout(alb_testbed):
            r = alb_testbed.run("full-recipe")
            assert r.report.summary.errors == 0, r.text
    """)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: Scenario full-recipe*"])


def test_an_invalid_scenario_fails_the_test_with_its_problems(pytester: pytest.Pytester,
                                                              fake: Fake) -> None:
    pytester.makefile(".yaml", bad="name: bad\napp: {replicas: many}\n")
    pytester.makepyfile("""
        def test_typo(alb_testbed):
            alb_testbed.run("full-recipee")

        def test_bad_file(alb_testbed):
            alb_testbed.run("bad.yaml")
    """)
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*invalid scenario: full-recipee: no such built-in scenario; "
                                 "did you mean 'full-recipe'?*",
                                 "*invalid scenario: bad.yaml*replicas*line 2*"])
    assert fake.runs == []


@pytest.mark.parametrize("message", [
    "docker not found. Install Docker",
    "Go is needed to build kind and Kubernetes here (no registry to pull from).",
])
def test_a_stack_that_cannot_come_up_fails_with_the_testbeds_message(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, message: str) -> None:
    def broken() -> Any:
        raise StepFailed(message)

    monkeypatch.setattr(pytest_plugin, "_ensure_stack", broken)
    pytester.makepyfile("""
        def test_one(alb_testbed):
            pass

        def test_two(alb_testbed):
            pass
    """)
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    assert f"alb_testbed: could not bring up the testbed: {message}" in out
    assert "Go >= 1.24" in out and "Docker engine" in out
    # the message alone, no traceback through the plugin and the testbed
    assert "pytest_plugin.py" not in out and "raise StepFailed" not in out


# resolve(): scenario arguments, straight on the object (no session needed)


@pytest.fixture
def bed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest_plugin.AlbTestbed:
    root = tmp_path / "root"
    (root / "scenarios").mkdir(parents=True)
    (root / "scenarios/mine.yaml").write_text(
        builtin_text("full-recipe").replace("name: full-recipe", "name: mine"))
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd/here.yaml").write_text(
        builtin_text("full-recipe").replace("name: full-recipe", "name: here"))
    monkeypatch.chdir(tmp_path / "cwd")
    return pytest_plugin.AlbTestbed(STACK, tmp_path / "reports", rootdir=root)  # type: ignore[arg-type]


def test_resolve_names_paths_and_scenarios(bed: pytest_plugin.AlbTestbed, tmp_path: Path) -> None:
    assert bed.resolve("full-recipe").name == "full-recipe"
    assert bed.resolve("here.yaml").name == "here"  # the working directory first
    assert bed.resolve("scenarios/mine.yaml").name == "mine"  # then the rootdir
    assert bed.resolve(Path("scenarios/mine.yaml")).name == "mine"
    assert bed.resolve(str(tmp_path / "root/scenarios/mine.yaml")).name == "mine"
    sc = load_builtin("gated-fast-rollout")
    assert bed.resolve(sc) is sc


def test_a_file_wins_over_a_built_in_of_the_same_name(bed: pytest_plugin.AlbTestbed,
                                                      tmp_path: Path) -> None:
    (tmp_path / "cwd/full-recipe").write_text(
        builtin_text("full-recipe").replace("name: full-recipe", "name: local"))
    assert bed.resolve("full-recipe").name == "local"


@pytest.mark.parametrize(("arg", "says"), [
    ("gated-fast-rollut", "did you mean 'gated-fast-rollout'?"),
    ("scenarios/missing.yaml", "no such scenario file"),
    ("missing.yaml", "no such scenario file"),
    (Path("missing"), "no such scenario file"),  # a Path is never taken for a name
])
def test_resolve_bad_input_says_what_is_wrong(bed: pytest_plugin.AlbTestbed, arg: Any,
                                              says: str) -> None:
    with pytest.raises(ScenarioError, match=says.replace("?", r"\?")):
        bed.resolve(arg)


def test_resolve_rejects_other_types(bed: pytest_plugin.AlbTestbed) -> None:
    with pytest.raises(TypeError, match="not int"):
        bed.resolve(3)  # type: ignore[arg-type]


def test_text_is_the_rendered_report(tmp_path: Path) -> None:
    result = _result(load_builtin("full-recipe"), errors=3)
    wrapped = pytest_plugin.RunResult(result, tmp_path)
    assert wrapped.text == render_text(result.report, width=120)
    assert wrapped.report.summary.errors == 3 and not wrapped.ok
