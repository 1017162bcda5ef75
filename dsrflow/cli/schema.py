"""``dsr schema export|mapping``: the JSON Schemas dsrflow publishes."""

from __future__ import annotations

import sys

import typer

from dsrflow.mapping import mapping_json_schema_text

schema_app = typer.Typer(help="The JSON Schemas dsrflow publishes.")


@schema_app.command("export")
def schema_export() -> None:
    """Print the JSON Schema of export.json."""
    from dsrflow.export_model import export_json_schema_text

    sys.stdout.write(export_json_schema_text())


@schema_app.command("mapping")
def schema_mapping() -> None:
    """Print the JSON Schema of mapping files."""
    sys.stdout.write(mapping_json_schema_text())
