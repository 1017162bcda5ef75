"""What every ``dsr`` command shares: the consoles, the one way an error a person can act on
becomes one line and exit status 2, and the ways a command reaches a flow run (in this process,
on a stack) and the ledger. The shared options are in dsrflow/cli/options.py."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from dsrflow.config import load_config
from dsrflow.errors import DsrflowError

console = Console(soft_wrap=True)  # paths stay whole, for copy and paste
err = Console(stderr=True, soft_wrap=True)  # error lines stay whole, for grep and logs
T = TypeVar("T")


def _friendly(action: Callable[[], T]) -> T:
    """Run ``action``; an error a person can act on (``DsrflowError``) becomes one clear line
    and exit status 2. Anything else is a bug: its traceback stays."""
    try:
        return action()
    except DsrflowError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None


def _validated(what: str, build: Callable[[], T]) -> T:
    """Build a model from what the officer typed: a refusal is one line naming ``what``."""
    from pydantic import ValidationError

    try:
        return _friendly(build)
    except ValidationError as exc:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        err.print(f"[bold red]error:[/] {what}: {problems}", highlight=False)
        raise typer.Exit(2) from None


def _config_folder(config: Path | None) -> Path:
    from dsrflow.config import Settings

    return Path(config or Settings().config).resolve().parent


def _in_process(home: Path, run: Callable[[], T], approver: str | None = None) -> T:
    """Run a flow in this process: Prefect's home private to ``home`` (unless the user chose
    one), its server started here with visible progress, the run owned by this terminal."""
    from dsrflow.cli.collector import settle
    from dsrflow.local_prefect import private_home

    private_home(home)
    from dsrflow.local_prefect import prefect_server
    from flows.approval import at_terminal
    from flows.private import scrub_run_logs

    scrub_run_logs()  # a source that refused is one line, and no line names the subject

    def go() -> T:
        progress = lambda line: err.print(line, highlight=False)  # noqa: E731
        with prefect_server(progress=progress), at_terminal(approver):
            settle()  # imports, config and the sources' clients: alive until the command ends
            return run()

    return _friendly(go)


def _ledger(config: Path | None) -> Any:
    """The config's ledger for a command that reads or writes it outside a flow run. With a
    Prefect server named (``PREFECT_API_URL``: the stack's), what the command records shows
    on the request's case page at once; otherwise the next run of the request publishes it."""
    from dsrflow.ledger import Ledger, on_request_change

    loaded = _friendly(lambda: load_config(config))
    if os.environ.get("PREFECT_API_URL") and on_request_change.get() is None:
        from flows.case_page import publish_case_page

        on_request_change.set(publish_case_page)
    return _friendly(lambda: Ledger.from_config(loaded))


@contextlib.contextmanager
def _on_stack(stack_dir: Path) -> Iterator[None]:
    """Point the Prefect client at the server of the stack in ``stack_dir`` (`dsr stack up`)."""
    from dsrflow import stack

    _friendly(lambda: stack.client_environment(stack_dir))  # names a folder without one
    with stack.connected(stack_dir):
        yield


def _out_of_reach(request_id: str, flow_run: str | None) -> NoReturn:
    """The request waits in a paused Prefect run and no server to answer it through is named:
    say how to name one, rather than answer beside the run (exit status 2)."""
    err.print(
        f"[bold red]error:[/] {request_id} waits in Prefect flow run {flow_run}: give "
        "--stack DIR of the stack it runs on, or set PREFECT_API_URL (and "
        "PREFECT_API_AUTH_STRING) to that server's, or use the run's Resume form in the UI",
        highlight=False,
    )
    raise typer.Exit(2)
