"""Validation and normalisation of a data subject's identifiers.

Matching in every connector is exact on the normalised forms made here: an e-mail address is
case-folded with its domain in IDNA (ASCII) form, a phone number is E.164. Server-side searches
are only pre-filters; this module decides what is the same identifier.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum
from typing import Annotated

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, StringConstraints


class IdentifierError(ValueError):
    """An identifier that cannot be used: says which one and why."""


class IdentifierKind(StrEnum):
    """The kinds normalised here; others (e.g. ``jira_account_id``) are compared as exact text."""

    EMAIL = "email"
    PHONE = "phone"


IdentifierKindName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]


class Identifier(BaseModel):
    """One normalised identifier of a subject, e.g. ``email:al@example.com``."""

    model_config = ConfigDict(frozen=True)

    kind: str
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


def _reject_control_characters(text: str, what: str) -> None:
    for char in text:
        if unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"}:
            raise IdentifierError(
                f"{what} {text!r} contains the control character U+{ord(char):04X}"
            )


def normalise_email(raw: str) -> str:
    """The canonical form of an address: lower-cased local part, lower-case IDNA domain.

    Raises IdentifierError for anything that is not a syntactically valid address. Characters
    that mean something to a query language (``'``, ``+``, ``%``) are valid and kept as they are.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise IdentifierError("an e-mail address is empty")
    _reject_control_characters(raw, "the e-mail address")
    text = raw.strip()
    try:
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise IdentifierError(f"{text!r} is not a valid e-mail address: {exc}") from exc
    return f"{checked.local_part.lower()}@{checked.ascii_domain.lower()}"


def email_spellings(normalised: str) -> list[str]:
    """The spellings one address may be stored under, for an exact SQL pre-filter.

    A database may keep the domain in Unicode (``bücher.example``) or in IDNA
    (``xn--bcher-kva.example``); both are the same address.
    """
    local, _, domain = normalised.rpartition("@")
    spellings = [normalised]
    try:
        unicode_domain = domain.encode("ascii").decode("idna")
    except UnicodeError:
        unicode_domain = domain
    if unicode_domain != domain:
        spellings.append(f"{local}@{unicode_domain}")
    return spellings


def try_normalise_email(raw: object) -> str | None:
    """Normalise a value read from a source; None where it is not an address at all."""
    if not isinstance(raw, str) or "@" not in raw:
        return None
    try:
        return normalise_email(raw)
    except IdentifierError:
        return None


def normalise_phone(raw: str, default_region: str = "NO") -> str:
    """E.164 form of a phone number; numbers without a country code use ``default_region``."""
    if not isinstance(raw, str) or not raw.strip():
        raise IdentifierError("a phone number is empty")
    _reject_control_characters(raw, "the phone number")
    try:
        parsed = phonenumbers.parse(raw.strip(), default_region)
    except phonenumbers.NumberParseException as exc:
        raise IdentifierError(f"{raw.strip()!r} is not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise IdentifierError(f"{raw.strip()!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_spellings(e164: str) -> list[str]:
    """One number as it may be stored once separators are stripped: +4791234567, 004791234567,
    91234567. Compare against a column with spaces, dashes, dots and brackets removed."""
    parsed = phonenumbers.parse(e164)
    national = phonenumbers.national_significant_number(parsed)
    return list(dict.fromkeys([e164, f"00{e164[1:]}", national]))


PHONE_SEPARATORS = (" ", "-", ".", "(", ")", "\u00a0")


def try_normalise_phone(raw: object, default_region: str = "NO") -> str | None:
    if not isinstance(raw, str):
        return None
    try:
        return normalise_phone(raw, default_region)
    except IdentifierError:
        return None


def normalise_found(kind: str, raw: object, phone_region: str = "NO") -> str | None:
    """The normalised form of a value read from a source, to compare with the subject's."""
    if raw is None:
        return None
    if kind == IdentifierKind.EMAIL:
        return try_normalise_email(raw)
    if kind == IdentifierKind.PHONE:
        return try_normalise_phone(raw, phone_region)
    text = str(raw).strip()
    return text or None


def spellings(identifier: Identifier) -> list[str]:
    """How an identifier may be stored, for an exact pre-filter (never a fuzzy one)."""
    if identifier.kind == IdentifierKind.EMAIL:
        return email_spellings(identifier.value)
    if identifier.kind == IdentifierKind.PHONE:
        return phone_spellings(identifier.value)
    return [identifier.value]


def mask_email(normalised: str) -> str:
    """``alice@example.com`` -> ``a***@example.com``: for logs and artifacts."""
    local, _, domain = normalised.rpartition("@")
    return f"{local[:1]}***@{domain}"


def mask_identifier(identifier: Identifier) -> str:
    if identifier.kind == IdentifierKind.EMAIL:
        return f"email:{mask_email(identifier.value)}"
    return f"{identifier.kind}:***{identifier.value[-2:]}"
