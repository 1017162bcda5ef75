"""One page per case: the view of a request read from the ledger, and the Prefect artifact
that a flow run publishes again as it goes (at most every few seconds, and its latest state at
the end), under one key per request."""

import datetime as dt

import pytest

from dsrflow.case import case_markdown, read_case
from dsrflow.ledger import Ledger, Status
from dsrflow.request import DataSubjectRequest, RequestType, Subject
from dsrflow.run_settings import run_settings

SUBJECT = "al@example.com"


def _ledger(tmp_path) -> Ledger:
    return Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")


def _open(ledger: Ledger, request_id: str, days_ago: int, kind=RequestType.ERASURE) -> None:
    ledger.open_request(
        DataSubjectRequest(
            id=request_id,
            type=kind,
            subject=Subject.from_raw([SUBJECT]),
            received_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago),
        )
    )


def test_the_case_shows_decisions_sources_and_deadline_but_no_subject_or_notes(tmp_path):
    with _ledger(tmp_path) as ledger:
        _open(ledger, "DSR-2026-1001", days_ago=40)
        ledger.record("DSR-2026-1001", "planned", plan_sha256="a" * 64, delete=3, keep=1)
        ledger.record(
            "DSR-2026-1001",
            "approved",
            actor="Officer Olsen",
            plan_sha256="a" * 64,
            note=f"called {SUBJECT} to confirm",
        )
        ledger.record("DSR-2026-1001", "executed", source="onprem", done=3, failed=0, skipped=1)
        ledger.record("DSR-2026-1001", "executed", source="drive", done=0, failed=2)
        before = case_markdown(read_case(ledger, "DSR-2026-1001"))
        ledger.record(
            "DSR-2026-1001",
            "identity_verified",
            actor="Officer Olsen",
            method="officer_check",
            note=f"passport seen, {SUBJECT}",
        )
        ledger.record("DSR-2026-1001", "delivered", actor="Officer Olsen", via="mail", files=3)
        case = read_case(ledger, "DSR-2026-1001")
    assert case is not None
    assert case.status == Status.OPEN.value
    assert case.days_left is not None and case.days_left < 0  # a month and more ago
    assert case.sources == {"onprem": "done 3, skipped 1", "drive": "failed 2"}
    assert [(d.event, d.actor) for d in case.decisions] == [("approved", "Officer Olsen")]
    page = case_markdown(case)
    assert "**overdue by" in page
    assert "approved by Officer Olsen" in page
    assert "| drive | failed 2 |" in page
    assert "- identity: not verified yet" in before and "- delivery: not delivered" in before
    assert "- identity: officer_check by Officer Olsen" in page
    assert "- delivery: mail by Officer Olsen" in page
    assert SUBJECT not in page and "called" not in page  # the notes stay in the ledger
    assert "passport" not in page


def test_a_closed_case_has_no_days_left_and_an_unknown_one_is_none(tmp_path):
    with _ledger(tmp_path) as ledger:
        _open(ledger, "DSR-2026-1002", days_ago=1, kind=RequestType.ACCESS)
        ledger.close_request("DSR-2026-1002", Status.COMPLETED, actor="Officer Olsen")
        case = read_case(ledger, "DSR-2026-1002")
        assert read_case(ledger, "DSR-2026-9999") is None
    assert case is not None and case.days_left is None
    assert "(closed)" in case_markdown(case)


def test_the_ledger_tells_its_listener_once_per_request_after_each_write(tmp_path):
    from dsrflow.ledger import on_request_change

    told: list[str] = []
    token = on_request_change.set(lambda _ledger, request_id: told.append(request_id))
    try:
        with _ledger(tmp_path) as ledger:
            _open(ledger, "DSR-2026-1003", days_ago=0)
            ledger.set_status("DSR-2026-1003", Status.IN_PROGRESS)
            ledger.record(None, "sweep", deleted=0)  # not about a request: nobody is told
    finally:
        on_request_change.reset(token)
    assert told == ["DSR-2026-1003", "DSR-2026-1003"]


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_an_access_run_publishes_the_case_page_as_it_starts_and_as_it_ends(
    tmp_path, sandbox_sqlite_url
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.access import access_request
    from flows.case_page import case_key
    from sandbox.runtime import onprem_source, write_config

    config = tmp_path / "dsrflow.yaml"
    write_config(config, onprem_source(sandbox_sqlite_url), tmp_path / "exports")
    with run_settings(config):
        state = access_request(
            request_id="DSR-2026-1004",
            subject_emails=[SUBJECT],
            return_state=True,
        )
    assert state.is_completed(), state.message
    with get_client(sync_client=True) as client:
        versions = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[case_key("DSR-2026-1004")]))
        )
    # received and in progress at once; exported and completed within the next seconds, so
    # only the latest of them (flows/case_page.py: one API call per version).
    assert len(versions) == 2
    latest = max(versions, key=lambda a: a.created)
    assert "status: **completed**" in latest.data
    assert "| onprem | found 12 |" in latest.data
    assert all(SUBJECT not in str(v.data) for v in versions)
    # The page belongs to the request, not to a run: the run's Artifacts tab is not cluttered.
    assert all(v.flow_run_id is None for v in versions)


def _versions(request_id: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.case_page import case_key

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[case_key(request_id)]))
        )
    return sorted(found, key=lambda a: a.created)


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_a_step_that_waits_reaches_the_page_before_the_run_ends(tmp_path):
    """A run that pauses (for an approval, a manual answer) writes no more for a while: its
    last step must not wait for the run's end to show."""
    import time

    from flows.case_page import case_pages

    request_id = "DSR-2026-1010"
    with _ledger(tmp_path) as ledger, case_pages(every_s=0.5):
        _open(ledger, request_id, days_ago=1)  # published at once
        assert len(_versions(request_id)) == 1
        ledger.set_status(request_id, Status.IN_PROGRESS)  # not due yet: waits
        ledger.set_status(request_id, Status.AWAITING_APPROVAL)
        deadline = time.monotonic() + 20
        while len(_versions(request_id)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # as a paused run waits
        versions = _versions(request_id)
        assert len(versions) == 2
        assert "status: **awaiting_approval**" in versions[-1].data
    assert len(_versions(request_id)) == 2  # nothing was left to publish at the end


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_the_latest_step_is_published_when_the_block_ends(tmp_path):
    from flows.case_page import case_pages

    request_id = "DSR-2026-1011"
    with _ledger(tmp_path) as ledger:
        with case_pages(every_s=600):  # no timer fires within this test
            _open(ledger, request_id, days_ago=1)
            ledger.set_status(request_id, Status.IN_PROGRESS)
            ledger.set_status(request_id, Status.FAILED, error="SourceUnavailable")
            assert len(_versions(request_id)) == 1
        versions = _versions(request_id)
    assert len(versions) == 2
    assert "status: **failed**" in versions[-1].data
