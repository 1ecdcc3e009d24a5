"""`python -m testbed.loadgen attack ...` (same as `testbed load attack`)."""

from testbed.loadgen.cli import app

app(prog_name="testbed load")
