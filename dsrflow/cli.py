"""``dsr``: the command line of dsrflow."""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.table import Table

from dsrflow.cli_handover import register as register_handover
from dsrflow.cli_server import register as register_server
from dsrflow.cli_server import running_note
from dsrflow.cli_support import (
    ConfigOption,
    OfficerOption,
    _config_folder,
    _friendly,
    _in_process,
    _ledger,
    _validated,
    console,
    err,
)
from dsrflow.config import load_config
from dsrflow.local_prefect import no_telemetry
from dsrflow.mapping import MappingError, load_mapping, mapping_json_schema_text
from dsrflow.request import new_request_id
from dsrflow.run_settings import run_settings

# A privacy tool phones no one: no telemetry from an embedded Prefect server unless asked for.
no_telemetry()

app = typer.Typer(help="Answer GDPR data-subject requests.", no_args_is_help=True)
sandbox_app = typer.Typer(help="The local sandbox: seeded sources to try dsrflow on.")
schema_app = typer.Typer(help="The JSON Schemas dsrflow publishes.")
mapping_app = typer.Typer(help="Check mapping files.")
export_app = typer.Typer(help="Work with written exports.")
ledger_app = typer.Typer(help="The request ledger and its audit trail.")
stack_app = typer.Typer(help="The whole stack on this machine: Prefect server, sandbox, worker.")
manual_app = typer.Typer(help="Manual sources: places without an API that a person searches.")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(schema_app, name="schema")
app.add_typer(mapping_app, name="mapping")
app.add_typer(export_app, name="export")
app.add_typer(ledger_app, name="ledger")
app.add_typer(stack_app, name="stack")
app.add_typer(manual_app, name="manual")


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


ReceivedOption = Annotated[
    dt.datetime | None,
    typer.Option("--received-at", help="when the request arrived (the deadline counts from it)"),
]
SubjectOption = Annotated[
    list[str], typer.Option("--subject", help="the subject's e-mail address (repeatable)")
]
PhoneOption = Annotated[
    list[str] | None, typer.Option("--phone", help="the subject's phone number (repeatable)")
]
JiraAccountOption = Annotated[
    list[str] | None,
    typer.Option(
        "--jira-account",
        help="a Jira account id confirmed as the subject's, where Jira hides its address "
        "(repeatable)",
    ),
]
AnalyticsClientOption = Annotated[
    list[str] | None,
    typer.Option(
        "--analytics-client-id",
        help="the subject's Google Analytics client id, e.g. 1197596843.1673515099 or the _ga "
        "cookie GA1.1.1197596843.1673515099 (repeatable)",
    ),
]
AnalyticsUserOption = Annotated[
    list[str] | None,
    typer.Option(
        "--analytics-user-id",
        help="the user id the site sends Google Analytics for the subject (repeatable)",
    ),
]
RequestIdOption = Annotated[
    str | None, typer.Option("--request-id", help="e.g. DSR-2026-0042 (default: a new id)")
]
OutOption = Annotated[
    Path | None, typer.Option("--out", help="folder for the plan and the receipt")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="stop after the plan; change nothing")
]
ApproveOption = Annotated[
    bool,
    typer.Option(
        "--approve", help="approve the plan here, as --officer (else: dsr approve, later)"
    ),
]


@app.command()
def access(
    subject: SubjectOption,
    out: Annotated[Path, typer.Option("--out", help="folder that receives REQUEST-ID/")],
    phone: PhoneOption = None,
    jira_account: JiraAccountOption = None,
    analytics_client_id: AnalyticsClientOption = None,
    analytics_user_id: AnalyticsUserOption = None,
    request_id: RequestIdOption = None,
    received_at: ReceivedOption = None,
    officer: OfficerOption = "officer",
    config: ConfigOption = None,
) -> None:
    """Run an access request in this process and write the portable export (Analytics ids
    are named in it: Analytics cannot return their data)."""
    # Bad identifiers or config are refused here, before Prefect starts or a source is touched.
    opened = _open_request(
        "access",
        subject,
        phone,
        request_id,
        received_at,
        config,
        officer,
        jira_accounts=jira_account,
        analytics=(analytics_client_id, analytics_user_id),
    )
    from flows.access import access_request

    with run_settings(config, out):
        result = _in_process(_config_folder(config), lambda: access_request(request_id=opened))
    _print_access_result(result)


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


