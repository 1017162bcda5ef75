"""``POST /users/{id}/sendMail`` as Graph serves it (https://learn.microsoft.com/graph/api/
user-sendmail): the body is ``{"message": {...}, "saveToSentItems": bool}``, the answer
``202 Accepted`` with no body; application permission ``Mail.Send``; ``saveToSentItems``
defaults to true, and the sent message then lies in the sender's Sent Items, where the sandbox
(and a test) reads it back. A message without recipients is refused (400
``ErrorInvalidRecipients``).

Size: Graph takes file attachments inline only up to 3 MB; larger ones need an upload session
(https://learn.microsoft.com/graph/outlook-large-attachments), and a REST request body is capped
at 4 MB. The emulator refuses a body over 4 MB with 413; the error code it sends
(``ErrorRequestEntityTooLarge``) is the emulator's choice: the references do not give one.

The action's parameters are ``Message`` and ``SaveToSentItems`` in Graph's $metadata (what
msgraph-sdk sends) and ``message``/``saveToSentItems`` in the reference's examples: Graph takes
both, so the emulator reads them without regard to case.

Delivery to the recipients is not emulated: the subject's mailbox is outside the tenant.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sandbox.emulators.graph.store import GraphStore, Mailbox

MAX_REQUEST_BYTES = 4 * 1024 * 1024


def send_mail(store: GraphStore, box: Mailbox, body: Any, size: int) -> tuple[int, str, str]:
    """Validate and "send"; (status, error code, message) — status 202 when it was sent."""
    if size > MAX_REQUEST_BYTES:
        return 413, "ErrorRequestEntityTooLarge", "The request payload is too large."
    parameters = {str(k).lower(): v for k, v in body.items()} if isinstance(body, dict) else {}
    message = parameters.get("message")
    if not isinstance(message, dict):
        return 400, "ErrorInvalidRequest", "The message is missing from the request body."
    recipients = [
        r
        for name in ("toRecipients", "ccRecipients", "bccRecipients")
        for r in message.get(name) or []
    ]
    if not recipients or not all(
        isinstance(r, dict) and (r.get("emailAddress") or {}).get("address") for r in recipients
    ):
        return 400, "ErrorInvalidRecipients", "At least one recipient isn't valid."
    if parameters.get("savetosentitems", True) is not False:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        sender = {"emailAddress": {"address": box.address, "name": box.display_name}}
        saved: dict[str, Any] = {
            **{k: v for k, v in message.items() if k not in ("attachments", "@odata.type")},
            "from": sender,
            "sender": sender,
            "sentDateTime": now,
            "receivedDateTime": now,
            "isDraft": False,
            "folder": "Sent Items",
            "attachments": [
                a
                for a in message.get("attachments") or []
                if a.get("@odata.type") == "#microsoft.graph.fileAttachment"
            ],
        }
        store.add_message(box.address, saved)
    return 202, "", ""
