"""The mapping of Google Analytics: pseudonymous usage data held under a client id or user id,
which the API can delete but not return."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from dsrflow.mapping.common import BaseMapping, DataCategory, plan_action
from dsrflow.plan import Action, PlannedAction
from dsrflow.records import Record
from dsrflow.request import ANALYTICS_CLIENT_ID, ANALYTICS_USER_ID, Subject

# The subject's identifier kind -> the User Deletion API's id type.
ID_TYPES = {ANALYTICS_CLIENT_ID: "CLIENT_ID", ANALYTICS_USER_ID: "USER_ID"}
NOT_RETRIEVABLE = (
    "Google Analytics holds pseudonymous usage data under a client id or user id; its API "
    "deletes it but cannot return it per person, so it is not in this export"
)


class AnalyticsMapping(BaseMapping):
    kind: Literal["analytics"]
    category: DataCategory = Field(
        default="user.behavior", description="the category of what Analytics holds"
    )
    access_note: str = Field(
        default=NOT_RETRIEVABLE,
        min_length=1,
        description="what an access export says of Analytics (Art. 15: why nothing is listed)",
    )

    def lookup_kinds(self) -> frozenset[str]:
        """Analytics cannot look anyone up; its answer names the subject's Analytics ids, so it
        is given again when a round finds one."""
        return frozenset(ID_TYPES)

    def plan_deletions(self, source: str, subject: Subject) -> list[PlannedAction]:
        """One deletion request per Analytics id of the subject (there are no records to plan
        from: the API cannot look a person up)."""
        return [
            PlannedAction(
                record_id=f"{source}:users:{ID_TYPES[i.kind]}={i.value}",
                source=source,
                location="users",
                native_id={"type": ID_TYPES[i.kind], "userId": i.value},
                action=Action.DELETE,
                reason="user deletion request (Analytics deletes everything under this id)",
            )
            for kind in ID_TYPES
            for i in subject.of_kind(kind)
        ]

    def explain_access(self, subject: Subject) -> str:
        """The access note, and the Analytics ids the request names (the data is held under
        them, and a deletion would be filed for them), so the subject sees which ids count."""
        ids = [f"{ID_TYPES[i.kind]} {i.value}" for kind in ID_TYPES for i in subject.of_kind(kind)]
        named = (
            "the request names the Analytics ids " + ", ".join(ids)
            if ids
            else "the request names no Analytics id (Analytics cannot be searched by address)"
        )
        return f"{self.access_note}; {named}"

    def plan_erasure(self, record: Record, today: dt.date) -> PlannedAction:
        return plan_action(record, Action.DELETE, reason="user deletion request")