@app.command()
def erase(
    subject: SubjectOption,
    phone: PhoneOption = None,
    jira_account: JiraAccountOption = None,
    analytics_client_id: AnalyticsClientOption = None,
    analytics_user_id: AnalyticsUserOption = None,
    dry_run: DryRunOption = False,
    approve: ApproveOption = False,
    officer: OfficerOption = "officer",
    request_id: RequestIdOption = None,
    received_at: ReceivedOption = None,
    out: OutOption = None,
    config: ConfigOption = None,
) -> None:
    """Erase the subject's data: plan, approval, execution, verification, receipt."""
    opened = _open_request(
        "erasure",
        subject,
        phone,
        request_id,
        received_at,
        config,
        officer,
        approve,
        dry_run,
        jira_accounts=jira_account,
        analytics=(analytics_client_id, analytics_user_id),
    )
    from flows.erasure import erasure_request

    with run_settings(config, out):
        _run_change(
            opened,
            config,
            lambda: erasure_request(request_id=opened, dry_run=dry_run),
            approver=officer if approve else None,
        )


@app.command()
def rectify(
    subject: SubjectOption,
    set_: Annotated[
        list[str],
        typer.Option("--set", help="field=new value: email, name, phone or a data category"),
    ],
    phone: PhoneOption = None,
    jira_account: JiraAccountOption = None,
    dry_run: DryRunOption = False,
    approve: ApproveOption = False,
    officer: OfficerOption = "officer",
    request_id: RequestIdOption = None,
    received_at: ReceivedOption = None,
    out: OutOption = None,
    config: ConfigOption = None,
) -> None:
    """Correct the subject's data wherever it occurs; every change is read back."""
    from dsrflow.planning import parse_corrections

    _friendly(lambda: parse_corrections(set_))
    opened = _open_request(
        "rectification",
        subject,
        phone,
        request_id,
        received_at,
        config,
        officer,
        approve,
        dry_run,
        jira_accounts=jira_account,
    )
    from flows.other_rights import rectification_request

    with run_settings(config, out):
        _run_change(
            opened,
            config,
            lambda: rectification_request(request_id=opened, corrections=set_, dry_run=dry_run),
            approver=officer if approve else None,
        )


@app.command("withdraw-consent")
def withdraw_consent(
    subject: SubjectOption,
    purpose: Annotated[str, typer.Option("--purpose", help="analytics, config_collection or all")],
    phone: PhoneOption = None,
    jira_account: JiraAccountOption = None,
    analytics_client_id: AnalyticsClientOption = None,
    analytics_user_id: AnalyticsUserOption = None,
    dry_run: DryRunOption = False,
    approve: ApproveOption = False,
    officer: OfficerOption = "officer",
    request_id: RequestIdOption = None,
    received_at: ReceivedOption = None,
    out: OutOption = None,
    config: ConfigOption = None,
) -> None:
    """Record a consent withdrawal at once; erase what rested on that consent alone once an
    officer approves."""
    if purpose not in ("analytics", "config_collection", "all"):
        err.print(
            f"[bold red]error:[/] --purpose must be analytics, config_collection or all, "
            f"not {purpose!r}"
        )
        raise typer.Exit(2)
    opened = _open_request(
        "consent_withdrawal",
        subject,
        phone,
        request_id,
        received_at,
        config,
        officer,
        approve,
        dry_run,
        jira_accounts=jira_account,
        analytics=(analytics_client_id, analytics_user_id),
    )
    from flows.other_rights import Purpose, consent_withdrawal

    with run_settings(config, out):
        _run_change(
            opened,
            config,
            lambda: consent_withdrawal(
                request_id=opened,
                purpose=cast(Purpose, purpose),  # checked against the purposes above
                dry_run=dry_run,
            ),
            approver=officer if approve else None,
        )


@app.command()
def restrict(
    subject: SubjectOption,
    lift: Annotated[bool, typer.Option("--lift", help="lift the restriction instead")] = False,
    phone: PhoneOption = None,
    jira_account: JiraAccountOption = None,
    officer: OfficerOption = "officer",
    request_id: RequestIdOption = None,
    received_at: ReceivedOption = None,
    out: OutOption = None,
    config: ConfigOption = None,
) -> None:
    """Restrict processing of the subject's data (Art. 18), or lift the restriction."""
    opened = _open_request(
        "restriction",
        subject,
        phone,
        request_id,
        received_at,
        config,
        officer,
        jira_accounts=jira_account,
    )
    from flows.other_rights import restriction_request

    with run_settings(config, out):
        _run_change(
            opened,
            config,
            lambda: restriction_request(request_id=opened, lift=lift, officer=officer),
        )


