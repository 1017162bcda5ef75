"""The mapping of Office 365 mail: which mailboxes, how a message is matched, what a record
holds, and what erasure may do."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from dsrflow.mapping.common import BaseMapping, DataCategory, Duration, Strict, plan_action
from dsrflow.plan import Action, PlannedAction
from dsrflow.records import Record


class RecordPart(StrEnum):
    """The parts of a message a record may carry."""

    SUBJECT = "subject"
    DATES = "dates"
    PARTICIPANTS = "participants"
    FOLDER = "folder"
    BODY = "body"
    ATTACHMENTS = "attachments"  # names, types and sizes; content only with attachment_content


class ErasureMode(StrEnum):
    PERMANENT_DELETE = "permanentDelete"  # gone from the mailbox (Recoverable Items purges it)
    DELETE = "delete"  # moved to Deleted Items


class PlusAddressing(StrEnum):
    DISTINCT = "distinct"  # al+x@example.com is someone else than al@example.com
    SAME = "same"  # al+x@example.com is al@example.com with a tag


class Mailboxes(Strict):
    """Either a named list of mailboxes or every user of the tenant (``GET /users``)."""

    addresses: list[str] = Field(default_factory=list, description="mailbox addresses (UPNs)")
    all_users: bool = Field(default=False, description="search every mailbox of the tenant")

    @model_validator(mode="after")
    def _one_way(self) -> Mailboxes:
        if bool(self.addresses) == self.all_users:
            raise ValueError("give either addresses or all_users: true")
        return self


class Matching(Strict):
    mentions: bool = Field(
        default=False,
        description="also find messages that only mention the address in subject or body",
    )
    plus_addressing: PlusAddressing = PlusAddressing.DISTINCT
    participant_index: str | None = Field(
        default=None,
        description="an owner-only file for the index of sender and replyTo addresses (which "
        "KQL's participants does not cover), kept by Graph delta queries; none: mail naming "
        "the subject only there is not found",
    )


class RecordContent(Strict):
    parts: list[RecordPart] = Field(
        default_factory=lambda: [
            RecordPart.SUBJECT,
            RecordPart.DATES,
            RecordPart.PARTICIPANTS,
            RecordPart.FOLDER,
            RecordPart.BODY,
            RecordPart.ATTACHMENTS,
        ],
        min_length=1,
    )
    attachment_content: bool = Field(
        default=False, description="include attachment content (base64) up to the size cap"
    )
    attachment_max_bytes: int = Field(
        default=5 * 1024 * 1024, ge=0, description="larger attachments are listed without content"
    )
    mask_other_participants: bool = Field(
        default=True,
        description="Art. 15(4): other people's addresses and names masked (j***@example.com)",
    )


class FolderHold(Strict):
    """Messages in this folder are kept for a time, whatever the request (e.g. contracts)."""

    folder: str = Field(min_length=1, description="folder display name, e.g. Contracts")
    reason: str = Field(min_length=1)
    duration: Duration
    counts_from: Literal["receivedDateTime", "sentDateTime"] = "receivedDateTime"

    def held_until(self, start: dt.date) -> dt.date:
        return start + self.duration.as_delta()


class MailErasure(Strict):
    mode: ErasureMode = ErasureMode.PERMANENT_DELETE
    legal_holds: list[FolderHold] = Field(default_factory=list)


class MailRetentionRule(Strict):
    """Messages older than ``max_age`` are deleted, the way erasure deletes (``erasure.mode``).

    A folder under a legal hold keeps its messages until the hold has ended too.
    """

    description: str | None = Field(default=None, description="why the rule exists")
    folders: list[str] | None = Field(
        default=None,
        min_length=1,
        description="folder display names (any depth, case-insensitive, as for legal holds); "
        "none: every folder that no other rule names",
    )
    max_age: Duration = Field(description="how long a message may stay (years/months/days)")
    counts_from: Literal["receivedDateTime", "sentDateTime"] = Field(
        default="receivedDateTime", description="the date of the message the age counts from"
    )


class FieldCategories(Strict):
    """The data category of each part of a record."""

    subject: DataCategory = "user.communication.email.subject"
    dates: DataCategory = "system.operations"
    participants: DataCategory = "user.contact.email"
    folder: DataCategory = "system.operations"
    body: DataCategory = "user.communication.email.body"
    attachments: DataCategory = "user.communication.email.attachment"


class MailMapping(BaseMapping):
    kind: Literal["mail"]
    mailboxes: Mailboxes
    matching: Matching = Matching()
    record: RecordContent = RecordContent()
    field_categories: FieldCategories = FieldCategories()
    erasure: MailErasure = MailErasure()
    retention: list[MailRetentionRule] = Field(
        default_factory=list,
        description="retention rules the sweep applies: old mail is deleted (erasure.mode)",
    )
    collected_from_: str = Field(
        default="the data subject and the people who wrote to or with them",
        alias="collected_from",
        description="Art. 15(1)(g): where mail comes from",
    )

    @model_validator(mode="after")
    def _categories_declared(self) -> MailMapping:
        problems = [
            f"field_categories.{part}: {category!r} is not declared under categories "
            "(nor is any parent of it)"
            for part, category in self.field_categories.model_dump().items()
            if not self.declares(category)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _one_rule_per_folder(self) -> MailMapping:
        catch_all = [i for i, rule in enumerate(self.retention) if rule.folders is None]
        if len(catch_all) > 1:
            raise ValueError(f"retention.{catch_all[1]}: only one rule may leave out folders")
        seen: dict[str, int] = {}
        for index, rule in enumerate(self.retention):
            for folder in rule.folders or []:
                if folder.lower() in seen:
                    raise ValueError(
                        f"retention.{index}: folder {folder!r} is already named by rule "
                        f"{seen[folder.lower()]}"
                    )
                seen[folder.lower()] = index
        return self

    def retention_rule_for(self, folder: str) -> MailRetentionRule | None:
        """The rule that names ``folder``, else the rule for every other folder, if any."""
        named = [r for r in self.retention if r.folders is not None]
        for rule in named:
            if folder.lower() in (f.lower() for f in rule.folders or []):
                return rule
        return next((r for r in self.retention if r.folders is None), None)

    def hold_for(self, folder: str) -> FolderHold | None:
        return next(
            (h for h in self.erasure.legal_holds if h.folder.lower() == folder.lower()), None
        )

    def lookup_kinds(self) -> frozenset[str]:
        """Mail is searched by address only (participants, and mentions where asked)."""
        return frozenset({"email"})

    def collected_from(self, location: str) -> str:
        return self.collected_from_

    def plan_erasure(self, record: Record, today: dt.date) -> PlannedAction:
        """Delete the message everywhere it is, unless a copy sits in a folder under a legal
        hold that has not ended. Other participants do not stop the subject's erasure: each
        mailbox's copy is the controller's record of the exchange, not theirs."""
        for place in record.fields.get("locations", []):
            folder = str(place).split("/", 1)[-1]
            hold = self.hold_for(folder)
            if hold is None:
                continue
            stamp = record.timestamps.get(hold.counts_from) or record.fields.get(hold.counts_from)
            start = dt.date.fromisoformat(str(stamp)[:10]) if stamp else today
            until = hold.held_until(start)
            if until > today:
                return plan_action(record, Action.KEEP, reason=hold.reason, keep_until=until)
        mailboxes = sorted({str(p).split("/", 1)[0] for p in record.fields.get("locations", [])})
        return plan_action(record, Action.DELETE, hints={"mailboxes": mailboxes})

    def plan_rectification(
        self, record: Record, corrections: dict[str, str]
    ) -> PlannedAction | None:
        return plan_action(
            record,
            Action.NOT_APPLICABLE,
            reason="an e-mail is a record of what was written and is not rewritten; the "
            "correction applies to the other sources",
        )
