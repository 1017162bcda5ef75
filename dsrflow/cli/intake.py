"""``dsr intake`` and ``dsr intake confirm``: requests from the service desk and the mailbox."""

from __future__ import annotations

from typing import Annotated

import typer

from dsrflow.cli.options import ConfigOption, OfficerOption, PhoneOption, StackOption
from dsrflow.cli.support import _friendly, _ledger, _on_stack, console, err
from dsrflow.config import load_config

intake_app = typer.Typer(
    help="Requests from the service desk and the mailbox (the config's intake section)."
)


@intake_app.callback(invoke_without_command=True)
def intake_once(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Read the intake channels once; open every new request as received and list them."""
    if ctx.invoked_subcommand is not None:
        return
    from dsrflow.identifiers import mask_identifier
    from dsrflow.intake import open_incoming
    from dsrflow.intake_channels import read_channels

    loaded = _friendly(lambda: load_config(config))
    items = _friendly(lambda: read_channels(loaded))
    with _ledger(config) as ledger:
        opened = _friendly(
            lambda: open_incoming(ledger, items, is_own=loaded.controller.is_own_address)
        )
        console.print(f"Intake: {len(opened.opened)} new, {opened.known} seen before")
        for request_id, channel, asked in opened.opened:
            row = ledger.request_row(request_id) or {}
            _, requester = ledger.received_subject(request_id)
            shown = ", ".join(sorted(mask_identifier(i) for i in requester.identifiers))
            console.print(
                f"  {request_id}  {channel.value}  received {row['received_at']:%Y-%m-%d %H:%M} "
                f"UTC  asks for {asked}  requester {shown or '-'}",
                highlight=False,
            )
    if opened.opened:
        console.print("Confirm each with `dsr intake confirm ID --type TYPE --officer NAME`.")


@intake_app.command("confirm")
def intake_confirm(
    request_id: Annotated[str, typer.Argument(help="the received request, e.g. DSR-2026-0042")],
    request_type: Annotated[
        str,
        typer.Option(
            "--type",
            help="access | erasure | rectification | restriction | consent_withdrawal",
        ),
    ],
    email: Annotated[
        list[str] | None, typer.Option("--email", help="a further address of the subject")
    ] = None,
    phone: PhoneOption = None,
    no_requester: Annotated[
        bool,
        typer.Option("--no-requester", help="the requester's address is not the subject's"),
    ] = False,
    note: Annotated[str, typer.Option("--note", help="how you checked it (kept)")] = "",
    officer: OfficerOption = "officer",
    stack_dir: StackOption = None,
    config: ConfigOption = None,
) -> None:
    """Confirm a received request: its type and the subject's identifiers. With --stack, start
    its deployment there with the request id only; else start it from the deployment's run
    form (the request id alone)."""
    from dsrflow.intake import DEPLOYMENTS, confirm
    from dsrflow.request import RequestType

    kinds = [t.value for t in RequestType]
    if request_type not in kinds:
        err.print(
            f"[bold red]error:[/] --type must be one of {', '.join(kinds)}, not {request_type!r}",
            highlight=False,
        )
        raise typer.Exit(2)
    loaded = _friendly(lambda: load_config(config))
    with _ledger(config) as ledger:
        subject = _friendly(
            lambda: confirm(
                ledger,
                request_id,
                RequestType(request_type),
                officer,
                emails=email or [],
                phones=phone or [],
                use_requester=not no_requester,
                note=note,
                phone_region=loaded.phone_region,
            )
        )
    console.print(
        f"{request_id}: confirmed as {request_type} ({len(subject.identifiers)} identifier(s)); "
        "the deadline counts from when it was received"
    )
    deployment, startable = DEPLOYMENTS[RequestType(request_type)]
    if stack_dir is None or not startable:
        console.print(f"Start it from the {deployment.split('/')[1]} deployment with its id.")
        return
    from flows.intake import start_request

    with _on_stack(stack_dir):
        run_id = start_request(deployment, request_id)
    console.print(f"{request_id}: flow run {run_id} started (see the Prefect UI)")
