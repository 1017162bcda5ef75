"""A Jira service desk (Cloud or Data Center) through the ``jira`` package.

Who the subject is in Jira: the accounts whose e-mail address is one of theirs, confirmed
exactly where Jira shows it (user search; a mapped service desk's customer list, which shows
portal customers' addresses to agents), any ``jira_account_id`` the officer gave, and their
Service Management customer records in each mapped service desk. Jira Cloud hides an address
where the user's profile visibility says so, and its user search is empty without Browse users
and groups: an account found by the address whose address is hidden, or a search that cannot
look, makes the source incomplete, loudly, with the step the officer takes
(``connectors.jira.accounts``). A hidden address is never taken as "not the subject".

Discovery is one JQL search, paged (Cloud: ``nextPageToken`` alone, as ``isLast`` is optional
and pages may be shorter than asked; Data Center: ``startAt``) and streamed page by page::

    project in ("SUP") AND (reporter in (…) OR "Request participants" in (…)
        OR issue in updatedBy(…) OR text ~ "…") ORDER BY key ASC

``updatedBy`` covers commenters, ``text ~`` mentions; both are fuzzy, so every hit is confirmed
exactly in the fields the mapping names before it becomes a record. Identifiers are quoted and
escaped for JQL (and for the Lucene syntax of ``~``), never spliced in raw. Comments come with
the search result; only an issue with more comments than the result carries is read further.

Records: ``issues`` (the subject reported it, takes part in it, or is mentioned in its fields),
``comments`` (they wrote it or are mentioned in it) and ``customers`` (a service desk's customer
list holds them), each with the subject's ``role``. Texts are exported with other people's
addresses, mentions and names masked unless the mapping says otherwise (Art. 15(4)). Nothing
about contents is logged.

Erasure (``erase``) follows the plan: anonymise (pseudonym in summary, description, custom
fields and comments; out of the participants; reporter replaced) or delete; the subject's own
comments are deleted, because Jira cannot change a comment's author; customers are removed from
the service desk, and then their own portal-only customer account is deleted from Jira's users
(``connectors.jira.accounts``; agents' accounts are kept, and the plan says so). Customers come
last, so that a rerun after a crash still finds the account that the other steps need. Records
under the mapping's legal hold are skipped with the reason and date. Every step reads the
current state first, so a second run changes nothing. An issue is deleted with its subtasks
(``deleteSubtasks=true``) only where they are the subject's alone; others' subtasks make it
shared. Results say what Jira still keeps (``ActionResult.remains``): an anonymised issue's
change history holds the old values (``connectors.jira.history``), and a deleted customer
account lives on at Atlassian (``connectors.jira.accounts``).

The retention sweep (``sweep``) deletes or anonymises requests resolved longer ago than the
mapping's ``retention`` rules allow (``connectors.jira.retention``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from connectors.base import Closing, SweepResult
from connectors.jira import accounts as jira_accounts
from connectors.jira import history as jira_history
from connectors.jira.client import JiraClient, JiraRequestError
from connectors.jira.mapping import JiraMapping
from connectors.jira.settings import JiraSource
from connectors.jira.text import (
    OTHER_PERSON,
    Person,
    mask_others,
    mentions,
    pseudonymise,
)
from dsrflow.identifiers import email_key, email_spellings
from dsrflow.mapping import MappingError
from dsrflow.plan import Action, ActionResult, ExecutionReport, Outcome, PlannedAction
from dsrflow.records import Record
from dsrflow.request import RequestType, Subject

ACCOUNT = "jira_account_id"
# What an erasure step did: outcome, detail, and what the vendor still keeps (ActionResult).
_Result = tuple[Outcome, str | None, str | None]
PARTICIPANTS = "Request participants"
REQUEST_TYPE = "Customer Request Type"
USER_PAGE = 100
# What each right asks of the account, as keys of Get my permissions (GET mypermissions).
# Every right discovers: issues (Browse projects), the service desks' customers (Service Project
# Agent) and users by address (the global Browse users and groups). Erasure edits and deletes
# issues, changes their reporter, edits or deletes other people's and the subject's comments, and
# removes customers from the service desk (Remove customers: the service desk's administrator);
# rectification and restriction (a label) edit issues. Deleting a customer's account needs site
# administration, which no permission key reports: README.md says so.
DISCOVERY_PERMISSIONS = ("BROWSE_PROJECTS", "SERVICEDESK_AGENT")
GLOBAL_PERMISSIONS = ("USER_PICKER",)
RIGHT_PERMISSIONS: dict[RequestType, tuple[str, ...]] = {
    RequestType.ERASURE: (
        "EDIT_ISSUES",
        "DELETE_ISSUES",
        "MODIFY_REPORTER",
        "EDIT_ALL_COMMENTS",
        "DELETE_ALL_COMMENTS",
        "ADMINISTER_PROJECTS",
    ),
    RequestType.RECTIFICATION: ("EDIT_ISSUES",),
    RequestType.RESTRICTION: ("EDIT_ISSUES",),
}
SD_PAGE = 50
COMMENT_PAGE = 100


def jql_string(value: str) -> str:
    """A JQL string literal: double quotes, with ``"`` and ``\\`` escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_LUCENE = set('+-&|!(){}[]^"~*?:\\/')


