"""Erasure in a Jira service desk, following the approved plan.

Issues are anonymised (pseudonym in summary, description, custom fields and comments; out of
the participants; reporter replaced) or deleted; the subject's own comments are deleted, because
Jira cannot change a comment's author; customers are removed from the service desk, and then
their own portal-only customer account is deleted from Jira's users (``connectors.jira.accounts``;
agents' accounts are kept, and the plan says so). Customers come last, so that a rerun after a
crash still finds the account that the other steps need. Records under the mapping's legal hold
are skipped with the reason and date. Every step reads the current state first, so a second run
changes nothing. An issue is deleted with its subtasks (``deleteSubtasks=true``) only where they
are the subject's alone; others' subtasks make it shared. Results say what Jira still keeps
(``ActionResult.remains``): an anonymised issue's change history holds the old values
(``connectors.jira.history``), and a deleted customer account lives on at Atlassian
(``connectors.jira.accounts``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from connectors.base import hold_checked_on, not_carried_out
from connectors.jira import accounts, desks, history
from connectors.jira.mapping import JiraMapping
from connectors.jira.operations import (
    Issues,
    account_of,
    shared_with,
    subtask_keys,
)
from connectors.jira.subject import Known
from dsrflow.plan import Action, ActionResult, ExecutionReport, Outcome, PlannedAction


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


# What an erasure step did: outcome, detail, and what the vendor still keeps (ActionResult).
Result = tuple[Outcome, str | None, str | None]


class Eraser:
    """Carries out one source's DELETE and REDACT actions for a resolved subject."""

    def __init__(self, source_name: str, mapping: JiraMapping, issues: Issues) -> None:
        self.name = source_name
        self.mapping = mapping
        self.issues = issues
        self.client = issues.client

    def erase(self, actions: Sequence[PlannedAction], known: Known) -> ExecutionReport:
        report = ExecutionReport(source=self.name)
        known = known.with_planned_accounts(actions, self.name)
        # Customers (and their accounts) last: the other steps find the subject by the account.
        for action in sorted(actions, key=lambda a: a.location == "customers"):
            if action.source != self.name:
                continue
            if action.action not in (Action.DELETE, Action.REDACT):
                report.results.append(not_carried_out(action))
                continue
            remains: str | None = None
            if action.location == "customers":
                outcome, detail, remains = self.remove_customer(action, known)
            elif action.location == "issues":
                outcome, detail, remains = self.erase_issue(action, known)
            elif action.location == "comments":
                outcome, detail, remains = self.erase_comment(action, known)
            else:
                outcome, detail = Outcome.FAILED, f"unknown location {action.location!r}"
            report.results.append(
                ActionResult(
                    record_id=action.record_id, outcome=outcome, detail=detail, remains=remains
                )
            )
        return report

    # -- one action each --------------------------------------------------------------------

    def remove_customer(self, action: PlannedAction, known: Known) -> Result:
        desk = str(action.native_id["servicedesk"])
        account = str(action.native_id["account_id"])
        present = self._in_desk(desk, account, known)
        if present:
            desks.remove_customer(
                self.client, desk, account, confirm=lambda: not self._in_desk(desk, account, known)
            )
        deleted, kept = accounts.delete_own_account(
            self.client,
            account,
            known.person.emails,
            enabled=self.mapping.erasure.delete_customer_accounts,
            confirmed=known.account_emails.get(account),
        )
        # Delete user ends the site user only: the account outlives it (accounts).
        remains = accounts.ACCOUNT_REMAINS if deleted and self.client.is_cloud else None
        return (Outcome.DONE if present or deleted else Outcome.ALREADY_DONE), kept, remains

    def erase_issue(self, action: PlannedAction, known: Known) -> Result:
        key = str(action.native_id["key"])
        issue = self.issues.read_issue(key)
        if issue is None:
            return Outcome.ALREADY_DONE, None, None
        fields = issue["fields"]
        held = self.issues.held(fields, hold_checked_on(action, today()))
        if held:
            return Outcome.SKIPPED, held, None
        comments = self.issues.all_comments(issue)
        person = known.person
        if action.action == Action.DELETE:
            reporter = account_of(fields.get("reporter"))
            if shared_with(person, reporter, self.issues.participants(fields), comments):
                return Outcome.SKIPPED, "others take part in this issue: anonymise it instead", None
            subtasks = subtask_keys(fields)
            others = self.issues.others_subtasks(person, fields)
            if others:
                return (
                    Outcome.SKIPPED,
                    f"others take part in {len(others)} of its {len(subtasks)} subtask(s), which "
                    "a delete takes with it: anonymise it instead",
                    None,
                )
            self.issues.delete_issue(key, "deleting an issue", subtasks=bool(subtasks))
            if subtasks:
                done = f"deleted with its {len(subtasks)} subtask(s), the subject's"
                return Outcome.DONE, done, None
            return Outcome.DONE, None, None
        changed = self.issues.anonymise_issue(issue, comments, person)
        remains = history.remains(self.client, key, person)
        return (Outcome.DONE if changed else Outcome.ALREADY_DONE), None, remains

    def erase_comment(self, action: PlannedAction, known: Known) -> Result:
        key, cid = str(action.native_id["issue"]), str(action.native_id["id"])
        issue = self.issues.read_issue(key)
        if issue is None:
            return Outcome.ALREADY_DONE, None, None
        held = self.issues.held(issue["fields"], hold_checked_on(action, today()))
        if held:
            return Outcome.SKIPPED, held, None
        comment = self.issues.read_comment(key, cid)
        if comment is None:
            return Outcome.ALREADY_DONE, None, None
        own = account_of(comment.get("author")) in known.person.account_ids
        if action.action == Action.DELETE and not own:
            return Outcome.SKIPPED, "someone else wrote this comment: redact it instead", None
        changed = self.issues.anonymise_comment(key, comment, known.person)
        return (Outcome.DONE if changed else Outcome.ALREADY_DONE), None, None

    def _in_desk(self, desk: str, account: str, known: Known) -> bool:
        """Whether the desk's customer list still holds the account, looked up by the address
        confirmed for it (else by each of the subject's: a hidden one matches exactly)."""
        email = known.account_emails.get(account)
        queries = [email] if email else sorted(known.person.emails)
        return any(
            account_of(c) == account
            for q in queries
            for c in desks.customers_of(self.client, desk, q)
        )
