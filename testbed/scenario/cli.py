"""`testbed scenario validate|list|show`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from testbed.scenario import docs
from testbed.scenario.loader import ScenarioError, builtin_names, load_builtin, load_scenario

app = typer.Typer(no_args_is_help=True)


@app.callback()
def _main() -> None:
    """Validate and list scenarios."""


@app.command()
def validate(file: str = typer.Argument(..., help="Scenario YAML file or built-in name.")) -> None:
    """Check a scenario; print every problem with its path, exit 1 if any."""
    try:
        sc = load_scenario(file)
    except ScenarioError as exc:
        typer.echo(f"{exc.source}: invalid scenario", err=True)
        for line in exc.errors:
            typer.echo(f"  {line}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{file}: OK (scenario '{sc.name}')")


@app.command()
def show(file: str = typer.Argument(..., help="Scenario YAML file or built-in name.")) -> None:
    """Print a scenario with every default filled in (JSON)."""
    try:
        sc = load_scenario(file)
    except ScenarioError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(sc.to_dict(), indent=2))


@app.command()
def schema() -> None:
    """Print the scenario JSON Schema (for editors: yaml-language-server's `$schema`)."""
    typer.echo(json.dumps(docs.json_schema(), indent=2))


@app.command("docs")
def docs_cmd(write: Path | None = typer.Option(
        None, help="Rewrite the field tables in this Markdown file (between its markers).")
             ) -> None:
    """Print the field tables generated from the scenario model, or update a document."""
    if write is None:
        typer.echo(docs.field_tables(), nl=False)
        return
    try:
        changed = docs.write(write)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"{write}: {'updated' if changed else 'already current'}")


@app.command("list")
def list_() -> None:
    """List the built-in scenarios and what each expects."""
    table = Table("name", "expect", "description")
    for name in builtin_names():
        sc = load_builtin(name)
        exp = sc.expect
        what = "zero errors" if exp.errors == "none" else (
            "errors " + (",".join(map(str, exp.classes)) or "allowed"))
        if exp.rollout_stalls:
            what += ", rollout stalls"
        if exp.min_rollout_seconds is not None:
            what += f", rollout >= {exp.min_rollout_seconds:g}s"
        if exp.max_rollout_seconds is not None:
            what += f", rollout <= {exp.max_rollout_seconds:g}s"
        if exp.min_registration_lag_seconds is not None:
            what += f", registration lag >= {exp.min_registration_lag_seconds:g}s"
        if exp.max_registration_lag_seconds is not None:
            what += f", registration lag <= {exp.max_registration_lag_seconds:g}s"
        table.add_row(name, what, _headline(sc.description))
    Console().print(table)


def _headline(description: str) -> str:
    """The bug/fix tag and issue numbers: everything up to the first closing parenthesis."""
    end = description.find(")")
    return description[:end + 1] if 0 <= end < 140 else description.split(". ")[0]