StackOption = Annotated[
    Path | None,
    typer.Option(
        "--stack", help="answer a run paused on the stack of this folder (dsr stack up --dir)"
    ),
]


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
        from dsrflow import stack

        _friendly(lambda: stack.client_environment(stack_dir))  # names a folder without one
        with stack.connected(stack_dir):
            _resume(request_id, wait, decision)
        return
    _resume(request_id, wait, decision)


def _resume(request_id: str, wait: Any, decision: Any) -> None:
    """Answer the Resume form of the paused run ``wait`` names, on the configured server."""
    from dsrflow.local_prefect import configured_api_url

    if not wait.flow_run or not configured_api_url():
        err.print(
            f"[bold red]error:[/] {request_id} waits in Prefect flow run {wait.flow_run}: give "
            "--stack DIR of the stack it runs on, or set PREFECT_API_URL (and "
            "PREFECT_API_AUTH_STRING) to that server's, or use the run's Resume form in the UI",
            highlight=False,
        )
        raise typer.Exit(2)
    from flows.resume import resume_paused

    _friendly(lambda: resume_paused(wait.flow_run or "", decision))
    verb = "approved" if decision.approved else "rejected"
    console.print(f"{request_id}: {verb}; flow run {wait.flow_run} resumes (see the Prefect UI)")


@app.command()
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


@app.command()
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
        from dsrflow import stack

        _friendly(lambda: stack.client_environment(stack_dir))
        with stack.connected(stack_dir):
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
        err.print(
            f"[bold red]error:[/] {request_id} waits in Prefect flow run {wait.flow_run}: give "
            "--stack DIR of the stack it runs on, or set PREFECT_API_URL (and "
            "PREFECT_API_AUTH_STRING) to that server's, or use the run's Resume form in the UI",
            highlight=False,
        )
        raise typer.Exit(2)


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


