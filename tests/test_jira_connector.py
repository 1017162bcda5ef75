"""The Jira connector with the real ``jira`` client over HTTP against the sandbox emulator."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from jira import JIRAError

from connectors.base import Capability, SourceUnavailable, capabilities
from connectors.jira import accounts as jira_accounts
from connectors.jira.client import JiraClient
from connectors.jira.connector import JiraConnector
from connectors.jira.mapping import JiraMapping
from connectors.jira.operations import jql_string, jql_text
from connectors.jira.settings import JiraSource
from connectors.registry import open_connector
from dsrflow.mapping import MappingError, load_mapping, parse_mapping
from dsrflow.plan import Action, Outcome, PlannedAction
from dsrflow.records import Record
from dsrflow.request import Subject
from dsrflow.run_settings import run_settings
from sandbox import jira_seed
from tests.support.jira_site import (
    MAPPING_PATH,
    TOKEN_ENV,
    Site,
    fixture_store,
    start_site,
)

AL = "al@example.com"


def subject(*emails: str, accounts: tuple[str, ...] = ()) -> Subject:
    base = Subject.from_raw(list(emails))
    from dsrflow.identifiers import Identifier

    return base.model_copy(
        update={"others": tuple(Identifier(kind="jira_account_id", value=a) for a in accounts)}
    )


def plan_erasure(connector: JiraConnector, records: list[Record]) -> list[PlannedAction]:
    """The mapping's plan for the records, in their order (what the erasure flow plans)."""
    today = dt.datetime.now(dt.UTC).date()
    return [connector.mapping.plan_erasure(r, today) for r in records]


def summary(records: list[Record]) -> set[tuple[str, str, tuple[str, ...]]]:
    """(location, native id text, roles) of each record: what a test compares exactly."""
    out = set()
    for r in records:
        ident = ",".join(f"{k}={r.native_id[k]}" for k in sorted(r.native_id))
        out.add((r.location, ident, tuple(r.fields.get("role") or ())))
    return out


def mapping_with(**changes: Any) -> JiraMapping:
    import yaml

    data = yaml.safe_load(MAPPING_PATH.read_text())
    for key, value in changes.items():
        data[key] = value
    mapping = parse_mapping(yaml.safe_dump(data), Path("test.yaml"))
    assert isinstance(mapping, JiraMapping)
    return mapping


AL_RECORDS = {
    ("customers", "account_id=u-al,servicedesk=1", ()),
    ("issues", "key=SUP-1", ("reporter", "mentioned")),
    ("comments", "id=10001,issue=SUP-1", ("mentioned",)),
    ("comments", "id=10002,issue=SUP-1", ("commenter",)),
    ("issues", "key=SUP-2", ("participant",)),
    ("comments", "id=10005,issue=SUP-3", ("commenter",)),
    ("issues", "key=SUP-4", ("mentioned",)),
    ("issues", "key=SUP-8", ("reporter",)),
}


# -- discovery ---------------------------------------------------------------------------------


def test_finds_reporter_participant_commenter_and_mentions(site: Site) -> None:
    connector = site.connector()
    records = list(connector.discover(subject(AL)))
    assert summary(records) == AL_RECORDS
    by_id = {(r.location, json.dumps(r.native_id, sort_keys=True)): r for r in records}
    sup1 = by_id[("issues", '{"key": "SUP-1"}')]
    assert sup1.matched == ("email:al@example.com", "jira_account_id:u-al")
    # Bob commented, and his address is written in the description (Art. 15(4)).
    assert sup1.shared and sup1.shared_with == ("comments.author", "description")
    assert sup1.expands == ("jira_account_id:u-al",)
    assert sup1.fields["status"] == "Waiting for support"
    assert sup1.fields["request_type"] == "Get help"
    assert sup1.timestamps == {"created": "2026-03-01T09:00:00Z"}
    assert sup1.categories["summary"] == "user.support.content"
    sup8 = by_id[("issues", '{"key": "SUP-8"}')]
    assert not sup8.shared
    customer = by_id[("customers", '{"account_id": "u-al", "servicedesk": "1"}')]
    assert customer.fields["email"] == "AL@Example.COM"
    # OPS is not a mapped project: neither its issue nor its customer list is read.
    assert not any("OPS" in json.dumps(r.native_id) for r in records)


