"""Who is named as ``sender`` or ``replyTo`` of which message: the fields that KQL's
``participants`` does not cover, so that ``$search`` cannot find a subject named only there.

Scanning every mailbox on every request would find them, at the cost of reading all mail each
time. Instead the index is kept current by Graph delta queries, one per mail folder
(https://learn.microsoft.com/graph/delta-query-messages): the first round reads each folder once,
later rounds only what changed since (new, changed, moved, deleted mail). A round runs before
every discovery and after every erasure (so that deleted mail leaves the index), and with the
scheduled retention sweep (so that the round a request waits for stays short).

Stored in one SQLite file readable by its owner only. It holds no address in clear: each
normalised address is kept as an HMAC-SHA256 under a random key kept in the same file, which
keeps the addresses out of casual reads and backups' text search, not from whoever holds the
file. Entries point at a mailbox and a Graph message id; a hit is read and confirmed exactly like
a search hit before it becomes a record.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from connectors.base import SourceUnavailable
from connectors.mail.client import GraphError
from connectors.mail.match import fold_plus
from connectors.mail.operations import MailOperations
from dsrflow.identifiers import email_key

INDEXED_FIELDS = ("sender", "replyTo")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS secret (k BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    h TEXT NOT NULL, mailbox TEXT NOT NULL, message_id TEXT NOT NULL,
    PRIMARY KEY (h, mailbox, message_id)
);
CREATE INDEX IF NOT EXISTS entries_by_message ON entries (mailbox, message_id);
CREATE TABLE IF NOT EXISTS rounds (
    mailbox TEXT NOT NULL, folder_id TEXT NOT NULL, delta_link TEXT NOT NULL,
    PRIMARY KEY (mailbox, folder_id)
);
"""


def addresses_of(message: dict[str, Any]) -> set[str]:
    """The normalised addresses in a message's sender and replyTo (and each one's form without a
    ``+tag``, for mappings that fold plus-addressing)."""
    found = set()
    for name in INDEXED_FIELDS:
        value = message.get(name)
        for entry in value if isinstance(value, list) else [value]:
            email = entry.get("emailAddress") if isinstance(entry, dict) else None
            key = email_key(email.get("address")) if isinstance(email, dict) else None
            if key:
                found |= {key, fold_plus(key)}
    return found


class ParticipantIndex:
    """The sender/replyTo index in one owner-only SQLite file (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Created owner-only, never briefly wider.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(path, 0o600)
        self.db = sqlite3.connect(path)
        self.db.executescript(_SCHEMA)
        row = self.db.execute("SELECT k FROM secret").fetchone()
        if row is None:
            self._key = secrets.token_bytes(32)
            self.db.execute("INSERT INTO secret (k) VALUES (?)", (self._key,))
            self.db.commit()
        else:
            self._key = bytes(row[0])

    def close(self) -> None:
        self.db.close()

    def _hash(self, address: str) -> str:
        return hmac.new(self._key, address.encode(), hashlib.sha256).hexdigest()

    # -- reading ----------------------------------------------------------------------------------

    def lookup(self, addresses: Iterable[str]) -> dict[str, set[str]]:
        """Mailbox -> Graph ids of messages naming one of ``addresses`` (normalised) as sender
        or replyTo, as of the last round."""
        hashes = sorted({self._hash(a) for a in addresses})
        found: dict[str, set[str]] = defaultdict(set)
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT mailbox, message_id FROM entries WHERE h IN ({marks})"
            for mailbox, message_id in self.db.execute(query, chunk):
                found[mailbox].add(message_id)
        return dict(found)

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    # -- keeping it current -----------------------------------------------------------------------

    def sync(self, ops: MailOperations) -> int:
        """One delta round over every folder of every mailbox; the number of changes applied.
        A mailbox without Exchange Online mailbox is skipped (``ops.unsearchable``)."""
        changes = 0
        for mailbox in ops.mailboxes():
            folders = self._folders(ops, mailbox)
            if folders is None:
                continue
            for folder_id in folders:
                changes += self._sync_folder(ops, mailbox, folder_id)
        return changes

    @staticmethod
    def _folders(ops: MailOperations, mailbox: str) -> list[str] | None:
        """Every folder id of a mailbox, child folders included (None: no mailbox)."""
        select = ["id", "childFolderCount"]
        try:
            first = ops.graph.fetch(mailbox, "index", ops.requests.folders(mailbox, select, 250))
        except GraphError as exc:
            if ops.note_unsearchable(mailbox, exc.status, exc.code):
                return None
            raise ops.unavailable(mailbox, exc) from exc
        pending = list(ops.pages_of(mailbox, "index", first))
        ids = []
        while pending:
            folder = pending.pop()
            ids.append(folder["id"])
            if folder.get("childFolderCount"):
                children = ops.requests.child_folders(mailbox, folder["id"], select, 250)
                pending += ops.items(mailbox, "index", children)
        return ids

    def _sync_folder(self, ops: MailOperations, mailbox: str, folder_id: str) -> int:
        row = self.db.execute(
            "SELECT delta_link FROM rounds WHERE mailbox = ? AND folder_id = ?",
            (mailbox, folder_id),
        ).fetchone()
        if row is None:
            request = ops.requests.delta(mailbox, folder_id, ["id", *INDEXED_FIELDS])
        else:
            request = ops.requests.url(row[0])
        page = ops.get(mailbox, "index", request)
        changes = 0
        while True:
            for item in page.get("value") or []:
                changes += 1
                self.db.execute(
                    "DELETE FROM entries WHERE mailbox = ? AND message_id = ?",
                    (mailbox, item["id"]),
                )
                if "@removed" in item:
                    continue
                self.db.executemany(
                    "INSERT OR IGNORE INTO entries (h, mailbox, message_id) VALUES (?, ?, ?)",
                    [(self._hash(a), mailbox, item["id"]) for a in addresses_of(item)],
                )
            if page.get("@odata.deltaLink"):
                self.db.execute(
                    "INSERT OR REPLACE INTO rounds (mailbox, folder_id, delta_link) "
                    "VALUES (?, ?, ?)",
                    (mailbox, folder_id, page["@odata.deltaLink"]),
                )
                self.db.commit()  # the entries and the state they reach, together
                return changes
            link = page.get("@odata.nextLink")
            if not link:
                self.db.rollback()
                raise SourceUnavailable(
                    ops.name, f"mailbox {mailbox}: a delta round ended without a deltaLink"
                )
            page = ops.get(mailbox, "index", ops.requests.url(link))
