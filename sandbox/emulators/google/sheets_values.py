"""Cells as the Sheets API reads and writes them: rendering, windows of a grid, input."""

from __future__ import annotations

import re
from typing import Any

from sandbox.emulators.google.a1 import A1Range, RangeError, format_a1, parse_a1
from sandbox.emulators.google.errors import GoogleError
from sandbox.emulators.google.state import DriveFile, Sheet

_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def is_empty(value: Any) -> bool:
    return value is None or value == ""


def render(value: Any, option: str) -> Any:
    """FORMATTED_VALUE is text as the cell shows it; UNFORMATTED_VALUE/FORMULA keep types."""
    if option != "FORMATTED_VALUE":
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def user_entered(value: Any) -> Any:
    """USER_ENTERED parses text the way typing into a cell does (numbers and booleans)."""
    if isinstance(value, str):
        if _NUMBER.match(value.strip()):
            number = float(value)
            return int(number) if number.is_integer() and "." not in value else number
        if value.upper() in ("TRUE", "FALSE"):
            return value.upper() == "TRUE"
    return value


def resolve(file: DriveFile, text: str) -> tuple[Sheet, A1Range]:
    """The sheet and range ``text`` names; 400 ``Unable to parse range`` as Sheets answers."""
    titles = {s.title for s in file.sheets}
    try:
        parsed = parse_a1(text, titles)
    except RangeError:
        raise GoogleError(400, f"Unable to parse range: {text}") from None
    if parsed.sheet is None:
        return file.sheets[0], parsed
    for sheet in file.sheets:
        if sheet.title == parsed.sheet:
            return sheet, parsed
    raise GoogleError(400, f"Unable to parse range: {text}")


def read_window(sheet: Sheet, rng: A1Range, major: str, option: str) -> tuple[str, list[list[Any]]]:
    """The returned range (clipped to the grid) and its values without trailing empties."""
    r0, r1, c0, c1 = rng.bounded(sheet.row_count, sheet.column_count)
    values: list[list[Any]] = []
    formatted = option == "FORMATTED_VALUE"
    for row in sheet.rows[r0:r1]:
        cells = row[c0:c1]
        end = len(cells)
        while end and is_empty(cells[end - 1]):
            end -= 1
        # Most cells are text already: only the others go through render().
        values.append(
            [
                v if type(v) is str and formatted else ("" if v is None else render(v, option))
                for v in cells[:end]
            ]
        )
    while values and not values[-1]:
        values.pop()
    if major == "COLUMNS":
        width = max((len(r) for r in values), default=0)
        columns = [[r[c] if c < len(r) else "" for r in values] for c in range(width)]
        for column in columns:
            while column and column[-1] == "":
                column.pop()
        values = columns
    return format_a1(sheet.title, r0, r1, c0, c1), values


def write_window(
    sheet: Sheet, rng: A1Range, values: list[list[Any]], major: str, input_option: str
) -> tuple[str, int, int, int]:
    """Write ``values`` from the range's top-left; (range written, rows, columns, cells)."""
    if major == "COLUMNS":
        width = max((len(c) for c in values), default=0)
        values = [[c[r] if r < len(c) else None for c in values] for r in range(width)]
    r0 = rng.start_row or 0
    c0 = rng.start_col or 0
    height = len(values)
    width = max((len(r) for r in values), default=0)
    limit_rows = rng.end_row if rng.end_row is not None else sheet.row_count
    limit_cols = rng.end_col if rng.end_col is not None else sheet.column_count
    if r0 + height > limit_rows or c0 + width > limit_cols:
        if rng.end_row is not None or rng.end_col is not None:
            within = format_a1(sheet.title, r0, limit_rows, c0, limit_cols)
            raise GoogleError(
                400,
                f"Requested writing within range [{within}], but tried writing to row "
                f"[{r0 + height}]",
            )
        raise GoogleError(
            400,
            f"Range ({format_a1(sheet.title, r0, r0 + height, c0, c0 + width)}) exceeds grid "
            f"limits. Max rows: {sheet.row_count}, max columns: {sheet.column_count}",
        )
    cells = 0
    for i, row_values in enumerate(values):
        index = r0 + i
        while len(sheet.rows) <= index:
            sheet.rows.append([])
        row = sheet.rows[index]
        for j, value in enumerate(row_values):
            if value is None:
                continue  # null leaves the cell as it is
            while len(row) <= c0 + j:
                row.append("")
            row[c0 + j] = user_entered(value) if input_option == "USER_ENTERED" else value
            cells += 1
    return (
        format_a1(sheet.title, r0, r0 + max(height, 1), c0, c0 + max(width, 1)),
        height,
        width,
        cells,
    )
