"""The issue's example, over real HTTP: a Jira site whose subject's ticket sits in a service
desk the mapping does not list. Discovery finds none of it and says nothing; ``dsr coverage``
names the desk (and a plain project) with the mapping entry that would cover it. The
emulator's Get projects paginated pages as Atlassian's does (at most 50 a page)."""

from __future__ import annotations

import json

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from dsrflow.cli import app
from dsrflow.config import load_config
from dsrflow.coverage import last_coverage
from dsrflow.ledger import Ledger
from dsrflow.mapping import load_mapping
from dsrflow.request import Subject
from sandbox import jira_seed
from sandbox.runtime import write_config
from tests.support.jira_site import FIXTURE, MAPPING_PATH, TOKEN_ENV, start_site

runner = CliRunner()


def _site_with_unmapped_desk(tmp_path, extra_projects: int = 0, deployment: str = "Cloud"):
    data = json.loads(FIXTURE.read_text("utf-8"))
    data["servicedesks"].append(
        {"id": "2", "projectKey": "HELP", "projectName": "Help Center", "customers": ["u-al"]}
    )
    subject_ticket = {
        "key": "HELP-1",
        "fields": {
            "summary": "Invoice question",
            "description": "Please call me, al@example.com",
            "status": {"name": "Open"},
            "created": "2026-05-01T09:00:00Z",
            "reporter": {"accountId": "u-al"},
            "labels": [],
        },
    }
    data["issues"].append(subject_ticket)
    data["issues"].append({**subject_ticket, "key": "OPS-1"})  # a project with no desk
    for n in range(extra_projects):
        data["issues"].append({**subject_ticket, "key": f"X{n:02d}-1"})
    path = tmp_path / "jira.json"
    path.write_text(json.dumps(data), "utf-8")
    store = jira_seed.JiraStore()
    jira_seed.load_fixture(store, path)
    store.credentials = (jira_seed.SANDBOX_EMAIL, jira_seed.SANDBOX_TOKEN)
    return start_site(store, deployment=deployment)


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, jira_seed.SANDBOX_TOKEN)


def _config(tmp_path, url):
    path = tmp_path / "dsrflow.yaml"
    source = {
        "kind": "jira",
        "url": url,
        "mapping": str(MAPPING_PATH),
        "email": jira_seed.SANDBOX_EMAIL,
        "api_token": {"env": TOKEN_ENV},
        "max_retries": 0,
    }
    write_config(path, {"jira": source}, tmp_path / "out")
    return path


@pytest.mark.usefixtures("token")
def test_dsr_coverage_names_the_desk_the_subjects_ticket_is_in(tmp_path):
    server, site = _site_with_unmapped_desk(tmp_path)
    try:
        # The silent miss the survey exists for: discovery reads SUP only.
        with site.connector() as connector:
            records = list(connector.discover(Subject.from_raw(["al@example.com"])))
        assert records
        assert not [r for r in records if "HELP-1" in str(r) or "OPS-1" in str(r)]

        config = _config(tmp_path, site.url)
        result = runner.invoke(app, ["coverage", "--config", str(config)])
    finally:
        server.stop()
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    help_line = next(line for line in lines if "HELP" in line and line.startswith("finding"))
    assert help_line.startswith("finding jira: service_desk HELP: service desk 2 of project HELP")
    assert "holds 1 request(s)" in help_line
    assert "    projects: [SUP, HELP]" in lines
    assert any(line.startswith("finding jira: project OPS: project OPS") for line in lines)
    assert "    projects: [SUP, OPS]" in lines
    assert not any(" SUP:" in line for line in lines if line.startswith("finding"))
    assert lines[-1] == "2 finding(s), 0 source(s) not surveyed"
    with Ledger.from_config(load_config(config)) as ledger:
        last = last_coverage(ledger)
    assert last is not None and last.open_findings == 2


@pytest.mark.usefixtures("token")
def test_projects_are_paged_past_atlassians_cap_of_50(tmp_path):
    server, site = _site_with_unmapped_desk(tmp_path, extra_projects=60)
    try:
        auth = (jira_seed.SANDBOX_EMAIL, jira_seed.SANDBOX_TOKEN)
        first = httpx.get(
            f"{site.url}/rest/api/2/project/search", params={"maxResults": 100}, auth=auth
        ).json()
        assert first["maxResults"] == 50 and len(first["values"]) == 50
        assert first["isLast"] is False and first["total"] == 63
        assert first["nextPage"].endswith("startAt=50&maxResults=50")
        with site.connector() as connector:
            findings = connector.survey()
        stats = httpx.get(f"{site.url}/_emulator/stats").json()
    finally:
        server.stop()
    assert {f.place for f in findings} == {"HELP", "OPS"} | {f"X{n:02d}" for n in range(60)}
    pages = [v for k, v in stats["requests"].items() if "project/search" in k]
    assert pages == [3], stats  # the one above, then two pages of the survey


@pytest.mark.usefixtures("token")
def test_data_center_lists_its_projects_in_one_answer(tmp_path):
    server, dc = _site_with_unmapped_desk(tmp_path, deployment="Server")
    try:
        connector = dc.connector(
            deployment="data_center",
            email=None,
            api_token=None,
            personal_access_token={"env": TOKEN_ENV},
        )
        with connector:
            findings = connector.survey()
        auth = {"Authorization": f"Bearer {jira_seed.SANDBOX_TOKEN}"}
        paged = httpx.get(f"{dc.url}/rest/api/2/project/search", headers=auth)
        stats = httpx.get(f"{dc.url}/_emulator/stats").json()["requests"]
    finally:
        server.stop()
    assert {(f.what, f.place) for f in findings} == {("service_desk", "HELP"), ("project", "OPS")}
    assert paged.status_code == 404  # not a Data Center route
    assert stats.get("GET project") == 1, stats


@pytest.mark.usefixtures("token")
def test_with_the_projects_mapped_the_subjects_ticket_is_found(tmp_path):
    server, site = _site_with_unmapped_desk(tmp_path)
    try:
        mapping = load_mapping(MAPPING_PATH)
        with site.connector() as connector:
            snippets = [f.snippet for f in connector.survey()]
        projects = sorted({p for s in snippets for p in yaml.safe_load(s)["projects"]})
        assert projects == ["HELP", "OPS", "SUP"]
        covered = mapping.model_copy(update={"projects": projects})
        with site.connector(mapping=covered) as connector:
            assert connector.survey() == []
            records = list(connector.discover(Subject.from_raw(["al@example.com"])))
    finally:
        server.stop()
    assert any("HELP-1" in str(r) for r in records)
    assert any("OPS-1" in str(r) for r in records)