def test_other_people_are_masked_in_the_export(site: Site) -> None:
    records = {
        r.native_id.get("key") or r.native_id.get("id"): r
        for r in site.connector().discover(subject(AL))
    }
    assert records["SUP-1"].fields["description"] == (
        "Contact me at al@example.com or my colleague b***@example.com. [another person] knows."
    )
    assert records["10001"].fields["author"] == "[another person]"
    assert records["10002"].fields["author"] == "Al Subject"
    plain = site.connector(mapping_with(mask_others=False))
    sup1 = next(r for r in plain.discover(subject(AL)) if r.native_id == {"key": "SUP-1"})
    assert "bob@example.com. Bob Builder knows." in sup1.fields["description"]


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        (
            "al@example.com.evil.org",
            {
                ("issues", "key=SUP-5", ("reporter", "mentioned")),
                ("issues", "key=SUP-7", ("mentioned",)),
            },
        ),
        ("al+x@example.com", {("issues", "key=SUP-6", ("reporter", "mentioned"))}),
        (
            "sal@example.com",
            {
                ("issues", "key=SUP-2", ("participant",)),
                ("issues", "key=SUP-3", ("reporter", "mentioned")),
                ("issues", "key=SUP-7", ("mentioned",)),
            },
        ),
    ],
)
def test_look_alikes_match_only_themselves(site: Site, email: str, expected: set) -> None:
    found = {
        r for r in summary(list(site.connector().discover(subject(email)))) if r[0] != "customers"
    }
    assert found == expected


def test_near_misses_of_the_fuzzy_search_are_confirmed_away(site: Site) -> None:
    connector = site.connector()
    records = list(connector.discover(subject(AL)))
    keys = {r.native_id.get("key") or r.native_id.get("issue") for r in records}
    assert {"SUP-5", "SUP-6", "SUP-7", "SUP-11"}.isdisjoint(keys)
    # The server-side search did return them: the exact check threw them out.
    assert connector.stats.issues_seen > connector.stats.issues_confirmed


def test_identifiers_with_jql_and_lucene_metacharacters(site: Site) -> None:
    weird = "o'brien{x}*?/~@example.com"
    found = summary(list(site.connector().discover(subject(weird))))
    assert ("issues", "key=SUP-9", ("reporter", "mentioned")) in found
    quoted = summary(
        list(
            site.connector().discover(subject("nobody@example.com", accounts=('acc"quote\\back',)))
        )
    )
    assert quoted == {("issues", "key=SUP-10", ("reporter",))}
    assert jql_string('a"b\\c') == '"a\\"b\\\\c"'
    assert jql_text("a+b@x.org") == '"a\\\\+b@x.org"'


def test_custom_fields_named_in_the_mapping_are_confirmed(site: Site) -> None:
    mapping = mapping_with(match_in=["summary", "description", "comments", "customfield_10050"])
    records = [
        r for r in site.connector(mapping).discover(subject(AL)) if r.native_id == {"key": "SUP-11"}
    ]
    assert [r.fields["role"] for r in records] == [["mentioned"]]
    assert records[0].fields["customfield_10050"] == "Billing contact: al@example.com"
    with pytest.raises(MappingError, match=r"match_in.1: no field 'customfield_99999'"):
        site.connector(mapping_with(match_in=["summary", "customfield_99999"]))


