"""The coverage-check flow through Prefect (test harness): its markdown artifact, read back
through Prefect's API, names places by id and counts only; the ledger keeps the time and the
open findings; an access request warns in its run log and its result when the last report is
missing, too old or open."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import sqlalchemy as sa

from dsrflow.config import load_config
from dsrflow.coverage import CoverageReport, coverage_warning, last_coverage, store, survey
from dsrflow.ledger import Ledger
from dsrflow.run_settings import run_settings
from sandbox.runtime import onprem_source, write_config

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def config(tmp_path, sandbox_sqlite_url):
    path = tmp_path / "dsrflow.yaml"
    write_config(path, onprem_source(sandbox_sqlite_url), tmp_path / "exports")
    return path


def _unmapped_table(config_path):
    url = load_config(config_path).sources["onprem"].url
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE newsletter (id INTEGER PRIMARY KEY, address TEXT)"))
        conn.execute(sa.text("INSERT INTO newsletter VALUES (1, 'al@example.com')"))
    engine.dispose()


async def _run_data(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )

    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
    return artifacts, logs


def run_data(state):
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    return asyncio.run(_run_data(state.state_details.flow_run_id))


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_the_flow_publishes_its_report_and_keeps_the_counts(config):
    from flows.coverage import coverage_check

    _unmapped_table(config)
    with run_settings(config):
        state = coverage_check(return_state=True)
    assert state.is_completed(), state.message
    assert state.result() == 1
    artifacts, _ = run_data(state)
    (report,) = [a for a in artifacts if a.key == "coverage-report"]
    assert report.type == "markdown"
    assert "**1 open** (1 finding(s), 0 source(s) not surveyed)" in report.data
    assert "| onprem | table | `newsletter` |" in report.data
    assert "`    primary_key: [id]`" in report.data
    assert "al@example.com" not in report.data
    with Ledger.from_config(load_config(config)) as ledger:
        last = last_coverage(ledger)
        entry = [e for e in ledger.entries() if e.event == "coverage_checked"][-1]
    assert last is not None and last.open_findings == 1
    assert entry.request_id is None
    assert entry.details["findings_per_source"] == {"onprem": 1}
    assert "newsletter" not in str(entry.details)  # counts, not places


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_an_access_request_warns_without_a_coverage_report(config):
    from flows.access import access_request

    with run_settings(config):
        state = access_request(
            request_id="DSR-2026-0901",
            subject_emails=["al@example.com"],
            return_state=True,
        )
    assert state.is_completed(), state.message
    warning = state.result().coverage_warning
    assert warning.startswith("no coverage report exists")
    _, logs = run_data(state)
    warned = [log for log in logs if log.message.startswith("coverage: no coverage report")]
    assert [log.level for log in warned] == [30]  # logging.WARNING


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        (CoverageReport(at=NOW - dt.timedelta(days=2)), None),
        (CoverageReport(at=NOW - dt.timedelta(days=31)), "is 31 days old (coverage_max_age_days"),
        (
            CoverageReport(at=NOW - dt.timedelta(days=2), not_surveyed={"jira": "HTTP 503"}),
            "has 1 open finding(s)",
        ),
    ],
    ids=["fresh-and-clean", "too-old", "open"],
)
def test_when_the_last_report_warns(config, report, expected):
    loaded = load_config(config)
    with Ledger.from_config(loaded) as ledger:
        store(ledger, CoverageReport(at=NOW - dt.timedelta(days=90)))  # an older one first
        store(ledger, report)
        warning = coverage_warning(ledger, loaded, now=NOW)
    if expected is None:
        assert warning is None
    else:
        assert warning is not None and expected in warning


def test_the_age_is_a_setting(tmp_path, sandbox_sqlite_url):
    path = tmp_path / "dsrflow.yaml"
    write_config(path, onprem_source(sandbox_sqlite_url), tmp_path / "exports")
    path.write_text(path.read_text("utf-8") + "coverage_max_age_days: 1\n", "utf-8")
    loaded = load_config(path)
    with Ledger.from_config(loaded) as ledger:
        store(ledger, CoverageReport(at=NOW - dt.timedelta(days=2)))
        assert "(coverage_max_age_days: 1)" in (coverage_warning(ledger, loaded, now=NOW) or "")


def test_kinds_with_nothing_to_survey_are_said_so_and_not_open(tmp_path, sandbox_sqlite_url):
    from sandbox.marketplace_part import marketplace_source

    token = tmp_path / "token"
    token.write_text("unused", "utf-8")
    token.chmod(0o600)
    path = tmp_path / "dsrflow.yaml"
    sources = {
        **onprem_source(sandbox_sqlite_url),
        **marketplace_source("http://127.0.0.1:9", token),  # never opened
    }
    write_config(path, sources, tmp_path / "exports")
    report = survey(load_config(path))
    assert report.open_findings == 0
    assert list(report.nothing_to_survey) == ["marketplace"]
    assert "marketplace: nothing to survey: the vendor API reports only" in "\n".join(
        report.lines()
    )
    assert "- marketplace: nothing to survey" in report.markdown()


def test_dsr_access_prints_the_warning_last(capsys, tmp_path):
    from dsrflow.cli.running import _print_access_result
    from flows.access import AccessResult

    result = AccessResult(
        request_id="DSR-2026-0901",
        total_records=1,
        records_per_source={"onprem": 1},
        export_dir=str(tmp_path),
        expansion_rounds=1,
        coverage_warning="no coverage report exists: run `dsr coverage`",
    )
    _print_access_result(result)
    assert capsys.readouterr().err.splitlines() == [
        "warning: no coverage report exists: run `dsr coverage`"
    ]
    _print_access_result(result.model_copy(update={"coverage_warning": None}))
    assert capsys.readouterr().err == ""


def test_why_a_source_was_not_surveyed_reaches_prefect_scrubbed():
    from flows.private import scrub

    why = "mapped folder fld-1 cannot be read (as dana@fjelltopp.example: is it shared?)"
    report = CoverageReport(at=NOW, not_surveyed={"drive": why})
    assert "dana@" in "\n".join(report.lines())  # the officer's terminal says who
    published = report.markdown(scrub)
    assert "dana@" not in published
    assert "- **not surveyed** drive: mapped folder fld-1 cannot be read (as <address>" in published
    assert NOW.isoformat(timespec="seconds") in published  # the time survives the scrubbing
