"""Sheets' rules on rows: at least one row stays below the frozen ones, and a protected range
changes only by its editors. The emulator refuses as Sheets does; the connector empties the
last row rather than fail to delete it, and reports a protected row it could not change."""

from __future__ import annotations

import json

import httpx
import pytest
from googleapiclient.errors import HttpError

from connectors.drive.settings import DriveSource
from dsrflow.mapping import parse_mapping
from dsrflow.plan import Outcome
from sandbox.drive_part import start_drive
from sandbox.emulators.google.state import ProtectedRange
from sandbox.runtime import SandboxContext
from tests.conftest import FIXTURES
from tests.test_drive_connector import NOW, connector, kari, planned
from tests.test_google_emulator import google  # noqa: F401 - fixture

KARI = "kari.nordmann@example.com"


def _delete_rows(sheets, start, end):
    request = {
        "deleteDimension": {
            "range": {"sheetId": 0, "dimension": "ROWS", "startIndex": start, "endIndex": end}
        }
    }
    return sheets.spreadsheets().batchUpdate(spreadsheetId="ss-0", body={"requests": [request]})


def test_the_last_unfrozen_row_cannot_be_deleted(google):  # noqa: F811
    _, state, _, _, sheets, _ = google
    sheet = state.files["ss-0"].sheets[0]
    sheet.frozen_rows, sheet.row_count = 1, 3  # a header and two rows, grid trimmed to them
    with pytest.raises(HttpError) as caught:
        _delete_rows(sheets, 1, 3).execute()
    assert caught.value.status_code == 400
    assert "Sorry, it is not possible to delete all non-frozen rows." in caught.value.reason
    assert len(sheet.rows) == 3  # nothing changed
    _delete_rows(sheets, 1, 2).execute()  # one row stays: allowed
    props = sheets.spreadsheets().get(spreadsheetId="ss-0").execute()["sheets"][0]
    assert props["properties"]["gridProperties"] == {
        "rowCount": 2,
        "columnCount": 26,
        "frozenRowCount": 1,
    }


def test_a_protected_range_changes_only_by_its_editors(google):  # noqa: F811
    url, state, _, _, sheets, _ = google
    sheet = state.files["ss-0"].sheets[0]
    sheet.protected = [
        ProtectedRange(start_row=1, end_row=2, editors=frozenset({"boss@x.example"}))
    ]
    values = sheets.spreadsheets().values()
    for write in (
        values.update(
            spreadsheetId="ss-0",
            range="'My Sheet'!A2",
            valueInputOption="RAW",
            body={"values": [["x"]]},
        ),
        values.clear(spreadsheetId="ss-0", range="'My Sheet'!A1:B2", body={}),
        _delete_rows(sheets, 1, 2),
    ):
        with pytest.raises(HttpError) as caught:
            write.execute()
        assert caught.value.status_code == 400
        assert caught.value.reason.startswith("You are trying to edit a protected cell or object")
    assert sheet.rows[1] == ["a@example.com", "A"]
    # Outside the range, and for its editors, writes go through.
    values.update(
        spreadsheetId="ss-0",
        range="'My Sheet'!B3",
        valueInputOption="RAW",
        body={"values": [["b"]]},
    ).execute()
    token = state.issue_token(
        "boss@x.example", frozenset({"https://www.googleapis.com/auth/spreadsheets"})
    )
    state.share(state.files["ss-0"], "boss@x.example", "writer")
    answer = httpx.put(
        f"{url}/v4/spreadsheets/ss-0/values/'My Sheet'!A2",
        params={"valueInputOption": "RAW"},
        json={"values": [["x"]]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.is_success
    got = sheets.spreadsheets().get(spreadsheetId="ss-0").execute()["sheets"][0]
    assert got["protectedRanges"][0]["range"]["startRowIndex"] == 1


def _sandbox_with(tmp_path, sheet):
    data = json.loads((FIXTURES / "drive" / "drive.json").read_text())
    data["spreadsheets"].append(
        {
            "id": "ss-rules",
            "name": "Usage export 2026-Q4",
            "parents": ["fld-analytics"],
            "sheets": [sheet],
        }
    )
    directory = tmp_path / "fixtures"
    directory.mkdir()
    (directory / "drive.json").write_text(json.dumps(data))
    return start_drive(SandboxContext(directory=tmp_path, fixtures=directory))


def _only_rules(source, tmp_path):
    mapping = parse_mapping(source.mapping.read_text(), tmp_path / "m.yaml")
    return mapping.model_copy(update={"folders": [], "spreadsheets": [], "full_text_search": True})


def _erase_kari(source, tmp_path):
    drive = connector(source, _only_rules(source, tmp_path))
    records = [r for r in drive.discover(kari()) if r.native_id["spreadsheet_id"] == "ss-rules"]
    assert len(records) == 1
    return drive, drive.erase(planned(drive, records), kari())


def _values(source):
    drive = connector(source)
    answer = drive.client.values.get(spreadsheetId="ss-rules", range="'Events'").execute(
        http=drive.client.http()
    )
    return answer.get("values", [])


HEADER = ["Day", "Email", "Product", "Event", "Count"]
ROW = ["2026-10-02", KARI, "Release Radar", "login", "1"]


def test_her_row_as_the_last_unfrozen_one_is_emptied_not_left(tmp_path):
    part = _sandbox_with(
        tmp_path, {"title": "Events", "values": [HEADER, ROW], "frozen_rows": 1, "row_count": 2}
    )
    try:
        source = DriveSource.model_validate(part.sources["drive"])
        drive, report = _erase_kari(source, tmp_path)
        assert report.complete, report.results
        assert "emptied, not deleted" in report.results[0].detail
        assert _values(source) == [HEADER]
        assert [
            r for r in drive.discover(kari()) if r.native_id["spreadsheet_id"] == "ss-rules"
        ] == []
    finally:
        part.stop()


def test_her_row_in_a_protected_range_fails_and_says_so(tmp_path):
    part = _sandbox_with(
        tmp_path,
        {
            "title": "Events",
            "values": [HEADER, ["2026-10-01", "ola@example.com", "X", "login", "1"], ROW],
            "protected": [{"startRowIndex": 2, "endRowIndex": 3, "editors": ["boss@x.example"]}],
        },
    )
    try:
        source = DriveSource.model_validate(part.sources["drive"])
        _, report = _erase_kari(source, tmp_path)
        assert not report.complete
        assert report.results[0].outcome == Outcome.FAILED
        assert report.results[0].detail == "HTTP 400 badRequest"
        assert _values(source)[2] == ROW  # nothing changed
    finally:
        part.stop()


def test_the_sweep_empties_the_last_unfrozen_row_too(tmp_path):
    old = [["2022-01-0" + str(n), f"user{n}@example.com", "X", "login", "1"] for n in (1, 2)]
    part = _sandbox_with(
        tmp_path, {"title": "Events", "values": [HEADER, *old], "frozen_rows": 1, "row_count": 3}
    )
    try:
        source = DriveSource.model_validate(part.sources["drive"])
        results = connector(source).sweep(NOW)
        swept = next(r for r in results if r.table == "Usage export 2026-Q4/Events")
        assert swept.rows == 2
        assert "row 3 emptied, not deleted" in " ".join(swept.notes)
        assert _values(source) == [HEADER]
    finally:
        part.stop()
