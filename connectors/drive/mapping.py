"""The mapping of Google Drive spreadsheets: which spreadsheets to read and how to read a sheet.

A sheet's first row is its header. ``layouts`` say, per spreadsheet-name pattern and/or by the
headers a sheet has, which columns identify a person (``identities``) and what category the other
columns are; a layout with ``scan: true`` instead looks for the subject's identifiers in every
cell (the generic mode for sheets nobody has described). The first layout that fits a sheet
applies; a sheet no layout fits is not read further.

```yaml
kind: drive
folders: [{name: Analytics}, {id: 1AbC...}]       # spreadsheets directly in these folders
spreadsheets: [{name: Renewals 2026}]            # and these, wherever they are
full_text_search: true      # also Drive's fullText search for the subject (a pre-filter only)
layouts:
  - spreadsheet_name: "Trial sign-ups*"          # glob, case-insensitive; optional
    identities:
      - {headers: [Email, E-mail], kind: email}  # header texts, case and spaces ignored
    columns: {Name: {category: user.name}}
    default_category: user.behavior
    timestamp_columns: [Signed up]
    erasure: delete_rows                         # delete_rows | clear_cells
    retention:                                   # optional: rows older than this go
      max_age: {years: 2}                        # years / months / days
      counts_from: Signed up                     # one of timestamp_columns
      action: delete_rows                        # delete_rows | clear_identity; default:
                                                 # as erasure (clear_cells: clear_identity)
  - scan: true                                   # anything else: scan every cell
    default_category: user
```
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any, Literal

from dateutil import parser as date_parser
from pydantic import Field, model_validator

from dsrflow.identifiers import IdentifierKind, IdentifierKindName, normalise_found
from dsrflow.mapping.common import (
    BaseMapping,
    DataCategory,
    Duration,
    LegalBasis,
    LegalHold,
    Strict,
    plan_action,
    shared_reason,
)
from dsrflow.plan import Action, PlannedAction
from dsrflow.records import Record

CLEARED = "clear"  # what a redact action names for a cell that is emptied
# Address-like words in free text: everything up to whitespace or punctuation that cannot be
# part of an unquoted address, so "xkari@…" or "kari@example.com.evil.org" stay whole words.
_EMAILISH = re.compile(r"[^\s<>()\[\],;:\"']+@[^\s<>()\[\],;:\"']+")


def emails_in(text: str) -> list[str]:
    return [m.rstrip(".") for m in _EMAILISH.findall(text)]


def header_key(text: str) -> str:
    """Headers are compared without case and spaces: ``E-mail address`` = ``e-mail Address``."""
    return "".join(str(text).split()).casefold()


class DriveIdentity(Strict):
    """A column holding one of a person's identifiers, recognised by its header."""

    headers: list[str] = Field(min_length=1, description="header texts that name this column")
    kind: IdentifierKindName
    category: DataCategory | None = Field(
        default=None, description="category of the column; default user.contact.<kind>"
    )

    @property
    def column_category(self) -> str:
        return self.category or f"user.contact.{self.kind}"


class DriveColumn(Strict):
    category: DataCategory


RetentionAction = Literal["delete_rows", "clear_identity"]


class SheetErasure(StrEnum):
    DELETE_ROWS = "delete_rows"  # the subject's rows go (deleteDimension, bottom up)
    CLEAR_CELLS = "clear_cells"  # the row stays; its identifying and user.* cells are emptied


