"""`testbed demoapp serve`: every knob is a flag and a DEMO_* env var (env is what pods use);
both derive from testbed.demoapp.config.DemoServe."""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from testbed.declare import typer_command
from testbed.demoapp.config import ENV_PREFIX, DemoConfig, DemoServe
from testbed.demoapp.server import DemoApp

app = typer.Typer(no_args_is_help=True)


@app.callback()
def _main() -> None:
    """The demo workload that scenarios roll."""


def _serve(settings: Any) -> None:
    """Run the demo HTTP server."""
    raise typer.Exit(asyncio.run(DemoApp(DemoConfig(settings)).run()))


app.command("serve")(typer_command(DemoServe, ENV_PREFIX, _serve))