def test_paging_through_search_results_and_long_comment_threads(site: Site) -> None:
    thread = [{"author": {"accountId": "u-agent"}, "body": f"Update {n}"} for n in range(45)]
    thread.append({"author": {"accountId": "u-al"}, "body": "Still broken, Al"})
    site.store.add_issue(
        "SUP-12",
        {"summary": "Long thread", "description": "-", "reporter": {"accountId": "u-bob"}},
        comments=thread,
    )
    connector = site.connector(page_size=2)
    records = list(connector.discover(subject(AL)))
    assert summary(records) >= AL_RECORDS
    assert (
        "comments",
        f"id={site.store.issues['SUP-12'].comments[-1].id},issue=SUP-12",
        ("commenter",),
    ) in summary(records)
    assert connector.stats.search_pages == -(-connector.stats.issues_seen // 2)
    assert connector.stats.search_pages >= 4
    assert connector.stats.comment_pages == 1  # 20 came with the search, 26 more in one page


def test_data_center_pages_with_start_at_and_a_personal_access_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, jira_seed.SANDBOX_TOKEN)
    server, dc = start_site(fixture_store(), deployment="Server")
    try:
        connector = dc.connector(
            page_size=3,
            deployment="data_center",
            email=None,
            api_token=None,
            personal_access_token={"env": TOKEN_ENV},
        )
        assert not connector.client.is_cloud
        assert summary(list(connector.discover(subject(AL)))) == AL_RECORDS
        stats = httpx.get(f"{dc.url}/_emulator/stats").json()["requests"]
        assert stats.get("GET search", 0) == connector.stats.search_pages >= 2
        assert "GET search/jql" not in stats
    finally:
        server.stop()


# -- erasure, restriction, rectification -----------------------------------------------------


def test_anonymise_leaves_no_trace_and_keeps_other_peoples_text(site: Site) -> None:
    connector = site.connector()
    records = list(connector.discover(subject(AL)))
    plan = plan_erasure(connector, records)
    assert {a.action for a in plan} == {Action.DELETE, Action.REDACT}
    report = connector.erase(plan, subject(AL))
    assert report.complete, report.results
    assert report.count(Outcome.DONE) >= 6

    after = site.connector()
    assert list(after.discover(subject(AL))) == []
    sup1 = site.store.issues["SUP-1"]
    pseudonym = sup1.fields["description"].split()[3]
    assert pseudonym.startswith("[subject-") and len(pseudonym) == len("[subject-7f3a]")
    assert sup1.fields["description"] == (
        f"Contact me at {pseudonym} or my colleague bob@example.com. Bob Builder knows."
    )
    assert sup1.fields["reporter"] is None
    assert [c.body for c in sup1.comments] == [
        f"We will look into it, {pseudonym}.",
        "I see it too, says bob@example.com",
    ]
    assert site.store.issues["SUP-2"].participants == ["u-sal"]
    assert site.store.issues["SUP-4"].fields["description"] == (
        f"Please ask {pseudonym} before changing anything."
    )
    assert "u-al" not in site.store.servicedesks["1"].customers
    assert "u-al" in site.store.servicedesks["2"].customers  # not a mapped service desk
    # The look-alikes' requests are untouched.
    assert (
        site.store.issues["SUP-5"].fields["description"]
        == "I am al@example.com.evil.org, locked out."
    )

    snapshot = copy.deepcopy((site.store.issues, site.store.servicedesks))
    again = after.erase(plan, subject=subject(AL))
    assert {r.outcome for r in again.results} == {Outcome.ALREADY_DONE}
    assert (site.store.issues, site.store.servicedesks) == snapshot


def test_delete_mode_deletes_only_requests_nobody_else_took_part_in(site: Site) -> None:
    connector = site.connector(mapping_with(erasure={"mode": "delete_unshared"}))
    records = list(connector.discover(subject(AL)))
    plan = plan_erasure(connector, records)
    deletes = {
        a.native_id.get("key") for a in plan if a.action == Action.DELETE and a.location == "issues"
    }
    assert deletes == {"SUP-8"}
    assert connector.erase(plan, subject(AL)).complete
    assert "SUP-8" not in site.store.issues
    assert "SUP-1" in site.store.issues  # others took part: anonymised, kept
    assert list(site.connector().discover(subject(AL))) == []


def test_a_delete_is_refused_when_others_take_part(site: Site) -> None:
    connector = site.connector()
    records = [r for r in connector.discover(subject(AL)) if r.native_id == {"key": "SUP-1"}]
    plan = [
        a.model_copy(update={"action": Action.DELETE}) for a in plan_erasure(connector, records)
    ]
    report = connector.erase(plan, subject(AL))
    assert [(r.outcome, r.detail) for r in report.results] == [
        (Outcome.SKIPPED, "others take part in this issue: anonymise it instead")
    ]
    assert "SUP-1" in site.store.issues