@app.command()
def sweep(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report what would go")] = False,
    min_group_size: Annotated[
        int | None,
        typer.Option("--min-group-size", min=2, help="k for aggregates (default: the mappings')"),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Run the retention sweep in this process: aggregate and delete what is past its time."""
    _friendly(lambda: load_config(config))
    from dsrflow.local_prefect import private_home

    private_home(_config_folder(config))  # before Prefect is imported
    from flows.retention import retention_sweep

    with run_settings(config, min_group_size=min_group_size):
        summary = _in_process(_config_folder(config), lambda: retention_sweep(dry_run=dry_run))
    table = Table(title="Retention sweep" + (" (dry run: nothing changed)" if dry_run else ""))
    for column in ("source", "table", "rule", "older than", "rows", "aggregates", "suppressed"):
        table.add_column(column)
    for r in summary.results:
        table.add_row(
            str(r["source"]),
            str(r["table"]),
            str(r["rule"]),
            str(r["cutoff"])[:10],
            str(r["rows"]),
            str(r["groups"]),
            str(r["suppressed"]),
        )
    console.print(table)
    for r in summary.results:  # aggregation by levels: where the events went
        if isinstance(by_level := r.get("levels"), dict) and by_level:
            levels = ", ".join(f"{name} {n}" for name, n in by_level.items())
            console.print(
                f"{r['source']}.{r['table']}: published by level: {levels}; "
                f"suppressed {r['suppressed']}; waiting for their period to close {r['pending']}"
            )
    if summary.exports_removed:
        verb = "would go" if dry_run else "removed"
        console.print(f"export folders past their retention: {summary.exports_removed} {verb}")
    for name in summary.skipped_sources:
        console.print(f"{name}: no retention support in its connector yet")


@stack_app.command("up")
def stack_up(
    directory: Annotated[
        Path, typer.Option("--dir", help="where the stack keeps its state")
    ] = Path(".stack"),  # stack.DEFAULT_DIRECTORY; imported lazily
    port: Annotated[int, typer.Option("--port", help="the Prefect server's port")] = 4200,
) -> None:
    """Start a Prefect server (API behind a generated credential), the sandbox and a worker;
    register every deployment."""
    from dsrflow import stack

    try:
        running = stack.up(directory, port=port)
    except (stack.StackAlreadyRunning, LookupError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except (RuntimeError, OSError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        stack.down(directory)
        raise typer.Exit(1) from None
    console.print(f"Prefect UI: [bold]{running.ui_url}[/]  (API {running.api_url})")
    console.print(
        f"API credential (user:password, for the UI's login and PREFECT_API_AUTH_STRING): "
        f"in {running.auth_file}",
        highlight=False,
    )
    console.print(f"config: {running.config_path}; logs in {running.directory}", highlight=False)
    console.print(f"stop it with: {stack.down_command(directory)}", highlight=False)


@stack_app.command("down")
def stack_down(
    directory: Annotated[
        Path, typer.Option("--dir", help="where the stack keeps its state")
    ] = Path(".stack"),  # stack.DEFAULT_DIRECTORY; imported lazily
) -> None:
    """Stop everything `dsr stack up` started, the flow runs of its worker included."""
    from dsrflow import stack

    stopped = stack.down(directory)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


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


@app.command()
def check(config: ConfigOption = None) -> None:
    """Check every source for every right: reachable, credentials, permissions and scopes, and
    the mapping against the live source. One line per problem; exit status 2 if any."""
    from dsrflow.preflight import every_right
    from dsrflow.request import RequestType

    loaded = _friendly(lambda: load_config(config))
    checked = every_right(loaded)
    for name, rights in checked.ready.items():
        if len(rights) == len(RequestType):
            console.print(f"[green]ok[/] {name}: {loaded.sources[name].kind}, every right")
        elif rights:
            names = ", ".join(r.value for r in rights)
            console.print(f"[green]ok[/] {name}: {names} (not the others)")
    problems = checked.problems
    for problem in problems:
        err.print(f"[bold red]problem[/] {problem}", highlight=False)
    if problems:
        raise typer.Exit(2)


def _surveyed(config: Path | None, actor: str) -> Any:
    """The coverage survey of every source, kept in the ledger (``dsrflow.coverage``)."""
    from dsrflow.coverage import store, survey
    from dsrflow.ledger import Ledger

    loaded = _friendly(lambda: load_config(config))
    report = survey(loaded)
    with _friendly(lambda: Ledger.from_config(loaded)) as ledger:
        _friendly(lambda: store(ledger, report, actor=actor))
    return report


@app.command()
def coverage(config: ConfigOption = None, officer: OfficerOption = "officer") -> None:
    """Look in every source for personal data outside the mappings (samples and counts, never
    contents); print each place with the mapping entry that would cover it, and keep the
    report's time and counts in the ledger for access requests. Exit status 0: nothing open;
    1: findings, or sources that could not be surveyed; 2: an error."""
    report = _surveyed(config, officer)
    for line in report.lines():
        console.print(line, highlight=False, markup=False)  # mapping entries hold brackets
    console.print(
        f"{len(report.findings)} finding(s), {len(report.not_surveyed)} source(s) not surveyed",
        highlight=False,
    )
    if report.open_findings:
        raise typer.Exit(1)


@app.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="sandbox folder")] = Path(".sandbox"),
) -> None:
    """The main job in one go: seed the sandbox, answer the demo subject's access request."""
    from dsrflow.local_prefect import private_home

    private_home(directory)  # before Prefect is imported: its settings are read then
    from flows.access import access_request
    from sandbox.onprem_seed import DEMO_SUBJECT
    from sandbox.runtime import start

    with _friendly(lambda: start(directory)) as box:
        console.print(f"sandbox seeded in {box.directory}; demo subject: [bold]{DEMO_SUBJECT}[/]")
        surveyed = _surveyed(box.config_path, "demo")  # what the access request's warning reads
        console.print(f"coverage: {surveyed.open_findings} open finding(s) outside the mappings")
        opened = _open_request(
            "access", [DEMO_SUBJECT], None, "DSR-2026-0001", None, box.config_path, "demo"
        )
        with run_settings(box.config_path):
            result = _in_process(directory, lambda: access_request(request_id=opened))
    _print_access_result(result)
    running_note(box.config_path)  # where Prefect's local server runs on, and how to stop it


@mapping_app.command("check")
def mapping_check(
    files: Annotated[list[Path], typer.Argument(help="mapping YAML files")],
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="also check the SQL mappings against this database URL: every identity and "
            "reference column needs a usable index (exit 1 names the CREATE INDEX)",
        ),
    ] = None,
) -> None:
    """Validate mapping files; every problem is listed with its path and line."""
    failed = False
    mappings = []
    for path in files:
        try:
            mappings.append((path, load_mapping(path)))
            console.print(f"[green]ok[/] {path}")
        except MappingError as exc:
            failed = True
            err.print(f"[bold red]error:[/] {exc}", highlight=False)
    if failed:
        raise typer.Exit(2)
    if db is not None:
        from dsrflow.index_check import check_mappings

        if not _friendly(lambda: check_mappings(mappings, db, console, err)):
            raise typer.Exit(1)


