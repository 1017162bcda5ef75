"""The vendors' quotas in the Google emulator, Drive's files.export, and the Drive connector
under them: fewer requests, never a partial answer.

Each emulator here is started with its quotas set explicitly (off where a test needs speed,
Google's documented numbers where the test is about them)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import google_auth_httplib2
import httplib2
import httpx
import openpyxl
import pytest
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from connectors.base import SourceUnavailable
from connectors.drive.client import SCOPES, XLSX, GoogleClient
from connectors.drive.connector import DriveConnector
from connectors.drive.rows import Matcher
from connectors.drive.settings import DriveSource
from connectors.drive.workbook import WorkbookCheck
from dsrflow.mapping import load_mapping
from dsrflow.request import Subject
from sandbox import drive_seed
from sandbox.drive_part import DELEGATED_USER, mapping_for_loaded, write_service_account
from sandbox.emulators.faults import Faults
from sandbox.emulators.google import GoogleQuotas, GoogleState, create_app
from sandbox.emulators.google.quotas import QuotaMeter
from sandbox.emulators.server import EmulatorServer
from sandbox.onprem_seed import DEMO_SUBJECT, LOOK_ALIKES

KARI = DEMO_SUBJECT


class Emulator:
    """A Google emulator on a free port with a service-account key and the SDK's services."""

    def __init__(self, state: GoogleState, url: str, directory: Path) -> None:
        self.state, self.url, self.directory = state, url, directory
        self.key = write_service_account(state, url, directory / "key.json")
        creds = service_account.Credentials.from_service_account_file(
            str(self.key), scopes=SCOPES, subject=DELEGATED_USER
        )
        common = {"credentials": creds, "static_discovery": True}
        self.drive = build(
            "drive", "v3", client_options={"api_endpoint": f"{url}/drive/v3/"}, **common
        )
        self.sheets = build("sheets", "v4", client_options={"api_endpoint": f"{url}/"}, **common)

    def quota(self, **settings: object) -> dict[str, int]:
        answer = httpx.post(f"{self.url}/_emulator/quota", json=settings)
        answer.raise_for_status()
        return answer.json()

    def requests(self) -> dict[str, int]:
        return httpx.get(f"{self.url}/_emulator/stats").json()["requests"]

    def connector(self, **settings: object) -> DriveConnector:
        mapping = mapping_for_loaded(self.state, self.directory / "drive-mapping.yaml")
        source = DriveSource(
            kind="drive",
            mapping=mapping,
            credentials_file=self.key,
            delegated_user=DELEGATED_USER,
            api_url=self.url,
            **settings,
        )
        sleeps: list[float] = []
        client = GoogleClient("drive", source, sleep=sleeps.append)
        found = DriveConnector("drive", load_mapping(mapping), source, client=client)  # type: ignore[arg-type]
        found.sleeps = sleeps  # type: ignore[attr-defined]
        return found


def start(tmp_path: Path, state: GoogleState):
    drive_seed.grant(state, DELEGATED_USER)
    server = EmulatorServer(create_app(state, Faults()), name="google-quota")
    url = server.__enter__()
    return server, Emulator(state, url, tmp_path)


@pytest.fixture
def small(tmp_path):
    """Three spreadsheets: two sheets each, the subject in the second sheet of one."""
    state = GoogleState(quotas=GoogleQuotas())  # off: these tests count, they do not wait
    folder = state.add_folder("Lists", id="fld-lists")
    for n in range(3):
        people = [["Email", "Phone"], [f"someone{n}@example.com", 4712345678 + n]]
        if n == 1:
            people.append([KARI, ""])
        state.add_spreadsheet(
            f"List {n}",
            {"Intro": [["Note"], ["nothing here"]], "People": people},
            [folder],
            id=f"ss-{n}",
        )
    server, emulator = start(tmp_path, state)
    yield emulator
    server.__exit__(None, None, None)


@pytest.fixture
def generated(tmp_path):
    """The benchmark's profile, small: 20 spreadsheets x 50 rows; the subject in two of them,
    a look-alike in four."""
    state = GoogleState(quotas=GoogleQuotas())  # off unless a test turns them on
    drive_seed.generate_large(state, spreadsheets=20, rows=50, folders=2)
    server, emulator = start(tmp_path, state)
    yield emulator
    server.__exit__(None, None, None)


# -- the quotas, as Google answers them ---------------------------------------------------------


