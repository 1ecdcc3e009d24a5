"""The `testbed` command: one entry point, one sub-command group per concern.

Each group's module holds a `typer.Typer` called `app`; a group that fails to import is a bug
to see at once, not a command to drop silently.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(help="ALB testbed: a local AWS ALB + aws-load-balancer-controller emulation.",
                  no_args_is_help=True)

# name -> (module holding a `typer.Typer` called `app`, help text)
_GROUPS: dict[str, tuple[str, str]] = {
    "cluster": ("testbed.cluster.cli", "Create, inspect and delete the kind cluster."),
    "image": ("testbed.images.cli", "Build the project and node images."),
    "fakeaws": ("testbed.fakeaws.cli", "Fake AWS: ELBv2 API, health checker, ALB data plane."),
    "demoapp": ("testbed.demoapp.cli", "The demo workload that scenarios roll."),
    "load": ("testbed.loadgen.cli", "Open-loop HTTP load generator."),
    "scenario": ("testbed.scenario.cli", "Validate, list and describe scenarios (schema, docs)."),
}


def _register() -> None:
    for name, (module, help_text) in _GROUPS.items():
        app.add_typer(importlib.import_module(module).app, name=name, help=help_text)


_register()


def _run_commands() -> None:
    from testbed.run.cli import demo_cmd, run_cmd

    app.command("run")(run_cmd)
    app.command("demo")(demo_cmd)


_run_commands()


def _check_command() -> None:
    from testbed.check.cli import check_cmd

    app.command("check")(check_cmd)


_check_command()
