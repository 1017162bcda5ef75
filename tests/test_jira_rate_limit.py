"""Jira Cloud's rate limits in the emulator (a burst limit per endpoint, a cost budget), and the
connector under them: reads wait out ``Retry-After`` and lose nothing; a limit that does not
lift fails the source loudly, never as "nothing there"; site metadata is read once."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from connectors.base import SourceUnavailable
from connectors.jira.client import JiraClient
from connectors.jira.connector import JiraConnector
from dsrflow.mapping import load_mapping
from sandbox import jira_seed
from tests.support.jira_site import MAPPING_PATH, Site
from tests.test_jira_connector import AL, AL_RECORDS, mapping_with, subject, summary

AUTH = (jira_seed.SANDBOX_EMAIL, jira_seed.SANDBOX_TOKEN)


def limit(site: Site, **settings: Any) -> dict[str, Any]:
    answer = httpx.post(f"{site.url}/_emulator/rate-limit", json={"enabled": True, **settings})
    answer.raise_for_status()
    return dict(answer.json())


def connector(site: Site, sleeps: list[float], **settings: Any) -> JiraConnector:
    """A connector whose waits are recorded and really slept (the buckets refill in time)."""

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    source = site.source(**settings)
    client = JiraClient("jira", source, sleep=sleep)
    return JiraConnector("jira", load_mapping(MAPPING_PATH), source, client=client)  # type: ignore[arg-type]


def test_the_burst_limit_answers_429_per_endpoint_with_jiras_headers(site: Site) -> None:
    limit(site, burst_capacity=2, burst_per_s=0.5)
    url = f"{site.url}/rest/api/2/serverInfo"
    assert [httpx.get(url, auth=AUTH).status_code for _ in range(2)] == [200, 200]
    refused = httpx.get(url, auth=AUTH)
    assert refused.status_code == 429
    assert refused.json() == {"errorMessages": ["Rate limit exceeded."], "errors": {}}
    assert refused.headers["RateLimit-Reason"] == "jira-burst-based"
    assert int(refused.headers["Retry-After"]) == 2  # one token at 0.5 a second
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ", refused.headers["X-RateLimit-Reset"])
    # Another endpoint has its own bucket.
    assert httpx.get(f"{site.url}/rest/api/2/field", auth=AUTH).status_code == 200
    # The control route says what was refused, and why.
    stats = httpx.get(f"{site.url}/_emulator/rate-limit").json()
    assert stats["refused"] == {"jira-burst-based": 1}


def test_the_cost_budget_charges_one_point_and_one_per_object_returned(site: Site) -> None:
    limit(site, cost_capacity=20, cost_per_s=0.01)
    search = f"{site.url}/rest/api/2/search/jql"
    first = httpx.get(search, params={"jql": "project = SUP", "maxResults": 5}, auth=AUTH)
    assert first.status_code == 200 and len(first.json()["issues"]) == 5
    assert first.headers["X-RateLimit-Limit"] == "20"
    assert first.headers["X-RateLimit-Remaining"] == "14"  # 20 - (1 + 5)
    assert "X-RateLimit-NearLimit" not in first.headers
    # A write is charged its base point only (an issue edited: 204, no objects).
    edit = httpx.put(
        f"{site.url}/rest/api/2/issue/SUP-1", json={"fields": {"labels": ["x"]}}, auth=AUTH
    )
    assert edit.status_code == 204 and edit.headers["X-RateLimit-Remaining"] == "13"
    big = httpx.get(search, params={"jql": "project = SUP", "maxResults": 100}, auth=AUTH)
    issues = len(big.json()["issues"])
    assert big.status_code == 200 and issues > 8
    assert big.headers["X-RateLimit-Remaining"] == str(max(0, 13 - 1 - issues))
    assert big.headers["X-RateLimit-NearLimit"] == "true"  # under 20% of the budget
    answers = [httpx.get(search, params={"jql": "project = SUP"}, auth=AUTH) for _ in range(2)]
    refused = answers[-1]  # the first may still find a point left; it overdraws the rest
    assert refused.status_code == 429
    assert refused.headers["RateLimit-Reason"] == "jira-cost-based"
    assert int(refused.headers["Retry-After"]) >= 100  # the budget refills at 0.01 a second


def test_limits_are_off_unless_enabled(site: Site) -> None:
    url = f"{site.url}/rest/api/2/serverInfo"
    answers = [httpx.get(url, auth=AUTH) for _ in range(30)]
    assert {a.status_code for a in answers} == {200}
    assert "X-RateLimit-Limit" not in answers[0].headers


def test_discovery_under_the_cost_budget_waits_and_loses_nothing(site: Site) -> None:
    reference = summary(list(site.connector().discover(subject(AL))))
    assert reference == AL_RECORDS
    # A small budget refilled fast: the field list and the search overdraw it, the next
    # request is refused with a Retry-After of a second, and the connector waits it out.
    limit(site, cost_capacity=5, cost_per_s=40)
    sleeps: list[float] = []
    throttled = connector(site, sleeps, max_retries=5)
    records = list(throttled.discover(subject(AL)))
    assert summary(records) == reference
    assert sleeps and all(s == 1.0 for s in sleeps)  # Retry-After, as Jira sent it
    refused = httpx.get(f"{site.url}/_emulator/rate-limit").json()["refused"]
    assert refused.get("jira-cost-based", 0) == len(sleeps)


def test_a_limit_that_does_not_lift_fails_the_source_loudly(site: Site) -> None:
    limit(site, cost_capacity=3, cost_per_s=0.01)
    sleeps: list[float] = []
    throttled = connector(site, sleeps, max_retries=3, max_retry_wait_s=5)
    with pytest.raises(SourceUnavailable, match=r"HTTP 429 after 1 attempt"):
        list(throttled.discover(subject(AL)))
    assert sleeps == []  # a Retry-After beyond max_retry_wait_s is not waited for


def test_site_metadata_is_read_once_for_the_connectors_of_a_request(site: Site) -> None:
    """serverInfo, the field ids and the service desk list are the site's, not the subject's:
    a second connector (the next discovery round, the erasure) does not read them again."""
    first = site.connector()
    assert summary(list(first.discover(subject(AL)))) == AL_RECORDS
    httpx.post(f"{site.url}/_emulator/reset-stats").raise_for_status()
    second = site.connector()
    assert summary(list(second.discover(subject(AL)))) == AL_RECORDS
    routes = httpx.get(f"{site.url}/_emulator/stats").json()["requests"]
    assert not {"GET serverInfo", "GET field", "GET servicedesk"} & set(routes)
    # user search, the desk's customers, one search page: main's connector made 6.
    assert sum(routes.values()) <= 3
    assert first.issues.field_ids == second.issues.field_ids
    first.close()
    second.close()


def test_a_mapped_project_missing_from_the_cached_desks_reads_them_again(site: Site) -> None:
    list(site.connector().discover(subject(AL)))  # the desk list cached
    listings = httpx.get(f"{site.url}/_emulator/stats").json()["requests"]["GET servicedesk"]
    site.store.add_servicedesk(2, "NEW", "New desk", [])  # created since
    later = site.connector(mapping=mapping_with(projects=["SUP", "NEW"]))
    list(later.discover(subject(AL)))
    stats = httpx.get(f"{site.url}/_emulator/stats").json()["requests"]
    assert stats["GET servicedesk"] == listings + 1
    assert stats["GET servicedesk/{id}/customer"] == 3  # SUP twice, the new desk once
