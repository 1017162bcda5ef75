"""Discovery: the subject's rows in every spreadsheet the listing finds.

Per spreadsheet (``read_via: export``, the default), Drive's ``files.export`` as .xlsx, which
counts against Drive's quota; only a spreadsheet the export cannot clear of the subject
(``connectors/drive/workbook.py`` says exactly when it can) is then read through Sheets, in one
``spreadsheets.get`` with the grid's formatted values. ``read_via: sheets`` skips the export
and reads every spreadsheet that way. Sheets allows 60 reads a minute per user: 200
spreadsheets read through it take three minutes at Google whatever the code does, through the
export a few seconds plus a read per spreadsheet that holds the subject (or a look-alike).
An export Drive refuses as over 10 MB is read through Sheets too. The first row of a sheet is
its header, and the mapping's first layout that fits the
sheet says how to read it; a row is a Record when one of its identity cells (or, for a ``scan``
layout, any cell) holds one of the subject's identifiers, exactly, once normalised
(``connectors/drive/rows.py``).

Spreadsheets are read by a small pool of threads (``workers``), in order, a few ahead: memory
holds a handful of spreadsheets at a time, never the whole Drive. Nothing about cell contents is
logged; ``stats`` holds counts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from connectors.drive.listing import Listing
from connectors.drive.mapping import DriveMapping
from connectors.drive.operations import TOO_LARGE, Sheets, mapped
from connectors.drive.rows import Matcher, SheetReader
from connectors.drive.workbook import WorkbookCheck
from connectors.third_parties import SourceContext
from dsrflow.records import Record
from dsrflow.request import Subject


@dataclass
class DriveStats:
    spreadsheets: int = 0
    sheets: int = 0
    sheets_unmapped: int = 0
    rows: int = 0
    records: int = 0
    exported: int = 0  # read through Drive's export
    cleared: int = 0  # of those, proven free of the subject by the export alone
    too_large: int = 0  # Drive would not export them (over 10 MB): read through Sheets
    vanished: int = 0  # listed, then confirmed gone (Drive's notFound) before it was read


class Discovery:
    """Finds one subject's rows at a time; ``stats`` add up over every search."""

    def __init__(
        self, listing: Listing, sheets: Sheets, mapping: DriveMapping, context: SourceContext
    ) -> None:
        self.listing = listing
        self.sheets = sheets
        self.mapping = mapping
        self.context = context
        self.name = sheets.name
        self.stats = DriveStats()

    def records(self, subject: Subject) -> Iterator[Record]:
        matcher = Matcher.of(subject, self.context)
        workers = self.sheets.client.source.workers
        ahead = workers * 2
        with ThreadPoolExecutor(workers, thread_name_prefix=f"drive-{self.name}") as pool:
            pending: deque[Future[list[Record]]] = deque()
            try:
                for file_id, name in self.listing.spreadsheets(subject):
                    pending.append(pool.submit(self._read_spreadsheet, file_id, name, matcher))
                    while len(pending) >= ahead:
                        yield from self._counted(pending.popleft().result())
                while pending:
                    yield from self._counted(pending.popleft().result())
            finally:
                for future in pending:
                    future.cancel()

    def _counted(self, records: list[Record]) -> list[Record]:
        self.stats.records += len(records)
        return records

    def _read_spreadsheet(self, file_id: str, name: str, matcher: Matcher) -> list[Record]:
        what = "reading a spreadsheet"
        if self.sheets.client.source.read_via == "export":
            data = self.sheets.exported(file_id, what)
            if data is None:
                self.stats.vanished += 1
                return []
            if data == TOO_LARGE:
                self.stats.too_large += 1
            else:
                self.stats.exported += 1
                if not WorkbookCheck(matcher).may_hold(data):
                    self.stats.cleared += 1
                    self.stats.spreadsheets += 1
                    return []
        read = self.sheets.sheet_grid(file_id, what)
        if read is None:
            self.stats.vanished += 1
            return []
        self.stats.spreadsheets += 1
        self.stats.sheets += len(read)
        records: list[Record] = []
        for sheet in mapped(self.mapping, file_id, name, read):
            if sheet.layout is None:
                self.stats.sheets_unmapped += 1
                continue
            reader = SheetReader(self.name, sheet.ref, sheet.headers, sheet.layout, matcher)
            self.stats.rows += len(sheet.rows) - 1
            records += reader.records(sheet.rows[1:])
        return records
