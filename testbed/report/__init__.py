"""Reports: what the client saw, lined up with pod, target and controller events."""

from testbed.report.build import build_report
from testbed.report.model import Report
from testbed.report.verdict import Verdict, evaluate
from testbed.report.write import write_report

__all__ = ["Report", "Verdict", "build_report", "evaluate", "write_report"]
