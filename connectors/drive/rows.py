"""From spreadsheet rows to Records: exact matching of the subject's identifiers in cells.

Matching is exact on normalised identifiers (``dsrflow.identifiers``). Normalising every cell
of a large sheet would be slow (e-mail validation, phone parsing), so a cheap test comes first
and never decides alone: an e-mail cell is only normalised if it contains one of the subject's
local parts (both in ``search_form``: NFC, lower-cased, so a capitalised or decomposed spelling
passes), a phone cell only if its characters without separators are one of the ways the
subject's numbers may be written. Only rows that match are looked at in full, for the other
people's identifiers that make a row shared (Art. 15(4)) and are masked in its record: an
identity cell whole, any other text cell (a note) for the addresses and phone numbers written
in it, by the one rule of ``connectors.third_parties`` (the controller's own stay in clear).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dateutil import parser as date_parser

from connectors.drive.edits import trimmed
from connectors.drive.mapping import Layout, emails_in
from connectors.third_parties import SourceContext, ThirdParties, Whose
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


def digest(identifier: str) -> str:
    """A short fingerprint of ``kind:value``: what a plan carries to re-check a row later."""
    return hashlib.sha256(identifier.encode("utf-8")).hexdigest()[:16]


def content_digest(row: Sequence[Any]) -> str:
    """A short fingerprint of a whole row as read: the plan carries it, and a row is deleted
    only while it still holds exactly this (Sheets has no row version)."""
    cells = (trimmed([row]) or [[]])[0]
    return hashlib.sha256(json.dumps(cells).encode("utf-8")).hexdigest()[:16]


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
    others: ThirdParties

    @classmethod
    def of(cls, subject: Subject, context: SourceContext | None = None) -> Matcher:
        context = context or SourceContext()
        forms = {form for phone in subject.phones for form in phone_spellings(phone)}
        return cls(
            identifiers=frozenset(str(i) for i in subject.identifiers),
            needles=tuple(
                sorted({search_form(e.rpartition("@")[0]) + "@" for e in subject.emails})
            ),
            phone_forms=frozenset(forms),
            phone_region=context.phone_region,
            others=context.third_parties(subject),
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
        others: set[int] = set()
        fields: dict[str, Any] = {}
        for col, value in enumerate(row[: len(headers)]):
            if value in ("", None):
                continue
            shown, someone_else = self._cell(col, value)
            fields[headers[col]] = shown
            if someone_else:
                others.add(col)
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

    def _cell(self, col: int, value: Any) -> tuple[Any, bool]:
        """The cell as the record shows it, and whether it names someone else (Art. 15(4))."""
        rule = self.matcher.others
        identity = None if self.layout.scan else self.layout.identity_of(self.headers[col])
        if identity is None:
            if isinstance(value, str) and rule.others_in(value):
                return rule.mask(value), True
            return value, False
        if identity.kind == IdentifierKind.EMAIL:
            whose = rule.whose_address(value)
        elif identity.kind == IdentifierKind.PHONE:
            whose = rule.whose_phone(value)
        else:  # an account id or the like: anyone's but the subject's is someone else's
            found = normalise_found(identity.kind, value, self.matcher.phone_region)
            whose = (
                Whose.SUBJECT if f"{identity.kind}:{found}" in self.matcher.identifiers else None
            )
            whose = whose or (Whose.OTHER if found else None)
        return rule.masked_cell(identity.kind, value), whose == Whose.OTHER


def _timestamp(value: Any) -> str | None:
    try:
        parsed = date_parser.parse(str(value))
    except (ValueError, OverflowError):
        return None
    if parsed.tzinfo is None and parsed.time() == dt.time() and ":" not in str(value):
        return parsed.date().isoformat()  # a date without a time stays a date
    return to_utc_iso(parsed)
