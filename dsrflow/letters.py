"""Letters to the subject of a request, in Norwegian bokmål or English: the acknowledgement, the
request for identification (Art. 12(6)), the extension with its reason (Art. 12(3)), the refusal
with the right to complain (Art. 12(4)) and the answer for each right.

Every fact a letter states comes from the ledger (ids, dates, the deadline as the ledger computed
it, the extension and its reason, a rejection's reason), the config (the controller, its officer,
the supervisory authority) or the case folder (the export, the receipt). A letter that needs a
fact the case does not have yet (an answer before the request is answered, an extension the
ledger does not hold) is refused, never written with a gap or a guess.

Letters are written into the case folder, owner-only, as ``letter-<kind>.<lang>.txt`` (a mail
draft: the first line is the subject) and ``.md`` (the service desk comment). Sending them is
not done here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from dsrflow.errors import DsrflowError
from dsrflow.export import write_private
from dsrflow.export_model import AccessExport
from dsrflow.language import LANGUAGES, Language, long_date
from dsrflow.receipt import Receipt
from dsrflow.request import RequestType

if TYPE_CHECKING:
    from dsrflow.config import Config, Controller
    from dsrflow.ledger import Ledger


class LetterError(DsrflowError, ValueError):
    """A letter that cannot be written truthfully yet; the message says what is missing."""


class LetterKind(StrEnum):
    ACKNOWLEDGEMENT = "acknowledgement"
    IDENTIFICATION = "identification"
    EXTENSION = "extension"
    REFUSAL = "refusal"
    ANSWER = "answer"


def parse_kind(text: str) -> LetterKind:
    try:
        return LetterKind(text.strip().lower())
    except ValueError:
        raise LetterError(
            f"no letter {text!r}: choose one of {', '.join(k.value for k in LetterKind)}"
        ) from None


def parse_language(text: str) -> Language:
    for language in LANGUAGES:
        if text.strip().lower() == language:
            return language
    raise LetterError(f"no language {text!r}: choose nb (Norwegian bokmål) or en (English)")


# What the request asks for, as a letter names it.
TYPE_NAMES: dict[str, tuple[str, str]] = {
    "access": ("innsyn i personopplysningene dine", "access to your personal data"),
    "erasure": ("sletting av personopplysningene dine", "erasure of your personal data"),
    "rectification": ("retting av personopplysningene dine", "rectification of your personal data"),
    "restriction": ("begrensning av behandlingen", "restriction of processing"),
    "consent_withdrawal": ("tilbaketrekking av samtykke", "withdrawal of your consent"),
    # Read by the intake, not yet confirmed by the officer: what the right is, is not clear yet.
    "unclear": (
        "å bruke rettighetene dine etter personvernforordningen",
        "exercising your rights under the GDPR",
    ),
}
# A request is answered (a letter can answer it) once completed; one completed, withdrawn by the
# subject or only a dry run's draft has nothing left to refuse.
_ANSWERED = "completed"
_NOT_REFUSABLE = frozenset({"completed", "withdrawn", "draft"})


@dataclass(frozen=True)
class CaseFacts:
    """What the ledger, the config and the case folder say about one request."""

    request_id: str
    type: str
    status: str
    received_at: dt.datetime
    first_due: dt.date
    due: dt.date
    extension_reason: str | None
    closed_reason: str | None
    controller: Controller
    case_dir: Path
    export: AccessExport | None = None
    export_dir: Path | None = None
    receipt: Receipt | None = None

    @property
    def extended(self) -> bool:
        return self.due != self.first_due

    @property
    def extension_months(self) -> int:
        return (self.due.year - self.first_due.year) * 12 + self.due.month - self.first_due.month


@dataclass(frozen=True)
class Letter:
    kind: LetterKind
    language: Language
    subject: str
    text: str  # the mail draft's body
    markdown: str  # the service desk comment


def case_folder(config: Config, request_id: str) -> Path:
    """Where a request's files are (plan, receipt, letters): ``<output_dir>/<request id>``."""
    return config.output_dir / request_id


def _json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        return None


