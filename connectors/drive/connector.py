"""Google Drive spreadsheets through google-api-python-client (Drive v3 + Sheets v4).

Discovery:

1. which spreadsheets: those in the mapping's folders and every folder below them, in My Drive
   or a shared drive (one ``files.list`` a level for the folders, one over all of them for
   their spreadsheets, ``q`` on parents and the mimeType, paged; a mapped folder the delegated
   user cannot read makes the source unavailable), the named ones (by id: one
   batched ``files.get``; by name: ``files.list``), and — if the mapping asks — those Drive's
   full-text search finds for the subject's identifiers. ``fullText contains`` is fuzzy and its
   index lags behind edits, so it only adds candidates: it never decides that a row matches,
   and it never replaces the folder listing;
2. per spreadsheet, ``spreadsheets.get`` (sheet titles only) and one ``values.batchGet`` for all
   its sheets; the first row of a sheet is its header, and the mapping's first layout that fits
   the sheet says how to read it;
3. a row is a Record when one of its identity cells (or, for a ``scan`` layout, any cell)
   holds one of the subject's identifiers, exactly, once normalised.

Spreadsheets are read by a small pool of threads (``workers``), in order, a few ahead: memory
holds a handful of spreadsheets at a time, never the whole Drive. Values in ``q`` are quoted
and escaped (backslash, single quote), never spliced raw.

Erasure (``erase``) and rectification (``rectify``) re-read each affected sheet right before the
change and check every target row still holds the subject's identifier (the plan carries a
fingerprint of it in ``native_id.holds``). Rows move when people edit a sheet: if a target row no
longer holds it but the identifier is elsewhere in the sheet, that sheet is left untouched and
its actions come back SKIPPED, so the request is not complete; if it is nowhere, the row is
already gone (ALREADY_DONE). A spreadsheet is gone only when Drive confirms it: a 404 from Sheets
is followed by ``files.get`` of that id, and only Drive's 404 ``notFound`` (or the file in the
trash) is absence; any other answer fails the sheet's actions (in discovery: the source), never
"nothing there". Deletion is one ``batchUpdate`` per sheet, ``deleteDimension`` from
the highest row down so that earlier deletions do not shift later ones. Sheets has no conditional
write: the window between the re-read and the batchUpdate is one round trip. A row is deleted
only while it holds exactly what the plan saw (``native_id.content``, a fingerprint of the row).

Writes are sent once (``GoogleClient.write``). When the answer to one is lost (a reset, a
timeout, a 5xx), the sheet is read again and compared with what it held before the write and
what the write makes of it: the latter means done; the former means the write did not run, and
it is sent again (at most ``max_retries`` times); anything else means someone changed the sheet
meanwhile, and the action FAILS with nothing sent again. Sending a row deletion again blindly
would delete the rows that moved up into the deleted rows' places: other people's.

The retention sweep (``sweep``) lives in ``connectors/drive/retention.py``.

Nothing about cell contents is logged; ``self.stats`` and ``self.client.stats`` hold counts.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import google_auth_httplib2
import httplib2
from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.errors import HttpError

from connectors.base import Closing, SourceUnavailable, SweepResult
from connectors.drive.client import SCOPES, GoogleClient
from connectors.drive.mapping import DriveMapping, Layout, header_key
from connectors.drive.retention import DriveRetention
from connectors.drive.rows import (
    EMPTIED,
    Matcher,
    SheetReader,
    SheetRef,
    changed,
    clear_cells_request,
    clear_row_request,
    column_letter,
    content_digest,
    delete_rows_requests,
    headers_of,
    holds,
    last_unfrozen,
    trimmed,
)
from connectors.drive.settings import DriveSource
from connectors.writes import AmbiguousWrite
from dsrflow.identifiers import email_spellings
from dsrflow.plan import Action, ActionResult, ExecutionReport, Outcome, PlannedAction
from dsrflow.records import Record
from dsrflow.request import RequestType, Subject

FOLDER = "application/vnd.google-apps.folder"
SPREADSHEET = "application/vnd.google-apps.spreadsheet"
# Rights whose plans change cells: the delegated user must be able to edit what is mapped.
WRITING_RIGHTS = frozenset(
    {RequestType.ERASURE, RequestType.RECTIFICATION, RequestType.CONSENT_WITHDRAWAL}
)


def q_string(value: str) -> str:
    """A value as a Drive ``q`` string literal: quoted, backslash and quote escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def a1_sheet(title: str) -> str:
    """A sheet title in A1 notation: always quoted, inner quotes doubled."""
    return "'" + title.replace("'", "''") + "'"


