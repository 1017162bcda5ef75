"""Erasure of the rows that passed the guard (``connectors/drive/changes.py``).

One ``spreadsheets.batchUpdate`` per sheet: ``repeatCell`` clears first (they move nothing), then
``deleteDimension`` from the highest row down, so that earlier deletions do not shift later ones.
A row under its layout's legal hold (as the sheet holds it now) is skipped, whatever the plan
said. Sent once (``Sheets.send_change``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from connectors.base import hold_checked_on
from connectors.drive.changes import GuardedSheet, Target
from connectors.drive.edits import (
    EMPTIED,
    changed,
    clear_cells_request,
    delete_rows_requests,
    keep_last_unfrozen,
)
from connectors.drive.mapping import header_key
from connectors.drive.operations import Sheets
from dsrflow.plan import Action, ActionResult, Outcome


def held(sheet: GuardedSheet, target: Target, today: dt.date) -> ActionResult | None:
    """SKIPPED if the row, as it is now, is under the layout's legal hold; else None."""
    layout = sheet.layout
    row = sheet.rows[target.row - 1]
    fields = {sheet.headers[c]: v for c, v in enumerate(row) if c < len(sheet.headers)}
    hold = layout.hold_until(fields)
    today = hold_checked_on(target.action, today)
    if not layout.legal_hold or hold is None or hold <= today:
        return None
    until = "" if hold == dt.date.max else f" until {hold}"
    return ActionResult(
        record_id=target.action.record_id,
        outcome=Outcome.SKIPPED,
        detail=f"under legal hold ({layout.legal_hold.reason}){until}",
    )


def erase_sheet(sheets: Sheets, sheet: GuardedSheet, targets: list[Target]) -> list[ActionResult]:
    today = dt.datetime.now(dt.UTC).date()
    results: list[ActionResult] = []
    clears: list[dict[str, Any]] = []
    cleared: list[tuple[int, int]] = []
    deletes: set[int] = set()
    done: list[Target] = []
    sheet_id = sheet.props["sheetId"]
    for target in targets:
        kept = held(sheet, target, today)
        if kept is not None:
            results.append(kept)
            continue
        if target.action.action == Action.DELETE:
            deletes.add(target.row)
        else:
            names = {header_key(f) for f in target.action.fields}
            columns = [c for c, h in enumerate(sheet.headers) if header_key(h) in names]
            present = {header_key(sheet.headers[c]) for c in columns}
            missing = sorted(f for f in target.action.fields if header_key(f) not in present)
            if missing:
                # A column renamed since planning may still hold what was to be cleared: done
                # would be untrue, so the row is left for the officer.
                results.append(
                    ActionResult(
                        record_id=target.action.record_id,
                        outcome=Outcome.SKIPPED,
                        detail=f"the sheet has no column {', '.join(missing)} any more: "
                        "the row was left untouched",
                    )
                )
                continue
            clears += [clear_cells_request(sheet_id, target.row, c) for c in columns]
            cleared += [(target.row, c) for c in columns]
        done.append(target)
    last = keep_last_unfrozen(sheet.props, sheet.rows, deletes)
    # Clearing does not move rows, so it goes first; then deletions from the bottom up.
    requests = clears + list(last.requests) + delete_rows_requests(sheet_id, last.deletes)
    if not requests:
        return results
    cells = {cell: "" for cell in cleared} | last.cells
    after = changed(sheet.rows, cells, last.deletes)
    outcome, detail = sheets.send_change(
        sheet.spreadsheet_id,
        sheet_id,
        sheet.rows,
        after,
        lambda: sheets.client.batch_update(sheet.spreadsheet_id, requests),
    )
    return results + [
        ActionResult(
            record_id=t.action.record_id,
            outcome=outcome,
            detail=detail or (EMPTIED.format(row=t.row) if t.row == last.emptied else None),
        )
        for t in done
    ]