def case_facts(ledger: Ledger, config: Config, request_id: str, case_dir: Path) -> CaseFacts:
    """The facts of a request; LetterError if the ledger does not know it."""
    row = ledger.request_row(request_id)
    if row is None:
        raise LetterError(f"no request {request_id} in the ledger")
    export_dir = _export_dir(ledger, request_id, case_dir)
    raw_export = _json_file(export_dir / "export.json") if export_dir else None
    raw_receipt = _json_file(case_dir / "receipt.json")
    return CaseFacts(
        request_id=request_id,
        type=row["type"],
        status=row["status"],
        received_at=row["received_at"],
        first_due=row["due_at"],
        due=row["extended_due_at"] or row["due_at"],
        extension_reason=row["extension_reason"],
        closed_reason=row["closed_reason"],
        controller=config.controller,
        case_dir=case_dir,
        export=AccessExport.model_validate(raw_export) if raw_export else None,
        export_dir=export_dir if raw_export else None,
        receipt=Receipt.model_validate(raw_receipt) if raw_receipt else None,
    )


def _export_dir(ledger: Ledger, request_id: str, case_dir: Path) -> Path | None:
    """The folder of the request's latest export, as its ``exported`` entry names it."""
    exported = [e for e in ledger.entries(request_id) if e.event == "exported"]
    if exported and exported[-1].details.get("export_dir"):
        return Path(exported[-1].details["export_dir"])
    return case_dir if (case_dir / "export.json").exists() else None


def letter_language(ledger: Ledger, config: Config, request_id: str) -> Language:
    """The language of the request's earlier letters (a request is answered in one language),
    else the config's."""
    for entry in reversed(list(ledger.entries(request_id))):
        if entry.event == "letter_written" and entry.details.get("language") in LANGUAGES:
            language: Language = entry.details["language"]
            return language
    return config.language


