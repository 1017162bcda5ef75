"""The options the ``dsr`` commands share, each declared once; and ``request_options``, which
gives a command that opens a request the options every such command takes, as one ``Asked``."""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="dsrflow config file (default: $DSRFLOW_CONFIG or dsrflow.yaml)"),
]
OfficerOption = Annotated[
    str,
    typer.Option("--officer", envvar="USER", help="who acts (recorded in the ledger)"),
]
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
StackOption = Annotated[
    Path | None,
    typer.Option(
        "--stack", help="answer a run paused on the stack of this folder (dsr stack up --dir)"
    ),
]


@dataclass(frozen=True)
class Asked:
    """What a command that opens a request was given about it: whose (the subject's
    identifiers), which request, who acts, where its files go, and the config."""

    subject: list[str]
    phone: list[str] | None
    jira_account: list[str] | None
    officer: str
    request_id: str | None
    received_at: dt.datetime | None
    out: Path | None
    config: Path | None
    # Only the rights that reach Google Analytics take its ids.
    analytics_client_id: list[str] | None = None
    analytics_user_id: list[str] | None = None
    # Only the rights that plan changes take these.
    dry_run: bool = False
    approve: bool = False


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


# In the order every request command's --help lists them (its own options after --subject).
_SUBJECT = _option("subject", SubjectOption, inspect.Parameter.empty)
_IDENTIFIERS = (
    _option("phone", PhoneOption, None),
    _option("jira_account", JiraAccountOption, None),
)
_ANALYTICS = (
    _option("analytics_client_id", AnalyticsClientOption, None),
    _option("analytics_user_id", AnalyticsUserOption, None),
)
_CHANGES = (_option("dry_run", DryRunOption, False), _option("approve", ApproveOption, False))
_REQUEST = (
    _option("officer", OfficerOption, "officer"),
    _option("request_id", RequestIdOption, None),
    _option("received_at", ReceivedOption, None),
    _option("out", OutOption, None),
    _option("config", ConfigOption, None),
)


def request_options(
    *, analytics: bool = False, changes: bool = False
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Declare a request command as ``def command(asked: Asked, <its own options>)``: Typer
    sees --subject, the command's own options, --phone, --jira-account, with ``analytics``
    --analytics-client-id and --analytics-user-id, with ``changes`` --dry-run and --approve,
    then --officer, --request-id, --received-at, --out and --config; the command gets the
    shared ones as ``asked``."""
    shared = (
        *_IDENTIFIERS,
        *(_ANALYTICS if analytics else ()),
        *(_CHANGES if changes else ()),
        *_REQUEST,
    )

    def declare(command: Callable[..., None]) -> Callable[..., None]:
        _, *own = inspect.signature(command, eval_str=True).parameters.values()
        parameters = [
            _SUBJECT,
            *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own),
            *shared,
        ]

        @functools.wraps(command)
        def typed(**given: Any) -> None:
            asked = Asked(**{p.name: given.pop(p.name) for p in (_SUBJECT, *shared)})
            command(asked, **given)

        # What Typer reads to build the command's options (inspect.signature, get_type_hints).
        typed.__signature__ = inspect.Signature(parameters, return_annotation=None)  # type: ignore[attr-defined]
        typed.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
        return typed

    return declare
