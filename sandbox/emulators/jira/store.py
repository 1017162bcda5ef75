"""The Jira emulator's state: users, service desks with their customers, issues with comments
and request participants. Thread-safe; every change is visible to the next request.

Users are referenced by ``accountId`` inside the store and rendered in Jira's user shape
(``self``, ``accountId``, ``accountType``, ``emailAddress``, ``displayName``, ``active``) on the
way out. A deleted user leaves the directory and every service desk's customer list; issues keep
the accountId they hold, as Jira does (it then shows them as "Former user"). The account itself
outlives the site user (``accounts``): Jira's Delete user "does not delete the user's Atlassian
account" (https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-users/
#api-rest-api-2-user-delete).

Every edit of an issue's fields is kept in its change history (``Issue.history``), old and new
values, as Jira's changelog does (GET /rest/api/2/issue/{key}/changelog); Jira has no operation
that removes history entries. Subtasks name their parent (``Issue.parent``).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sandbox.emulators.jira import jql

# Jira Cloud's ids of the Service Management fields the emulator serves.
PARTICIPANTS_FIELD = "customfield_10027"
REQUEST_TYPE_FIELD = "customfield_10010"
# The fields an issue holds natively; anything else must be a custom field.
SYSTEM_FIELDS = {
    "summary",
    "description",
    "status",
    "created",
    "updated",
    "reporter",
    "labels",
    "resolution",
    "resolutiondate",
}


def jira_time(value: str | dt.datetime | None = None) -> str:
    """Jira's timestamp format: ``2026-01-05T10:15:00.000+0000``."""
    if value is None:
        moment = dt.datetime.now(dt.UTC)
    elif isinstance(value, dt.datetime):
        moment = value
    else:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


@dataclass
class User:
    account_id: str
    email: str | None
    display_name: str
    active: bool = True
    # Jira Cloud's accountType: "customer" (portal-only) or "atlassian" (agents, staff); None:
    # from the id's shape, as Cloud makes them (portal customers' ids start with ``qm:``).
    account_type: str | None = None
    # The user's profile visibility of the address: hidden, Jira leaves ``emailAddress`` out of
    # the platform's user shapes ("Depending on the user's privacy setting, this may be returned
    # as null", User in the Cloud platform REST API v2).
    email_visible: bool = True

    @property
    def kind(self) -> str:
        if self.account_type:
            return self.account_type
        return "customer" if self.account_id.startswith("qm:") else "atlassian"


@dataclass
class HistoryItem:
    """One changed field of a changelog entry (Jira's ChangeDetails)."""

    field: str
    from_value: str | None
    from_string: str | None
    to_value: str | None
    to_string: str | None


@dataclass
class History:
    """One changelog entry: who changed what when (Jira's Changelog)."""

    id: str
    author: str | None
    created: str
    items: list[HistoryItem]


@dataclass
class Comment:
    id: str
    author: str | None
    body: str
    created: str
    updated: str
    public: bool = True


@dataclass
class Issue:
    id: str
    key: str
    project: str
    fields: dict[str, Any]
    participants: list[str] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    updated_by: set[str] = field(default_factory=set)
    history: list[History] = field(default_factory=list)
    parent: str | None = None  # a subtask's parent issue key
    # Words of the texts per ``~`` field, so that a search over 50,000 issues stays fast.
    _words: dict[str, set[str]] = field(default_factory=dict, repr=False)

    def touch(self) -> None:
        """Forget cached words after a change of the texts."""
        self._words.clear()

    @property
    def reporter(self) -> str | None:
        return self.fields.get("reporter")

    def text_words(self, which: str) -> set[str]:
        cached = self._words.get(which)
        if cached is None:
            cached = self._words[which] = self._compute_words(which)
        return cached

    def _compute_words(self, which: str) -> set[str]:
        parts: list[str] = []
        if which in ("summary", "text"):
            parts.append(self.fields.get("summary") or "")
        if which in ("description", "text"):
            parts.append(self.fields.get("description") or "")
        if which in ("comment", "text"):
            parts += [c.body for c in self.comments]
        if which == "text":
            parts += [
                v
                for k, v in self.fields.items()
                if k.startswith("customfield_") and isinstance(v, str)
            ]
        return jql.words("\n".join(parts))

    def values_of(self, name: str) -> set[str]:
        """The comparable values of a field for ``=``, ``!=`` and ``in`` (lower-cased)."""
        if name == "project":
            return {self.project.lower()}
        if name in ("key", "issuekey"):
            return {self.key.lower(), self.id}
        if name == "reporter":
            return {self.reporter.lower()} if self.reporter else set()
        if name == "request participants":
            return {p.lower() for p in self.participants}
        if name == "status":
            return {str((self.fields.get("status") or {}).get("name", "")).lower()}
        if name == "labels":
            return {str(label).lower() for label in self.fields.get("labels") or []}
        if name in ("resolved", "resolutiondate"):
            raw = self.fields.get("resolutiondate")
            return {raw} if raw else set()
        if name.startswith("cf["):
            value = self.fields.get(f"customfield_{name[3:-1]}")
            return {str(value).lower()} if value is not None else set()
        return set()


