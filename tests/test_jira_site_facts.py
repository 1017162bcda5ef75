"""The Jira site's own facts (serverInfo, field ids, service desks) kept between commands in an
owner-only file (``site_facts_file``): the next command's connector reads none of them again;
an expired, widened or broken file is read afresh; people are never in the file."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import httpx
import pytest

from connectors.jira import sitecache
from sandbox import jira_seed
from tests.support.jira_site import Site
from tests.test_jira_connector import AL, AL_RECORDS, subject, summary

SITE_ROUTES = {"GET serverInfo", "GET field", "GET servicedesk"}


def routes(site: Site) -> dict[str, int]:
    return dict(httpx.get(f"{site.url}/_emulator/stats").json()["requests"])


def command(site: Site, facts: Path, **settings: object) -> dict[str, int]:
    """One ``dsr`` command's discovery: a new process (nothing cached in memory), a connector
    with the facts file; the requests it made, by route."""
    sitecache.forget_all()
    httpx.post(f"{site.url}/_emulator/reset-stats").raise_for_status()
    connector = site.connector(site_facts_file=facts, **settings)
    try:
        assert summary(list(connector.discover(subject(AL)))) == AL_RECORDS
    finally:
        connector.close()
    return routes(site)


def test_the_next_command_reads_none_of_the_sites_facts_again(site: Site, tmp_path: Path) -> None:
    facts = tmp_path / "state" / "jira-site-facts.json"
    first = command(site, facts)
    assert set(first) >= SITE_ROUTES  # read once, from Jira
    assert stat.S_IMODE(facts.stat().st_mode) == 0o600
    assert stat.S_IMODE(facts.parent.stat().st_mode) == 0o700
    second = command(site, facts)
    assert not SITE_ROUTES & set(second)
    # The user search, the desk's customers and one search page: the lower bound.
    assert sum(second.values()) == 3
    assert sum(first.values()) == 6


def test_the_file_holds_no_person_no_account_and_no_site_address(
    site: Site, tmp_path: Path
) -> None:
    facts = tmp_path / "jira-site-facts.json"
    command(site, facts)
    text = facts.read_text(encoding="utf-8")
    entry = next(iter(json.loads(text)["sites"].values()))
    assert entry["fields"] and entry["servicedesks"] and entry["server_info"]
    for secret in (AL, jira_seed.SANDBOX_EMAIL, jira_seed.SANDBOX_TOKEN, site.url):
        assert secret not in text
    people = [u.email for u in site.store.users.values() if u.email]
    people += [u.display_name for u in site.store.users.values()]
    people += list(site.store.users)  # account ids
    assert people and not [p for p in people if p in text]


def test_expired_facts_are_read_from_jira_again(site: Site, tmp_path: Path) -> None:
    facts = tmp_path / "jira-site-facts.json"
    command(site, facts, metadata_cache_s=600)
    data = json.loads(facts.read_text(encoding="utf-8"))
    for entry in data["sites"].values():
        entry["read_at"] -= 601  # read from Jira just over ten minutes ago
    facts.write_text(json.dumps(data), encoding="utf-8")
    assert set(command(site, facts, metadata_cache_s=600)) >= SITE_ROUTES
    # ... and kept again from now: the command after finds them.
    assert not SITE_ROUTES & set(command(site, facts, metadata_cache_s=600))


def test_a_file_others_may_read_or_a_broken_one_is_not_trusted(site: Site, tmp_path: Path) -> None:
    facts = tmp_path / "jira-site-facts.json"
    command(site, facts)
    facts.chmod(0o644)
    assert set(command(site, facts)) >= SITE_ROUTES
    assert stat.S_IMODE(facts.stat().st_mode) == 0o600  # replaced, owner-only
    data = json.loads(facts.read_text(encoding="utf-8"))
    for entry in data["sites"].values():
        entry["read_at"] = "yesterday"
    facts.write_text(json.dumps(data), encoding="utf-8")
    assert set(command(site, facts)) >= SITE_ROUTES
    facts.write_text('{"version": 1, "sites": {', encoding="utf-8")
    assert set(command(site, facts)) >= SITE_ROUTES
    assert not SITE_ROUTES & set(command(site, facts))


def test_no_file_with_the_cache_off(site: Site, tmp_path: Path) -> None:
    facts = tmp_path / "jira-site-facts.json"
    assert set(command(site, facts, metadata_cache_s=0)) >= SITE_ROUTES
    assert not facts.exists()
    assert set(command(site, facts, metadata_cache_s=0)) >= SITE_ROUTES


def test_a_file_that_cannot_be_written_costs_requests_not_the_answer(
    site: Site, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    facts = blocker / "jira-site-facts.json"  # its folder is a file: nothing can be written
    with caplog.at_level(logging.WARNING, logger="connectors.jira.sitecache"):
        assert set(command(site, facts)) >= SITE_ROUTES  # the discovery's answer is checked
    assert "Jira site facts not kept in" in caplog.text
    assert set(command(site, facts)) >= SITE_ROUTES  # read again, as nothing was kept
