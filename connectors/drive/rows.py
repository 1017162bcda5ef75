"""From spreadsheet rows to Records: exact matching of the subject's identifiers in cells.

Matching is exact on normalised identifiers (``dsrflow.identifiers``). Normalising every cell
of a large sheet would be slow (e-mail validation, phone parsing), so a cheap test comes first
and never decides alone: an e-mail cell is only normalised if it contains one of the subject's
local parts (both in ``search_form``: NFC, lower-cased, so a capitalised or decomposed spelling
passes), a phone cell only if its characters without separators are one of the ways the
subject's numbers may be written. Only rows that match are looked at in full, for the other
people's identifiers that make a row shared (Art. 15(4)).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dateutil import parser as date_parser

from connectors.drive.mapping import Layout, emails_in
from dsrflow.identifiers import (
    PHONE_SEPARATORS,
    IdentifierKind,
    normalise_found,
    phone_spellings,
    search_form,
)
from dsrflow.records import Record, to_utc_iso
from dsrflow.request import Subject

PRETESTED = frozenset({IdentifierKind.EMAIL.value, IdentifierKind.PHONE.value})


def column_letter(index: int) -> str:
    letters, index = "", index + 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def headers_of(row: Sequence[Any]) -> list[str]:
    """Header texts; a column without one is named by its letter (``F``)."""
    return [str(h).strip() or column_letter(i) for i, h in enumerate(row)]


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


def digest(identifier: str) -> str:
    """A short fingerprint of ``kind:value``: what a plan carries to re-check a row later."""
    return hashlib.sha256(identifier.encode("utf-8")).hexdigest()[:16]


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


def content_digest(row: Sequence[Any]) -> str:
    """A short fingerprint of a whole row as read: the plan carries it, and a row is deleted
    only while it still holds exactly this (Sheets has no row version)."""
    cells = (trimmed([row]) or [[]])[0]
    return hashlib.sha256(json.dumps(cells).encode("utf-8")).hexdigest()[:16]


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


def _strip(text: str) -> str:
    for separator in PHONE_SEPARATORS:
        text = text.replace(separator, "")
    return text


@dataclass(frozen=True)
class Matcher:
    """The subject's identifiers, with the cheap pre-tests that keep big sheets fast."""

    identifiers: frozenset[str]  # "kind:value"
    needles: tuple[str, ...]  # "local-part@" of each of the subject's keys, in search_form
    phone_forms: frozenset[str]
    phone_region: str

    @classmethod
    def of(cls, subject: Subject, phone_region: str = "NO") -> Matcher:
        forms = {form for phone in subject.phones for form in phone_spellings(phone)}
        return cls(
            identifiers=frozenset(str(i) for i in subject.identifiers),
            needles=tuple(
                sorted({search_form(e.rpartition("@")[0]) + "@" for e in subject.emails})
            ),
            phone_forms=frozenset(forms),
            phone_region=phone_region,
        )

    def match(self, kind: str, raw: Any) -> str | None:
        """``kind:value`` if the cell holds one of the subject's identifiers, else None."""
        if raw is None or raw == "":
            return None
        text = str(raw)
        if kind == IdentifierKind.EMAIL:
            lowered = search_form(text)
            if not any(needle in lowered for needle in self.needles):
                return None
        elif kind == IdentifierKind.PHONE and _strip(text.strip()) not in self.phone_forms:
            return None
        value = normalise_found(kind, text, self.phone_region)
        found = f"{kind}:{value}" if value else None
        return found if found in self.identifiers else None

    def may_be_in(self, cells: Iterable[Any]) -> bool:
        """Whether any of ``cells`` could hold the subject's identifiers: one pass over their
        text, so the rows of the many sheets without her are never looked at one by one.
        Cells are joined with newlines, which no pre-test looks for."""
        blob = search_form("\n".join(c if type(c) is str else str(c) for c in cells))
        if any(needle in blob for needle in self.needles):
            return True
        if self.phone_forms:
            digits = _strip(blob)
            return any(form in digits for form in self.phone_forms)
        return False

    def scan(self, raw: Any) -> str | None:
        """A whole cell that is one of the identifiers, or an address inside free text."""
        whole = self.match(IdentifierKind.EMAIL, raw) or self.match(IdentifierKind.PHONE, raw)
        if whole or not isinstance(raw, str) or " " not in raw.strip():
            return whole
        return next(
            (m for m in (self.match(IdentifierKind.EMAIL, c) for c in emails_in(raw)) if m), None
        )


