"""Who is asking: the application permissions (``roles``) of an app-only token, checked per
route as Graph checks them.

An app-only access token from Entra ID is a JWT whose ``roles`` claim lists the application
permissions granted to the app (https://learn.microsoft.com/entra/identity-platform/
access-token-claims-reference). The emulator reads the claim without verifying the signature
(it has no Entra ID keys). A bearer token that is not a JWT carries no roles to check and is let
through, as before; the sandbox's own token is a JWT with the roles it needs.
"""

from __future__ import annotations

import base64
import json

# The application permissions each route accepts (Graph's permission tables):
# - user: list/get: https://learn.microsoft.com/graph/api/user-list (User.Read.All and higher)
# - mailFolder list/get: https://learn.microsoft.com/graph/api/user-list-mailfolders
# - message list/get: https://learn.microsoft.com/graph/api/user-list-messages
#   (Mail.ReadBasic.All reads messages without their body or attachments)
# - attachments: https://learn.microsoft.com/graph/api/message-list-attachments (Mail.Read)
# - delete, permanentDelete: https://learn.microsoft.com/graph/api/message-delete,
#   https://learn.microsoft.com/graph/api/message-permanentdelete (Mail.ReadWrite only)
# - sendMail: https://learn.microsoft.com/graph/api/user-sendmail (Mail.Send only)
READ_USERS = frozenset(
    {
        "User.ReadBasic.All",
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
READ_MAIL_BASIC = frozenset({"Mail.ReadBasic.All", "Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite"})
READ_MAIL = frozenset({"Mail.Read", "Mail.ReadWrite"})
WRITE_MAIL = frozenset({"Mail.ReadWrite"})
SEND_MAIL = frozenset({"Mail.Send"})

BY_HANDLER = {
    "list_users": READ_USERS,
    "get_user": READ_USERS,
    "list_folders": READ_MAIL_BASIC,
    "get_folder": READ_MAIL_BASIC,
    "list_child_folders": READ_MAIL_BASIC,
    "list_messages": READ_MAIL_BASIC,
    "get_message": READ_MAIL_BASIC,
    "message_delta": READ_MAIL_BASIC,
    "list_attachments": READ_MAIL,
    "delete_message": WRITE_MAIL,
    "permanent_delete": WRITE_MAIL,
    "send_mail": SEND_MAIL,
}


def token_roles(token: str) -> frozenset[str] | None:
    """The ``roles`` of a JWT access token; None for a token that is no JWT (nothing to check).
    A JWT without ``roles`` has none: an app without application permissions."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except ValueError:
        return None
    roles = claims.get("roles") if isinstance(claims, dict) else None
    return frozenset(str(r) for r in roles) if isinstance(roles, list) else frozenset()


def allowed(handler: str, roles: frozenset[str] | None) -> bool:
    if roles is None:
        return True
    return bool(roles & BY_HANDLER.get(handler, frozenset()))
