"""A data-subject request: who asks, for what, and by when it must be answered."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, date, datetime
from enum import StrEnum

from dateutil.relativedelta import relativedelta
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dsrflow.identifiers import (  # the Analytics kinds are here for their users
    ANALYTICS_CLIENT_ID,
    ANALYTICS_USER_ID,
    Identifier,
    IdentifierError,
    IdentifierKind,
    mask_identifier,
    normalise_analytics_client_id,
    normalise_analytics_user_id,
    normalise_email,
    normalise_phone,
)

REQUEST_ID_PATTERN = re.compile(r"^DSR-\d{4}-\d{4,}$")
JIRA_ACCOUNT = "jira_account_id"
# A Jira Cloud accountId ("5b10ac8d82e05b22cc7d4ef5", "557058:f581…", "qm:…:…") or a Data
# Center user name: at most 128 characters, none of them blank or a control character.
_JIRA_ACCOUNT = re.compile(r"^[^\s\x00-\x1f\x7f]{1,128}$")


def normalise_jira_account(raw: str) -> str:
    """An account id as typed, trimmed; compared as exact text (ids are case-sensitive)."""
    value = raw.strip()
    if not _JIRA_ACCOUNT.match(value):
        raise IdentifierError(
            "a Jira account id is 1 to 128 characters without spaces "
            "(e.g. 5b10ac8d82e05b22cc7d4ef5)"
        )
    return value


class RequestType(StrEnum):
    ACCESS = "access"
    ERASURE = "erasure"
    RECTIFICATION = "rectification"
    RESTRICTION = "restriction"
    CONSENT_WITHDRAWAL = "consent_withdrawal"


class Subject(BaseModel):
    """The person a request is about, by normalised identifiers.

    ``name`` is only a weak hint for a human reader: no connector matches on it.
    """

    model_config = ConfigDict(frozen=True)

    emails: tuple[str, ...]
    phones: tuple[str, ...] = ()
    others: tuple[Identifier, ...] = Field(
        default=(), description="identifiers found on the way, e.g. a Jira accountId"
    )
    name: str | None = None

    @classmethod
    def from_raw(
        cls,
        emails: list[str] | tuple[str, ...],
        phones: list[str] | tuple[str, ...] = (),
        name: str | None = None,
        phone_region: str = "NO",
        jira_accounts: list[str] | tuple[str, ...] = (),
        analytics_client_ids: list[str] | tuple[str, ...] = (),
        analytics_user_ids: list[str] | tuple[str, ...] = (),
    ) -> Subject:
        """Validate and normalise what an officer typed; IdentifierError names the culprit.

        ``jira_accounts``: Jira account ids the officer confirmed as the subject's (where Jira
        hides an account's address, the id is how the Jira source knows it).
        ``analytics_client_ids`` / ``analytics_user_ids``: the subject's Google Analytics ids
        (pseudonymous: Analytics cannot be searched by address; the subject or a consent
        record gives them)."""
        if not emails:
            raise IdentifierError("a request needs at least one e-mail address of the subject")
        normalised = tuple(dict.fromkeys(normalise_email(e) for e in emails))
        phone_values = tuple(dict.fromkeys(normalise_phone(p, phone_region) for p in phones))
        others = tuple(
            dict.fromkeys(
                [
                    Identifier(kind=JIRA_ACCOUNT, value=normalise_jira_account(a))
                    for a in jira_accounts
                ]
                + [
                    Identifier(kind=ANALYTICS_CLIENT_ID, value=normalise_analytics_client_id(c))
                    for c in analytics_client_ids
                ]
                + [
                    Identifier(kind=ANALYTICS_USER_ID, value=normalise_analytics_user_id(u))
                    for u in analytics_user_ids
                ]
            )
        )
        return cls(
            emails=normalised,
            phones=phone_values,
            others=others,
            name=(name or "").strip() or None,
        )

    @property
    def identifiers(self) -> frozenset[Identifier]:
        return frozenset(
            [Identifier(kind=IdentifierKind.EMAIL, value=e) for e in self.emails]
            + [Identifier(kind=IdentifierKind.PHONE, value=p) for p in self.phones]
            + list(self.others)
        )

    def of_kind(self, kind: str) -> list[Identifier]:
        return sorted((i for i in self.identifiers if i.kind == kind), key=str)

    def expanded(self, found: set[Identifier]) -> Subject:
        """The same subject with identifiers found in its records added."""
        new = found - self.identifiers
        if not new:
            return self
        return self.model_copy(
            update={
                "emails": self.emails + tuple(sorted(i.value for i in new if i.kind == "email")),
                "phones": self.phones + tuple(sorted(i.value for i in new if i.kind == "phone")),
                "others": self.others
                + tuple(sorted((i for i in new if i.kind not in ("email", "phone")), key=str)),
            }
        )

    def masked(self) -> list[str]:
        return sorted(mask_identifier(i) for i in self.identifiers)


class Extension(BaseModel):
    """Art. 12(3): up to two further months, with a reason told to the subject."""

    months: int = Field(default=2, ge=1, le=2)
    reason: str = Field(min_length=1)


class DataSubjectRequest(BaseModel):
    """One request as received. ``due_at`` is derived: received_at + 1 month (+ extension)."""

    id: str
    type: RequestType
    subject: Subject
    received_at: datetime
    extension: Extension | None = None

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not REQUEST_ID_PATTERN.match(value):
            raise ValueError(f"request id {value!r} must look like DSR-2026-0042")
        return value

    @field_validator("received_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @model_validator(mode="after")
    def _not_in_future(self) -> DataSubjectRequest:
        if self.received_at > datetime.now(UTC) + relativedelta(days=1):
            raise ValueError("received_at lies in the future")
        return self

    @property
    def due_at(self) -> date:
        return due_date(self.received_at, self.extension.months if self.extension else 0)


def due_date(received_at: datetime, extension_months: int = 0) -> date:
    """Art. 12(3): one month from receipt, plus an extension of up to two more."""
    return (received_at + relativedelta(months=1 + extension_months)).date()


def new_request_id(now: datetime | None = None) -> str:
    """A fresh id when the officer gives none: the year, the day of the year and five random
    digits (``DSR-2026-33504917``): short enough for a letter, sortable by day, and two ids made
    in the same second differ but for a 1 in 100,000 chance, which the ledger then catches (the
    command line draws again when an id is taken)."""
    now = now or datetime.now(UTC)
    return f"DSR-{now:%Y}-{now:%j}{secrets.randbelow(100_000):05d}"


__all__ = [
    "DataSubjectRequest",
    "Extension",
    "IdentifierError",
    "RequestType",
    "Subject",
    "new_request_id",
]
