"""`python -m testbed.demoapp serve ...` (same as `testbed demoapp serve`)."""

from testbed.demoapp.cli import app

app(prog_name="testbed demoapp")
