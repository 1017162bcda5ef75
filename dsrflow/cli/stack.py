"""``dsr stack up|down``: the whole stack on this machine (dsrflow/stack.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dsrflow.cli.support import console, err

stack_app = typer.Typer(help="The whole stack on this machine: Prefect server, sandbox, worker.")


@stack_app.command("up")
def stack_up(
    directory: Annotated[
        Path, typer.Option("--dir", help="where the stack keeps its state")
    ] = Path(".stack"),  # stack.DEFAULT_DIRECTORY; imported lazily
    port: Annotated[int, typer.Option("--port", help="the Prefect server's port")] = 4200,
) -> None:
    """Start a Prefect server (API behind a generated credential), the sandbox and a worker;
    register every deployment."""
    from dsrflow import stack

    try:
        running = stack.up(directory, port=port)
    except (stack.StackAlreadyRunning, LookupError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except (RuntimeError, OSError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        stack.down(directory)
        raise typer.Exit(1) from None
    console.print(f"Prefect UI: [bold]{running.ui_url}[/]  (API {running.api_url})")
    console.print(
        f"API credential (user:password, for the UI's login and PREFECT_API_AUTH_STRING): "
        f"in {running.auth_file}",
        highlight=False,
    )
    console.print(f"config: {running.config_path}; logs in {running.directory}", highlight=False)
    console.print(f"stop it with: {stack.down_command(directory)}", highlight=False)


@stack_app.command("down")
def stack_down(
    directory: Annotated[
        Path, typer.Option("--dir", help="where the stack keeps its state")
    ] = Path(".stack"),  # stack.DEFAULT_DIRECTORY; imported lazily
) -> None:
    """Stop everything `dsr stack up` started, the flow runs of its worker included."""
    from dsrflow import stack

    stopped = stack.down(directory)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