def _check(kind: LetterKind, facts: CaseFacts, reason: str | None) -> None:
    """Refuse a letter whose facts the case does not hold."""
    rid = facts.request_id
    if kind is LetterKind.EXTENSION and not facts.extended:
        raise LetterError(
            f"{rid} has not been extended: record the extension and its reason with "
            f"`dsr extend {rid} --reason …` first"
        )
    if kind is LetterKind.REFUSAL:
        if facts.status in _NOT_REFUSABLE:
            raise LetterError(f"{rid} is {facts.status}: there is nothing to refuse")
        if not reason:
            raise LetterError(
                f"a refusal of {rid} needs the reason (Art. 12(4)): give --reason, or reject "
                f"the request with one (`dsr reject {rid} --reason …`)"
            )
    if kind is LetterKind.ANSWER:
        if facts.status != _ANSWERED:
            raise LetterError(
                f"{rid} is {facts.status}, not answered yet: its answer can be written once "
                "the request has completed"
            )
        if facts.type == RequestType.ACCESS and facts.export is None:
            raise LetterError(
                f"no export of {rid} found (it may have been removed after its retention): "
                "run the access request again"
            )
        if facts.type != RequestType.ACCESS and facts.receipt is None:
            raise LetterError(
                f"no receipt.json in {facts.case_dir}: give --case-dir, the folder the request "
                "was answered into"
            )


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def _markdown_escape(value: Any) -> Any:
    """Facts (a name, a reason) are text, never markup, in the service desk comment."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", value) if isinstance(value, str) else value


def _environment(language: Language, markdown: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("dsrflow", "templates"),
        autoescape=False,  # noqa: S701 - plain text and Markdown, not HTML
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_markdown_escape if markdown else None,
    )
    env.filters["date"] = lambda value: long_date(value, language)
    return env


def _template_name(kind: LetterKind, facts: CaseFacts, language: Language) -> str:
    name = f"answer-{facts.type}" if kind is LetterKind.ANSWER else kind.value
    return f"letters/{name}.{language}.txt"


def _answer_facts(facts: CaseFacts) -> dict[str, Any]:
    """Counts and lines the answers state."""
    if facts.export is not None and facts.type == RequestType.ACCESS:
        doc = facts.export
        return {
            "total_records": doc.total_records,
            "sources": sorted({row.source for row in doc.summary}),
            "not_searched": [f"{s}: {n}" for s, notes in doc.not_searched.items() for n in notes],
        }
    receipt = facts.receipt
    if receipt is None:
        return {}
    done = ("done", "already_done")
    changed = [line for line in receipt.changed if line.outcome in done]
    return {
        "counts": {
            action: sum(1 for line in changed if line.action == action)
            for action in ("delete", "redact", "rectify", "restrict")
        },
        "not_done": [line for line in receipt.changed if line.outcome not in done],
        "kept_groups": _kept_groups(receipt),
        "remains": [line for line in receipt.changed if line.remains],
        "copies_removed": len(receipt.copies_removed),
        "copies_remaining": receipt.copies_remaining,
    }


def _kept_groups(receipt: Receipt) -> list[dict[str, Any]]:
    """Kept records by reason and date: one line per reason, however many invoices share it."""
    groups: dict[tuple[str, str | None], dict[str, Any]] = {}
    for line in receipt.kept:
        reason = (line.reason or line.action.replace("_", " ")).rstrip(". ")
        group = groups.setdefault(
            (reason, line.keep_until),
            {"reason": reason, "keep_until": line.keep_until, "count": 0, "places": []},
        )
        group["count"] += 1
        place = f"{line.source} / {line.location}"
        if place not in group["places"]:
            group["places"].append(place)
    return [groups[k] for k in sorted(groups, key=lambda k: (k[1] or "", k[0]))]


def render_letter(
    kind: LetterKind,
    facts: CaseFacts,
    language: Language,
    reason: str | None = None,
    note: str | None = None,
) -> Letter:
    """The letter of ``kind`` for the request, in ``language``. ``reason``: a refusal's reason
    (default: the ledger's, for a rejected request); ``note``: a paragraph of the officer's."""
    reason = (reason or "").strip() or (facts.closed_reason if facts.status == "rejected" else None)
    _check(kind, facts, reason)
    index = LANGUAGES.index(language)
    own = (note or "").strip() or None
    context = {
        "facts": facts,
        "controller": facts.controller,
        "officer": facts.controller.information_officer,
        "authority": facts.controller.supervisory_authority,
        "asked_for": TYPE_NAMES[facts.type][index],
        "reason": reason,
        # The request for identification says what the officer asks for in place of its own
        # ask; other letters carry the officer's paragraph before the signature.
        "ask": own if kind is LetterKind.IDENTIFICATION else None,
        "note": None if kind is LetterKind.IDENTIFICATION else own,
        **_answer_facts(facts),
    }
    rendered = {}
    for markdown in (False, True):
        env = _environment(language, markdown)
        text = env.get_template(_template_name(kind, facts, language)).render(**context)
        subject, _, body = text.partition("\n")
        rendered[markdown] = (subject.strip(), body.strip() + "\n")
    subject = rendered[False][0]
    return Letter(
        kind=kind,
        language=language,
        subject=subject,
        text=f"{subject}\n\n{rendered[False][1]}",
        markdown=f"**{rendered[True][0]}**\n\n{rendered[True][1]}",
    )


def write_letter(letter: Letter, case_dir: Path) -> list[Path]:
    """Write the letter into the case folder (0700), its files owner-only (0600)."""
    case_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    case_dir.chmod(0o700)
    stem = f"letter-{letter.kind.value}.{letter.language}"
    paths = [case_dir / f"{stem}.txt", case_dir / f"{stem}.md"]
    for path, content in zip(paths, (letter.text, letter.markdown), strict=True):
        write_private(path, content.encode("utf-8"))
    return paths


def write_case_letter(
    ledger: Ledger,
    config: Config,
    request_id: str,
    kind: LetterKind,
    language: Language | None = None,
    case_dir: Path | None = None,
    reason: str | None = None,
    note: str | None = None,
    actor: str = "officer",
) -> list[Path]:
    """Render and write one letter of a request; the ledger records that it was written (kind,
    language, the SHA-256 of its text; never the text)."""
    folder = case_dir or case_folder(config, request_id)
    facts = case_facts(ledger, config, request_id, folder)
    chosen = language or letter_language(ledger, config, request_id)
    letter = render_letter(kind, facts, chosen, reason=reason, note=note)
    paths = write_letter(letter, folder)
    ledger.record(
        request_id,
        "letter_written",
        actor=actor,
        kind=kind.value,
        language=chosen,
        files=[p.name for p in paths],
        text_sha256=hashlib.sha256(letter.text.encode("utf-8")).hexdigest(),
    )
    return paths