@dataclass
class DriveStats:
    spreadsheets: int = 0
    sheets: int = 0
    sheets_unmapped: int = 0
    rows: int = 0
    records: int = 0
    vanished: int = 0  # listed, then confirmed gone (Drive's notFound) before it was read


@dataclass
class _Target:
    """One planned action on one row, as the guard sees it."""

    action: PlannedAction
    row: int
    digests: set[str]


class DriveConnector(Closing):
    """Finds, erases and rectifies a subject's rows in Google Sheets, and sweeps out rows past
    their retention, as the mapping says."""

    def __init__(
        self,
        name: str,
        mapping: DriveMapping,
        source: DriveSource,
        *,
        phone_region: str = "NO",
        client: GoogleClient | None = None,
    ) -> None:
        self.name = name
        self.mapping = mapping
        self.source = source
        self.phone_region = phone_region
        self.client = client or GoogleClient(name, source)
        self.stats = DriveStats()

    def close(self) -> None:
        """Nothing to release: httplib2 connections close with their threads' objects."""

    # -- preflight ----------------------------------------------------------------------------

    def preflight(self, right: RequestType) -> list[str]:
        """A token for the scopes the connector asks for (with domain-wide delegation, Google
        refuses it unless the Admin console grants the service account every one of them), then
        every mapped folder and spreadsheet readable. Reads and writes use the same scopes, but
        a right that changes cells also needs the delegated user to be an editor of what is
        mapped (Drive's ``capabilities.canEdit``): a reader would see every write refused only
        after the officer approved the plan."""
        http = httplib2.Http(timeout=self.source.timeout_s)
        try:
            self.client.credentials.refresh(google_auth_httplib2.Request(http))
        except RefreshError as exc:
            who = f" as {self.source.delegated_user}" if self.source.delegated_user else ""
            return [
                f"the service account gets no token{who} ({exc.args[0]}): check its key and "
                f"that domain-wide delegation grants {', '.join(SCOPES)}"
            ]
        except (TransportError, OSError, httplib2.HttpLib2Error) as exc:
            return [f"cannot be reached: the token request failed ({type(exc).__name__})"]
        problems = []
        where = f"mapping {self.source.mapping}"
        by_id = [(i, ref.id) for i, ref in enumerate(self.mapping.folders) if ref.id]
        for (index, folder), readable in zip(
            by_id, self._readable_folders([f for _, f in by_id]), strict=True
        ):
            if not readable:
                problems.append(f"{where} folders.{index}: no folder {folder} readable here")
        try:
            named = self._named_folder_ids()
            sheets = [file_id for file_id, _ in self._named(set())]
        except SourceUnavailable as exc:
            problems.append(f"{where}: {exc.reason}")
            return problems
        if right in WRITING_RIGHTS and not problems:
            folders = [f for _, f in by_id] + named
            problems += [
                f"{where}: {self._who()} may read but not edit {what} {file_id}, so "
                f"{right.value} would fail there: share it with them as an editor"
                for what, ids in (("folder", folders), ("spreadsheet", sheets))
                for file_id in self._not_editable(ids)
            ]
        return problems

    def _who(self) -> str:
        return self.source.delegated_user or "the service account"

    def _not_editable(self, ids: list[str]) -> list[str]:
        """Those of ``ids`` Drive says the delegated user cannot edit (``capabilities.canEdit``)."""
        ids = list(dict.fromkeys(ids))
        refused: list[str] = []
        for start in range(0, len(ids), 100):
            chunk = ids[start : start + 100]
            calls = [
                self.client.files.get(
                    fileId=f, fields="id,capabilities(canEdit)", supportsAllDrives=True
                )
                for f in chunk
            ]
            for file_id, (found, error) in zip(chunk, self.client.batch(calls), strict=True):
                if error is not None or not (found.get("capabilities") or {}).get("canEdit"):
                    refused.append(file_id)
        return refused

    def _as_whom(self) -> str:
        return (
            f" (as {self._who()}: is it shared with that user, or are they a member of its drive?)"
        )

    def _readable_folders(self, ids: list[str]) -> list[bool]:
        """Whether each folder id is one the delegated user can read: Drive answers 404 for a
        folder it does not share with them, exactly as for one that does not exist."""
        answers: list[bool] = []
        for start in range(0, len(ids), 100):  # Drive takes 100 calls per batch
            calls = [
                self.client.files.get(
                    fileId=f, fields="id,mimeType,trashed", supportsAllDrives=True
                )
                for f in ids[start : start + 100]
            ]
            answers += [
                error is None and not found.get("trashed") and found.get("mimeType") == FOLDER
                for found, error in self.client.batch(calls)
            ]
        return answers

    # -- which spreadsheets -------------------------------------------------------------------

    def _list(self, q: str, *, ordered: bool = True) -> Iterator[dict[str, Any]]:
        """Every file ``q`` finds, in My Drive and in every shared drive the user is a member
        of, page by page; by name unless ``ordered`` is false (Drive refuses ``orderBy`` on a
        ``fullText`` query: its results come by relevance).

        Shared-drive items come only with ``supportsAllDrives``, ``includeItemsFromAllDrives``
        and a ``corpora`` that spans them (https://developers.google.com/drive/api/guides/
        enable-shareddrives). ``allDrives`` may answer ``incompleteSearch``: then some results
        are missing, and the listing fails rather than pass for complete."""
        page_token: str | None = None
        order = {"orderBy": "name"} if ordered else {}
        while True:
            request = self.client.files.list(
                q=q,
                pageSize=self.source.page_size,
                pageToken=page_token,
                fields="nextPageToken,incompleteSearch,files(id,name,mimeType)",
                corpora="allDrives",
                supportsAllDrives=True,
                includeItemsFromAllDrives=True,
                **order,
            )
            page = self._api(request, "list_pages", "listing files")
            if page.get("incompleteSearch"):
                raise SourceUnavailable(
                    self.name,
                    "listing files: Drive says the search across all drives was incomplete "
                    "(incompleteSearch), so some files may be missing",
                )
            yield from page.get("files", [])
            page_token = page.get("nextPageToken")
            if not page_token:
                return

    def _folder_ids(self) -> list[str]:
        """The mapped folders (each confirmed readable, or the source is unavailable: a folder
        the user cannot see lists as empty, which is not "nothing there") and every folder
        below them, however deep."""
        ids = [f.id for f in self.mapping.folders if f.id]
        unreadable = [f for f, ok in zip(ids, self._readable_folders(ids), strict=True) if not ok]
        if unreadable:
            raise SourceUnavailable(
                self.name,
                f"mapped folder {unreadable[0]} cannot be read{self._as_whom()}",
            )
        return self._with_subfolders(list(dict.fromkeys(ids + self._named_folder_ids())))

    def _named_folder_ids(self) -> list[str]:
        """Every folder so named of each folder the mapping names (in any drive)."""
        ids: list[str] = []
        for ref in self.mapping.folders:
            if ref.name:
                found = [
                    f["id"]
                    for f in self._list(
                        f"mimeType = '{FOLDER}' and name = {q_string(ref.name)} and trashed = false"
                    )
                ]
                if not found:
                    raise SourceUnavailable(self.name, f"folder {ref.name!r} not found")
                ids += found
        return ids

    def _with_subfolders(self, roots: list[str]) -> list[str]:
        """``roots`` and all folders under them, level by level (a few dozen parents a query)."""
        found = list(roots)
        seen = set(roots)
        level = list(roots)
        while level:
            below: list[str] = []
            for start in range(0, len(level), 40):
                parents = " or ".join(
                    f"{q_string(f)} in parents" for f in level[start : start + 40]
                )
                q = f"({parents}) and mimeType = '{FOLDER}' and trashed = false"
                for folder in self._list(q):
                    if folder["id"] not in seen:
                        seen.add(folder["id"])
                        below.append(folder["id"])
            found += below
            level = below
        return found

    def spreadsheets(self, subject: Subject) -> Iterator[tuple[str, str]]:
        """(id, name) of every spreadsheet to read, each once."""
        seen: set[str] = set()
        folders = self._folder_ids()
        # Drive caps the length of q; a few dozen folders per query stays far below it.
        for start in range(0, len(folders), 40):
            parents = " or ".join(f"{q_string(f)} in parents" for f in folders[start : start + 40])
            q = f"({parents}) and mimeType = '{SPREADSHEET}' and trashed = false"
            for file in self._list(q):
                if file["id"] not in seen:
                    seen.add(file["id"])
                    yield file["id"], file["name"]
        yield from self._named(seen)
        if self.mapping.full_text_search:
            # Every spelling of an address (Unicode and IDNA domain): a wider pre-filter.
            values = [s for e in subject.emails for s in email_spellings(e)] + list(subject.phones)
            for value in dict.fromkeys(values):
                q = (
                    f"fullText contains {q_string(value)} and "
                    f"mimeType = '{SPREADSHEET}' and trashed = false"
                )
                for file in self._list(q, ordered=False):
                    if file["id"] not in seen:
                        seen.add(file["id"])
                        yield file["id"], file["name"]

    def _named(self, seen: set[str]) -> Iterator[tuple[str, str]]:
        by_id = [s.id for s in self.mapping.spreadsheets if s.id]
        for start in range(0, len(by_id), 100):  # Drive takes 100 calls per batch
            chunk = by_id[start : start + 100]
            calls = [
                self.client.files.get(
                    fileId=i, fields="id,name,mimeType,trashed", supportsAllDrives=True
                )
                for i in chunk
            ]
            for file_id, (file, error) in zip(chunk, self.client.batch(calls), strict=True):
                if error is not None or file.get("trashed") or file["mimeType"] != SPREADSHEET:
                    raise SourceUnavailable(
                        self.name, f"configured spreadsheet {file_id} cannot be read"
                    )
                if file["id"] not in seen:
                    seen.add(file["id"])
                    yield file["id"], file["name"]
        for ref in self.mapping.spreadsheets:
            if ref.name:
                name = q_string(ref.name)
                found = list(
                    self._list(f"name = {name} and mimeType = '{SPREADSHEET}' and trashed = false")
                )
                if not found:
                    raise SourceUnavailable(self.name, f"spreadsheet {ref.name!r} not found")
                for file in found:
                    if file["id"] not in seen:
                        seen.add(file["id"])
                        yield file["id"], file["name"]

    # -- discovery ----------------------------------------------------------------------------

    def discover(self, subject: Subject) -> Iterator[Record]:
        matcher = Matcher.of(subject, self.phone_region)
        ahead = self.source.workers * 2
        with ThreadPoolExecutor(
            self.source.workers, thread_name_prefix=f"drive-{self.name}"
        ) as pool:
            pending: deque[Future[list[Record]]] = deque()
            try:
                for file_id, name in self.spreadsheets(subject):
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

    def _sheet_values(
        self, spreadsheet_id: str, what: str, only: int | None = None
    ) -> tuple[list[dict[str, Any]], list[list[list[Any]]]] | None:
        """Sheet properties and values of every sheet (or sheet id ``only``), in two requests;
        None if the spreadsheet is confirmed gone (``_confirmed_gone``). A 404 on either read
        alone proves nothing: the request fails the source unless Drive confirms the file is
        gone."""
        meta = self._read_or_gone(
            self.client.spreadsheets.get(
                spreadsheetId=spreadsheet_id,
                fields="sheets.properties(sheetId,title,gridProperties(rowCount,frozenRowCount))",
            ),
            spreadsheet_id,
            "metadata_reads",
            what,
        )
        if meta is None:
            return None
        sheets = [s["properties"] for s in meta.get("sheets", [])]
        if only is not None:
            sheets = [s for s in sheets if s["sheetId"] == only]
        if not sheets:
            return sheets, []
        answer = self._read_or_gone(
            self.client.values.batchGet(
                spreadsheetId=spreadsheet_id,
                ranges=[a1_sheet(s["title"]) for s in sheets],
                majorDimension="ROWS",
                valueRenderOption="FORMATTED_VALUE",
            ),
            spreadsheet_id,
            "values_reads",
            what,
        )
        if answer is None:
            return None
        return sheets, [vr.get("values", []) for vr in answer.get("valueRanges", [])]

    def _read_or_gone(self, request: Any, spreadsheet_id: str, kind: str, what: str) -> Any:
        """The answer to a read of one spreadsheet; None only if the spreadsheet is confirmed
        gone; any other failure, a 404 included, makes the source unavailable."""
        try:
            return self.client.call(request, kind)
        except HttpError as exc:
            if exc.status_code == 404 and self._confirmed_gone(spreadsheet_id, what):
                return None
            raise SourceUnavailable(self.name, f"{what}: {_refusal(exc)}") from exc

    def _confirmed_gone(self, file_id: str, what: str) -> bool:
        """Whether Drive itself says the file is gone: ``files.get`` of that exact id answers
        404 ``notFound``, or the file is in the trash (which no listing here includes). A 404
        from Sheets alone may be a proxy, a wrong route or a fault: not proof of absence."""
        request = self.client.files.get(fileId=file_id, fields="id,trashed", supportsAllDrives=True)
        try:
            found = self.client.call(request, "metadata_reads")
        except HttpError as exc:
            if exc.status_code == 404 and _reason(exc) == "notFound":
                return True
            raise SourceUnavailable(
                self.name, f"{what}: checking whether spreadsheet {file_id} exists: {_refusal(exc)}"
            ) from exc
        if found.get("trashed"):
            return True
        raise SourceUnavailable(
            self.name,
            f"{what}: Google answered HTTP 404 for spreadsheet {file_id}, which Drive still "
            "lists: its content cannot be read, so nothing can be said about it",
        )

    def _read_spreadsheet(self, file_id: str, name: str, matcher: Matcher) -> list[Record]:
        read = self._sheet_values(file_id, "reading a spreadsheet")
        if read is None:
            self.stats.vanished += 1
            return []
        self.stats.spreadsheets += 1
        records: list[Record] = []
        for props, rows in zip(*read, strict=True):
            self.stats.sheets += 1
            if not rows:
                continue
            headers = headers_of(rows[0])
            layout = self.mapping.layout_for(name, props["title"], headers)
            if layout is None:
                self.stats.sheets_unmapped += 1
                continue
            ref = SheetRef(file_id, name, props["sheetId"], props["title"])
            reader = SheetReader(self.name, ref, headers, layout, matcher)
            self.stats.rows += len(rows) - 1
            records += reader.records(rows[1:])
        return records

    def _api(self, request: Any, kind: str, what: str) -> Any:
        try:
            return self.client.call(request, kind)
        except HttpError as exc:
            raise SourceUnavailable(self.name, f"{what}: {_refusal(exc)}") from exc

    # -- retention ----------------------------------------------------------------------------

    def sweep(
        self,
        now: dt.datetime,
        *,
        dry_run: bool = False,
        protected: Sequence[Record] = (),
        min_group_size: int | None = None,
    ) -> list[SweepResult]:
        """Apply the layouts' retention rules as of ``now`` (connectors/drive/retention.py);
        the rows of ``protected`` records stay. Sheets are not aggregated: no group size."""
        return DriveRetention(self, now, dry_run=dry_run, protected=protected).sweep()

    # -- erasure and rectification ------------------------------------------------------------

    def erase(self, actions: Sequence[PlannedAction], subject: Subject) -> ExecutionReport:
        """Delete or clear the planned rows; the guard re-reads each sheet first (the plan's
        fingerprints say whose rows they are, so ``subject`` is not needed here)."""
        return self._carry_out(actions, (Action.DELETE, Action.REDACT), self._erase_sheet)

    def rectify(self, actions: Sequence[PlannedAction], subject: Subject) -> ExecutionReport:
        """Set the named cells (header -> new value) of each row; verified by reading back."""
        return self._carry_out(actions, (Action.RECTIFY,), self._rectify_sheet)

    def _carry_out(
        self, actions: Sequence[PlannedAction], wanted: tuple[Action, ...], change: Any
    ) -> ExecutionReport:
        """``change`` the sheets of the ``wanted`` actions; every other action is answered
        (``not_carried_out``), never dropped."""
        report = ExecutionReport(source=self.name)
        mine = [a for a in actions if a.action in wanted]
        report.results += [not_carried_out(a) for a in actions if a.action not in wanted]
        for sheet_actions in self._by_sheet(mine).values():
            report.results += self._change_sheet_or_fail(sheet_actions, change)
        return report

    @staticmethod
    def _by_sheet(actions: Sequence[PlannedAction]) -> dict[tuple[str, int], list[PlannedAction]]:
        groups: dict[tuple[str, int], list[PlannedAction]] = defaultdict(list)
        for action in actions:
            native = action.native_id
            groups[(native["spreadsheet_id"], int(native["sheet_id"]))].append(action)
        return groups

    def _change_sheet_or_fail(
        self, actions: list[PlannedAction], change: Any
    ) -> list[ActionResult]:
        """``_change_sheet``; a sheet that cannot be read (a 404 Drive does not confirm as the
        spreadsheet's absence included) fails its actions, so the request is not complete, and
        what the other sheets' actions did is still reported."""
        try:
            return self._change_sheet(actions, change)
        except SourceUnavailable as exc:
            return self._all(actions, Outcome.FAILED, exc.reason)

    def _change_sheet(self, actions: list[PlannedAction], change: Any) -> list[ActionResult]:
        """Re-read the sheet, run the guard, then ``change`` the rows that passed it."""
        native = actions[0].native_id
        read = self._sheet_values(
            native["spreadsheet_id"], "re-reading a sheet before a change", int(native["sheet_id"])
        )
        if read is None or not read[0]:
            return self._all(actions, Outcome.ALREADY_DONE, "the sheet no longer exists")
        props, rows = read[0][0], read[1][0]
        headers = headers_of(rows[0]) if rows else []
        layout = self.mapping.layout_for(native["spreadsheet"], props["title"], headers)
        if layout is None:
            return self._all(
                actions, Outcome.SKIPPED, "no layout of the mapping fits the sheet any more"
            )
        where: dict[str, list[int]] = defaultdict(list)  # digest -> rows (1-based) holding it
        for number, row in enumerate(rows[1:], start=2):
            for d in holds(layout, headers, row, self.phone_region):
                where[d].append(number)
        ready: list[_Target] = []
        results: list[ActionResult] = []
        for action in actions:
            row_number = int(action.native_id["row"])
            digests = set(str(action.native_id.get("holds", "")).split("+")) - {""}
            here = any(row_number in where.get(d, []) for d in digests)
            seen = action.native_id.get("content")
            if (
                here
                and action.action == Action.DELETE
                and seen
                and content_digest(rows[row_number - 1]) != seen
            ):
                results.append(
                    ActionResult(
                        record_id=action.record_id,
                        outcome=Outcome.SKIPPED,
                        detail=f"row {row_number} changed since planning: it no longer "
                        "holds exactly what the plan saw, so it was left untouched",
                    )
                )
                continue
            if here:
                ready.append(_Target(action, row_number, digests))
            elif any(where.get(d) for d in digests):
                # The subject's identifier is still in the sheet, but elsewhere: rows moved.
                return self._all(
                    actions,
                    Outcome.SKIPPED,
                    f"row {row_number} no longer holds the subject's identifier but other rows "
                    "do: the sheet changed since planning and was left untouched",
                )
            else:
                results.append(
                    ActionResult(
                        record_id=action.record_id,
                        outcome=Outcome.ALREADY_DONE,
                        detail="no row of the sheet holds the subject's identifier any more",
                    )
                )
        if ready:
            results += change(native["spreadsheet_id"], props, headers, rows, layout, ready)
        return results

    @staticmethod
    def _all(actions: list[PlannedAction], outcome: Outcome, detail: str) -> list[ActionResult]:
        return [
            ActionResult(record_id=a.record_id, outcome=outcome, detail=detail) for a in actions
        ]

    def _erase_sheet(
        self,
        spreadsheet_id: str,
        props: dict[str, Any],
        headers: list[str],
        rows: list[list[Any]],
        layout: Layout,
        targets: list[_Target],
    ) -> list[ActionResult]:
        today = dt.datetime.now(dt.UTC).date()
        results: list[ActionResult] = []
        clears: list[dict[str, Any]] = []
        cleared: list[tuple[int, int]] = []
        deletes: set[int] = set()
        done: list[_Target] = []
        for target in targets:
            row = rows[target.row - 1]
            fields = {headers[c]: v for c, v in enumerate(row) if c < len(headers)}
            hold = layout.hold_until(fields)
            if layout.legal_hold and hold is not None and hold > today:
                # The plan said otherwise, but the row (as it is now) is under a legal hold.
                until = "" if hold == dt.date.max else f" until {hold}"
                results.append(
                    ActionResult(
                        record_id=target.action.record_id,
                        outcome=Outcome.SKIPPED,
                        detail=f"under legal hold ({layout.legal_hold.reason}){until}",
                    )
                )
                continue
            if target.action.action == Action.DELETE:
                deletes.add(target.row)
            else:
                names = {header_key(f) for f in target.action.fields}
                columns = [c for c, h in enumerate(headers) if header_key(h) in names]
                clears += [clear_cells_request(props["sheetId"], target.row, c) for c in columns]
                cleared += [(target.row, c) for c in columns]
            done.append(target)
        emptied = last_unfrozen(props, rows, deletes)
        if emptied is not None:
            # Sheets refuses to delete every row below the frozen ones ("Sorry, it is not
            # possible to delete all non-frozen rows."): that one row is emptied instead.
            deletes.discard(emptied)
            clears.append(clear_row_request(props["sheetId"], emptied))
            cleared += [(emptied, c) for c in range(len(rows[emptied - 1]))]
        # Clearing does not move rows, so it goes first; then deletions from the bottom up.
        requests = clears + delete_rows_requests(props["sheetId"], deletes)
        if requests:
            after = changed(rows, {cell: "" for cell in cleared}, deletes)
            outcome = self.send_change(
                spreadsheet_id,
                props["sheetId"],
                rows,
                after,
                lambda: self.client.spreadsheets.batchUpdate(
                    spreadsheetId=spreadsheet_id, body={"requests": requests}
                ),
            )
            results += [
                ActionResult(
                    record_id=t.action.record_id,
                    outcome=outcome[0],
                    detail=outcome[1] or (EMPTIED.format(row=t.row) if t.row == emptied else None),
                )
                for t in done
            ]
        return results

    def send_change(
        self,
        spreadsheet_id: str,
        sheet_id: int,
        before: Sequence[Sequence[Any]],
        after: Sequence[Sequence[Any]],
        request: Any,
        what: str = "re-reading a sheet after an unanswered write",
    ) -> tuple[Outcome, str | None]:
        """Send ``request()`` (a write to sheet ``sheet_id``, which holds ``before`` and holds
        ``after`` once the write is applied) once; after a lost answer, decide from a re-read."""
        attempt = 0
        while True:
            try:
                self.client.write(request())
            except HttpError as exc:
                if exc.status_code == 404 and self._confirmed_gone(
                    spreadsheet_id, "writing to a sheet"
                ):
                    return Outcome.ALREADY_DONE, "the spreadsheet no longer exists"
                return Outcome.FAILED, _refusal(exc)
            except AmbiguousWrite as lost:
                read = self._sheet_values(spreadsheet_id, what, sheet_id)
                now = trimmed(read[1][0]) if read and read[1] else None
                if now is not None and now == trimmed(after):
                    return Outcome.DONE, f"confirmed by re-reading the sheet ({lost.problem})"
                if now is None or now != trimmed(before):
                    return Outcome.FAILED, (
                        f"the answer to a write was lost ({lost.problem}) and the sheet, read "
                        "again, holds neither what it held before nor what the write makes of "
                        "it: it changed meanwhile, so nothing was sent again"
                    )
                if attempt >= self.source.max_retries:
                    return Outcome.FAILED, (
                        f"the write was not applied: {lost.problem}, {attempt + 1} attempt(s)"
                    )
                # Unchanged: the write did not run, so it may go again, after a pause.
                self.client.backoff(attempt)
                attempt += 1
                continue
            return Outcome.DONE, None

    def _rectify_sheet(
        self,
        spreadsheet_id: str,
        props: dict[str, Any],
        headers: list[str],
        rows: list[list[Any]],
        layout: Layout,
        targets: list[_Target],
    ) -> list[ActionResult]:
        results = []
        title = props["title"]
        values = self.client.values
        for target in targets:
            columns = {header_key(h): c for c, h in enumerate(headers)}
            missing = [f for f in target.action.fields if header_key(f) not in columns]
            if missing:
                results.append(
                    ActionResult(
                        record_id=target.action.record_id,
                        outcome=Outcome.SKIPPED,
                        detail=f"the sheet has no column {', '.join(sorted(missing))}",
                    )
                )
                continue
            failed = None
            for field, value in target.action.fields.items():
                column = columns[header_key(field)]
                cell = f"{a1_sheet(title)}!{column_letter(column)}{target.row}"
                after = changed(rows, {(target.row, column): value})
                outcome, detail = self.send_change(
                    spreadsheet_id,
                    props["sheetId"],
                    rows,
                    after,
                    lambda cell=cell, value=value: values.update(
                        spreadsheetId=spreadsheet_id,
                        range=cell,
                        valueInputOption="RAW",
                        body={"values": [["" if value is None else value]]},
                    ),
                )
                if outcome != Outcome.DONE:
                    failed = detail
                    break
                rows = after  # the next cell's write starts from this one's result
            if failed is None:
                failed = self._verify(spreadsheet_id, title, headers, target)
            results.append(
                ActionResult(
                    record_id=target.action.record_id,
                    outcome=Outcome.FAILED if failed else Outcome.DONE,
                    detail=failed,
                )
            )
        return results

    def _verify(
        self, spreadsheet_id: str, title: str, headers: list[str], target: _Target
    ) -> str | None:
        """Read the row back; a description of what differs, or None if all is as asked."""
        answer = self._api(
            self.client.values.get(
                spreadsheetId=spreadsheet_id, range=f"{a1_sheet(title)}!{target.row}:{target.row}"
            ),
            "values_reads",
            "reading back a rectified row",
        )
        row = (answer.get("values") or [[]])[0]
        now = {header_key(h): (row[c] if c < len(row) else "") for c, h in enumerate(headers)}
        wrong = [
            f
            for f, v in target.action.fields.items()
            if str(now.get(header_key(f), "")) != ("" if v is None else str(v))
        ]
        return f"read back differs in {', '.join(wrong)}" if wrong else None


def not_carried_out(action: PlannedAction) -> ActionResult:
    """The answer to an action a method does not do: a KEEP is skipped on purpose, anything
    else fails; never dropped, never DONE."""
    if action.action == Action.KEEP:
        return ActionResult(
            record_id=action.record_id,
            outcome=Outcome.SKIPPED,
            detail=f"kept: {action.reason or 'on purpose'}",
        )
    return ActionResult(
        record_id=action.record_id,
        outcome=Outcome.FAILED,
        detail=f"cannot {action.action.value} here",
    )


def _reason(exc: HttpError) -> str | None:
    """Google's error reason (``notFound``, ``forbidden``, ...) of an HttpError, if it has one."""
    details = exc.error_details if isinstance(exc.error_details, list) else []
    for detail in details:
        if isinstance(detail, dict) and detail.get("reason"):
            return str(detail["reason"])
    return None


def _refusal(exc: HttpError) -> str:
    """One line: the HTTP status and Google's reason code; never the message, which may quote
    a range or a query."""
    reason = _reason(exc)
    return f"HTTP {exc.status_code}" + (f" {reason}" if reason else f" {exc.reason}")
