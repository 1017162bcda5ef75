"""``dsr server start|status|stop``: the local Prefect server that the commands of one Prefect
home share (dsrflow/local_server.py)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import typer

from dsrflow.cli.options import ConfigOption
from dsrflow.cli.support import _config_folder, _friendly, console, err

server_app = typer.Typer(
    help="The local Prefect server the commands beside one config share (started on first use)."
)


def _home(config: Path | None) -> Path:
    from dsrflow.local_prefect import home_for

    return home_for(_config_folder(config))


def stop_command(config: Path | None) -> str:
    """``dsr server stop`` as the officer would type it for ``config``."""
    return "dsr server stop" + (f" --config {shlex.quote(str(config))}" if config else "")


@server_app.command("start")
def server_start(config: ConfigOption = None) -> None:
    """Start the local Prefect server of this config's Prefect home (or find it running) and
    print its UI address; later commands use it."""
    from dsrflow import local_server
    from dsrflow.local_prefect import local_prefect_server, no_telemetry

    no_telemetry()
    home = _home(config)
    progress = lambda line: err.print(line, highlight=False)  # noqa: E731
    server, started = _friendly(lambda: local_prefect_server(home, progress))
    idle = _friendly(local_server.idle_minutes)
    console.print(
        f"Prefect's local server {'started' if started else 'is running'}: UI "
        f"[bold]{server.ui_url}[/] (API {server.url}, home {home})",
        highlight=False,
    )
    console.print(f"login (user:password): in {home / local_server.AUTH}", highlight=False)
    lasts = f"stops itself after {idle:g} idle minutes" if idle else "runs until stopped"
    console.print(f"it {lasts}; stop it now with: {stop_command(config)}", highlight=False)


@server_app.command("status")
def server_status(config: ConfigOption = None) -> None:
    """Say whether the local Prefect server of this config's home runs (exit 1 if not)."""
    from dsrflow import local_server

    home = _home(config)
    server = _friendly(lambda: local_server.find(home))
    if server is None:
        console.print(f"no local Prefect server runs for {home}", highlight=False)
        raise typer.Exit(1)
    console.print(
        f"running: UI {server.ui_url} (API {server.url}, process {server.pid}, home {home})",
        highlight=False,
    )


@server_app.command("stop")
def server_stop(config: ConfigOption = None) -> None:
    """Stop the local Prefect server of this config's home (its runs' records stay there)."""
    from dsrflow import local_server

    home = _home(config)
    stopped = _friendly(lambda: local_server.stop(home))
    console.print(
        f"stopped Prefect's local server of {home}" if stopped else "no local server was running",
        highlight=False,
    )


def running_note(config: Path) -> None:
    """After a command that left the local server running: where it is and how to stop it."""
    from dsrflow import local_server

    if os.environ.get("PREFECT_API_URL"):
        return  # the command used that server, not a local one
    home = _home(config)
    server = local_server.find(home) if (home / local_server.RECORD).exists() else None
    if server is None:
        return
    idle = local_server.idle_minutes()
    lasts = f"stops itself after {idle:g} idle minutes" if idle else "runs until stopped"
    console.print(
        f"Prefect's local server keeps running for the next commands (UI {server.ui_url}, "
        f"login in {home / local_server.AUTH}); it {lasts}, or stop it now: "
        f"{stop_command(config)}",
        highlight=False,
    )
