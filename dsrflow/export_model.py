"""The portable access export (Art. 15, 20), as pydantic models.

``dsrflow/schemas/export.schema.json`` is generated from these models (``dsr schema export``) and
a test keeps the two equal; every export file carries a ``$schema`` reference to it.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dsrflow.config import Controller
from dsrflow.manual import ManualSourceAnswer

SCHEMA_FILE = "export.schema.json"
SCHEMA_ID = "urn:dsrflow:schema:export:1"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestInfo(_Doc):
    id: str
    type: str
    received_at: str
    due_at: str
    generated_at: str


class PurposeInfo(_Doc):
    purpose: str
    legal_basis: str
    categories: list[str]


class RetentionInfo(_Doc):
    category: str
    retention: str


class SourceOfData(_Doc):
    source: str
    location: str
    collected_from: str


class Art15Information(_Doc):
    """GDPR Art. 15(1)(a)-(h), in that order."""

    purposes: list[PurposeInfo] = Field(description="(a) purposes and their legal basis")
    categories: list[str] = Field(description="(b) categories of personal data concerned")
    recipients: list[dict[str, Any]] = Field(description="(c) recipients or their categories")
    retention: list[RetentionInfo] = Field(description="(d) how long, or the criteria")
    rights: list[str] = Field(description="(e) rectification, erasure, restriction, objection")
    complaint: dict[str, str] = Field(description="(f) the supervisory authority")
    sources: list[SourceOfData] = Field(description="(g) where data not from the subject came from")
    automated_decision_making: str = Field(description="(h) automated decisions, profiling")


class RecordPart(_Doc):
    """The fields of one record that belong to one category, with the record's provenance."""

    record: str = Field(description="source:location:native id; the same in every category")
    location: str
    native_id: dict[str, Any]
    fields: dict[str, Any]
    timestamps: dict[str, str] = Field(description="field -> UTC ISO 8601")
    matched: list[str] = Field(description="the subject's identifiers found in this record")
    reached_via: str | None = Field(description="the link that led here, for indirect records")
    shared: bool = Field(description="also holds or links to other people's data (Art. 15(4))")
    shared_with: list[str]


class FieldOfRecord(_Doc):
    """One field of a record, with its data category beside it."""

    name: str
    value: Any
    category: str = Field(description="the data category of this field (e.g. user.contact.email)")
    timestamp: str | None = Field(
        default=None, description="UTC ISO 8601, where the field's value is a point in time"
    )


class WholeRecord(_Doc):
    """One record whole (a table row, a spreadsheet row, a message, a ticket): every field in
    the source's order, each with its category. The same record's fields are split by category
    in ``records``; both views hold the same fields."""

    record: str = Field(description="source:location:native id, as in ``records``")
    source: str
    location: str
    native_id: dict[str, Any]
    fields: list[FieldOfRecord]
    matched: list[str] = Field(description="the subject's identifiers found in this record")
    reached_via: str | None = Field(description="the link that led here, for indirect records")
    shared: bool = Field(description="also holds or links to other people's data (Art. 15(4))")
    shared_with: list[str]


class SummaryRow(_Doc):
    source: str
    location: str
    records: int
    shared: int


class AccessExport(_Doc):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    schema_ref: str = Field(alias="$schema", default=SCHEMA_FILE)
    format: str = Field(default="dsrflow-access-export/1")
    request: RequestInfo
    controller: Controller
    subject: dict[str, list[str]] = Field(description="the identifiers the request was made with")
    information: Art15Information
    summary: list[SummaryRow]
    total_records: int
    records: dict[str, dict[str, list[RecordPart]]] = Field(
        description="source -> data category -> the parts of records in that category"
    )
    whole_records: list[WholeRecord] = Field(
        default_factory=list,
        description="every record once, whole, with each field's category beside it: the same "
        "fields as ``records``, one entry per record",
    )
    not_searched: dict[str, list[str]] = Field(
        default_factory=dict,
        description="source -> what it could not search, and why (e.g. a mailbox the vendor's "
        "API cannot reach): the records above do not cover it",
    )
    manual_sources: list[ManualSourceAnswer] = Field(
        default_factory=list,
        description="places without an API (devices, paper) that a person searched, with "
        "what they found; a found record's file travels in this folder",
    )


def export_json_schema() -> dict[str, Any]:
    schema = AccessExport.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    return schema


def export_json_schema_text() -> str:
    return json.dumps(export_json_schema(), indent=2, sort_keys=True) + "\n"
