"""The config's ``identity`` and ``delivery`` sections: how the requester's identity is
verified (Art. 12(6)) and how the answer reaches them. Models only, so that the config can hold
them without importing the ledger or the connectors."""

from __future__ import annotations

from pydantic import Field, field_validator

from dsrflow.identifiers import normalise_email
from dsrflow.strict import StrictModel


class IdentityPolicy(StrictModel):
    """Art. 12(6): no export leaves and no erasure runs before the requester is known to be the
    subject; how that was established is recorded in the ledger."""

    required: bool = Field(
        default=True,
        description="refuse delivery and the execution of an erasure, rectification or consent "
        "withdrawal until the request's identity is verified. Only the sandbox (whose subjects "
        "are invented) sets false; every request then records `identity_not_required` in the "
        "ledger, so the skip is never silent",
    )
    mail_source: str | None = Field(
        default=None,
        description="the `kind: mail` source whose app sends the one-time code (Graph "
        "sendMail; its app needs the Mail.Send application permission)",
    )
    sender: str | None = Field(
        default=None,
        description="the officer's mailbox the one-time code (and a mailed delivery) is sent "
        "from, e.g. privacy@example.com",
    )
    code_ttl_hours: float = Field(
        default=24, gt=0, le=24 * 14, description="hours a one-time code stays valid"
    )
    max_attempts: int = Field(
        default=5, ge=1, le=20, description="wrong entries of a code before it is void"
    )

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        return normalise_email(value) if value else None


class DeliveryPolicy(StrictModel):
    """How an export goes back to the subject."""

    jira_source: str | None = Field(
        default=None,
        description="the `kind: jira` source whose service desk receives the archive as an "
        "attachment of the subject's own request (`dsr deliver --via jira`)",
    )
    retention_days: int = Field(
        default=7,
        ge=0,
        description="days an export folder is kept after it was delivered; the retention sweep "
        "removes it then (or export_retention_days after it was written, whichever is first)",
    )
