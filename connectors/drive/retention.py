"""Retention for Google Drive spreadsheets: rows older than their layout's ``retention.max_age``
are deleted (or have their identifying cells emptied), as the mapping says.

Which spreadsheets: those in the mapping's folders and the named ones (no full-text search:
there is no subject). Only spreadsheets whose name fits a layout with a retention rule are read,
one at a time, with the reads discovery uses (``spreadsheets.get`` + one ``values.batchGet``);
the first layout that fits a sheet decides, exactly as in discovery.

Dates: the ``counts_from`` cell is read as Sheets renders it (FORMATTED_VALUE): ISO 8601 text,
other date texts (``03/04/2024``, ``4 March 2024``) or a date serial number (days since
1899-12-30, what an unformatted date cell shows). A date without a time counts as the end of
its day, so a row only goes once all of its day is past the cutoff. A row goes only if every
plausible reading of its date is past the cutoff: a text whose day/month order decides which
side of the cutoff it is on, a partial date (``June 2024``, a bare year) or no date at all
leaves the row where it is, counted in the result's notes. Naive times are taken as UTC, as
discovery does.

Protected rows (restricted subjects' records) stay: a row is protected if it is one of their
records' rows or holds one of the identifiers those records matched (the fingerprints in
``native_id.holds``), so a row that moved since discovery is still recognised.

Changes: one ``spreadsheets.batchUpdate`` per sheet, ``deleteDimension`` from the bottom up (or
``repeatCell`` clears, which move nothing), built by the same helpers as erasure. As with
erasure, Sheets has no conditional write: the window between the read and the batchUpdate is
one round trip. The batchUpdate is sent once; if its answer is lost, the sheet is read again and
compared with what it held before and what the change makes of it
(``Sheets.send_change``): never sent again blindly, which would delete the rows that
moved up. A rerun finds nothing more to do: deleted rows are gone, cleared rows have no
identifying cells left.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from dateutil import parser as date_parser

from connectors.base import SourceUnavailable, SweepResult
from connectors.drive.edits import (
    EMPTIED,
    changed,
    clear_cells_request,
    delete_rows_requests,
    keep_last_unfrozen,
)
from connectors.drive.listing import Listing
from connectors.drive.mapping import DriveMapping, Layout, header_key
from connectors.drive.operations import MappedSheet, Sheets, mapped
from connectors.drive.rows import SheetRef, holds
from dsrflow.plan import Outcome
from dsrflow.records import Record, to_utc_iso
from dsrflow.request import Subject

SERIAL_EPOCH = dt.datetime(1899, 12, 30, tzinfo=dt.UTC)  # day 0 of Sheets' date serials
MAX_SERIAL = 2958465  # 9999-12-31
_SERIAL = re.compile(r"^\d+(\.\d+)?$")
_BARE_YEAR = re.compile(r"^\d{4}$")
# dateutil fills what a text leaves out from a default date: two different defaults that give
# two different answers show the text was not a whole date.
_DEFAULTS = (dt.datetime(2001, 1, 1), dt.datetime(2002, 2, 2))

Age = Literal["old", "young", "unreadable", "ambiguous"]


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _span_end(moment: dt.datetime, has_time: bool) -> dt.datetime:
    """A date alone names a whole day: it ends at the next midnight."""
    return _aware(moment) if has_time else _aware(moment) + dt.timedelta(days=1)


def _from_serial(text: str) -> dt.datetime | None:
    serial = float(text)
    if not 0 < serial <= MAX_SERIAL:
        return None
    return _span_end(SERIAL_EPOCH + dt.timedelta(days=serial), has_time="." in text)


def _from_text(text: str) -> set[dt.datetime] | None:
    readings: set[dt.datetime] = set()
    for dayfirst in (False, True):
        try:
            parsed = {date_parser.parse(text, dayfirst=dayfirst, default=d) for d in _DEFAULTS}
        except (ValueError, OverflowError):
            return None
        if len(parsed) != 1:
            return None  # a partial date: part of it came from the defaults
        moment = parsed.pop()
        has_time = ":" in text or moment.time() != dt.time()
        readings.add(_span_end(moment, has_time))
    return readings


def readings(value: Any) -> set[dt.datetime] | None:
    """Every instant a date cell may mean (the end of the span it names); None if unreadable."""
    text = "" if value is None else str(value).strip()
    if not text or _BARE_YEAR.match(text):
        return None
    try:
        # ISO 8601 says which part is the month; dateutil's dayfirst would swap it.
        iso = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    else:
        return {_span_end(iso, has_time="T" in text or ":" in text)}
    if _SERIAL.match(text):
        moment = _from_serial(text)
        return {moment} if moment else None
    return _from_text(text)


def age_of(value: Any, cutoff: dt.datetime) -> Age:
    """Whether a date cell is past ``cutoff`` on every reading, on none, or can't be told."""
    found = readings(value)
    if not found:
        return "unreadable"
    if all(moment < cutoff for moment in found):
        return "old"
    if all(moment >= cutoff for moment in found):
        return "young"
    return "ambiguous"


