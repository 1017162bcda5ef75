"""``dsr manual answer``: the answer of a manual source (a place without an API that a person
searches) to the request waiting for it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dsrflow.cli.options import ConfigOption, StackOption
from dsrflow.cli.running import _manual_hint, _print_access_result, _run_change
from dsrflow.cli.support import (
    _config_folder,
    _friendly,
    _in_process,
    _on_stack,
    _out_of_reach,
    console,
)
from dsrflow.config import load_config
from dsrflow.run_settings import run_settings

manual_app = typer.Typer(help="Manual sources: places without an API that a person searches.")


@manual_app.command("answer")
def manual_answer(
    request_id: Annotated[str, typer.Argument(help="the request waiting for the answer")],
    source: Annotated[str, typer.Argument(help="the manual source's name (config)")],
    outcome: Annotated[
        str,
        typer.Option(
            "--outcome", help="found_nothing, found (access), erased, corrected or restricted"
        ),
    ],
    officer: Annotated[str, typer.Option("--officer", help="who looked (in the ledger)")],
    on: Annotated[
        str | None, typer.Option("--on", help="the day it was erased, corrected or restricted")
    ] = None,
    attachment: Annotated[
        Path | None,
        typer.Option("--attachment", help="with found: the file for the export (a path)"),
    ] = None,
    note: Annotated[
        str, typer.Option("--note", help="where you looked, what you did; no personal data")
    ] = "",
    stack_dir: StackOption = None,
    config: ConfigOption = None,
) -> None:
    """Answer a manual task: the paused run's form (through Prefect's API) when it asks for
    this source, else recorded here; the last answer of a terminal's request finishes it."""
    from dsrflow.local_prefect import private_home

    private_home(_config_folder(config))  # before Prefect is imported
    from dsrflow.manual import read_attachment
    from flows.manual import answer_task

    fields = {
        "outcome": outcome,
        "on": on,
        "attachment": str(attachment.resolve()) if attachment else None,
        "note": note,
        "officer": officer,
    }
    if attachment:
        _friendly(lambda: read_attachment(attachment.resolve()))  # readable, before anything
    loaded = _friendly(lambda: load_config(config))

    def answer() -> Any:
        return _friendly(lambda: answer_task(loaded, request_id, source, fields))

    if stack_dir is not None:
        with _on_stack(stack_dir):
            done = answer()
    else:
        _waiting_run_reachable(request_id, source, loaded)
        done = answer()
    if done.resumed:
        console.print(f"{request_id}: {source} answered; flow run {done.wait.flow_run} resumes")
        return
    console.print(f"{request_id}: {source} answered ({outcome}), recorded in the ledger")
    if done.remaining:
        _manual_hint(request_id, done.remaining)
    elif done.wait.where == "prefect":
        console.print(f"flow run {done.wait.flow_run} takes the answer when it reaches {source}")
    else:
        _finish_after_manual(request_id, done, config, officer)


def _waiting_run_reachable(request_id: str, source: str, loaded: Any) -> None:
    """A run paused in Prefect is answered through the configured server's API: without one,
    say how to reach it (as ``dsr approve`` does) rather than answer beside the run."""
    from dsrflow.ledger import Ledger
    from dsrflow.local_prefect import configured_api_url
    from flows.manual import manual_wait

    with _friendly(lambda: Ledger.from_config(loaded)) as ledger:
        wait = _friendly(lambda: manual_wait(ledger, request_id))
    if wait.where == "prefect" and wait.asking == source and not configured_api_url():
        _out_of_reach(request_id, wait.flow_run)


def _finish_after_manual(request_id: str, done: Any, config: Path | None, officer: str) -> None:
    """Every manual answer is in: run the request again here; it takes the answers as given
    and completes (an access request writes its export, a changing one resumes its plan)."""
    from dsrflow.request import RequestType

    # Where the request's manual answers and plan were written (the ledger says).
    with run_settings(config, done.wait.out_dir):
        if done.request_type is RequestType.ACCESS:
            from flows.access import access_request

            result = _in_process(
                _config_folder(config), lambda: access_request(request_id=request_id)
            )
            _print_access_result(result)
        elif done.request_type is RequestType.RESTRICTION:
            from flows.other_rights import restriction_request

            _run_change(
                request_id,
                config,
                lambda: restriction_request(request_id=request_id, officer=officer),
            )
        else:
            from flows.resume import approved_request

            _run_change(request_id, config, lambda: approved_request(request_id=request_id))
