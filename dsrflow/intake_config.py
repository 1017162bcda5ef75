"""The ``intake`` section of the config: where new data-subject requests arrive.

Two channels, each optional and each read through a source the config already has (its
credentials and URL): a Jira Service Management desk, where one request type carries privacy
requests, and a mailbox folder that privacy mail lands in (a transport rule or the officer
moves it there).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from dsrflow.strict import StrictModel


class ServiceDeskIntake(StrictModel):
    """Requests of one request type on one service desk."""

    source: str = Field(description="the name of the `kind: jira` source in `sources` to read")
    project: str = Field(
        min_length=1, description="the service desk's project key, e.g. SUP (not its name)"
    )
    request_type: str = Field(
        default="Privacy request",
        min_length=1,
        description="the name of the request type that carries privacy requests, exactly as "
        "the desk's portal shows it (compared without regard to case)",
    )


class MailboxIntake(StrictModel):
    """New messages in one folder of one mailbox."""

    source: str = Field(description="the name of the `kind: mail` source in `sources` to read")
    mailbox: str = Field(
        min_length=3, description="the mailbox's address, e.g. privacy@example.com"
    )
    folder: str = Field(
        default="Inbox",
        min_length=1,
        description="the folder's display name (at the top level of the mailbox; compared "
        "without regard to case), e.g. Inbox or Privacy requests",
    )


class IntakeSettings(StrictModel):
    """Where the scheduled ``intake`` flow reads new requests."""

    servicedesk: ServiceDeskIntake | None = Field(
        default=None, description="the service desk channel; none: not read"
    )
    mailbox: MailboxIntake | None = Field(
        default=None, description="the mailbox channel; none: not read"
    )
    lookback_days: int = Field(
        default=35,
        gt=0,
        le=366,
        description="mail received this many days back is read on every run (a run that "
        "missed some days still finds it; what is older is not read); service desk requests of "
        "the request type are read whatever their age",
    )
    confirm_timeout_hours: int = Field(
        default=168,
        gt=0,
        description="how long a confirm-request run waits for the officer's form; the request "
        "stays in the ledger as received and can be confirmed with `dsr intake confirm`",
    )

    def problems(self, sources: Mapping[str, Any]) -> list[str]:
        """What is wrong with the channels against the config's ``sources``."""
        found = []
        for key, channel, kind in (
            ("servicedesk", self.servicedesk, "jira"),
            ("mailbox", self.mailbox, "mail"),
        ):
            if channel is None:
                continue
            source = sources.get(channel.source)
            if source is None:
                found.append(f"intake.{key}.source: no source named {channel.source!r}")
            elif source.kind != kind:
                found.append(
                    f"intake.{key}.source: {channel.source!r} is a {source.kind} source, not {kind}"
                )
        return found
