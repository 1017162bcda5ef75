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

Who an account belongs to is decided by an address Jira shows. Jira Cloud hides a user's
address where their profile visibility says so (``emailAddress`` absent: "Depending on the
user's privacy setting, this may be returned as null", User, Cloud platform REST API v2) and
answers a user search with nothing at all without Browse users and groups ("Anonymous calls or
calls by users without the required permission return empty search results", Find users).
Neither is an absence: the source is incomplete, and the errors below say what the officer does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.base import SourceUnavailable
from dsrflow.identifiers import email_key

if TYPE_CHECKING:  # the mapping plans with this module's texts without loading the SDK
    from connectors.jira.client import JiraClient

CUSTOMER = "customer"  # Jira Cloud's accountType of a portal-only customer
LICENSED = "licensed"  # a Data Center user with an application role (an agent)
DELETED = "removed from the service desk and the customer account deleted"
AGENT_KEPT = "an agent account: the officer removes it through user management"
SWITCHED_OFF = "erasure.delete_customer_accounts is off"
HIDDEN = "the account is kept: Jira hides its address, so it cannot be confirmed as the subject's"
# Delete user "does not delete the user's Atlassian account" (Cloud platform REST API v2,
# Users); an organisation admin deletes an account (Atlassian Administration > Directory, or
# the Delete account API of the organisations REST API), or the subject asks Atlassian.
ACCOUNT_REMAINS = (
    "the account is gone from this Jira site only: Atlassian keeps the account itself (its "
    "e-mail address and name); an organisation admin deletes it in Atlassian Administration "
    "(Directory: the account's Delete account), or the subject asks Atlassian to delete it"
)


class AccountsUnconfirmed(SourceUnavailable):
    """Accounts answer to the subject's address but Jira hides it: whose they are is open."""

    def __init__(self, source: str, count: int) -> None:
        self.count = count
        super().__init__(
            source,
            f"incomplete: {count} Jira account(s) answer to the subject's address, but Jira "
            "hides the address (the user's profile visibility), so they cannot be confirmed as "
            "the subject's. Look the address up in Atlassian Administration (Directory > Users) "
            "and add each account that is the subject's as an identifier "
            "(jira_account_id:ACCOUNT-ID), then run the request again",
        )


class UsersUnsearchable(SourceUnavailable):
    """The user search is empty because the account lacks Browse users and groups."""

    def __init__(self, source: str) -> None:
        super().__init__(
            source,
            "incomplete: Jira's user search answers nothing without the global permission "
            "Browse users and groups (USER_PICKER), so the subject's accounts cannot be looked "
            "up; grant it to dsrflow's Jira account and run the request again",
        )


def _id_param(client: JiraClient) -> str:
    # Cloud knows users only by accountId since the GDPR changes; Data Center by user name.
    return "accountId" if client.is_cloud else "username"


def read_user(client: JiraClient, account: str) -> dict[str, Any] | None:
    """The user as Jira has it now (with application roles on Data Center), None if gone."""
    params = {_id_param(client): account}
    if not client.is_cloud:
        params["expand"] = "applicationRoles"
    user: dict[str, Any] | None = client.get_json("reading a user", "user", params, missing_ok=True)
    return user


def account_type(client: JiraClient, user: dict[str, Any], account: str) -> str:
    """``customer`` for a portal-only account; otherwise what Jira calls it (``atlassian``,
    ``app``) or ``licensed`` on Data Center, which has no accountType."""
    if client.is_cloud:
        # A customer list's entry has no accountType: the user resource has.
        full = user if user.get("accountType") else read_user(client, account)
        return str((full or {}).get("accountType") or "unknown")
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
    client: JiraClient,
    account: str,
    emails: frozenset[str],
    *,
    enabled: bool,
    confirmed: str | None = None,
) -> tuple[bool, str | None]:
    """Delete the account if it is the subject's own portal-only customer account.

    ``confirmed``: the address a service desk's customer list showed for the account, which
    stands in where Jira's user resource hides it. Returns (whether something was deleted,
    why the account stays when it does). Reads the account first, so that a second run finds
    it gone and deletes nothing."""
    if not enabled:
        return False, f"the account is kept: {SWITCHED_OFF}"
    user = read_user(client, account)
    if user is None:
        return False, None
    shown = email_key(user.get("emailAddress")) if user.get("emailAddress") else confirmed
    if shown is None:
        return False, HIDDEN
    if shown not in emails:
        return False, "the account is kept: its address is not the subject's"
    if account_type(client, user, account) != CUSTOMER:
        return False, f"the account is kept: {AGENT_KEPT}"
    client.delete_resource(
        "deleting a customer account",
        "user",
        {_id_param(client): account},
        confirm=lambda: read_user(client, account) is None,
    )
    return True, None
