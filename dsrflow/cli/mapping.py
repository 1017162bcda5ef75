"""``dsr mapping check``: validating mapping files (and, with --db, their indexes)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dsrflow.cli.support import _friendly, console, err
from dsrflow.mapping import MappingError, load_mapping

mapping_app = typer.Typer(help="Check mapping files.")


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
