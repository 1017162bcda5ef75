import re

import pytest

from dsrflow.identifiers import (
    Identifier,
    IdentifierError,
    email_spellings,
    mask_email,
    normalise_email,
    normalise_found,
    normalise_phone,
    phone_spellings,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("al@example.com", "al@example.com"),
        ("  AL@Example.COM ", "al@example.com"),
        ("o'brien@example.com", "o'brien@example.com"),
        ("a+b@example.com", "a+b@example.com"),
        ("x%y@example.com", "x%y@example.com"),
        ("al@bücher.example", "al@xn--bcher-kva.example"),
        ("al@XN--BCHER-KVA.example", "al@xn--bcher-kva.example"),
    ],
)
def test_email_normalised(raw, expected):
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("not-an-address", "not a valid e-mail address"),
        ("al@@example.com", "not a valid e-mail address"),
        ("al@example.com\n", "control character U+000A"),
        ("al\x00@example.com", "control character U+0000"),
        ("al@exa\u200bmple.com", "control character U+200B"),
        ("al@example", "not a valid e-mail address"),
    ],
)
def test_bad_email_rejected_with_reason(raw, reason):
    with pytest.raises(IdentifierError, match=re.escape(reason)):
        normalise_email(raw)


def test_look_alikes_stay_distinct():
    subject = normalise_email("al@example.com")
    for other in (
        "sal@example.com",
        "al@example.com.evil.org",
        "al+x@example.com",
        "a@example.com",
    ):
        assert normalise_email(other) != subject


def test_email_spellings_cover_unicode_domain():
    assert email_spellings("al@xn--bcher-kva.example") == [
        "al@xn--bcher-kva.example",
        "al@bücher.example",
    ]
    assert email_spellings("al@example.com") == ["al@example.com"]


def test_phone_normalised_to_e164():
    assert normalise_phone("912 34 567") == "+4791234567"
    assert normalise_phone("+47 912 34 567") == "+4791234567"
    assert normalise_phone("0044 20 7946 0958", "NO") == "+442079460958"
    assert phone_spellings("+4791234567") == ["+4791234567", "004791234567", "91234567"]


@pytest.mark.parametrize("raw", ["", "12", "+47 12", "phone", "+4791234567\t"])
def test_bad_phone_rejected(raw):
    with pytest.raises(IdentifierError):
        normalise_phone(raw)


def test_found_values_normalised_by_kind():
    assert normalise_found("email", "Al@Example.com") == "al@example.com"
    assert normalise_found("email", "garbage") is None
    assert normalise_found("phone", "+47 912 34 567") == "+4791234567"
    assert normalise_found("jira_account_id", " 5b10ac ") == "5b10ac"
    assert normalise_found("email", None) is None


def test_masking_hides_local_part():
    assert mask_email("alice@example.com") == "a***@example.com"
    assert str(Identifier(kind="email", value="a@b.no")) == "email:a@b.no"
