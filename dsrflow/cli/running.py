"""How a command runs a request in this process: it opens the request in the ledger (validated
first), runs the request's flow with the request id only, and prints what came of it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from connectors.run_scope import run_scope
from dsrflow.cli.options import Asked
from dsrflow.cli.support import _config_folder, _friendly, _in_process, _validated, console, err
from dsrflow.config import load_config
from dsrflow.request import new_request_id
from dsrflow.run_settings import run_settings


def _open_request(
    request_type: str,
    subject: list[str],
    phone: list[str] | None,
    request_id: str | None,
    received_at: dt.datetime | None,
    config: Path | None,
    actor: str,
    approving: bool = False,
    draft: bool = False,
    jira_accounts: list[str] | None = None,
    analytics: tuple[list[str] | None, list[str] | None] = (None, None),
) -> str:
    """Validate at the edge and open the request in the ledger, so that the flow run is
    started with the request's id only (no identifiers in Prefect's database). ``analytics``:
    the subject's Analytics client ids and user ids."""
    from dsrflow.preflight import hand_over, preflight
    from dsrflow.request import DataSubjectRequest, RequestType, Subject

    def who(phone_region: str = "NO") -> Subject:
        return Subject.from_raw(
            subject,
            phone or [],
            None,
            phone_region,
            jira_accounts=jira_accounts or [],
            analytics_client_ids=analytics[0] or [],
            analytics_user_ids=analytics[1] or [],
        )

    _friendly(who)  # identifiers first
    loaded = _friendly(lambda: load_config(config))
    # Everything executing the request will need, before it is opened or anyone approves.
    checked = _friendly(lambda: preflight(loaded, request_type))
    _friendly(checked.raise_for_problems)
    hand_over(loaded, checked)  # the flow this command runs next checks no second time
    if approving and loaded.approval.four_eyes:
        err.print(
            "[bold red]error:[/] approval.four_eyes is set in the config: the officer who opens "
            "a request cannot approve it; leave out --approve and let another officer run "
            "`dsr approve`",
            highlight=False,
        )
        raise typer.Exit(2)
    request = _validated(
        "request",
        lambda: DataSubjectRequest(
            id=request_id or new_request_id(),
            type=RequestType(request_type),
            subject=who(loaded.phone_region),
            received_at=received_at or dt.datetime.now(dt.UTC),
        ),
    )
    from dsrflow.ledger import Ledger  # SQLAlchemy: not for a refused argument

    ledger = _friendly(lambda: Ledger.from_config(loaded))
    try:
        while request_id is None and ledger.request_row(request.id) is not None:
            request = request.model_copy(update={"id": new_request_id()})  # a generated id is new
        # An id names one request of one subject: another subject's or type's is refused.
        _friendly(lambda: ledger.open_request(request, actor=actor, draft=draft))
    finally:
        ledger.close()
    from dsrflow.local_prefect import private_home

    private_home(_config_folder(config))  # before the command imports its flow (and Prefect)
    return request.id


def _manual_hint(request_id: str, awaiting: list[str]) -> None:
    console.print(
        f"{request_id} is [bold]not complete[/]: it waits for the manual source(s) "
        f"{', '.join(awaiting)}; when each is searched: dsr manual answer {request_id} SOURCE "
        "--outcome ... --officer NAME (see dsr manual answer --help)"
    )


def _print_access_result(result: Any) -> None:
    table = Table(title=f"Access request {result.request_id}")
    table.add_column("source")
    table.add_column("records", justify="right")
    for source, count in sorted(result.records_per_source.items()):
        table.add_row(source, str(count))
    table.add_row("[bold]total", f"[bold]{result.total_records}")
    console.print(table)
    if result.status == "awaiting_manual":
        _manual_hint(result.request_id, result.awaiting)
        return
    console.print(f"export written to [bold]{result.export_dir}[/] (owner-only)")
    for name in ("export.json", "export.html", "manifest.json"):
        console.print(f"  {Path(result.export_dir) / name}")
    if result.coverage_warning:
        err.print(f"[bold yellow]warning:[/] {result.coverage_warning}", highlight=False)


def _run_change(
    request_id: str,
    config: Path | None,
    start: Callable[[], Any],
    approver: str | None = None,
) -> None:
    """Run a changing flow in this process (approved by ``approver`` if given), print the
    outcome, and say how to go on when the request waits for approval."""
    result = _in_process(_config_folder(config), start, approver)
    console.print(f"{result.request_id}: [bold]{result.status}[/]; plan {result.plan}")
    for source, counts in result.executed.items():
        console.print(f"  {source}: {counts}")
    for source, count in result.remains.items():
        console.print(
            f"  {source}: {count} still kept by the vendor; the receipt says where, and the "
            "step that finishes each"
        )
    if result.status == "awaiting_approval":
        console.print(
            "the plan waits for an officer; see it in the plan file, then: "
            f"dsr approve {result.request_id} --officer NAME  (or dsr reject "
            f"{result.request_id} --reason TEXT)"
        )
    if result.status == "awaiting_manual":
        _manual_hint(result.request_id, result.awaiting)
    if result.receipt:
        console.print(f"receipt: [bold]{result.receipt}[/] (and receipt.html)")


def _run_request(request_type: str, asked: Asked, start: Callable[[str], Any]) -> None:
    """Open a request of ``request_type`` as ``asked`` and run its flow in this process:
    ``start(request_id)`` calls the flow, importing it itself, so that Prefect is imported only
    once the request is open and Prefect's home is set. With --approve the officer approves
    the plan here."""
    with run_scope():  # the check before the request and the flow open each source once
        opened = _open_request(
            request_type,
            asked.subject,
            asked.phone,
            asked.request_id,
            asked.received_at,
            asked.config,
            asked.officer,
            asked.approve,
            asked.dry_run,
            jira_accounts=asked.jira_account,
            analytics=(asked.analytics_client_id, asked.analytics_user_id),
        )
        with run_settings(asked.config, asked.out):
            _run_change(
                opened,
                asked.config,
                lambda: start(opened),
                approver=asked.officer if asked.approve else None,
            )
