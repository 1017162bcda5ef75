"""``dsr identity …`` and ``dsr deliver``: verifying who asks (Art. 12(6)) and handing the
export over (dsrflow/identity.py, dsrflow/delivery.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from dsrflow.cli.options import ConfigOption, OfficerOption
from dsrflow.cli.support import _friendly, _ledger, console
from dsrflow.config import load_config

identity_app = typer.Typer(help="Verify that the requester is the subject (Art. 12(6)).")

RequestArgument = Annotated[str, typer.Argument(help="the request, e.g. DSR-2026-0042")]
TicketOption = Annotated[
    str | None,
    typer.Option("--ticket", help="the subject's service-desk request, e.g. SUP-12"),
]


@identity_app.command("check")
def identity_check(
    request_id: RequestArgument,
    note: Annotated[str, typer.Option("--note", help="what you checked (kept in the ledger)")],
    officer: OfficerOption = "officer",
    config: ConfigOption = None,
) -> None:
    """Record your own check of the requester's identity, with a note saying what it was."""
    from dsrflow.identity import record_officer_check

    with _ledger(config) as ledger:
        _friendly(lambda: record_officer_check(ledger, request_id, officer, note))
    console.print(f"{request_id}: identity verified by {officer} (officer_check)")


@identity_app.command("service-desk")
def identity_service_desk(
    request_id: RequestArgument,
    ticket: Annotated[str, typer.Option("--ticket", help="the service-desk request, e.g. SUP-12")],
    officer: OfficerOption = "officer",
    config: ConfigOption = None,
) -> None:
    """Verified when the ticket's reporter is a service-desk account whose address, as Jira
    shows it, is the subject's (`delivery.jira_source` names the Jira source)."""
    from connectors.jira.client import JiraClient
    from connectors.jira.servicedesk import request_people
    from connectors.jira.settings import JiraSource
    from dsrflow.identity import IdentityError, record_service_desk

    loaded = _friendly(lambda: load_config(config))
    name = loaded.delivery.jira_source
    source = loaded.sources.get(name) if name else None

    def verify() -> None:
        if not isinstance(source, JiraSource):
            raise IdentityError(
                "delivery.jira_source in the config must name a `kind: jira` source"
            )
        client = JiraClient(name or "jira", source)
        try:
            people = request_people(client, ticket)
        finally:
            client.close()
        email = people.reporter.email if people.reporter else None
        with _ledger(config) as ledger:
            record_service_desk(ledger, request_id, people.key, email, officer)

    _friendly(verify)
    console.print(f"{request_id}: identity verified through {ticket}'s reporter (service_desk)")


@identity_app.command("send-code")
def identity_send_code(
    request_id: RequestArgument,
    officer: OfficerOption = "officer",
    config: ConfigOption = None,
) -> None:
    """Mail a one-time code to the subject's address from `identity.sender`'s mailbox."""
    from flows.identity import send_code

    expires = _friendly(lambda: send_code(str(config) if config else None, request_id, officer))
    console.print(
        f"{request_id}: code sent to the subject; valid until {expires:%Y-%m-%d %H:%M} UTC. "
        f"When it comes back: dsr identity enter-code {request_id}"
    )


@identity_app.command("enter-code")
def identity_enter_code(
    request_id: RequestArgument,
    officer: OfficerOption = "officer",
    config: ConfigOption = None,
) -> None:
    """Type the code the requester sent back (asked for without echo, so that it stays out of
    the shell's history)."""
    from dsrflow.identity import check_code

    code = typer.prompt("code", hide_input=True)
    loaded = _friendly(lambda: load_config(config))
    with _ledger(config) as ledger:
        result = _friendly(lambda: check_code(ledger, request_id, code, loaded.identity, officer))
    if not result.verified:
        console.print(f"[bold red]{request_id}: {result.reason}[/]")
        raise typer.Exit(2)
    console.print(f"{request_id}: identity verified (one_time_code)")


@identity_app.command("status")
def identity_status(request_id: RequestArgument, config: ConfigOption = None) -> None:
    """How the request's identity was verified, if it was."""
    from dsrflow.identity import verification

    with _ledger(config) as ledger:
        entry = verification(ledger, request_id)
    if entry is None:
        console.print(f"{request_id}: identity not verified")
        raise typer.Exit(1)
    console.print(
        f"{request_id}: verified ({entry.details.get('method')}) by {entry.actor} at {entry.at}"
    )


def deliver(
    request_id: RequestArgument,
    via: Annotated[str, typer.Option("--via", help="jira (the subject's ticket) or mail")],
    ticket: TicketOption = None,
    password_by_mail: Annotated[
        bool,
        typer.Option(
            "--password-by-mail", help="with --via jira: mail the password to the subject"
        ),
    ] = False,
    officer: OfficerOption = "officer",
    config: ConfigOption = None,
) -> None:
    """Send the request's export to the subject as an AES-256 encrypted ZIP, only after the
    identity is verified; prints the password, to be given by another channel."""
    from dsrflow.delivery import Channel, DeliveryError, deliver_via_jira, deliver_via_mail
    from dsrflow.identity import verification

    loaded = _friendly(lambda: load_config(config))

    def send() -> object:
        if via not in {c.value for c in Channel}:
            raise DeliveryError(f"--via {via}: give jira or mail")
        with _ledger(config) as ledger:
            if via == Channel.MAIL:
                return deliver_via_mail(loaded, ledger, request_id, officer)
            key = ticket
            if key is None:  # the ticket whose reporter verified the identity, if any
                entry = verification(ledger, request_id)
                key = entry.details.get("ticket") if entry else None
            if not key:
                raise DeliveryError("--via jira needs --ticket KEY (the subject's own request)")
            return deliver_via_jira(loaded, ledger, request_id, key, officer, password_by_mail)

    from dsrflow.delivery import Delivered

    done = _friendly(send)
    assert isinstance(done, Delivered)
    console.print(
        f"{request_id}: delivered by {done.channel.value} ({done.where}); archive SHA-256 "
        f"{done.sha256}"
    )
    if done.password_sent:
        console.print("the password went to the subject by mail")
    else:
        console.print(
            f"password (give it to the subject by another channel, e.g. phone): {done.password}",
            highlight=False,
        )