def jql_text(value: str) -> str:
    """A ``text ~`` literal: Lucene's reserved characters escaped, then quoted for JQL."""
    return jql_string("".join(f"\\{c}" if c in _LUCENE else c for c in value))


def account_of(user: dict[str, Any] | None) -> str | None:
    """A user's id: ``accountId`` on Cloud, the user name on Data Center."""
    if not user:
        return None
    return user.get("accountId") or user.get("name")


def jira_timestamp(raw: str | None) -> str | None:
    """Jira's ``2026-01-05T10:15:00.000+0000`` as UTC ISO 8601."""
    if not raw:
        return None
    moment = dt.datetime.strptime(raw, "%Y-%m-%dT%H:%M:%S.%f%z")
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass
class JiraStats:
    issues_seen: int = 0
    issues_confirmed: int = 0
    comment_pages: int = 0
    search_pages: int = 0


@dataclass
class _Known:
    """The subject as resolved in Jira: a Person, their account e-mails, what matched them."""

    person: Person
    account_emails: dict[str, str] = field(default_factory=dict)  # accountId -> normalised email
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # accountId -> user search hit
    # (service desk, customer) of each confirmed account in a mapped desk's customer list
    customers: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)


class JiraConnector(Closing):
    """Finds, erases, rectifies and restricts a subject's data in a Jira service desk."""

    def __init__(
        self,
        name: str,
        mapping: JiraMapping,
        source: JiraSource,
        *,
        client: JiraClient | None = None,
    ) -> None:
        self.name = name
        self.mapping = mapping
        self.source = source
        self.page_size = source.page_size
        self.client = client or JiraClient(name, source)
        self.stats = JiraStats()
        self._field_ids = self._resolve_fields()

    # -- set-up -----------------------------------------------------------------------------

    def _resolve_fields(self) -> dict[str, str]:
        """Field ids by name from ``/field`` (the client caches it for its searches too)."""
        by_clause: dict[str, str] = self.client.call(
            "reading the fields", lambda: self.client.jira._fields_cache
        )
        ids = set(by_clause.values())
        missing = [
            f"match_in.{i}: no field {f!r} on this Jira site"
            for i, f in enumerate(self.mapping.match_in)
            if f.startswith("customfield_") and f not in ids
        ]
        if missing:
            raise MappingError(self.source.mapping, missing)
        return {
            "participants": by_clause.get(PARTICIPANTS, ""),
            "request_type": by_clause.get(REQUEST_TYPE, ""),
        }

    def close(self) -> None:
        self.client.close()

    # -- preflight ----------------------------------------------------------------------------

    def preflight(self, right: RequestType) -> list[str]:
        """The permissions ``right`` needs, per mapped project, from Get my permissions; a
        project the site does not have (or the account cannot see) is a mapping problem."""
        problems = []
        lacking = self._lacking(None, GLOBAL_PERMISSIONS)
        if lacking:
            problems.append(f"the account lacks the global permission {lacking}")
        wanted = DISCOVERY_PERMISSIONS + RIGHT_PERMISSIONS.get(right, ())
        for index, project in enumerate(self.mapping.projects):
            lacking = self._lacking(project, wanted)
            if lacking is None:
                problems.append(
                    f"mapping {self.source.mapping} projects.{index}: no project {project!r} "
                    "on this site, or the account cannot browse it"
                )
            elif lacking:
                problems.append(
                    f"the account lacks {lacking} in project {project}, which {right.value} needs"
                )
        return problems

    def _lacking(self, project: str | None, keys: Sequence[str]) -> str | None:
        """The names of the permissions among ``keys`` the account does not hold ("" if it holds
        them all; None if the project is unknown)."""
        jira = self.client.jira
        try:
            answer = self.client.call(
                "reading the account's permissions",
                lambda: jira.my_permissions(projectKey=project, permissions=",".join(keys)),
                missing_ok=True,
            )
        except JiraRequestError as exc:
            return f"(its permissions cannot be read: HTTP {exc.status})"
        if answer is None:
            return None
        held = answer.get("permissions") or {}
        missing = [
            f"{(held.get(k) or {}).get('name') or k} ({k})"
            for k in keys
            if not (held.get(k) or {}).get("havePermission")
        ]
        return ", ".join(missing)

    # -- who the subject is -----------------------------------------------------------------

    def resolve(self, subject: Subject) -> _Known:
        """The subject's accounts, each confirmed: by an address Jira shows (user search, or a
        service desk's customer list, which shows portal customers' addresses to agents), or
        as a ``jira_account_id`` the officer gave. An account found by the address whose
        address Jira hides (the user's profile visibility) cannot be confirmed: the source is
        incomplete and ``AccountsUnconfirmed`` says which step the officer takes."""
        users, hidden = self._users_by_address(subject)
        known_ids = {i.value for i in subject.of_kind(ACCOUNT)}
        accounts = dict(users)
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
            accounts.setdefault(account, hidden.get(account) or customer)
            customers.append((desk, customer))
        unconfirmed = set(hidden) - set(accounts) - known_ids
        if unconfirmed:
            raise jira_accounts.AccountsUnconfirmed(self.name, len(unconfirmed))
        person = Person(
            emails=frozenset(subject.emails),
            account_ids=frozenset(accounts) | frozenset(known_ids),
            names=frozenset(u["displayName"] for u in accounts.values() if u.get("displayName")),
        )
        return _Known(person, account_emails, accounts, customers)

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
                    page = self.client.call(
                        "searching users",
                        lambda s=start, e=spelling: self.client.jira._get_json(
                            "user/search", params={by: e, "startAt": s, "maxResults": USER_PAGE}
                        ),
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
        if not hits and self.client.is_cloud and self._lacking(None, GLOBAL_PERMISSIONS):
            # Without Browse users and groups, Jira's user search answers empty, not refused.
            raise jira_accounts.UsersUnsearchable(self.name)
        return confirmed, hidden

    def _desk_customers(self, subject: Subject) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(service desk, customer) for each customer the mapped desks list for the subject's
        addresses (a fuzzy query: the caller confirms), once per desk and account."""
        spellings = sorted({s for e in subject.emails for s in email_spellings(e, decomposed=True)})
        for desk in self._servicedesks():
            seen: set[str] = set()
            for spelling in spellings:
                for customer in self._customers_of(desk["id"], spelling):
                    account = account_of(customer)
                    if account and account not in seen:
                        seen.add(account)
                        yield desk, customer

    # -- discovery --------------------------------------------------------------------------

    def discover(self, subject: Subject) -> Iterator[Record]:
        known = self.resolve(subject)
        yield from self._customer_records(known)
        for issue in self._search(known.person):
            self.stats.issues_seen += 1
            comments = self._all_comments(issue)
            found = list(self._issue_records(known, issue, comments))
            if found:
                self.stats.issues_confirmed += 1
            yield from found

    def _servicedesks(self) -> Iterator[dict[str, Any]]:
        for desk in _sd_pages(
            lambda start: self.client.get(
                "listing service desks",
                "/rest/servicedeskapi/servicedesk",
                {"start": start, "limit": SD_PAGE},
            )
        ):
            if desk["projectKey"] in self.mapping.projects:
                yield desk

    def _customers_of(self, desk_id: str, query: str) -> Iterator[dict[str, Any]]:
        return _sd_pages(
            lambda start: self.client.call(
                "listing customers",
                lambda: self.client.jira._session.get(
                    self.client.url(f"/rest/servicedeskapi/servicedesk/{desk_id}/customer"),
                    params={"query": query, "start": start, "limit": SD_PAGE},
                    headers={"X-ExperimentalApi": "opt-in"},
                ).json(),
            )
        )

    def _customer_records(self, known: _Known) -> Iterator[Record]:
        for desk, customer in known.customers:
            account = account_of(customer)
            assert account is not None
            fields = {
                "servicedesk": desk["projectKey"],
                "account_id": account,
                "email": customer.get("emailAddress"),
                "display_name": customer.get("displayName"),
                # Whether erasure may delete the account: portal-only customers only.
                "account_type": jira_accounts.account_type(
                    self.client, known.users[account], account
                ),
            }
            email = known.account_emails.get(account)
            yield Record(
                source=self.name,
                location="customers",
                native_id={"servicedesk": str(desk["id"]), "account_id": account},
                categories={k: self.mapping.category_of(k) for k in fields},
                fields=fields,
                matched=(f"email:{email}" if email else f"{ACCOUNT}:{account}",),
                expands=(f"{ACCOUNT}:{account}",),
            )

    def _jql(self, person: Person) -> str:
        ids = sorted(person.account_ids)
        clauses: list[str] = []
        if ids:
            listed = ", ".join(jql_string(a) for a in ids)
            clauses.append(f"reporter in ({listed})")
            if self._field_ids["participants"]:
                clauses.append(f"{jql_string(PARTICIPANTS)} in ({listed})")
            clauses += [f"issue in updatedBy({jql_string(a)})" for a in ids]
        # Mentions: fuzzy full-text pre-filters, confirmed exactly afterwards.
        emails = sorted({s for e in person.emails for s in email_spellings(e, decomposed=True)})
        clauses += [f"text ~ {jql_text(v)}" for v in emails + ids]
        projects = ", ".join(jql_string(p) for p in self.mapping.projects)
        return f"project in ({projects}) AND ({' OR '.join(clauses)}) ORDER BY key ASC"

    def _search_fields(self) -> list[str]:
        wanted = ["summary", "description", "status", "created", "updated", "reporter"]
        wanted += ["labels", "comment", "subtasks", *self._field_ids.values()]
        wanted += [f for f in self.mapping.match_in if f.startswith("customfield_")]
        return [f for f in dict.fromkeys(wanted) if f]

    def _search(self, person: Person) -> Iterator[dict[str, Any]]:
        """The candidate issues, one page in memory at a time."""
        jql, fields = self._jql(person), self._search_fields()
        token: str | None = None
        start = 0
        while True:
            page = self.search_page(jql, fields, token=token, start=start)
            yield from page["issues"]
            if self.client.is_cloud:
                # The token alone says whether more follow: ``isLast`` is optional and a page
                # may hold fewer than maxResults (JRACLOUD-92183, JRACLOUD-92184).
                token = page.get("nextPageToken")
                if not token:
                    return
            else:
                start += len(page["issues"])
                if not page["issues"] or start >= page["total"]:
                    return

    def search_page(
        self,
        jql: str,
        fields: list[str],
        *,
        token: str | None = None,
        start: int = 0,
        doing: str = "searching issues",
    ) -> dict[str, Any]:
        """One page of a JQL search: Cloud's enhanced search (by ``token``), or Data
        Center's (by ``start``)."""
        jira = self.client.jira
        if self.client.is_cloud:
            page = self.client.call(
                doing,
                lambda: jira.enhanced_search_issues(
                    jql,
                    nextPageToken=token,
                    maxResults=self.page_size,
                    fields=list(fields),
                    json_result=True,
                ),
            )
        else:
            page = self.client.call(
                doing,
                lambda: jira.search_issues(
                    jql,
                    startAt=start,
                    maxResults=self.page_size,
                    fields=list(fields),
                    json_result=True,
                ),
            )
        self.stats.search_pages += 1
        return dict(page)

    def _all_comments(self, issue: dict[str, Any]) -> list[dict[str, Any]]:
        inline = issue["fields"].get("comment") or {}
        comments = list(inline.get("comments") or [])
        total = inline.get("total", len(comments))
        start = len(comments)
        while start < total:
            page = self.client.call(
                "reading comments",
                lambda s=start: self.client.jira._get_json(
                    f"issue/{issue['key']}/comment",
                    params={"startAt": s, "maxResults": COMMENT_PAGE},
                ),
            )
            self.stats.comment_pages += 1
            if not page["comments"]:
                break
            comments += page["comments"]
            start += len(page["comments"])
            total = page["total"]
        return comments

    def _issue_records(
        self, known: _Known, issue: dict[str, Any], comments: list[dict[str, Any]]
    ) -> Iterator[Record]:
        person = known.person
        f = issue["fields"]
        key = issue["key"]
        reporter = account_of(f.get("reporter"))
        participants = self._participants(f)
        texts = {
            name: f.get(name)
            for name in self.mapping.match_in
            if name != "comments" and isinstance(f.get(name), str)
        }
        roles: list[str] = []
        matched: set[str] = set()
        if reporter in person.account_ids:
            roles.append("reporter")
            matched.add(f"{ACCOUNT}:{reporter}")
        mine = sorted(set(participants) & person.account_ids)
        if mine:
            roles.append("participant")
            matched |= {f"{ACCOUNT}:{a}" for a in mine}
        text_hits = set().union(*(mentions(person, t) for t in texts.values()))
        if text_hits:
            roles.append("mentioned")
            matched |= text_hits
        others = self._other_people(known, issue, comments)
        names = [n for _, n in others]
        shared_with = self._shared_with(person, reporter, participants, comments)
        if roles and not shared_with and self._others_subtasks(person, f):
            # Deleting the issue deletes its subtasks: others' work there makes it shared.
            shared_with += ("subtasks",)
        if roles:
            fields: dict[str, Any] = {
                "key": key,
                "summary": self._masked(f.get("summary"), person, names),
                "description": self._masked(f.get("description"), person, names),
                "status": (f.get("status") or {}).get("name"),
                "created": jira_timestamp(f.get("created")),
                "request_type": _request_type(f.get(self._field_ids["request_type"])),
                "labels": list(f.get("labels") or []),
                "restricted": self.mapping.restriction_label in (f.get("labels") or []),
                "role": roles,
            }
            for name, text in texts.items():
                if name.startswith("customfield_"):
                    fields[name] = self._masked(text, person, names)
            yield Record(
                source=self.name,
                location="issues",
                native_id={"key": key},
                categories={k: self.mapping.category_of(k) for k in fields},
                fields=fields,
                matched=tuple(sorted(matched)),
                timestamps={"created": fields["created"]} if fields["created"] else {},
                shared=bool(shared_with),
                shared_with=shared_with,
                expands=tuple(sorted(f"{ACCOUNT}:{a}" for a in person.account_ids)),
            )
        for comment in comments:
            author = account_of(comment.get("author"))
            comment_roles: list[str] = []
            comment_matched: set[str] = set()
            if author in person.account_ids:
                comment_roles.append("commenter")
                comment_matched.add(f"{ACCOUNT}:{author}")
            if "comments" in self.mapping.match_in:
                hits = mentions(person, comment.get("body"))
                if hits:
                    comment_roles.append("mentioned")
                    comment_matched |= hits
            if not comment_roles:
                continue
            own = author in person.account_ids
            fields = {
                "issue": key,
                "body": self._masked(comment.get("body"), person, names),
                "author": (comment.get("author") or {}).get("displayName")
                if own or not self.mapping.mask_others
                else OTHER_PERSON,
                "created": jira_timestamp(comment.get("created")),
                "role": comment_roles,
            }
            yield Record(
                source=self.name,
                location="comments",
                native_id={"issue": key, "id": str(comment["id"])},
                categories={k: self.mapping.category_of(k) for k in fields},
                fields=fields,
                matched=tuple(sorted(comment_matched)),
                timestamps={"created": fields["created"]} if fields["created"] else {},
                shared=not own,
                shared_with=() if own else ("comments.author",),
            )

    def _participants(self, fields: dict[str, Any]) -> list[str]:
        users = fields.get(self._field_ids["participants"]) or []
        return [a for a in map(account_of, users) if a]

    def _other_people(
        self, known: _Known, issue: dict[str, Any], comments: list[dict[str, Any]]
    ) -> list[tuple[str, str]]:
        """(accountId, display name) of everyone else who appears on the issue."""
        f = issue["fields"]
        users = [f.get("reporter"), *(f.get(self._field_ids["participants"]) or [])]
        users += [c.get("author") for c in comments]
        return [
            (account_of(u) or "", u.get("displayName") or "")
            for u in users
            if u and account_of(u) not in known.person.account_ids
        ]

    def _others_subtasks(self, person: Person, fields: dict[str, Any]) -> list[str]:
        """The keys of the issue's subtasks that someone other than the subject takes part in
        (reporter, participant, commenter), read afresh: a delete of the issue takes them."""
        shared = []
        for key in _subtask_keys(fields):
            sub = self._read_issue(key)
            if sub is None:
                continue  # gone since: nothing of anyone's to lose
            f = sub["fields"]
            if self._shared_with(
                person,
                account_of(f.get("reporter")),
                self._participants(f),
                self._all_comments(sub),
            ):
                shared.append(key)
        return shared

    @staticmethod
    def _shared_with(
        person: Person,
        reporter: str | None,
        participants: list[str],
        comments: list[dict[str, Any]],
    ) -> tuple[str, ...]:
        """Where other people take part in an issue: it is never deleted whole then."""
        shared: list[str] = []
        if reporter and reporter not in person.account_ids:
            shared.append("reporter")
        if set(participants) - person.account_ids:
            shared.append("request participants")
        if any(account_of(c.get("author")) not in person.account_ids for c in comments):
            shared.append("comments.author")
        return tuple(shared)

    def _masked(self, text: str | None, person: Person, names: list[str]) -> str | None:
        return mask_others(text, person, names) if self.mapping.mask_others else text

    # -- erasure ----------------------------------------------------------------------------

    def erase(self, actions: Sequence[PlannedAction], subject: Subject) -> ExecutionReport:
        """Carry out DELETE/REDACT actions (the subject says what to pseudonymise); a KEEP is
        skipped with its reason, any other action fails. Idempotent."""
        report = ExecutionReport(source=self.name)
        known = _with_planned_accounts(self.resolve(subject), actions, self.name)
        # Customers (and their accounts) last: the other steps find the subject by the account.
        for action in sorted(actions, key=lambda a: a.location == "customers"):
            if action.source != self.name:
                continue
            if action.action not in (Action.DELETE, Action.REDACT):
                report.results.append(not_carried_out(action))
                continue
            remains: str | None = None
            if action.location == "customers":
                outcome, detail, remains = self._remove_customer(action, known)
            elif action.location == "issues":
                outcome, detail, remains = self._erase_issue(action, known)
            elif action.location == "comments":
                outcome, detail = self._erase_comment(action, known)
            else:
                outcome, detail = Outcome.FAILED, f"unknown location {action.location!r}"
            report.results.append(
                ActionResult(
                    record_id=action.record_id, outcome=outcome, detail=detail, remains=remains
                )
            )
        return report

    def _in_desk(self, desk: str, account: str, known: _Known) -> bool:
        """Whether the desk's customer list still holds the account, looked up by the address
        confirmed for it (else by each of the subject's: a hidden one matches exactly)."""
        email = known.account_emails.get(account)
        queries = [email] if email else sorted(known.person.emails)
        return any(account_of(c) == account for q in queries for c in self._customers_of(desk, q))

    def _remove_customer(self, action: PlannedAction, known: _Known) -> _Result:
        desk = str(action.native_id["servicedesk"])
        account = str(action.native_id["account_id"])
        present = self._in_desk(desk, account, known)
        if present:
            self.client.delete(
                "removing a customer",
                f"/rest/servicedeskapi/servicedesk/{desk}/customer",
                {"accountIds": [account]},
                confirm=lambda: not self._in_desk(desk, account, known),
            )
        deleted, kept = jira_accounts.delete_own_account(
            self.client,
            account,
            known.person.emails,
            enabled=self.mapping.erasure.delete_customer_accounts,
            confirmed=known.account_emails.get(account),
        )
        # Delete user ends the site user only: the account outlives it (jira_accounts).
        remains = jira_accounts.ACCOUNT_REMAINS if deleted and self.client.is_cloud else None
        return (Outcome.DONE if present or deleted else Outcome.ALREADY_DONE), kept, remains

    def _read_issue(self, key: str) -> dict[str, Any] | None:
        return self.client.call(
            "reading an issue",
            lambda: self.client.jira._get_json(
                f"issue/{key}", params={"fields": ",".join(self._search_fields())}
            ),
            missing_ok=True,
        )

    def _held(self, fields: dict[str, Any]) -> str | None:
        times = {k: jira_timestamp(fields.get(k)) for k in ("created", "updated")}
        until = self.mapping.hold_until(times)
        if until and until > dt.datetime.now(dt.UTC).date():
            assert self.mapping.legal_hold
            return f"kept: {self.mapping.legal_hold.reason} until {until.isoformat()}"
        return None

    def _erase_issue(self, action: PlannedAction, known: _Known) -> _Result:
        key = str(action.native_id["key"])
        issue = self._read_issue(key)
        if issue is None:
            return Outcome.ALREADY_DONE, None, None
        held = self._held(issue["fields"])
        if held:
            return Outcome.SKIPPED, held, None
        comments = self._all_comments(issue)
        person = known.person
        if action.action == Action.DELETE:
            reporter = account_of(issue["fields"].get("reporter"))
            participants = self._participants(issue["fields"])
            if self._shared_with(person, reporter, participants, comments):
                return Outcome.SKIPPED, "others take part in this issue: anonymise it instead", None
            subtasks = _subtask_keys(issue["fields"])
            others = self._others_subtasks(person, issue["fields"])
            if others:
                return (
                    Outcome.SKIPPED,
                    f"others take part in {len(others)} of its {len(subtasks)} subtask(s), which "
                    "a delete takes with it: anonymise it instead",
                    None,
                )
            self.delete_issue(key, "deleting an issue", subtasks=bool(subtasks))
            if subtasks:
                done = f"deleted with its {len(subtasks)} subtask(s), the subject's"
                return Outcome.DONE, done, None
            return Outcome.DONE, None, None
        changed = self._anonymise_issue(issue, comments, known)
        remains = jira_history.remains(self.client, key, person)
        return (Outcome.DONE if changed else Outcome.ALREADY_DONE), None, remains

    def delete_issue(self, key: str, doing: str, *, subtasks: bool = False) -> bool:
        """Delete an issue; whether it was still there. Jira refuses (400) to delete an issue
        with subtasks unless ``deleteSubtasks=true``, which ``subtasks`` sends: the caller has
        decided that the subtasks may go too."""
        jira = self.client.jira
        params = {"deleteSubtasks": "true"} if subtasks else None
        response = self.client.call(
            doing,
            lambda: jira._session.delete(jira._get_url(f"issue/{key}"), params=params),
            missing_ok=True,
            confirm=lambda: self._read_issue(key) is None,
        )
        return response is not None

    def _anonymise_issue(
        self, issue: dict[str, Any], comments: list[dict[str, Any]], known: _Known
    ) -> bool:
        person = known.person
        pseudonym = person.pseudonym(self.mapping.erasure.pseudonym_prefix)
        f = issue["fields"]
        update: dict[str, Any] = {}
        for name in (
            "summary",
            "description",
            *[m for m in self.mapping.match_in if m.startswith("customfield_")],
        ):
            text = f.get(name)
            if isinstance(text, str):
                new = pseudonymise(text, person, pseudonym)
                if new != text:
                    update[name] = new
        reporter = account_of(f.get("reporter"))
        if reporter in person.account_ids:
            replacement = self.mapping.erasure.reporter_replacement
            update["reporter"] = {"accountId": replacement} if replacement else None
        key = issue["key"]
        if update:
            self.client.put(
                "anonymising an issue",
                f"issue/{key}",
                {"fields": update},
                confirm=lambda: self._issue_holds(key, update),
            )
        participants = self._participants(f)
        mine = sorted(set(participants) & person.account_ids)
        if mine:
            self.client.delete(
                "removing request participants",
                f"/rest/servicedeskapi/request/{key}/participant",
                {"accountIds": mine},
                confirm=lambda: not set(mine) & set(self._participants(self._fields_of(key))),
            )
        changed = bool(update or mine)
        for comment in comments:
            changed |= self._anonymise_comment(key, comment, person, pseudonym)
        return changed

    def _anonymise_comment(
        self, key: str, comment: dict[str, Any], person: Person, pseudonym: str
    ) -> bool:
        """The subject's own comment goes (Jira cannot change its author); in others' comments
        only the subject's traces are pseudonymised."""
        author = account_of(comment.get("author"))
        cid = str(comment["id"])
        if author in person.account_ids:
            self.client.call(
                "deleting a comment",
                lambda: self.client.jira.comment(key, cid).delete(),
                missing_ok=True,
                confirm=lambda: self._read_comment(key, cid) is None,
            )
            return True
        body = comment.get("body") or ""
        new = pseudonymise(body, person, pseudonym)
        if new == body:
            return False
        self.client.call(
            "anonymising a comment",
            lambda: self.client.jira.comment(key, cid).update(body=new),
            confirm=lambda: (self._read_comment(key, cid) or {}).get("body") == new,
        )
        return True

    def _read_comment(self, key: str, cid: str) -> dict[str, Any] | None:
        return self.client.call(
            "reading a comment",
            lambda: self.client.jira._get_json(f"issue/{key}/comment/{cid}"),
            missing_ok=True,
        )

    def _fields_of(self, key: str) -> dict[str, Any]:
        issue = self._read_issue(key)
        return issue["fields"] if issue else {}

    def _issue_holds(self, key: str, update: dict[str, Any]) -> bool:
        """Whether the issue, read again, holds every field value of ``update`` (a PUT's
        ``fields``): how a PUT whose answer was lost is confirmed."""
        fields = self._fields_of(key)
        for name, value in update.items():
            now = fields.get(name)
            if name == "reporter":
                if account_of(now) != (value or {}).get("accountId"):
                    return False
            elif now != value:
                return False
        return True

    def _erase_comment(self, action: PlannedAction, known: _Known) -> tuple[Outcome, str | None]:
        key, cid = str(action.native_id["issue"]), str(action.native_id["id"])
        issue = self._read_issue(key)
        if issue is None:
            return Outcome.ALREADY_DONE, None
        held = self._held(issue["fields"])
        if held:
            return Outcome.SKIPPED, held
        comment = self._read_comment(key, cid)
        if comment is None:
            return Outcome.ALREADY_DONE, None
        own = account_of(comment.get("author")) in known.person.account_ids
        if action.action == Action.DELETE and not own:
            return Outcome.SKIPPED, "someone else wrote this comment: redact it instead"
        pseudonym = known.person.pseudonym(self.mapping.erasure.pseudonym_prefix)
        changed = self._anonymise_comment(key, comment, known.person, pseudonym)
        return (Outcome.DONE if changed else Outcome.ALREADY_DONE), None

    # -- retention --------------------------------------------------------------------------

    def sweep(
        self,
        now: dt.datetime,
        *,
        dry_run: bool = False,
        protected: Sequence[Record] = (),
        min_group_size: int | None = None,
    ) -> list[SweepResult]:
        """The mapping's retention rules as of ``now`` (``connectors.jira.retention``); requests
        are deleted or anonymised, never aggregated, so ``min_group_size`` does not apply."""
        # Imported here: jira_retention builds on this module.
        from connectors.jira.retention import JiraRetention

        return JiraRetention(self).sweep(now, dry_run=dry_run, protected=protected)

    # -- restriction and rectification ------------------------------------------------------

    def restrict(self, actions: Sequence[PlannedAction], subject: Subject) -> ExecutionReport:
        """Label the issues of RESTRICT actions (a comment's issue for a comment)."""
        report = ExecutionReport(source=self.name)
        label = self.mapping.restriction_label
        for action in actions:
            if action.source != self.name:
                continue
            if action.action != Action.RESTRICT:
                report.results.append(not_carried_out(action))
                continue
            key = action.native_id.get("key") or action.native_id.get("issue")
            if key is None:
                # A portal customer has no labels: the ledger's restriction list holds it.
                report.results.append(
                    ActionResult(
                        record_id=action.record_id,
                        outcome=Outcome.DONE,
                        detail="restricted in the ledger only: Jira has no mark for a customer",
                    )
                )
                continue
            issue = self._read_issue(str(key))
            if issue is None:
                outcome = Outcome.FAILED
            elif label in (issue["fields"].get("labels") or []):
                outcome = Outcome.ALREADY_DONE
            else:
                update = {"labels": [{"add": label}]}
                self.client.put(
                    "labelling an issue",
                    f"issue/{key}",
                    {"update": update},
                    confirm=lambda key=key: (
                        label in (self._fields_of(str(key)).get("labels") or [])
                    ),
                )
                outcome = Outcome.DONE
            report.results.append(
                ActionResult(
                    record_id=action.record_id,
                    outcome=outcome,
                    detail=None if issue else "issue not found",
                )
            )
        return report

    def rectify(self, actions: Sequence[PlannedAction], subject: Subject) -> ExecutionReport:
        """Set the named fields of issues (summary, description, custom fields) and read back."""
        report = ExecutionReport(source=self.name)
        for action in actions:
            if action.source != self.name:
                continue
            if action.action != Action.RECTIFY:
                report.results.append(not_carried_out(action))
                continue
            if action.location != "issues":
                report.results.append(
                    ActionResult(
                        record_id=action.record_id,
                        outcome=Outcome.SKIPPED,
                        detail="only issue fields are rectified",
                    )
                )
                continue
            key = str(action.native_id["key"])
            allowed = {"summary", "description", *self.mapping.match_in} - {"comments"}
            wrong = sorted(set(action.fields) - allowed)
            if wrong:
                report.results.append(
                    ActionResult(
                        record_id=action.record_id,
                        outcome=Outcome.FAILED,
                        detail=f"field {wrong[0]} cannot be rectified",
                    )
                )
                continue
            try:
                fields = dict(action.fields)
                self.client.put(
                    "rectifying an issue",
                    f"issue/{key}",
                    {"fields": fields},
                    confirm=lambda key=key, fields=fields: self._issue_holds(key, fields),
                )
            except JiraRequestError as exc:
                report.results.append(
                    ActionResult(
                        record_id=action.record_id, outcome=Outcome.FAILED, detail=str(exc)
                    )
                )
                continue
            issue = self._read_issue(key)
            ok = issue is not None and all(
                issue["fields"].get(k) == v for k, v in action.fields.items()
            )
            report.results.append(
                ActionResult(
                    record_id=action.record_id,
                    outcome=Outcome.DONE if ok else Outcome.FAILED,
                    detail=None if ok else "read back differs",
                )
            )
        return report


def _subtask_keys(fields: dict[str, Any]) -> list[str]:
    return [str(s["key"]) for s in fields.get("subtasks") or [] if s.get("key")]


def _sd_pages(fetch: Callable[[int], dict[str, Any]]) -> Iterator[Any]:
    """The values of a Service Management paged list (``start``/``limit``): on until a page
    says ``isLastPage`` or comes back empty; a page without ``isLastPage`` is not taken as
    the last one, and the next start counts the values received, not ``limit``."""
    start = 0
    while True:
        page = fetch(start)
        values = list(page.get("values") or [])
        yield from values
        if page.get("isLastPage") is True or not values:
            return
        start += len(values)


def _request_type(value: Any) -> str | None:
    """The name of a Service Management request type field value."""
    if isinstance(value, dict):
        request_type = value.get("requestType")
        if isinstance(request_type, dict):
            return request_type.get("name")
    return None


def _with_planned_accounts(known: _Known, actions: Sequence[PlannedAction], source: str) -> _Known:
    """The subject with the accounts of the plan's customer records too: confirmed by address
    at discovery and approved, they still name her in issues once the account is deleted."""
    planned = {
        str(a.native_id["account_id"])
        for a in actions
        if a.source == source and a.location == "customers" and "account_id" in a.native_id
    }
    person = known.person
    if planned <= person.account_ids:
        return known
    person = replace(person, account_ids=person.account_ids | planned)
    return _Known(person, known.account_emails, known.users, known.customers)


def not_carried_out(action: PlannedAction) -> ActionResult:
    """An action the method was handed but does not do: a KEEP is skipped with its reason,
    anything else fails; never dropped in silence, never reported done."""
    if action.action == Action.KEEP:
        detail = f"kept: {action.reason or 'by the plan'}"
        return ActionResult(record_id=action.record_id, outcome=Outcome.SKIPPED, detail=detail)
    return ActionResult(
        record_id=action.record_id,
        outcome=Outcome.FAILED,
        detail=f"cannot {action.action.value} here",
    )
