"""Write a report as text, JSON and PNG: the one module that knows every rendering."""

from __future__ import annotations

import json
from pathlib import Path

from testbed.report.model import Report
from testbed.report.text import render_text


def write_report(report: Report, out_dir: str | Path, *, png: bool = True) -> dict[str, Path]:
    """report.txt, report.json and (optionally) timeline.png in out_dir; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"text": out / "report.txt", "json": out / "report.json"}
    paths["text"].write_text(render_text(report, width=120))
    paths["json"].write_text(json.dumps(report.to_dict(), indent=1, default=str))
    if png:
        # matplotlib takes most of a second to import; `testbed` commands that never draw skip it.
        from testbed.report.plot import plot_timeline

        paths["png"] = plot_timeline(report, out / "timeline.png")
    return paths
