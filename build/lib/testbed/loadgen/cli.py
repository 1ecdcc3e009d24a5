"""`testbed load attack`: a fixed-rate attack with a vegeta-style report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from testbed.loadgen.attack import AttackConfig, run_attack
from testbed.loadgen.summary import format_vegeta, summarize

app = typer.Typer(no_args_is_help=True)


@app.callback()
def _main() -> None:
    """Open-loop HTTP load generator."""


@app.command()
def attack(
    url: Annotated[str, typer.Option(help="Target URL (GET, http:// only).")],
    rate: Annotated[float, typer.Option(help="Requests per second.")] = 100.0,
    duration: Annotated[float, typer.Option(help="Seconds of sending.")] = 10.0,
    timeout: Annotated[float, typer.Option(help="Per-request timeout in seconds.")] = 30.0,
    max_connections: Annotated[int, typer.Option(help="Connection pool size.")] = 512,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write summary + records to this file.")] = None,
) -> None:
    """Send RATE requests per second to URL for DURATION seconds and print a report."""
    res = run_attack(AttackConfig(url=url, rate=rate, duration=duration, timeout=timeout,
                                  max_connections=max_connections))
    summary = summarize(res.records)
    typer.echo(format_vegeta(summary))
    if summary.error_classes:
        typer.echo("Error classes: " + ", ".join(f"{k}:{v}"
                                                 for k, v in summary.error_classes.items()))
    if json_out is not None:
        json_out.write_text(json.dumps({
            "summary": summary.to_dict(),
            "started": res.started, "attack_end": res.attack_end, "finished": res.finished,
            "records": [r.to_dict() for r in res.records],
        }))