class SheetRetention(Strict):
    """How long a layout's rows may live (Art. 5(1)(e)); the retention sweep applies it.

    A row whose ``counts_from`` date is older than ``max_age`` goes (``delete_rows``) or keeps
    only what does not identify anyone (``clear_identity``). A row whose date cannot be read,
    or reads as dates on both sides of the cutoff (day/month order), is left and reported."""

    max_age: Duration = Field(description="how long after its counts_from date a row may live")
    counts_from: str = Field(
        description="header of the date column the age counts from; one of timestamp_columns"
    )
    action: RetentionAction | None = Field(
        default=None,
        description=(
            "what happens to an old row: delete_rows, or clear_identity (its identifying and "
            "user.* cells are emptied, its dates stay); default: delete_rows for a layout with "
            "erasure delete_rows, clear_identity for clear_cells"
        ),
    )

    def describe(self, default: RetentionAction) -> str:
        """``delete_rows after 2 years from Day``: the rule as the sweep reports it."""
        return f"{self.action or default} after {self.max_age.in_words()} from {self.counts_from}"


class Layout(Strict):
    description: str | None = None
    spreadsheet_name: str | None = Field(
        default=None, description="glob on the spreadsheet's name (case-insensitive)"
    )
    sheet_title: str | None = Field(default=None, description="glob on the sheet's title")
    identities: list[DriveIdentity] = Field(default_factory=list)
    scan: bool = Field(
        default=False, description="look for the subject's e-mail/phone in every cell"
    )
    columns: dict[str, DriveColumn] = Field(
        default_factory=dict, description="header -> category of the other columns"
    )
    default_category: DataCategory = Field(
        default="user", description="the category of columns not listed"
    )
    timestamp_columns: list[str] = Field(
        default_factory=list, description="headers of columns holding dates and times"
    )
    collected_from: str = Field(
        default="the data subject", description="Art. 15(1)(g): where the data came from"
    )
    erasure: SheetErasure = SheetErasure.DELETE_ROWS
    legal_hold: LegalHold | None = None
    retention: SheetRetention | None = Field(
        default=None,
        description="how long rows may live: the retention sweep removes older ones",
    )

    @model_validator(mode="after")
    def _finds_someone(self) -> Layout:
        if not self.identities and not self.scan:
            raise ValueError("a layout needs identities or scan: true")
        return self

    @model_validator(mode="after")
    def _retention_counts_from_a_date(self) -> Layout:
        # The sweep only reads dates from columns the layout declares as dates.
        if self.retention and not self.is_timestamp(self.retention.counts_from):
            declared = ", ".join(self.timestamp_columns) or "none"
            raise ValueError(
                f"retention.counts_from: {self.retention.counts_from!r} is not one of the "
                f"layout's timestamp_columns ({declared})"
            )
        return self

    @property
    def retention_action(self) -> RetentionAction:
        """What the retention sweep does to an old row: as said, else as erasure would."""
        if self.retention and self.retention.action:
            return self.retention.action
        return "delete_rows" if self.erasure == SheetErasure.DELETE_ROWS else "clear_identity"

    def is_personal(self, header: str) -> bool:
        """Whether a column says something about a person: an identity or a ``user.*`` one."""
        return bool(self.identity_of(header)) or self.category_of(header).split(".")[0] == "user"

    def names_fit(self, spreadsheet: str, sheet: str) -> bool:
        """Whether the name patterns (if any) accept this spreadsheet and sheet."""
        if self.spreadsheet_name and not fnmatch.fnmatch(
            spreadsheet.casefold(), self.spreadsheet_name.casefold()
        ):
            return False
        return not self.sheet_title or fnmatch.fnmatch(
            sheet.casefold(), self.sheet_title.casefold()
        )

    def fits(self, spreadsheet: str, sheet: str, headers: Iterable[str]) -> bool:
        if not self.names_fit(spreadsheet, sheet):
            return False
        if self.scan:
            return True
        present = {header_key(h) for h in headers}
        return any(header_key(h) in present for i in self.identities for h in i.headers)

    def identity_of(self, header: str) -> DriveIdentity | None:
        key = header_key(header)
        return next(
            (i for i in self.identities if any(header_key(h) == key for h in i.headers)), None
        )

    def category_of(self, header: str) -> str:
        identity = self.identity_of(header)
        if identity:
            return identity.column_category
        key = header_key(header)
        for name, column in self.columns.items():
            if header_key(name) == key:
                return column.category
        return self.default_category

    def is_timestamp(self, header: str) -> bool:
        return header_key(header) in {header_key(h) for h in self.timestamp_columns}

    def identifiers_in(
        self, headers: Sequence[str], row: Sequence[Any], phone_region: str = "NO"
    ) -> list[tuple[int, str]]:
        """Every identifier in a row, anyone's: (column, ``kind:value``), exactly normalised.

        Identity columns hold one identifier each; a ``scan`` layout looks at every cell, and
        at every address inside free text.
        """
        found: list[tuple[int, str]] = []
        for col, raw in enumerate(row):
            if raw is None or raw == "" or col >= len(headers):
                continue
            text = str(raw)
            if self.scan:
                candidates = [(IdentifierKind.EMAIL.value, w) for w in emails_in(text)]
                if sum(c.isdigit() for c in text) >= 5:
                    candidates.append((IdentifierKind.PHONE.value, text))
            else:
                identity = self.identity_of(headers[col])
                candidates = [(identity.kind, text)] if identity else []
            for kind, candidate in candidates:
                value = normalise_found(kind, candidate, phone_region)
                if value:
                    found.append((col, f"{kind}:{value}"))
        return found

    def hold_until(self, fields: dict[str, Any]) -> dt.date | None:
        """When a row under this layout's legal hold may go; None without a hold. A row whose
        date cannot be read is kept: its hold ends on ``date.max``."""
        if self.legal_hold is None:
            return None
        wanted = header_key(self.legal_hold.counts_from)
        value = next((v for h, v in fields.items() if header_key(h) == wanted), None)
        try:
            start = date_parser.parse(str(value)).date() if value not in (None, "") else None
        except (ValueError, OverflowError):
            start = None
        return self.legal_hold.ends_on(start) if start else dt.date.max


