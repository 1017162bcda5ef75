"""The mapping of a Jira service desk: which projects, where to confirm matches, what erasure
and restriction do there."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from connectors.jira.accounts import planned_reason
from dsrflow.mapping.common import (
    BaseMapping,
    DataCategory,
    Duration,
    LegalHold,
    Strict,
    plan_action,
)
from dsrflow.plan import Action, PlannedAction
from dsrflow.records import Record
from dsrflow.request import JIRA_ACCOUNT, Identifier, Subject

CUSTOM_FIELD = re.compile(r"^customfield_\d+$")
TEXT_FIELDS = ("summary", "description", "comments")
# What an exported record holds, and its default category (a mapping may override any of them).
DEFAULT_CATEGORIES: dict[str, str] = {
    "key": "system.operations",
    "status": "system.operations",
    "created": "system.operations",
    "request_type": "system.operations",
    "labels": "system.operations",
    "role": "user.support",
    "summary": "user.support.content",
    "description": "user.support.content",
    "body": "user.support.content",
    "issue": "system.operations",
    "author": "user.support",
    "servicedesk": "user.support",
    "display_name": "user.name",
    "email": "user.contact.email",
    "account_id": "user.unique_id",
}


class ErasureMode(StrEnum):
    """``anonymise``: pseudonymise the subject in the texts, drop them as participant and
    customer, keep the support history. ``delete_unshared``: delete the requests they reported
    where nobody else took part (others are anonymised)."""

    ANONYMISE = "anonymise"
    DELETE_UNSHARED = "delete_unshared"


class JiraErasure(Strict):
    mode: ErasureMode = ErasureMode.ANONYMISE
    pseudonym_prefix: str = Field(
        default="subject",
        pattern=r"^[a-z][a-z0-9-]*$",
        description="the pseudonym written is [<prefix>-<4 hex digits>]",
    )
    reporter_replacement: str | None = Field(
        default=None,
        description="accountId that becomes the reporter of anonymised requests; none: empty",
    )
    delete_customer_accounts: bool = Field(
        default=True,
        description="after removing the subject from the service desks, delete their own "
        "portal-only customer account (found by their exact address) from Jira's users; agent "
        "and staff accounts are never deleted (needs site administration)",
    )


class JiraRetentionRule(Strict):
    """Resolved requests older than ``max_age`` (counted from their resolution) are deleted or
    anonymised; unresolved ones never go."""

    description: str | None = Field(default=None, description="why the rule exists")
    max_age: Duration = Field(description="how long after its resolution a request may stay")
    counts_from: Literal["resolutiondate"] = Field(
        default="resolutiondate", description="the date the age counts from: the resolution"
    )
    statuses: list[str] | None = Field(
        default=None,
        min_length=1,
        description="only requests in these statuses (e.g. Closed); none: any resolved request",
    )
    action: Literal["delete", "anonymise"] = Field(
        default="delete",
        description="delete the request, or anonymise everyone in it as erasure does",
    )


class JiraMapping(BaseMapping):
    kind: Literal["jira"]
    projects: list[str] = Field(
        min_length=1, description="project keys of the service desks searched (e.g. SUP)"
    )
    match_in: list[str] = Field(
        default_factory=lambda: list(TEXT_FIELDS),
        description="where the subject's identifiers are confirmed: summary, description, "
        "comments and custom fields (customfield_10050)",
    )
    fields: dict[str, DataCategory] = Field(
        default_factory=dict,
        description="record field -> data category, over the defaults; custom fields too",
    )
    mask_others: bool = Field(
        default=True,
        description="mask other people's addresses, names and mentions in exported texts "
        "(Art. 15(4))",
    )
    erasure: JiraErasure = JiraErasure()
    restriction_label: str = Field(default="gdpr-restricted", pattern=r"^\S+$")
    legal_hold: LegalHold | None = None
    retention: list[JiraRetentionRule] = Field(
        default_factory=list, description="retention rules the sweep applies to resolved requests"
    )
    origin: str = Field(
        default="the data subject", description="Art. 15(1)(g): where the data came from"
    )

    # The accounts of the addresses it is given are found and searched by in one discovery.
    resolves_kinds: ClassVar[frozenset[str]] = frozenset({JIRA_ACCOUNT})

    def lookup_kinds(self) -> frozenset[str]:
        """Users and service-desk customers by address, issues by account id (and mentions of
        either); phone numbers are only told apart from other people's, never searched."""
        return frozenset({"email", JIRA_ACCOUNT})

    @field_validator("projects")
    @classmethod
    def _project_keys(cls, value: list[str]) -> list[str]:
        bad = [p for p in value if not re.fullmatch(r"[A-Z][A-Z0-9_]+", p)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a Jira project key (upper case, e.g. SUP)")
        return value

    @field_validator("match_in")
    @classmethod
    def _known_fields(cls, value: list[str]) -> list[str]:
        bad = [f for f in value if f not in TEXT_FIELDS and not CUSTOM_FIELD.match(f)]
        if bad:
            raise ValueError(f"{bad[0]!r}: use summary, description, comments or customfield_NNNNN")
        return value

    @model_validator(mode="after")
    def _categories_declared(self) -> JiraMapping:
        problems = [
            f"fields.{name}: category {category!r} is not declared under categories"
            for name, category in self.category_map().items()
            if not self.declares(category)
        ]
        if self.legal_hold and self.legal_hold.counts_from not in ("created", "updated"):
            problems.append("legal_hold.counts_from: use created or updated")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def category_map(self) -> dict[str, str]:
        categories = dict(DEFAULT_CATEGORIES)
        categories.update({f: "user.support.content" for f in self.match_in if f != "comments"})
        categories.update(self.fields)
        return categories

    def category_of(self, field: str) -> str:
        return self.category_map().get(field, "system.operations")

    def collected_from(self, location: str) -> str:
        return self.origin

    def hold_until(self, fields: dict[str, Any]) -> dt.date | None:
        """The day the legal hold on an issue with these fields (UTC ISO 8601 times) ends, or
        None without a hold or without the date it counts from."""
        hold = self.legal_hold
        raw = fields.get(hold.counts_from) if hold else None
        if not hold or not raw:
            return None
        start = dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        return hold.ends_on(start.astimezone(dt.UTC).date() if start.tzinfo else start.date())

    def subject_at_hold_end(
        self, subject: Subject, plan: Sequence[PlannedAction]
    ) -> Subject | None:
        """The subject's addresses and the accounts the plan confirmed as theirs (its customer
        records): the erasure deletes a portal-only account, and at the hold's end it must
        still know whose comments and mentions these are."""
        accounts = sorted(
            {
                str(a.native_id["account_id"])
                for a in plan
                if a.location == "customers" and "account_id" in a.native_id
            }
            - {i.value for i in subject.of_kind(JIRA_ACCOUNT)}
        )
        extra = tuple(Identifier(kind=JIRA_ACCOUNT, value=a) for a in accounts)
        return subject.model_copy(update={"others": (*subject.others, *extra)})

    def plan_erasure(self, record: Record, today: dt.date) -> PlannedAction:
        """Issues and comments under the legal hold are kept until it ends; a customer is
        removed (and their own portal-only account deleted); the subject's own comments are
        deleted and others' pseudonymised; an issue is anonymised, or deleted where the mode
        says so and nobody else took part."""
        until = self.hold_until(record.fields) if record.location != "customers" else None
        if until and until > today:
            assert self.legal_hold
            return plan_action(record, Action.KEEP, reason=self.legal_hold.reason, keep_until=until)
        if record.location == "customers":
            reason = planned_reason(
                record.fields.get("account_type"), self.erasure.delete_customer_accounts
            )
            return plan_action(record, Action.DELETE, reason=reason)
        roles = record.fields.get("role", [])
        if record.location == "comments":
            if "commenter" in roles:
                return plan_action(record, Action.DELETE, reason="the subject's own comment")
            return plan_action(record, Action.REDACT, reason="pseudonymise mentions")
        if (
            self.erasure.mode == ErasureMode.DELETE_UNSHARED
            and not record.shared
            and "reporter" in roles
        ):
            return plan_action(record, Action.DELETE, reason="nobody else took part")
        return plan_action(record, Action.REDACT, reason="anonymise")
