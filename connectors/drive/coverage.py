"""The coverage survey of Google Drive: sheets in the mapped folders (and the named
spreadsheets) that no layout fits, so discovery skips them in silence.

The spreadsheets are the ones discovery reads (``Listing.spreadsheets``; the full-text search,
which needs a subject, adds nothing here). Of each sheet only the header row and the first
``SAMPLE_ROWS`` rows below it are read (``values.batchGet`` with a bounded A1 range), counted
(e-mail-like, phone-like values per column) and dropped.

A finding's ``place`` is the file id and the sheet's id; the spreadsheet's and the sheet's
titles, which may name a person, are its ``label`` (the officer's terminal only).
"""

from __future__ import annotations

from typing import Any

from connectors.base import Finding
from connectors.drive.client import a1_sheet
from connectors.drive.listing import Listing
from connectors.drive.mapping import DriveMapping
from connectors.drive.operations import Sheets
from connectors.drive.rows import headers_of
from connectors.sampling import Tally
from dsrflow.request import Subject

SAMPLE_ROWS = 200


class DriveSurvey:
    def __init__(
        self,
        listing: Listing,
        sheets: Sheets,
        mapping: DriveMapping,
        *,
        phone_region: str = "NO",
        sample_rows: int = SAMPLE_ROWS,
    ) -> None:
        self.listing = listing
        self.sheets = sheets
        self.mapping = mapping
        self.phone_region = phone_region
        self.sample_rows = sample_rows

    def findings(self) -> list[Finding]:
        nobody = Subject(emails=())  # no identifiers: the listing, without full-text search
        found: list[Finding] = []
        for file_id, name in self.listing.spreadsheets(nobody):
            found += self._spreadsheet(file_id, name)
        return found

    def _spreadsheet(self, file_id: str, name: str) -> list[Finding]:
        client = self.sheets.client
        what = "surveying a spreadsheet"
        meta = self.sheets.read(client.sheet_properties(file_id), "metadata_reads", what)
        props = [s["properties"] for s in meta.get("sheets", [])]
        if not props:
            return []
        request = client.values.batchGet(
            spreadsheetId=file_id,
            ranges=[f"{a1_sheet(p['title'])}!1:{self.sample_rows + 1}" for p in props],
            majorDimension="ROWS",
            valueRenderOption="FORMATTED_VALUE",
        )
        answer = self.sheets.read(request, "values_reads", what)
        ranges = [vr.get("values", []) for vr in answer.get("valueRanges", [])]
        found = []
        for prop, rows in zip(props, ranges, strict=True):
            if not rows:
                continue  # an empty sheet holds nothing
            headers = headers_of(rows[0])
            if self.mapping.layout_for(name, prop["title"], headers) is None:
                found.append(self._finding(file_id, name, prop, headers, rows[1:]))
        return found

    def _finding(
        self,
        file_id: str,
        name: str,
        prop: dict[str, Any],
        headers: list[str],
        rows: list[list[Any]],
    ) -> Finding:
        columns = {
            header: Tally.of((row[i] if i < len(row) else None for row in rows), self.phone_region)
            for i, header in enumerate(headers)
        }
        personal = {h: t for h, t in columns.items() if t.personal}
        emails = sum(t.emails for t in columns.values())
        phones = sum(t.phones for t in columns.values())
        evidence = (
            f"no layout fits this sheet; {len(rows)} row(s) sampled: {emails} e-mail-like and "
            f"{phones} phone-like value(s), in {len(personal)} column(s)"
        )
        if personal:
            identities = "".join(
                f"      - {{headers: [{_yaml(h)}], kind: {t.kind()}}}\n"
                for h, t in personal.items()
            )
            reading = f"    identities:\n{identities}"
        else:  # no identifier column: every cell is looked at, as the shipped catch-all does
            reading = "    scan: true\n"
        snippet = (
            f"layouts:\n  - spreadsheet_name: {_yaml(_literal_glob(name))}\n"
            f"    sheet_title: {_yaml(_literal_glob(prop['title']))}\n{reading}"
        ).rstrip()
        return Finding(
            source=self.listing.name,
            what="sheet",
            place=f"{file_id}#gid={prop['sheetId']}",
            evidence=evidence,
            snippet=snippet,
            label=f"{name} / {prop['title']}",
        )


def _literal_glob(text: str) -> str:
    """A layout's name patterns are globs: ``*``, ``?`` and ``[`` of a title made literal."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _yaml(text: str) -> str:
    """A YAML double-quoted scalar."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