def test_legal_hold_keeps_records_and_says_until_when(site: Site) -> None:
    hold = {
        "reason": "Bookkeeping Act §13",
        "duration": {"years": 5},
        "counts_from": "created",
        "round_to_year_end": True,
    }
    connector = site.connector(mapping_with(legal_hold=hold))
    records = list(connector.discover(subject(AL)))
    plan = plan_erasure(connector, records)
    kept = {
        a.native_id.get("key") or a.native_id.get("issue"): a
        for a in plan
        if a.action == Action.KEEP
    }
    assert kept["SUP-1"].keep_until.isoformat() == "2031-12-31"
    assert kept["SUP-1"].reason == "Bookkeeping Act §13"
    assert "SUP-8" not in kept  # created 2015: the hold is over
    # Executing erasure directly on a held record is refused by the connector too.
    forced = [
        a.model_copy(update={"action": Action.REDACT})
        for a in plan
        if a.native_id == {"key": "SUP-1"}
    ]
    result = connector.erase(forced, subject(AL)).results[0]
    assert (result.outcome, result.detail) == (
        Outcome.SKIPPED,
        "kept: Bookkeeping Act §13 until 2031-12-31",
    )
    assert "al@example.com" in site.store.issues["SUP-1"].fields["description"]


def test_restriction_labels_issues_and_discovery_reports_it(site: Site) -> None:
    connector = site.connector()
    records = list(connector.discover(subject(AL)))
    plan = [
        a.model_copy(update={"action": Action.RESTRICT})
        for a in plan_erasure(connector, records)
        if a.location == "issues"
    ]
    assert connector.restrict(plan, subject(AL)).complete
    assert {r.outcome for r in connector.restrict(plan, subject(AL)).results} == {
        Outcome.ALREADY_DONE
    }
    again = [r for r in site.connector().discover(subject(AL)) if r.location == "issues"]
    assert again and all(r.fields["restricted"] for r in again)
    assert site.store.issues["SUP-1"].fields["labels"] == ["gdpr-restricted"]


def test_restricting_a_customer_account_is_the_ledgers_not_a_skip(site: Site) -> None:
    # Jira has no mark for a portal customer: the ledger's restriction list holds it, as for
    # any source without a mark; a skip left every restriction of a customer incomplete.
    connector = site.connector()
    records = list(connector.discover(subject(AL)))
    plan = [
        a.model_copy(update={"action": Action.RESTRICT})
        for a in plan_erasure(connector, records)
        if a.location == "customers"
    ]
    assert plan
    report = connector.restrict(plan, subject(AL))
    assert report.complete
    assert {(r.outcome, r.detail) for r in report.results} == {
        (Outcome.DONE, "restricted in the ledger only: Jira has no mark for a customer")
    }


def test_rectification_is_read_back(site: Site) -> None:
    connector = site.connector()
    records = [r for r in connector.discover(subject(AL)) if r.native_id == {"key": "SUP-8"}]
    action = plan_erasure(connector, records)[0].model_copy(
        update={"action": Action.RECTIFY, "fields": {"summary": "Private question (corrected)"}}
    )
    assert connector.rectify([action], subject(AL)).complete
    assert site.store.issues["SUP-8"].fields["summary"] == "Private question (corrected)"
    bad = action.model_copy(update={"fields": {"status": "Closed"}})
    assert connector.rectify([bad], subject(AL)).results[0].outcome == Outcome.FAILED


def test_the_connector_can_do_every_right(site: Site) -> None:
    assert capabilities(site.connector()) == {
        Capability.DISCOVER,
        Capability.ERASE,
        Capability.RECTIFY,
        Capability.RESTRICT,
        Capability.SWEEP,
    }


