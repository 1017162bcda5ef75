"""A1 notation, as the Sheets API reads it: ``'My Sheet'!A1:F``, ``Sheet1!B:B``, ``2:5``, ``A3``.

A sheet title is quoted with single quotes when it holds anything but letters, digits and
underscores; a quote inside a quoted title is doubled (``'Kari''s list'``). Open ends (``A1:F``,
``A:A``) run to the edge of the sheet's grid. Indices here are 0-based and end-exclusive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CELL = re.compile(r"^([A-Za-z]*)([0-9]*)$")
_PLAIN_TITLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CELL_LIKE = re.compile(r"^[A-Za-z]{1,3}[0-9]+$")


class RangeError(ValueError):
    """Text that is not an A1 range."""


@dataclass(frozen=True)
class A1Range:
    """A parsed range: ``sheet`` None means the first sheet; None bounds are open."""

    sheet: str | None
    start_row: int | None = None
    end_row: int | None = None
    start_col: int | None = None
    end_col: int | None = None

    def bounded(self, rows: int, cols: int) -> tuple[int, int, int, int]:
        """(row0, row1, col0, col1) clipped to a grid of ``rows`` x ``cols``."""
        r0 = self.start_row or 0
        c0 = self.start_col or 0
        r1 = rows if self.end_row is None else min(self.end_row, rows)
        c1 = cols if self.end_col is None else min(self.end_col, cols)
        return r0, max(r0, r1), c0, max(c0, c1)


def column_index(letters: str) -> int:
    index = 0
    for char in letters.upper():
        index = index * 26 + (ord(char) - ord("A") + 1)
    return index - 1


def column_letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def quote_title(title: str) -> str:
    """Titles that could be read as something else (spaces, ``!``, a cell like ``AB12``) are
    quoted, as Sheets does in the ranges it returns."""
    if _PLAIN_TITLE.match(title) and not _CELL_LIKE.match(title):
        return title
    return "'" + title.replace("'", "''") + "'"


def _split_sheet(text: str) -> tuple[str | None, str]:
    if text.startswith("'"):
        i, title = 1, []
        while i < len(text):
            if text[i] == "'":
                if text[i + 1 : i + 2] == "'":
                    title.append("'")
                    i += 2
                    continue
                rest = text[i + 1 :]
                if rest and (not rest.startswith("!") or rest == "!"):
                    raise RangeError(text)
                return "".join(title), rest[1:] if rest else ""
            title.append(text[i])
            i += 1
        raise RangeError(text)
    if "!" in text:
        title, _, cells = text.rpartition("!")
        if not title or not cells:
            raise RangeError(text)
        return title, cells
    return None, text


def _parse_cell(text: str) -> tuple[int | None, int | None]:
    match = _CELL.match(text)
    if not match or not text:
        raise RangeError(text)
    letters, digits = match.groups()
    col = column_index(letters) if letters else None
    row = int(digits) - 1 if digits else None
    if row is not None and row < 0:
        raise RangeError(text)
    return row, col


def parse_a1(text: str, known_titles: set[str] | None = None) -> A1Range:
    """Parse ``text``; a bare word that names a sheet in ``known_titles`` is that whole sheet."""
    text = text.strip()
    if not text:
        raise RangeError(text)
    if known_titles is not None and text in known_titles:
        return A1Range(sheet=text)
    sheet, cells = _split_sheet(text)
    if not cells:
        if sheet is None:
            raise RangeError(text)
        return A1Range(sheet=sheet)
    start, _, end = cells.partition(":")
    r0, c0 = _parse_cell(start)
    if not end:
        if r0 is None or c0 is None:
            raise RangeError(text)  # "A" or "5" alone is not a range
        return A1Range(sheet, r0, r0 + 1, c0, c0 + 1)
    r1, c1 = _parse_cell(end)
    # "A:C" spans whole columns, "2:4" whole rows, "A2:C" runs to the last row.
    if (c0 is None) != (c1 is None):
        raise RangeError(text)
    start_row = r0 if r0 is not None else None
    end_row = r1 + 1 if r1 is not None else None
    start_col = c0
    end_col = c1 + 1 if c1 is not None else None
    if start_row is not None and end_row is not None and end_row <= start_row:
        start_row, end_row = end_row - 1, start_row + 1
    if start_col is not None and end_col is not None and end_col <= start_col:
        start_col, end_col = end_col - 1, start_col + 1
    return A1Range(sheet, start_row, end_row, start_col, end_col)


def format_a1(title: str, r0: int, r1: int, c0: int, c1: int) -> str:
    """``'My Sheet'!A1:F20`` for 0-based, end-exclusive bounds."""
    start = f"{column_letters(c0)}{r0 + 1}"
    end = f"{column_letters(max(c0, c1 - 1))}{max(r0, r1 - 1) + 1}"
    cells = start if start == end else f"{start}:{end}"
    return f"{quote_title(title)}!{cells}"
