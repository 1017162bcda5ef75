"""``spreadsheets.batchUpdate``: the requests the connector and its tests need —
``deleteDimension``, ``insertDimension``, ``updateCells`` and ``repeatCell`` — applied in order
and atomically (one invalid request and nothing changes), as the Sheets reference says."""

from __future__ import annotations

import copy
from typing import Any

from sandbox.emulators.google.errors import GoogleError
from sandbox.emulators.google.state import DriveFile, Sheet

SUPPORTED = ("deleteDimension", "insertDimension", "updateCells", "repeatCell")


def _bad(index: int, message: str) -> GoogleError:
    return GoogleError(400, f"Invalid requests[{index}].{message}")


# Sheets refuses a change to a protected range by anyone not among its editors with 400 and
# this message, for cell edits and row deletions alike (as reported by its users, e.g. gspread
# "APIError: [400]: You are trying to edit a protected cell or object").
PROTECTED = (
    "You are trying to edit a protected cell or object. Please contact the spreadsheet owner "
    "to remove protection if you need to edit."
)


def protected_error() -> GoogleError:
    return GoogleError(400, PROTECTED, reason="badRequest")


def _sheet(sheets: list[Sheet], sheet_id: Any, index: int, kind: str) -> Sheet:
    for sheet in sheets:
        if sheet.sheet_id == (sheet_id or 0):
            return sheet
    raise _bad(index, f"{kind}: No grid with id: {sheet_id}")


def _cell_value(cell: dict[str, Any], fields: str, index: int) -> Any:
    """The value a CellData sets; an empty ``userEnteredValue`` clears the cell."""
    if fields not in ("*", "userEnteredValue") and "userEnteredValue" not in fields.split(","):
        raise _bad(index, f"fields: only userEnteredValue is supported, got {fields!r}")
    value = cell.get("userEnteredValue") or {}
    for key in ("stringValue", "numberValue", "boolValue"):
        if key in value:
            return value[key]
    if "formulaValue" in value:
        return value["formulaValue"]
    return ""


def _set(sheet: Sheet, row: int, col: int, value: Any, user: str) -> None:
    if not sheet.may_edit(user, row, col):
        raise protected_error()
    while len(sheet.rows) <= row:
        sheet.rows.append([])
    cells = sheet.rows[row]
    while len(cells) <= col:
        cells.append("")
    cells[col] = value


def _delete_dimension(sheets: list[Sheet], body: dict[str, Any], index: int, user: str) -> None:
    rng = body.get("range") or {}
    sheet = _sheet(sheets, rng.get("sheetId"), index, "deleteDimension")
    start, end = rng.get("startIndex", 0), rng.get("endIndex")
    dimension = rng.get("dimension")
    limit = sheet.row_count if dimension == "ROWS" else sheet.column_count
    if dimension not in ("ROWS", "COLUMNS") or end is None or not 0 <= start < end <= limit:
        raise _bad(index, f"deleteDimension: Invalid range {rng}")
    if dimension == "ROWS":
        # Sheets keeps at least one row below the frozen ones ("Sorry, it is not possible to
        # delete all non-frozen rows.", as Apps Script and API users meet it).
        if sheet.row_count - (end - start) <= sheet.frozen_rows:
            raise _bad(
                index, "deleteDimension: Sorry, it is not possible to delete all non-frozen rows."
            )
        if any(not sheet.may_edit(user, r) for r in range(start, end)):
            raise protected_error()
        del sheet.rows[start:end]
        sheet.row_count -= end - start
    else:
        if end - start >= sheet.column_count:
            raise _bad(index, "deleteDimension: You can't delete all the columns on the sheet.")
        for row in sheet.rows:
            del row[start:end]
        sheet.column_count -= end - start


def _insert_dimension(sheets: list[Sheet], body: dict[str, Any], index: int, user: str) -> None:
    rng = body.get("range") or {}
    sheet = _sheet(sheets, rng.get("sheetId"), index, "insertDimension")
    start, end = rng.get("startIndex", 0), rng.get("endIndex")
    if rng.get("dimension") != "ROWS" or end is None or not 0 <= start < end:
        raise _bad(index, f"insertDimension: Invalid range {rng}")
    if start < len(sheet.rows):
        sheet.rows[start:start] = [[] for _ in range(end - start)]
    sheet.row_count += end - start