def test_actions_a_method_does_not_do_are_skipped_or_failed_never_dropped(site: Site) -> None:
    connector = site.connector()
    records = [r for r in connector.discover(subject(AL)) if r.native_id == {"key": "SUP-8"}]
    (action,) = plan_erasure(connector, records)
    keep = action.model_copy(update={"action": Action.KEEP, "reason": "Bookkeeping Act §13"})
    for method in (connector.erase, connector.rectify, connector.restrict):
        (kept,) = method([keep], subject(AL)).results
        assert (kept.outcome, kept.detail) == (Outcome.SKIPPED, "kept: Bookkeeping Act §13")
    restrict = action.model_copy(update={"action": Action.RESTRICT})
    (erased,) = connector.erase([restrict], subject(AL)).results
    assert (erased.outcome, erased.detail) == (Outcome.FAILED, "cannot restrict here")
    (rectified,) = connector.rectify([action], subject(AL)).results
    assert (rectified.outcome, rectified.detail) == (Outcome.FAILED, "cannot redact here")
    (restricted,) = connector.restrict([action], subject(AL)).results
    assert (restricted.outcome, restricted.detail) == (Outcome.FAILED, "cannot redact here")
    assert site.store.issues["SUP-8"].fields["labels"] == []


# -- the subject's customer account ------------------------------------------------------------


def customer_action(plan: list[PlannedAction]) -> PlannedAction:
    (action,) = [a for a in plan if a.location == "customers"]
    return action


def users_found(site: Site, email: str) -> list[str]:
    """Account ids the real client's user search finds for ``email``."""
    client = site.connector().client.jira
    return [u.accountId for u in client.search_users(query=email)]


def test_the_subjects_portal_customer_account_is_deleted_after_erasure(site: Site) -> None:
    site.store.users["u-al"].account_type = "customer"
    connector = site.connector()
    plan = plan_erasure(connector, list(connector.discover(subject(AL))))
    action = customer_action(plan)
    assert (action.action, action.reason) == (Action.DELETE, jira_accounts.DELETED)

    report = connector.erase(plan, subject(AL))
    assert report.complete, report.results
    assert "u-al" not in site.store.users
    assert users_found(site, AL) == ["u-evil"]  # the search's prefix near miss, not hers
    with pytest.raises(JIRAError) as caught:
        site.connector().client.jira.user("u-al")
    assert caught.value.status_code == 404
    # Gone from every customer list; issues keep the id as Jira does ("Former user").
    assert all("u-al" not in d.customers for d in site.store.servicedesks.values())
    # The look-alikes' accounts are untouched.
    assert {"u-sal", "u-evil", "u-plus", "u-bob"} <= set(site.store.users)
    stats = httpx.get(f"{site.url}/_emulator/stats").json()["requests"]
    assert stats["DELETE user"] == 1

    # A second run finds the account gone and changes nothing; nothing is found again.
    again = site.connector().erase(plan, subject=subject(AL))
    assert {r.outcome for r in again.results} == {Outcome.ALREADY_DONE}
    assert httpx.get(f"{site.url}/_emulator/stats").json()["requests"]["DELETE user"] == 1
    assert list(site.connector().discover(subject(AL))) == []


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({}, jira_accounts.AGENT_KEPT),
        ({"erasure": {"delete_customer_accounts": False}}, jira_accounts.SWITCHED_OFF),
    ],
)
def test_an_agent_account_or_a_switched_off_mapping_keeps_the_account(
    site: Site, changes: dict[str, Any], why: str
) -> None:
    if changes:  # the switch: even a portal customer's account stays
        site.store.users["u-al"].account_type = "customer"
    connector = site.connector(mapping_with(**changes) if changes else None)
    records = list(connector.discover(subject(AL)))
    (customer,) = [r for r in records if r.location == "customers"]
    assert customer.fields["account_type"] == ("customer" if changes else "atlassian")
    action = customer_action(plan_erasure(connector, records))
    assert action.action == Action.DELETE
    assert action.reason == f"removed from the service desk; the account is kept: {why}"

    report = connector.erase(plan_erasure(connector, records), subject(AL))
    assert report.complete
    result = next(r for r in report.results if r.record_id == action.record_id)
    assert (result.outcome, result.detail) == (Outcome.DONE, f"the account is kept: {why}")
    assert "u-al" not in site.store.servicedesks["1"].customers
    assert users_found(site, AL) == ["u-al", "u-evil"]
    assert "DELETE user" not in httpx.get(f"{site.url}/_emulator/stats").json()["requests"]


