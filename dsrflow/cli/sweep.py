"""``dsr sweep``: the retention sweep, in this process."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from dsrflow.cli.options import ConfigOption
from dsrflow.cli.support import _config_folder, _friendly, _in_process, console
from dsrflow.config import load_config
from dsrflow.run_settings import run_settings


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