def _update_cells(sheets: list[Sheet], body: dict[str, Any], index: int, user: str) -> None:
    fields = body.get("fields")
    if not fields:
        raise _bad(index, "updateCells: fields is required")
    if "start" in body:
        start = body["start"]
        sheet = _sheet(sheets, start.get("sheetId"), index, "updateCells")
        r0, c0 = start.get("rowIndex", 0), start.get("columnIndex", 0)
    else:
        rng = body.get("range") or {}
        sheet = _sheet(sheets, rng.get("sheetId"), index, "updateCells")
        r0, c0 = rng.get("startRowIndex", 0), rng.get("startColumnIndex", 0)
    for i, row in enumerate(body.get("rows", [])):
        for j, cell in enumerate(row.get("values", [])):
            if r0 + i >= sheet.row_count or c0 + j >= sheet.column_count:
                raise _bad(index, "updateCells: range exceeds grid limits")
            _set(sheet, r0 + i, c0 + j, _cell_value(cell, fields, index), user)


def _repeat_cell(sheets: list[Sheet], body: dict[str, Any], index: int, user: str) -> None:
    rng = body.get("range") or {}
    sheet = _sheet(sheets, rng.get("sheetId"), index, "repeatCell")
    fields = body.get("fields")
    if not fields:
        raise _bad(index, "repeatCell: fields is required")
    value = _cell_value(body.get("cell") or {}, fields, index)
    r0, r1 = rng.get("startRowIndex", 0), rng.get("endRowIndex", sheet.row_count)
    c0, c1 = rng.get("startColumnIndex", 0), rng.get("endColumnIndex", sheet.column_count)
    if not (0 <= r0 <= r1 <= sheet.row_count and 0 <= c0 <= c1 <= sheet.column_count):
        raise _bad(index, "repeatCell: range exceeds grid limits")
    for r in range(r0, r1):
        for c in range(c0, c1):
            # Clearing cells that were never written is a no-op: do not grow the rows.
            if value == "" and (r >= len(sheet.rows) or c >= len(sheet.rows[r])):
                continue
            _set(sheet, r, c, value, user)


HANDLERS = {
    "deleteDimension": _delete_dimension,
    "insertDimension": _insert_dimension,
    "updateCells": _update_cells,
    "repeatCell": _repeat_cell,
}


def apply(file: DriveFile, requests: list[dict[str, Any]], user: str) -> list[dict[str, Any]]:
    """Apply every request (as ``user``, for protected ranges) to a copy, then swap it in: all
    or nothing."""
    sheets = copy.deepcopy(file.sheets)
    for index, request in enumerate(requests):
        if not isinstance(request, dict) or len(request) != 1:
            raise _bad(index, " Exactly one kind of request must be set.")
        ((kind, body),) = request.items()
        handler = HANDLERS.get(kind)
        if handler is None:
            raise GoogleError(
                400,
                f"Invalid JSON payload received. Unknown name \"{kind}\" at 'requests[{index}]': "
                "Cannot find field."
                if kind not in _KNOWN_BUT_UNSUPPORTED
                else f"Invalid requests[{index}].{kind}: not supported by this emulator",
            )
        handler(sheets, body or {}, index, user)
    file.sheets = sheets
    file.touched()
    return [{} for _ in requests]


# Real request kinds the emulator does not implement: named as such, not as unknown names.
_KNOWN_BUT_UNSUPPORTED = frozenset(
    {
        "addSheet",
        "deleteSheet",
        "updateSheetProperties",
        "appendCells",
        "appendDimension",
        "findReplace",
        "moveDimension",
        "sortRange",
        "setDataValidation",
        "mergeCells",
        "updateDimensionProperties",
        "deleteRange",
        "insertRange",
        "copyPaste",
        "cutPaste",
    }
)
