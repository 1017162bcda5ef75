"""A request's life in the ledger: draft, open, closed (completed, rejected, withdrawn); one id
for one request of one subject; the ledger file owner-only."""

import datetime as dt
import stat

import pytest

from dsrflow.ledger import Ledger, Status
from dsrflow.request import DataSubjectRequest, RequestType, Subject
from tests.test_ledger import make_request

TODAY = dt.date(2026, 11, 22)


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield ledger
    ledger.close()


def test_close_as_completed_rejected_or_withdrawn(ledger):
    for number in (1, 2, 3, 4):
        ledger.open_request(make_request(f"DSR-2026-000{number}"))
    ledger.close_request("DSR-2026-0001", Status.COMPLETED, "Ingrid")
    ledger.close_request(
        "DSR-2026-0002", Status.REJECTED, "Ingrid", reason="manifestly excessive: 40th this month"
    )
    ledger.close_request("DSR-2026-0003", Status.WITHDRAWN, "Ingrid", reason="subject's mail")
    assert [r["id"] for r in ledger.open_requests(today=TODAY)] == ["DSR-2026-0004"]
    every = {r["id"]: r for r in ledger.open_requests(today=TODAY, include_closed=True)}
    assert list(every) == ["DSR-2026-0004", "DSR-2026-0001", "DSR-2026-0002", "DSR-2026-0003"]
    assert every["DSR-2026-0002"]["status"] == "rejected"
    assert every["DSR-2026-0002"]["days_left"] is None
    assert every["DSR-2026-0002"]["closed_at"] is not None
    row = ledger.request_row("DSR-2026-0002")
    assert row["closed_reason"] == "manifestly excessive: 40th this month"
    events = [(e.event, e.actor) for e in ledger.entries("DSR-2026-0003")]
    assert events == [("received", "dsrflow"), ("status:withdrawn", "Ingrid")]
    assert ledger.verify() == []


def test_close_refuses_what_it_cannot_do(ledger):
    ledger.open_request(make_request())
    with pytest.raises(LookupError, match="no request DSR-2026-0009 in the ledger"):
        ledger.close_request("DSR-2026-0009", Status.COMPLETED, "Ingrid")
    with pytest.raises(ValueError, match="closing DSR-2026-0001 as rejected needs a reason"):
        ledger.close_request("DSR-2026-0001", Status.REJECTED, "Ingrid", reason="  ")
    with pytest.raises(ValueError, match="needs a reason"):
        ledger.close_request("DSR-2026-0001", Status.WITHDRAWN, "Ingrid")
    with pytest.raises(ValueError, match="not in_progress"):
        ledger.close_request("DSR-2026-0001", Status.IN_PROGRESS, "Ingrid")
    ledger.close_request("DSR-2026-0001", Status.COMPLETED, "Ingrid")
    with pytest.raises(ValueError, match=r"DSR-2026-0001 is already closed \(completed\)"):
        ledger.close_request("DSR-2026-0001", Status.WITHDRAWN, "Ingrid", reason="late")
    assert ledger.verify() == []