class FolderRef(Strict):
    id: str | None = Field(default=None, description="the folder's Drive id")
    name: str | None = Field(default=None, description="the folder's name (every folder so named)")

    @model_validator(mode="after")
    def _one(self) -> FolderRef:
        if bool(self.id) == bool(self.name):
            raise ValueError("give exactly one of id and name")
        return self


class SpreadsheetRef(FolderRef):
    """A spreadsheet by id or by exact name, wherever it sits."""


class DriveMapping(BaseMapping):
    kind: Literal["drive"]
    folders: list[FolderRef] = Field(default_factory=list)
    spreadsheets: list[SpreadsheetRef] = Field(default_factory=list)
    full_text_search: bool = Field(
        default=False,
        description="also read spreadsheets that Drive's full-text search finds for the subject",
    )
    layouts: list[Layout] = Field(min_length=1)

    @model_validator(mode="after")
    def _cross_check(self) -> DriveMapping:
        problems: list[str] = []
        if not (self.folders or self.spreadsheets or self.full_text_search):
            problems.append("folders: name folders or spreadsheets, or set full_text_search")
        for n, layout in enumerate(self.layouts):
            used = [("default_category", layout.default_category)]
            used += [(f"columns.{h}.category", c.category) for h, c in layout.columns.items()]
            used += [
                (f"identities.{i}.category", x.column_category)
                for i, x in enumerate(layout.identities)
            ]
            problems += [
                f"layouts.{n}.{where}: {category!r} is not declared under categories "
                "(nor is any parent of it)"
                for where, category in used
                if not self.declares(category)
            ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def layout_for(self, spreadsheet: str, sheet: str, headers: Iterable[str]) -> Layout | None:
        headers = list(headers)
        return next((lay for lay in self.layouts if lay.fits(spreadsheet, sheet, headers)), None)

    def layout_of(self, record: Record) -> Layout | None:
        """The layout a discovered row was read with (its categories list every header)."""
        native = record.native_id
        return self.layout_for(native["spreadsheet"], native["sheet"], record.categories)

    def plan_erasure(self, record: Record, today: dt.date) -> PlannedAction:
        """A legal hold not yet run out keeps the row (with the date it ends). Otherwise
        ``delete_rows`` deletes it, unless it also holds someone else's identifier (shared,
        Art. 15(4)): then only the cells with the subject's identifiers are cleared.
        ``clear_cells`` empties the identity and ``user.*`` cells."""
        layout = self.layout_of(record)
        if layout is None:
            return plan_action(record, Action.KEEP, reason="no layout of the mapping fits it now")
        until = layout.hold_until(record.fields)
        if until is not None and until > today:
            assert layout.legal_hold is not None
            return plan_action(
                record,
                Action.KEEP,
                reason=layout.legal_hold.reason,
                keep_until=None if until == dt.date.max else until,
            )
        if record.shared:
            headers = list(record.categories)
            row = [record.fields.get(h, "") for h in headers]
            own = dict.fromkeys(
                headers[c] for c, i in layout.identifiers_in(headers, row) if i in record.matched
            )
            if own:
                return plan_action(
                    record,
                    Action.REDACT,
                    fields=dict.fromkeys(own, CLEARED),
                    reason=shared_reason(record),
                )
            return plan_action(record, Action.KEEP, reason=shared_reason(record))
        if layout.erasure == SheetErasure.DELETE_ROWS:
            return plan_action(record, Action.DELETE)
        personal = [
            h
            for h in record.fields
            if layout.identity_of(h) or layout.category_of(h).split(".")[0] == "user"
        ]
        return plan_action(record, Action.REDACT, fields=dict.fromkeys(personal, CLEARED))

    def plan_rectification(
        self, record: Record, corrections: dict[str, str]
    ) -> PlannedAction | None:
        """Set every cell of a corrected category (``user.name`` -> the new value)."""
        layout = self.layout_of(record)
        if layout is None:
            return None
        changes = {
            header: corrections[category]
            for header in record.categories
            if (category := layout.category_of(header)) in corrections
            and record.fields.get(header, "") != corrections[category]
        }
        return plan_action(record, Action.RECTIFY, fields=changes) if changes else None

    def plan_consent_withdrawal(
        self, record: Record, purposes: set[str], now: dt.datetime
    ) -> PlannedAction | None:
        """Erase the cells whose only legal basis was a withdrawn consent; the whole row (or all
        its personal cells, for ``clear_cells``) when nothing else of the person is left."""
        layout = self.layout_of(record)
        if layout is None:
            return None

        def withdrawn(header: str) -> bool:
            use = self.use_of(layout.category_of(header))
            return bool(
                use and use.legal_basis == LegalBasis.CONSENT and use.consent_purpose in purposes
            )

        gone = [h for h in record.fields if withdrawn(h)]
        if not gone:
            return None
        rest = [
            h
            for h in record.fields
            if h not in gone
            and not layout.identity_of(h)
            and layout.category_of(h).split(".")[0] == "user"
        ]
        if not rest and not record.shared and layout.erasure == SheetErasure.DELETE_ROWS:
            return plan_action(record, Action.DELETE, reason="consent withdrawn")
        return plan_action(
            record, Action.REDACT, fields=dict.fromkeys(gone, CLEARED), reason="consent withdrawn"
        )

    def lookup_kinds(self) -> frozenset[str]:
        """The kinds of the layouts' identity columns; a scanning layout reads addresses and
        phone numbers in any cell."""
        kinds = {i.kind for layout in self.layouts for i in layout.identities}
        if any(layout.scan for layout in self.layouts):
            kinds |= {IdentifierKind.EMAIL.value, IdentifierKind.PHONE.value}
        return frozenset(kinds)

    def collected_from(self, location: str) -> str:
        """Art. 15(1)(g) for ``location`` ("spreadsheet / sheet"): the first layout by name."""
        spreadsheet, _, sheet = location.partition(" / ")
        for layout in self.layouts:
            if layout.names_fit(spreadsheet, sheet):
                return layout.collected_from
        return super().collected_from(location)
