"""``dsr letter``: a letter to the subject, written into the request's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dsrflow.cli.options import ConfigOption, OfficerOption
from dsrflow.cli.support import _friendly, _ledger, console
from dsrflow.config import load_config


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
