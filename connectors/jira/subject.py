"""Who the subject is in Jira: their accounts, each confirmed.

An account is the subject's by an address Jira shows (user search, or a mapped service desk's
customer list, which shows portal customers' addresses to agents), or as a ``jira_account_id``
the officer gave. Jira Cloud hides an address where the user's profile visibility says so, and
its user search is empty without Browse users and groups: an account found by the address whose
address is hidden, or a search that cannot look, makes the source incomplete, loudly, with the
step the officer takes (``connectors.jira.accounts``). A hidden address is never taken as "not
the subject".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from connectors.jira import accounts, desks
from connectors.jira.client import JiraClient
from connectors.jira.operations import account_of
from connectors.jira.permissions import GLOBAL_PERMISSIONS, lacking
from connectors.jira.text import Person
from dsrflow.identifiers import email_key, email_spellings
from dsrflow.plan import PlannedAction
from dsrflow.request import Subject

ACCOUNT = "jira_account_id"
USER_PAGE = 100


@dataclass
class Known:
    """The subject as resolved in Jira: a Person, their account e-mails, what matched them."""

    person: Person
    account_emails: dict[str, str] = field(default_factory=dict)  # accountId -> normalised email
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # accountId -> user search hit
    # (service desk, customer) of each confirmed account in a mapped desk's customer list
    customers: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    def with_planned_accounts(self, actions: Sequence[PlannedAction], source: str) -> Known:
        """The subject with the accounts of the plan's customer records too: confirmed by
        address at discovery and approved, they still name her in issues once the account
        is deleted."""
        planned = {
            str(a.native_id["account_id"])
            for a in actions
            if a.source == source and a.location == "customers" and "account_id" in a.native_id
        }
        if planned <= self.person.account_ids:
            return self
        person = replace(self.person, account_ids=self.person.account_ids | planned)
        return Known(person, self.account_emails, self.users, self.customers)


class Resolver:
    """Finds the subject's accounts on one site, in the mapped service desks."""

    def __init__(self, source_name: str, client: JiraClient, projects: Sequence[str]) -> None:
        self.source_name = source_name
        self.client = client
        self.projects = projects

    def resolve(self, subject: Subject) -> Known:
        """The subject's confirmed accounts; ``AccountsUnconfirmed`` where Jira hides the
        address of an account found by it (the officer's step is in the message)."""
        users, hidden = self._users_by_address(subject)
        known_ids = {i.value for i in subject.of_kind(ACCOUNT)}
        found = dict(users)
        account_emails = {a: email_key(u.get("emailAddress")) or "" for a, u in users.items()}
        customers: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for desk, customer in self._desk_customers(subject):
            account = account_of(customer)
            assert account is not None
            shown = email_key(customer.get("emailAddress"))
            if shown in subject.emails:
                account_emails[account] = shown
            elif account not in known_ids and account not in account_emails:
                continue  # a near miss of the query, or a hidden address nobody confirmed
            found.setdefault(account, hidden.get(account) or customer)
            customers.append((desk, customer))
        unconfirmed = set(hidden) - set(found) - known_ids
        if unconfirmed:
            raise accounts.AccountsUnconfirmed(self.source_name, len(unconfirmed))
        person = Person(
            emails=frozenset(subject.emails),
            account_ids=frozenset(found) | frozenset(known_ids),
            names=frozenset(u["displayName"] for u in found.values() if u.get("displayName")),
        )
        return Known(person, account_emails, found, customers)

    def _users_by_address(
        self, subject: Subject
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """User search by each address: (confirmed by the address shown, hits whose address
        Jira hides). Jira finds a hidden address by an exact match only (Find users and
        groups), so a hidden hit may well be the subject: it is not dropped in silence."""
        confirmed: dict[str, dict[str, Any]] = {}
        hidden: dict[str, dict[str, Any]] = {}
        by = "query" if self.client.is_cloud else "username"
        hits = 0
        for email in subject.emails:
            # Jira keeps an address as it was typed: the domain in Unicode or in IDNA.
            for spelling in email_spellings(email, decomposed=True):
                start = 0
                while True:
                    page: list[dict[str, Any]] = self.client.get_json(
                        "searching users",
                        "user/search",
                        {by: spelling, "startAt": start, "maxResults": USER_PAGE},
                    )
                    hits += len(page)
                    for user in page:
                        # Data Center knows users by name where Cloud has accountIds.
                        account = account_of(user)
                        if not account:
                            continue
                        if not user.get("emailAddress"):
                            hidden[account] = user
                        elif email_key(user.get("emailAddress")) == email:
                            confirmed[account] = user
                    if len(page) < USER_PAGE:
                        break
                    start += USER_PAGE
        if not hits and self.client.is_cloud and lacking(self.client, None, GLOBAL_PERMISSIONS):
            # Without Browse users and groups, Jira's user search answers empty, not refused.
            raise accounts.UsersUnsearchable(self.source_name)
        return confirmed, hidden

    def _desk_customers(self, subject: Subject) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(service desk, customer) for each customer the mapped desks list for the subject's
        addresses (a fuzzy query: the caller confirms), once per desk and account."""
        spellings = sorted({s for e in subject.emails for s in email_spellings(e, decomposed=True)})
        for desk in desks.servicedesks(self.client, self.projects):
            seen: set[str] = set()
            for spelling in spellings:
                for customer in desks.customers_of(self.client, desk["id"], spelling):
                    account = account_of(customer)
                    if account and account not in seen:
                        seen.add(account)
                        yield desk, customer
