"""Shard reports merge into one JUnit report with summed totals."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from testbed.junit import main, merge


def _report(path: Path, tests: int, failures: int) -> Path:
    path.write_text(
        f'<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="{tests}" '
        f'failures="{failures}" errors="0" skipped="0" time="1.5">'
        + "".join(f'<testcase name="t{i}"/>' for i in range(tests))
        + "</testsuite></testsuites>")
    return path


def test_merge_sums_the_shards(tmp_path: Path) -> None:
    a = _report(tmp_path / "e2e-junit-1-of-2.xml", 3, 1)
    b = _report(tmp_path / "e2e-junit-2-of-2.xml", 2, 0)
    root = merge([a, b])
    assert (root.get("tests"), root.get("failures"), root.get("time")) == ("5", "1", "3.000")
    assert len(list(root.iter("testcase"))) == 5
    assert [s.get("name") for s in root] == ["pytest (e2e-junit-1-of-2)",
                                             "pytest (e2e-junit-2-of-2)"]


def test_cli_writes_the_merged_report_and_refuses_missing_inputs(tmp_path: Path) -> None:
    a = _report(tmp_path / "a.xml", 1, 0)
    out = tmp_path / "all.xml"
    assert main([str(out), str(a)]) == 0
    assert ET.parse(out).getroot().get("tests") == "1"
    assert main([str(out), str(tmp_path / "nope.xml")]) == 2
