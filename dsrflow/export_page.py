"""What the subject's pages (export.html, receipt.html) show, ready for the templates: one table
per place (a database table, a spreadsheet, a mailbox search), one row per record, columns named
by the field with its category in plain language, and ids a person can read.

The export's ``records`` view splits a record into one part per category (a spreadsheet row of
name, e-mail, company and licence would be four fragments); the page shows it whole.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from dsrflow.categories import category_name
from dsrflow.export_model import AccessExport, FieldOfRecord, WholeRecord
from dsrflow.language import LANGUAGES, Language, long_date

# The source's own id parts, in words; parts that are only digests or internal ids are left out
# of what a person reads (they stay in export.json).
_ID_WORDS: dict[str, tuple[str, str]] = {
    "spreadsheet": ("regneark", "spreadsheet"),
    "sheet": ("ark", "sheet"),
    "row": ("rad", "row"),
    "key": ("sak", "request"),
    "issue": ("sak", "request"),
    "servicedesk": ("kundestøtte", "service desk"),
    "account_id": ("konto", "account"),
    "internetMessageId": ("e-post", "message"),
    "mailbox": ("postboks", "mailbox"),
    "id": ("nr.", "no."),
}
_ID_HIDDEN = frozenset({"spreadsheet_id", "sheet_id", "holds", "content"})
# The order a person reads a spreadsheet row's id in.
_ID_ORDER = ["spreadsheet", "sheet", "row", "issue", "key", "servicedesk", "mailbox"]


# GDPR Art. 6(1)(a)-(f), as the Norwegian and English texts of the regulation name them.
_LEGAL_BASES: dict[str, tuple[str, str]] = {
    "consent": ("samtykke (art. 6 nr. 1 bokstav a)", "consent (Art. 6(1)(a))"),
    "contract": ("avtale (art. 6 nr. 1 bokstav b)", "contract (Art. 6(1)(b))"),
    "legal_obligation": (
        "rettslig forpliktelse (art. 6 nr. 1 bokstav c)",
        "legal obligation (Art. 6(1)(c))",
    ),
    "vital_interests": (
        "vitale interesser (art. 6 nr. 1 bokstav d)",
        "vital interests (Art. 6(1)(d))",
    ),
    "public_task": (
        "oppgave i allmennhetens interesse (art. 6 nr. 1 bokstav e)",
        "public task (Art. 6(1)(e))",
    ),
    "legitimate_interests": (
        "berettiget interesse (art. 6 nr. 1 bokstav f)",
        "legitimate interests (Art. 6(1)(f))",
    ),
}
# The rights the export lists (dsrflow.export.RIGHTS), in bokmål; a right added there without a
# translation here is shown as written.
_RIGHTS_NB: dict[str, str] = {
    "Rectification of inaccurate data (Art. 16)": "Å få rettet uriktige opplysninger (art. 16)",
    "Erasure (Art. 17)": "Å få opplysninger slettet (art. 17)",
    "Restriction of processing (Art. 18)": "Å få behandlingen begrenset (art. 18)",
    "Data portability (Art. 20)": "Å få utlevert opplysningene i et maskinlesbart format (art. 20)",
    "Objection to processing based on legitimate interests (Art. 21)": (
        "Å protestere mot behandling som bygger på berettiget interesse (art. 21)"
    ),
    "Withdrawal of consent at any time, without affecting earlier processing (Art. 7(3))": (
        "Å trekke tilbake et samtykke når som helst, uten at det påvirker behandlingen før "
        "det (art. 7 nr. 3)"
    ),
}


# The receipt's words for what was done and how it went (dsrflow.plan.Action, Outcome).
_ACTIONS: dict[str, tuple[str, str]] = {
    "delete": ("slettet", "deleted"),
    "redact": ("opplysningene om deg fjernet", "your data removed"),
    "rectify": ("rettet", "corrected"),
    "restrict": ("merket som begrenset", "marked as restricted"),
    "keep": ("beholdt", "kept"),
    "not_applicable": ("ikke aktuelt", "not applicable"),
}
_OUTCOMES: dict[str, tuple[str, str]] = {
    "done": ("utført", "done"),
    "already_done": ("var allerede utført", "was already done"),
    "skipped": ("ikke utført", "not carried out"),
    "failed": ("mislyktes", "failed"),
    "kept": ("beholdt", "kept"),
}
_RECEIPT_TITLES: dict[str, tuple[str, str]] = {
    "erasure": ("Kvittering for sletting", "Erasure receipt"),
    "rectification": ("Kvittering for retting", "Rectification receipt"),
    "restriction": ("Kvittering for begrensning", "Restriction receipt"),
    "consent_withdrawal": (
        "Kvittering for tilbaketrekking av samtykke",
        "Consent withdrawal receipt",
    ),
}


# Art. 4(7)-(8) and 26 roles of a recipient (dsrflow.config.Recipient.role).
_ROLES: dict[str, tuple[str, str]] = {
    "processor": ("databehandler", "processor"),
    "controller": ("behandlingsansvarlig", "controller"),
    "joint_controller": ("felles behandlingsansvarlig", "joint controller"),
}


def _word(table: dict[str, tuple[str, str]], key: str, language: Language) -> str:
    words = table.get(key)
    return words[LANGUAGES.index(language)] if words else key.replace("_", " ")


def action_text(action: str, language: Language) -> str:
    return _word(_ACTIONS, action, language)


def role_text(role: str, language: Language) -> str:
    return _word(_ROLES, role, language)


def outcome_text(outcome: str, language: Language) -> str:
    return _word(_OUTCOMES, outcome, language)


def receipt_title(request_type: str, language: Language) -> str:
    titles = _RECEIPT_TITLES.get(request_type, ("Kvittering", "Receipt"))
    return titles[LANGUAGES.index(language)]


def legal_basis_text(basis: str, language: Language) -> str:
    names = _LEGAL_BASES.get(basis)
    return names[LANGUAGES.index(language)] if names else basis


def right_text(right: str, language: Language) -> str:
    return _RIGHTS_NB.get(right, right) if language == "nb" else right


def readable_id(native_id: dict[str, Any], language: Language) -> str:
    """``{"spreadsheet": "Kunder", "sheet": "2024", "row": 5, "holds": …}`` -> "regneark
    Kunder, ark 2024, rad 5" (nb) / "spreadsheet Kunder, sheet 2024, row 5" (en)."""
    index = LANGUAGES.index(language)
    keys = sorted(
        (k for k in native_id if k not in _ID_HIDDEN),
        key=lambda k: (_ID_ORDER.index(k) if k in _ID_ORDER else len(_ID_ORDER), k),
    )
    words = [f"{_ID_WORDS[k][index] if k in _ID_WORDS else k} {native_id[k]}".strip() for k in keys]
    return ", ".join(words)


