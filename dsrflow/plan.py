"""What a request that changes data will do, record by record, and what was done.

A plan is built from discovered records (erasure, rectification, restriction), shown to the
officer, approved, then handed to each connector's ``erase``/``rectify``/``restrict``. Connectors
answer with an ``ExecutionReport``; executing an action twice must be harmless (idempotent).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Action(StrEnum):
    DELETE = "delete"  # the whole record goes
    REDACT = "redact"  # only the named fields are masked
    KEEP = "keep"  # kept on purpose (legal hold), with a reason and a date
    RESTRICT = "restrict"  # kept, marked so that nothing processes it
    RECTIFY = "rectify"  # fields set to corrected values
    NOT_APPLICABLE = "not_applicable"  # e.g. rectifying a sent e-mail


class PlannedAction(BaseModel):
    model_config = ConfigDict(frozen=True)

    record_id: str = Field(description="source:location:native id, as in the export")
    source: str
    location: str
    native_id: dict[str, Any]
    action: Action
    fields: dict[str, Any] = Field(
        default_factory=dict,
        description="redact: field -> masking strategy name; rectify: field -> new value",
    )
    reason: str | None = None
    keep_until: dt.date | None = None
    hints: dict[str, Any] = Field(
        default_factory=dict,
        description="where the source saw the record (e.g. mailboxes), to find it with fewer "
        "requests; verification by discovering again catches anything a hint missed",
    )


class Outcome(StrEnum):
    DONE = "done"
    ALREADY_DONE = "already_done"  # e.g. a 404 for something deleted before: idempotent success
    SKIPPED = "skipped"  # refused on purpose (it changed since planning, a hold): see detail
    FAILED = "failed"


class ActionResult(BaseModel):
    record_id: str
    outcome: Outcome
    detail: str | None = None
    remains: str | None = Field(
        default=None,
        description="what the vendor still keeps after a DONE action (e.g. a mail in "
        "Recoverable Items, old values in an issue's history) and the step that finishes it",
    )
    requested_at: str | None = Field(
        default=None,
        description="when the vendor recorded a deletion it carries out later, as it answered "
        "(Google Analytics' deletionRequestTime)",
    )


class ExecutionReport(BaseModel):
    source: str
    results: list[ActionResult] = Field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True only if every action is done (now or before): anything else keeps it open."""
        return all(r.outcome in (Outcome.DONE, Outcome.ALREADY_DONE) for r in self.results)

    def count(self, outcome: Outcome) -> int:
        return sum(r.outcome == outcome for r in self.results)
