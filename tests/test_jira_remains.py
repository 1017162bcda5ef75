"""Receipts say what Jira still keeps: an anonymised issue's change history holds the old
values (Jira has no API to remove it), and Delete user leaves the Atlassian account."""

from __future__ import annotations

from connectors.jira import accounts as jira_accounts
from connectors.jira import history as jira_history
from dsrflow.plan import Outcome
from tests.test_jira_connector import (
    AL,
    Site,
    mapping_with,
    plan_erasure,
    subject,
)


def test_an_anonymised_issue_says_its_history_keeps_the_old_values_and_the_step(
    site: Site,
) -> None:
    connector = site.connector()
    plan = plan_erasure(connector, list(connector.discover(subject(AL))))
    report = connector.erase(plan, subject(AL))
    assert report.complete
    remains = {r.record_id: r.remains for r in report.results if r.outcome == Outcome.DONE}
    sup1 = remains["jira:issues:key=SUP-1"]
    assert sup1 is not None and "change history" in sup1 and jira_history.STEP in sup1
    assert "(description, reporter)" in sup1
    assert AL not in (sup1 or "").lower()  # field names and counts, never the values
    # The history truly holds them: the emulator kept the old description.
    history = site.store.issues["SUP-1"].history
    assert any(AL in (i.from_string or "").lower() for h in history for i in h.items)
    # A comment deleted or edited leaves no issue history: nothing is claimed for it.
    assert all(v is None for k, v in remains.items() if ":comments:" in k)


def test_an_issue_deleted_whole_claims_no_history(site: Site) -> None:
    connector = site.connector(mapping_with(erasure={"mode": "delete_unshared"}))
    plan = plan_erasure(connector, list(connector.discover(subject(AL))))
    report = connector.erase(plan, subject(AL))
    (sup8,) = [r for r in report.results if r.record_id == "jira:issues:key=SUP-8"]
    assert (sup8.outcome, sup8.remains) == (Outcome.DONE, None)


def test_a_deleted_customer_account_remains_at_atlassian_and_the_result_says_so(
    site: Site,
) -> None:
    site.store.users["u-al"].account_type = "customer"
    connector = site.connector()
    plan = plan_erasure(connector, list(connector.discover(subject(AL))))
    report = connector.erase(plan, subject(AL))
    (customer,) = [r for r in report.results if ":customers:" in r.record_id]
    assert customer.outcome == Outcome.DONE
    assert customer.remains == jira_accounts.ACCOUNT_REMAINS
    assert "Atlassian keeps the account itself" in (customer.remains or "")
    assert "u-al" not in site.store.users and "u-al" in site.store.accounts
