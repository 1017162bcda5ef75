"""What discovery, erasure, rectification and the retention sweep share: reading, searching,
deleting and anonymising issues and comments, over ``JiraClient``.

Every write reads its target again when its answer is lost (the ``confirm`` of the client's
writes): applied means done, never sent twice. Nothing about contents is logged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.jira.client import JiraClient
from connectors.jira.mapping import JiraMapping
from connectors.jira.text import Person, pseudonymise
from dsrflow.mapping import MappingError

PARTICIPANTS = "Request participants"
REQUEST_TYPE = "Customer Request Type"
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


def subtask_keys(fields: dict[str, Any]) -> list[str]:
    return [str(s["key"]) for s in fields.get("subtasks") or [] if s.get("key")]


def shared_with(
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


@dataclass
class JiraStats:
    issues_seen: int = 0
    issues_confirmed: int = 0
    comment_pages: int = 0
    search_pages: int = 0


class Issues:
    """Issues and their comments on one site, as the mapping sees them (its fields, its hold)."""

    def __init__(
        self, client: JiraClient, mapping: JiraMapping, *, mapping_path: Path, page_size: int
    ) -> None:
        self.client = client
        self.mapping = mapping
        self.page_size = page_size
        self.stats = JiraStats()
        self.field_ids = self._resolve_fields(mapping_path)

    def _resolve_fields(self, mapping_path: Path) -> dict[str, str]:
        """The ids of the Service Management fields; a mapped custom field the site lacks is
        a mapping problem (decided on a fresh read: the site's field ids may be cached)."""

        def missing_in(by_clause: dict[str, str]) -> list[str]:
            ids = set(by_clause.values())
            absent = [
                f"match_in.{i}: no field {f!r} on this Jira site"
                for i, f in enumerate(self.mapping.match_in)
                if f.startswith("customfield_") and f not in ids
            ]
            if not (by_clause.get(PARTICIPANTS) and by_clause.get(REQUEST_TYPE)):
                absent.append("")  # not a mapping problem, but worth a fresh look
            return absent

        by_clause = self.client.fields_by_name()
        if missing_in(by_clause):
            by_clause = self.client.fields_by_name(fresh=True)
        missing = [m for m in missing_in(by_clause) if m]
        if missing:
            raise MappingError(mapping_path, missing)
        return {
            "participants": by_clause.get(PARTICIPANTS, ""),
            "request_type": by_clause.get(REQUEST_TYPE, ""),
        }

    # -- reading ----------------------------------------------------------------------------

    def search_fields(self) -> list[str]:
        wanted = ["summary", "description", "status", "created", "updated", "reporter"]
        wanted += ["labels", "comment", "subtasks", *self.field_ids.values()]
        wanted += self.custom_text_fields()
        return [f for f in dict.fromkeys(wanted) if f]

    def custom_text_fields(self) -> list[str]:
        return [m for m in self.mapping.match_in if m.startswith("customfield_")]

    def search_page(
        self,
        jql: str,
        fields: list[str],
        *,
        token: str | None = None,
        start: int = 0,
        doing: str = "searching issues",
    ) -> dict[str, Any]:
        page = self.client.search_page(
            doing, jql, fields, page_size=self.page_size, token=token, start=start
        )
        self.stats.search_pages += 1
        return page

    def participants(self, fields: dict[str, Any]) -> list[str]:
        users = fields.get(self.field_ids["participants"]) or []
        return [a for a in map(account_of, users) if a]

    def read_issue(
        self, key: str, fields: str | None = None, *, doing: str = "reading an issue"
    ) -> dict[str, Any] | None:
        """The issue (with ``fields``, else what a search reads), None if it is gone."""
        answer: dict[str, Any] | None = self.client.get_json(
            doing,
            f"issue/{key}",
            {"fields": fields or ",".join(self.search_fields())},
            missing_ok=True,
        )
        return answer

    def fields_of(self, key: str) -> dict[str, Any]:
        issue = self.read_issue(key)
        return issue["fields"] if issue else {}

    def all_comments(self, issue: dict[str, Any]) -> list[dict[str, Any]]:
        """The issue's comments: those the search result carries, then the rest, paged."""
        inline = issue["fields"].get("comment") or {}
        comments = list(inline.get("comments") or [])
        total = inline.get("total", len(comments))
        start = len(comments)
        while start < total:
            page = self.client.get_json(
                "reading comments",
                f"issue/{issue['key']}/comment",
                {"startAt": start, "maxResults": COMMENT_PAGE},
            )
            self.stats.comment_pages += 1
            if not page["comments"]:
                break
            comments += page["comments"]
            start += len(page["comments"])
            total = page["total"]
        return comments

    def read_comment(self, key: str, cid: str) -> dict[str, Any] | None:
        answer: dict[str, Any] | None = self.client.get_json(
            "reading a comment", f"issue/{key}/comment/{cid}", missing_ok=True
        )
        return answer

    def issue_holds(self, key: str, update: dict[str, Any]) -> bool:
        """Whether the issue, read again, holds every field value of ``update`` (a PUT's
        ``fields``): how a PUT whose answer was lost is confirmed."""
        fields = self.fields_of(key)
        for name, value in update.items():
            now = fields.get(name)
            if name == "reporter":
                if account_of(now) != (value or {}).get("accountId"):
                    return False
            elif now != value:
                return False
        return True

    def held(self, fields: dict[str, Any], on: dt.date | None = None) -> str | None:
        """Why an issue (by its fields as Jira has them) stays: the legal hold, until when.
        ``on``: the day to check (default today)."""
        times = {k: jira_timestamp(fields.get(k)) for k in ("created", "updated")}
        until = self.mapping.hold_until(times)
        if until and until > (on or dt.datetime.now(dt.UTC).date()):
            assert self.mapping.legal_hold
            return f"kept: {self.mapping.legal_hold.reason} until {until.isoformat()}"
        return None

    def others_subtasks(self, person: Person, fields: dict[str, Any]) -> list[str]:
        """The keys of the issue's subtasks that someone other than the subject takes part in
        (reporter, participant, commenter), read afresh: a delete of the issue takes them."""
        shared = []
        for key in subtask_keys(fields):
            sub = self.read_issue(key)
            if sub is None:
                continue  # gone since: nothing of anyone's to lose
            f = sub["fields"]
            if shared_with(
                person,
                account_of(f.get("reporter")),
                self.participants(f),
                self.all_comments(sub),
            ):
                shared.append(key)
        return shared

    # -- writing ----------------------------------------------------------------------------

    def delete_issue(self, key: str, doing: str, *, subtasks: bool = False) -> bool:
        """Delete an issue; whether it was still there. Jira refuses (400) to delete an issue
        with subtasks unless ``deleteSubtasks=true``, which ``subtasks`` sends: the caller has
        decided that the subtasks may go too."""
        return self.client.delete_resource(
            doing,
            f"issue/{key}",
            {"deleteSubtasks": "true"} if subtasks else None,
            confirm=lambda: self.read_issue(key) is None,
        )

    def anonymise_issue(
        self, issue: dict[str, Any], comments: list[dict[str, Any]], person: Person
    ) -> bool:
        """Pseudonymise ``person`` in the issue's texts and comments, replace them as reporter,
        take them out of the participants, delete their comments; whether anything changed."""
        pseudonym = person.pseudonym(self.mapping.erasure.pseudonym_prefix)
        f = issue["fields"]
        update: dict[str, Any] = {}
        for name in ("summary", "description", *self.custom_text_fields()):
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
                confirm=lambda: self.issue_holds(key, update),
            )
        mine = sorted(set(self.participants(f)) & person.account_ids)
        if mine:
            self.client.delete(
                "removing request participants",
                f"/rest/servicedeskapi/request/{key}/participant",
                {"accountIds": mine},
                confirm=lambda: not set(mine) & set(self.participants(self.fields_of(key))),
            )
        changed = bool(update or mine)
        for comment in comments:
            changed |= self.anonymise_comment(key, comment, person)
        return changed

    def anonymise_comment(self, key: str, comment: dict[str, Any], person: Person) -> bool:
        """The subject's own comment goes (Jira cannot change its author); in others' comments
        only the subject's traces are pseudonymised. Whether anything changed."""
        author = account_of(comment.get("author"))
        cid = str(comment["id"])
        if author in person.account_ids:
            self.client.delete_comment(
                "deleting a comment", key, cid, confirm=lambda: self.read_comment(key, cid) is None
            )
            return True
        body = comment.get("body") or ""
        new = pseudonymise(body, person, person.pseudonym(self.mapping.erasure.pseudonym_prefix))
        if new == body or new is None:
            return False
        self.client.update_comment(
            "anonymising a comment",
            key,
            cid,
            new,
            confirm=lambda: (self.read_comment(key, cid) or {}).get("body") == new,
        )
        return True
