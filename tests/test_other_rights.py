"""Rectification, consent withdrawal and restriction end to end on the sandbox fixture."""

import datetime as dt
import json
from pathlib import Path

import pytest

from connectors.sql.connector import SqlConnector
from dsrflow.config import load_config
from dsrflow.ledger import Ledger
from dsrflow.planning import parse_corrections
from dsrflow.request import Subject
from dsrflow.run_settings import run_settings
from flows.other_rights import consent_withdrawal, rectification_request, restriction_request
from sandbox.runtime import onprem_source, write_config
from tests.support.approval import approved
from tests.test_sql_erasure import snapshot

pytestmark = [
    pytest.mark.usefixtures("masking_key"),
    pytest.mark.prefect,
    pytest.mark.usefixtures("prefect_harness"),
]
SUBJECT = "al@example.com"


@pytest.fixture
def box(tmp_path, sandbox_sqlite_url):
    config = tmp_path / "dsrflow.yaml"
    write_config(config, onprem_source(sandbox_sqlite_url), tmp_path / "out")
    with run_settings(config):  # the flows of each test run with this config
        yield config, sandbox_sqlite_url


def discover(config, email):
    loaded = load_config(config)
    connector = SqlConnector(
        "onprem", loaded.load_mappings()["onprem"], loaded.sources["onprem"].url
    )
    try:
        return list(connector.discover(Subject.from_raw([email])))
    finally:
        connector.close()


def test_corrections_are_validated():
    assert parse_corrections(["email=AL.New@Example.com", "phone=912 34 500"]) == {
        "user.contact.email": "al.new@example.com",
        "user.contact.phone": "+4791234500",
    }
    with pytest.raises(ValueError, match="field=value"):
        parse_corrections(["email"])
    with pytest.raises(ValueError, match="not a valid e-mail"):
        parse_corrections(["email=nope"])
    with pytest.raises(ValueError, match="cannot correct 'Shoe Size'"):
        parse_corrections(["Shoe Size=44"])


def test_rectification_everywhere_the_field_occurs(box):
    config, url = box
    before = snapshot(url)
    result = approved(
        rectification_request,
        request_id="DSR-2026-0401",
        subject_emails=[SUBJECT],
        corrections=["email=al.new@example.com", "name=Al Renamed"],
    )
    assert result.status == "completed"
    assert result.executed["onprem"]["done"] == 2
    after = snapshot(url)
    for contact in (1, 4):
        assert after["contacts"][contact]["email"] == "al.new@example.com"
        assert after["contacts"][contact]["name"] == "Al Renamed"
    changed = {(t, k) for t in before for k in before[t] if before[t][k] != after[t].get(k)}
    assert changed == {("contacts", 1), ("contacts", 4)}
    assert discover(config, SUBJECT) == []
    assert {
        r.native_id["id"]
        for r in discover(config, "al.new@example.com")
        if r.location == "contacts"
    } == {1, 4}
    receipt = json.loads(Path(result.receipt).read_text())
    assert [line["fields"] for line in receipt["changed"]] == [["email", "name"]] * 2


def test_consent_withdrawal_records_now_and_erases_what_rested_on_it(box):
    _, url = box
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    before = snapshot(url)
    result = approved(
        consent_withdrawal,
        request_id="DSR-2026-0402",
        subject_emails=[SUBJECT],
        purpose="analytics",
    )
    assert result.status == "completed"
    after = snapshot(url)
    withdrawn = after["consents"][1]["withdrawn_at"]
    assert withdrawn is not None
    assert dt.datetime.fromisoformat(str(withdrawn)) >= started  # never back-dated
    assert after["consents"][2] == before["consents"][2]  # the colleague's consent
    for event in (1, 2, 3):  # the subject's usage events lose what analytics collected
        row = after["usage_events"][event]
        assert (row["user_hash"], row["event"], row["occurred_at"]) == (None, None, None)
        assert row["instance_id"] == before["usage_events"][event]["instance_id"]
    assert after["usage_events"][4] == before["usage_events"][4]
    assert after["config_reports"] == before["config_reports"]

    again = approved(
        consent_withdrawal,
        request_id="DSR-2026-0403",
        subject_emails=[SUBJECT],
        purpose="analytics",
    )
    assert again.plan.get("rectify", 0) == 0  # the first withdrawal time stays
    assert snapshot(url)["consents"][1]["withdrawn_at"] == withdrawn


def test_withdrawing_all_consent_deletes_rows_with_nothing_else(box):
    _, url = box
    result = approved(
        consent_withdrawal,
        request_id="DSR-2026-0404",
        subject_emails=[SUBJECT],
        purpose="all",
    )
    assert result.status == "completed"
    after = snapshot(url)
    assert {1, 2, 3}.isdisjoint(after["usage_events"])
    assert 1 not in after["config_reports"]
    assert 2 in after["config_reports"]


def test_restriction_and_its_lifting_are_logged(box):
    config, url = box
    before = snapshot(url)
    result = restriction_request(
        request_id="DSR-2026-0405",
        subject_emails=[SUBJECT],
        officer="Ingrid",
    )
    assert result.status == "completed"
    assert snapshot(url) == before  # the sandbox schema has no restriction column: ledger only
    ledger = Ledger(load_config(config).ledger_url)
    assert ledger.is_restricted(Subject.from_raw([SUBJECT]))
    assert not ledger.is_restricted(Subject.from_raw(["sal@example.com"]))
    ledger.close()
    lifted = restriction_request(
        request_id="DSR-2026-0406",
        subject_emails=[SUBJECT],
        lift=True,
        officer="Ingrid",
    )
    assert lifted.status == "lifted"
    ledger = Ledger(load_config(config).ledger_url)
    assert not ledger.is_restricted(Subject.from_raw([SUBJECT]))
    events = [e.event for e in ledger.entries()]
    assert "restricted" in events
    assert "restriction_lifted" in events
    assert ledger.verify() == []
    ledger.close()


def test_a_restricted_subjects_own_requests_go_ahead_with_the_officer_told(box, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.access import access_request
    from flows.erasure import erasure_request

    config, url = box
    restriction_request(request_id="DSR-2026-0407", subject_emails=[SUBJECT])
    access = access_request(request_id="DSR-2026-0408", subject_emails=[SUBJECT])
    assert access.total_records > 0  # restricted data is still exported to the subject
    before = snapshot(url)
    plan = erasure_request(
        request_id="DSR-2026-0409",
        subject_emails=[SUBJECT],
        dry_run=True,
    )
    assert plan.status == "dry_run"
    assert snapshot(url) == before
    unrestricted = erasure_request(
        request_id="DSR-2026-0410",
        subject_emails=["sal@example.com"],
        dry_run=True,
    )
    assert unrestricted.status == "dry_run"

    def summary(request_id: str) -> str:
        with get_client(sync_client=True) as client:
            key = f"erasure-plan-{request_id.lower()}-summary"
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
            )
        assert len(artifacts) == 1
        return str(artifacts[0].data)

    assert "restricted (Art. 18) since" in summary("DSR-2026-0409")
    assert "restricted" not in summary("DSR-2026-0410")
    ledger = Ledger(load_config(config).ledger_url)
    flagged = [e.request_id for e in ledger.entries() if e.event == "subject_restricted"]
    ledger.close()
    assert flagged == ["DSR-2026-0408", "DSR-2026-0409"]
