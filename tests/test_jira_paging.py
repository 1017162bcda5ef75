"""Jira Cloud's enhanced search pages on ``nextPageToken`` alone: ``isLast`` is optional and a
page can hold fewer issues than ``maxResults`` (JRACLOUD-92183, JRACLOUD-92184)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sandbox import jira_seed
from tests.test_jira_connector import (
    AL,
    TOKEN_ENV,
    Site,
    fixture_store,
    start_site,
    subject,
    summary,
)


@pytest.fixture
def short_pages(monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv(TOKEN_ENV, jira_seed.SANDBOX_TOKEN)
    store = fixture_store()
    store.search_page_cap = 2  # Jira answers 2 issues a page, whatever maxResults asks
    server, running = start_site(store)
    try:
        yield running
    finally:
        server.stop()


def test_short_pages_without_is_last_are_followed_to_the_last_token(short_pages: Site) -> None:
    connector = short_pages.connector(page_size=5)
    records = list(connector.discover(subject(AL)))
    # The same site answering full pages gives the reference: nothing may be missing.
    short_pages.store.search_page_cap = None
    full = list(short_pages.connector(page_size=100).discover(subject(AL)))
    assert summary(records) == summary(full)
    assert len({r.native_id.get("key") for r in records if r.location == "issues"}) > 2
    assert connector.stats.search_pages == -(-connector.stats.issues_seen // 2) >= 2


def test_the_emulator_omits_is_last_on_short_and_last_pages(short_pages: Site) -> None:
    auth = (jira_seed.SANDBOX_EMAIL, jira_seed.SANDBOX_TOKEN)
    params: dict[str, object] = {"jql": "project = SUP ORDER BY key", "maxResults": 5}
    keys: list[str] = []
    while True:
        body = httpx.get(f"{short_pages.url}/rest/api/2/search/jql", params=params, auth=auth)
        page = body.json()
        assert "isLast" not in page and len(page["issues"]) <= 2
        keys += [i["key"] for i in page["issues"]]
        if "nextPageToken" not in page:
            break
        params["nextPageToken"] = page["nextPageToken"]
    assert keys == [f"SUP-{n}" for n in range(1, 12)]
