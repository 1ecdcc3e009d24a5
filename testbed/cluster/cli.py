"""`testbed cluster up|down|status|kubeconfig`."""

from __future__ import annotations

import typer
from rich.table import Table

from testbed.cluster import kindconfig, lifecycle
from testbed.console import StepFailed, err

app = typer.Typer(no_args_is_help=True)


@app.command()
def up(workers: int = typer.Option(kindconfig.DEFAULT_WORKERS, min=0, max=8,
                                   help="Worker nodes besides the control plane.")) -> None:
    """Create the kind cluster `alb-testbed` (reused if it already exists) and wait until usable."""
    try:
        path = lifecycle.up(workers)
    except StepFailed as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    err.print(f"cluster ready; kubeconfig: {path}")
    err.print(f"  export KUBECONFIG={path}")


@app.command()
def down() -> None:
    """Delete the cluster and the containers the testbed started beside it (the fake AWS)."""
    try:
        deleted = lifecycle.down()
    except StepFailed as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    if not deleted:
        err.print("no cluster or container to delete")


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Show whether the cluster exists and the state of its nodes."""
    st = lifecycle.status()
    if as_json:
        print(st.to_json())
    elif not st.exists:
        err.print(f"cluster {st.name} does not exist (create it with `testbed cluster up`)")
    else:
        table = Table(title=f"cluster {st.name}  (KUBECONFIG={st.kubeconfig})")
        for col in ("node", "ready", "version", "internal IP", "pod CIDR"):
            table.add_column(col)
        for n in st.nodes:
            table.add_row(n.name, "yes" if n.ready else "[red]no[/]", n.version, n.internal_ip,
                          n.pod_cidr)
        err.print(table)
        if st.error:
            err.print(f"[red]API not reachable:[/] {st.error}")
    if not st.exists or st.error:
        raise typer.Exit(1)


@app.command()
def kubeconfig() -> None:
    """Print the path of the cluster's kubeconfig."""
    print(lifecycle.kubeconfig_path())
