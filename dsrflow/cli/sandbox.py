"""``dsr demo`` and ``dsr sandbox up``: the local sandbox, seeded sources to try dsrflow on."""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from connectors.run_scope import run_scope
from dsrflow.cli.checks import _surveyed
from dsrflow.cli.collector import settle
from dsrflow.cli.running import _open_request, _print_access_result
from dsrflow.cli.server import running_note
from dsrflow.cli.support import _friendly, _in_process, console, err
from dsrflow.run_settings import run_settings

sandbox_app = typer.Typer(help="The local sandbox: seeded sources to try dsrflow on.")


def demo(
    directory: Annotated[Path, typer.Option("--dir", help="sandbox folder")] = Path(".sandbox"),
) -> None:
    """The main job in one go: seed the sandbox, answer the demo subject's access request."""
    from dsrflow.local_prefect import private_home

    private_home(directory)  # before Prefect is imported: its settings are read then
    from flows.access import access_request
    from sandbox.onprem_seed import DEMO_SUBJECT
    from sandbox.runtime import start

    # The survey, the check before the request and the flow open each source once.
    with _friendly(lambda: start(directory)) as box, run_scope():
        console.print(f"sandbox seeded in {box.directory}; demo subject: [bold]{DEMO_SUBJECT}[/]")
        settle()  # the emulators' seed data and the imports live until the command ends
        surveyed = _surveyed(box.config_path, "demo")  # what the access request's warning reads
        console.print(f"coverage: {surveyed.open_findings} open finding(s) outside the mappings")
        opened = _open_request(
            "access", [DEMO_SUBJECT], None, "DSR-2026-0001", None, box.config_path, "demo"
        )
        with run_settings(box.config_path):
            result = _in_process(directory, lambda: access_request(request_id=opened))
    _print_access_result(result)
    running_note(box.config_path)  # where Prefect's local server runs on, and how to stop it


@sandbox_app.command("up")
def sandbox_up(
    directory: Annotated[
        Path, typer.Option("--dir", help="where the sandbox keeps its databases")
    ] = Path(".sandbox"),
    fixtures: Annotated[
        Path | None,
        typer.Option("--fixtures", help="folder with onprem.json (and mail/drive/jira.json)"),
    ] = None,
    write_config: Annotated[
        Path | None, typer.Option("--write-config", help="config file to write (default: DIR/)")
    ] = None,
    profile: Annotated[
        str, typer.Option("--profile", help="small (seconds) or large (benchmark scale)")
    ] = "small",
    latency_ms: Annotated[
        float, typer.Option("--latency-ms", help="emulators: latency added to every request")
    ] = 0,
    throttle_every: Annotated[
        int, typer.Option("--throttle-every", help="emulators: every Nth request gets 429")
    ] = 0,
    once: Annotated[
        bool, typer.Option("--once", help="prepare and exit instead of running until Ctrl-C")
    ] = False,
    manual_sources: Annotated[
        bool,
        typer.Option(
            "--manual-sources",
            help="the config names the places without an API too (a phone, "
            "paper): every request then waits for `dsr manual answer`",
        ),
    ] = False,
) -> None:
    """Start the sandbox, write a config pointing at it, keep running until interrupted."""
    from sandbox.emulators.faults import FaultSettings
    from sandbox.runtime import start

    if profile not in ("small", "large"):
        err.print(f"[bold red]error:[/] --profile must be small or large, not {profile!r}")
        raise typer.Exit(2)
    faults = FaultSettings(latency_ms=latency_ms, throttle_every=throttle_every)
    box = _friendly(
        lambda: start(
            directory,
            fixtures,
            write_config,
            profile=profile,  # type: ignore[arg-type]
            faults=faults,
            progress=console.print,
            manual_sources=manual_sources,
        )
    )
    try:
        console.print(f"sandbox ready in [bold]{box.directory}[/]")
        for name, count in box.counts.items():
            console.print(f"  {name}: {count} rows")
        console.print(f"config: [bold]{box.config_path}[/]  (use --config {box.config_path})")
        if once:
            return
        console.print("running; press Ctrl-C to stop")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    finally:
        box.stop()
    console.print("sandbox stopped")
