"""Reports: what the client saw, lined up with pod, target and controller events."""

from testbed.report.build import Report, build_report, write_report
from testbed.report.verdict import Verdict, evaluate

__all__ = ["Report", "Verdict", "build_report", "evaluate", "write_report"]