def test_a_draft_is_never_overdue_and_a_real_run_opens_it(ledger):
    received = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    ledger.open_request(make_request(received=received), actor="Ingrid", draft=True)
    assert ledger.open_requests(today=TODAY) == []
    (draft,) = ledger.open_requests(today=TODAY, include_closed=True)
    assert (draft["status"], draft["days_left"]) == ("draft", None)
    ledger.open_request(make_request(received=received), draft=True)  # another dry run
    later = make_request(received=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    ledger.open_request(later, actor="Ola")
    (opened,) = ledger.open_requests(today=TODAY)
    assert (opened["status"], opened["days_left"]) == ("open", -52)  # due 2026-10-01
    assert ledger.request_row("DSR-2026-0001")["received_at"] == received
    events = [(e.event, e.details) for e in ledger.entries()]
    assert events == [
        ("received", {"type": "access", "draft": True}),
        ("status:open", {"from": "draft"}),
    ]
    assert ledger.opened_by("DSR-2026-0001") == "Ingrid"
    ledger.open_request(later, draft=True)  # a dry run of an open request leaves it open
    assert ledger.request_row("DSR-2026-0001")["status"] == "open"
    assert ledger.verify() == []


def test_a_failed_dry_run_leaves_its_draft_a_draft(ledger):
    ledger.open_request(make_request(), draft=True)
    ledger.set_status("DSR-2026-0001", Status.FAILED, error="SourceUnavailable")
    assert ledger.open_requests(today=TODAY) == []
    assert ledger.request_row("DSR-2026-0001")["status"] == "draft"
    assert [e.event for e in ledger.entries()] == ["received", "status:failed"]
    ledger.open_request(make_request())  # a real run: open, and it can fail for real
    ledger.set_status("DSR-2026-0001", Status.FAILED, error="SourceUnavailable")
    assert [r["status"] for r in ledger.open_requests(today=TODAY)] == ["failed"]
    assert ledger.verify() == []


def test_status_of_an_unknown_request_changes_no_row(ledger):
    ledger.set_status("DSR-2026-0404", Status.FAILED, error="ValueError")
    (entry,) = ledger.entries()
    assert (entry.event, entry.changes) == ("status:failed", [])
    assert ledger.verify() == []


def test_one_id_names_one_request_of_one_subject(ledger):
    ledger.open_request(make_request())
    same = make_request().model_copy(update={"subject": Subject.from_raw(["AL@example.com"])})
    ledger.open_request(same)  # the same subject, spelled as the officer typed it
    other_subject = make_request().model_copy(
        update={"subject": Subject.from_raw(["sal@example.com"])}
    )
    with pytest.raises(ValueError, match="already in the ledger for another subject") as caught:
        ledger.open_request(other_subject)
    assert "sal@" not in str(caught.value) and "al@" not in str(caught.value)
    other_type = make_request().model_copy(update={"type": RequestType.ERASURE})
    with pytest.raises(ValueError, match="with type access, not erasure: use a new request id"):
        ledger.open_request(other_type)
    extra_phone = make_request().model_copy(
        update={"subject": Subject.from_raw(["al@example.com"], ["+4791234567"])}
    )
    with pytest.raises(ValueError, match="another subject"):
        ledger.open_request(extra_phone)
    assert [e.event for e in ledger.entries()] == ["received"]


def test_request_row_and_opened_by(ledger):
    request = make_request()
    ledger.open_request(request, actor="Ingrid")
    row = ledger.request_row(request.id)
    assert row["id"] == request.id
    assert row["type"] == "access"
    assert row["status"] == "open"
    assert row["subject"] == {"emails": ["al@example.com"], "phones": []}
    assert row["received_at"] == request.received_at
    assert row["due_at"] == dt.date(2026, 11, 1)
    assert row["extended_due_at"] is None
    assert ledger.opened_by(request.id) == "Ingrid"
    assert ledger.request_row("DSR-2026-0404") is None
    with pytest.raises(LookupError, match="no request DSR-2026-0404"):
        ledger.opened_by("DSR-2026-0404")


def test_received_time_in_another_zone_is_kept_as_the_same_instant(ledger):
    oslo = dt.timezone(dt.timedelta(hours=2))
    received = dt.datetime(2026, 10, 1, 23, 30, tzinfo=oslo)
    ledger.open_request(make_request(received=received))
    assert ledger.request_row("DSR-2026-0001")["received_at"] == received
    assert ledger.verify() == []


def test_the_ledger_file_and_folder_are_owner_only(tmp_path):
    path = tmp_path / "private" / "ledger.db"
    Ledger(f"sqlite:///{path}").close()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)  # made readable by someone else: opening it tightens it again
    Ledger(f"sqlite:///{path}").close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_ledger_that_cannot_be_opened_is_one_clear_error(tmp_path):
    from dsrflow.ledger import LedgerError

    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(
        LedgerError,
        match=r"the ledger sqlite:///.*a-file/ledger.db \(ledger_url\) "
        r"cannot be opened for writing: (File exists|Not a directory)",
    ):
        Ledger(f"sqlite:///{tmp_path / 'a-file' / 'ledger.db'}")
    with pytest.raises(
        LedgerError, match=r"postgresql\+psycopg://dsr:\*\*\*@127.0.0.1:9/x"
    ) as caught:
        Ledger("postgresql+psycopg://dsr:secret@127.0.0.1:9/x")
    assert "secret" not in str(caught.value)


def test_an_erasure_ends_the_subjects_restriction_and_forgets_it(tmp_path):
    """Art. 18 then Art. 17: once the data is erased there is nothing left to restrict, and
    the restriction list must not keep the subject's identifiers in clear."""
    path = tmp_path / "ledger.db"
    ledger = Ledger(f"sqlite:///{path}", key=b"k" * 32)
    al = Subject.from_raw(["al@example.com"], ["+47 912 34 567"])
    ledger.add_restriction(al, "DSR-2026-0001", "Ingrid")
    ledger.lift_restriction(al, "DSR-2026-0002", "Ingrid")
    ledger.add_restriction(al, "DSR-2026-0003", "Ingrid")
    ledger.add_restriction(Subject.from_raw(["sal@example.com"]), "DSR-2026-0004", "Ingrid")
    erasure = DataSubjectRequest(
        id="DSR-2026-0005",
        type=RequestType.ERASURE,
        subject=al,
        received_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    )
    ledger.open_request(erasure)
    ledger.forget_subject(al, erasure.id)
    assert not ledger.is_restricted(al)
    assert ledger.is_restricted(Subject.from_raw(["sal@example.com"]))
    assert ledger.restricted_identifiers() == {"email:sal@example.com"}
    assert ledger.verify() == []
    ledger.close()
    stored = path.read_bytes()
    assert b"al@example.com" not in stored.replace(b"sal@example.com", b"")
    assert b"4791234567" not in stored
