"""`testbed fakeaws serve`: the fake ELBv2 API, health checker and ALB data plane."""

from __future__ import annotations

import logging

import typer

from testbed.fakeaws.config import AWS_MIN_HEALTH_CHECK_INTERVAL, PRESETS
from testbed.fakeaws.server import ServeOptions, serve

app = typer.Typer(no_args_is_help=True)


@app.command("serve")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", help="Address of the API (and default listeners)."),
    port: int = typer.Option(4566, help="ELBv2/EC2 API port (also /_testbed/*)."),
    listener_host: str | None = typer.Option(
        None, help="Address ALB listeners bind (default: --host)."),
    register_delay: float | None = typer.Option(
        None, help="Seconds before the data plane sees a registration (default 0)."),
    deregister_delay: float | None = typer.Option(
        None, help="Seconds the data plane keeps routing after a deregistration (default 0)."),
    preset: str | None = typer.Option(
        None, help="'realistic': register 15 s, deregister 30 s (see docs/fakeaws.md)."),
    min_health_check_interval: float = typer.Option(
        AWS_MIN_HEALTH_CHECK_INTERVAL,
        help="Lowest accepted HealthCheckIntervalSeconds. AWS: 5. Lower (e.g. 0.5) only for "
             "fast tests; it also allows fractional intervals/timeouts."),
    connect_timeout: float = typer.Option(10.0, help="Target connect timeout (AWS: 10 s)."),
    log_level: str = typer.Option("INFO", help="DEBUG, INFO, WARNING, ERROR."),
    api_nice: int = typer.Option(
        10, help="Niceness added to the API process (not the engine) so API load steals "
                 "less CPU from the data plane; 0 to disable."),
    loop: str = typer.Option("asyncio", help="Engine event loop: asyncio, uvloop (if installed) "
                                             "or auto (uvloop when installed)."),
) -> None:
    """Serve the fake AWS API and the ALB data plane until interrupted."""
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    delays = {"register_delay": 0.0, "deregister_delay": 0.0}
    if preset is not None:
        if preset not in PRESETS:
            raise typer.BadParameter(f"unknown preset {preset!r}; known: {sorted(PRESETS)}")
        delays.update(PRESETS[preset])
    if register_delay is not None:
        delays["register_delay"] = register_delay
    if deregister_delay is not None:
        delays["deregister_delay"] = deregister_delay
    if min_health_check_interval <= 0:
        raise typer.BadParameter("--min-health-check-interval must be > 0")
    opts = ServeOptions(host=host, port=port, listener_host=listener_host,
                        min_health_check_interval=min_health_check_interval,
                        connect_timeout=connect_timeout, log_level=log_level, loop=loop,
                        api_nice=api_nice,
                        **delays)

    def ready(api: str) -> None:
        typer.echo(f"fakeaws ready: api={api} events={api}/_testbed/events "
                   f"stream={api}/_testbed/events/stream listeners_on={listener_host or host} "
                   f"register_delay={delays['register_delay']} "
                   f"deregister_delay={delays['deregister_delay']}")

    serve(opts, ready)


@app.command("presets")
def presets_cmd() -> None:
    """Show the propagation-delay presets."""
    for name, values in PRESETS.items():
        typer.echo(f"{name}: {values}")
