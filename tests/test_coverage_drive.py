"""The Drive coverage survey over real HTTP (google-api-python-client against the sandbox's
Google emulator): sheets in the mapped folders that no layout fits are named by file id, with
their titles for the officer and the layout that would cover them; adding that layout to the
mapping makes the finding go."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from connectors.drive.client import GoogleClient
from connectors.drive.connector import DriveConnector
from connectors.drive.settings import DriveSource
from dsrflow.mapping import parse_mapping
from sandbox.drive_part import start_drive
from sandbox.runtime import SandboxContext
from tests.conftest import FIXTURES, REPO

PARTNERS = {
    "name": "Partner contacts",
    "parents": ["fld-sales"],
    "sheets": [
        {
            "title": "People",
            "values": [
                ["Who", "Reach at", "Tel", "Since"],
                ["Kari Nordmann", "kari.nordmann@example.com", "+47 912 34 567", "2024-01-02"],
                ["Ola Nordmann", "ola@example.com", "+47 913 45 678", "2024-03-04"],
            ],
        }
    ],
}


@pytest.fixture
def source(tmp_path):
    data = json.loads((FIXTURES / "drive" / "drive.json").read_text("utf-8"))
    data["spreadsheets"].append(PARTNERS)
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    (fixtures / "drive.json").write_text(json.dumps(data), "utf-8")
    part = start_drive(SandboxContext(directory=tmp_path, fixtures=fixtures))
    yield DriveSource.model_validate(part.sources["drive"])
    part.stop()


def mapping_without_catch_alls(extra_layouts: list[dict] | None = None):
    """The shipped mapping less its two catch-all layouts (by header, and scan)."""
    data = yaml.safe_load((REPO / "mappings" / "drive.yaml").read_text("utf-8"))
    data["layouts"] = [lay for lay in data["layouts"] if lay.get("spreadsheet_name")]
    data["layouts"] += extra_layouts or []
    return parse_mapping(yaml.safe_dump(data), Path("drive-test.yaml"))


def survey(source, mapping):
    with DriveConnector("drive", mapping, source, client=GoogleClient("drive", source)) as c:
        return c.survey()


def test_sheets_no_layout_fits_are_named_with_the_layout_that_would_cover_them(source):
    findings = survey(source, mapping_without_catch_alls())
    by_label = {f.label: f for f in findings}
    # Mapped folders only: the Archive folder and a loose spreadsheet are not the mapping's.
    assert set(by_label) == {
        "Inventory / Stock",
        "Account notes / Notes",
        "Partner contacts / People",
    }
    partners = by_label["Partner contacts / People"]
    assert partners.what == "sheet" and partners.place.endswith("#gid=0")
    assert "Partner" not in partners.place  # the id only: titles may name people
    assert partners.evidence == (
        "no layout fits this sheet; 2 row(s) sampled: 2 e-mail-like and 2 phone-like "
        "value(s), in 2 column(s)"
    )
    assert "kari" not in repr(findings).lower()
    assert partners.snippet.splitlines() == [
        "layouts:",
        '  - spreadsheet_name: "Partner contacts"',
        '    sheet_title: "People"',
        "    identities:",
        '      - {headers: ["Reach at"], kind: email}',
        '      - {headers: ["Tel"], kind: phone}',
    ]
    assert "    scan: true" in by_label["Inventory / Stock"].snippet.splitlines()


def test_the_snippet_covers_the_sheet(source):
    first = survey(source, mapping_without_catch_alls())
    snippet = next(f for f in first if f.label == "Partner contacts / People").snippet
    layouts = yaml.safe_load(snippet)["layouts"]
    again = survey(source, mapping_without_catch_alls(layouts))
    assert {f.label for f in again} == {"Inventory / Stock", "Account notes / Notes"}


def test_the_shipped_mapping_leaves_nothing_out(source):
    # Its last layout scans every cell of any sheet: every sheet has a layout.
    assert survey(source, _shipped()) == []


def test_reads_are_bounded_to_a_sample(source):
    from connectors.drive import coverage

    with DriveConnector(
        "drive", mapping_without_catch_alls(), source, client=GoogleClient("drive", source)
    ) as connector:
        survey_ = coverage.DriveSurvey(
            connector.listing, connector.sheets, connector.mapping, sample_rows=1
        )
        partners = next(f for f in survey_.findings() if f.label == "Partner contacts / People")
    # The A1 range asked for the header and one row: the emulator sent no more.
    assert "1 row(s) sampled: 1 e-mail-like and 1 phone-like" in partners.evidence


def _shipped():
    return parse_mapping((REPO / "mappings" / "drive.yaml").read_text("utf-8"), Path("d.yaml"))
