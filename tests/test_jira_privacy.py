"""Jira Cloud hides a user's address where their profile visibility says so, and its user
search is empty without Browse users and groups: neither is an absence. The connector confirms
accounts by the routes that show addresses (user search where shown, a service desk's customer
list for portal customers, an officer's ``jira_account_id``) and fails loudly, naming the step,
where it cannot."""

from __future__ import annotations

import pytest

from connectors.base import SourceUnavailable
from dsrflow.records import Record
from tests.test_jira_connector import (
    AL,
    Site,
    plan_erasure,
    subject,
    summary,
)


def _visible_baseline(site: Site, **subject_kw: tuple[str, ...]) -> list[Record]:
    return list(site.connector().discover(subject(AL, **subject_kw)))


def test_a_portal_customer_with_a_hidden_address_is_confirmed_by_the_customer_list(
    site: Site,
) -> None:
    al = site.store.users["u-al"]
    al.account_type = "customer"
    baseline = _visible_baseline(site)
    al.email_visible = False
    records = list(site.connector().discover(subject(AL)))
    assert summary(records) == summary(baseline)
    assert {r.location for r in records} == {"issues", "comments", "customers"}


def test_an_account_with_a_hidden_address_makes_the_source_incomplete_and_names_the_step(
    site: Site,
) -> None:
    site.store.users["u-al"].email_visible = False  # an Atlassian account (agent, staff)
    with pytest.raises(SourceUnavailable) as caught:
        list(site.connector().discover(subject(AL)))
    message = str(caught.value)
    assert "incomplete" in message and "jira_account_id" in message
    assert "1 Jira account(s) answer to the subject's address" in message
    assert AL not in message.lower() and "u-al" not in message  # counts, not identifiers


def test_the_officers_jira_account_id_confirms_a_hidden_account(site: Site) -> None:
    baseline = _visible_baseline(site)
    site.store.users["u-al"].email_visible = False
    records = list(site.connector().discover(subject(AL, accounts=("u-al",))))
    assert summary(records) == summary(baseline)
    (customer,) = [
        r for r in records if r.location == "customers" and r.fields["servicedesk"] == "SUP"
    ]
    assert customer.matched == ("jira_account_id:u-al",)


def test_a_hidden_customer_account_is_still_deleted_on_the_customer_lists_word(
    site: Site,
) -> None:
    al = site.store.users["u-al"]
    al.account_type = "customer"
    al.email_visible = False
    connector = site.connector()
    plan = plan_erasure(connector, list(connector.discover(subject(AL))))
    report = connector.erase(plan, subject(AL))
    assert report.complete, report.results
    assert "u-al" not in site.store.users


def test_without_browse_users_the_empty_user_search_is_not_an_absence(site: Site) -> None:
    site.store.denied_permissions.add("USER_PICKER")
    with pytest.raises(SourceUnavailable) as caught:
        list(site.connector().discover(subject(AL)))
    assert "incomplete" in str(caught.value)
    assert "Browse users and groups" in str(caught.value)


def test_a_subject_jira_does_not_know_is_a_confirmed_absence(site: Site) -> None:
    assert list(site.connector().discover(subject("nobody.here@example.org"))) == []
