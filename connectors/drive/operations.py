"""Reading and changing spreadsheets: what discovery, erasure, rectification and the retention
sweep share, over ``GoogleClient``.

* ``sheet_values``: a spreadsheet's sheets (properties and rows) in two requests, or None when
  Drive confirms it is gone. A 404 from Sheets alone may be a proxy, a wrong route or a fault:
  only ``files.get`` answering 404 ``notFound`` (or the file in the trash) is absence; any other
  answer makes the source unavailable, never "nothing there".
* ``sheet_grid``: the same in ONE Sheets read (``spreadsheets.get`` with the grid's formatted
  values), for discovery: Sheets allows 60 reads a minute per user.
* ``exported``: the spreadsheet as .xlsx through Drive's ``files.export`` (Drive's quota), or
  None when it is confirmed gone, or ``TOO_LARGE`` (403 ``exportSizeLimitExceeded``: more than
  10 MB exported; the caller reads it through Sheets instead).
* ``send_change``: a write sent once (``GoogleClient.write``). When its answer is lost (a reset,
  a timeout, a 5xx), the sheet is read again and compared with what it held before the write
  and what the write makes of it: the latter means done; the former means the write did not
  run, and it is sent again (at most ``max_retries`` times); anything else means someone changed
  the sheet meanwhile: FAILED, nothing sent again. Sending a row deletion again blindly would
  delete the rows that moved up into the deleted rows' places: other people's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.base import SourceUnavailable
from connectors.drive.client import GoogleClient, Refused, Request
from connectors.drive.edits import trimmed
from connectors.drive.mapping import DriveMapping, Layout
from connectors.drive.rows import SheetRef, headers_of
from connectors.writes import AmbiguousWrite
from dsrflow.plan import Outcome


@dataclass(frozen=True)
class Sheet:
    """One sheet as read: its properties (``sheetId``, ``title``, ``gridProperties``) and rows."""

    props: dict[str, Any]
    rows: list[list[Any]]


@dataclass(frozen=True)
class MappedSheet:
    """A sheet with a header row, and the mapping's first layout that fits it (None: none)."""

    ref: SheetRef
    headers: list[str]
    layout: Layout | None
    rows: list[list[Any]]
    props: dict[str, Any]


def mapped(
    mapping: DriveMapping, file_id: str, name: str, read: list[Sheet]
) -> Iterator[MappedSheet]:
    """The sheets of spreadsheet ``file_id`` (``name``) that have a header row, each with the
    layout that says how to read it: how discovery and the sweep see a spreadsheet alike."""
    for sheet in read:
        if not sheet.rows:
            continue
        title = sheet.props["title"]
        headers = headers_of(sheet.rows[0])
        yield MappedSheet(
            ref=SheetRef(file_id, name, sheet.props["sheetId"], title),
            headers=headers,
            layout=mapping.layout_for(name, title, headers),
            rows=sheet.rows,
            props=sheet.props,
        )


TOO_LARGE = b""  # ``exported``'s answer for an export Drive refuses as over 10 MB


def grid_rows(data: list[dict[str, Any]]) -> list[list[Any]]:
    """A sheet's ``GridData`` (whole sheet, from row 0) as ``values.batchGet`` would give its
    rows: each cell's formatted value, "" for an empty cell, trailing empties left out."""
    rows: list[list[Any]] = []
    for block in data:
        start = block.get("startRow", 0)
        for offset, row in enumerate(block.get("rowData", [])):
            cells = [cell.get("formattedValue", "") for cell in row.get("values", [])]
            while cells and cells[-1] == "":
                cells.pop()
            index = start + offset
            rows.extend([] for _ in range(index + 1 - len(rows)))
            rows[index] = cells
    while rows and not rows[-1]:
        rows.pop()
    return rows


