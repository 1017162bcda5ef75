"""Reading new privacy mail from one folder of one mailbox (dsrflow/intake.py).

msgraph-sdk's request builders over ``GraphSession``: the mailbox's top-level folders (List
mailFolders) to find the folder by its display name, then its messages received since a moment
(List messages, GET /users/{id}/mailFolders/{id}/messages with ``$filter`` on
``receivedDateTime``), following ``@odata.nextLink`` a page at a time. Graph refuses or a
mailbox Graph cannot reach (404 ``MailboxNotEnabledForRESTAPI``) makes the channel unavailable:
a mailbox not read is never taken for an empty one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from connectors.base import SourceUnavailable
from connectors.mail.client import GraphError, GraphSession, Request, message_dict
from connectors.mail.retention import graph_instant
from dsrflow.intake import Channel, Incoming

_FOLDER_SELECT = ["id", "displayName"]
# What the intake needs of a message: no body (``bodyPreview``, 255 characters, is enough
# for the keyword rules), no recipients.
_MESSAGE_SELECT = [
    "id",
    "conversationId",
    "internetMessageId",
    "receivedDateTime",
    "subject",
    "bodyPreview",
    "from",
]
PAGE = 50


class MailIntake:
    """One mailbox folder of a mail source, read through ``session``."""

    def __init__(self, session: GraphSession, mailbox: str, folder: str) -> None:
        self.session = session
        self.mailbox = mailbox
        self.folder = folder

    def _get(self, request: Request) -> dict[str, Any]:
        try:
            return self.session.fetch(self.mailbox, "intake", request)
        except GraphError as exc:
            raise SourceUnavailable(
                self.session.source_name,
                f"the intake mailbox: Microsoft Graph answered {exc.describe()}",
            ) from exc

    def _items(self, request: Request) -> Iterator[dict[str, Any]]:
        page = self._get(request)
        while True:
            yield from page.get("value") or []
            link = page.get("@odata.nextLink")
            if not link:
                return
            page = self._get(self.session.requests.url(link))

    def folder_id(self) -> str:
        wanted = self.folder.casefold()
        listing = self.session.requests.folders(self.mailbox, _FOLDER_SELECT, 250)
        for folder in self._items(listing):
            if str(folder.get("displayName", "")).casefold() == wanted:
                return str(folder["id"])
        raise SourceUnavailable(
            self.session.source_name,
            f"the intake mailbox has no top-level folder named {self.folder!r} "
            "(intake.mailbox.folder)",
        )

    def received_since(self, since: dt.datetime) -> Iterator[Incoming]:
        """The folder's messages received at or after ``since``."""
        request = self.session.requests.folder_messages(
            self.mailbox,
            self.folder_id(),
            f"receivedDateTime ge {graph_instant(since)}",
            _MESSAGE_SELECT,
            PAGE,
            None,
        )
        for raw in self._items(request):
            yield incoming(message_dict(raw))


def incoming(message: dict[str, Any]) -> Incoming:
    """A message as the intake reads it: its conversation (a reply or a reminder in the same
    thread is the same request, not a new one; Graph's ``id`` would also change when the mail
    is moved), when it was received, the sender, subject and preview."""
    sender = (message.get("from") or {}).get("emailAddress") or {}
    received = dt.datetime.fromisoformat(str(message["receivedDateTime"]).replace("Z", "+00:00"))
    return Incoming(
        channel=Channel.MAIL,
        reference=str(
            message.get("conversationId") or message.get("internetMessageId") or message["id"]
        ),
        received_at=received,
        requester_email=sender.get("address"),
        text=f"{message.get('subject') or ''}\n{message.get('bodyPreview') or ''}",
    )
