"""The coverage survey of Office 365 mail: mailboxes of the tenant that the mapping does not
list (with ``mailboxes: {all_users: true}`` every one is searched: nothing to find).

The tenant's users come from ``GET /users`` (``User.Read.All``, as ``all_users`` needs); a user
without ``mail`` has no mailbox. Each unlisted user's Inbox is read as one folder resource
(``GET /users/{id}/mailFolders/inbox?$select=id,totalItemCount``): that confirms an Exchange
Online mailbox and counts its messages, without reading one. A user Graph answers 404
``MailboxNotEnabledForRESTAPI`` for (a guest; a mailbox on premises) has no mailbox Graph can
search, so no mapping entry would help: not a finding. One it answers 403 ``ErrorAccessDenied``
for (an application access policy that keeps the app to the mapped mailboxes, as README.md
advises) is a finding without a count: Graph lists the user with a mail address, and only
adding the mailbox to the mapping (and to the policy's group) lets a request search it.

An employee's address is personal data of the employee: a finding's ``place`` is the Graph
user id, the address its ``label`` (the officer's terminal only).
"""

from __future__ import annotations

from typing import Any

from connectors.base import Finding
from connectors.mail.client import GraphError
from connectors.mail.operations import MAILBOX_NOT_ENABLED, MailOperations

ACCESS_DENIED = "ErrorAccessDenied"


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
            inbox = self._inbox(user["id"])
            if inbox is not None:
                found.append(self._finding(user, inbox))
        return found

    def _inbox(self, user_id: str) -> str | None:
        """What the Inbox says (its message count); None if the user has no mailbox Graph can
        open. A mailbox the app may not open (403 ErrorAccessDenied: an application access
        policy keeps the app to the mapped mailboxes, or no Mail.Read) is still a mailbox."""
        request = self.ops.requests.folder(user_id, "inbox", ["id", "totalItemCount"])
        try:
            folder: dict[str, Any] = self.ops.graph.fetch(user_id, "folders", request)
        except GraphError as exc:
            if exc.status == 404 and exc.code == MAILBOX_NOT_ENABLED:
                return None
            if exc.status == 403 and exc.code == ACCESS_DENIED:
                return (
                    f"the app may not open it ({exc.describe()}), so its messages were not counted"
                )
            raise self.ops.unavailable(user_id, exc) from exc
        return f"its Inbox holds {int(folder.get('totalItemCount') or 0)} message(s)"

    def _finding(self, user: dict[str, Any], inbox: str) -> Finding:
        address = user.get("userPrincipalName") or user["mail"]
        listed = [*self.mapping.mailboxes.addresses, address]
        return Finding(
            source=self.ops.name,
            what="mailbox",
            place=user["id"],
            evidence=f"a mailbox the mapping does not list; {inbox}",
            snippet="mailboxes:\n  addresses:\n" + "".join(f"    - {a}\n" for a in listed).rstrip(),
            label=address,
        )
