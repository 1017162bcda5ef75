"""The commands that run a request of one of the subject's rights in this process: access,
erase, rectify, withdraw-consent and restrict."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, cast

import typer

from connectors.run_scope import run_scope
from dsrflow.cli.options import (
    AnalyticsClientOption,
    AnalyticsUserOption,
    Asked,
    ConfigOption,
    JiraAccountOption,
    OfficerOption,
    PhoneOption,
    ReceivedOption,
    RequestIdOption,
    SubjectOption,
    request_options,
)
from dsrflow.cli.running import _open_request, _print_access_result, _run_request
from dsrflow.cli.support import _config_folder, _friendly, _in_process, err
from dsrflow.run_settings import run_settings


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
    # The check before the request and the flow open each source once (connectors/run_scope.py).
    with run_scope():
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


@request_options(analytics=True, changes=True)
def erase(asked: Asked) -> None:
    """Erase the subject's data: plan, approval, execution, verification, receipt."""

    def start(request_id: str) -> Any:
        from flows.erasure import erasure_request

        return erasure_request(request_id=request_id, dry_run=asked.dry_run)

    _run_request("erasure", asked, start)


@request_options(changes=True)
def rectify(
    asked: Asked,
    set_: Annotated[
        list[str],
        typer.Option("--set", help="field=new value: email, name, phone or a data category"),
    ],
) -> None:
    """Correct the subject's data wherever it occurs; every change is read back."""
    from dsrflow.planning import parse_corrections

    _friendly(lambda: parse_corrections(set_))

    def start(request_id: str) -> Any:
        from flows.other_rights import rectification_request

        return rectification_request(request_id=request_id, corrections=set_, dry_run=asked.dry_run)

    _run_request("rectification", asked, start)


@request_options(analytics=True, changes=True)
def withdraw_consent(
    asked: Asked,
    purpose: Annotated[str, typer.Option("--purpose", help="analytics, config_collection or all")],
) -> None:
    """Record a consent withdrawal at once; erase what rested on that consent alone once an
    officer approves."""
    if purpose not in ("analytics", "config_collection", "all"):
        err.print(
            f"[bold red]error:[/] --purpose must be analytics, config_collection or all, "
            f"not {purpose!r}"
        )
        raise typer.Exit(2)

    def start(request_id: str) -> Any:
        from flows.other_rights import Purpose, consent_withdrawal

        return consent_withdrawal(
            request_id=request_id,
            purpose=cast(Purpose, purpose),  # checked against the purposes above
            dry_run=asked.dry_run,
        )

    _run_request("consent_withdrawal", asked, start)


@request_options()
def restrict(
    asked: Asked,
    lift: Annotated[bool, typer.Option("--lift", help="lift the restriction instead")] = False,
) -> None:
    """Restrict processing of the subject's data (Art. 18), or lift the restriction."""

    def start(request_id: str) -> Any:
        from flows.other_rights import restriction_request

        return restriction_request(request_id=request_id, lift=lift, officer=asked.officer)

    _run_request("restriction", asked, start)
