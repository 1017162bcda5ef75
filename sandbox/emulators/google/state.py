"""What the Drive + Sheets emulator holds: folders and spreadsheets, their sheets and cells,
issued access tokens and the per-user read quota. One lock guards it all: a change is visible
to the next request, whatever thread serves it."""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

FOLDER = "application/vnd.google-apps.folder"
SPREADSHEET = "application/vnd.google-apps.spreadsheet"
# A new Google sheet is 1000 rows by 26 columns; the grid grows to hold what is loaded.
DEFAULT_ROWS = 1000
DEFAULT_COLS = 26


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Sheet:
    sheet_id: int
    title: str
    rows: list[list[Any]]
    row_count: int = DEFAULT_ROWS
    column_count: int = DEFAULT_COLS

    def __post_init__(self) -> None:
        self.row_count = max(self.row_count, len(self.rows))
        self.column_count = max(self.column_count, max((len(r) for r in self.rows), default=0))

    def properties(self, index: int) -> dict[str, Any]:
        return {
            "sheetId": self.sheet_id,
            "title": self.title,
            "index": index,
            "sheetType": "GRID",
            "gridProperties": {"rowCount": self.row_count, "columnCount": self.column_count},
        }


@dataclass
class DriveFile:
    id: str
    name: str
    mime_type: str
    parents: list[str]
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
        return {
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
    "description",
    "owners",
    "size",
}


@dataclass
class Token:
    user: str
    scopes: frozenset[str]
    expires_at: float


class GoogleState:
    """Folders, spreadsheets, tokens and quotas of one emulator."""

    def __init__(self, *, read_quota_per_minute: int = 0) -> None:
        self.lock = threading.RLock()
        self.files: dict[str, DriveFile] = {}
        self.tokens: dict[str, Token] = {}
        self.service_accounts: dict[str, Any] = {}  # client_email -> RSA public key
        self.read_quota_per_minute = read_quota_per_minute
        self._reads: dict[str, deque[float]] = defaultdict(deque)
        self._ids = itertools.count(1)

    def new_id(self) -> str:
        # Drive ids are 33-44 characters of URL-safe base64; the prefix keeps them readable.
        return f"1emu{next(self._ids):06d}" + secrets.token_urlsafe(24)[:28]

    def add_folder(self, name: str, parents: list[str] | None = None, id: str | None = None) -> str:
        with self.lock:
            folder = DriveFile(id or self.new_id(), name, FOLDER, parents or ["root"])
            self.files[folder.id] = folder
            return folder.id

    def add_spreadsheet(
        self,
        name: str,
        sheets: dict[str, list[list[Any]]],
        parents: list[str] | None = None,
        id: str | None = None,
    ) -> str:
        with self.lock:
            file = DriveFile(id or self.new_id(), name, SPREADSHEET, parents or ["root"])
            file.sheets = [
                Sheet(sheet_id=0 if i == 0 else 1000 + i, title=title, rows=[list(r) for r in rows])
                for i, (title, rows) in enumerate(sheets.items())
            ]
            self.files[file.id] = file
            return file.id

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