def readable_value(value: Any) -> str:
    """A field's value as text: lists joined, objects as ``name: value``, nothing as a dash."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, list):
        return "; ".join(readable_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {readable_value(v)}" for k, v in value.items())
    return str(value)


def identifier_text(matched: str) -> str:
    """``email:kari@example.com`` -> ``kari@example.com``."""
    return matched.partition(":")[2] or matched


@dataclass
class Column:
    name: str
    categories: list[str] = field(default_factory=list)

    def heading(self, language: Language) -> str:
        names = dict.fromkeys(category_name(c, language) for c in self.categories)
        return " / ".join(names)


@dataclass
class PlaceTable:
    """The records of one place (table, spreadsheet, mailbox search) in one source."""

    source: str
    location: str
    columns: list[Column]
    records: list[WholeRecord]

    def cell(self, record: WholeRecord, column: Column) -> str:
        found = next((f for f in record.fields if f.name == column.name), None)
        return readable_value(found.value) if found else "—"


def _whole_from_parts(document: AccessExport) -> list[WholeRecord]:
    """An export written before ``whole_records`` existed: its parts, put together again."""
    merged: dict[str, WholeRecord] = {}
    for categories in document.records.values():
        for category, parts in categories.items():
            for part in parts:
                source = part.record.split(":", 1)[0]
                whole = merged.setdefault(
                    part.record,
                    WholeRecord(
                        record=part.record,
                        source=source,
                        location=part.location,
                        native_id=part.native_id,
                        fields=[],
                        matched=part.matched,
                        reached_via=part.reached_via,
                        shared=part.shared,
                        shared_with=part.shared_with,
                    ),
                )
                whole.fields.extend(
                    FieldOfRecord(
                        name=n, value=v, category=category, timestamp=part.timestamps.get(n)
                    )
                    for n, v in part.fields.items()
                )
    return [merged[k] for k in sorted(merged)]


def place_tables(document: AccessExport) -> list[PlaceTable]:
    """One table per source and place, one row per record, columns in the records' order."""
    records = document.whole_records or _whole_from_parts(document)
    grouped: dict[tuple[str, str], list[WholeRecord]] = defaultdict(list)
    for record in records:
        grouped[(record.source, record.location)].append(record)
    tables = []
    for (source, location), found in sorted(grouped.items()):
        columns: dict[str, Column] = {}
        for record in found:
            for f in record.fields:
                column = columns.setdefault(f.name, Column(f.name))
                if f.category not in column.categories:
                    column.categories.append(f.category)
        tables.append(PlaceTable(source, location, list(columns.values()), found))
    return tables


def page_languages(first: Language) -> list[Language]:
    return [first, *(lang for lang in LANGUAGES if lang != first)]


def page_context(document: AccessExport, first: Language) -> dict[str, Any]:
    """What export.html needs beside the document itself."""
    return {
        "languages": page_languages(first),
        "tables": place_tables(document),
        **helpers(),
    }


def helpers() -> dict[str, Any]:
    """The functions both pages call."""
    return {
        "category_name": category_name,
        "readable_id": readable_id,
        "readable_value": readable_value,
        "identifier_text": identifier_text,
        "long_date": long_date,
        "legal_basis_text": legal_basis_text,
        "right_text": right_text,
        "action_text": action_text,
        "outcome_text": outcome_text,
        "role_text": role_text,
        "receipt_title": receipt_title,
    }
