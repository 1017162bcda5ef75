"""``dsr check`` and ``dsr coverage``: what every source lets dsrflow do, and what personal
data it holds outside the mappings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dsrflow.cli.options import ConfigOption, OfficerOption
from dsrflow.cli.support import _friendly, console, err
from dsrflow.config import load_config


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


def _surveyed(config: Path | None, actor: str) -> Any:
    """The coverage survey of every source, kept in the ledger (``dsrflow.coverage``)."""
    from dsrflow.coverage import store, survey
    from dsrflow.ledger import Ledger

    loaded = _friendly(lambda: load_config(config))
    report = survey(loaded)
    with _friendly(lambda: Ledger.from_config(loaded)) as ledger:
        _friendly(lambda: store(ledger, report, actor=actor))
    return report
