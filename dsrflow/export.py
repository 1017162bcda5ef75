"""Building and writing the access export: export.json, export.html, the schema, a manifest.

Everything is written owner-only (directory 0700, files 0600): an export is the subject's data.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from dsrflow.config import Config
from dsrflow.export_model import (
    SCHEMA_FILE,
    AccessExport,
    Art15Information,
    FieldOfRecord,
    PurposeInfo,
    RecordPart,
    RequestInfo,
    RetentionInfo,
    SourceOfData,
    SummaryRow,
    WholeRecord,
)
from dsrflow.export_page import page_context
from dsrflow.language import Language
from dsrflow.manual import ManualSourceAnswer
from dsrflow.mapping import BaseMapping
from dsrflow.private_files import write_private  # here too: its importers name this module
from dsrflow.request import DataSubjectRequest

if TYPE_CHECKING:  # pandas only where an export is built: `dsr export verify` needs none
    import pandas as pd

RIGHTS = [
    "Rectification of inaccurate data (Art. 16)",
    "Erasure (Art. 17)",
    "Restriction of processing (Art. 18)",
    "Data portability (Art. 20)",
    "Objection to processing based on legitimate interests (Art. 21)",
    "Withdrawal of consent at any time, without affecting earlier processing (Art. 7(3))",
]


def _information(
    config: Config, mappings: dict[str, BaseMapping], frame: pd.DataFrame
) -> Art15Information:
    """Art. 15(1) from the mappings, limited to the categories actually found."""
    from dsrflow.merge import rows  # pandas, only when an export is built

    found: dict[str, set[str]] = defaultdict(set)  # category -> sources
    origins: set[tuple[str, str, str]] = set()
    for row in rows(frame):
        for category in set(row.categories.values()):
            found[category].add(row.source)
        origins.add((row.source, row.location, mappings[row.source].collected_from(row.location)))
    purposes: dict[tuple[str, str], set[str]] = defaultdict(set)
    # One category may sit in several sources kept for different periods: state each.
    retention: set[tuple[str, str]] = set()
    for category, sources in found.items():
        for source in sources:
            use = mappings[source].use_of(category)
            if use is None:
                continue
            for purpose in use.purposes:
                purposes[(purpose, use.legal_basis.value)].add(category)
            retention.add((category, use.retention))
    authority = config.controller.supervisory_authority
    return Art15Information(
        purposes=[
            PurposeInfo(purpose=p, legal_basis=b, categories=sorted(c))
            for (p, b), c in sorted(purposes.items())
        ],
        categories=sorted(found),
        recipients=[r.model_dump(exclude_none=True) for r in config.controller.recipients],
        retention=[RetentionInfo(category=c, retention=r) for c, r in sorted(retention)],
        rights=RIGHTS,
        complaint={"name": authority.name, "url": authority.url, "address": authority.address},
        sources=[
            SourceOfData(source=s, location=loc, collected_from=o) for s, loc, o in sorted(origins)
        ],
        automated_decision_making=config.controller.automated_decision_making,
    )


# A field its mapping gives no category (a column added since) is described as the system's.
UNCATEGORISED = "system.operations"


def _records_by_category(frame: pd.DataFrame) -> dict[str, dict[str, list[RecordPart]]]:
    from dsrflow.merge import rows

    grouped: dict[str, dict[str, list[RecordPart]]] = defaultdict(lambda: defaultdict(list))
    for row in rows(frame):
        by_category: dict[str, dict[str, Any]] = defaultdict(dict)
        for name, value in row.fields.items():
            by_category[row.categories.get(name, UNCATEGORISED)][name] = value
        for category, fields in sorted(by_category.items()):
            grouped[row.source][category].append(
                RecordPart(
                    record=row.record_id,
                    location=row.location,
                    native_id=row.native_id,
                    fields=fields,
                    timestamps={k: v for k, v in row.timestamps.items() if k in fields},
                    matched=sorted(row.matched),
                    reached_via=row.reached_via,
                    shared=bool(row.shared),
                    shared_with=sorted(row.shared_with),
                )
            )
    return {s: dict(sorted(c.items())) for s, c in sorted(grouped.items())}


def _whole_records(frame: pd.DataFrame) -> list[WholeRecord]:
    """Each record once, its fields in the source's order with their categories beside them."""
    from dsrflow.merge import rows

    return [
        WholeRecord(
            record=row.record_id,
            source=row.source,
            location=row.location,
            native_id=row.native_id,
            fields=[
                FieldOfRecord(
                    name=name,
                    value=value,
                    category=row.categories.get(name, UNCATEGORISED),
                    timestamp=row.timestamps.get(name),
                )
                for name, value in row.fields.items()
            ],
            matched=sorted(row.matched),
            reached_via=row.reached_via,
            shared=bool(row.shared),
            shared_with=sorted(row.shared_with),
        )
        for row in rows(frame)
    ]


