"""The ``dsr`` app: every command and command group, in the order ``dsr --help`` lists them.
Each module of dsrflow/cli/ holds the commands named in its docstring; this one only puts them
together."""

from __future__ import annotations

import typer

from dsrflow.cli import (
    checks,
    decisions,
    export,
    handover,
    intake,
    ledger,
    letters,
    manual,
    mapping,
    rights,
    sandbox,
    schema,
    server,
    stack,
    sweep,
)
from dsrflow.local_prefect import no_telemetry

# A privacy tool phones no one: no telemetry from an embedded Prefect server unless asked for.
no_telemetry()

app = typer.Typer(help="Answer GDPR data-subject requests.", no_args_is_help=True)

app.command()(rights.access)
app.command()(rights.erase)
app.command()(rights.rectify)
app.command("withdraw-consent")(rights.withdraw_consent)
app.command()(rights.restrict)
app.command()(decisions.approve)
app.command()(decisions.reject)
app.command()(sweep.sweep)
app.command()(checks.check)
app.command()(checks.coverage)
app.command()(sandbox.demo)
app.command()(letters.letter)
app.command("requests")(ledger.list_requests)
app.command("close")(ledger.close_request)
app.command()(ledger.extend)
app.command("deliver")(handover.deliver)

app.add_typer(sandbox.sandbox_app, name="sandbox")
app.add_typer(schema.schema_app, name="schema")
app.add_typer(mapping.mapping_app, name="mapping")
app.add_typer(export.export_app, name="export")
app.add_typer(ledger.ledger_app, name="ledger")
app.add_typer(stack.stack_app, name="stack")
app.add_typer(manual.manual_app, name="manual")
app.add_typer(intake.intake_app, name="intake")
app.add_typer(handover.identity_app, name="identity")  # Art. 12(6)
app.add_typer(server.server_app, name="server")  # the local Prefect server commands reuse