@dataclass
class ServiceDesk:
    id: str
    project_key: str
    project_name: str
    customers: list[str] = field(default_factory=list)
    # The desk's customer request types, id -> name (Service Management's RequestType).
    request_types: dict[str, str] = field(default_factory=dict)


class JiraStore:
    """Everything the emulator knows; methods take the lock, callers never touch it."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}
        # Every account ever on the site: Delete user removes the site user, not the account.
        self.accounts: dict[str, User] = {}
        self.servicedesks: dict[str, ServiceDesk] = {}
        self.issues: dict[str, Issue] = {}  # by key, in creation order
        self.by_id: dict[str, str] = {}
        self.custom_fields: dict[str, str] = {
            PARTICIPANTS_FIELD: "Request participants",
            REQUEST_TYPE_FIELD: "Customer Request Type",
        }
        self.credentials: tuple[str, str] | None = None  # (e-mail, API token) or None: any
        # Other people's own API tokens, by lower-cased address: a customer who calls the API as
        # themselves (Create customer request) rather than through the site admin's credential.
        self.api_tokens: dict[str, str] = {}
        # Permission keys the caller lacks (``GET mypermissions`` answers havePermission false
        # for them); every other permission is granted, as to the sandbox's site admin.
        self.denied_permissions: set[str] = set()
        self._next_issue = 10000
        self._next_comment = 100000
        self._next_history = 1000000
        self._next_request_type = 10
        # Jira Cloud's enhanced search may answer fewer issues than ``maxResults`` asks for
        # (JRACLOUD-92183; "To manage page size, API may return fewer items per page", Search
        # for issues using JQL enhanced search): pages hold at most this many when set.
        self.search_page_cap: int | None = None

    # -- building ---------------------------------------------------------------------------

    def add_user(
        self,
        account_id: str,
        email: str | None,
        display_name: str,
        account_type: str | None = None,
        *,
        email_visible: bool = True,
    ) -> User:
        user = User(
            account_id, email, display_name, account_type=account_type, email_visible=email_visible
        )
        self.users[account_id] = user
        self.accounts[account_id] = user
        return user

    def add_servicedesk(
        self,
        desk_id: str,
        project_key: str,
        name: str,
        customers: Iterable[str] = (),
        request_types: Iterable[str] = (),
    ) -> ServiceDesk:
        desk = ServiceDesk(str(desk_id), project_key, name, list(customers))
        self.servicedesks[desk.id] = desk
        for type_name in request_types:
            self.request_type_id(project_key, type_name)
        return desk

    def request_type_id(self, project_key: str, name: str) -> str | None:
        """The id of the project's desk's request type ``name``, made on first sight (request
        type ids are numbers, unique on the site); None: the project has no service desk."""
        with self.lock:
            desk = next(
                (d for d in self.servicedesks.values() if d.project_key == project_key), None
            )
            if desk is None:
                return None
            for type_id, known in desk.request_types.items():
                if known == name:
                    return type_id
            self._next_request_type += 1
            type_id = str(self._next_request_type)
            desk.request_types[type_id] = name
            return type_id

    def add_issue(
        self,
        key: str,
        fields: dict[str, Any],
        participants: Iterable[str] = (),
        comments: Iterable[dict[str, Any]] = (),
    ) -> Issue:
        self._next_issue += 1
        fields = dict(fields)
        reporter = fields.get("reporter")
        fields["reporter"] = reporter.get("accountId") if isinstance(reporter, dict) else reporter
        fields["created"] = jira_time(fields.get("created"))
        fields["updated"] = jira_time(fields.get("updated") or fields["created"])
        # Unresolved requests have neither, as in Jira (both null).
        fields["resolutiondate"] = (
            jira_time(fields["resolutiondate"]) if fields.get("resolutiondate") else None
        )
        fields.setdefault("resolution", None)
        fields.setdefault("labels", [])
        fields.setdefault("status", {"name": "Open"})
        for name in fields:
            if name not in SYSTEM_FIELDS and name.startswith("customfield_"):
                self.custom_fields.setdefault(name, name.replace("customfield_", "Custom field "))
        issue = Issue(
            id=str(self._next_issue),
            key=key,
            project=key.rsplit("-", 1)[0],
            fields=fields,
            participants=list(participants),
        )
        kind = fields.get(REQUEST_TYPE_FIELD)
        if isinstance(kind, dict) and isinstance(kind.get("requestType"), dict):
            # The field carries the request type's id too, as Jira's does.
            named = kind["requestType"]
            type_id = self.request_type_id(issue.project, str(named.get("name", "")))
            if type_id is not None:
                fields[REQUEST_TYPE_FIELD] = {"requestType": {**named, "id": type_id}}
        parent = fields.pop("parent", None)
        issue.parent = parent.get("key") if isinstance(parent, dict) else parent
        if issue.reporter:
            issue.updated_by.add(issue.reporter)
        for raw in comments:
            author = raw.get("author")
            self._append_comment(
                issue,
                author.get("accountId") if isinstance(author, dict) else author,
                raw.get("body", ""),
                jira_time(raw.get("created") or fields["created"]),
                comment_id=str(raw["id"]) if raw.get("id") else None,
            )
        self.issues[key] = issue
        self.by_id[issue.id] = key
        return issue

    def _append_comment(
        self,
        issue: Issue,
        author: str | None,
        body: str,
        created: str,
        comment_id: str | None = None,
    ) -> Comment:
        self._next_comment += 1
        comment = Comment(comment_id or str(self._next_comment), author, body, created, created)
        issue.comments.append(comment)
        if author:
            issue.updated_by.add(author)
        return comment

    # -- reading and changing ---------------------------------------------------------------

    def project_keys(self) -> set[str]:
        """The projects the site has: those of its service desks and its issues."""
        with self.lock:
            return {d.project_key for d in self.servicedesks.values()} | {
                i.project for i in self.issues.values()
            }

    def issue(self, key_or_id: str) -> Issue | None:
        with self.lock:
            key = self.by_id.get(key_or_id, key_or_id)
            return self.issues.get(key.upper()) or self.issues.get(key)

    def search(self, query: jql.Query) -> list[Issue]:
        with self.lock:
            hits = [
                i for i in self.issues.values() if query.where is None or _matches(query.where, i)
            ]
        for name, descending in reversed(query.order_by):
            hits.sort(key=_sort_key(name), reverse=descending)
        return hits

    def add_comment(self, issue: Issue, author: str | None, body: str) -> Comment:
        with self.lock:
            comment = self._append_comment(issue, author, body, jira_time())
            issue.touch()
            issue.fields["updated"] = comment.created
            return comment

    def subtasks(self, issue: Issue) -> list[Issue]:
        with self.lock:
            return [i for i in self.issues.values() if i.parent == issue.key]

    def delete_issue(self, issue: Issue) -> None:
        """The issue and its subtasks (the caller checks ``deleteSubtasks``)."""
        with self.lock:
            for sub in self.subtasks(issue):
                self.delete_issue(sub)
            self.issues.pop(issue.key, None)
            self.by_id.pop(issue.id, None)

    def record_change(self, issue: Issue, author: str | None, items: list[HistoryItem]) -> None:
        """A changelog entry for an edit (nothing for an edit that changed nothing)."""
        if not items:
            return
        with self.lock:
            self._next_history += 1
            issue.history.append(History(str(self._next_history), author, jira_time(), items))

    def delete_user(self, account_id: str) -> bool:
        """Remove a user from the directory and from every customer list; False: no such user.
        Issues keep the accountId (reporter, participants, comment authors), as in Jira."""
        with self.lock:
            if self.users.pop(account_id, None) is None:
                return False
            for desk in self.servicedesks.values():
                desk.customers = [c for c in desk.customers if c != account_id]
            return True

    def find_users(self, query: str) -> list[User]:
        """Jira Cloud's user search, active users only: a prefix of the display name, a word of
        it or the e-mail; a hidden address only by an exact match ("if a user has hidden their
        email address in their user profile, partial matches of the email address will not find
        the user. An exact match is required", Find users and groups, Cloud REST API v2)."""
        needle = query.strip().lower()
        with self.lock:
            return [
                u
                for u in self.users.values()
                if u.active
                and needle
                and (
                    (u.email_visible and (u.email or "").lower().startswith(needle))
                    or (u.email or "").lower() == needle
                    or u.display_name.lower().startswith(needle)
                    or any(w.startswith(needle) for w in u.display_name.lower().split())
                    or u.account_id.lower() == needle
                )
            ]


def _matches(node: jql.Node, issue: Issue) -> bool:
    if isinstance(node, jql.BoolOp):
        results = (_matches(part, issue) for part in node.parts)
        return all(results) if node.op == "and" else any(results)
    if node.op == "~":
        return jql.text_query_words(node.field, node.values[0]) <= issue.text_words(node.field)
    if node.op == "in updatedby":
        return bool({v for v in node.values} & issue.updated_by)
    if node.op in jql.ORDER_OPERATORS:
        return jql.compare(node, issue.key, issue.fields.get("resolutiondate"))
    values = issue.values_of(node.field)
    wanted = {v.lower() for v in node.values}
    if node.op in ("=", "in"):
        return bool(values & wanted)
    return not (values & wanted)  # != and not in


def _sort_key(name: str) -> Any:
    if name in ("key", "issuekey"):

        def by_key(issue: Issue) -> tuple[str, int]:
            project, _, number = issue.key.rpartition("-")
            return (project, int(number) if number.isdigit() else 0)

        return by_key
    if name == "resolved":
        name = "resolutiondate"
    return lambda issue: issue.fields.get(name) or ""
