"""`testbed demoapp serve`: every knob is a flag and a DEMO_* env var (env is what pods use)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from testbed.demoapp.config import ENV_VARS, DemoConfig, OnSigterm
from testbed.demoapp.server import DemoApp

app = typer.Typer(no_args_is_help=True)


@app.callback()
def _main() -> None:
    """The demo workload that scenarios roll."""


def _opt(key: str, text: str) -> typer.models.OptionInfo:
    return typer.Option(envvar=ENV_VARS[key], help=text)


@app.command()
def serve(
    port: Annotated[int, _opt("port", "Listening port.")] = 8080,
    host: Annotated[str, typer.Option(envvar="DEMO_HOST", help="Listening address.")
                    ] = "0.0.0.0",
    startup_delay: Annotated[float, _opt("startup_delay",
                                         "Seconds to wait before listening.")] = 0.0,
    ready_after: Annotated[float, _opt("ready_after",
                                       "Seconds after listening before /ready says 200.")] = 0.0,
    latency_ms: Annotated[float, _opt("latency_ms", "Added latency of GET / (ms).")] = 0.0,
    keepalive_timeout: Annotated[float, _opt(
        "keepalive_timeout", "Close idle keep-alive connections after this many seconds.")
    ] = 75.0,
    on_sigterm: Annotated[OnSigterm, _opt("on_sigterm", "exit | drain | ignore.")
                          ] = OnSigterm.drain,
    drain_seconds: Annotated[float, _opt(
        "drain_seconds", "drain: longest wait for in-flight requests before exiting.")] = 5.0,
    health_code: Annotated[int, _opt("health_code", "Status code of /healthz.")] = 200,
    healthy_after: Annotated[float, _opt(
        "healthy_after", "/healthz answers 503 until this many seconds after listening.")] = 0.0,
) -> None:
    """Run the demo HTTP server."""
    cfg = DemoConfig(port=port, host=host, startup_delay=startup_delay, ready_after=ready_after,
                     latency_ms=latency_ms, keepalive_timeout=keepalive_timeout,
                     on_sigterm=on_sigterm, drain_seconds=drain_seconds, health_code=health_code,
                     healthy_after=healthy_after)
    raise typer.Exit(asyncio.run(DemoApp(cfg).run()))