def test_a_crash_before_the_account_is_deleted_resumes_with_the_deletion(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.store.users["u-al"].account_type = "customer"
    connector = site.connector()
    plan = plan_erasure(connector, list(connector.discover(subject(AL))))
    call = JiraClient.call

    def power_cut(self: JiraClient, what: str, fn: Any, **kwargs: Any) -> Any:
        if what == "deleting a customer account":
            raise KeyboardInterrupt("power cut")
        return call(self, what, fn, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(JiraClient, "call", power_cut)
        with pytest.raises(KeyboardInterrupt):
            connector.erase(plan, subject(AL))
    # Every other step ran first: only the account is left.
    assert "u-al" not in site.store.servicedesks["1"].customers
    assert site.store.issues["SUP-1"].fields["reporter"] is None
    assert "u-al" in site.store.users

    rerun = site.connector().erase(plan, subject=subject(AL))
    outcomes = {r.record_id: r.outcome for r in rerun.results}
    action = customer_action(plan)
    assert outcomes.pop(action.record_id) == Outcome.DONE
    assert set(outcomes.values()) == {Outcome.ALREADY_DONE}
    assert "u-al" not in site.store.users


@pytest.mark.parametrize("kind", ["customer", "atlassian"])
def test_data_center_deletes_a_customer_by_user_name_and_keeps_a_licensed_user(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setenv(TOKEN_ENV, jira_seed.SANDBOX_TOKEN)
    store = fixture_store()
    store.users["u-al"].account_type = kind
    server, dc = start_site(store, deployment="Server")
    try:
        connector = dc.connector(
            deployment="data_center",
            email=None,
            api_token=None,
            personal_access_token={"env": TOKEN_ENV},
        )
        records = list(connector.discover(subject(AL)))
        (customer,) = [r for r in records if r.location == "customers"]
        # Data Center has no accountType: a user without application roles is portal-only.
        assert customer.fields["account_type"] == ("customer" if kind == "customer" else "licensed")
        report = connector.erase(plan_erasure(connector, records), subject(AL))
        assert report.complete, report.results
        assert ("u-al" in store.users) is (kind != "customer")
        stats = httpx.get(f"{dc.url}/_emulator/stats").json()["requests"]
        assert stats.get("DELETE user", 0) == (1 if kind == "customer" else 0)
    finally:
        server.stop()


def test_the_delete_user_route_answers_as_jira_does(site: Site) -> None:
    auth = (jira_seed.SANDBOX_EMAIL, jira_seed.SANDBOX_TOKEN)
    url = f"{site.url}/rest/api/2/user"
    unknown = httpx.delete(url, params={"accountId": "no-such-user"}, auth=auth)
    assert unknown.status_code == 404
    assert unknown.json()["errorMessages"] and unknown.json()["errors"] == {}
    assert httpx.delete(url, auth=auth).status_code == 400  # accountId is required on Cloud
    # Cloud knows users by accountId only: username is refused, and nobody is deleted.
    assert httpx.delete(url, params={"username": "u-al"}, auth=auth).status_code == 400
    admin = next(u for u in site.store.users.values() if u.email == jira_seed.SANDBOX_EMAIL)
    assert httpx.delete(url, params={"accountId": admin.account_id}, auth=auth).status_code == 400
    assert httpx.delete(url, params={"accountId": "u-sal"}, auth=auth).status_code == 204
    assert httpx.get(url, params={"accountId": "u-sal"}, auth=auth).status_code == 404
    assert "u-sal" not in site.store.servicedesks["1"].customers
    # Issues keep the id: SUP-2's participant shows as a former user.
    participant = site.connector().client.jira.issue("SUP-2").raw["fields"]["customfield_10027"]
    assert [(p["accountId"], p["displayName"], p["active"]) for p in participant] == [
        ("u-al", "Al Subject", True),
        ("u-sal", "Former user", False),
    ]


# -- throttling and failures -----------------------------------------------------------------


def test_429_is_retried_after_the_time_jira_asks_for(site: Site) -> None:
    sleeps: list[float] = []
    connector = site.connector(sleeps=sleeps, max_retries=3)
    site.set_faults(throttle_every=3, retry_after_s=2)
    assert summary(list(connector.discover(subject(AL)))) == AL_RECORDS
    assert sleeps and set(sleeps) == {2.0}


def test_a_site_that_keeps_failing_is_unavailable(site: Site) -> None:
    sleeps: list[float] = []
    connector = site.connector(sleeps=sleeps, max_retries=2)
    site.set_faults(fail_path="/search/jql", fail_status=503, fail_count=100)
    with pytest.raises(SourceUnavailable) as caught:
        list(connector.discover(subject(AL)))
    assert "searching issues: HTTP 503 after 3 attempt(s)" in str(caught.value)
    assert AL not in str(caught.value) and "al%40" not in str(caught.value)
    assert len(sleeps) == 2


def test_a_retry_after_beyond_the_limit_gives_up_at_once(site: Site) -> None:
    sleeps: list[float] = []
    connector = site.connector(sleeps=sleeps, max_retries=3, max_retry_wait_s=5)
    site.set_faults(throttle_every=1, retry_after_s=30)
    with pytest.raises(SourceUnavailable, match="HTTP 429"):
        list(connector.discover(subject(AL)))
    assert sleeps == []


def test_wrong_credentials_and_unreachable_sites(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "wrong")
    with pytest.raises(SourceUnavailable, match=r"access refused \(HTTP 401\)"):
        site.connector()
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(SourceUnavailable, match=f"environment variable {TOKEN_ENV}"):
        site.connector()
    monkeypatch.setenv(TOKEN_ENV, jira_seed.SANDBOX_TOKEN)
    with pytest.raises(SourceUnavailable, match="ConnectionError after 1 attempt"):
        site.connector(url="http://127.0.0.1:9")


# -- configuration -----------------------------------------------------------------------------


def test_the_registry_opens_a_configured_jira_source(site: Site) -> None:
    connector = open_connector("jira", site.source(), load_mapping(MAPPING_PATH))
    try:
        assert isinstance(connector, JiraConnector)
        assert len(list(connector.discover(subject(AL)))) == len(AL_RECORDS)
    finally:
        connector.close()


def test_config_and_mapping_refuse_what_cannot_work() -> None:
    with pytest.raises(ValueError, match="needs email and api_token"):
        JiraSource.model_validate(
            {"kind": "jira", "mapping": "m.yaml", "url": "https://x.atlassian.net"}
        )
    with pytest.raises(ValueError, match="needs personal_access_token"):
        JiraSource.model_validate(
            {
                "kind": "jira",
                "mapping": "m.yaml",
                "url": "https://jira.example",
                "deployment": "data_center",
            }
        )
    with pytest.raises(MappingError, match=r"match_in \(line \d+\): .*'comment'"):
        parse_mapping(MAPPING_PATH.read_text().replace("comments]", "comment]"), Path("m.yaml"))
    with pytest.raises(MappingError, match="'sup' is not a Jira project key"):
        parse_mapping(MAPPING_PATH.read_text().replace("[SUP]", "[sup]"), Path("m.yaml"))


# -- the access flow -----------------------------------------------------------------------------


@pytest.mark.prefect
def test_access_flow_includes_the_service_desk(
    prefect_harness: None, site: Site, sandbox_sqlite_url: str, tmp_path: Path
) -> None:
    from flows.access import access_request
    from sandbox.jira_part import jira_source
    from sandbox.runtime import onprem_source, write_config

    jira = jira_source(site.url, tmp_path / "unused-token-file")
    jira["jira"]["api_token"] = {"env": TOKEN_ENV}
    config = tmp_path / "dsrflow.yaml"
    write_config(config, {**onprem_source(sandbox_sqlite_url), **jira}, tmp_path / "exports")
    with run_settings(config, tmp_path / "out"):
        state = access_request(
            request_id="DSR-2026-0101",
            subject_emails=[AL],
            return_state=True,
        )
    assert state.is_completed(), state.message
    result = state.result()
    assert result.records_per_source["jira"] == len(AL_RECORDS)
    assert result.records_per_source["onprem"] == 12
    document = json.loads((Path(result.export_dir) / "export.json").read_text())
    assert "jira_account_id:u-al" in json.dumps(document["subject"])
    support = document["records"]["jira"]["user.support.content"]
    texts = json.dumps(support)
    assert "b***@example.com" in texts and "bob@example.com" not in texts
    sources = {s["source"]: s["collected_from"] for s in document["information"]["sources"]}
    assert sources["jira"].startswith("the data subject, through the customer portal")
