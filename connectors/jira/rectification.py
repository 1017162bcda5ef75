"""Rectification (fields of issues set and read back) and restriction (a label on the issue)
in a Jira service desk."""

from __future__ import annotations

from collections.abc import Sequence

from connectors.base import not_carried_out
from connectors.jira.client import JiraRequestError
from connectors.jira.operations import Issues
from dsrflow.plan import Action, ActionResult, ExecutionReport, Outcome, PlannedAction


def restrict(source: str, issues: Issues, actions: Sequence[PlannedAction]) -> ExecutionReport:
    """Label the issues of RESTRICT actions (a comment's issue for a comment)."""
    report = ExecutionReport(source=source)
    label = issues.mapping.restriction_label
    for action in actions:
        if action.source != source:
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
        report.results.append(_label_issue(issues, action, str(key), label))
    return report


def _label_issue(issues: Issues, action: PlannedAction, key: str, label: str) -> ActionResult:
    issue = issues.read_issue(key)
    if issue is None:
        return ActionResult(
            record_id=action.record_id, outcome=Outcome.FAILED, detail="issue not found"
        )
    if label in (issue["fields"].get("labels") or []):
        return ActionResult(record_id=action.record_id, outcome=Outcome.ALREADY_DONE)
    issues.client.put(
        "labelling an issue",
        f"issue/{key}",
        {"update": {"labels": [{"add": label}]}},
        confirm=lambda: label in (issues.fields_of(key).get("labels") or []),
    )
    return ActionResult(record_id=action.record_id, outcome=Outcome.DONE)


def rectify(source: str, issues: Issues, actions: Sequence[PlannedAction]) -> ExecutionReport:
    """Set the named fields of issues (summary, description, custom fields) and read back."""
    report = ExecutionReport(source=source)
    allowed = {"summary", "description", *issues.mapping.match_in} - {"comments"}
    for action in actions:
        if action.source != source:
            continue
        if action.action != Action.RECTIFY:
            report.results.append(not_carried_out(action))
        elif action.location != "issues":
            report.results.append(
                ActionResult(
                    record_id=action.record_id,
                    outcome=Outcome.SKIPPED,
                    detail="only issue fields are rectified",
                )
            )
        else:
            report.results.append(_rectify_issue(issues, action, allowed))
    return report


def _rectify_issue(issues: Issues, action: PlannedAction, allowed: set[str]) -> ActionResult:
    key = str(action.native_id["key"])
    wrong = sorted(set(action.fields) - allowed)
    if wrong:
        return ActionResult(
            record_id=action.record_id,
            outcome=Outcome.FAILED,
            detail=f"field {wrong[0]} cannot be rectified",
        )
    fields = dict(action.fields)
    try:
        issues.client.put(
            "rectifying an issue",
            f"issue/{key}",
            {"fields": fields},
            confirm=lambda: issues.issue_holds(key, fields),
        )
    except JiraRequestError as exc:
        return ActionResult(record_id=action.record_id, outcome=Outcome.FAILED, detail=str(exc))
    issue = issues.read_issue(key)
    ok = issue is not None and all(issue["fields"].get(k) == v for k, v in fields.items())
    return ActionResult(
        record_id=action.record_id,
        outcome=Outcome.DONE if ok else Outcome.FAILED,
        detail=None if ok else "read back differs",
    )
