"""The retention sweep of a Jira service desk: the mapping's ``retention`` rules, applied to the
resolved requests of every mapped project.

Per rule and project, one JQL search, paged by key rather than by position::

    project = "SUP" AND resolved < "2023/11/21" [AND status in (…)] [AND key > "SUP-120"]
        ORDER BY key ASC

Each page is asked for afresh after the last key of the one before (``key >``), so deleting a
page cannot shift the next one (whatever a ``nextPageToken`` or ``startAt`` would do after
deletions), memory holds one page, and a rerun after a crash simply finds what is left.

JQL reads a date in the searching user's time zone, so the date in the query is taken half a
day before the cutoff's: whatever the zone, every issue found was resolved before the cutoff,
and each one's ``resolutiondate`` is then checked exactly. Requests resolved in the last day or
so before the cutoff wait for the next (daily) sweep.

What goes: ``delete`` deletes the request (as erasure does), ``anonymise`` pseudonymises
everyone who appears in it and removes them as reporter, participants and commenters (erasure's
own anonymisation, applied to all of them). Requests of restricted subjects, and those under the
mapping's legal hold, stay. A dry run changes nothing and counts what would go.

A request with subtasks goes with them (``deleteSubtasks=true``: Jira refuses the delete
otherwise) only when every subtask is expired too; else it stays until they are, and the
result's notes count it. An anonymised request's change history keeps the old values (no API
removes them: ``connectors.jira.history``): the notes count those requests and name the step.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from connectors.base import SweepResult
from connectors.jira import history as jira_history
from connectors.jira.mapping import JiraMapping, JiraRetentionRule
from connectors.jira.operations import Issues, account_of, jql_string, subtask_keys
from connectors.jira.text import Person, emails_in, mentions_in
from dsrflow.identifiers import try_normalise_email
from dsrflow.records import Record

# The furthest any time zone is behind UTC (-12:00): a JQL date taken this much before the
# cutoff is before it in every zone.
_ZONE_MARGIN = dt.timedelta(hours=12)


def protected_keys(source: str, records: Sequence[Record]) -> set[str]:
    """Issues holding a restricted subject's record (the issue itself or a comment on it)."""
    keys = set()
    for record in records:
        if record.source != source:
            continue
        key = record.native_id.get("key") or record.native_id.get("issue")
        if key:
            keys.add(str(key))
    return keys


def resolved_at(fields: dict[str, Any]) -> dt.datetime | None:
    raw = fields.get("resolutiondate")
    if not raw:
        return None
    return dt.datetime.strptime(str(raw), "%Y-%m-%dT%H:%M:%S.%f%z")


def expired_jql(
    project: str, rule: JiraRetentionRule, cutoff: dt.datetime, after: str | None
) -> str:
    """The search for the project's requests the rule may take, after the key ``after``."""
    day = (cutoff.astimezone(dt.UTC) - _ZONE_MARGIN).strftime("%Y/%m/%d")
    clauses = [f"project = {jql_string(project)}", f'resolved < "{day}"']
    if rule.statuses:
        clauses.append(f"status in ({', '.join(jql_string(s) for s in rule.statuses)})")
    if after:
        clauses.append(f"key > {jql_string(after)}")
    return " AND ".join(clauses) + " ORDER BY key ASC"


