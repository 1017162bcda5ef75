"""Rectification of the rows that passed the guard (``connectors/drive/changes.py``): each
named cell (header -> new value) written with ``values.update``, sent once
(``Sheets.send_change``), then the row read back."""

from __future__ import annotations

import functools
from typing import Any

from connectors.drive.changes import GuardedSheet, Target
from connectors.drive.client import a1_sheet
from connectors.drive.edits import changed
from connectors.drive.mapping import header_key
from connectors.drive.operations import Sheets
from connectors.drive.rows import column_letter
from dsrflow.plan import ActionResult, Outcome


def rectify_sheet(sheets: Sheets, sheet: GuardedSheet, targets: list[Target]) -> list[ActionResult]:
    results = []
    rows = sheet.rows
    for target in targets:
        result, rows = rectify_row(sheets, sheet, rows, target)
        results.append(result)
    return results


def rectify_row(
    sheets: Sheets, sheet: GuardedSheet, rows: list[list[Any]], target: Target
) -> tuple[ActionResult, list[list[Any]]]:
    """Write the target's cells one by one into the sheet holding ``rows``; the result, and
    what the sheet holds after the writes that went through (the next target's start)."""
    columns = {header_key(h): c for c, h in enumerate(sheet.headers)}
    missing = [f for f in target.action.fields if header_key(f) not in columns]
    if missing:
        skipped = ActionResult(
            record_id=target.action.record_id,
            outcome=Outcome.SKIPPED,
            detail=f"the sheet has no column {', '.join(sorted(missing))}",
        )
        return skipped, rows
    title = sheet.props["title"]
    failed = None
    for field, value in target.action.fields.items():
        column = columns[header_key(field)]
        cell = f"{a1_sheet(title)}!{column_letter(column)}{target.row}"
        after = changed(rows, {(target.row, column): value})
        outcome, detail = sheets.send_change(
            sheet.spreadsheet_id,
            sheet.props["sheetId"],
            rows,
            after,
            functools.partial(sheets.client.update_cell, sheet.spreadsheet_id, cell, value),
        )
        if outcome != Outcome.DONE:
            failed = detail
            break
        rows = after  # the next cell's write starts from this one's result
    if failed is None:
        failed = verify(sheets, sheet, target)
    done = ActionResult(
        record_id=target.action.record_id,
        outcome=Outcome.FAILED if failed else Outcome.DONE,
        detail=failed,
    )
    return done, rows


def verify(sheets: Sheets, sheet: GuardedSheet, target: Target) -> str | None:
    """Read the row back; a description of what differs, or None if all is as asked."""
    answer = sheets.read(
        sheets.client.row_values(sheet.spreadsheet_id, sheet.props["title"], target.row),
        "values_reads",
        "reading back a rectified row",
    )
    row = (answer.get("values") or [[]])[0]
    now = {header_key(h): (row[c] if c < len(row) else "") for c, h in enumerate(sheet.headers)}
    wrong = [
        f
        for f, v in target.action.fields.items()
        if str(now.get(header_key(f), "")) != ("" if v is None else str(v))
    ]
    return f"read back differs in {', '.join(wrong)}" if wrong else None
