"""The receipt for the subject of a request that changed data: what was erased, redacted,
corrected or restricted where, what was kept or left, why, and until when. Written owner-only,
beside the approved plan."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel, Field

from dsrflow.config import Controller
from dsrflow.copies import Removed
from dsrflow.export import write_private
from dsrflow.export_page import helpers, page_languages
from dsrflow.language import Language
from dsrflow.manual import ManualSourceAnswer
from dsrflow.plan import Action, ExecutionReport, Outcome, PlannedAction
from dsrflow.request import DataSubjectRequest


class ReceiptLine(BaseModel):
    source: str
    location: str
    record: str
    native_id: dict[str, Any] = Field(
        default_factory=dict, description="the source's own id, shown readably on the page"
    )
    action: str
    outcome: str
    fields: list[str] = Field(default_factory=list)
    reason: str | None = None
    keep_until: str | None = None
    at_hold_end: str | None = Field(
        default=None,
        description="a record kept under a legal hold: what the retention sweep does to it on "
        "keep_until (delete, redact); none: it is not erased then (it is someone else's too)",
    )
    remains: str | None = Field(
        default=None, description="what the vendor still keeps, and the step that finishes it"
    )
    requested_at: str | None = Field(
        default=None,
        description="when the vendor recorded the deletion request (e.g. Google Analytics' "
        "deletionRequestTime): done means requested; the vendor deletes later (remains)",
    )


class Receipt(BaseModel):
    request_id: str
    type: str
    received_at: str
    completed_at: str
    controller: Controller
    subject: dict[str, list[str]]
    approved_by: str | None = Field(
        description="the officer who approved the plan; none if no approval was needed"
    )
    recorded_by: str | None = Field(
        default=None, description="who carried out a request that needs no approval"
    )
    changed: list[ReceiptLine]
    kept: list[ReceiptLine] = Field(description="kept on purpose, or not applicable, with why")
    plan_sha256: str
    copies_removed: list[str] = Field(
        default_factory=list,
        description="dsrflow's own earlier copies of the subject's data (exports, plans) removed",
    )
    copies_remaining: list[str] = Field(
        default_factory=list, description="earlier copies that could not be removed, with why"
    )
    ledger_head: str | None = Field(
        default=None,
        description="SEQ:HASH of the ledger's audit chain when the receipt was written: "
        "`dsr ledger verify --head` with it shows any later rewrite of the chain",
    )
    manual_sources: list[ManualSourceAnswer] = Field(
        default_factory=list,
        description="places without an API (devices, paper): who looked, what they found and did",
    )

    @property
    def title(self) -> str:
        return TITLES.get(self.type, "Receipt")


TITLES = {
    "erasure": "Erasure receipt",
    "rectification": "Rectification receipt",
    "restriction": "Restriction receipt",
    "consent_withdrawal": "Consent withdrawal receipt",
}
CHANGING = (Action.DELETE, Action.REDACT, Action.RECTIFY, Action.RESTRICT)


def at_hold_end(action: PlannedAction) -> str | None:
    """The action queued for a held record's hold end (flows/changes.py ``after_hold``)."""
    after = action.hints.get("after_hold") or {}
    if action.action != Action.KEEP or action.keep_until is None:
        return None
    return str(after["action"]) if after.get("action") not in (None, Action.KEEP) else None


def build_receipt(
    request: DataSubjectRequest,
    controller: Controller,
    plan: Sequence[PlannedAction],
    reports: Sequence[ExecutionReport],
    approved_by: str | None,
    plan_sha256: str,
    recorded_by: str | None = None,
    ledger_head: str | None = None,
    copies: Removed | None = None,
    manual: list[ManualSourceAnswer] | None = None,
) -> Receipt:
    results = {r.record_id: r for report in reports for r in report.results}
    changed: list[ReceiptLine] = []
    kept: list[ReceiptLine] = []
    for action in plan:
        result = results.get(action.record_id)
        line = ReceiptLine(
            source=action.source,
            location=action.location,
            record=action.record_id,
            native_id=action.native_id,
            action=action.action.value,
            outcome=(result.outcome if result else Outcome.SKIPPED).value
            if action.action in CHANGING
            else "kept",
            remains=result.remains if result else None,
            requested_at=result.requested_at if result else None,
            fields=sorted(action.fields),
            reason=action.reason,
            keep_until=action.keep_until.isoformat() if action.keep_until else None,
            at_hold_end=at_hold_end(action),
        )
        (changed if action.action in CHANGING else kept).append(line)
    return Receipt(
        request_id=request.id,
        type=request.type.value,
        received_at=request.received_at.isoformat(),
        completed_at=dt.datetime.now(dt.UTC).isoformat(),
        controller=controller,
        subject={"emails": list(request.subject.emails)},
        approved_by=approved_by,
        recorded_by=recorded_by,
        changed=changed,
        kept=kept,
        plan_sha256=plan_sha256,
        ledger_head=ledger_head,
        copies_removed=copies.removed if copies else [],
        copies_remaining=copies.remaining if copies else [],
        manual_sources=manual or [],
    )


def write_receipt(
    receipt: Receipt, directory: Path, language: Language = "nb"
) -> tuple[Path, Path]:
    """receipt.json, and receipt.html in both languages (``language`` first)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("dsrflow", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    json_path, html_path = directory / "receipt.json", directory / "receipt.html"
    write_private(json_path, json.dumps(receipt.model_dump(mode="json"), indent=2).encode("utf-8"))
    html = env.get_template("receipt.html").render(
        receipt=receipt, languages=page_languages(language), **helpers()
    )
    write_private(html_path, html.encode("utf-8"))
    return json_path, html_path


def plan_digest(plan: Sequence[PlannedAction]) -> str:
    payload = json.dumps([a.model_dump(mode="json") for a in plan], sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