class JiraRetention:
    """One sweep of a mapping's retention rules, through the site's issue operations."""

    def __init__(self, source_name: str, issues: Issues, mapping: JiraMapping) -> None:
        self.name = source_name
        self.issues = issues
        self.mapping = mapping

    def sweep(
        self, now: dt.datetime, *, dry_run: bool = False, protected: Sequence[Record] = ()
    ) -> list[SweepResult]:
        keep = protected_keys(self.name, protected)
        results = []
        for rule in self.mapping.retention:
            cutoff = now - rule.max_age.as_delta()
            for project in self.mapping.projects:
                result = SweepResult(
                    table=project,
                    rule=f"{rule.action} after {rule.max_age.short()} (resolutiondate)",
                    cutoff=cutoff.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
                    dry_run=dry_run,
                )
                self._sweep_project(project, rule, cutoff, keep, result, dry_run)
                results.append(result)
        return results

    def _sweep_project(
        self,
        project: str,
        rule: JiraRetentionRule,
        cutoff: dt.datetime,
        keep: set[str],
        result: SweepResult,
        dry_run: bool,
    ) -> None:
        held = waiting = history = along = 0
        for issue in self._expired(project, rule, cutoff, result):
            live, expired = self._subtasks(issue, cutoff) if rule.action == "delete" else ([], [])
            if issue["key"] in keep:
                result.protected += 1
            elif self.issues.held(issue["fields"]):
                held += 1
            elif live:
                waiting += 1
            elif dry_run or self._apply(rule, issue):
                result.rows += 1
                along += len(expired)
                history += not dry_run and rule.action != "delete" and self._has_history(issue)
        if held:
            reason = self.mapping.legal_hold.reason if self.mapping.legal_hold else "legal hold"
            result.notes.append(f"{held} kept under the legal hold: {reason}")
        if waiting:
            result.notes.append(
                f"{waiting} kept until their subtasks expire too (a delete takes its subtasks)"
            )
        if along:
            # Counted here, not in rows: each went with its request's delete.
            done = "would go" if dry_run else "deleted"
            result.notes.append(f"{along} expired subtask(s) {done} with their request")
        if history:
            result.notes.append(
                f"{history} anonymised request(s) keep the old values in their change history: "
                f"{jira_history.STEP}"
            )

    def _subtasks(self, issue: dict[str, Any], cutoff: dt.datetime) -> tuple[list[str], list[str]]:
        """The issue's subtasks, read afresh: (not resolved before ``cutoff``, expired)."""
        live: list[str] = []
        expired: list[str] = []
        for key in subtask_keys(issue["fields"]):
            sub = self.issues.read_issue(key, "resolutiondate", doing="reading a subtask")
            if sub is None:
                continue
            moment = resolved_at(sub["fields"])
            (live if moment is None or moment >= cutoff else expired).append(key)
        return live, expired

    def _has_history(self, issue: dict[str, Any]) -> bool:
        """Whether the anonymised request's history still names anyone who was in it."""
        person = self._people(issue, self.issues.all_comments(issue))
        found, _ = jira_history.traces(self.issues.client, issue["key"], person)
        return found > 0

    def _expired(
        self, project: str, rule: JiraRetentionRule, cutoff: dt.datetime, result: SweepResult
    ) -> Iterator[dict[str, Any]]:
        """Issues resolved before ``cutoff``, a page at a time, by key."""
        after: str | None = None
        while True:
            issues = self._page(expired_jql(project, rule, cutoff, after))
            result.batches += 1
            if not issues:
                return
            for issue in issues:
                moment = resolved_at(issue["fields"])
                # JQL's date was only a pre-filter: the exact instant decides.
                if moment is not None and moment < cutoff:
                    yield issue
            after = issues[-1]["key"]

    def _page(self, jql: str) -> list[dict[str, Any]]:
        """The first page of a search: each page is a search of its own (``key >``)."""
        fields = [*self.issues.search_fields(), "resolutiondate"]
        page = self.issues.search_page(jql, fields, doing="searching expired requests")
        return list(page["issues"])

    # -- what happens to an expired request -------------------------------------------------

    def _apply(self, rule: JiraRetentionRule, issue: dict[str, Any]) -> bool:
        """Delete or anonymise one request; whether anything changed (a rerun changes nothing)."""
        key = issue["key"]
        if rule.action == "delete":
            # Every subtask is expired too (``_subtasks``): they go with it.
            subtasks = bool(subtask_keys(issue["fields"]))
            return self.issues.delete_issue(key, "deleting an expired request", subtasks=subtasks)
        comments = self.issues.all_comments(issue)
        return self.issues.anonymise_issue(issue, comments, self._people(issue, comments))

    def _people(self, issue: dict[str, Any], comments: list[dict[str, Any]]) -> Person:
        """Everyone who appears in the request: as a user (reporter, participant, commenter) or
        written in its texts (addresses, mentions)."""
        f = issue["fields"]
        users = [f.get("reporter"), *(f.get(self.issues.field_ids["participants"]) or [])]
        users += [c.get("author") for c in comments]
        texts = [f.get("summary"), f.get("description"), *[c.get("body") for c in comments]]
        texts += [f.get(m) for m in self.issues.custom_text_fields()]
        texts = [t for t in texts if isinstance(t, str)]
        accounts = {a for a in map(account_of, users) if a}
        accounts |= set().union(*(mentions_in(t) for t in texts))
        emails = {e for u in users if u and (e := try_normalise_email(u.get("emailAddress")))}
        emails |= set().union(*(emails_in(t) for t in texts))
        names = {u["displayName"] for u in users if u and u.get("displayName")}
        return Person(frozenset(emails), frozenset(accounts), frozenset(names))
