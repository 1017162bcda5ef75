"""Discovery in a Jira service desk: the subject's customer records, issues and comments.

One JQL search, paged (Cloud: ``nextPageToken`` alone, as ``isLast`` is optional and pages may
be shorter than asked; Data Center: ``startAt``) and streamed page by page::

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
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.jira import accounts
from connectors.jira.mapping import JiraMapping
from connectors.jira.operations import (
    PARTICIPANTS,
    Issues,
    account_of,
    jira_timestamp,
    jql_string,
    jql_text,
    shared_with,
)
from connectors.jira.subject import ACCOUNT, Known
from connectors.jira.text import OTHER_PERSON, Person, mask_others, mentions, others_in
from connectors.third_parties import SourceContext, ThirdParties
from dsrflow.identifiers import email_spellings
from dsrflow.records import Record


def _request_type(value: Any) -> str | None:
    """The name of a Service Management request type field value."""
    if isinstance(value, dict):
        request_type = value.get("requestType")
        if isinstance(request_type, dict):
            return request_type.get("name")
    return None


class Discovery:
    """Turns what Jira holds of a resolved subject into records."""

    def __init__(
        self,
        source_name: str,
        mapping: JiraMapping,
        issues: Issues,
        context: SourceContext | None = None,
    ) -> None:
        self.name = source_name
        self.mapping = mapping
        self.issues = issues
        self.client = issues.client
        self.context = context or SourceContext()
        self.rule = ThirdParties.of((), context=self.context)

    def records(self, known: Known, phones: frozenset[str] = frozenset()) -> Iterator[Record]:
        """``phones``: the subject's phone numbers (E.164), which are not someone else's."""
        self.rule = ThirdParties.of(known.person.emails, phones, self.context)
        stats = self.issues.stats
        yield from self._customer_records(known)
        for issue in self._search(known.person):
            stats.issues_seen += 1
            comments = self.issues.all_comments(issue)
            found = list(self._issue_records(known, issue, comments))
            if found:
                stats.issues_confirmed += 1
            yield from found

    def _customer_records(self, known: Known) -> Iterator[Record]:
        for desk, customer in known.customers:
            account = account_of(customer)
            assert account is not None
            fields = {
                "servicedesk": desk["projectKey"],
                "account_id": account,
                "email": customer.get("emailAddress"),
                "display_name": customer.get("displayName"),
                # Whether erasure may delete the account: portal-only customers only.
                "account_type": accounts.account_type(self.client, known.users[account], account),
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
            if self.issues.field_ids["participants"]:
                clauses.append(f"{jql_string(PARTICIPANTS)} in ({listed})")
            clauses += [f"issue in updatedBy({jql_string(a)})" for a in ids]
        # Mentions: fuzzy full-text pre-filters, confirmed exactly afterwards.
        emails = sorted({s for e in person.emails for s in email_spellings(e, decomposed=True)})
        clauses += [f"text ~ {jql_text(v)}" for v in emails + ids]
        projects = ", ".join(jql_string(p) for p in self.mapping.projects)
        return f"project in ({projects}) AND ({' OR '.join(clauses)}) ORDER BY key ASC"

    def _search(self, person: Person) -> Iterator[dict[str, Any]]:
        """The candidate issues, one page in memory at a time."""
        jql, fields = self._jql(person), self.issues.search_fields()
        token: str | None = None
        start = 0
        while True:
            page = self.issues.search_page(jql, fields, token=token, start=start)
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

    def _issue_records(
        self, known: Known, issue: dict[str, Any], comments: list[dict[str, Any]]
    ) -> Iterator[Record]:
        person = known.person
        f = issue["fields"]
        key = issue["key"]
        reporter = account_of(f.get("reporter"))
        participants = self.issues.participants(f)
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
        names = self._other_names(known, issue, comments)
        shared = shared_with(person, reporter, participants, comments)
        texts_of_others = {"summary": f.get("summary"), "description": f.get("description")}
        texts_of_others |= {n: t for n, t in texts.items() if n.startswith("customfield_")}
        shared += tuple(n for n, t in texts_of_others.items() if others_in(t, person, self.rule))
        if roles and not shared and self.issues.others_subtasks(person, f):
            # Deleting the issue deletes its subtasks: others' work there makes it shared.
            shared += ("subtasks",)
        if roles:
            fields: dict[str, Any] = {
                "key": key,
                "summary": self._masked(f.get("summary"), person, names),
                "description": self._masked(f.get("description"), person, names),
                "status": (f.get("status") or {}).get("name"),
                "created": jira_timestamp(f.get("created")),
                "request_type": _request_type(f.get(self.issues.field_ids["request_type"])),
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
                shared=bool(shared),
                shared_with=shared,
                expands=tuple(sorted(f"{ACCOUNT}:{a}" for a in person.account_ids)),
            )
        for comment in comments:
            record = self._comment_record(person, key, comment, names)
            if record is not None:
                yield record

    def _comment_record(
        self, person: Person, key: str, comment: dict[str, Any], names: list[str]
    ) -> Record | None:
        """The comment as the subject's record, if they wrote it or are mentioned in it."""
        author = account_of(comment.get("author"))
        roles: list[str] = []
        matched: set[str] = set()
        if author in person.account_ids:
            roles.append("commenter")
            matched.add(f"{ACCOUNT}:{author}")
        if "comments" in self.mapping.match_in:
            hits = mentions(person, comment.get("body"))
            if hits:
                roles.append("mentioned")
                matched |= hits
        if not roles:
            return None
        own = author in person.account_ids
        shared: tuple[str, ...] = () if own else ("comments.author",)
        if others_in(comment.get("body"), person, self.rule):
            shared += ("comments.body",)
        fields = {
            "issue": key,
            "body": self._masked(comment.get("body"), person, names),
            "author": (comment.get("author") or {}).get("displayName")
            if own or not self.mapping.mask_others
            else OTHER_PERSON,
            "created": jira_timestamp(comment.get("created")),
            "role": roles,
        }
        return Record(
            source=self.name,
            location="comments",
            native_id={"issue": key, "id": str(comment["id"])},
            categories={k: self.mapping.category_of(k) for k in fields},
            fields=fields,
            matched=tuple(sorted(matched)),
            timestamps={"created": fields["created"]} if fields["created"] else {},
            shared=bool(shared),
            shared_with=shared,
        )

    def _other_names(
        self, known: Known, issue: dict[str, Any], comments: list[dict[str, Any]]
    ) -> list[str]:
        """The display names of everyone else who appears on the issue."""
        f = issue["fields"]
        users = [f.get("reporter"), *(f.get(self.issues.field_ids["participants"]) or [])]
        users += [c.get("author") for c in comments]
        return [
            u.get("displayName") or ""
            for u in users
            if u and account_of(u) not in known.person.account_ids
        ]

    def _masked(self, text: str | None, person: Person, names: list[str]) -> str | None:
        return mask_others(text, person, names, self.rule) if self.mapping.mask_others else text