@dataclass(frozen=True)
class Protection:
    """Restricted subjects' rows: by where they were found, and by what they hold."""

    rows: frozenset[tuple[str, int, int]]  # (spreadsheet id, sheet id, row)
    digests: frozenset[str]

    @classmethod
    def of(cls, records: Sequence[Record], source: str) -> Protection:
        mine = [r.native_id for r in records if r.source == source]
        return cls(
            rows=frozenset(
                (str(n["spreadsheet_id"]), int(n["sheet_id"]), int(n["row"])) for n in mine
            ),
            digests=frozenset(d for n in mine for d in str(n.get("holds", "")).split("+") if d),
        )

    def covers(self, ref: SheetRef, row: int, held: set[str]) -> bool:
        return (ref.spreadsheet_id, ref.sheet_id, row) in self.rows or bool(held & self.digests)


@dataclass
class Picked:
    """What a rule finds in one sheet: the rows to change, and the ones it leaves."""

    rows: list[int] = field(default_factory=list)  # 1-based
    protected: int = 0
    unreadable: list[int] = field(default_factory=list)
    ambiguous: list[int] = field(default_factory=list)


def _filled(value: Any) -> bool:
    return value not in ("", None)


def _cell(row: Sequence[Any], column: int) -> Any:
    return row[column] if column < len(row) else ""


class SheetSweep:
    """One rule applied to one sheet: what depends on the header is worked out once."""

    def __init__(
        self,
        ref: SheetRef,
        headers: list[str],
        layout: Layout,
        protection: Protection,
        phone_region: str,
    ) -> None:
        assert layout.retention is not None
        self.ref = ref
        self.headers = headers
        self.layout = layout
        self.rule = layout.retention
        self.action = layout.retention_action
        self.protection = protection
        self.phone_region = phone_region
        wanted = header_key(self.rule.counts_from)
        self.date_column = next((c for c, h in enumerate(headers) if header_key(h) == wanted), None)
        # clear_identity keeps the dates: the row stays countable, and a rerun sees its age.
        self.personal = [
            c for c, h in enumerate(headers) if layout.is_personal(h) and not layout.is_timestamp(h)
        ]

    def pick(self, rows: Sequence[Sequence[Any]], cutoff: dt.datetime) -> Picked:
        picked = Picked()
        assert self.date_column is not None
        for number, row in enumerate(rows[1:], start=2):
            if not self._to_do(row):
                continue
            age = age_of(_cell(row, self.date_column), cutoff)
            if age == "unreadable":
                picked.unreadable.append(number)
            elif age == "ambiguous":
                picked.ambiguous.append(number)
            elif age == "old":
                held = holds(self.layout, self.headers, row, self.phone_region)
                if self.protection.covers(self.ref, number, held):
                    picked.protected += 1
                else:
                    picked.rows.append(number)
        return picked

    def _to_do(self, row: Sequence[Any]) -> bool:
        """Blank rows, and rows whose identifying cells are already empty, need nothing."""
        if self.action == "clear_identity":
            return any(_filled(_cell(row, c)) for c in self.personal)
        return any(_filled(v) for v in row)

    def change(
        self, props: dict[str, Any], rows: Sequence[Sequence[Any]], numbers: list[int]
    ) -> SheetChange:
        """The batchUpdate requests that apply the rule to rows ``numbers`` (1-based)."""
        sheet_id = self.ref.sheet_id
        if self.action == "delete_rows":
            # Sheets refuses to delete every row below the frozen ones: that one is emptied.
            last = keep_last_unfrozen(props, rows, numbers)
            return SheetChange(
                after=changed(rows, last.cells, deletes=last.deletes),
                requests=list(last.requests) + delete_rows_requests(sheet_id, last.deletes),
                emptied=last.emptied,
            )
        return SheetChange(
            after=changed(rows, {(n, c): "" for n in numbers for c in self.personal}),
            requests=[
                clear_cells_request(sheet_id, n, c)
                for n in numbers
                for c in self.personal
                if _filled(_cell(rows[n - 1], c))
            ],
        )


@dataclass(frozen=True)
class SheetChange:
    """What one sheet's batchUpdate sends, and what the sheet holds once it is applied."""

    after: list[list[str]]
    requests: list[dict[str, Any]]
    emptied: int | None = None  # the row emptied rather than deleted (``keep_last_unfrozen``)


