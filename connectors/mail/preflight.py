"""Before a request runs: the app's Graph permissions (from its token's roles) against what the
right needs, and every mapped mailbox reachable (or, for all_users, the tenant's users
listable)."""

from __future__ import annotations

import base64
import json

from connectors.base import SourceUnavailable
from connectors.mail.client import NoToken
from connectors.mail.operations import MailOperations
from dsrflow.request import RequestType

# Graph application permissions (the ``roles`` of an app-only token), each with the ones that
# include it. Reading mail, listing users (all_users), deleting mail (erasure).
_READ_MAIL = ("Mail.Read", "Mail.ReadWrite")
_WRITE_MAIL = ("Mail.ReadWrite",)
_READ_USERS = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All")


def token_roles(token: str) -> set[str] | None:
    """The ``roles`` claim of an app-only access token (a JWT: its application permissions);
    None for a token that is no JWT. Read, not verified: Graph verifies it on every request."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    roles = claims.get("roles") if isinstance(claims, dict) else None
    return {str(r) for r in roles} if isinstance(roles, list) else set()


def preflight(ops: MailOperations, right: RequestType) -> list[str]:
    """What stands in the way of ``right`` on this source, one sentence each."""
    problems = permission_problems(ops, right)
    mapping = ops.mapping
    if mapping.mailboxes.all_users and not any("User.Read.All" in p for p in problems):
        # (Without the permission the listing is refused: said once, above.)
        try:
            next(iter(ops.mailboxes()), None)  # the first page of GET /users
        except SourceUnavailable as exc:
            problems.append(f"the tenant's users cannot be listed: {exc.reason}")
    for index, address in enumerate(mapping.mailboxes.addresses):
        try:
            ops.get(address, "folders", ops.requests.folders(address, ["id"], 1))
        except SourceUnavailable as exc:
            problems.append(
                f"mapping {ops.settings.mapping} mailboxes.addresses.{index}: {exc.reason}"
            )
    return problems


def permission_problems(ops: MailOperations, right: RequestType) -> list[str]:
    """The Graph application permissions ``right`` needs that the app's token lacks."""
    try:
        token = ops.graph.app_token()
    except NoToken as exc:
        return [f"no token for the app (tenant_id, client_id, client_secret): {exc}"]
    roles = token_roles(token)
    if roles is None:
        return []  # the sandbox's static token carries no roles to check
    needs: list[tuple[str, ...]] = [_READ_MAIL] + (
        [_READ_USERS] if ops.mapping.mailboxes.all_users else []
    )
    if right is RequestType.ERASURE:
        needs.append(_WRITE_MAIL)
    return [
        f"the app lacks the Graph application permission {any_of[0]} (admin consent "
        f"granted), which {right.value} needs"
        for any_of in needs
        if not roles & set(any_of)
    ]