def holds(layout: Layout, headers: Sequence[str], row: Sequence[Any], region: str) -> set[str]:
    """Digests of the identifiers a row holds (for the guard before a change)."""
    return {digest(i) for _, i in layout.identifiers_in(headers, row, region)}


@dataclass(frozen=True)
class SheetRef:
    spreadsheet_id: str
    spreadsheet: str
    sheet_id: int
    sheet: str

    @property
    def location(self) -> str:
        return f"{self.spreadsheet} / {self.sheet}"


class SheetReader:
    """Reads the rows of one sheet under one layout; what depends on the header only (which
    columns identify, their categories) is worked out once, not per row."""

    def __init__(
        self, source: str, ref: SheetRef, headers: Sequence[str], layout: Layout, matcher: Matcher
    ) -> None:
        self.source = source
        self.ref = ref
        self.headers = list(headers)
        self.layout = layout
        self.matcher = matcher
        self.identity_columns = [
            (col, identity.kind)
            for col, header in enumerate(self.headers)
            if (identity := layout.identity_of(header))
        ]
        self.categories = {h: layout.category_of(h) for h in self.headers}
        self.timestamp_headers = {h for h in self.headers if layout.is_timestamp(h)}

    def records(self, rows: Sequence[Sequence[Any]], first_row: int = 2) -> Iterator[Record]:
        """The Records among ``rows`` (the sheet without its header, row ``first_row`` on)."""
        if self.layout.scan:
            cells: Iterable[Any] = (c for row in rows for c in row)
        else:
            cells = (row[c] for row in rows for c, _ in self.identity_columns if c < len(row))
        # The pre-test knows e-mail addresses and phone numbers; other kinds (an account id
        # column) are compared row by row.
        pretest = all(kind in PRETESTED for _, kind in self.identity_columns)
        if pretest and not self.matcher.may_be_in(cells):
            return
        for number, row in enumerate(rows, start=first_row):
            record = self.record(number, row)
            if record is not None:
                yield record

    def matches(self, row: Sequence[Any]) -> set[str]:
        found: set[str] = set()
        match = self.matcher.match
        if self.layout.scan:
            for raw in row[: len(self.headers)]:
                hit = self.matcher.scan(raw)
                if hit:
                    found.add(hit)
            return found
        for col, kind in self.identity_columns:
            if col < len(row):
                hit = match(kind, row[col])
                if hit:
                    found.add(hit)
        return found

    def record(self, row_number: int, row: Sequence[Any]) -> Record | None:
        """The row as a Record if it holds the subject's identifiers; ``row_number`` is 1-based."""
        matched = self.matches(row)
        if not matched:
            return None
        headers = self.headers
        others = {
            col
            for col, found in self.layout.identifiers_in(headers, row, self.matcher.phone_region)
            if found not in self.matcher.identifiers
        }
        fields = {
            headers[c]: v for c, v in enumerate(row) if c < len(headers) and v not in ("", None)
        }
        timestamps = {
            h: stamp
            for h in self.timestamp_headers
            if h in fields and (stamp := _timestamp(fields[h]))
        }
        ref = self.ref
        return Record(
            source=self.source,
            location=ref.location,
            native_id={
                "spreadsheet_id": ref.spreadsheet_id,
                "spreadsheet": ref.spreadsheet,
                "sheet_id": ref.sheet_id,
                "sheet": ref.sheet,
                "row": row_number,
                "holds": "+".join(sorted(digest(m) for m in matched)),
                "content": content_digest(row),
            },
            # Every column of the sheet, filled or not: the plan finds the same layout from them.
            categories=dict(self.categories),
            fields=fields,
            matched=tuple(sorted(matched)),
            timestamps=timestamps,
            shared=bool(others),
            shared_with=tuple(sorted({headers[c] for c in others})),
        )


def _timestamp(value: Any) -> str | None:
    try:
        parsed = date_parser.parse(str(value))
    except (ValueError, OverflowError):
        return None
    if parsed.tzinfo is None and parsed.time() == dt.time() and ":" not in str(value):
        return parsed.date().isoformat()  # a date without a time stays a date
    return to_utc_iso(parsed)
