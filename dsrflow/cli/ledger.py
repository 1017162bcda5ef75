"""The request ledger: its audit trail (``dsr ledger verify|head``) and the requests it keeps
(``dsr requests``, ``dsr close``, ``dsr extend``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from dsrflow.cli.options import ConfigOption, OfficerOption
from dsrflow.cli.support import _friendly, _ledger, console, err

ledger_app = typer.Typer(help="The request ledger and its audit trail.")


@ledger_app.command("verify")
def ledger_verify(
    head: Annotated[
        str | None,
        typer.Option(
            "--head",
            metavar="SEQ:HASH",
            help="a chain head kept elsewhere (`dsr ledger head`, a receipt): catches a "
            "rewritten or truncated chain",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Check the audit trail's hash chain, and the tables against the chain: name the first
    entry changed, removed or reordered, and every row edited behind the ledger's back."""
    from dsrflow.ledger import parse_anchor

    anchor = _friendly(lambda: parse_anchor(head)) if head else None
    with _ledger(config) as ledger:
        problems = ledger.verify(head=anchor)
        count = sum(1 for _ in ledger.entries())
        keyed = ledger.key is not None
    if problems:
        err.print(f"[bold red]tampered:[/] {problems[0]}", highlight=False)
        for problem in problems[1:]:
            err.print(f"  then {problem}", highlight=False)
        raise typer.Exit(1)
    checks = ["hash chain unbroken", "tables match it"]
    if keyed:
        checks.append("every entry keyed")
    if anchor:
        checks.append(f"entry {anchor[0]} is the head kept elsewhere")
    console.print(f"[green]intact[/]: {count} audit entries, {', '.join(checks)}")


@ledger_app.command("head")
def ledger_head(config: ConfigOption = None) -> None:
    """Print the chain head as SEQ:HASH: keep it elsewhere for `dsr ledger verify --head`."""
    with _ledger(config) as ledger:
        anchor = ledger.anchor()
    console.print(anchor, highlight=False)


def list_requests(
    all_: Annotated[
        bool, typer.Option("--all", help="closed requests and drafts (dry runs) too")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Open requests with their due dates and days left, overdue first."""
    with _ledger(config) as ledger:
        rows = ledger.open_requests(include_closed=all_)
    table = Table(title="All requests" if all_ else "Open requests")
    for column in ("request", "type", "status", "due", "days left"):
        table.add_column(column)
    for row in rows:
        days = row["days_left"]
        if days is None:
            closed = row["closed_at"]
            shown = f"closed {closed.date().isoformat()}" if closed else "-"
        else:
            shown = f"[bold red]{days} (overdue)[/]" if days < 0 else str(days)
        table.add_row(row["id"], row["type"], row["status"], row["due_at"].isoformat(), shown)
    console.print(table)


def close_request(
    request_id: Annotated[str, typer.Argument(help="the request, e.g. DSR-2026-0042")],
    withdrawn: Annotated[
        bool, typer.Option("--withdrawn", help="the subject withdrew the request")
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="why (required with --withdrawn); kept")
    ] = None,
    officer: OfficerOption = "officer",
    config: ConfigOption = None,
) -> None:
    """Close a request: answered (completed), or withdrawn by the subject."""
    from dsrflow.ledger import Status

    status = Status.WITHDRAWN if withdrawn else Status.COMPLETED
    with _ledger(config) as ledger:
        _friendly(lambda: ledger.close_request(request_id, status, officer, reason=reason))
    console.print(f"{request_id}: closed ({status.value})")


def extend(
    request_id: Annotated[str, typer.Argument(help="the request, e.g. DSR-2026-0042")],
    reason: Annotated[str, typer.Option(help="why: told to the subject, kept in the ledger")],
    months: Annotated[int, typer.Option(min=1, max=2, help="further months (Art. 12(3))")] = 2,
    officer: OfficerOption = "officer",
    config: ConfigOption = None,
) -> None:
    """Extend a request's deadline by up to two months, once, within its first month."""
    from dsrflow.request import Extension

    extension = _friendly(lambda: Extension(months=months, reason=reason))
    with _ledger(config) as ledger:
        due = _friendly(lambda: ledger.extend(request_id, extension, officer))
    console.print(
        f"{request_id}: now due {due.isoformat()}. Tell the subject, with the reason, "
        "before the first month ends."
    )
