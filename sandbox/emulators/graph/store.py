"""The Graph emulator's state: users, their mail folders, messages and attachments.

Messages are kept as Graph resource dicts (the shape ``GET …/messages/{id}`` returns), plus a
small amount of private bookkeeping (``_Stored``) that the search needs. Ids behave as Exchange's
do: opaque, per mailbox, and a message moved to another folder gets a new id.

One lock guards everything: the app serves from one event loop, but tests and the sandbox read
and load from other threads.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# Well-known folders every mailbox has (Graph accepts these names in place of folder ids).
WELL_KNOWN_FOLDERS = {
    "inbox": "Inbox",
    "sentitems": "Sent Items",
    "deleteditems": "Deleted Items",
    "drafts": "Drafts",
    "archive": "Archive",
}
RECIPIENT_FIELDS = ("toRecipients", "ccRecipients", "bccRecipients", "replyTo")


def new_message_id() -> str:
    """Shaped like Exchange's ids (base64url, ``AAMk`` prefix); opaque to clients anyway."""
    return "AAMkAD" + base64.urlsafe_b64encode(secrets.token_bytes(30)).decode().rstrip("=")


def new_attachment_id() -> str:
    return "AAMkAQ" + base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("=")


def _folder_id(mailbox: str, name: str) -> str:
    digest = hashlib.sha256(f"{mailbox}/{name}".encode()).digest()[:24]
    return "AAMkAF" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Folder:
    id: str
    display_name: str
    well_known: str | None = None
    parent_id: str | None = None  # None: a top-level folder (under the mailbox's root)

    def resource(self, total: int, root_id: str, children: int = 0) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "parentFolderId": self.parent_id or root_id,
            "childFolderCount": children,
            "unreadItemCount": 0,
            "totalItemCount": total,
            "isHidden": False,
        }


@dataclass
class Stored:
    """One message: the resource, its attachments, and lower-cased text for ``$search``."""

    resource: dict[str, Any]
    attachments: list[dict[str, Any]]
    participants_text: str
    default_text: str  # from, subject, body: Exchange's default search properties
    seq: int = 0  # the store's change counter when this message last changed (delta queries)


@dataclass
class Mailbox:
    user_id: str
    address: str
    display_name: str
    folders: dict[str, Folder] = field(default_factory=dict)  # by folder id
    messages: dict[str, Stored] = field(default_factory=dict)  # by message id, insertion order
    by_internet_id: dict[str, set[str]] = field(default_factory=dict)  # -> message ids
    # False: a directory user without an Exchange Online mailbox (a guest, or a hybrid user
    # whose mailbox is on premises): Graph's mail routes answer 404 MailboxNotEnabledForRESTAPI.
    mail_enabled: bool = True
    mail: str | None = None  # the user's mail attribute when not the UPN (a guest's own address)
    # Recoverable Items (the dumpster): message id -> (subfolder, message). No Graph message
    # list shows it; permanentDelete puts an item in Purges, a delete from Deleted Items in
    # Deletions (https://learn.microsoft.com/graph/api/message-permanentdelete).
    recoverable: dict[str, tuple[str, Stored]] = field(default_factory=dict)
    # (change counter, folder id, message id) of each message that left a folder: what a
    # folder's delta query reports as @removed.
    removed: list[tuple[int, str, str]] = field(default_factory=list)
    user_type: str = "Member"

    def index(self, stored: Stored) -> None:
        key = str(stored.resource.get("internetMessageId"))
        self.by_internet_id.setdefault(key, set()).add(stored.resource["id"])

    def unindex(self, stored: Stored) -> None:
        key = str(stored.resource.get("internetMessageId"))
        self.by_internet_id.get(key, set()).discard(stored.resource["id"])

    def folder(self, key: str) -> Folder | None:
        """By id or well-known name (``inbox``), as Graph resolves folder segments."""
        if key in self.folders:
            return self.folders[key]
        return next((f for f in self.folders.values() if f.well_known == key.lower()), None)

    @property
    def root_id(self) -> str:
        return _folder_id(self.address, "msgfolderroot")

    def folder_named(self, path: str) -> Folder:
        """The folder at ``path`` (display names, ``Inbox/Contracts`` for a child folder),
        created if missing."""
        parent: Folder | None = None
        for name in [part for part in path.split("/") if part]:
            parent_id = parent.id if parent else None
            found = next(
                (
                    f
                    for f in self.folders.values()
                    if f.parent_id == parent_id and f.display_name.lower() == name.lower()
                ),
                None,
            )
            if found is None:
                key = f"{parent_id or ''}/{name.lower()}"
                found = Folder(_folder_id(self.address, key), name, parent_id=parent_id)
                self.folders[found.id] = found
            parent = found
        if parent is None:
            raise ValueError(f"mailbox {self.address}: an empty folder name")
        return parent


