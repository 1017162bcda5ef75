"""What the Drive + Sheets emulator holds: shared drives, folders and spreadsheets, their sheets
and cells, who may read and write them, issued access tokens and the quotas (``quotas.py``). One
lock guards it all: a change is visible to the next request, whatever thread serves it.

Access, as Drive grants it (https://developers.google.com/drive/api/guides/manage-sharing and
/about-shareddrives): a user reads a file shared with them (a permission on the file or on a
folder above it: folder permissions are inherited), or any item of a shared drive they are a
member of; writing needs the role writer or above. Everyone else is told the file is not there
(Drive) or that they may not (Sheets)."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from sandbox.emulators.google.quotas import Exceeded, GoogleQuotas, QuotaMeter

FOLDER = "application/vnd.google-apps.folder"
SPREADSHEET = "application/vnd.google-apps.spreadsheet"
# A new Google sheet is 1000 rows by 26 columns; the grid grows to hold what is loaded.
DEFAULT_ROWS = 1000
DEFAULT_COLS = 26


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class ProtectedRange:
    """A Sheets ProtectedRange: a grid range (end indices exclusive, None: to the edge) only its
    editors may change (https://developers.google.com/sheets/api/reference/rest/v4/spreadsheets/sheets#protectedrange)."""

    start_row: int = 0
    end_row: int | None = None
    start_col: int = 0
    end_col: int | None = None
    editors: frozenset[str] = frozenset()  # e-mails, lower case

    def covers(self, row: int, col: int | None = None) -> bool:
        """Whether the cell (or, with ``col`` None, any cell of the row) is protected."""
        in_rows = self.start_row <= row and (self.end_row is None or row < self.end_row)
        if col is None:
            return in_rows
        return in_rows and self.start_col <= col and (self.end_col is None or col < self.end_col)

    def resource(self, sheet_id: int, index: int) -> dict[str, Any]:
        grid: dict[str, Any] = {"sheetId": sheet_id, "startRowIndex": self.start_row}
        if self.end_row is not None:
            grid["endRowIndex"] = self.end_row
        grid["startColumnIndex"] = self.start_col
        if self.end_col is not None:
            grid["endColumnIndex"] = self.end_col
        return {
            "protectedRangeId": index + 1,
            "range": grid,
            "editors": {"users": sorted(self.editors)},
        }


@dataclass
class Sheet:
    sheet_id: int
    title: str
    rows: list[list[Any]]
    row_count: int = DEFAULT_ROWS
    column_count: int = DEFAULT_COLS
    frozen_rows: int = 0
    protected: list[ProtectedRange] = field(default_factory=list)

    def may_edit(self, user: str, row: int, col: int | None = None) -> bool:
        """Whether ``user`` may change the cell (or, ``col`` None, delete the row)."""
        return not any(p.covers(row, col) and user.lower() not in p.editors for p in self.protected)

    def __post_init__(self) -> None:
        self.row_count = max(self.row_count, len(self.rows))
        self.column_count = max(self.column_count, max((len(r) for r in self.rows), default=0))

    def properties(self, index: int) -> dict[str, Any]:
        grid: dict[str, Any] = {"rowCount": self.row_count, "columnCount": self.column_count}
        if self.frozen_rows:
            grid["frozenRowCount"] = self.frozen_rows
        return {
            "sheetId": self.sheet_id,
            "title": self.title,
            "index": index,
            "sheetType": "GRID",
            "gridProperties": grid,
        }


# Roles of a permission (https://developers.google.com/drive/api/guides/ref-roles): organizer
# and fileOrganizer exist in shared drives only.
READ_ROLES = ("owner", "organizer", "fileOrganizer", "writer", "commenter", "reader")
WRITE_ROLES = frozenset({"owner", "organizer", "fileOrganizer", "writer"})


@dataclass
class SharedDrive:
    id: str
    name: str
    members: dict[str, str] = field(default_factory=dict)  # e-mail (lower case) -> role


@dataclass
class DriveFile:
    id: str
    name: str
    mime_type: str
    parents: list[str]
    drive_id: str | None = None  # the shared drive holding it; None: someone's My Drive
    permissions: dict[str, str] = field(default_factory=dict)  # e-mail (lower case) -> role
    trashed: bool = False
    starred: bool = False
    created_time: str = field(default_factory=now_rfc3339)
    modified_time: str = field(default_factory=now_rfc3339)
    version: int = 1
    sheets: list[Sheet] = field(default_factory=list)
    _text: str | None = field(default=None, repr=False)

    def full_text(self) -> str:
        """Everything ``fullText contains`` searches: the name and every cell (cached)."""
        if self._text is None:
            cells = (str(v) for s in self.sheets for row in s.rows for v in row if v != "")
            self._text = " ".join([self.name, *cells])
        return self._text

    def touched(self) -> None:
        self.modified_time = now_rfc3339()
        self.version += 1
        self._text = None

    def resource(self, base_url: str) -> dict[str, Any]:
        """The Drive v3 File resource (the members the emulator knows)."""
        kind = "spreadsheets" if self.mime_type == SPREADSHEET else "drive/folders"
        link = (
            f"{base_url}/{kind}/d/{self.id}/edit"
            if self.mime_type == SPREADSHEET
            else f"{base_url}/{kind}/{self.id}"
        )
        resource: dict[str, Any] = {
            "kind": "drive#file",
            "id": self.id,
            "name": self.name,
            "mimeType": self.mime_type,
            "parents": list(self.parents),
            "trashed": self.trashed,
            "starred": self.starred,
            "createdTime": self.created_time,
            "modifiedTime": self.modified_time,
            "version": str(self.version),
            "webViewLink": link,
        }
        if self.drive_id:
            resource["driveId"] = self.drive_id
        return resource


FILE_MEMBERS = {
    "kind",
    "id",
    "name",
    "mimeType",
    "parents",
    "trashed",
    "starred",
    "createdTime",
    "modifiedTime",
    "version",
    "webViewLink",
    "driveId",
    "capabilities",
    "description",
    "owners",
    "size",
}


@dataclass
class Token:
    user: str
    scopes: frozenset[str]
    expires_at: float


@dataclass
class AnalyticsState:
    """The User Deletion API's side: who may file deletions for which GA4 property, what was
    filed, and the daily quota ("500 total queries per day (QPD), per calling API project";
    developers.google.com/analytics/devguides/config/userdeletion/v3/limits-quotas)."""

    # GA4 propertyId -> the accounts (service-account e-mails) with the Editor role on it.
    editors: dict[str, set[str]] = field(default_factory=dict)
    # (propertyId, id type, userId) -> deletionRequestTime of the latest upsert.
    deletions: dict[tuple[str, str, str], str] = field(default_factory=dict)
    daily_quota: int = 500
    used: dict[str, int] = field(default_factory=dict)  # UTC day -> requests counted


class GoogleState:
    """Folders, spreadsheets, tokens and quotas of one emulator."""

    def __init__(
        self, *, read_quota_per_minute: int = 0, quotas: GoogleQuotas | None = None
    ) -> None:
        self.lock = threading.RLock()
        self.files: dict[str, DriveFile] = {}
        self.drives: dict[str, SharedDrive] = {}
        self.tokens: dict[str, Token] = {}
        self.service_accounts: dict[str, Any] = {}  # client_email -> RSA public key
        # Domain-wide delegation as the Admin console grants it: client_email -> the scopes it
        # may use on behalf of the domain's users (absent: no delegation at all).
        self.delegations: dict[str, frozenset[str]] = {}
        # The domain's users (lower case) a service account may act for; None: anyone.
        self.domain_users: set[str] | None = None
        # A test knob older than ``quotas``: one per-user counter for every read of both APIs.
        self.read_quota_per_minute = read_quota_per_minute
        # The documented per-minute quotas (quotas.py); none unless asked for.
        self.quotas = quotas or GoogleQuotas()
        self.meter = QuotaMeter()
        # files.export refuses exports larger than this (10 MB, files.export reference).
        self.export_limit_bytes = 10 * 1024 * 1024
        # Drive may not search every shared drive under corpora=allDrives: "incompleteSearch:
        # Whether the search process was incomplete. If true, then some search results might be
        # missing, since all documents were not searched. This can occur when searching
        # multiple drives with the 'allDrives' corpora" (files.list reference, FileList).
        self.incomplete_all_drives = False
        self.analytics = AnalyticsState()
        self._reads: dict[str, deque[float]] = defaultdict(deque)
        self.next_number = 1  # of the next generated id

    def new_id(self) -> str:
        # Drive ids are 33-44 characters of URL-safe base64; the prefix keeps them readable.
        with self.lock:  # a plain counter (kept by sandbox/seed_cache.py): one taker at once
            number, self.next_number = self.next_number, self.next_number + 1
        return f"1emu{number:06d}" + secrets.token_urlsafe(24)[:28]

    def add_shared_drive(
        self, name: str, members: dict[str, str] | None = None, id: str | None = None
    ) -> str:
        """A shared drive; its top-level items have its id as their parent."""
        with self.lock:
            drive = SharedDrive(id or "0A" + self.new_id()[4:], name)
            for user, role in (members or {}).items():
                drive.members[user.lower()] = role
            self.drives[drive.id] = drive
            return drive.id

    def _place(self, file: DriveFile, shared_with: dict[str, str] | None) -> str:
        # An item under a shared drive (directly or through folders) belongs to that drive.
        for parent in file.parents:
            if parent in self.drives:
                file.drive_id = parent
            elif parent in self.files and self.files[parent].drive_id:
                file.drive_id = self.files[parent].drive_id
        for user, role in (shared_with or {}).items():
            self.share(file, user, role)
        self.files[file.id] = file
        return file.id

    def share(self, file: DriveFile, user: str, role: str) -> None:
        if role not in READ_ROLES:
            raise ValueError(f"unknown role {role!r}; one of {', '.join(READ_ROLES)}")
        file.permissions[user.lower()] = role

    def add_folder(
        self,
        name: str,
        parents: list[str] | None = None,
        id: str | None = None,
        shared_with: dict[str, str] | None = None,
    ) -> str:
        with self.lock:
            folder = DriveFile(id or self.new_id(), name, FOLDER, parents or ["root"])
            return self._place(folder, shared_with)

    def add_spreadsheet(
        self,
        name: str,
        sheets: dict[str, list[list[Any]]],
        parents: list[str] | None = None,
        id: str | None = None,
        shared_with: dict[str, str] | None = None,
    ) -> str:
        with self.lock:
            file = DriveFile(id or self.new_id(), name, SPREADSHEET, parents or ["root"])
            file.sheets = [
                Sheet(sheet_id=0 if i == 0 else 1000 + i, title=title, rows=[list(r) for r in rows])
                for i, (title, rows) in enumerate(sheets.items())
            ]
            return self._place(file, shared_with)

    def role(self, user: str, file: DriveFile) -> str | None:
        """The strongest role ``user`` holds on ``file``: a shared drive's membership, or a
        permission on the file or any folder above it; None when they have no access."""
        user = user.lower()
        roles = []
        if file.drive_id and file.drive_id in self.drives:
            roles.append(self.drives[file.drive_id].members.get(user))
        pending, seen = [file], set()
        while pending:
            item = pending.pop()
            if item.id in seen:
                continue
            seen.add(item.id)
            roles.append(item.permissions.get(user))
            pending += [self.files[p] for p in item.parents if p in self.files]
        held = [r for r in roles if r]
        return min(held, key=READ_ROLES.index) if held else None

    def can_read(self, user: str, file: DriveFile) -> bool:
        return self.role(user, file) is not None

    def can_write(self, user: str, file: DriveFile) -> bool:
        return self.role(user, file) in WRITE_ROLES

    def issue_token(self, user: str, scopes: frozenset[str], lifetime_s: int = 3600) -> str:
        token = "ya29.emu-" + secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = Token(user, scopes, time.time() + lifetime_s)
        return token

    def token(self, value: str) -> Token | None:
        with self.lock:
            token = self.tokens.get(value)
        if token is None or token.expires_at < time.time():
            return None
        return token

    def take_read(self, user: str) -> bool:
        """Count one read request against the user's per-minute quota; False when over it."""
        if not self.read_quota_per_minute:
            return True
        with self.lock:
            reads = self._reads[user]
            now = time.monotonic()
            while reads and reads[0] < now - 60:
                reads.popleft()
            if len(reads) >= self.read_quota_per_minute:
                return False
            reads.append(now)
            return True

    def spend_sheets(self, user: str, *, write: bool = False) -> Exceeded | None:
        """Count one Sheets request against the per-minute quotas; what is exceeded, if any."""
        q = self.quotas
        if write:
            per_user, per_project = q.sheets_writes_per_minute_per_user, q.sheets_writes_per_minute
            return self.meter.take("sheets-write", user, per_user, per_project)
        return self.meter.take(
            "sheets-read", user, q.sheets_reads_per_minute_per_user, q.sheets_reads_per_minute
        )

    def spend_drive(self, user: str) -> Exceeded | None:
        """Count one Drive request's units against the per-minute quotas."""
        q = self.quotas
        return self.meter.take(
            "drive",
            user,
            q.drive_units_per_minute_per_user,
            q.drive_units_per_minute,
            q.drive_units_per_request,
        )