def notes_of(picked: Picked, column: str) -> list[str]:
    """Counts and row numbers only: never a cell's contents."""
    notes = []
    if picked.unreadable:
        notes.append(
            f"{len(picked.unreadable)} row(s) left: no readable date in {column!r} "
            f"(rows {', '.join(map(str, picked.unreadable))})"
        )
    if picked.ambiguous:
        notes.append(
            f"{len(picked.ambiguous)} row(s) left: {column!r} reads as dates on both sides of "
            f"the cutoff, day/month order unknown (rows {', '.join(map(str, picked.ambiguous))})"
        )
    return notes


class DriveRetention:
    """The retention sweep of one Drive source, as of ``now``."""

    def __init__(
        self,
        mapping: DriveMapping,
        listing: Listing,
        sheets: Sheets,
        now: dt.datetime,
        *,
        phone_region: str,
        dry_run: bool = False,
        protected: Sequence[Record] = (),
    ) -> None:
        self.mapping = mapping
        self.listing = listing
        self.sheets = sheets
        self.name = sheets.name
        self.phone_region = phone_region
        self.now = _aware(now)
        self.dry_run = dry_run
        self.protection = Protection.of(protected, self.name)
        self.layouts = [lay for lay in mapping.layouts if lay.retention]

    def sweep(self) -> list[SweepResult]:
        if not self.layouts:
            return []
        results: list[SweepResult] = []
        for file_id, name in self._candidates():
            results += self._spreadsheet(file_id, name)
        return results

    def _candidates(self) -> Iterator[tuple[str, str]]:
        """Spreadsheets a rule may apply to: a layout without a name pattern fits any."""
        globs = [lay.spreadsheet_name.casefold() for lay in self.layouts if lay.spreadsheet_name]
        anything = len(globs) < len(self.layouts)
        for file_id, name in self.listing.spreadsheets(Subject(emails=())):
            if anything or any(fnmatch.fnmatch(name.casefold(), glob) for glob in globs):
                yield file_id, name

    def _spreadsheet(self, file_id: str, name: str) -> list[SweepResult]:
        # One Sheets read (properties and values together): Sheets allows 60 a minute per user.
        read = self.sheets.sheet_grid(file_id, "reading a spreadsheet for retention")
        if read is None:
            return []  # gone since it was listed: nothing left to sweep
        return [
            self._sheet(sheet, sheet.layout)
            for sheet in mapped(self.mapping, file_id, name, read)
            # A sheet without a rule keeps its rows.
            if sheet.layout is not None and sheet.layout.retention is not None
        ]

    def _sheet(self, sheet: MappedSheet, layout: Layout) -> SweepResult:
        assert layout.retention is not None
        ref = sheet.ref
        cutoff = self.now - layout.retention.max_age.as_delta()
        result = SweepResult(
            table=f"{ref.spreadsheet}/{ref.sheet}",
            rule=layout.retention.describe(layout.retention_action),
            cutoff=to_utc_iso(cutoff),
            dry_run=self.dry_run,
        )
        rows = sheet.rows
        sweep = SheetSweep(ref, sheet.headers, layout, self.protection, self.phone_region)
        if sweep.date_column is None:
            result.notes.append(f"no column {layout.retention.counts_from!r}: nothing swept")
            return result
        picked = sweep.pick(rows, cutoff)
        result.rows = len(picked.rows)
        result.protected = picked.protected
        result.notes += notes_of(picked, layout.retention.counts_from)
        if picked.rows and not self.dry_run:
            change = sweep.change(sheet.props, rows, picked.rows)
            if change.emptied is not None:
                result.notes.append(EMPTIED.format(row=change.emptied))
            self._write(ref, rows, change.after, change.requests, result)
        return result

    def _write(
        self,
        ref: SheetRef,
        before: list[list[Any]],
        after: list[list[str]],
        requests: list[dict[str, Any]],
        result: SweepResult,
    ) -> None:
        """One batchUpdate for the sheet, sent once (``Sheets.send_change``); throttling
        raises SourceUnavailable, a change that cannot be confirmed fails loudly."""
        client = self.sheets.client
        outcome, detail = self.sheets.send_change(
            ref.spreadsheet_id,
            ref.sheet_id,
            before,
            after,
            lambda: client.batch_update(ref.spreadsheet_id, requests),
            "re-reading a sheet after an unanswered retention write",
        )
        if outcome == Outcome.ALREADY_DONE:
            result.notes.append("the spreadsheet was removed before the sweep changed it")
            result.rows = 0
            return
        if outcome != Outcome.DONE:
            raise SourceUnavailable(
                self.name,
                f"removing rows past their retention in {result.table}: {detail}",
            )
        result.batches = 1