class Sheets:
    """Reads and writes of one source's spreadsheets; failures name the source."""

    def __init__(self, client: GoogleClient) -> None:
        self.client = client
        self.name = client.name

    def read(self, request: Request, kind: str, what: str) -> Any:
        """A read's answer; a refusal makes the source unavailable."""
        try:
            return self.client.call(request, kind)
        except Refused as refused:
            raise SourceUnavailable(self.name, f"{what}: {refused.line}") from refused

    def sheet_values(
        self, spreadsheet_id: str, what: str, only: int | None = None
    ) -> list[Sheet] | None:
        """Every sheet of the spreadsheet (or sheet id ``only``), in two requests; None if the
        spreadsheet is confirmed gone (``confirmed_gone``)."""
        meta = self._read_or_gone(
            self.client.sheet_properties(spreadsheet_id), spreadsheet_id, "metadata_reads", what
        )
        if meta is None:
            return None
        props = [s["properties"] for s in meta.get("sheets", [])]
        if only is not None:
            props = [p for p in props if p["sheetId"] == only]
        if not props:
            return []
        answer = self._read_or_gone(
            self.client.sheet_values(spreadsheet_id, [p["title"] for p in props]),
            spreadsheet_id,
            "values_reads",
            what,
        )
        if answer is None:
            return None
        values = [vr.get("values", []) for vr in answer.get("valueRanges", [])]
        return [Sheet(p, rows) for p, rows in zip(props, values, strict=True)]

    def sheet_grid(self, spreadsheet_id: str, what: str) -> list[Sheet] | None:
        """Every sheet of the spreadsheet, properties and formatted values, in one Sheets read;
        None if the spreadsheet is confirmed gone."""
        answer = self._read_or_gone(
            self.client.sheet_grid(spreadsheet_id), spreadsheet_id, "values_reads", what
        )
        if answer is None:
            return None
        return [
            Sheet(sheet["properties"], grid_rows(sheet.get("data", [])))
            for sheet in answer.get("sheets", [])
        ]

    def exported(self, spreadsheet_id: str, what: str) -> bytes | None:
        """The spreadsheet as .xlsx (Drive ``files.export``); None if confirmed gone;
        ``TOO_LARGE`` if Drive will not export it (over 10 MB). Any other refusal makes the
        source unavailable (quota refusals are first retried with backoff by ``call``)."""
        try:
            data = self.client.call(self.client.export_xlsx(spreadsheet_id), "exports")
        except Refused as refused:
            if refused.status == 403 and refused.reason == "exportSizeLimitExceeded":
                return TOO_LARGE
            if refused.status == 404 and self.confirmed_gone(spreadsheet_id, what):
                return None
            raise SourceUnavailable(self.name, f"{what}: {refused.line}") from refused
        if not isinstance(data, bytes) or not data:
            raise SourceUnavailable(self.name, f"{what}: Drive's export came back empty")
        return data

    def _read_or_gone(self, request: Request, spreadsheet_id: str, kind: str, what: str) -> Any:
        """The answer to a read of one spreadsheet; None only if the spreadsheet is confirmed
        gone; any other failure, a 404 included, makes the source unavailable."""
        try:
            return self.client.call(request, kind)
        except Refused as refused:
            if refused.status == 404 and self.confirmed_gone(spreadsheet_id, what):
                return None
            raise SourceUnavailable(self.name, f"{what}: {refused.line}") from refused

    def confirmed_gone(self, file_id: str, what: str) -> bool:
        """Whether Drive itself says the file is gone: ``files.get`` of that exact id answers
        404 ``notFound``, or the file is in the trash (which no listing here includes)."""
        try:
            found = self.client.call(self.client.get_file(file_id, "id,trashed"), "metadata_reads")
        except Refused as refused:
            if refused.status == 404 and refused.reason == "notFound":
                return True
            raise SourceUnavailable(
                self.name,
                f"{what}: checking whether spreadsheet {file_id} exists: {refused.line}",
            ) from refused
        if found.get("trashed"):
            return True
        raise SourceUnavailable(
            self.name,
            f"{what}: Google answered HTTP 404 for spreadsheet {file_id}, which Drive still "
            "lists: its content cannot be read, so nothing can be said about it",
        )

    def send_change(
        self,
        spreadsheet_id: str,
        sheet_id: int,
        before: Sequence[Sequence[Any]],
        after: Sequence[Sequence[Any]],
        request: Callable[[], Request],
        what: str = "re-reading a sheet after an unanswered write",
    ) -> tuple[Outcome, str | None]:
        """Send ``request()`` (a write to sheet ``sheet_id``, which holds ``before`` and holds
        ``after`` once the write is applied) once; after a lost answer, decide from a re-read."""
        attempt = 0
        while True:
            try:
                self.client.write(request())
            except Refused as refused:
                if refused.status == 404 and self.confirmed_gone(
                    spreadsheet_id, "writing to a sheet"
                ):
                    return Outcome.ALREADY_DONE, "the spreadsheet no longer exists"
                return Outcome.FAILED, refused.line
            except AmbiguousWrite as lost:
                read = self.sheet_values(spreadsheet_id, what, sheet_id)
                now = trimmed(read[0].rows) if read else None
                if now is not None and now == trimmed(after):
                    return Outcome.DONE, f"confirmed by re-reading the sheet ({lost.problem})"
                if now is None or now != trimmed(before):
                    return Outcome.FAILED, (
                        f"the answer to a write was lost ({lost.problem}) and the sheet, read "
                        "again, holds neither what it held before nor what the write makes of "
                        "it: it changed meanwhile, so nothing was sent again"
                    )
                if attempt >= self.client.source.max_retries:
                    return Outcome.FAILED, (
                        f"the write was not applied: {lost.problem}, {attempt + 1} attempt(s)"
                    )
                # Unchanged: the write did not run, so it may go again, after a pause.
                self.client.backoff(attempt)
                attempt += 1
                continue
            return Outcome.DONE, None
