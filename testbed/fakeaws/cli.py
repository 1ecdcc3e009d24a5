"""`testbed fakeaws serve`: the fake ELBv2 API, health checker and ALB data plane.

The serve command's options are generated from testbed/fakeaws/settings.py (one option per
setting: its flag, default, help and validation), plus `--preset`.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import typer
from pydantic import ValidationError

from testbed.fakeaws.api.server import serve
from testbed.fakeaws.settings import (
    PRESETS,
    SETTINGS,
    FakeAwsSettings,
    SettingInfo,
    SettingsError,
    markdown_table,
)

app = typer.Typer(no_args_is_help=True)


def _option(s: SettingInfo) -> inspect.Parameter:
    def parse(raw: Any) -> Any:
        try:
            return s.parse(raw)
        except SettingsError as exc:
            raise typer.BadParameter(str(exc)) from None

    annotation: Any = s.kind | None if s.optional else s.kind
    return inspect.Parameter(
        s.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
        default=typer.Option(s.default, s.flag, help=s.help, parser=parse, metavar=s.metavar,
                             show_default=s.default is not None))


def _preset(raw: str | None) -> str | None:
    if raw is not None and raw not in PRESETS:
        raise typer.BadParameter(f"unknown preset {raw!r}; known: {sorted(PRESETS)}")
    return raw


_PRESET = inspect.Parameter(
    "preset", inspect.Parameter.KEYWORD_ONLY, annotation=str | None,
    default=typer.Option(
        None, "--preset", callback=_preset, metavar="[" + "|".join(PRESETS) + "]",
        help="Propagation-delay preset ('realistic': register 15 s, deregister 30 s; see "
             "docs/fakeaws.md); explicit --register-delay/--deregister-delay win."))


def serve_cmd(ctx: typer.Context, **values: Any) -> None:
    """Serve the fake AWS API and the ALB data plane until interrupted."""
    preset = values.pop("preset")
    if preset is not None:
        for name, value in PRESETS[preset].items():
            # typer vendors click and does not export ParameterSource; compare by name.
            source = ctx.get_parameter_source(name)
            if source is None or source.name == "DEFAULT":
                values[name] = value
    try:
        settings = FakeAwsSettings(**values)
    except ValidationError as exc:  # a rule across settings (each option is checked alone)
        msgs = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        typer.echo(f"Error: {msgs}", err=True)
        raise typer.Exit(2) from None
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")

    def ready(api: str) -> None:
        typer.echo(f"fakeaws ready: api={api} events={api}/_testbed/events "
                   f"stream={api}/_testbed/events/stream listeners_on={settings.listen_on} "
                   f"register_delay={settings.register_delay} "
                   f"deregister_delay={settings.deregister_delay}")

    serve(settings, ready)


_CTX = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                         annotation=typer.Context)
serve_cmd.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [_CTX, *(_option(s) for s in SETTINGS), _PRESET], return_annotation=None)
app.command("serve")(serve_cmd)


@app.command("presets")
def presets_cmd() -> None:
    """Show the propagation-delay presets."""
    for name, values in PRESETS.items():
        typer.echo(f"{name}: {values}")


@app.command("settings")
def settings_cmd() -> None:
    """Print every setting (option, default, range, process, run-time key) as a Markdown
    table, the one in docs/fakeaws.md."""
    typer.echo(markdown_table())
