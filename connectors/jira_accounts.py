"""The subject's own Jira customer account: what kind it is, and deleting it after erasure.

Removing a customer from a service desk leaves the account in Jira's user directory with its
address and name. The platform's Delete user (``DELETE /rest/api/2/user``: ``accountId`` on
Cloud, ``username`` on Data Center; site administration; 204, or 404 for an unknown user)
removes it from Jira; issues keep the accountId and show it as "Former user". Service
Management has no removal of its own for a customer account (its ``revoke-portal-only-access``
only takes the portal login away), so the platform route is the one used.

Only portal-only customer accounts are deleted: an agent's or a staff member's account (Cloud
``accountType`` other than ``customer``; on Data Center a user holding an application role) is
licensed and used for work, so the officer removes it through user management. And only an
account whose address is exactly one of the subject's: it is read again before the delete.
"""

from __future__ import annotations

from typing import Any

from connectors.jira_client import JiraClient
from dsrflow.identifiers import email_key

CUSTOMER = "customer"  # Jira Cloud's accountType of a portal-only customer
LICENSED = "licensed"  # a Data Center user with an application role (an agent)
DELETED = "removed from the service desk and the customer account deleted"
AGENT_KEPT = "an agent account: the officer removes it through user management"
SWITCHED_OFF = "erasure.delete_customer_accounts is off"


def _id_param(client: JiraClient) -> str:
    # Cloud knows users only by accountId since the GDPR changes; Data Center by user name.
    return "accountId" if client.is_cloud else "username"


def read_user(client: JiraClient, account: str) -> dict[str, Any] | None:
    """The user as Jira has it now (with application roles on Data Center), None if gone."""
    params = {_id_param(client): account}
    if not client.is_cloud:
        params["expand"] = "applicationRoles"
    return client.call(
        "reading a user",
        lambda: client.jira._get_json("user", params=params),
        missing_ok=True,
    )


def account_type(client: JiraClient, user: dict[str, Any], account: str) -> str:
    """``customer`` for a portal-only account; otherwise what Jira calls it (``atlassian``,
    ``app``) or ``licensed`` on Data Center, which has no accountType."""
    if client.is_cloud and user.get("accountType"):
        return str(user["accountType"])
    full = user if "applicationRoles" in user else read_user(client, account)
    roles = ((full or {}).get("applicationRoles") or {}).get("size", 0)
    return LICENSED if roles else CUSTOMER


def planned_reason(kind: str | None, enabled: bool) -> str:
    """What the plan says a customer record's DELETE does to the account."""
    if not enabled:
        return f"removed from the service desk; the account is kept: {SWITCHED_OFF}"
    if kind == CUSTOMER:
        return DELETED
    return f"removed from the service desk; the account is kept: {AGENT_KEPT}"


def delete_own_account(
    client: JiraClient, account: str, emails: frozenset[str], *, enabled: bool
) -> tuple[bool, str | None]:
    """Delete the account if it is the subject's own portal-only customer account.

    Returns (whether something was deleted, why the account stays when it does). Reads the
    account first, so that a second run finds it gone and deletes nothing."""
    if not enabled:
        return False, f"the account is kept: {SWITCHED_OFF}"
    user = read_user(client, account)
    if user is None:
        return False, None
    if email_key(user.get("emailAddress")) not in emails:
        return False, "the account is kept: its address is not the subject's"
    if account_type(client, user, account) != CUSTOMER:
        return False, f"the account is kept: {AGENT_KEPT}"
    client.call(
        "deleting a customer account",
        lambda: client.jira._session.delete(
            client.jira._get_url("user"), params={_id_param(client): account}
        ),
        missing_ok=True,
        confirm=lambda: read_user(client, account) is None,
    )
    return True, None
