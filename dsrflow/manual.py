"""Places without an API (mobile devices, paper, a system without a connector): manual sources.

The config names each one with instructions and who is responsible. Every request it applies to
asks the officer for an answer per source (flows/manual.py): found nothing, found (with a file
for the export), or erased / corrected / restricted on a date, with a note and the officer's
name. A request is not complete while an answer is missing: a source nobody looked at is not a
source that holds nothing.

The answers of a request are kept owner-only in its folder (``<out>/<request id>/manual/``:
``answers.json`` and the attached files) beside its export or plan, so that erasing or sweeping
that folder removes them with it. The ledger records each answer by outcome, date, officer and
the SHA-256 of the note and the file, never their contents: its audit chain is kept for ever.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dsrflow.errors import DsrflowError
from dsrflow.private_files import write_private
from dsrflow.request import RequestType

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
ANSWERS_FILE = "answers.json"
FOLDER = "manual"


class ManualAnswerError(DsrflowError, ValueError):
    """An answer to a manual task that cannot be taken as it is; the message says why."""


class ManualSource(BaseModel):
    """A place the flows cannot search: a person looks and answers (``manual_sources``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        description="short name, lower case (letters, digits, - and _): used in `dsr manual "
        "answer`, the ledger, the export and the receipt"
    )
    instructions: str = Field(
        min_length=1, description="what to look at and how, shown to the officer in the task"
    )
    responsible: str = Field(
        min_length=1, description="the person or role who looks (printed in export and receipt)"
    )
    rights: list[RequestType] | None = Field(
        default=None,
        description="the request types it applies to (access, erasure, rectification, "
        "restriction, consent_withdrawal); default: every one",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(
                f"{value!r} is not a manual source name: lower-case letters, digits, - and _"
            )
        return value

    def applies_to(self, request_type: RequestType) -> bool:
        return self.rights is None or request_type in self.rights


def unique_names(sources: list[ManualSource]) -> list[ManualSource]:
    """The config's validator: two entries of one name would share one answer."""
    seen: set[str] = set()
    for source in sources:
        if source.name in seen:
            raise ValueError(f"manual source {source.name!r} is named twice")
        seen.add(source.name)
    return sources


class ManualOutcome(StrEnum):
    FOUND_NOTHING = "found_nothing"
    FOUND = "found"
    ERASED = "erased"
    CORRECTED = "corrected"
    RESTRICTED = "restricted"
    KEPT = "kept"  # found, and kept on purpose (a legal hold): the note says why


# What a person can truthfully answer for each right; anything else leaves the task undone
# (e.g. "found" on an erasure: found and not erased is not an answer to the request).
OUTCOMES: dict[RequestType, tuple[ManualOutcome, ...]] = {
    RequestType.ACCESS: (ManualOutcome.FOUND_NOTHING, ManualOutcome.FOUND),
    RequestType.ERASURE: (ManualOutcome.FOUND_NOTHING, ManualOutcome.ERASED, ManualOutcome.KEPT),
    RequestType.CONSENT_WITHDRAWAL: (
        ManualOutcome.FOUND_NOTHING,
        ManualOutcome.ERASED,
        ManualOutcome.KEPT,
    ),
    RequestType.RECTIFICATION: (ManualOutcome.FOUND_NOTHING, ManualOutcome.CORRECTED),
    RequestType.RESTRICTION: (ManualOutcome.FOUND_NOTHING, ManualOutcome.RESTRICTED),
}
DATED = frozenset({ManualOutcome.ERASED, ManualOutcome.CORRECTED, ManualOutcome.RESTRICTED})


class ManualFields(BaseModel):
    """The fields of an answer, unchecked: the task's form in the Prefect UI has these, and
    ``check_answer`` judges what comes back (a form that failed to load would end the run)."""

    outcome: ManualOutcome = Field(
        description="found_nothing; found (access: attach the file); erased, corrected or "
        "restricted (the changing requests: give the date); kept (erasure: found and kept on "
        "purpose, e.g. under the Bookkeeping Act; the note says why)"
    )
    on: dt.date | None = Field(
        default=None, description="the day it was erased, corrected or restricted"
    )
    attachment: str | None = Field(
        default=None,
        description="with found: path of a file this flow can read (a scan, a contact export), "
        "named by the request id, not the person; it is copied into the export",
    )
    note: str = Field(
        default="",
        max_length=2000,
        description="where you looked and what you did; the data itself goes in the file",
    )
    officer: str = Field(min_length=1, description="your name, as the ledger shall record it")


class ManualAnswer(ManualFields):
    """An answer that is whole: a date where something was done, the file where found."""

    @model_validator(mode="after")
    def _consistent(self) -> ManualAnswer:
        if self.outcome in DATED and self.on is None:
            raise ValueError(f"{self.outcome.value} needs the date it was done (on)")
        if self.outcome not in DATED and self.on is not None:
            raise ValueError(f"{self.outcome.value} takes no date")
        if self.on is not None and self.on > dt.datetime.now(dt.UTC).date():
            raise ValueError(f"{self.on} is in the future")
        if self.outcome is ManualOutcome.FOUND and not self.attachment:
            raise ValueError("found needs the attachment: the file for the export")
        if self.outcome is not ManualOutcome.FOUND and self.attachment:
            raise ValueError(f"{self.outcome.value} takes no attachment")
        if self.outcome is ManualOutcome.KEPT and not self.note.strip():
            raise ValueError("kept needs the reason in the note")
        return self


def check_answer(raw: dict[str, Any] | BaseModel, request_type: RequestType) -> ManualAnswer:
    """The answer validated, and fit for ``request_type``; ManualAnswerError otherwise."""
    try:
        data = raw.model_dump() if isinstance(raw, BaseModel) else raw
        answer = ManualAnswer.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise ManualAnswerError(f"manual answer: {problems}") from None
    allowed = OUTCOMES[request_type]
    if answer.outcome not in allowed:
        raise ManualAnswerError(
            f"manual answer: {answer.outcome.value} does not answer the {request_type.value} "
            f"request (one of: {', '.join(o.value for o in allowed)})"
        )
    return answer


class StoredAnswer(BaseModel):
    """An answer as kept beside the request's export or plan."""

    source: str
    answer: ManualAnswer
    answered_at: str
    file: str | None = Field(default=None, description="the attachment, relative to the folder")
    file_sha256: str | None = None

    def ledger_details(self) -> dict[str, Any]:
        """What the audit chain keeps: no note, no file name, only their digests."""
        details: dict[str, Any] = {
            "source": self.source,
            "outcome": self.answer.outcome.value,
            "note_sha256": hashlib.sha256(self.answer.note.encode("utf-8")).hexdigest(),
        }
        if self.answer.on:
            details["on"] = self.answer.on.isoformat()
        if self.file_sha256:
            details["file_sha256"] = self.file_sha256
        return details


class ManualSourceAnswer(BaseModel):
    """A manual source and its answer, as the export and the receipt show it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    responsible: str
    instructions: str
    outcome: str = Field(
        description="found_nothing, found, erased, corrected, restricted or kept (see the note)"
    )
    on: str | None = Field(description="the day it was erased, corrected or restricted")
    note: str
    officer: str = Field(description="who looked and answered")
    answered_at: str
    file: str | None = Field(description="the attached file, relative to the export folder")


def shown(source: ManualSource, stored: StoredAnswer) -> ManualSourceAnswer:
    answer = stored.answer
    return ManualSourceAnswer(
        name=source.name,
        responsible=source.responsible,
        instructions=source.instructions,
        outcome=answer.outcome.value,
        on=answer.on.isoformat() if answer.on else None,
        note=answer.note,
        officer=answer.officer,
        answered_at=stored.answered_at,
        file=stored.file,
    )


class ManualStore:
    """The answers of one request, in ``<request folder>/manual/`` (0700; files 0600)."""

    def __init__(self, request_folder: Path) -> None:
        self.request_folder = request_folder
        self.folder = request_folder / FOLDER

    def load(self) -> dict[str, StoredAnswer]:
        path = self.folder / ANSWERS_FILE
        if not path.exists():
            return {}
        stored = json.loads(path.read_text("utf-8"))
        return {s: StoredAnswer.model_validate(a) for s, a in stored.items()}

    def save(self, source: str, answer: ManualAnswer) -> StoredAnswer:
        """Keep the answer; the attachment is read now (it must be a readable regular file)
        and copied owner-only, so later changes to the original do not reach the export."""
        answers = self.load()
        if source in answers:
            raise ManualAnswerError(f"{source} was already answered; an answer is not replaced")
        for folder in (self.request_folder, self.folder):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(folder, 0o700)
        file = digest = None
        if answer.attachment:
            data = read_attachment(Path(answer.attachment))
            name = f"{source}-{Path(answer.attachment).name}"
            write_private(self.folder / name, data)
            file, digest = f"{FOLDER}/{name}", hashlib.sha256(data).hexdigest()
        stored = StoredAnswer(
            source=source,
            answer=answer,
            answered_at=dt.datetime.now(dt.UTC).isoformat(),
            file=file,
            file_sha256=digest,
        )
        answers[source] = stored
        payload = {s: a.model_dump(mode="json") for s, a in answers.items()}
        write_private(self.folder / ANSWERS_FILE, json.dumps(payload, indent=2).encode("utf-8"))
        return stored

    def attachments(self) -> list[Path]:
        """The copied files, for the export's manifest."""
        return sorted(self.request_folder / a.file for a in self.load().values() if a.file)


def read_attachment(path: Path) -> bytes:
    """The file's bytes; ManualAnswerError saying why it cannot be taken."""
    if not path.is_absolute():
        raise ManualAnswerError(f"attachment {path}: give an absolute path")
    if not path.is_file():
        raise ManualAnswerError(f"attachment {path} is not a file this flow can read")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ManualAnswerError(f"attachment {path} cannot be read ({exc.strerror})") from None
