"""``dsr export verify``: checking a written export against its manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dsrflow.cli.support import console, err

export_app = typer.Typer(help="Work with written exports.")


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
