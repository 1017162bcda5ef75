import datetime as dt

import pytest
from pydantic import ValidationError

from dsrflow.identifiers import IdentifierError
from dsrflow.request import DataSubjectRequest, Extension, RequestType, Subject, new_request_id


def test_subject_normalises_and_deduplicates():
    subject = Subject.from_raw(["AL@example.com", "al@example.com"], ["912 34 567"], " Al ")
    assert subject.emails == ("al@example.com",)
    assert subject.phones == ("+4791234567",)
    assert subject.name == "Al"
    assert {str(i) for i in subject.identifiers} == {"email:al@example.com", "phone:+4791234567"}


def test_subject_needs_an_address():
    with pytest.raises(IdentifierError, match="at least one e-mail"):
        Subject.from_raw([])


def test_subject_names_the_bad_identifier():
    with pytest.raises(IdentifierError, match="'nope'"):
        Subject.from_raw(["al@example.com", "nope"])


def test_due_date_one_month_and_extension():
    subject = Subject.from_raw(["al@example.com"])
    received = dt.datetime(2026, 1, 31, 10, 0, tzinfo=dt.UTC)
    request = DataSubjectRequest(
        id="DSR-2026-0042", type=RequestType.ACCESS, subject=subject, received_at=received
    )
    assert request.due_at == dt.date(2026, 2, 28)  # one calendar month, end-of-month aware
    extended = request.model_copy(update={"extension": Extension(reason="complex request")})
    assert extended.due_at == dt.date(2026, 4, 30)


@pytest.mark.parametrize("bad", ["42", "DSR-26-1", "dsr-2026-0042", "DSR-2026-0042; DROP"])
def test_request_id_format(bad):
    with pytest.raises(ValidationError, match="DSR-2026-0042"):
        DataSubjectRequest(
            id=bad,
            type=RequestType.ACCESS,
            subject=Subject.from_raw(["al@example.com"]),
            received_at=dt.datetime.now(dt.UTC),
        )


def test_extension_limited_to_two_months():
    with pytest.raises(ValidationError):
        Extension(months=3, reason="too long")


def test_new_request_id_is_valid():
    assert DataSubjectRequest(
        id=new_request_id(),
        type=RequestType.ERASURE,
        subject=Subject.from_raw(["al@example.com"]),
        received_at=dt.datetime.now(dt.UTC),
    ).id.startswith("DSR-")


def test_expanded_subject_adds_only_new_identifiers():
    from dsrflow.identifiers import Identifier

    subject = Subject.from_raw(["al@example.com"])
    same = subject.expanded({Identifier(kind="email", value="al@example.com")})
    assert same is subject
    more = subject.expanded({Identifier(kind="jira_account_id", value="5b10")})
    assert [str(i) for i in more.others] == ["jira_account_id:5b10"]
