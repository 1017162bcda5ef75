"""``request_options`` (dsrflow/cli/options.py): the options every request command shares are
declared once, each command's --help lists them in the same places as before, and a command
gets what was typed as one ``Asked``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from typer.testing import CliRunner

from dsrflow.cli import app
from dsrflow.cli.options import Asked, request_options

TAIL = ["officer", "request_id", "received_at", "out", "config"]


def options(*command: str) -> list[str]:
    group = typer.main.get_command(app)
    for name in command:
        group = group.commands[name]  # type: ignore[attr-defined]
    return [p.name for p in group.params]


def test_each_request_command_lists_its_own_options_after_subject_and_the_shared_ones_after():
    assert options("erase") == [
        "subject",
        "phone",
        "jira_account",
        "analytics_client_id",
        "analytics_user_id",
        "dry_run",
        "approve",
        *TAIL,
    ]
    assert options("rectify") == [
        "subject",
        "set_",
        "phone",
        "jira_account",
        "dry_run",
        "approve",
        *TAIL,
    ]
    assert options("withdraw-consent")[:3] == ["subject", "purpose", "phone"]
    assert options("restrict") == ["subject", "lift", "phone", "jira_account", *TAIL]


def test_the_command_gets_what_was_typed_as_asked():
    got: list[tuple[Asked, str]] = []
    demo = typer.Typer()

    @demo.command()
    @request_options(changes=True)
    def paint(asked: Asked, colour: Annotated[str, typer.Option("--colour", help="which")]) -> None:
        """Paint the subject's records."""
        got.append((asked, colour))

    @demo.command()
    def other() -> None:  # a second command, so that Typer keeps the command's name
        """Nothing."""

    result = CliRunner().invoke(
        demo,
        [
            "paint",
            "--subject",
            "a@example.com",
            "--subject",
            "b@example.com",
            "--colour",
            "red",
            "--dry-run",
            "--officer",
            "Ingrid",
            "--received-at",
            "2026-03-01T10:00:00",
            "--out",
            "out",
        ],
    )
    assert result.exit_code == 0, result.output
    assert got == [
        (
            Asked(
                subject=["a@example.com", "b@example.com"],
                phone=None,
                jira_account=None,
                officer="Ingrid",
                request_id=None,
                received_at=dt.datetime(2026, 3, 1, 10, 0),
                out=Path("out"),
                config=None,
                dry_run=True,
            ),
            "red",
        )
    ]
    helped = CliRunner().invoke(demo, ["paint", "--help"], env={"COLUMNS": "200"})
    assert "Paint the subject's records." in helped.output
    assert "--analytics-client-id" not in helped.output  # only with analytics=True
