"""The mapping of the Atlassian Marketplace: what its licences and transactions hold, and why
erasure, rectification and restriction cannot change them (Atlassian holds them)."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from dsrflow.mapping.common import BaseMapping, DataCategory, plan_action
from dsrflow.plan import Action, PlannedAction
from dsrflow.records import Record

Location = Literal["licenses", "transactions"]
# What an exported record holds, and its default category (a mapping may override any).
DEFAULT_CATEGORIES: dict[str, str] = {
    "technical_contact": "user.contact",
    "billing_contact": "user.contact",
    "partner_billing_contact": "user.contact",
    "company": "user.employer",
    "country": "user.contact.address",
    "region": "user.contact.address",
    "licence": "system.operations",
    "purchase": "user.financial",
    "partner": "system.operations",
    "other_contacts": "system.operations",
}
KEEP_REASON = (
    "held by Atlassian as the Marketplace's records: the vendor can read them but not change "
    "or delete them; the subject can ask Atlassian (https://www.atlassian.com/legal/"
    "privacy-policy, 'Your rights') to erase or correct them"
)


def _every_report() -> list[Location]:
    return ["licenses", "transactions"]


class MarketplaceMapping(BaseMapping):
    kind: Literal["marketplace"]
    read_only: ClassVar[bool] = True  # Atlassian's records: every plan keeps
    search: list[Location] = Field(
        default_factory=_every_report,
        min_length=1,
        description="which reports are searched: licenses, transactions",
    )
    fields: dict[str, DataCategory] = Field(
        default_factory=dict, description="record field -> data category, over the defaults"
    )
    origin: str = Field(
        default="the Atlassian Marketplace", description="Art. 15(1)(g): where the data came from"
    )
    keep_reason: str = Field(
        default=KEEP_REASON,
        min_length=1,
        description="why erasure and rectification leave the records, and what the subject can do",
    )

    @model_validator(mode="after")
    def _categories_declared(self) -> MarketplaceMapping:
        problems = [
            f"fields.{name}: category {category!r} is not declared under categories"
            for name, category in self.category_map().items()
            if not self.declares(category)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def category_map(self) -> dict[str, str]:
        return {**DEFAULT_CATEGORIES, **self.fields}

    def lookup_kinds(self) -> frozenset[str]:
        """Licences and transactions name their contacts by address."""
        return frozenset({"email"})

    def collected_from(self, location: str) -> str:
        return self.origin

    def plan_erasure(self, record: Record, today: dt.date) -> PlannedAction:
        """Always kept: Atlassian's records; the receipt says so and what the subject can do.
        Copies the vendor made (on-prem licences, sheets) are planned by their own sources."""
        return plan_action(record, Action.KEEP, reason=self.keep_reason)

    def plan_rectification(
        self, record: Record, corrections: dict[str, str]
    ) -> PlannedAction | None:
        return plan_action(record, Action.NOT_APPLICABLE, reason=self.keep_reason)