@schema_app.command("export")
def schema_export() -> None:
    """Print the JSON Schema of export.json."""
    from dsrflow.export_model import export_json_schema_text

    sys.stdout.write(export_json_schema_text())


@schema_app.command("mapping")
def schema_mapping() -> None:
    """Print the JSON Schema of mapping files."""
    sys.stdout.write(mapping_json_schema_text())


@export_app.command("verify")
def export_verify(directory: Annotated[Path, typer.Argument(help="an export folder")]) -> None:
    """Check an export's files against the SHA-256 sums in its manifest."""
    from dsrflow.export import verify_manifest

    changed = verify_manifest(directory)
    if changed:
        err.print(f"[bold red]changed since written:[/] {', '.join(changed)}")
        raise typer.Exit(1)
    from dsrflow.export import export_problems

    problems = export_problems(directory)  # the schema, and the two views of the records agree
    if problems:
        for problem in problems:
            err.print(f"[bold red]inconsistent:[/] {problem}", highlight=False)
        raise typer.Exit(1)
    console.print(f"[green]intact[/] {directory}")


@app.command()
def letter(
    request_id: Annotated[str, typer.Argument(help="the request, e.g. DSR-2026-0042")],
    kind: Annotated[
        str,
        typer.Argument(
            help="acknowledgement | identification | extension | refusal | answer (the answer "
            "for the request's right)"
        ),
    ],
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang", help="nb | en (default: the request's earlier letters', else the config's)"
        ),
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="a refusal's reason (default: the rejection's, if any)"),
    ] = None,
    note: Annotated[
        str | None, typer.Option("--note", help="a paragraph of your own, printed as written")
    ] = None,
    case_dir: Annotated[
        Path | None,
        typer.Option("--case-dir", help="the request's folder (default: <output_dir>/<id>)"),
    ] = None,
    officer: OfficerOption = "officer",
    config: ConfigOption = None,
) -> None:
    """Write a letter to the subject into the request's folder (letter-KIND.LANG.txt, a mail
    draft, and .md, the service desk comment); nothing is sent."""
    from dsrflow.letters import parse_kind, parse_language, write_case_letter

    chosen_kind = _friendly(lambda: parse_kind(kind))
    chosen_lang = _friendly(lambda: parse_language(lang)) if lang else None
    loaded = _friendly(lambda: load_config(config))
    with _ledger(config) as ledger:
        paths = _friendly(
            lambda: write_case_letter(
                ledger,
                loaded,
                request_id,
                chosen_kind,
                chosen_lang,
                case_dir,
                reason,
                note,
                officer,
            )
        )
    for path in paths:
        console.print(f"written: [bold]{path}[/]", highlight=False)


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


@app.command("requests")
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


@app.command("close")
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


@app.command()
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


intake_app = typer.Typer(
    help="Requests from the service desk and the mailbox (the config's intake section)."
)
app.add_typer(intake_app, name="intake")


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
    from dsrflow import stack
    from flows.intake import start_request

    _friendly(lambda: stack.client_environment(stack_dir))  # names a folder without one
    with stack.connected(stack_dir):
        run_id = start_request(deployment, request_id)
    console.print(f"{request_id}: flow run {run_id} started (see the Prefect UI)")


# `dsr identity …` and `dsr deliver` (Art. 12(6), delivery of the export).
register_handover(app)
# `dsr server start|status|stop` (the local Prefect server later commands reuse).
register_server(app)

if __name__ == "__main__":
    app()
