"""The one comparison key of an identifier (dsrflow.identifiers), over the shared table of
spellings that every source's test uses too (tests/fixtures/identifier_cases.yaml)."""

from __future__ import annotations

import re
import unicodedata

import pytest

from dsrflow.identifiers import (
    IdentifierError,
    addresses_in,
    email_key,
    email_spellings,
    lowered_spellings,
    normalise_email,
    normalise_phone,
    phone_key,
    search_form,
)
from dsrflow.request import Subject
from tests.support.identifier_cases import PHONE_REGION, cases

EMAIL_CASES = cases("email")
PHONE_CASES = cases("phone")


def _ascii_lower(text: str) -> str:
    """What SQLite's lower() (and PostgreSQL's in the C locale) does: ASCII letters only."""
    return re.sub(r"[A-Z]", lambda m: m.group().lower(), text)


@pytest.mark.parametrize("case", EMAIL_CASES, ids=lambda c: c.id)
def test_email_key_over_the_table(case):
    assert (email_key(case.stored) == normalise_email(case.subject)) is case.same


@pytest.mark.parametrize("case", PHONE_CASES, ids=lambda c: c.id)
def test_phone_key_over_the_table(case):
    key = phone_key(case.stored, PHONE_REGION)
    assert (key == normalise_phone(case.subject, PHONE_REGION)) is case.same


@pytest.mark.parametrize("case", [c for c in EMAIL_CASES if c.same], ids=lambda c: c.id)
def test_sql_spellings_cover_what_lower_gives(case):
    """The exact values the SQL pre-filter asks for include lower(stored), trimmed, whether the
    database's lower() folds ASCII only or all of Unicode."""
    key = normalise_email(case.subject)
    stored = case.stored.strip()
    assert _ascii_lower(stored) in lowered_spellings(key, lower_folds_unicode=False)
    assert stored.lower() in lowered_spellings(key, lower_folds_unicode=True)


@pytest.mark.parametrize("case", [c for c in EMAIL_CASES if c.same], ids=lambda c: c.id)
def test_cheap_pre_tests_are_never_narrower_than_the_key(case):
    local = normalise_email(case.subject).rpartition("@")[0]
    assert search_form(local) + "@" in search_form(case.stored)


def test_look_alikes_keep_a_key_of_their_own():
    for case in EMAIL_CASES:
        if case.id in {"kelvin-sign", "fullwidth-local", "cyrillic-a", "fullwidth-domain"}:
            # Still an address (another person in a row), equal only to its own text.
            assert email_key(case.stored) == case.stored
            assert email_key(f" {case.stored}\t") == case.stored


@pytest.mark.parametrize(
    ("typed", "named"),
    [
        ("\u212aari@example.com", "U+212A KELVIN SIGN"),
        ("\uff4bari@example.com", "U+FF4B FULLWIDTH LATIN SMALL LETTER K"),
        ("k\u0430ri@example.com", "mixes letters of the scripts CYRILLIC, LATIN"),
        ("al@\uff45xample.com", "U+FF45 FULLWIDTH LATIN SMALL LETTER E"),
        ("al@example\u3002com", "U+3002 IDEOGRAPHIC FULL STOP"),
    ],
)
def test_a_subject_typed_with_a_look_alike_is_refused_with_the_character_named(typed, named):
    with pytest.raises(IdentifierError, match=re.escape(named)):
        normalise_email(typed)
    with pytest.raises(IdentifierError, match=re.escape(named)):
        Subject.from_raw([typed])


def test_one_writing_system_is_not_mixed_scripts():
    assert normalise_email("\u305f\u306a\u304b\u592a\u90ce@example.jp")  # Hiragana + Han
    assert normalise_email("\u0430\u043b\u044f@example.com") == "\u0430\u043b\u044f@example.com"
    greek = normalise_email("\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3@example.gr")
    assert greek == "\u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c2@example.gr"  # final sigma


def test_sharp_s_is_not_folded_into_ss():
    assert normalise_email("stra\u00dfe@example.de") != normalise_email("strasse@example.de")
    assert email_key("STRA\u1e9eE@example.de") == normalise_email("stra\u00dfe@example.de")


def test_keys_are_nfc_and_domains_idna():
    key = email_key("A\u030aSE@B\u00dcCHER.example ")
    assert key == "\u00e5se@xn--bcher-kva.example"
    assert unicodedata.is_normalized("NFC", key)


def test_addresses_in_text_are_read_whole():
    text = "Write to \u00e5se@example.com, or (sal@example.com). Not kari@example.com.evil.org!"
    assert [cleaned for _, cleaned in addresses_in(text)] == [
        "\u00e5se@example.com",
        "sal@example.com",
        "kari@example.com.evil.org",
    ]


def test_full_text_spellings_add_the_decomposed_form_on_request():
    assert email_spellings("\u00e5se@example.com", decomposed=True) == [
        "\u00e5se@example.com",
        "a\u030ase@example.com",
    ]


def test_found_phone_values_that_are_not_numbers_have_no_key():
    assert phone_key("call me", PHONE_REGION) is None
    assert phone_key("912\x0034567", PHONE_REGION) is None
    assert phone_key(None, PHONE_REGION) is None


def test_the_cli_refuses_a_look_alike_subject_in_one_line_with_status_2(tmp_path):
    from typer.testing import CliRunner

    from dsrflow.cli import app

    result = CliRunner().invoke(
        app,
        [
            "access",
            "--subject",
            "\u212aari@example.com",
            "--out",
            str(tmp_path),
            "--config",
            str(tmp_path / "absent.yaml"),
        ],
    )
    assert result.exit_code == 2
    assert "U+212A KELVIN SIGN" in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []
