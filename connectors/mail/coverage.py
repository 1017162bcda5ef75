"""The coverage survey of Office 365 mail: mailboxes of the tenant that the mapping does not
list (with ``mailboxes: {all_users: true}`` every one is searched: nothing to find).

The tenant's users come from ``GET /users`` (``User.Read.All``, as ``all_users`` needs); a user
without ``mail`` has no mailbox. Each unlisted user's Inbox is read as one folder resource
(``GET /users/{id}/mailFolders/inbox?$select=id,totalItemCount``): that confirms an Exchange
Online mailbox and counts its messages, without reading one. A user Graph answers 404
``MailboxNotEnabledForRESTAPI`` for (a guest; a mailbox on premises) has no mailbox Graph can
search, so no mapping entry would help: not a finding.

An employee's address is personal data of the employee: a finding's ``place`` is the Graph
user id, the address its ``label`` (the officer's terminal only).
"""

from __future__ import annotations

from typing import Any

from connectors.base import Finding
from connectors.mail.client import GraphError
from connectors.mail.operations import MAILBOX_NOT_ENABLED, MailOperations


class MailSurvey:
    def __init__(self, ops: MailOperations) -> None:
        self.ops = ops
        self.mapping = ops.mapping

    def findings(self) -> list[Finding]:
        if self.mapping.mailboxes.all_users:
            return []
        mapped = {a.casefold() for a in self.mapping.mailboxes.addresses}
        request = self.ops.requests.list_users(["id", "mail", "userPrincipalName"], 999)
        found: list[Finding] = []
        for user in self.ops.items(None, "users", request):
            if not user.get("mail"):
                continue
            names = {str(user.get(k) or "").casefold() for k in ("mail", "userPrincipalName")}
            if names & mapped:
                continue
            messages = self._inbox_count(user["id"])
            if messages is not None:
                found.append(self._finding(user, messages))
        return found

    def _inbox_count(self, user_id: str) -> int | None:
        """The Inbox's message count; None if the user has no mailbox Graph can open."""
        request = self.ops.requests.folder(user_id, "inbox", ["id", "totalItemCount"])
        try:
            folder: dict[str, Any] = self.ops.graph.fetch(user_id, "folders", request)
        except GraphError as exc:
            if exc.status == 404 and exc.code == MAILBOX_NOT_ENABLED:
                return None
            raise self.ops.unavailable(user_id, exc) from exc
        return int(folder.get("totalItemCount") or 0)

    def _finding(self, user: dict[str, Any], messages: int) -> Finding:
        address = user.get("userPrincipalName") or user["mail"]
        listed = [*self.mapping.mailboxes.addresses, address]
        return Finding(
            source=self.ops.name,
            what="mailbox",
            place=user["id"],
            evidence=f"a mailbox the mapping does not list; its Inbox holds {messages} message(s)",
            snippet="mailboxes:\n  addresses:\n" + "".join(f"    - {a}\n" for a in listed).rstrip(),
            label=address,
        )
