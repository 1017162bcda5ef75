"""A subtask blocks an issue's delete unless ``deleteSubtasks=true`` (Jira Cloud platform REST
API v2, Delete issue): the connector deletes an issue with its subtasks only where they are the
subject's alone, and says so; others' subtasks make the issue shared (anonymised, kept)."""

from __future__ import annotations

from connectors.jira.connector import JiraConnector
from dsrflow.plan import Action, Outcome, PlannedAction
from dsrflow.records import Record
from tests.test_jira_connector import (
    AL,
    Site,
    mapping_with,
    plan_erasure,
    subject,
)

DELETE_UNSHARED = {"erasure": {"mode": "delete_unshared"}}


def _plan_for(site: Site, key: str) -> tuple[JiraConnector, list[PlannedAction], list[Record]]:
    connector = site.connector(mapping_with(**DELETE_UNSHARED))
    records = [r for r in connector.discover(subject(AL)) if r.native_id == {"key": key}]
    return connector, plan_erasure(connector, records), records


def test_an_agents_subtask_makes_the_issue_shared_so_it_is_anonymised_not_deleted(
    site: Site,
) -> None:
    site.store.add_issue(
        "SUP-50", {"summary": "Check the export job", "reporter": "u-agent", "parent": "SUP-8"}
    )
    connector, plan, records = _plan_for(site, "SUP-8")
    assert [r.shared_with for r in records] == [("subtasks",)]
    assert [a.action for a in plan] == [Action.REDACT]
    assert connector.erase(plan, subject(AL)).complete
    assert "SUP-8" in site.store.issues and "SUP-50" in site.store.issues


def test_the_subjects_own_subtasks_go_with_the_issue_and_the_result_says_so(site: Site) -> None:
    site.store.add_issue(
        "SUP-51", {"summary": "My follow-up", "reporter": "u-al", "parent": "SUP-8"}
    )
    connector, plan, _ = _plan_for(site, "SUP-8")
    assert [a.action for a in plan] == [Action.DELETE]
    report = connector.erase(plan, subject(AL))
    assert [(r.outcome, r.detail) for r in report.results] == [
        (Outcome.DONE, "deleted with its 1 subtask(s), the subject's")
    ]
    assert "SUP-8" not in site.store.issues and "SUP-51" not in site.store.issues


def test_a_subtask_of_someone_else_added_after_planning_refuses_the_delete(site: Site) -> None:
    connector, plan, _ = _plan_for(site, "SUP-8")
    assert [a.action for a in plan] == [Action.DELETE]
    site.store.add_issue(
        "SUP-52", {"summary": "Agent task", "reporter": "u-agent", "parent": "SUP-8"}
    )
    report = connector.erase(plan, subject(AL))
    assert [r.outcome for r in report.results] == [Outcome.SKIPPED]
    assert "1 of its 1 subtask(s)" in (report.results[0].detail or "")
    assert not report.complete
    assert "SUP-8" in site.store.issues and "SUP-52" in site.store.issues