def test_documented_numbers():
    quotas = GoogleQuotas.documented()
    assert (quotas.sheets_reads_per_minute_per_user, quotas.sheets_reads_per_minute) == (60, 300)
    assert (quotas.sheets_writes_per_minute_per_user, quotas.sheets_writes_per_minute) == (60, 300)
    assert quotas.drive_units_per_minute_per_user == 325_000
    assert quotas.drive_units_per_minute == 1_000_000
    assert not any(v for k, v in GoogleQuotas().as_dict().items() if k.endswith("minute"))


def test_the_61st_sheets_read_in_a_minute_is_429_with_googles_body(small):
    assert small.quota(documented=True)["sheets_reads_per_minute_per_user"] == 60
    for _ in range(60):
        small.sheets.spreadsheets().get(spreadsheetId="ss-0").execute()
    raw = httpx.get(
        f"{small.url}/v4/spreadsheets/ss-0",
        headers={"Authorization": f"Bearer {_token(small)}"},
    )
    assert raw.status_code == 429
    assert "retry-after" not in raw.headers  # Google sends none: clients back off themselves
    assert raw.json() == {
        "error": {
            "code": 429,
            "message": "Quota exceeded for quota metric 'Read requests' and limit 'Read "
            "requests per minute per user' of service 'sheets.googleapis.com' for consumer "
            "'project_number:0'.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "RATE_LIMIT_EXCEEDED",
                    "domain": "googleapis.com",
                    "metadata": {
                        "service": "sheets.googleapis.com",
                        "consumer": "projects/0",
                        "quota_metric": "sheets.googleapis.com/read_requests",
                        "quota_limit": "ReadRequestsPerMinutePerUser",
                        "quota_limit_value": "60",
                        "quota_location": "global",
                    },
                },
                {
                    "@type": "type.googleapis.com/google.rpc.Help",
                    "links": [
                        {
                            "description": "Request a higher quota limit.",
                            "url": "https://cloud.google.com/docs/quotas/help/request_increase",
                        }
                    ],
                },
            ],
        }
    }
    # Drive's own quota is another: the export still answers.
    small.drive.files().export_media(fileId="ss-0", mimeType=XLSX).execute()


def test_the_projects_quota_and_the_write_quota_are_named_as_such(small):
    small.quota(sheets_reads_per_minute=2, sheets_writes_per_minute_per_user=1)
    get = small.sheets.spreadsheets().get
    get(spreadsheetId="ss-0").execute()
    get(spreadsheetId="ss-1").execute()
    with pytest.raises(HttpError) as caught:
        get(spreadsheetId="ss-2").execute()
    assert caught.value.status_code == 429
    assert "limit 'Read requests per minute' of service" in caught.value.reason
    assert caught.value.error_details[0]["metadata"]["quota_limit"] == "ReadRequestsPerMinute"
    update = small.sheets.spreadsheets().values().update
    body = {"values": [["x"]]}
    update(spreadsheetId="ss-0", range="Intro!A3", valueInputOption="RAW", body=body).execute()
    with pytest.raises(HttpError) as caught:
        update(spreadsheetId="ss-0", range="Intro!A4", valueInputOption="RAW", body=body).execute()
    assert caught.value.status_code == 429
    assert "'Write requests' and limit 'Write requests per minute per user'" in (
        caught.value.reason
    )
    assert small.state.files["ss-0"].sheets[0].rows[3:] == []  # the refused write did not run


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"drive_units_per_minute_per_user": 3}, "userRateLimitExceeded"),
        ({"drive_units_per_minute": 3}, "rateLimitExceeded"),
    ],
)
def test_drive_quota_is_403_in_usage_limits(small, settings, reason):
    small.quota(**settings)
    for _ in range(3):
        small.drive.files().get(fileId="ss-0").execute()
    with pytest.raises(HttpError) as caught:
        small.drive.files().export_media(fileId="ss-0", mimeType=XLSX).execute()
    assert caught.value.status_code == 403
    assert [(e["domain"], e["reason"]) for e in caught.value.error_details] == [
        ("usageLimits", reason)
    ]


def test_quota_settings_are_checked(small):
    answer = httpx.post(f"{small.url}/_emulator/quota", json={"sheets_reads_per_hour": 5})
    assert answer.status_code == 400
    assert "unknown quota 'sheets_reads_per_hour'" in answer.json()["error"]
    assert small.quota(documented=True, drive_units_per_minute=0)["drive_units_per_minute"] == 0
    assert small.quota(off=True) == {
        **GoogleQuotas().as_dict(),
        "read_quota_per_minute": 0,
        "export_limit_bytes": 10 * 1024 * 1024,
    }


