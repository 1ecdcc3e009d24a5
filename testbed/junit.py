"""Merge JUnit XML reports (one per CI shard) into one: `python -m testbed.junit OUT IN...`.

Every <testsuite> of the inputs goes under one <testsuites> root whose totals are the sums,
so a CI matrix shows one report for the whole e2e suite."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

COUNTS = ("tests", "failures", "errors", "skipped")


def merge(paths: list[Path]) -> ET.Element:
    root = ET.Element("testsuites")
    totals = dict.fromkeys(COUNTS, 0)
    time = 0.0
    for path in paths:
        top = ET.parse(path).getroot()
        suites = [top] if top.tag == "testsuite" else list(top.iter("testsuite"))
        for suite in suites:
            suite.set("name", f"{suite.get('name', 'pytest')} ({path.stem})")
            root.append(suite)
            for key in COUNTS:
                totals[key] += int(suite.get(key, "0"))
            time += float(suite.get("time", "0"))
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{time:.3f}")
    return root


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m testbed.junit OUT.xml IN.xml [IN.xml ...]", file=sys.stderr)
        return 2
    out, *inputs = (Path(a) for a in argv)
    missing = [str(p) for p in inputs if not p.is_file()]
    if missing:
        print(f"no such report: {', '.join(missing)}", file=sys.stderr)
        return 2
    ET.ElementTree(merge(inputs)).write(out, encoding="utf-8", xml_declaration=True)
    root = ET.parse(out).getroot()
    print(f"{out}: {root.get('tests')} tests, {root.get('failures')} failures, "
          f"{root.get('errors')} errors from {len(inputs)} reports")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
