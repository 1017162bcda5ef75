"""The changes a sheet's rows go through, as Sheets ``batchUpdate`` requests, and what the
sheet holds once a change is applied (to recognise, from a re-read, whether a write whose
answer was lost ran: ``Sheets.send_change``). Rows are 1-based, as Sheets numbers them;
columns 0-based.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


def clear_cells_request(sheet_id: int, row: int, column: int) -> dict[str, Any]:
    """A batchUpdate request emptying one cell (``row`` 1-based, ``column`` 0-based)."""
    return {
        "repeatCell": {
            "range": {
                "sheetId": sheet_id,
                "startRowIndex": row - 1,
                "endRowIndex": row,
                "startColumnIndex": column,
                "endColumnIndex": column + 1,
            },
            "cell": {},
            "fields": "userEnteredValue",
        }
    }


def clear_row_request(sheet_id: int, row: int) -> dict[str, Any]:
    """A batchUpdate request emptying every cell of one row (``row`` 1-based)."""
    return {
        "repeatCell": {
            "range": {"sheetId": sheet_id, "startRowIndex": row - 1, "endRowIndex": row},
            "cell": {},
            "fields": "userEnteredValue",
        }
    }


def last_unfrozen(
    props: dict[str, Any], rows: Sequence[Sequence[Any]], deletes: Iterable[int]
) -> int | None:
    """The row (1-based) to empty rather than delete when deleting ``deletes`` would leave no
    row below the frozen ones (``props``: the sheet's properties with ``gridProperties``),
    which Sheets refuses ("Sorry, it is not possible to delete all non-frozen rows."); None
    when the deletion may go as it is."""
    deletes = set(deletes)
    grid = props.get("gridProperties") or {}
    row_count = int(grid.get("rowCount", len(rows)))
    frozen = int(grid.get("frozenRowCount", 0))
    if not deletes or row_count - len(deletes) > frozen:
        return None
    return max(deletes)


EMPTIED = (
    "row {row} emptied, not deleted: Sheets keeps at least one row below the frozen ones, and "
    "it was the last"
)


@dataclass(frozen=True)
class LastRowKept:
    """A deletion made one Sheets accepts (``last_unfrozen``): ``deletes`` without the row
    ``emptied`` instead, if any; ``requests`` and ``cells`` (each emptied cell -> "") say how."""

    deletes: frozenset[int]
    emptied: int | None = None
    requests: tuple[dict[str, Any], ...] = ()
    cells: dict[tuple[int, int], str] = field(default_factory=dict)


def keep_last_unfrozen(
    props: dict[str, Any], rows: Sequence[Sequence[Any]], deletes: Iterable[int]
) -> LastRowKept:
    """``deletes`` as Sheets takes them: the last row below the frozen ones is emptied, not
    deleted (Sheets refuses "Sorry, it is not possible to delete all non-frozen rows.")."""
    deletes = frozenset(deletes)
    emptied = last_unfrozen(props, rows, deletes)
    if emptied is None:
        return LastRowKept(deletes)
    return LastRowKept(
        deletes=deletes - {emptied},
        emptied=emptied,
        requests=(clear_row_request(props["sheetId"], emptied),),
        cells={(emptied, c): "" for c in range(len(rows[emptied - 1]))},
    )


def delete_rows_requests(sheet_id: int, rows: Iterable[int]) -> list[dict[str, Any]]:
    """batchUpdate requests deleting ``rows`` (1-based), the highest first: a deletion shifts
    the rows below it, never the ones above, so each index still names the row it was read as."""
    return [
        {
            "deleteDimension": {
                "range": {
                    "sheetId": sheet_id,
                    "dimension": "ROWS",
                    "startIndex": row - 1,
                    "endIndex": row,
                }
            }
        }
        for row in sorted(set(rows), reverse=True)
    ]


def trimmed(rows: Sequence[Sequence[Any]]) -> list[list[str]]:
    """Rows as ``values.batchGet`` gives them: cells as text, trailing empty cells and rows
    left out. Two reads of an unchanged sheet compare equal in this form."""
    out = [[("" if c is None else str(c)) for c in row] for row in rows]
    for row in out:
        while row and row[-1] == "":
            row.pop()
    while out and not out[-1]:
        out.pop()
    return out


def changed(
    rows: Sequence[Sequence[Any]],
    cells: dict[tuple[int, int], Any] | None = None,
    deletes: Iterable[int] = (),
) -> list[list[str]]:
    """What a sheet holds once a change is applied: ``cells`` ((row, column) -> value; row
    1-based, column 0-based; "" empties it) set, then the ``deletes`` rows (1-based) removed."""
    out = [list(row) for row in trimmed(rows)]
    for (row, column), value in (cells or {}).items():
        while len(out) < row:
            out.append([])
        cells_of = out[row - 1]
        while len(cells_of) <= column:
            cells_of.append("")
        cells_of[column] = "" if value is None else str(value)
    gone = set(deletes)
    return trimmed([row for number, row in enumerate(out, start=1) if number not in gone])