def test_windows_slide_over_real_minutes():
    now = [1000.0]
    meter = QuotaMeter(clock=lambda: now[0])
    assert meter.take("r", "u", per_user=2, per_project=0) is None
    now[0] += 30
    assert meter.take("r", "u", per_user=2, per_project=0) is None
    refused = meter.take("r", "u", per_user=2, per_project=0)
    assert refused is not None and refused.per_user and refused.limit == 2
    assert meter.take("r", "someone-else", per_user=2, per_project=0) is None
    now[0] += 30.001  # the first read is more than 60 s old: room for one
    assert meter.take("r", "u", per_user=2, per_project=0) is None
    assert meter.take("r", "u", per_user=2, per_project=0) is not None


# -- files.export ---------------------------------------------------------------------------------


def test_export_as_xlsx_holds_every_sheet_as_openpyxl_reads_it(small):
    data = small.drive.files().export_media(fileId="ss-1", mimeType=XLSX).execute()
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    assert book.sheetnames == ["Intro", "People"]
    people = [list(r) for r in book["People"].iter_rows(values_only=True)]
    assert people == [["Email", "Phone"], ["someone1@example.com", 4712345679], [KARI]]
    assert small.requests()["files.export"] == 1
    assert "spreadsheets.get" not in small.requests()  # Drive's quota, not Sheets'


def test_export_as_csv_holds_the_first_sheet_only(small):
    data = small.drive.files().export_media(fileId="ss-1", mimeType="text/csv").execute()
    assert data.decode() == "Note\r\nnothing here\r\n"  # the subject is on the second sheet


def test_an_export_over_10_mb_is_refused_as_drive_does(small):
    small.quota(export_limit_bytes=1000)  # a 10 MB spreadsheet, scaled down
    raw = httpx.get(
        f"{small.url}/drive/v3/files/ss-1/export",
        params={"mimeType": XLSX, "alt": "media"},
        headers={"Authorization": f"Bearer {_token(small)}"},
    )
    assert raw.status_code == 403
    assert raw.json() == {
        "error": {
            "code": 403,
            "message": "This file is too large to be exported.",
            "errors": [
                {
                    "message": "This file is too large to be exported.",
                    "domain": "global",
                    "reason": "exportSizeLimitExceeded",
                }
            ],
        }
    }


def test_only_workspace_documents_export(small):
    with pytest.raises(HttpError) as caught:
        small.drive.files().export_media(fileId="fld-lists", mimeType=XLSX).execute()
    assert (caught.value.status_code, caught.value.error_details[0]["reason"]) == (
        403,
        "fileNotExportable",
    )
    with pytest.raises(HttpError) as caught:
        small.drive.files().export_media(fileId="ss-0", mimeType="image/png").execute()
    assert caught.value.status_code == 400


# -- what the export may rule out ------------------------------------------------------------------


def _workbook(rows: list[list[object]], **formulas: str) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    for cell, formula in formulas.items():
        sheet[cell] = formula
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def kari(*phones: str) -> Subject:
    return Subject.from_raw([KARI], list(phones))


@pytest.mark.parametrize(
    ("rows", "may_hold"),
    [
        ([["Email"], ["someone@example.com"]], False),
        ([["Email"], [LOOK_ALIKES[0]]], False),  # a look-alike is not her
        ([["Email"], [KARI.upper()]], True),  # her address, however spelt
        ([["Note"], [f"wrote to {KARI} on Monday"]], True),  # inside free text
        ([["Phone"], [4791234567]], True),  # a number Sheets may show as +47 912 34 567
        ([["Phone"], [4712345678]], False),
        ([["Phone"], ["+47 912 34 567"]], True),
    ],
)
def test_the_export_clears_only_what_cannot_hold_her(rows, may_hold):
    check = WorkbookCheck(Matcher.of(kari("+4791234567")))
    assert check.may_hold(_workbook(rows)) is may_hold


def test_an_address_split_into_rich_text_runs_is_still_found():
    from openpyxl.cell.rich_text import CellRichText, TextBlock
    from openpyxl.cell.text import InlineFont

    book = openpyxl.Workbook()
    book.active.append(["Email"])
    book.active["A2"] = CellRichText(
        "kari.", TextBlock(InlineFont(b=True), "nordmann@"), "example.com"
    )
    out = io.BytesIO()
    book.save(out)
    package = zipfile.ZipFile(out)
    assert not any(b"kari.nordmann@" in package.read(n) for n in package.namelist())
    assert WorkbookCheck(Matcher.of(kari())).may_hold(out.getvalue())


