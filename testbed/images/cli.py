"""`testbed image ...`: build (or find) the images the testbed needs."""

from __future__ import annotations

from enum import StrEnum

import typer

from testbed.console import StepFailed, err
from testbed.images import build

app = typer.Typer(no_args_is_help=True)


class Which(StrEnum):
    node = "node"
    project = "project"
    all = "all"


@app.command("build")
def build_cmd(which: Which = typer.Argument(Which.all)) -> None:
    """Build missing images (tagged by input hash; unchanged inputs are skipped)."""
    try:
        if which is Which.all:
            print("\n".join(build.all_images()))
        elif which is Which.node:
            print(build.node_image())
        else:
            print(build.project_image())
    except StepFailed as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