def _address_text(recipient: Mapping[str, Any] | None) -> str:
    if not recipient:
        return ""
    email = recipient.get("emailAddress") or {}
    return f"{email.get('name') or ''} {email.get('address') or ''}"


def search_texts(message: Mapping[str, Any]) -> tuple[str, str]:
    """(participants, default) text of a message, lower-cased, for token search.

    ``participants`` covers from, to, cc and bcc (Exchange's definition); the default
    properties are from, subject and body.
    """
    people = [_address_text(message.get("from"))]
    for name in ("toRecipients", "ccRecipients", "bccRecipients"):
        people += [_address_text(r) for r in message.get(name) or []]
    body = (message.get("body") or {}).get("content") or ""
    default = " ".join([_address_text(message.get("from")), message.get("subject") or "", body])
    return " ".join(people).lower(), default.lower()


class GraphStore:
    """Every mailbox of the emulated tenant."""

    def __init__(self, tenant_domain: str = "fjelltopp.example") -> None:
        self.tenant_domain = tenant_domain
        self.lock = threading.RLock()
        self.mailboxes: dict[str, Mailbox] = {}  # by user id
        self.seq = 0  # bumped by every change to a message (delta tokens are built on it)

    def _tick(self) -> int:
        self.seq += 1
        return self.seq

    # -- users and mailboxes --------------------------------------------------------------------

    def add_mailbox(self, address: str, display_name: str | None = None) -> Mailbox:
        with self.lock:
            existing = self.mailbox(address)
            if existing:
                return existing
            user_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailbox:{address.lower()}"))
            box = Mailbox(user_id, address, display_name or address.split("@")[0].title())
            for well_known, name in WELL_KNOWN_FOLDERS.items():
                folder = Folder(_folder_id(address, well_known), name, well_known)
                box.folders[folder.id] = folder
            self.mailboxes[user_id] = box
            return box

    def add_user_without_mailbox(
        self, address: str, user_type: str = "Guest", mail: str | None = None
    ) -> Mailbox:
        """A user the directory lists (with a ``mail`` address) who has no Exchange Online
        mailbox: a guest (``address``: the ``…#EXT#@tenant`` UPN, ``mail``: their own address),
        or (``user_type="Member"``) a hybrid user whose mailbox is on premises."""
        with self.lock:
            box = self.add_mailbox(address)
            box.mail_enabled = False
            box.user_type = user_type
            box.mail = mail
            return box

    def mailbox(self, key: str) -> Mailbox | None:
        """By user id or by address (userPrincipalName), case-insensitively."""
        with self.lock:
            if key in self.mailboxes:
                return self.mailboxes[key]
            lowered = key.lower()
            return next((b for b in self.mailboxes.values() if b.address.lower() == lowered), None)

    def users(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {
                    "id": b.user_id,
                    "displayName": b.display_name,
                    "mail": b.mail or b.address,
                    "userPrincipalName": b.address,
                    "userType": b.user_type,
                }
                for b in self.mailboxes.values()
            ]

    # -- messages --------------------------------------------------------------------------------

    def add_message(self, address: str, message: Mapping[str, Any]) -> dict[str, Any]:
        """Store one message given in Graph's shape (the ``mail.json`` fixture format).

        ``id`` is optional; a ``folder`` display name may stand in for ``parentFolderId``;
        attachments are fileAttachment objects with base64 ``contentBytes``.
        """
        with self.lock:
            box = self.mailbox(address) or self.add_mailbox(address)
            data = {k: v for k, v in message.items() if k not in ("attachments", "folder")}
            if "folder" in message:
                data["parentFolderId"] = box.folder_named(str(message["folder"])).id
            elif data.get("parentFolderId"):
                folder = box.folder(str(data["parentFolderId"]))
                data["parentFolderId"] = (
                    folder.id if folder else box.folder_named(str(data["parentFolderId"])).id
                )
            else:
                data["parentFolderId"] = box.folder("inbox").id  # type: ignore[union-attr]
            message_id = str(data.get("id") or new_message_id())
            if message_id in box.messages:
                raise ValueError(f"mailbox {address}: message id {message_id!r} given twice")
            received = data.get("receivedDateTime") or _now()
            data.setdefault("sentDateTime", received)
            data["receivedDateTime"] = received
            data.setdefault("createdDateTime", received)
            data.setdefault("lastModifiedDateTime", received)
            data.setdefault("subject", "")
            data.setdefault("body", {"contentType": "text", "content": ""})
            data.setdefault("sender", data.get("from"))
            for name in RECIPIENT_FIELDS:
                data.setdefault(name, [])
            data.setdefault("internetMessageId", f"<{uuid.uuid4().hex}@{self.tenant_domain}>")
            data.setdefault("conversationId", "AAQkAD" + uuid.uuid4().hex)
            data.setdefault("isRead", True)
            data.setdefault("isDraft", False)
            data.setdefault("importance", "normal")
            data.setdefault("categories", [])
            content = str(data["body"].get("content") or "")
            data.setdefault("bodyPreview", " ".join(content.split())[:255])
            attachments = [self._attachment(a) for a in message.get("attachments") or []]
            data["hasAttachments"] = bool(attachments)
            data["id"] = message_id
            participants, default = search_texts(data)
            stored = Stored(data, attachments, participants, default, self._tick())
            box.messages[message_id] = stored
            box.index(stored)
            return data

    @staticmethod
    def _attachment(raw: Mapping[str, Any]) -> dict[str, Any]:
        content = str(raw.get("contentBytes") or "")
        size = raw.get("size")
        if size is None:
            size = len(base64.b64decode(content)) if content else 0
        return {
            "@odata.type": "#microsoft.graph.fileAttachment",
            "id": str(raw.get("id") or new_attachment_id()),
            "lastModifiedDateTime": raw.get("lastModifiedDateTime") or _now(),
            "name": raw.get("name") or "attachment",
            "contentType": raw.get("contentType") or "application/octet-stream",
            "size": int(size),
            "isInline": bool(raw.get("isInline", False)),
            "contentId": raw.get("contentId"),
            "contentLocation": raw.get("contentLocation"),
            "contentBytes": content,
        }

    def load(self, mailboxes: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, int]:
        """Load ``{"mailbox address": [message, ...]}``; returns messages per mailbox."""
        counts: dict[str, int] = {}
        with self.lock:
            for address, messages in mailboxes.items():
                self.add_mailbox(address)
                counts[address] = 0
                for message in messages:
                    self.add_message(address, message)
                    counts[address] += 1
        return counts

    def move(self, box: Mailbox, message_id: str, folder: Folder) -> dict[str, Any]:
        """Move a message; like Exchange, the moved item gets a new id."""
        with self.lock:
            stored = box.messages.pop(message_id)
            box.unindex(stored)
            box.removed.append((self._tick(), stored.resource["parentFolderId"], message_id))
            stored.seq = self._tick()
            new_id = new_message_id()
            stored.resource = {
                **stored.resource,
                "id": new_id,
                "parentFolderId": folder.id,
                "lastModifiedDateTime": _now(),
            }
            box.messages[new_id] = stored
            box.index(stored)
            return stored.resource

    def remove(self, box: Mailbox, message_id: str, to: str = "Purges") -> None:
        """Out of the mailbox's folders into Recoverable Items (``to``: Purges, Deletions),
        where Exchange keeps it for the deleted-item retention, or indefinitely under a hold."""
        with self.lock:
            stored = box.messages.pop(message_id)
            box.unindex(stored)
            box.removed.append((self._tick(), stored.resource["parentFolderId"], message_id))
            box.recoverable[message_id] = (to, stored)

    def recoverable_count(self) -> dict[str, int]:
        """Items in Recoverable Items, by subfolder, over every mailbox."""
        counts: dict[str, int] = {}
        with self.lock:
            for box in self.mailboxes.values():
                for folder, _ in box.recoverable.values():
                    counts[folder] = counts.get(folder, 0) + 1
        return counts

    def all_messages(self) -> Iterator[tuple[Mailbox, Stored]]:
        with self.lock:
            snapshot = [(b, s) for b in self.mailboxes.values() for s in b.messages.values()]
        yield from snapshot

    def count(self) -> int:
        with self.lock:
            return sum(len(b.messages) for b in self.mailboxes.values())