def test_what_the_export_cannot_tell_is_read_through_sheets():
    check = WorkbookCheck(Matcher.of(kari()))
    # A formula without a cached value (openpyxl writes none): its result is unknown.
    assert check.may_hold(_workbook([["Email"], ["x@example.com"]], A3='=CONCAT("a","b")'))
    assert check.may_hold(b"not a workbook")
    empty = io.BytesIO()
    with zipfile.ZipFile(empty, "w") as package:
        package.writestr("xl/workbook.xml", "<workbook/>")
    assert check.may_hold(empty.getvalue())  # no worksheet parts: nothing ruled out


# -- the connector: fewer requests, never partial --------------------------------------------------


def test_requests_stay_within_a_fifth_of_the_lower_bound(generated):
    """The lower bound: one read of each spreadsheet plus the listing's pages. Reading each
    through Sheets' spreadsheets.get + values.batchGet (as before) costs about twice that."""
    drive = generated.connector()
    httpx.post(f"{generated.url}/_emulator/reset-stats")
    records = list(drive.discover(kari()))
    requests = generated.requests()
    assert {r.native_id["spreadsheet_id"] for r in records} and len(records) == 2
    spreadsheets = drive.stats.spreadsheets
    assert spreadsheets == 20
    lower_bound = spreadsheets + drive.client.stats.list_pages
    # HTTP requests sent (a Drive batch is one, however many calls it carries).
    sent = drive.client.stats.requests
    assert (
        sent
        == requests["files.export"]
        + requests["spreadsheets.get"]
        + requests["files.list"]
        + requests["batch"]
    )
    assert sent <= 1.2 * lower_bound, requests
    # Sheets is read only where she is: the look-alikes' spreadsheets are cleared by export.
    assert requests["spreadsheets.get"] == 2
    assert "values.batchGet" not in requests


def test_the_same_records_through_the_export_and_through_sheets(generated):
    via_export = list(generated.connector(read_via="export").discover(kari()))
    via_sheets = list(generated.connector(read_via="sheets").discover(kari()))
    assert via_export == via_sheets and len(via_export) == 2


def test_under_the_documented_quotas_discovery_is_whole(generated):
    generated.quota(documented=True)
    drive = generated.connector()
    records = list(drive.discover(kari()))
    assert len(records) == 2
    assert drive.sleeps == []  # 2 Sheets reads and 21 Drive requests: no quota in sight


def test_over_the_sheets_quota_discovery_fails_it_is_never_partial(generated):
    # Every spreadsheet through Sheets, 5 reads a minute allowed: the connector backs off (the
    # test's sleep does not wait, so the window never empties) and then fails the source.
    generated.quota(sheets_reads_per_minute_per_user=5)
    drive = generated.connector(read_via="sheets", max_retries=2, workers=2)
    with pytest.raises(SourceUnavailable, match=r"HTTP 429 .*after 2 retries"):
        list(drive.discover(kari()))
    assert drive.sleeps and all(0.5 <= s <= 2 for s in drive.sleeps)


def test_over_drives_quota_the_export_fails_the_source(generated):
    generated.quota(drive_units_per_minute_per_user=10)
    drive = generated.connector(max_retries=1)
    with pytest.raises(SourceUnavailable, match=r"HTTP 403 .*after 1 retries"):
        list(drive.discover(kari()))


def test_a_spreadsheet_too_large_to_export_is_read_through_sheets(generated):
    generated.quota(export_limit_bytes=100)  # every export refused as over the limit
    drive = generated.connector()
    records = list(drive.discover(kari()))
    assert len(records) == 2
    assert drive.stats.too_large == 20
    assert generated.requests()["spreadsheets.get"] == 20


def _token(emulator: Emulator) -> str:
    creds = service_account.Credentials.from_service_account_file(
        str(emulator.key), scopes=SCOPES, subject=DELEGATED_USER
    )
    creds.refresh(google_auth_httplib2.Request(httplib2.Http()))
    return str(creds.token)


def test_the_folder_tree_is_read_once_per_connector(generated):
    drive = generated.connector()
    first = list(drive.discover(kari()))
    before = generated.requests()
    httpx.post(f"{generated.url}/_emulator/reset-stats")
    assert list(drive.discover(kari())) == first
    again = generated.requests()
    # No second readability check of the mapped folders, no second walk below them; the
    # spreadsheets themselves are listed and read afresh.
    assert before["batch"] == 1 and "batch" not in again
    assert again["files.list"] < before["files.list"]
    assert again["files.export"] == before["files.export"] == 20
