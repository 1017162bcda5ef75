"""``dsr approve`` and ``dsr reject``: the officer's decision on a request that waits for
approval, at a terminal or paused in a Prefect run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dsrflow.cli.options import ConfigOption, OfficerOption, OutOption, StackOption
from dsrflow.cli.running import _run_change
from dsrflow.cli.support import (
    _config_folder,
    _friendly,
    _on_stack,
    _out_of_reach,
    _validated,
    console,
)
from dsrflow.config import load_config
from dsrflow.run_settings import run_settings


def approve(
    request_id: Annotated[str, typer.Argument(help="the request waiting for approval")],
    officer: Annotated[str, typer.Option("--officer", help="who approves (in the ledger)")],
    note: Annotated[str, typer.Option("--note", help="why (kept in the ledger)")] = "",
    out: OutOption = None,
    stack_dir: StackOption = None,
    config: ConfigOption = None,
) -> None:
    """Approve the plan of a request that waits: at a terminal, or paused in a Prefect run."""
    from flows.approval import Approval

    decision = _validated("approval", lambda: Approval(approved=True, officer=officer, note=note))
    _decide(request_id, config, decision, out, stack_dir)


def reject(
    request_id: Annotated[str, typer.Argument(help="the request waiting for approval")],
    reason: Annotated[str, typer.Option("--reason", help="why (kept in the ledger)")],
    officer: OfficerOption = "officer",
    stack_dir: StackOption = None,
    config: ConfigOption = None,
) -> None:
    """Reject the plan of a waiting request; nothing is changed and the request is closed."""
    from flows.approval import Approval

    decision = _validated(
        "rejection", lambda: Approval(approved=False, officer=officer, note=reason)
    )
    _decide(request_id, config, decision, None, stack_dir)


def _decide(
    request_id: str,
    config: Path | None,
    decision: Any,
    out: Path | None,
    stack_dir: Path | None = None,
) -> None:
    """Give the officer's decision to the request, wherever it waits."""
    from dsrflow.local_prefect import private_home

    private_home(_config_folder(config))  # before Prefect is imported
    from flows.resume import record_decision

    loaded = _friendly(lambda: load_config(config))
    wait = _friendly(lambda: record_decision(loaded, request_id, decision))
    if wait.where == "terminal":
        if not decision.approved:
            console.print(f"{request_id}: [bold]rejected[/]; nothing was changed")
            return
        from flows.resume import approved_request

        with run_settings(config, out):
            _run_change(request_id, config, lambda: approved_request(request_id=request_id))
        return
    if stack_dir is not None:
        with _on_stack(stack_dir):
            _resume(request_id, wait, decision)
        return
    _resume(request_id, wait, decision)


def _resume(request_id: str, wait: Any, decision: Any) -> None:
    """Answer the Resume form of the paused run ``wait`` names, on the configured server."""
    from dsrflow.local_prefect import configured_api_url

    if not wait.flow_run or not configured_api_url():
        _out_of_reach(request_id, wait.flow_run)
    from flows.resume import resume_paused

    _friendly(lambda: resume_paused(wait.flow_run or "", decision))
    verb = "approved" if decision.approved else "rejected"
    console.print(f"{request_id}: {verb}; flow run {wait.flow_run} resumes (see the Prefect UI)")