def build_export(
    request: DataSubjectRequest,
    config: Config,
    mappings: dict[str, BaseMapping],
    frame: pd.DataFrame,
    now: dt.datetime | None = None,
    not_searched: dict[str, list[str]] | None = None,
    manual: list[ManualSourceAnswer] | None = None,
) -> AccessExport:
    from dsrflow.merge import summary

    now = now or dt.datetime.now(dt.UTC)
    counts = summary(frame)
    return AccessExport(
        request=RequestInfo(
            id=request.id,
            type=request.type.value,
            received_at=request.received_at.astimezone(dt.UTC).isoformat(),
            due_at=request.due_at.isoformat(),
            generated_at=now.astimezone(dt.UTC).isoformat(),
        ),
        controller=config.controller,
        subject={
            "emails": list(request.subject.emails),
            "phones": list(request.subject.phones),
            "other_identifiers": [str(i) for i in request.subject.others],
        },
        information=_information(config, mappings, frame),
        summary=[SummaryRow.model_validate(r) for r in counts.to_dict("records")],
        total_records=len(frame),
        records=_records_by_category(frame),
        whole_records=_whole_records(frame),
        not_searched=not_searched or {},
        manual_sources=manual or [],
    )


@dataclass(frozen=True)
class ExportFiles:
    directory: Path
    export_json: Path
    export_html: Path
    schema: Path
    manifest: Path


@functools.cache
def _templates() -> jinja2.Environment:
    """One environment per process: it keeps the compiled page (compiling it took about 0.2 s
    of every access request); jinja2 still reloads a template whose file changed. The compiled
    code is also kept for the next process (another ~0.05 s per command) in jinja2's own
    bytecode cache: a folder of the user's in the temporary directory that jinja2 makes
    owner-only and refuses to use otherwise; it holds the template's code, no data."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("dsrflow", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        bytecode_cache=jinja2.FileSystemBytecodeCache(),
    )


def render_html(document: AccessExport, first: Language = "nb") -> str:
    """The page for the subject, in both languages (``first`` on top)."""
    page = _templates().get_template("export.html")
    return page.render(doc=document, **page_context(document, first))


def write_export(
    document: AccessExport,
    directory: Path,
    language: Language = "nb",
    attachments: Sequence[Path] = (),
) -> ExportFiles:
    """``attachments``: files already in ``directory`` (a manual source's), listed in the
    manifest with the rest."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    files = ExportFiles(
        directory=directory,
        export_json=directory / "export.json",
        export_html=directory / "export.html",
        schema=directory / SCHEMA_FILE,
        manifest=directory / "manifest.json",
    )
    payload = document.model_dump(mode="json", by_alias=True)
    contents = {
        files.export_json: json.dumps(payload, indent=2, ensure_ascii=False).encode("utf-8"),
        files.export_html: render_html(document, language).encode("utf-8"),
        files.schema: resources.files("dsrflow").joinpath("schemas", SCHEMA_FILE).read_bytes(),
    }
    for path, data in contents.items():
        write_private(path, data)
    contents.update({path: path.read_bytes() for path in attachments})
    manifest = {
        "request_id": document.request.id,
        "generated_at": document.request.generated_at,
        "files": [
            {
                "name": p.relative_to(directory).as_posix(),
                "bytes": len(d),
                "sha256": hashlib.sha256(d).hexdigest(),
            }
            for p, d in contents.items()
        ],
    }
    write_private(files.manifest, json.dumps(manifest, indent=2).encode("utf-8"))
    return files


def verify_manifest(directory: Path) -> list[str]:
    """Names of files whose content no longer matches the manifest (empty: all intact)."""
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    return [
        entry["name"]
        for entry in manifest["files"]
        if hashlib.sha256((directory / entry["name"]).read_bytes()).hexdigest() != entry["sha256"]
    ]


def export_problems(directory: Path) -> list[str]:
    """What is wrong with an export's ``export.json``: not valid against its model (and so its
    schema, which is generated from it), or its two views of the records disagree."""
    from pydantic import ValidationError

    try:
        document = AccessExport.model_validate_json((directory / "export.json").read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return [
            f"export.json does not match its schema ({exc.error_count()} problem(s)), first "
            f"at {where}: {first['msg']}"
        ]
    return view_problems(document)


def view_problems(document: AccessExport) -> list[str]:
    """Where the whole-record view and the by-category view of an export disagree (empty: they
    hold the same records and fields). An export written before the whole-record view existed
    has none, and nothing to compare."""
    if not document.whole_records:
        return []
    problems: list[str] = []
    seen: set[str] = set()
    whole: set[tuple[str, str, str, str, str]] = set()
    for record in document.whole_records:
        if record.record in seen:
            problems.append(f"{record.record} appears twice in whole_records")
        seen.add(record.record)
        for f in record.fields:
            value = json.dumps(f.value, sort_keys=True)
            whole.add((record.source, f.category, record.record, f.name, value))
    parts = {
        (source, category, part.record, name, json.dumps(value, sort_keys=True))
        for source, categories in document.records.items()
        for category, found in categories.items()
        for part in found
        for name, value in part.fields.items()
    }
    problems += [
        f"{r} {n} ({c}) is in whole_records only" for _, c, r, n, _ in sorted(whole - parts)
    ]
    problems += [f"{r} {n} ({c}) is in records only" for _, c, r, n, _ in sorted(parts - whole)]
    if len(seen) != document.total_records:
        problems.append(
            f"whole_records holds {len(seen)} records, total_records says {document.total_records}"
        )
    return problems
