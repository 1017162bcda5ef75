"""The Jira retention sweep: the real ``jira`` client over HTTP against the Jira emulator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.base import SourceUnavailable, Sweeping
from dsrflow.mapping import MappingError
from dsrflow.request import Subject
from dsrflow.run_settings import run_settings
from sandbox import jira_seed
from tests.test_jira_connector import (
    TOKEN_ENV,
    Site,
    fixture_store,
    mapping_with,
    start_site,
)

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
CUTOFF = "2023-11-22T12:00:00Z"  # mappings/jira.yaml: 3 years after the resolution
OLD = [f"SUP-{n}" for n in range(20, 27)]
PROTECTED = "SUP-29"  # reported by sal@example.com, whom the tests restrict


def add_request(site: Site, key: str, resolved: str | None, reporter: str = "u-bob", **fields):
    site.store.add_issue(
        key,
        {
            "summary": f"Request {key}",
            "description": "Please call me at bob@example.com, or ask [~accountid:u-agent]",
            "reporter": {"accountId": reporter},
            "created": "2021-05-01T09:00:00Z",
            "status": {"name": "Resolved" if resolved else "Waiting for support"},
            "resolution": {"name": "Done"} if resolved else None,
            "resolutiondate": resolved,
            **fields,
        },
        participants=["u-agent"],
        comments=[
            {"author": {"accountId": "u-agent"}, "body": "Fixed, Bob"},
            {"author": {"accountId": reporter}, "body": "Thanks!"},
        ],
    )


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """The fixture desk plus resolved requests around the three-year cutoff."""
    monkeypatch.setenv(TOKEN_ENV, jira_seed.SANDBOX_TOKEN)
    server, running = start_site(fixture_store())
    for key in OLD:
        add_request(running, key, "2021-06-01T10:00:00Z")
    add_request(running, "SUP-27", "2025-01-10T10:00:00Z")  # young
    add_request(running, "SUP-28", None, created="2015-01-01T09:00:00Z")  # old but unresolved
    add_request(running, PROTECTED, "2021-06-01T10:00:00Z", reporter="u-sal")
    # Six hours before the cutoff: JQL's date leaves it to the next day's sweep.
    add_request(running, "SUP-30", "2023-11-22T06:00:00Z")
    add_request(running, "OPS-5", "2021-06-01T10:00:00Z")  # a project outside the mapping
    try:
        yield running
    finally:
        server.stop()


def keys(site: Site) -> set[str]:
    return set(site.store.issues)


def restricted(connector) -> list:
    return list(connector.discover(Subject.from_raw(["sal@example.com"])))


def test_expired_requests_go_the_rest_stay(site: Site) -> None:
    before = keys(site)
    connector = site.connector(page_size=3)
    assert isinstance(connector, Sweeping)
    [result] = connector.sweep(NOW)
    assert (result.table, result.rule, result.cutoff) == (
        "SUP",
        "delete after 3y (resolutiondate)",
        CUTOFF,
    )
    assert result.rows == len(OLD) + 1  # and SUP-29: nobody is restricted here
    assert keys(site) == before - {*OLD, PROTECTED}
    assert {"SUP-27", "SUP-28", "SUP-30", "OPS-5", "SUP-8"} <= keys(site)
    # Paged by key, three to a page: 8 expired in 3 pages, and an empty one to end.
    assert result.batches == 4


def test_restricted_subjects_requests_stay_and_are_counted(site: Site) -> None:
    connector = site.connector(page_size=3)
    protected = restricted(connector)
    [result] = connector.sweep(NOW, protected=protected)
    assert (result.rows, result.protected) == (len(OLD), 1)
    assert PROTECTED in keys(site)
    [again] = site.connector().sweep(NOW, protected=protected)
    assert (again.rows, again.protected) == (0, 1)  # a rerun is a no-op


def test_dry_run_counts_and_changes_nothing(site: Site) -> None:
    before = {k: dict(i.fields) for k, i in site.store.issues.items()}
    connector = site.connector(page_size=2)
    [result] = connector.sweep(NOW, dry_run=True, protected=restricted(connector))
    assert result.dry_run
    assert (result.rows, result.protected) == (len(OLD), 1)
    assert {k: dict(i.fields) for k, i in site.store.issues.items()} == before


def test_a_rerun_after_a_crash_continues(site: Site) -> None:
    # As if a sweep died after three deletions: the next one finds the rest, counts only them.
    for key in OLD[:3]:
        site.store.delete_issue(site.store.issues[key])
    [result] = site.connector(page_size=2).sweep(NOW)
    assert result.rows == len(OLD) - 3 + 1
    assert not {*OLD, PROTECTED} & keys(site)


def test_anonymise_keeps_the_requests_without_the_people(site: Site) -> None:
    mapping = mapping_with(retention=[{"max_age": {"years": 3}, "action": "anonymise"}])
    [result] = site.connector(mapping, page_size=3).sweep(NOW)
    assert result.rule == "anonymise after 3y (resolutiondate)"
    assert result.rows == len(OLD) + 1
    for key in [*OLD, PROTECTED]:
        issue = site.store.issues[key]
        assert issue.fields["reporter"] is None
        assert issue.participants == []
        assert issue.comments == []  # Jira cannot change a comment's author: they go
        assert "bob@example.com" not in issue.fields["description"]
        assert "u-agent" not in issue.fields["description"]
    young = site.store.issues["SUP-27"]
    assert young.fields["reporter"] == "u-bob" and len(young.comments) == 2
    [again] = site.connector(mapping).sweep(NOW)
    assert again.rows == 0


def test_statuses_limit_the_rule_and_the_legal_hold_keeps(site: Site) -> None:
    closed_only = mapping_with(retention=[{"max_age": {"years": 3}, "statuses": ["Closed"]}])
    [result] = site.connector(closed_only).sweep(NOW)
    assert result.rows == 0 and set(OLD) <= keys(site)
    held = mapping_with(
        legal_hold={"reason": "contract", "duration": {"years": 10}, "counts_from": "created"}
    )
    [result] = site.connector(held).sweep(NOW)
    assert result.rows == 0
    assert result.notes == [f"{len(OLD) + 1} kept under the legal hold: contract"]
    assert set(OLD) <= keys(site)


def test_data_center_search_pages_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, jira_seed.SANDBOX_TOKEN)
    server, dc = start_site(fixture_store(), deployment="Server")
    try:
        for key in OLD:
            add_request(dc, key, "2021-06-01T10:00:00Z")
        connector = dc.connector(
            page_size=2,
            deployment="data_center",
            personal_access_token={"env": TOKEN_ENV},
            email=None,
            api_token=None,
        )
        [dry] = connector.sweep(NOW, dry_run=True)
        assert dry.rows == len(OLD) and set(OLD) <= keys(dc)
        [done] = connector.sweep(NOW)
        assert done.rows == len(OLD) and not set(OLD) & keys(dc)
    finally:
        server.stop()


def test_a_failing_site_makes_the_source_unavailable(site: Site) -> None:
    connector = site.connector(max_retries=1)
    site.set_faults(fail_path="/search/jql", fail_status=503, fail_count=100)
    with pytest.raises(SourceUnavailable, match=r"'jira'.*searching expired requests: HTTP 503"):
        connector.sweep(NOW)
    assert set(OLD) <= keys(site)


def test_throttled_deletions_are_retried(site: Site) -> None:
    sleeps: list[float] = []
    connector = site.connector(sleeps=sleeps, max_retries=3)
    site.set_faults(throttle_every=3, retry_after_s=1)
    [result] = connector.sweep(NOW)
    assert result.rows == len(OLD) + 1
    assert sleeps and set(sleeps) == {1.0}


def test_mapping_refuses_other_counts_and_actions() -> None:
    with pytest.raises(MappingError, match="counts_from"):
        mapping_with(retention=[{"max_age": {"years": 3}, "counts_from": "created"}])
    with pytest.raises(MappingError, match="action"):
        mapping_with(retention=[{"max_age": {"years": 3}, "action": "archive"}])


def test_jql_date_is_before_the_cutoff_in_every_zone(site: Site) -> None:
    from connectors.jira.retention import expired_jql

    connector = site.connector()
    rule = connector.mapping.retention[0]
    cutoff = dt.datetime(2023, 11, 22, 11, 0, tzinfo=dt.UTC)
    jql = expired_jql("SUP", rule, cutoff, "SUP-9")
    assert jql == 'project = "SUP" AND resolved < "2023/11/21" AND key > "SUP-9" ORDER BY key ASC'


# -- the retention-sweep flow, with the service desk among the sources ---------------------------


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_the_sweep_flow_sweeps_the_service_desk(
    site: Site, sandbox_sqlite_url: str, tmp_path: Path
) -> None:
    from dsrflow.config import load_config
    from dsrflow.ledger import Ledger
    from flows.retention import retention_sweep
    from sandbox.jira_part import jira_source
    from sandbox.runtime import onprem_source, write_config

    jira = jira_source(site.url, tmp_path / "unused-token-file")
    jira["jira"]["api_token"] = {"env": TOKEN_ENV}
    config = tmp_path / "dsrflow.yaml"
    write_config(config, {**onprem_source(sandbox_sqlite_url), **jira}, tmp_path / "out")
    ledger = Ledger(load_config(config).ledger_url)
    ledger.add_restriction(Subject.from_raw(["sal@example.com"]), "DSR-2026-0601", "test")
    ledger.close()
    with run_settings(config):
        dry = retention_sweep(dry_run=True, as_of=NOW)
    [row] = [r for r in dry.results if r["source"] == "jira"]
    assert (row["table"], row["rows"], row["protected"], row["dry_run"]) == ("SUP", 7, 1, True)
    assert set(OLD) <= keys(site)
    with run_settings(config):
        summary = retention_sweep(as_of=NOW)
    assert "jira" not in summary.skipped_sources
    [row] = [r for r in summary.results if r["source"] == "jira"]
    assert (row["rows"], row["protected"], row["cutoff"]) == (7, 1, CUTOFF)
    assert not set(OLD) & keys(site) and PROTECTED in keys(site)


# -- the emulator's side, as Jira's reference describes it ---------------------------------------


def test_emulator_resolution_fields_and_date_clauses(site: Site) -> None:
    import httpx

    auth = (jira_seed.SANDBOX_EMAIL, jira_seed.SANDBOX_TOKEN)
    api = f"{site.url}/rest/api/2"
    unresolved = httpx.get(f"{api}/issue/SUP-28", auth=auth).json()["fields"]
    assert (unresolved["resolution"], unresolved["resolutiondate"]) == (None, None)
    resolved = httpx.get(f"{api}/issue/SUP-20", auth=auth).json()["fields"]
    assert resolved["resolutiondate"] == "2021-06-01T10:00:00.000+0000"

    def found(jql: str) -> list[str]:
        answer = httpx.get(f"{api}/search/jql", params={"jql": jql, "maxResults": 100}, auth=auth)
        assert answer.status_code == 200, answer.text
        return [i["key"] for i in answer.json()["issues"]]

    assert found('project = SUP AND resolved < "2023-11-23 00:00" ORDER BY key ASC') == [
        *OLD,
        PROTECTED,
        "SUP-30",
    ]
    assert found('project = SUP AND resolutiondate >= "2024/01/01"') == ["SUP-27"]
    assert found('project = SUP AND resolved < "2022/01/01" AND key > "SUP-24"') == [
        "SUP-25",
        "SUP-26",
        PROTECTED,
    ]
    bad = httpx.get(f"{api}/search/jql", params={"jql": 'resolved < "22.11.2023"'}, auth=auth)
    assert bad.status_code == 400
    assert (
        "Date value '22.11.2023' for field 'resolved' is invalid" in bad.json()["errorMessages"][0]
    )


def test_a_request_goes_with_its_subtasks_only_when_they_expired_too(site: Site) -> None:
    # SUP-20's subtask expired with it; SUP-21's is still open (Jira refuses a delete of an
    # issue with subtasks unless deleteSubtasks=true, which then takes them too).
    add_request(site, "SUP-40", "2021-06-01T10:00:00Z", parent={"key": "SUP-20"})
    add_request(site, "SUP-41", None, parent={"key": "SUP-21"})
    [result] = site.connector(page_size=3).sweep(NOW)
    assert "SUP-20" not in keys(site) and "SUP-40" not in keys(site)
    assert {"SUP-21", "SUP-41"} <= keys(site)
    assert result.rows == len(OLD) - 1 + 1  # SUP-21 waits; SUP-29 goes
    assert result.notes == [
        "1 kept until their subtasks expire too (a delete takes its subtasks)",
        "1 expired subtask(s) deleted with their request",
    ]


def test_anonymised_requests_say_their_history_keeps_the_old_values(site: Site) -> None:
    mapping = mapping_with(retention=[{"max_age": {"years": 3}, "action": "anonymise"}])
    [result] = site.connector(mapping, page_size=3).sweep(NOW)
    (note,) = [n for n in result.notes if "change history" in n]
    assert note.startswith(f"{len(OLD) + 1} anonymised request(s) keep the old values")
    assert "Atlassian support" in note
