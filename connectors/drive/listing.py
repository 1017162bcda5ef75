"""Which spreadsheets a source holds: Drive v3 listings, shared by discovery, the retention
sweep and the preflight.

Those in the mapping's folders and every folder below them, in My Drive or a shared drive (one
``files.list`` a level for the folders, one over all of them for their spreadsheets, ``q`` on
parents and the mimeType, paged; a mapped folder the delegated user cannot read makes the source
unavailable), the named ones (by id: one batched ``files.get``; by name: ``files.list``), and —
if the mapping asks — those Drive's full-text search finds for the subject's identifiers.
``fullText contains`` is fuzzy and its index lags behind edits, so it only adds candidates: it
never decides that a row matches, and it never replaces the folder listing. Values in ``q`` are
quoted and escaped (backslash, single quote), never spliced raw.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.base import SourceUnavailable
from connectors.drive.client import FOLDER, SPREADSHEET
from connectors.drive.mapping import DriveMapping
from connectors.drive.operations import Sheets
from dsrflow.identifiers import email_spellings
from dsrflow.request import Subject

BATCH = 100  # Drive takes 100 calls per batch
# Drive caps the length of q; a few dozen folders per query stays far below it.
PARENTS_PER_QUERY = 40
_SPREADSHEETS = f"mimeType = '{SPREADSHEET}' and trashed = false"


def q_string(value: str) -> str:
    """A value as a Drive ``q`` string literal: quoted, backslash and quote escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _in_parents(folders: list[str]) -> str:
    return " or ".join(f"{q_string(f)} in parents" for f in folders)


class Listing:
    """The files of one source's mapping, as its delegated user sees them.

    The folder tree is read once per connector (a connector lives for one task of one request:
    the folders do not change under it in any way that matters, and a spreadsheet's own
    listing is read afresh each time)."""

    def __init__(self, sheets: Sheets, mapping: DriveMapping) -> None:
        self.sheets = sheets
        self.client = sheets.client
        self.mapping = mapping
        self.name = sheets.name
        self._folders: list[str] | None = None

    def who(self) -> str:
        return self.client.source.delegated_user or "the service account"

    def files(self, q: str, *, ordered: bool = True) -> Iterator[dict[str, Any]]:
        """Every file ``q`` finds, page by page (``GoogleClient.list_files``). ``allDrives``
        may answer ``incompleteSearch``: then some results are missing, and the listing fails
        rather than pass for complete."""
        page_token: str | None = None
        while True:
            request = self.client.list_files(q, page_token, ordered=ordered)
            page = self.sheets.read(request, "list_pages", "listing files")
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

    def _batched_get(self, ids: list[str], fields: str) -> Iterator[tuple[str, Any, bool]]:
        """(id, file, refused) for each of ``ids``: ``files.get`` in batches."""
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            calls = [self.client.get_file(f, fields) for f in chunk]
            for file_id, (found, error) in zip(chunk, self.client.batch(calls), strict=True):
                yield file_id, found, error is not None

    def readable_folders(self, ids: list[str]) -> list[bool]:
        """Whether each folder id is one the delegated user can read: Drive answers 404 for a
        folder it does not share with them, exactly as for one that does not exist."""
        return [
            not refused and not found.get("trashed") and found.get("mimeType") == FOLDER
            for _, found, refused in self._batched_get(ids, "id,mimeType,trashed")
        ]

    def not_editable(self, ids: list[str]) -> list[str]:
        """Those of ``ids`` Drive says the delegated user cannot edit (``capabilities.canEdit``)."""
        return [
            file_id
            for file_id, found, refused in self._batched_get(
                list(dict.fromkeys(ids)), "id,capabilities(canEdit)"
            )
            if refused or not (found.get("capabilities") or {}).get("canEdit")
        ]

    def folder_ids(self) -> list[str]:
        """The mapped folders (each confirmed readable, or the source is unavailable: a folder
        the user cannot see lists as empty, which is not "nothing there") and every folder
        below them, however deep (read once per connector)."""
        if self._folders is None:
            self._folders = self._read_folder_ids()
        return list(self._folders)

    def _read_folder_ids(self) -> list[str]:
        ids = [f.id for f in self.mapping.folders if f.id]
        unreadable = [f for f, ok in zip(ids, self.readable_folders(ids), strict=True) if not ok]
        if unreadable:
            raise SourceUnavailable(
                self.name,
                f"mapped folder {unreadable[0]} cannot be read (as {self.who()}: is it shared "
                "with that user, or are they a member of its drive?)",
            )
        return self._with_subfolders(list(dict.fromkeys(ids + self.named_folder_ids())))

    def named_folder_ids(self) -> list[str]:
        """Every folder so named of each folder the mapping names (in any drive)."""
        ids: list[str] = []
        for ref in self.mapping.folders:
            if ref.name:
                q = f"mimeType = '{FOLDER}' and name = {q_string(ref.name)} and trashed = false"
                found = [f["id"] for f in self.files(q)]
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
            for start in range(0, len(level), PARENTS_PER_QUERY):
                parents = _in_parents(level[start : start + PARENTS_PER_QUERY])
                q = f"({parents}) and mimeType = '{FOLDER}' and trashed = false"
                for folder in self.files(q):
                    if folder["id"] not in seen:
                        seen.add(folder["id"])
                        below.append(folder["id"])
            found += below
            level = below
        return found

    def spreadsheets(self, subject: Subject) -> Iterator[tuple[str, str]]:
        """(id, name) of every spreadsheet to read, each once (``subject``: for the full-text
        search; one without identifiers searches nothing)."""
        seen: set[str] = set()

        def new(files: Iterator[dict[str, Any]]) -> Iterator[tuple[str, str]]:
            for file in files:
                if file["id"] not in seen:
                    seen.add(file["id"])
                    yield file["id"], file["name"]

        folders = self.folder_ids()
        for start in range(0, len(folders), PARENTS_PER_QUERY):
            parents = _in_parents(folders[start : start + PARENTS_PER_QUERY])
            yield from new(self.files(f"({parents}) and {_SPREADSHEETS}"))
        yield from new(self.named_by_id())
        yield from new(self.named_by_name())
        if self.mapping.full_text_search:
            # Every spelling of an address (Unicode and IDNA domain): a wider pre-filter.
            values = [s for e in subject.emails for s in email_spellings(e)] + list(subject.phones)
            for value in dict.fromkeys(values):
                q = f"fullText contains {q_string(value)} and {_SPREADSHEETS}"
                yield from new(self.files(q, ordered=False))

    def named_by_id(self) -> Iterator[dict[str, Any]]:
        """The spreadsheets the mapping names by id; one that cannot be read fails the source."""
        by_id = [s.id for s in self.mapping.spreadsheets if s.id]
        for file_id, file, refused in self._batched_get(by_id, "id,name,mimeType,trashed"):
            if refused or file.get("trashed") or file["mimeType"] != SPREADSHEET:
                raise SourceUnavailable(
                    self.name, f"configured spreadsheet {file_id} cannot be read"
                )
            yield file

    def named_by_name(self) -> Iterator[dict[str, Any]]:
        """Every spreadsheet so named of each the mapping names; none found fails the source."""
        for ref in self.mapping.spreadsheets:
            if ref.name:
                found = list(self.files(f"name = {q_string(ref.name)} and {_SPREADSHEETS}"))
                if not found:
                    raise SourceUnavailable(self.name, f"spreadsheet {ref.name!r} not found")
                yield from found
