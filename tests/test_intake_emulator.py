"""The Jira emulator's Service Management routes the intake reads (Get request types, Get
customer requests), over real HTTP, and the intake's paging through them with the real client."""

from __future__ import annotations

import datetime as dt

import httpx

from connectors.jira.client import JiraClient
from connectors.jira.intake import privacy_requests
from sandbox import jira_seed
from sandbox.emulators.jira.store import REQUEST_TYPE_FIELD
from tests.support.jira_site import Site

AUTH = (jira_seed.SANDBOX_EMAIL, jira_seed.SANDBOX_TOKEN)
START = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)


def add_requests(site: Site, n: int, kind: str = "Privacy request", first: int = 1000) -> None:
    for i in range(n):
        created = START + dt.timedelta(hours=i)
        site.store.add_issue(
            f"SUP-{first + i}",
            {
                "summary": f"request {i}",
                "created": created.isoformat(),
                # Activity order differs from creation order, as on a real desk.
                "updated": (created + dt.timedelta(days=(i * 7) % 5)).isoformat(),
                "reporter": {"accountId": "u-bob"},
                REQUEST_TYPE_FIELD: {"requestType": {"name": kind}},
            },
        )


def get(site: Site, path: str, **params: object) -> httpx.Response:
    return httpx.get(f"{site.url}/rest/servicedeskapi/{path}", params=params, auth=AUTH)


def test_request_types_are_listed_per_desk_with_ids(site: Site):
    add_requests(site, 1)
    listed = get(site, "servicedesk/1/requesttype").json()
    names = {t["name"]: t["id"] for t in listed["values"]}
    assert "Privacy request" in names and listed["isLastPage"] is True
    # The issue's Customer Request Type field carries the same id.
    issue = site.store.issue("SUP-1000")
    assert issue is not None
    assert issue.fields[REQUEST_TYPE_FIELD]["requestType"]["id"] == names["Privacy request"]
    assert get(site, "servicedesk/99/requesttype").status_code == 404
    assert get(site, "servicedesk/1/requesttype", bogus=1).status_code == 400


def test_customer_requests_filter_by_type_and_page_by_latest_activity(site: Site):
    add_requests(site, 7)
    add_requests(site, 3, kind="Get help", first=2000)
    type_id = site.store.request_type_id("SUP", "Privacy request")
    first = get(site, "request", serviceDeskId=1, requestTypeId=type_id, limit=5).json()
    rest = get(site, "request", serviceDeskId=1, requestTypeId=type_id, start=5, limit=5).json()
    assert (first["size"], first["isLastPage"], rest["size"], rest["isLastPage"]) == (
        5,
        False,
        2,
        True,
    )
    keys = [v["issueKey"] for v in first["values"] + rest["values"]]
    assert sorted(keys) == [f"SUP-{1000 + i}" for i in range(7)]
    updated = [site.store.issues[k].fields["updated"] for k in keys]
    assert updated == sorted(updated, reverse=True)
    one = first["values"][0]
    assert one["requestTypeId"] == type_id and one["reporter"]["accountId"] == "u-bob"
    assert {"iso8601", "epochMillis"} <= set(one["createdDate"])
    # requestTypeId narrows a desk's list only; a limit above 100 is capped.
    assert get(site, "request", requestTypeId=type_id).status_code == 400
    assert get(site, "request", serviceDeskId=1, limit=500).json()["limit"] == 100


def test_the_intake_reads_every_page(site: Site, monkeypatch):
    monkeypatch.setenv("DSRFLOW_TEST_JIRA_TOKEN", jira_seed.SANDBOX_TOKEN)
    add_requests(site, 120)
    add_requests(site, 5, kind="Get help", first=3000)
    client = JiraClient("jira", site.source())
    try:
        found = list(privacy_requests(client, "SUP", "Privacy request"))
    finally:
        client.close()
    assert sorted(i.reference for i in found) == sorted(f"SUP-{1000 + i}" for i in range(120))
    earliest = min(found, key=lambda i: i.received_at)
    assert (earliest.reference, earliest.received_at) == ("SUP-1000", START)


def test_a_customer_lists_only_their_own_requests(site: Site):
    add_requests(site, 3)
    customer = site.store.add_user("qm:one:two", "cust@example.net", "A Customer")
    site.store.add_issue(
        "SUP-5000",
        {"summary": "mine", "reporter": {"accountId": customer.account_id}},
    )
    site.store.credentials = ("cust@example.net", "customer-token")
    listed = httpx.get(
        f"{site.url}/rest/servicedeskapi/request",
        params={"requestOwnership": "ALL_REQUESTS"},
        auth=("cust@example.net", "customer-token"),
    ).json()
    assert [v["issueKey"] for v in listed["values"]] == ["SUP-5000"]
